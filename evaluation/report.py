# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The report of `onegen eval`: a printed table and a JSON file (written to a temporary name, then renamed)."""

import json
import os
from pathlib import Path

from onegen.file_utils import write_json_atomically

from .tasks import get_task


REPORT_FIELDS = ("task", "split", "kb_size", "num_queries", "results")


def format_table(report: dict) -> str:
    """A plain-text table: one row per method, the task's headline metrics as columns ('-' where not measured)."""
    columns = get_task(report["task"]).headlines
    header = ["method"] + [title for title, _ in columns]
    rows = [[method] + [f"{results[key]:.3f}" if key in results else "-" for _, key in columns]
            for method, results in report["results"].items()]
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header] + rows]
    title = (f"{report['task']} / {report['split']}: {report['num_queries']} queries, KB of {report['kb_size']:,} "
             f"documents")
    return "\n".join([title, lines[0], "-" * len(lines[0])] + lines[1:])


def write_report(report: dict, path: str | os.PathLike) -> Path:
    """Write `report` as JSON to `path` atomically (temporary file in the same folder, then rename)."""
    return write_json_atomically(path, report)


def read_report(path: str | os.PathLike) -> dict:
    """Read an `onegen eval` report, checking the fields a model card needs."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"evaluation report {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON evaluation report ({err.msg}, line {err.lineno})") from None
    missing = [f for f in REPORT_FIELDS if f not in report]
    if missing:
        raise ValueError(f"{path}: the evaluation report lacks the field(s) {missing} (expected the JSON written by "
                         "`onegen eval`)")
    if not isinstance(report["results"], dict) or not all(isinstance(v, dict) for v in report["results"].values()):
        raise ValueError(f"{path}: field 'results' must map each method to a dict of metrics")
    return report
