# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""What the three dataset builders share: arguments, the split rule, deterministic sampling, the KB subset, the
OneGen chat turns, and writing a dataset folder atomically.

Folder layout written by every builder:

    README.md               dataset card (licence + source notices, counts, split rule, sha256 of every file)
    kb.jsonl                the knowledge base: {"doc_id", "title", "text"}
    db.jsonl                OneGen training corpus: {"uid", "messages"}, the document token in the assistant turn;
                            the KB's documents and any train query's documents that the KB cap left out
    train.jsonl             OneGen training file (train split only): {"id", "messages"}, the assistant turn carrying
                            "positive" / "negative" (one entry per query-token occurrence, each a list of uids)
    queries/{train,dev,test}.jsonl
                            evaluation records: {"id", "task", "query", "answers", "gold_doc_ids", "messages", ...}
    build_info.json         arguments, source package versions, counts, sha256 (what the card is made from)
"""

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers.utils import logging

from onegen.default_model import default_cache_dir
from onegen.file_utils import atomic_directory
from onegen.modeling_onegen import render_document

from .debian_sources import sha256_file


logger = logging.get_logger(__name__)

SPLIT_SALT = "onegen-v0:"  # research/data.md section 4.2: public, fixed
SPLITS = ("train", "dev", "test")
SMALL_KB_SIZE = 10_000
# Written to build_info.json; raised when a builder's output changes, so that cached folders are rebuilt.
# 2: train queries whose documents do not fit the KB cap are kept, their documents in db.jsonl only.
BUILD_FORMAT = 2


def default_data_dir(task: str) -> Path:
    """Where a builder writes without `--output_dir`, and where `onegen eval` and `onegen demo` look:
    `<onegen cache>/datasets/<task>`."""
    return default_cache_dir() / "datasets" / task


def split_of(group_key: str) -> str:
    """`test` for hash buckets 0-149, `dev` for 150-199, `train` for the rest (of 1000); the key is the group
    (WN-EL: the lemma, RD-1913: the answer headword, WN-2Hop: the bridge entity or the sorted pair)."""
    bucket = int(hashlib.sha256((SPLIT_SALT + group_key).encode("utf-8")).hexdigest(), 16) % 1000
    return "test" if bucket < 150 else "dev" if bucket < 200 else "train"


def stable_order(key: str) -> str:
    """A sort key that shuffles deterministically (and independently of the split buckets)."""
    return hashlib.sha256(("onegen-v0-order:" + key).encode("utf-8")).hexdigest()


@dataclass
class BuildArguments:
    """Options shared by every builder (each builder's dataclass adds its own)."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Folder to write the dataset to, replaced atomically when it exists (default: "
                          "<onegen cache>/datasets/<task>, where `onegen eval` looks)."},
    )
    small: bool = field(
        default=False,
        metadata={"help": "CI / demo preset: fewer queries and a fixed 10k-document KB containing every gold document."},
    )
    max_train: int | None = field(default=None, metadata={"help": "Cap on train queries (default: task's size)."})
    max_dev: int | None = field(default=None, metadata={"help": "Cap on dev queries (default: task's size)."})
    max_test: int | None = field(default=None, metadata={"help": "Cap on test queries (default: task's size)."})
    kb_size: int | None = field(
        default=None,
        metadata={"help": "KB subset size (every gold / candidate document kept). Default: full KB, or 10k with --small."},
    )
    query_token: str = field(default="[RQ]", metadata={"help": "Query token of the target OneGen model."})
    doc_token: str = field(default="[RD]", metadata={"help": "Document token of the target OneGen model."})
    context_tags: str = field(
        default="<paragraph>,</paragraph>",
        metadata={"help": "Start and end tags around inserted documents, comma separated ('' for none)."},
    )
    continuation_token: str = field(
        default="", metadata={"help": "Token written after the query token in link mode (WN-EL), '' for none."}
    )
    wordnet_dir: str | None = field(
        default=None, metadata={"help": "Folder with WordNet's data.* / index.* files (default: the wordnet-base package)."}
    )
    gcide_dir: str | None = field(
        default=None, metadata={"help": "Folder with gcide.index / gcide.dict.dz (default: the dict-gcide package)."}
    )
    debian_cache: str | None = field(
        default=None, metadata={"help": "Where Debian packages are unpacked (default: ~/.cache/onegen/debian)."}
    )

    def caps(self, full: dict[str, int], small: dict[str, int]) -> dict[str, int]:
        preset = small if self.small else full
        given = {"train": self.max_train, "dev": self.max_dev, "test": self.max_test}
        return {split: given[split] if given[split] is not None else preset[split] for split in SPLITS}

    def resolved_kb_size(self) -> int | None:
        return self.kb_size if self.kb_size is not None else SMALL_KB_SIZE if self.small else None


# ------------------------------------------------------------------------------------------------------------------
# OneGen turns
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class OneGenTokens:
    query_token: str = "[RQ]"
    doc_token: str = "[RD]"
    context_tags: tuple[str, str] | None = ("<paragraph>", "</paragraph>")
    continuation_token: str = ""

    @classmethod
    def from_args(cls, args: BuildArguments) -> "OneGenTokens":
        tags = [t.strip() for t in args.context_tags.split(",")] if args.context_tags else []
        if len(tags) not in (0, 2) or (tags and not all(tags)):
            raise ValueError(f"--context_tags takes two comma-separated tags or '', got {args.context_tags!r}")
        return cls(args.query_token, args.doc_token, tuple(tags) if tags else None, args.continuation_token)

    def db_record(self, document: dict) -> dict:
        """A `db.jsonl` line for a KB `document` (`doc_id`, `title`, `text`): its text as the model renders it
        (`render_document`) in the user turn and the document token alone in the assistant turn, so the concatenated
        contents equal what `model.encode_documents(document)` encodes."""
        return {"uid": document["doc_id"], "messages": [{"role": "user", "content": render_document(document)},
                                            {"role": "assistant", "content": self.doc_token}]}

    def link_turn(self, mention: str, gold: list[str], negatives: list[str]) -> dict:
        """Assistant turn of a linking example: the mention, then the query token (and continuation token)."""
        return {"role": "assistant", "content": mention + self.query_token + self.continuation_token,
                "positive": [gold], "negative": [negatives]}

    def insert_turn(self, hops: list[tuple[str, str, list[str], list[str]]], answer: str) -> dict:
        """Assistant turn of a retrieve-then-generate example. Each hop is (text written before the query token,
        text of the document inserted after it, acceptable uids, hard-negative uids); the answer comes last."""
        start, end = self.context_tags or ("", "")
        content = "".join(f"{before}{self.query_token}{start}{doc}{end}" for before, doc, _, _ in hops) + answer
        return {"role": "assistant", "content": content,
                "positive": [gold for _, _, gold, _ in hops], "negative": [neg for _, _, _, neg in hops]}


# ------------------------------------------------------------------------------------------------------------------
# Sampling and the KB subset
# ------------------------------------------------------------------------------------------------------------------
def assign_splits(records: list[dict], caps: dict[str, int]) -> dict[str, list[dict]]:
    """Split by `record["group"]` with `split_of`, then keep a deterministic sample of at most `caps[split]`."""
    by_split = {split: [] for split in SPLITS}
    for record in records:
        by_split[split_of(record["group"])].append(record)
    return {split: sorted(items, key=lambda r: stable_order(r["id"]))[: caps[split]] for split, items in by_split.items()}


def choose_kb(all_ids: list[str], required: list[str], size: int | None) -> list[str]:
    """Every id of `required` (in order, deduplicated) then a deterministic fill up to `size`; the whole KB when
    `size` is None. The result keeps the order of `all_ids`."""
    if size is None:
        return list(all_ids)
    needed = list(dict.fromkeys(required))
    if len(needed) > size:
        raise ValueError(
            f"the KB subset must hold the {len(needed)} gold / candidate documents of the chosen queries, more than "
            f"kb_size={size}: raise --kb_size or lower --max_train / --max_dev / --max_test"
        )
    chosen = set(needed)
    for doc_id in sorted(all_ids, key=stable_order):
        if len(chosen) >= size:
            break
        chosen.add(doc_id)
    return [doc_id for doc_id in all_ids if doc_id in chosen]


def fit_to_kb(splits: dict[str, list[dict]], required, size: int | None, fill_fraction: float = 0.2):
    """With a KB cap, keep every dev and test record and, in their stable order, put the documents of as many train
    records in the KB as fit in `(1 - fill_fraction) * size` (the rest of the KB is a random fill). The other train
    records are kept too: their missing documents are training-only, written to the training corpus (`db.jsonl`)
    but not to the KB, so the KB cap bounds what evaluation indexes, never how much the model trains on.

    Returns (splits, KB ids in order, training-only ids in order); `required(record)` -> the record's ids."""
    needed = {}
    for split in ("dev", "test"):
        for record in splits[split]:
            needed.update(dict.fromkeys(required(record)))
    if size is None:
        for record in splits["train"]:
            needed.update(dict.fromkeys(required(record)))
        return splits, list(needed), []
    budget = int(size * (1 - fill_fraction))
    if len(needed) > budget:
        raise ValueError(
            f"the dev and test queries alone need {len(needed)} documents, more than {budget} of kb_size={size}: "
            "raise --kb_size or lower --max_dev / --max_test"
        )
    outside = []
    for record in splits["train"]:
        extra = [d for d in required(record) if d not in needed]
        if len(needed) + len(extra) <= budget:
            needed.update(dict.fromkeys(extra))
        else:
            outside.append(record)
    training_only = {d: None for record in outside for d in required(record) if d not in needed}
    if outside:
        logger.warning(f"kb_size={size}: {len(outside)} of {len(splits['train'])} train queries need documents "
                       f"outside the KB; their {len(training_only)} documents are in the training corpus only")
    return splits, list(needed), list(training_only)


def restrict_negatives(records: list[dict], kb: set[str]) -> None:
    """Drop hard negatives that are not in the KB (in place) from every assistant turn."""
    for record in records:
        for message in record["messages"]:
            if "negative" in message:
                message["negative"] = [[uid for uid in negs if uid in kb] for negs in message["negative"]]


def mine_bm25_negatives(records: list[dict], documents: list[dict], limit: int) -> None:
    """Fill each record's hard negatives (in place) up to `limit` with the corpus documents that BM25 ranks highest
    for the record's `query`, gold documents excluded; the negatives it had come first.

    Taxonomic negatives are scarce in a KB subset (most RD-1913 queries have no co-hyponym in the small KB), which
    leaves the contrastive loss with random documents only; BM25's top documents are the near misses a query's
    wording invites. Records with more than one query-token occurrence are left as they are."""
    import bm25s
    import numpy as np

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([d["text"] for d in documents], stopwords="en", show_progress=False),
                    show_progress=False)
    ids = [d["doc_id"] for d in documents]
    turns = [next(m for m in r["messages"] if "negative" in m) for r in records]
    queries = bm25s.tokenize([r["query"] for r in records], stopwords="en", return_ids=False, show_progress=False)
    for turn, query in zip(turns, queries):
        if len(turn["negative"]) != 1:
            continue
        hard, gold = turn["negative"][0], set(turn["positive"][0] or ())
        if len(hard) >= limit:
            continue
        scores = retriever.get_scores(query)
        ranked = np.argsort(-scores, kind="stable")[: limit + len(gold) + len(hard)]
        mined = [ids[i] for i in ranked if scores[i] > 0 and ids[i] not in gold and ids[i] not in hard]
        turn["negative"] = [hard + mined[: limit - len(hard)]]


def sample_negatives(candidates: list[str], exclude: set[str], limit: int, seed_key: str, kb: set[str] | None = None):
    """Up to `limit` hard negatives from `candidates` (order kept), skipping `exclude` and ids outside `kb`."""
    pool = [c for c in dict.fromkeys(candidates) if c not in exclude and (kb is None or c in kb)]
    if len(pool) > limit:
        rng = random.Random(stable_order(seed_key))
        pool = sorted(rng.sample(pool, limit), key=pool.index)
    return pool


def source_info(source) -> dict:
    """What a dataset card says about one Debian source (`debian_sources.DebianSource`)."""
    return {"package": source.package, "version": source.version, "origin": source.origin,
            "deb_sha256": source.deb_sha256}


# ------------------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------------------
def write_jsonl(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every data file of a dataset folder (relative path -> hex), README and build_info excluded."""
    return {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in ("README.md", "build_info.json") and not path.name.startswith(".")
    }


def write_dataset(output_dir: str | os.PathLike | None, task: str, kb_docs: list[dict], splits: dict[str, list[dict]],
                  tokens: OneGenTokens, info: dict, card_writer, corpus_docs: list[dict] | None = None) -> dict:
    """Write the folder layout of the module docstring into a temporary folder beside `output_dir`, then rename it.
    `corpus_docs` (default: `kb_docs`) are the training corpus' documents, the KB's plus any training-only ones.
    `card_writer(folder, info)` writes README.md from the finished files. Returns the build info."""
    corpus_docs = kb_docs if corpus_docs is None else corpus_docs
    if output_dir is None:
        output_dir = default_data_dir(task)
    output_dir = Path(output_dir)
    with atomic_directory(output_dir) as tmp_dir:
        write_jsonl(tmp_dir / "kb.jsonl", kb_docs)
        write_jsonl(tmp_dir / "db.jsonl", (tokens.db_record(d) for d in corpus_docs))
        write_jsonl(tmp_dir / "train.jsonl", ({"id": r["id"], "messages": r["messages"]} for r in splits["train"]))
        for split in SPLITS:
            write_jsonl(tmp_dir / "queries" / f"{split}.jsonl", splits[split])
        info = {
            **info,
            "format": BUILD_FORMAT,
            "task": task,
            "tokens": asdict(tokens),
            "split_rule": {"salt": SPLIT_SALT, "test": "bucket < 150", "dev": "150 <= bucket < 200", "train": "rest",
                           "bucket": "int(sha256(salt + group_key), 16) % 1000"},
            "counts": {"kb": len(kb_docs), "corpus": len(corpus_docs), **{f"queries_{s}": len(splits[s]) for s in SPLITS}},
            "sha256": file_checksums(tmp_dir),
        }
        (tmp_dir / "build_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        card_writer(tmp_dir, info)
    logger.warning(f"Wrote {task} to {output_dir}: {info['counts']}")
    return info


def finish_build(args: BuildArguments, task: str, items: list[dict], wordnet, sources: list, sizes: tuple[dict, dict],
                 required, tokens: OneGenTokens, mined_negatives: int = 0) -> dict:
    """The common end of every builder: split and sample `items`, cut the WordNet KB (keeping `required(record)` ids;
    train queries that do not fit bring their documents to the training corpus only), keep only hard negatives that
    are in the corpus (then, with `mined_negatives`, fill them up to that many from BM25 over the corpus), and write
    the folder with its dataset card."""
    from .dataset_card import write_dataset_card

    splits = assign_splits(items, args.caps(*sizes))
    splits, needed, training_only = fit_to_kb(splits, required, args.resolved_kb_size())
    kb_ids = choose_kb(sorted(wordnet.synsets), needed, args.resolved_kb_size())
    kb_set = set(kb_ids)
    corpus_ids = kb_set | set(training_only)
    restrict_negatives([r for rows in splits.values() for r in rows], corpus_ids)
    documents = [{"doc_id": i, "title": wordnet.synsets[i].lemmas[0], "text": wordnet.synsets[i].render()}
                 for i in sorted(corpus_ids)]
    if mined_negatives:
        mine_bm25_negatives(splits["train"], documents, mined_negatives)
    kb_docs = [d for d in documents if d["doc_id"] in kb_set]
    info = {"small": args.small, "pool_size": len(items), "sources": [source_info(s) for s in sources],
            "arguments": {k: v for k, v in vars(args).items() if not k.endswith("_dir") and k != "debian_cache"}}
    return write_dataset(args.output_dir, task, kb_docs, splits, tokens, info, write_dataset_card, documents)
