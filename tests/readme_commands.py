"""Running the commands that the README and the `examples/` configs show, against a tiny model and tiny data.

Each command is run as written, except where a rule below rewrites or excludes it. The rules are the complete list of
differences between what a reader runs and what the tests run; each says why. A rule that no longer matches any line
fails its test too (`check_all_rules_used`), so the list cannot go stale.
"""

import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# Builders: `--small` builds 2,000 train queries over a 10,000-document KB from Debian's packages (minutes); the tests
# use the sizes of tests/dataset_builders/test_datasets_real.py and the shared Debian download cache.
BUILDER_SHRINK = "--max_train 40 --max_dev 15 --max_test 15 --kb_size 1500"
# Training: the configs train the 135M SmolLM2 for an epoch (hours on a CPU); the tests train a tiny random Llama with
# the tiny BPE tokenizer (`tiny-base`, written into the sandbox) for one step.
TRAIN_SHRINK = "--model_name_or_path tiny-base --max_steps 1 --per_device_train_batch_size 2 --dtype float32"


@dataclass
class Rule:
    """`pattern` (a regex matched at the start of a command line) -> `rewrite(match, line, sandbox)`; None excludes
    the line, with `reason`."""

    pattern: str
    reason: str
    rewrite: object = None
    used: list = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHELL_RULES = [
    Rule(r"bash run\.sh (demo|test)\b",
         "excluded: CI runs `bash run.sh test` itself (.ci/run); the demo trains the 135M model for ~20 minutes and "
         "runs as the project's main job, not as a test"),
    Rule(r"python hub_scripts/build_\w+\.py\b.*--small",
         f"`--small` -> `{BUILDER_SHRINK}` (same builder, same Debian sources, smaller sample)",
         lambda m, line, box: line.replace("--small", f"{BUILDER_SHRINK} --debian_cache {box.debian_cache}")),
    Rule(r"onegen train --config \S+",
         f"the 135M default model for an epoch -> `{TRAIN_SHRINK}` appended (command-line options override the YAML)",
         lambda m, line, box: f"{_command(line)} {TRAIN_SHRINK}"),
    Rule(r"onegen index --model DIR\b",
         "`DIR` -> the model the training commands above wrote; `~/.cache/onegen` -> the sandbox's ONEGEN_CACHE (where "
         "the dataset commands above wrote the KB)",
         lambda m, line, box: _command(line).replace("--model DIR", "--model runs/onegen-smollm2-wn-el", 1)
         .replace("~/.cache/onegen", str(box.cache))),
    Rule(r"accelerate launch --config_file (\S+) -m onegen\.cli index ",
         "ddp.yaml's 8 processes -> `--num_processes 2` (2 CPU processes, gloo) and a free port; `DIR` and the KB as "
         "for `onegen index`",
         lambda m, line, box: _command(line).replace(
             "--config_file", f"--num_processes 2 --main_process_port {_free_port()} --config_file", 1)
         .replace("--model DIR", "--model runs/onegen-smollm2-wn-el", 1).replace("~/.cache/onegen", str(box.cache))),
    Rule(r"accelerate launch --config_file (\S+) ",
         "ddp.yaml's 8 processes -> `--num_processes 2` (2 CPU processes, gloo) and a free port; training as for "
         "`onegen train`",
         lambda m, line, box: _command(line).replace(
             m.group(0), f"{m.group(0)}--num_processes 2 --main_process_port {_free_port()} ", 1) + f" {TRAIN_SHRINK}"),
    Rule(r"onegen eval --model DIR\b",
         "`DIR` -> the model the training commands above wrote (runs/onegen-smollm2-wn-el)",
         lambda m, line, box: line.replace("DIR", "runs/onegen-smollm2-wn-el", 1)),
    Rule(r"python hub_scripts/push_(model|dataset|metric)\.py\b",
         "`--dry_run --output_dir push` appended (builds the exact upload folder; uploading needs the Hub and a "
         "token); `DIR` -> the trained model; `~/.cache/onegen` -> the sandbox's ONEGEN_CACHE",
         lambda m, line, box: _command(line).replace("--model_dir DIR", "--model_dir runs/onegen-smollm2-wn-el")
         .replace("~/.cache/onegen", str(box.cache)) + " --dry_run --output_dir push"),
    Rule(r"pip install\b",
         "installing needs PyPI: the test checks instead that each named distribution is installed, at a version the "
         "line's specifier admits (extras are not checked)",
         lambda m, line, box: f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "
                              f"check-installed {_command(line)[len('pip install'):]}"),
]

# Python blocks run in one namespace, in README order (as a reader runs them in one session).
PYTHON_RULES = [
    Rule(r'"path/to/any-causal-lm"',
         "stands for any causal LM: a tiny random Llama with the tiny BPE tokenizer (tiny-base in the sandbox)",
         lambda m, code, box: code.replace('"path/to/any-causal-lm"', '"tiny-base"')),
]
# Names and files the Python blocks take from the reader, given by the sandbox: `corpus` (five short documents),
# `list_of_prompts_or_chats` (two prompts), and `train.jsonl` / `db.jsonl` (the synthetic task of tests/synthetic.py
# in the original OneGen formats, with the README's `[RQ]` / `[RD]` tokens).
PYTHON_INPUTS = ("corpus", "list_of_prompts_or_chats", "train.jsonl", "db.jsonl")


def _command(line: str) -> str:
    """A shell line without its trailing `# comment`."""
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def code_blocks(text: str) -> list[tuple[str, str, int]]:
    """`(language, code, first line number)` of every fenced block."""
    return [(m.group(1), m.group(2), text[: m.start()].count("\n") + 2)
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def shell_commands(code: str) -> list[str]:
    return [line for line in (raw.strip() for raw in code.splitlines()) if line and not line.startswith("#")]


def apply_shell_rules(line: str, box) -> tuple[str | None, str | None]:
    """The command to run for `line` (None: excluded) and the reason of the rule that changed it (None: as written)."""
    for rule in SHELL_RULES:
        match = re.match(rule.pattern, line)
        if match:
            rule.used.append(line)
            return (None if rule.rewrite is None else rule.rewrite(match, line, box)), rule.reason
    return line, None


def apply_python_rules(code: str, box) -> str:
    for rule in PYTHON_RULES:
        match = re.search(rule.pattern, code)
        if match:
            rule.used.append(code)
            code = rule.rewrite(match, code, box)
    return code


def check_all_rules_used(rules) -> None:
    unused = [rule.pattern for rule in rules if not rule.used]
    assert not unused, f"rules that match no command any more (update tests/readme_commands.py): {unused}"


def example_header_commands(config: Path) -> list[str]:
    """The commands a config's header comment gives (`#   command`), in order."""
    return [line[4:].strip() for line in config.read_text().splitlines()
            if line.startswith("#   ") and re.match(r"(python|onegen|accelerate) ", line[4:].strip())]


class Sandbox:
    """A working folder that looks like the checkout to the commands (examples/, hub_scripts/, benchmarks/ linked),
    with a tiny base model, its own ONEGEN_CACHE, and the repository's Debian download cache."""

    def __init__(self, root: Path):
        from onegen_model_tester import OneGenModelTester

        from onegen.dataset_builders.debian_sources import default_debian_cache

        self.root, self.cache = root, root / "cache"
        self.debian_cache = default_debian_cache()  # before ONEGEN_CACHE points into the sandbox
        for name in ("examples", "hub_scripts", "benchmarks"):
            (root / name).symlink_to(REPO / name)
        OneGenModelTester("llama").save_base(root / "tiny-base")
        self.env = {**os.environ, "ONEGEN_CACHE": str(self.cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    "TOKENIZERS_PARALLELISM": "false",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(self, command: str, timeout: int = 900):
        import subprocess

        return subprocess.run(["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)


def _check_installed(arguments: list[str]) -> int:
    """`pip install` arguments -> exit status 0 when every named distribution is installed at an admitted version."""
    import importlib.metadata

    from packaging.requirements import Requirement

    missing = []
    for argument in arguments:
        if argument.startswith("-"):
            continue
        requirement = Requirement(argument)
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{argument}: not installed")
            continue
        if not requirement.specifier.contains(version.split("+")[0], prereleases=True):
            missing.append(f"{argument}: {version} is installed")
    print("\n".join(missing) or "installed: " + " ".join(a for a in arguments if not a.startswith("-")))
    return 1 if missing else 0


if __name__ == "__main__" and sys.argv[1:2] == ["check-installed"]:
    sys.exit(_check_installed(sys.argv[2:]))
