# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""One training set for one model that serves several tasks (`onegen demo --task all --shared_model`): the tasks'
train splits side by side and their document corpora merged. The model learns both retrieval modes from it (the
link turns of WN-EL, the insert turns of RD-1913 and WN-2Hop); the pipeline takes each task's mode per call."""

import hashlib
import json
from pathlib import Path

from onegen.file_utils import atomic_directory, iter_jsonl

from ..dataset_builders.common import write_jsonl


_MIXED_TOKENS = ("query_token", "doc_token", "context_tags", "continuation_token")


def _merged_tokens(data_dirs: list[Path]) -> dict:
    """The special tokens of every dataset (their `build_info.json`), which must not disagree; a token one task does
    not use (empty) is taken from the one that does."""
    merged: dict = {}
    for folder in data_dirs:
        tokens = json.loads((folder / "build_info.json").read_text(encoding="utf-8"))["tokens"]
        for name in _MIXED_TOKENS:
            value = tokens.get(name) or None
            if value and merged.get(name) and merged[name] != value:
                raise ValueError(f"{folder / 'build_info.json'}: tokens.{name} is {value!r}, but another dataset of "
                                 f"the mixture uses {merged[name]!r}; build them with the same tokens")
            merged[name] = merged.get(name) or value
    return merged


def _fingerprint(folder: Path) -> str:
    """sha256 of what the mixture takes from a dataset folder."""
    digest = hashlib.sha256()
    for name in ("build_info.json", "train.jsonl", "db.jsonl"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def mix_tasks(data_dirs: list[Path], output_dir: Path) -> Path:
    """Write into `output_dir` (atomically) the mixture of the dataset folders `data_dirs` (as the dataset builders
    write them):

    - `train.jsonl`: every dataset's train rows, dataset after dataset (the trainer shuffles them);
    - `db.jsonl`: every document once (datasets over one KB share documents);
    - `build_info.json`: the special tokens (`tokens`, as the builders write them) and the datasets mixed (folder
      -> sha256 of its files).

    Raises `ValueError` naming the files when two datasets give one document id different texts, or disagree on a
    special token. A mixture written before from the same datasets is kept as it is. Returns `output_dir`."""
    data_dirs = [Path(folder) for folder in data_dirs]
    sources = {str(folder): _fingerprint(folder) for folder in data_dirs}
    info_path = Path(output_dir) / "build_info.json"
    if info_path.is_file() and json.loads(info_path.read_text(encoding="utf-8")).get("mixture_of") == sources:
        return output_dir
    tokens = _merged_tokens(data_dirs)
    train, documents = [], {}  # documents: uid -> (row, the file it was first read from)
    for folder in data_dirs:
        train += [row for _, row in iter_jsonl(folder / "train.jsonl")]
        for line_number, row in iter_jsonl(folder / "db.jsonl"):
            first, where = documents.setdefault(row["uid"], (row, folder / "db.jsonl"))
            if first != row:
                raise ValueError(f"{folder / 'db.jsonl'}, line {line_number}: document {row['uid']!r} differs from "
                                 f"the one in {where}")
    info = {"mixture_of": sources, "counts": {"train": len(train), "db": len(documents)},
            "tokens": {**tokens, "continuation_token": tokens["continuation_token"] or ""}}
    with atomic_directory(output_dir, "build_info.json", what="dataset") as tmp:
        write_jsonl(tmp / "train.jsonl", train)
        write_jsonl(tmp / "db.jsonl", (row for row, _ in documents.values()))
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return output_dir


__all__ = ["mix_tasks"]
