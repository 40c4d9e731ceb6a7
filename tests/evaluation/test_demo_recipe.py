"""`onegen demo`'s training recipe: each setting left unset comes from the task's `DemoRecipe`, a flag wins, and
the cached model's key is computed from the resolved recipe (so `--max_steps 160` and the default 160 share it)."""

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from onegen.evaluation.demo import DemoArguments, _model_key, cpu_has_fast_bf16
from onegen.evaluation.tasks import SHARED_DEMO_RECIPE, TASKS


@pytest.mark.parametrize("task", list(TASKS))
def test_unset_settings_come_from_the_task_recipe(task):
    recipe = asdict(TASKS[task].demo_recipe)
    resolved = asdict(DemoArguments(task=task).with_task_recipe())
    assert {name: resolved[name] for name in recipe} == recipe
    flags = {"max_steps": 7, "learning_rate": 0.5, "n_neg_per_pos": 5, "contrastive_temperature": 0.3,
             "adam_beta2": 0.9, "batch_size": 3}
    assert set(flags) == set(recipe)  # every recipe setting has its flag
    overridden = asdict(DemoArguments(task=task, **flags).with_task_recipe())
    assert {name: overridden[name] for name in flags} == flags


def test_model_key_uses_the_resolved_recipe(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"messages": []}) + "\n")
    recipe = TASKS["wn-el"].demo_recipe
    default = _model_key(DemoArguments(task="wn-el"), tmp_path)
    assert default == _model_key(DemoArguments(task="wn-el", max_steps=recipe.max_steps), tmp_path)
    assert default != _model_key(DemoArguments(task="wn-el", max_steps=recipe.max_steps + 1), tmp_path)
    assert default != _model_key(DemoArguments(task="wn-el", seed=1), tmp_path)  # each seed is its own model
    assert default != _model_key(DemoArguments(task="wn-el", batch_size=recipe.batch_size // 2), tmp_path)


def test_all_has_no_single_recipe():
    with pytest.raises(ValueError, match="one task"):
        DemoArguments(task="all").with_task_recipe()


def test_the_shared_model_has_its_own_recipe_and_needs_all_tasks():
    resolved = asdict(DemoArguments(task="all", shared_model=True).with_task_recipe())
    assert {name: resolved[name] for name in asdict(SHARED_DEMO_RECIPE)} == asdict(SHARED_DEMO_RECIPE)
    with pytest.raises(ValueError, match="--shared_model trains one model for all tasks: use it with --task all"):
        DemoArguments(task="wn-el", shared_model=True)


def test_precision_follows_the_cpu_flags_and_keys_the_cached_model(tmp_path):
    # The default is read from the CPU's flags, so the same machine always trains (and caches) the same precision;
    # on Linux it must agree with /proc/cpuinfo.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo.read_text(), re.MULTILINE).group(1).split())
        assert cpu_has_fast_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})
    assert DemoArguments().bf16 == cpu_has_fast_bf16()
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=["--bf16", "false"])
    assert args.bf16 is False
    (tmp_path / "train.jsonl").write_text(json.dumps({"messages": []}) + "\n")
    assert _model_key(DemoArguments(bf16=True), tmp_path) != _model_key(DemoArguments(bf16=False), tmp_path)
