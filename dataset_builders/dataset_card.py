# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Dataset cards (`huggingface_hub.DatasetCard`) for the WN-EL, RD-1913 and WN-2Hop folders.

The YAML header declares the configs, so `datasets.load_dataset(folder_or_repo, "queries", split="dev")` reads the
evaluation records, `"kb"` the knowledge base, and `"onegen_db"` / `"onegen_train"` the OneGen training files. The
body carries the licence and source notices (WordNet's notice must appear on all copies), the counts, the split rule
and the sha256 of every data file.
"""

import json
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData


WORDNET_NOTICE = """WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.

Permission to use, copy, modify and distribute this software and database and its documentation for any purpose
and without fee or royalty is hereby granted, provided that you agree to comply with the following copyright notice
and statements, including the disclaimer, and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal use or for distribution.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES,
EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES
OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR
DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in advertising or publicity pertaining to
distribution of the software and/or database. Title to copyright in this software, database and any associated
documentation shall at all times remain with Princeton University and LICENSEE agrees to preserve same."""

GCIDE_NOTICE = """GCIDE, the GNU Collaborative International Dictionary of English (including Webster's Revised
Unabridged Dictionary, 1913), is free software; you can redistribute it and/or modify it under the terms of the GNU
General Public License as published by the Free Software Foundation; either version 2, or (at your option) any later
version. GCIDE is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without even the implied
warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License for more details.
This derived dataset is distributed under the same licence (GPL-2.0-or-later)."""

TASKS = {
    "wn-el": dict(
        pretty_name="WN-EL: WordNet entity linking (OneGen format)",
        task_categories=["token-classification", "text-retrieval"], license="other", sources=("wordnet-base",),
        summary="Entity linking as word-sense linking: a mention of a lemma inside one of WordNet's own example "
                "sentences is linked to its synset. The KB is WordNet's synsets rendered as `lemma1, lemma2: "
                "definition` (examples removed); candidates come from WordNet's index files; hard negatives are the "
                "other senses of the lemma. Split group: the lemma.",
    ),
    "rd-1913": dict(
        pretty_name="RD-1913: Webster-1913 reverse dictionary over WordNet (OneGen format)",
        task_categories=["question-answering", "text-retrieval"], license="gpl-2.0", sources=("dict-gcide", "wordnet-base"),
        summary="Single-hop retrieval-augmented QA: the query is a definition from Webster's 1913 dictionary (only "
                "`[1913 Webster]` blocks of GCIDE, headword masked as `___`); the answer is the headword, and every "
                "WordNet synset carrying it is a gold document. Hard negatives: the co-hyponyms of the first gold "
                "synset (built with `--mine_negatives`: then, train split, BM25's top non-gold documents for the "
                "definition). Split group: the answer headword.",
    ),
    "wn-2hop": dict(
        pretty_name="WN-2Hop: multi-hop QA over WordNet (OneGen format)",
        task_categories=["question-answering", "text-retrieval"], license="other", sources=("wordnet-base",),
        summary="Multi-hop QA in the style of 2WikiMultihopQA: bridge questions over part-holonym chains "
                "(X is part of Y, Y is part of Z; Y's name appears in X's gloss and Z's in Y's) and comparison "
                "questions over birth years found in glosses. Both hops' documents are given. Split group: the bridge "
                "entity, or the sorted pair for comparisons.",
    ),
}


def card_configs() -> list[dict]:
    """The `configs:` block of the YAML header (paths relative to the dataset folder)."""
    return [
        {"config_name": "queries", "default": True,
         "data_files": [{"split": s, "path": f"queries/{s}.jsonl"} for s in ("train", "dev", "test")]},
        {"config_name": "kb", "data_files": [{"split": "train", "path": "kb.jsonl"}]},
        {"config_name": "onegen_db", "data_files": [{"split": "train", "path": "db.jsonl"}]},
        {"config_name": "onegen_train", "data_files": [{"split": "train", "path": "train.jsonl"}]},
    ]


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _notices(sources) -> str:
    parts = []
    if "wordnet-base" in sources:
        parts.append("### WordNet 3.0 (Debian package `wordnet-base`)\n\n```\n" + WORDNET_NOTICE + "\n```")
    if "dict-gcide" in sources:
        parts.append("### GCIDE / Webster 1913 (Debian package `dict-gcide`)\n\n```\n" + GCIDE_NOTICE + "\n```")
    return "\n\n".join(parts)


def build_card(info: dict, configs: list[dict] | None = None) -> DatasetCard:
    """A `DatasetCard` from a builder's `build_info` (task, sources, counts, sha256, split rule, arguments)."""
    for key in ("task", "counts", "sha256", "sources", "split_rule"):
        if key not in info:
            raise ValueError(f"build info lacks the field {key!r}, which the dataset card needs")
    task = TASKS.get(info["task"])
    if task is None:
        raise ValueError(f"unknown task {info['task']!r}; known: {sorted(TASKS)}")
    counts = info["counts"]
    card_data = DatasetCardData(
        pretty_name=task["pretty_name"], language=["en"], license=task["license"],
        license_name="wordnet-3.0" if task["license"] == "other" else None,
        license_link="https://wordnet.princeton.edu/license-and-commercial-use" if task["license"] == "other" else None,
        task_categories=task["task_categories"], size_categories=[_size_category(sum(counts.values()))],
        source_datasets=["original"], annotations_creators=["expert-generated"], language_creators=["expert-generated"],
        multilinguality=["monolingual"], tags=["onegen", "retrieval-augmented-generation", "wordnet"],
        configs=configs or card_configs(),
    )
    sources = "\n".join(
        f"- Debian package `{s['package']}` version `{s['version']}` ({s['origin']}"
        + (f", .deb sha256 `{s['deb_sha256']}`" if s.get("deb_sha256") else "") + ")"
        for s in info["sources"]
    )
    count_rows = "\n".join(f"| {name} | {value:,} |" for name, value in counts.items())
    sha_rows = "\n".join(f"| `{path}` | `{digest}` |" for path, digest in info["sha256"].items())
    rule = info["split_rule"]
    preset = "the `--small` preset (fixed KB subset holding every gold document)" if info.get("small") else "the full build"
    content = f"""---
{card_data.to_yaml()}
---

# {task['pretty_name']}

{task['summary']}

Built offline from Debian packages by `hub_scripts/build_{info['task'].replace('-', '_')}.py` of OneGen-HF, with
{preset}. Nothing in it was written by hand or by a model: queries, answers and documents are lexicographers' text.

## Sources

{sources}

## Counts

| part | rows |
|---|---|
{count_rows}

## Splits

`bucket = {rule['bucket']}` with the public salt `{rule['salt']}`; `test`: {rule['test']}, `dev`: {rule['dev']},
`train`: the rest. Whole groups fall in one split. **The `test` split is reserved for final evaluation: never train
or tune on it.**

## Files and formats

- `queries/{{train,dev,test}}.jsonl`: `{{"id", "task", "query", "answers", "gold_doc_ids", "messages", ...}}`; `messages`
  is the OneGen chat example (the assistant turn carries `positive` / `negative`, one list of uids per query token).
- `kb.jsonl`: `{{"doc_id", "title", "text"}}`; `db.jsonl`: OneGen training corpus (`uid`, `messages` with the
  document token `{info['tokens']['doc_token']}` in the assistant turn: the KB's documents and any train query's
  documents the KB size left out); `train.jsonl`: the train split in OneGen's training format
  (query token `{info['tokens']['query_token']}`).

```python
from datasets import load_dataset
dev = load_dataset("PATH_OR_REPO", "queries", split="dev")
kb = load_dataset("PATH_OR_REPO", "kb", split="train")
```

## sha256 of the files

| file | sha256 |
|---|---|
{sha_rows}

## Licence and notices

{_notices([s['package'] for s in info['sources']])}
"""
    return DatasetCard(content)


def write_dataset_card(folder: str | Path, info: dict) -> Path:
    """Write `README.md` into `folder` from its build info."""
    path = Path(folder) / "README.md"
    build_card(info).save(path)
    return path


def read_build_info(folder: str | Path) -> dict:
    path = Path(folder) / "build_info.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a folder written by a OneGen-HF dataset builder")
    return json.loads(path.read_text())
