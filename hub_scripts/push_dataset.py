# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Publish a dataset folder built by `build_wn_el.py` / `build_rd_1913.py` / `build_wn_2hop.py` to the Hub.

Checks first that the folder is what its builder wrote (every file's sha256 as recorded in `build_info.json`) and
that every split matches the KB (each gold, candidate and positive id is a KB document). The upload folder holds the
evaluation records and the KB as Parquet (`data/`), the OneGen training files as JSONL (`db.jsonl`, `train.jsonl`,
the format the original OneGen code downloads, plus Parquet copies for `load_dataset`: one repository holds one
format for the `datasets` loader), and a dataset card whose configs and sha256 describe exactly these files.

    python hub_scripts/push_dataset.py --dataset_dir data/wn-el --repo_id my-org/onegen-wn-el [--dry_run --output_dir out]
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from hub_common import PushArguments, prepared_folder, upload
from transformers import HfArgumentParser

from onegen.dataset_builders.common import SPLITS, file_checksums
from onegen.dataset_builders.dataset_card import build_card, read_build_info


@dataclass
class PushDatasetArguments(PushArguments):
    dataset_dir: str | None = field(default=None, metadata={"help": "Folder written by one of the builders (required)."})


def verify_dataset_folder(folder: str | Path) -> dict:
    """The build info of `folder`, after checking the files' sha256 and that every split matches the KB."""
    from onegen.evaluation.data import load_eval_data

    folder = Path(folder)
    info = read_build_info(folder)
    recorded, actual = info.get("sha256", {}), file_checksums(folder)
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            raise ValueError(f"{folder / name} is listed in build_info.json but missing")
        if name not in recorded:
            raise ValueError(f"{folder / name} is not part of the build (not in build_info.json); remove it")
        if recorded[name] != actual[name]:
            raise ValueError(f"{folder / name} changed since it was built (sha256 {actual[name][:12]}..., recorded "
                             f"{recorded[name][:12]}...); rebuild the dataset")
    for split in SPLITS:
        if (folder / "queries" / f"{split}.jsonl").stat().st_size:
            load_eval_data(folder, info["task"], split)  # raises, naming file/line/field, on a mismatch
    return info


def parquet_configs() -> list[dict]:
    return [
        {"config_name": "queries", "default": True,
         "data_files": [{"split": s, "path": f"data/queries/{s}.parquet"} for s in SPLITS]},
        {"config_name": "kb", "data_files": [{"split": "train", "path": "data/kb.parquet"}]},
        {"config_name": "onegen_db", "data_files": [{"split": "train", "path": "data/onegen_db.parquet"}]},
        {"config_name": "onegen_train", "data_files": [{"split": "train", "path": "data/onegen_train.parquet"}]},
    ]


def stage_dataset(dataset_dir: str | Path, folder: Path) -> dict:
    """Fill `folder` with the upload layout of the module docstring; returns the staged build info."""
    dataset_dir = Path(dataset_dir)
    info = verify_dataset_folder(dataset_dir)
    (folder / "data" / "queries").mkdir(parents=True)
    for split in SPLITS:
        source = dataset_dir / "queries" / f"{split}.jsonl"
        if source.stat().st_size:
            Dataset.from_json(str(source)).to_parquet(str(folder / "data" / "queries" / f"{split}.parquet"))
    Dataset.from_json(str(dataset_dir / "kb.jsonl")).to_parquet(str(folder / "data" / "kb.parquet"))
    for name, config in (("db.jsonl", "onegen_db"), ("train.jsonl", "onegen_train")):
        shutil.copyfile(dataset_dir / name, folder / name)  # as the original OneGen code downloads them
        if (dataset_dir / name).stat().st_size:
            Dataset.from_json(str(dataset_dir / name)).to_parquet(str(folder / "data" / f"{config}.parquet"))
    configs = parquet_configs()
    for config in configs:  # an empty split (e.g. no train queries) is left out of the card
        config["data_files"] = [f for f in config["data_files"] if (folder / f["path"]).is_file()]
    staged = {**info, "sha256": file_checksums(folder)}
    build_card(staged, configs=configs).save(folder / "README.md")
    return staged


def push_dataset(args: PushDatasetArguments):
    """Verify, stage and upload; returns (staged build info, CommitInfo or None)."""
    if not args.dataset_dir:
        raise ValueError("--dataset_dir is required")
    fill = lambda folder: stage_dataset(args.dataset_dir, folder)  # noqa: E731
    with prepared_folder(args.output_dir, Path(args.dataset_dir).name, fill) as (folder, staged):
        commit = upload(folder, args, "dataset", f"Upload {staged['task']} dataset (OneGen-HF)")
    return staged, commit


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(PushDatasetArguments).parse_args_into_dataclasses(args=argv)
    push_dataset(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
