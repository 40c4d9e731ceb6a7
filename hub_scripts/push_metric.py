# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Publish one of OneGen-HF's `evaluate` metrics (`onegen_retrieval`, `onegen_qa`, `onegen_el`) as an evaluate Space.

The upload folder has the layout of the `evaluate-metric/*` Spaces: the module `<name>.py`, `app.py` (the Gradio
widget of `evaluate.utils.launch_gradio_widget`), `requirements.txt`, and `README.md` whose YAML header is the
Space metadata (sdk, app file, tags) and whose body documents the metric. The folder is named after the metric, so
`evaluate.load(folder)` works on it as it is, offline.

    python hub_scripts/push_metric.py --metric onegen_qa --repo_id my-org/onegen_qa [--dry_run --output_dir out]
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
from hub_common import PushArguments, prepared_folder, upload
from transformers import HfArgumentParser

import onegen.metrics


REQUIREMENTS = ["evaluate>=0.4.6", "datasets>=4.7", "numpy"]
APP = '''import evaluate
from evaluate.utils import launch_gradio_widget


module = evaluate.load("{repo_id}")
launch_gradio_widget(module)
'''
README = """---
title: {name}
emoji: 🔎
colorFrom: blue
colorTo: green
sdk: gradio
sdk_version: 4.44.1
app_file: app.py
pinned: false
tags:
- evaluate
- metric
- onegen
description: >-
  {short}
---

# Metric: {name}

{description}

## How to use

```python
import evaluate
metric = evaluate.load("{repo_id}")
```

Offline, with the `onegen-hf` package installed: `onegen.metrics.load("{name}")`.

## Inputs and outputs
{inputs}

## Citation

```bibtex
{citation}
```
"""


@dataclass
class PushMetricArguments(PushArguments):
    metric: str | None = field(default=None, metadata={"help": "Metric to publish.", "choices": list(onegen.metrics.METRICS)})


def stage_metric(name: str, repo_id: str, folder: Path) -> None:
    """Fill `folder` with the Space layout of the module docstring (it is renamed to `name` afterwards, the name
    `evaluate.load(folder)` needs)."""
    source = Path(onegen.metrics.path(name)) / f"{name}.py"
    shutil.copyfile(source, folder / f"{name}.py")
    module = evaluate.load(str(folder / f"{name}.py"))  # the staged copy must load on its own
    (folder / "app.py").write_text(APP.format(repo_id=repo_id))
    (folder / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    short = " ".join(module.description.split())
    (folder / "README.md").write_text(README.format(
        name=name, repo_id=repo_id, short=short, description=module.description.strip(),
        inputs=module.inputs_description.rstrip(), citation=module.citation.strip(),
    ), encoding="utf-8")


def push_metric(args: PushMetricArguments):
    """Stage and upload; returns the CommitInfo (None with --dry_run)."""
    if args.metric not in onegen.metrics.METRICS:
        raise ValueError(f"--metric must be one of {', '.join(onegen.metrics.METRICS)}, got {args.metric!r}")
    fill = lambda folder: stage_metric(args.metric, args.repo_id, folder)  # noqa: E731
    with prepared_folder(args.output_dir, args.metric, fill) as (folder, _):
        return upload(folder, args, "space", f"Upload the {args.metric} metric (OneGen-HF)", space_sdk="gradio")


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(PushMetricArguments).parse_args_into_dataclasses(args=argv)
    push_metric(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
