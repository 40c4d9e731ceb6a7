"""Smaller usability fixes: onegen's loggers follow transformers' verbosity, `onegen train --help` shows OneGen's
options first, the pipeline says when a generation will be cut at the context, Hub cards name Hub ids only, and the
push script answers a missing argument with a usage error."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_helpers import DOCS, PipelineModelTester
from transformers import logging as hf_logging
from transformers import pipeline
from transformers.testing_utils import CaptureLogger


HUB_SCRIPTS = Path(__file__).resolve().parents[1] / "hub_scripts"


def test_onegen_loggers_follow_transformers_verbosity():
    import onegen  # noqa: F401
    from onegen.trainers import data

    before = hf_logging.get_verbosity()
    try:
        hf_logging.set_verbosity_error()
        assert not data.logger.isEnabledFor(logging.WARNING)
        assert not logging.getLogger("onegen.hub_scripts").isEnabledFor(logging.WARNING)
        hf_logging.set_verbosity_info()
        assert data.logger.isEnabledFor(logging.INFO)
    finally:
        hf_logging.set_verbosity(before)
    with CaptureLogger(data.logger) as captured:
        data.logger.warning("visible at the default verbosity")
    assert "visible" in captured.out


def test_train_help_shows_the_onegen_options_first():
    result = subprocess.run([sys.executable, "-m", "onegen.cli", "train", "--help"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("usage: onegen train [--config CONFIG.yaml]") and len(lines[0]) < 120
    titles = [line for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    assert titles == ["options:", "OneGen data and tokens:", "OneGen training:", "Model:", "Trainer:"]
    first_trainer_line = lines.index("Trainer:")
    for option in ("--train_file", "--retrieval_mode {insert,link}", "--loss_type", "--n_neg_per_pos",
                   "--merge_adapter", "--use_peft", "--lora_r"):
        position = next(i for i, line in enumerate(lines) if line.lstrip().startswith(option))
        assert position < first_trainer_line, option
    assert next(i for i, line in enumerate(lines) if line.lstrip().startswith("--learning_rate")) > first_trainer_line


def test_pipeline_warns_once_when_the_length_passes_the_context():
    model, tokenizer = PipelineModelTester().get_model()  # context: 256 positions
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=DOCS)
    logger = logging.getLogger("onegen.pipelines.pipeline_onegen")
    with CaptureLogger(logger) as captured:
        rag("the capital of france is", max_new_tokens=20)
    assert captured.out == ""
    with CaptureLogger(logger) as captured:
        out = rag("the capital of france is", max_new_tokens=300, return_tensors=True)
        rag("a dog", max_new_tokens=400)
    assert captured.out.count("passes the model's context of 256 tokens") == 1, captured.out
    assert "plus max_new_tokens=300" in captured.out
    prompt_length = len(tokenizer("the capital of france is").input_ids)
    assert len(out["generated_token_ids"]) <= 256 - prompt_length  # cut at the context, as the warning said


def test_model_cards_name_hub_ids_only(tmp_path):
    from model_card import build_model_card, hub_model_id

    model, _ = PipelineModelTester().get_model()
    for local in ("/root/.cache/onegen/smollm2-135m-instruct", "./runs/base", "~/models/base", str(tmp_path)):
        assert hub_model_id(local) is None
        assert build_model_card("org/onegen", model.config, [], base_model=local).data.base_model is None
    assert hub_model_id("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = build_model_card("org/onegen", model.config, [], base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    both, _ = PipelineModelTester().get_model(continuation_token="[C]")  # the tokens of both modes
    assert '- Retrieval mode: `insert` (and `link`: `retrieval_mode="link"` in a pipeline call)' in str(
        build_model_card("org/onegen", both.config, []))


@pytest.mark.parametrize("argv,message", [
    (["--repo_id", "org/x"], "the following arguments are required: --model_dir"),
    (["--repo_id", "org/x", "--model_dir", "/no/such/model"], "'/no/such/model' is not a saved model folder"),
])
def test_push_model_argument_mistakes_are_usage_errors(argv, message):
    result = subprocess.run([sys.executable, str(HUB_SCRIPTS / "push_model.py"), *argv], capture_output=True,
                            text=True, timeout=300, cwd=HUB_SCRIPTS)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
