# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build RD-1913: single-hop retrieval-augmented QA, a Webster-1913 definition answered from the WordNet KB.

Reverse dictionary between two independently written dictionaries (research/data.md, variant C1): the query is the
first `[1913 Webster]` sense of a GCIDE entry (Debian `dict-gcide`), with every form of the headword masked as
`___`; the answer is the headword; every WordNet synset carrying that lemma is a gold document (senses are not
aligned across the two dictionaries), those of the Webster entry's part of speech first. Hard negatives: the
co-hyponyms of the first gold synset in the corpus; with `--mine_negatives`, filled up to `--negatives` (train
split) with BM25's top non-gold documents for the definition. Split group: the answer headword.

    python -m onegen.dataset_builders.rd_1913 --small                      # into ~/.cache/onegen/datasets/rd-1913
    python -m onegen.dataset_builders.rd_1913 --output_dir data/rd-1913 --small
"""

import re
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from .common import BuildArguments, OneGenTokens, finish_build, logger, sample_negatives
from .debian_sources import locate_package
from .gcide_source import first_webster_sense, read_bodies
from .wn_source import POS_FILES, WordNet, co_hyponyms, surface_forms


FULL_SIZES = {"train": 10_000, "dev": 500, "test": 2_000}
SMALL_SIZES = {"train": 2_000, "dev": 500, "test": 500}
PROMPT = "Which word does this dictionary definition describe? {definition}"
MASK = "___"


@dataclass
class Rd1913Arguments(BuildArguments):
    negatives: int = field(default=8, metadata={"help": "Hard negatives per query (co-hyponyms of the gold synset)."})
    mine_negatives: bool = field(default=False, metadata={
        "help": "Fill the train split's hard negatives up to --negatives with BM25's top non-gold documents for the "
                "definition (most queries have no co-hyponym in the small KB). Off by default: over three seeds it "
                "gave a lower and more spread dev Recall@1 than without (README, RD-1913)."})
    max_gold: int = field(
        default=12, metadata={"help": "Skip headwords with more WordNet synsets than this (very polysemous words)."}
    )


def mask_headwords(definition: str, headwords: list[str], wordnet: WordNet) -> str:
    """Replace every form of every headword (regular and irregular inflections, any pos) by `___`."""
    forms = set()
    for headword in headwords:
        for pos in POS_FILES:
            forms |= surface_forms(headword, pos, wordnet.exceptions[pos])
    for form in sorted(forms, key=len, reverse=True):
        if form not in definition.lower():  # cheap test first: most forms do not occur
            continue
        definition = re.sub(r"(?<![\w-])" + re.escape(form) + r"(?![\w-])", MASK, definition, flags=re.I)
    return definition


def collect_items(wordnet: WordNet, bodies: list[str], tokens: OneGenTokens, args: Rd1913Arguments) -> list[dict]:
    items, seen = [], set()
    for number, body in enumerate(bodies):
        entry = first_webster_sense(body)
        if entry is None:
            continue
        answer = next((h for h in entry.headwords if wordnet.senses(h)), None)
        if answer is None:
            continue
        answer = answer.lower()
        golds = wordnet.senses(answer, entry.pos) if entry.pos else []
        golds += [s for s in wordnet.senses(answer) if s not in golds]
        query = mask_headwords(entry.definition, entry.headwords, wordnet)
        if len(golds) > args.max_gold or len(query.replace(MASK, "").split()) < 4 or (answer, query) in seen:
            continue
        seen.add((answer, query))
        negatives = sample_negatives(co_hyponyms(wordnet, golds[0]), set(golds), args.negatives, seed_key=query)
        items.append({
            "id": f"rd1913_{number}",
            "task": "rd-1913",
            "query": query,
            "answers": [answer],
            "gold_doc_ids": golds,
            "group": answer,
            "messages": [
                {"role": "user", "content": PROMPT.format(definition=query)},
                tokens.insert_turn([("", wordnet.synsets[golds[0]].render(), golds, negatives)], answer),
            ],
            "meta": {"headwords": entry.headwords, "webster_pos": entry.pos, "num_gold": len(golds)},
        })
    return items


def build(args: Rd1913Arguments) -> dict:
    tokens = OneGenTokens.from_args(args)
    wn_source = locate_package("wordnet-base", args.wordnet_dir, args.debian_cache)
    gcide_source = locate_package("dict-gcide", args.gcide_dir, args.debian_cache)
    logger.warning(f"Reading WordNet {wn_source.version} and GCIDE {gcide_source.version}")
    wordnet = WordNet(wn_source.data_dir)
    items = collect_items(wordnet, read_bodies(gcide_source.data_dir), tokens, args)
    return finish_build(args, "rd-1913", items, wordnet, [gcide_source, wn_source], (FULL_SIZES, SMALL_SIZES),
                        lambda r: r["gold_doc_ids"], tokens,
                        mined_negatives=args.negatives if args.mine_negatives else 0)


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(Rd1913Arguments).parse_args_into_dataclasses(args=argv)
    build(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
