"""Real 2-process runs with `accelerate launch --num_processes 2 --cpu` (gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from onegen_model_tester import OneGenModelTester
from synthetic import corpus_records, make_items, train_records

import onegen  # noqa: F401  (registers the OneGen classes, so the saved model loads without remote code)


def accelerate_launch(args, timeout=600):
    """`accelerate launch` with 2 CPU processes. `--cpu` alone starts one process unless mpirun is set up;
    `--multi_gpu` on a machine without GPUs starts 2 torchrun workers that join a gloo process group."""
    with socket.socket() as s:  # a free port for the process group
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
               "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_infonce_gathered_over_two_processes_equals_one_process_on_the_union():
    result = accelerate_launch([str(Path(__file__).parent / "scripts" / "infonce_gather_check.py")])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["distributed"] == pytest.approx(report["single"], rel=1e-5)
    assert report["grad_max_diff"] <= 1e-5 * max(1.0, report["grad_max"])


@pytest.mark.slow
def test_two_process_training_checkpoints_and_saves(tmp_path):
    items = make_items(64, seed=9)
    OneGenModelTester("llama").save_base(tmp_path / "base")
    for name, records in (("db", corpus_records(items)), ("train", train_records(items, num_negatives=1))):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = {
        "model_name_or_path": str(tmp_path / "base"), "train_file": str(tmp_path / "train.jsonl"),
        "corpus_file": str(tmp_path / "db.jsonl"), "output_dir": str(tmp_path / "model"), "max_steps": 6,
        "per_device_train_batch_size": 4, "save_strategy": "steps", "save_steps": 3, "logging_steps": 1,
        "report_to": [], "use_cpu": True, "loss_type": "infonce", "gather_across_devices": True,
        "learning_rate": 1e-3, "dtype": "float32", "ddp_backend": "gloo",
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    result = accelerate_launch(["-m", "onegen.trainers.cli", "--config", str(tmp_path / "cfg.yaml")])
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((tmp_path / "model" / "checkpoint-6" / "trainer_state.json").read_text())
    logs = [entry for entry in state["log_history"] if "loss_ret" in entry]
    assert len(logs) == 6 and all(entry["loss"] == entry["loss"] for entry in logs)  # finite, one per step
    # 2 processes x 4 examples per step: 64 examples in 8 steps per epoch, so 6 steps are 0.75 epoch.
    assert state["log_history"][-1]["epoch"] == pytest.approx(0.75)
    for name in ("checkpoint-3", "checkpoint-6"):
        assert (tmp_path / "model" / name / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "OneGenForCausalLM" and (tmp_path / "model" / "README.md").is_file()
