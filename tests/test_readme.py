"""README.md's code blocks and the commands in the `examples/` configs, run against a tiny model and tiny data, so a
README or a config that drifts from the code fails. What is run differently from what a reader runs, and why, is
the list of rules in tests/readme_commands.py (every rule must still match a line)."""

import json
import re
import sys

import pytest
from readme_commands import (
    PYTHON_INPUTS,
    PYTHON_RULES,
    README,
    REPO,
    SHELL_RULES,
    Sandbox,
    apply_python_rules,
    apply_shell_rules,
    check_all_rules_used,
    code_blocks,
    example_header_commands,
    shell_commands,
)
from synthetic import corpus_records, make_items, train_records


BLOCKS = code_blocks(README.read_text())


def test_every_block_is_python_or_shell():
    assert BLOCKS, "README.md has no code blocks"
    unknown = [(lang, line) for lang, _, line in BLOCKS if lang not in ("python", "bash", "sh")]
    assert not unknown, f"README blocks in a language this test cannot run: {unknown}"


def test_python_blocks(tmp_path, monkeypatch):
    """All Python blocks, in order, in one namespace (the reader's session), in a sandbox folder."""
    box = Sandbox(tmp_path)
    monkeypatch.chdir(tmp_path)
    items = make_items(16, seed=3)
    for name, records in (("db", corpus_records(items)), ("train", train_records(items, num_negatives=1))):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    namespace = {
        "corpus": ["paris is the capital of france", "meridian is a city in the state of mississippi",
                   "the mississippi is the largest river in the country", "an apple tree is a small tree",
                   "the president was born in a small house"],
        "list_of_prompts_or_chats": ["the capital of france is", [{"role": "user", "content": "a river"}]],
    }
    assert set(PYTHON_INPUTS) == {*namespace, "train.jsonl", "db.jsonl"}
    for lang, code, line in BLOCKS:
        if lang == "python":
            exec(compile(apply_python_rules(code, box), f"README.md, block at line {line}", "exec"), namespace)
    check_all_rules_used(PYTHON_RULES)
    # What the blocks promise, checked on what they left behind.
    assert namespace["scores"].shape == (1, 1)
    assert set(namespace["rag"]("a dog", max_new_tokens=2)) == {"generated_text", "retrievals"}
    for folder in ("plain-model", "kb-index", "onegen-model", "out"):
        assert (tmp_path / folder).is_dir(), folder
    assert (tmp_path / "out" / "README.md").is_file() and (tmp_path / "onegen-model" / "pipeline_onegen.py").is_file()


@pytest.mark.slow
def test_shell_blocks(tmp_path):
    """All shell lines, in order, in one sandbox: train (one process, then two with the DDP config), build the three
    datasets, evaluate, stage the Hub uploads, check the installation lines. The training block reads data/wn-el,
    which the header of examples/wordnet_el.yaml says how to build: those commands run first."""
    box = Sandbox(tmp_path)
    lines = [*example_header_commands(REPO / "examples" / "wordnet_el.yaml")[:1]]
    lines += [line for lang, code, _ in BLOCKS if lang in ("bash", "sh") for line in shell_commands(code)]
    ran, excluded = [], []
    for line in lines:
        command, reason = apply_shell_rules(line, box)
        if command is None:
            excluded.append((line, reason))
            continue
        result = box.run(command)
        assert result.returncode == 0, f"README line {line!r} ran as {command!r}:\n{result.stdout[-2000:]}\n" \
                                       f"{result.stderr[-4000:]}"
        ran.append((line, result))
    check_all_rules_used(SHELL_RULES)
    assert all(re.match(r"bash run\.sh (demo|test)", line) for line, _ in excluded), excluded

    outputs = {}
    for line, result in ran:  # the first command of each kind (the training launch before the index one)
        outputs.setdefault(line.split()[0] + " " + line.split()[1], result)
    # The DDP config on this GPU-less machine trains once, in 2 gloo processes (not 2 trainings racing for one folder).
    ddp = outputs["accelerate launch"]
    assert (ddp.stdout + ddp.stderr).count("Saved the OneGen model") == 1
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in ddp.stderr
    report = json.loads((tmp_path / "eval-wn-el-dev.json").read_text())
    assert {"onegen", "bm25", "minilm", "mfs"} <= set(report["results"])
    assert (tmp_path / "push" / "onegen-smollm2-wn-el" / "pipeline_onegen.py").is_file()
    index_config = json.loads((tmp_path / "wn-el-index" / "index_config.json").read_text())  # built by 2 processes
    assert index_config["build"]["processes"] == 2 and index_config["num_documents"] > 1000


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "examples").glob("*.yaml")))
def test_example_config_header_commands(tmp_path, config):
    """Each config's header: build its dataset where the config reads it, then train with it (the wn2hop header
    launches 2 DDP processes). The trained model loads with its retrieval mode."""
    from transformers import AutoModelForCausalLM

    import onegen  # noqa: F401

    box = Sandbox(tmp_path)
    commands = example_header_commands(REPO / "examples" / config)
    assert any("build_" in c for c in commands) and any("examples/" + config in c for c in commands), commands
    for line in commands:
        command, reason = apply_shell_rules(line, box)
        result = box.run(command)
        assert result.returncode == 0, f"{config}: {command}\n{result.stderr[-4000:]}"
    settings = {k: v for k, v in (line.split(":", 1) for line in (REPO / "examples" / config).read_text().splitlines()
                                  if line and not line.startswith(("#", " ")))}
    output_dir = settings["output_dir"].split("#")[0].strip()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / output_dir)
    assert model.config.retrieval_mode == settings["retrieval_mode"].split("#")[0].strip()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
