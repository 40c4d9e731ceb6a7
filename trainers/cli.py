# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen train` / `accelerate launch -m onegen.trainers.cli --config cfg.yaml`.

Arguments come from three dataclasses (TRL's `TrlParser`: every field is a flag and a YAML key of `--config`):
[`OneGenScriptArguments`] (data and tokens), [`OneGenTrainingConfig`] and TRL's `ModelConfig` (model path, dtype,
LoRA settings with `use_peft`). A plain causal LM is turned into a OneGen model with the tokens given here; an
existing OneGen model keeps its own. With `use_peft`, the saved model is the adapter merged into a full model unless
`merge_adapter: false`. Data paths, the output folder and the options are checked before the model is loaded.
"""

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging

from onegen.configuration_onegen import RETRIEVAL_MODES


logger = logging.get_logger(__name__)

DEFAULT_MODEL = "default"


@dataclass
class OneGenScriptArguments:
    train_file: str = field(metadata={"help": "OneGen train.jsonl: a path, or a Hub dataset `org/name/file.jsonl`."})
    corpus_file: str = field(metadata={"help": "OneGen db.jsonl (the documents the positives point to)."})
    eval_file: str | None = field(default=None, metadata={"help": "Optional evaluation file in the train format."})
    query_token: str = field(default="[RQ]", metadata={"help": "Query token added to a plain base model."})
    doc_token: str = field(default="[RD]", metadata={"help": "Document token added to a plain base model."})
    context_start_token: str | None = field(default=None, metadata={"help": "Tag opening an inserted document."})
    context_end_token: str | None = field(default=None, metadata={"help": "Tag closing an inserted document."})
    continuation_token: str | None = field(default=None, metadata={"help": "Token forced after a query token (link)."})
    retrieval_mode: str = field(
        default="insert", metadata={"help": "insert (R->G) or link (G->R).", "choices": list(RETRIEVAL_MODES)}
    )

    def __post_init__(self):
        # argparse checks `choices` on the command line only, not on values that come from the YAML config.
        if self.retrieval_mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval_mode must be one of {RETRIEVAL_MODES}, got {self.retrieval_mode!r}")


def make_parser():
    from trl import ModelConfig, TrlParser

    from .onegen_config import OneGenTrainingConfig

    parser = TrlParser(
        (OneGenScriptArguments, OneGenTrainingConfig, ModelConfig), prog="onegen train",
        usage="onegen train [--config CONFIG.yaml] --train_file TRAIN --corpus_file CORPUS [option ...]",
        description="Fine-tune a causal LM (or a OneGen model) with OneGenTrainer. Every option is also a key of the "
                    "YAML --config; command-line options override it.",
    )
    _group_options(parser, OneGenTrainingConfig, ModelConfig)
    return parser


def _group_options(parser, config_class, model_class) -> None:
    """Print OneGen's own options first, in groups, and the 150-odd `TrainingArguments` options last (HfArgumentParser
    puts every field in one flat list, where the OneGen ones are lost)."""
    from transformers import TrainingArguments

    def names(cls):
        return {f.name for f in dataclasses.fields(cls)}

    trainer_fields = names(TrainingArguments)
    groups = [
        ("OneGen data and tokens", None, names(OneGenScriptArguments)),
        ("OneGen training", "The loss, the sampling of negatives, preprocessing and saving (OneGenTrainingConfig).",
         names(config_class) - trainer_fields),
        ("Model", "The model to train and its LoRA settings (TRL's ModelConfig; LoRA with --use_peft).",
         names(model_class)),
        ("Trainer", "Every transformers.TrainingArguments option (see its documentation).", trainer_fields),
    ]
    general = parser._optionals  # -h, --config, and (so far) every field
    ordered = []
    for title, description, dests in groups:
        group = parser.add_argument_group(title, description)
        moved = [action for action in general._group_actions if action.dest in dests]
        for action in moved:
            general._group_actions.remove(action)
            group._group_actions.append(action)
        ordered.append(group)
    parser._action_groups = [g for g in parser._action_groups if g not in ordered] + ordered


def check_paths(script_args, training_args, model_args) -> dict:
    """Resolve the data files and check the model path and the output folder before anything is loaded: a
    missing file should not surface after the model has loaded (or as a Hub lookup). Returns the local data paths."""
    from onegen.file_utils import check_replaceable

    from .data import resolve_data_file
    from .onegen_trainer import MODEL_MARKERS, is_run_output

    files = {"train": script_args.train_file, "corpus": script_args.corpus_file, "eval": script_args.eval_file}
    resolved = {name: str(resolve_data_file(spec, name)) for name, spec in files.items() if spec}
    path = model_args.model_name_or_path
    if path not in (None, DEFAULT_MODEL) and not Path(path).exists() and (
        os.path.isabs(path) or path.startswith((".", "~")) or Path(path.split("/")[0]).is_dir()
    ):
        raise FileNotFoundError(f"model_name_or_path {path!r} does not exist (no folder at {Path(path).resolve()})")
    if training_args.should_save:
        check_replaceable(training_args.output_dir, MODEL_MARKERS, "OneGen model", keep=is_run_output)
    return resolved


def load_model(script_args: OneGenScriptArguments, model_args):
    """The OneGen model and tokenizer to train: `model_name_or_path` is a OneGen model, a plain causal LM, or
    `default` (the embedded SmolLM2-135M-Instruct)."""
    from onegen import OneGenForCausalLM, load_default_base_model

    trust_remote_code = getattr(model_args, "trust_remote_code", False)
    kwargs = {"dtype": model_args.dtype or "auto", "revision": model_args.model_revision,
              "trust_remote_code": trust_remote_code}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.model_name_or_path in (None, DEFAULT_MODEL):
        model, tokenizer = load_default_base_model(dtype=kwargs["dtype"])
    else:
        model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision,
                                                  trust_remote_code=trust_remote_code)
    if getattr(model.config, "model_type", None) != "onegen":
        tags = (script_args.context_start_token, script_args.context_end_token)
        model = OneGenForCausalLM.from_base_model(
            model, tokenizer, query_token=script_args.query_token, doc_token=script_args.doc_token,
            context_tags=tags if all(tags) else None, continuation_token=script_args.continuation_token,
            retrieval_mode=script_args.retrieval_mode,
        )
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    from trl import get_peft_config

    from .onegen_config import check_launch
    from .onegen_trainer import OneGenTrainer

    script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    check_launch(training_args)
    files = check_paths(script_args, training_args, model_args)
    if training_args.merge_adapter is None:
        training_args.merge_adapter = True  # the CLI's output loads like any model; `merge_adapter: false` keeps LoRA
    model, tokenizer = load_model(script_args, model_args)
    peft_config = get_peft_config(model_args)
    trainer = OneGenTrainer(
        model, training_args, train_dataset=files["train"], corpus=files["corpus"], eval_dataset=files.get("eval"),
        processing_class=tokenizer, peft_config=peft_config,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)  # model (or adapter), tokenizer, code and card, atomically
    if trainer.is_world_process_zero():
        what = "OneGen model" if peft_config is None else (
            "OneGen model (LoRA merged)" if training_args.merge_adapter
            else "LoRA adapter and its untrained OneGen model")
        logger.warning(f"Saved the {what} to {training_args.output_dir}")
    # Leave the process group explicitly, in this order. Left to interpreter teardown, a gloo rank can abort
    # ("terminate called without an active exception"). Destroyed while the DDP wrapper still holds it, the group
    # dies with the wrapper, under the GIL, joining a gloo worker that needs the GIL to free the tensors of the
    # last all-gather: a deadlock (seen once). So: every process past its last collective (the wait releases the
    # GIL, the workers finish), the wrapper freed while the group is still registered, then the group destroyed.
    accelerator = trainer.accelerator
    accelerator.wait_for_everyone()
    del trainer
    accelerator.free_memory()
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
