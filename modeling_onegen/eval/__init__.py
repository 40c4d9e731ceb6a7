# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen eval`: evaluation of a OneGen model against BM25, all-MiniLM-L6-v2 and closed-book baselines on the
WN-EL, RD-1913 and WN-2Hop datasets built by `hub_scripts/` (see `onegen.evaluation`)."""

from .data import EvalData, EvalDataError, load_eval_data, subset_kb
from .report import format_table, read_report, write_report
from .runner import EvalArguments, run_evaluation


__all__ = ["EvalArguments", "EvalData", "EvalDataError", "format_table", "load_eval_data", "read_report",
           "run_evaluation", "subset_kb", "write_report"]
