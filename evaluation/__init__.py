# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen.evaluation`: `onegen eval` (a OneGen model against BM25, all-MiniLM-L6-v2 and closed-book baselines on
WN-EL, RD-1913 and WN-2Hop, built by `onegen.dataset_builders`) and `onegen demo`, built on the model, the trainer
and the pipeline. The task registry (`onegen.evaluation.tasks`) holds every per-task fact."""

from .cli import main
from .data import EvalData, EvalDataError, load_eval_data, subset_kb
from .report import format_table, read_report, write_report
from .runner import EvalArguments, run_evaluation
from .tasks import TASKS, Task, get_task


__all__ = ["EvalArguments", "EvalData", "EvalDataError", "TASKS", "Task", "format_table", "get_task",
           "load_eval_data", "main", "read_report", "run_evaluation", "subset_kb", "write_report"]
