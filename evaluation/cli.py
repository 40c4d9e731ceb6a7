# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The `onegen eval` command.

    onegen eval --model DIR --task wn-el|rd-1913|wn-2hop --split dev [--kb-size N] \
        [--baselines bm25,minilm,closed-book]

Loads the dataset folder (`--data_dir`, default `<onegen cache>/datasets/<task>`, built by
`python -m onegen.dataset_builders.<task>`), ranks the KB with the OneGen model (`encode_documents` /
`encode_queries` at the query tokens of each reference conversation) and with the baselines on the same KB, prints a
table and writes a JSON report atomically.
"""

from transformers import HfArgumentParser

from .runner import EvalArguments, run_evaluation


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(EvalArguments, prog="onegen eval").parse_args_into_dataclasses(args=argv)
    run_evaluation(args)
    return 0


__all__ = ["main"]
