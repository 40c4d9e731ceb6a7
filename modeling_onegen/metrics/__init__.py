# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`evaluate` metric modules shipped with OneGen-HF, loadable offline by path.

    >>> import onegen.metrics
    >>> qa = onegen.metrics.load("onegen_qa")          # = evaluate.load(onegen.metrics.path("onegen_qa"))
    >>> qa.compute(predictions=["Deep South"], references=[["the Deep South"]])["exact_match"]
    1.0

Each module is a folder `<name>/<name>.py`, the layout `evaluate.load(folder)` and an evaluate Space expect.
"""

from pathlib import Path


METRICS = ("onegen_retrieval", "onegen_qa", "onegen_el")
_HERE = Path(__file__).resolve().parent


def path(name: str) -> str:
    """Folder of the metric module `name` (one of `METRICS`), to pass to `evaluate.load`."""
    if name not in METRICS:
        raise ValueError(f"unknown OneGen metric {name!r}; available: {', '.join(METRICS)}")
    folder = _HERE / name
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(f"{folder / (name + '.py')} is missing: the package was installed without its metric files")
    return str(folder)


def load(name: str, **kwargs):
    """`evaluate.load` of a OneGen metric from the installed package (no network)."""
    import evaluate

    return evaluate.load(path(name), **kwargs)


__all__ = ["METRICS", "load", "path"]
