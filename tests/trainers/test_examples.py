"""The `examples/` configs read the files the dataset builders write, and a multi-process launch on a machine
without GPUs either trains one model in gloo processes or stops (never N independent trainings racing for one
folder)."""

import os
import re
from pathlib import Path

import pytest
import yaml
from eval_datasets import TOKENS, _kb, _records

from onegen.dataset_builders.common import write_dataset
from onegen.dataset_builders.dataset_card import write_dataset_card


REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_reads_the_files_its_builder_writes(tmp_path, config):
    """Build the dataset the way the config's header says (the builders' own writer, tiny records), then every
    `*_file` of the config must exist, relative to the folder the commands run in."""
    text = config.read_text()
    (output_dir,) = re.findall(r"^#\s+python hub_scripts/build_\w+\.py --output_dir (\S+)", text, re.M)
    settings = yaml.safe_load(text)
    task = {"wordnet_el.yaml": "wn-el", "rd1913_single_hop.yaml": "rd-1913", "wn2hop_multi_hop.yaml": "wn-2hop"}[
        config.name]
    kb, records = _kb(), _records(task, _kb(), n=16)
    splits = {"train": records[:10], "dev": records[10:14], "test": records[14:]}
    info = {"small": True, "sources": [{"package": "wordnet-base", "version": "fixture", "origin": "test"}]}
    write_dataset(tmp_path / output_dir, task, kb, splits, TOKENS, info, write_dataset_card)
    files = {key: value for key, value in settings.items() if key.endswith("_file")}
    assert set(files) == {"train_file", "corpus_file", "eval_file"}
    missing = {key: value for key, value in files.items() if not (tmp_path / value).is_file()}
    assert not missing, f"{config.name} points at files its builder does not write: {missing}"


def test_a_process_launched_as_one_of_several_but_alone_is_stopped(monkeypatch):
    from onegen.trainers import OneGenTrainingConfig
    from onegen.trainers.onegen_config import check_launch

    args = OneGenTrainingConfig("out", report_to=[], use_cpu=True)
    assert args.world_size == 1  # set up as a single process (what happens when no backend joins the processes)
    check_launch(args)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match=r"RANK 1 of WORLD_SIZE 2\) was launched with 1 others but trains alone.*"
                                           r"pass `use_cpu: true` and `ddp_backend: gloo`"):
        check_launch(args)


@pytest.mark.slow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the GPU-less path; with GPUs DDP uses them")
def test_the_ddp_config_on_a_machine_without_gpus_trains_one_model(tmp_path):
    """examples/accelerate/ddp.yaml (MULTI_GPU, use_cpu: false) on this CPU machine, with 2 processes and no
    use_cpu / ddp_backend in the training config: the processes join one gloo group and save one model."""
    import json

    from readme_commands import Sandbox
    from synthetic import corpus_records, make_items, train_records

    box = Sandbox(tmp_path)
    items = make_items(32, seed=9)
    for name, records in (("db", corpus_records(items)), ("train", train_records(items, num_negatives=1))):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = {"model_name_or_path": "tiny-base", "train_file": "train.jsonl", "corpus_file": "db.jsonl",
           "output_dir": "model", "max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1,
           "save_strategy": "no", "report_to": [], "dtype": "float32"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = box.run(f"accelerate launch --config_file examples/accelerate/ddp.yaml --num_processes 2 "
                     f"--main_process_port {port} -m onegen.trainers.cli --config cfg.yaml", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in output
    assert output.count("Saved the OneGen model") == 1  # one main process
    # 2 processes x 4 examples per step: 32 examples are 4 steps per epoch, so 2 steps are half an epoch.
    epochs = [float(e) for e in re.findall(r"'epoch': '([0-9.]+)'", output)]
    assert epochs and epochs[-1] == pytest.approx(0.5), output[-3000:]
    assert os.path.isfile(tmp_path / "model" / "model.safetensors")
