# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Reading a dataset folder written by the builders of `onegen.dataset_builders` (WN-EL, RD-1913, WN-2Hop) for
evaluation.

Every line is checked: a malformed line or a record that does not match the KB (a gold, candidate or positive id
missing from `kb.jsonl`) raises `EvalDataError` naming the file, the line and the field.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from onegen.dataset_builders.common import choose_kb, default_data_dir
from onegen.file_utils import parse_jsonl

from .tasks import get_task


_QUERY_FIELDS = {"id": str, "task": str, "query": str, "answers": list, "gold_doc_ids": list, "messages": list}


class EvalDataError(ValueError):
    """A dataset file is malformed or does not match its KB; the message names the file, line and field."""


@dataclass
class EvalData:
    task: str
    split: str
    folder: Path
    kb: list[dict]  # {"doc_id", "title", "text"}, in file order (the builders sort by id)
    queries: list[dict]
    queries_sha256: str

    @property
    def doc_ids(self) -> list[str]:
        return [d["doc_id"] for d in self.kb]

    @property
    def num_hops(self) -> int:
        return max(len(q["messages"][-1]["positive"]) for q in self.queries)


def _read_jsonl(path: Path) -> tuple[list[tuple[int, dict]], str]:
    if not path.is_file():
        raise EvalDataError(f"{path} is missing")
    raw = path.read_bytes()
    return list(parse_jsonl(raw.decode("utf-8"), path, EvalDataError)), hashlib.sha256(raw).hexdigest()


def _check_query(path: Path, lineno: int, row: dict, task: str, kb_ids: set[str]) -> None:
    where = f"{path}, line {lineno}"
    for name, kind in _QUERY_FIELDS.items():
        if not isinstance(row.get(name), kind):
            raise EvalDataError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    if row["task"] != task:
        raise EvalDataError(f"{where}: field 'task' is {row['task']!r}, but this is a {task} evaluation")
    if not row["gold_doc_ids"]:
        raise EvalDataError(f"{where}: field 'gold_doc_ids' is empty")
    assistant = row["messages"][-1] if row["messages"] else {}
    positives = assistant.get("positive") if isinstance(assistant, dict) else None
    if assistant.get("role") != "assistant" or not isinstance(positives, list) or not positives:
        raise EvalDataError(f"{where}: field 'messages' must end with an assistant turn carrying 'positive' lists")
    checked = [("gold_doc_ids", row["gold_doc_ids"]), ("candidates", row.get("candidates") or [])]
    checked += [(f"messages[-1].positive[{k}]", p or []) for k, p in enumerate(positives)]
    for name, ids in checked:
        missing = [i for i in ids if i not in kb_ids]
        if missing:
            raise EvalDataError(f"{where}: field {name!r} names documents not in kb.jsonl: {missing[:5]} (the split "
                                "file does not match this KB; rebuild the dataset folder)")
    if task == "wn-2hop" and (row.get("meta") or {}).get("type") not in ("bridge", "comparison"):
        raise EvalDataError(f"{where}: field 'meta.type' must be 'bridge' or 'comparison' (WN-2Hop question type)")
    if task == "wn-el" and not row.get("candidates"):
        raise EvalDataError(f"{where}: field 'candidates' is missing or empty (WN-EL needs the lemma's candidates)")


def load_eval_data(folder: str | Path | None, task: str, split: str) -> EvalData:
    """Read `kb.jsonl` and `queries/<split>.jsonl` of a dataset folder and check that they match."""
    builder = get_task(task)
    folder = Path(folder) if folder is not None else default_data_dir(task)
    if not (folder / "kb.jsonl").is_file():
        raise EvalDataError(
            f"No {task} dataset at {folder} (kb.jsonl is missing). Build it first, e.g. "
            f"`{builder.build_command(folder, '--small')}`, or pass --data_dir."
        )
    kb_rows, _ = _read_jsonl(folder / "kb.jsonl")
    kb = []
    for lineno, row in kb_rows:
        for name in ("doc_id", "text"):
            if not isinstance(row.get(name), str) or not row[name]:
                raise EvalDataError(f"{folder / 'kb.jsonl'}, line {lineno}: field {name!r} is missing or empty")
        kb.append(row)
    kb_ids = {d["doc_id"] for d in kb}
    if len(kb_ids) != len(kb):
        raise EvalDataError(f"{folder / 'kb.jsonl'}: field 'doc_id' is not unique")
    path = folder / "queries" / f"{split}.jsonl"
    rows, digest = _read_jsonl(path)
    for lineno, row in rows:
        _check_query(path, lineno, row, task, kb_ids)
    if not rows:
        raise EvalDataError(f"{path} has no queries")
    return EvalData(task=task, split=split, folder=folder, kb=kb, queries=[r for _, r in rows], queries_sha256=digest)


def subset_kb(data: EvalData, size: int | None) -> EvalData:
    """Cut the KB to `size` documents that include every gold, candidate and positive document of the queries
    (then a deterministic fill in KB order of a hash), with the builders' own rule (`--kb_size`)."""
    if size is None or size >= len(data.kb):
        return data
    needed = []
    for q in data.queries:
        needed += q["gold_doc_ids"] + (q.get("candidates") or [])
        needed += [i for p in q["messages"][-1]["positive"] for i in (p or [])]
    needed = set(needed)
    if len(needed) > size:
        raise ValueError(f"--kb_size {size} is smaller than the {len(needed)} documents the {data.split} queries need")
    keep = set(choose_kb(data.doc_ids, sorted(needed), size))
    return EvalData(task=data.task, split=data.split, folder=data.folder,
                    kb=[d for d in data.kb if d["doc_id"] in keep], queries=data.queries,
                    queries_sha256=data.queries_sha256)
