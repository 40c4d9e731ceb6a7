# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The `onegen` command: a thin dispatcher to the sub-commands, each implemented where its subject lives."""

import importlib
import sys


# sub-command -> (module, function, one-line help). Each function takes the remaining argv.
COMMANDS = {
    "train": ("onegen.trainers.cli", "main", "fine-tune with OneGenTrainer (TRL-style flags or --config cfg.yaml)"),
    "demo": ("onegen.evaluation.demo", "main",
             "end-to-end example on the embedded default base model (SmolLM2-135M-Instruct)"),
    "index": ("onegen.pipelines.index_cli", "main",
              "encode a corpus into a DocumentIndex (sharded, resumable; accelerate launch for many processes)"),
    "eval": ("onegen.evaluation.cli", "main",
             "evaluate a model and baselines on WN-EL, RD-1913 or WN-2Hop (table + JSON report)"),
}


def _usage() -> str:
    lines = ["usage: onegen <command> [options]", "", "commands:"]
    lines += [f"  {name:<8}{help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    lines += ["", "Run `onegen <command> --help` for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"onegen: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[name]
    return getattr(importlib.import_module(module_name), function_name)(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
