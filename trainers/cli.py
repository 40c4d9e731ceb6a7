# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen train` / `accelerate launch -m onegen.trainers.cli --config cfg.yaml`.

Arguments come from three dataclasses (TRL's `TrlParser`: every field is a flag and a YAML key of `--config`):
[`OneGenScriptArguments`] (data and tokens), [`OneGenTrainingConfig`] and TRL's `ModelConfig` (model path, dtype,
LoRA settings with `use_peft`). A plain causal LM is turned into a OneGen model with the tokens given here; an
existing OneGen model keeps its own.
"""

import sys
from dataclasses import dataclass, field

from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging


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
    retrieval_mode: str = field(default="insert", metadata={"help": "insert (R->G) or link (G->R)."})


def make_parser():
    from trl import ModelConfig, TrlParser

    from .onegen_config import OneGenTrainingConfig

    return TrlParser((OneGenScriptArguments, OneGenTrainingConfig, ModelConfig), prog="onegen train")


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

    from .onegen_trainer import OneGenTrainer

    script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    model, tokenizer = load_model(script_args, model_args)
    trainer = OneGenTrainer(
        model, training_args, train_dataset=script_args.train_file, corpus=script_args.corpus_file,
        eval_dataset=script_args.eval_file, processing_class=tokenizer, peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(training_args.output_dir)
        logger.warning(f"Saved the OneGen model to {training_args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
