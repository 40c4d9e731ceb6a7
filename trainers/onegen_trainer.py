# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`OneGenTrainer`: a `transformers.Trainer` that trains generation and retrieval in one forward pass."""

import copy
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Dataset
from huggingface_hub import ModelCard, ModelCardData
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback
from transformers.utils import logging

from onegen.modeling_onegen import OneGenForCausalLM

from .collator import OneGenDataCollator
from .data import load_corpus, load_train_examples
from .losses import BPRLoss, InfoNCELoss
from .onegen_config import OneGenTrainingConfig
from .tokenization import tokenize_document, tokenize_example


logger = logging.get_logger(__name__)

_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A [OneGen](https://arxiv.org/abs/2409.05152) model: one causal LM that retrieves while it generates, fine-tuned
from `{{ base_model }}` with `OneGenTrainer` ([OneGen-HF](https://pypi.org/project/onegen-hf/)).

| setting | value |
|---|---|
| retrieval mode | `{{ retrieval_mode }}` |
| tokens | {{ tokens }} |
| loss | `{{ lambda_gen }} * CE + {{ lambda_ret }} * {{ loss_type }}` (temperature {{ temperature }}) |
| negatives per anchor | {{ n_neg_per_pos }} |

## Usage

```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

model = AutoModelForCausalLM.from_pretrained("{{ repo_id }}", trust_remote_code=True, revision="<commit>")
tokenizer = AutoTokenizer.from_pretrained("{{ repo_id }}", trust_remote_code=True, revision="<commit>")
vectors = model.encode_documents(["Paris is the capital of France."], tokenizer)
```

## Citation

```bibtex
{{ citation }}
```
"""


class _EpochToCollator(TrainerCallback):
    """Tells the collator the epoch, so negative sampling differs per epoch yet is reproducible on resume."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(state.epoch or 0)


class OneGenTrainer(Trainer):
    r"""
    Trainer for OneGen: `lambda_gen * cross-entropy + lambda_ret * contrastive` on a [`OneGenForCausalLM`].

    Each micro-batch is one backbone forward over the generation rows and the unique documents their anchors
    need; vocabulary logits are computed only at labelled positions, so documents never pay for the LM head.

    Args:
        model (`str` or `PreTrainedModel`): a OneGen model or its path (build one from a base model with
            [`OneGenForCausalLM.from_base_model`]).
        args ([`OneGenTrainingConfig`], *optional*).
        train_dataset: `train.jsonl` path, Hub dataset id `org/name[/file]`, or a `Dataset` / list of records in
            the original OneGen train format (chat `messages`, assistant turns with `positive` / `negative`).
        corpus: `db.jsonl` path, Hub id, or `Dataset` / list of `{"uid", "messages"}` records.
        eval_dataset (*optional*): as `train_dataset`; evaluated against the same corpus.
        processing_class: the model's tokenizer (loaded from the model's path when omitted).
        peft_config (`peft.PeftConfig`, *optional*): wrap the model with PEFT; the new token rows are made
            trainable (`trainable_token_indices`) so the model can learn to emit and embed them.
    """

    _tag_names = ["onegen", "retrieval", "text-generation"]
    _name = "OneGen"
    _paper = {
        "title": "OneGen: Efficient One-Pass Unified Generation and Retrieval for LLMs",
        "id": "2409.05152",
        "citation": (
            "@inproceedings{zhang2024onegen,\n  title={OneGen: Efficient One-Pass Unified Generation and Retrieval "
            "for LLMs},\n  author={Zhang, Jintian and Peng, Cheng and Sun, Mengshu and Chen, Xiang and Liang, Lei and "
            "Zhang, Zhiqiang and Zhou, Jun and Chen, Huajun and Zhang, Ningyu},\n  booktitle={Findings of EMNLP},\n"
            "  year={2024}\n}"
        ),
    }
    # Both losses are per-micro-batch means: the Trainer divides them by the gradient accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model,
        args: OneGenTrainingConfig | None = None,
        train_dataset=None,
        corpus=None,
        eval_dataset=None,
        processing_class=None,
        peft_config=None,
        callbacks=None,
        optimizers=(None, None),
        **kwargs,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = OneGenTrainingConfig(f"{Path(str(name)).name or 'model'}-OneGen")
        if isinstance(model, (str, os.PathLike)):
            model = AutoModelForCausalLM.from_pretrained(model)
        onegen_model = self._onegen_model(model)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(onegen_model.config._name_or_path)
        onegen_model.check_tokenizer(processing_class)
        if train_dataset is None or corpus is None:
            raise ValueError("OneGenTrainer needs a train_dataset and the corpus its positives point to")
        if peft_config is not None:
            model = self._wrap_peft(model, onegen_model, peft_config, args)

        config = onegen_model.config
        with args.main_process_first(desc="tokenizing the OneGen corpus and datasets"):
            corpus = self._prepare_corpus(corpus, processing_class, config, args)
            train_dataset = self._prepare_dataset(train_dataset, "train", corpus, processing_class, config, args)
            if eval_dataset is not None:
                eval_dataset = self._prepare_dataset(eval_dataset, "eval", corpus, processing_class, config, args)
        collator = OneGenDataCollator(
            corpus_input_ids=corpus["input_ids"],
            corpus_vector_positions=corpus["vector_positions"],
            corpus_uids=corpus["uid"],
            pad_token_id=processing_class.pad_token_id,
            n_pos_per_sent=args.n_pos_per_sent,
            n_neg_per_pos=args.n_neg_per_pos,
            random_negatives=args.random_negatives,
            seed=args.seed,
        )
        callbacks = [*(callbacks or []), _EpochToCollator(collator)]
        super().__init__(
            model=model, args=args, data_collator=collator, train_dataset=train_dataset, eval_dataset=eval_dataset,
            processing_class=processing_class, callbacks=callbacks, optimizers=optimizers, **kwargs,
        )
        if self.args.n_gpu > 1:
            raise ValueError("OneGenTrainer does not support nn.DataParallel; launch with `accelerate launch` instead")
        self.model_accepts_loss_kwargs = False  # the loss is computed here, not normalised by num_items_in_batch
        self.can_return_loss = True
        self.label_names = []
        self.corpus = corpus
        if args.loss_type == "bpr":
            self.retrieval_loss = BPRLoss(args.contrastive_temperature)
        else:
            self.retrieval_loss = InfoNCELoss(args.contrastive_temperature, args.gather_across_devices)
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._total_train_tokens = 0
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ---------------------------------------------------------------------------------------------------------
    # Set-up
    # ---------------------------------------------------------------------------------------------------------
    @staticmethod
    def _onegen_model(model) -> OneGenForCausalLM:
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        if getattr(inner.config, "model_type", None) != "onegen" or getattr(inner.config, "query_token_id", None) is None:
            raise TypeError(
                f"OneGenTrainer needs a OneGen model with its tokens, got {type(inner).__name__}; build one with "
                "OneGenForCausalLM.from_base_model(base_model, tokenizer)"
            )
        return inner

    @staticmethod
    def _wrap_peft(model, onegen_model, peft_config, args):
        from peft import PeftModel, get_peft_model

        if isinstance(model, PeftModel):
            raise ValueError("Pass either a PeftModel or a peft_config, not both")
        peft_config = copy.deepcopy(peft_config)
        if getattr(peft_config, "trainable_token_indices", "absent") is None:
            # The new tokens' rows must train (to embed and to be emitted) while the rest stays frozen.
            ids = sorted(onegen_model.config.special_token_ids.values())
            names = {module: name.rsplit(".", 1)[-1] for name, module in onegen_model.named_modules()}
            embeddings, head = onegen_model.get_input_embeddings(), onegen_model.get_output_embeddings()
            peft_config.trainable_token_indices = {names[embeddings]: ids}
            if head is not None and head.weight is not embeddings.weight:
                if getattr(head, "bias", None) is None:
                    peft_config.trainable_token_indices[names[head]] = ids
                else:
                    peft_config.modules_to_save = [*(peft_config.modules_to_save or []), names[head]]
        if args.gradient_checkpointing:
            onegen_model.enable_input_require_grads()
        return get_peft_model(model, peft_config)

    @staticmethod
    def _prepare_corpus(corpus, tokenizer, config, args) -> Dataset:
        if not (isinstance(corpus, Dataset) and "vector_positions" in corpus.column_names):
            corpus = load_corpus(corpus, config.doc_token, name="corpus")
            corpus = corpus.map(
                lambda row: tokenize_document(row["messages"], tokenizer, config, args.doc_max_length,
                                              where=f"corpus document {row['uid']!r}"),
                num_proc=args.dataset_num_proc, desc="Tokenizing corpus",
            )
        return corpus

    @staticmethod
    def _prepare_dataset(dataset, name, corpus, tokenizer, config, args) -> Dataset:
        if isinstance(dataset, Dataset) and "anchor_positions" in dataset.column_names:
            return dataset
        dataset = load_train_examples(dataset, config.query_token, corpus, name=name)
        return dataset.map(
            lambda row: tokenize_example(row["messages"], tokenizer, config, args.use_chat_template, args.max_length),
            num_proc=args.dataset_num_proc, desc=f"Tokenizing {name} dataset",
        )

    # ---------------------------------------------------------------------------------------------------------
    # Loss and logging
    # ---------------------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        num_anchors = inputs["positive_index"].shape[0]
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            labels=inputs["labels"],
            retrieval_positions=inputs["retrieval_positions"],
            return_logits=False,
            use_cache=False,
        )
        embeddings = outputs.retrieval_embeddings.float()
        loss_ret, accuracy = self.retrieval_loss(
            embeddings[:num_anchors], embeddings[num_anchors:], inputs["positive_index"], inputs["negative_index"],
            **({"document_ids": inputs["document_ids"], "positive_ids": inputs["positive_ids"]}
               if isinstance(self.retrieval_loss, InfoNCELoss) else {}),
        )
        loss_gen = outputs.loss
        loss = self.args.lambda_gen * loss_gen + self.args.lambda_ret * loss_ret

        metrics = self._metrics[mode]
        gather = self.accelerator.gather
        metrics["loss_gen"].append(gather(loss_gen.detach()).mean().item())
        metrics["loss_ret"].append(gather(loss_ret.detach()).mean().item())
        anchors = gather(torch.tensor([float(num_anchors)], device=loss.device))
        if anchors.sum() > 0:  # accuracy over every process's anchors
            correct = gather((accuracy.detach() * num_anchors).reshape(1))
            metrics["retrieval_accuracy"].append((correct.sum() / anchors.sum()).item())
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum().reshape(1)).sum().item()
            metrics["num_tokens"] = [self._total_train_tokens]
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Only the loss and the logged metrics matter: do not accumulate hidden states across evaluation batches.
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {key: sum(values) / len(values) for key, values in self._metrics[mode].items() if values}
        if mode == "eval":
            metrics = {f"eval_{key}": value for key, value in metrics.items()}
        logs.update(metrics)
        super().log(logs, start_time)
        self._metrics[mode].clear()

    # ---------------------------------------------------------------------------------------------------------
    # Saving
    # ---------------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            checkpoint = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            self.create_model_card(output_dir=checkpoint)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        super().save_model(output_dir, _internal_call)
        if not _internal_call and self.args.should_save:
            self.create_model_card(output_dir=output_dir or self.args.output_dir)

    def create_model_card(self, output_dir=None, model_name: str | None = None, dataset_name: str | None = None):
        """Write `README.md` (a huggingface_hub `ModelCard`) into `output_dir` (default: `args.output_dir`)."""
        config = self._onegen_model(self.accelerator.unwrap_model(self.model)).config
        output_dir = Path(output_dir or self.args.output_dir)
        model_name = model_name or output_dir.name
        base_model = config.text_config._name_or_path or None
        card_data = ModelCardData(
            base_model=base_model if base_model and not os.path.isdir(base_model) else None,
            library_name="transformers", pipeline_tag="text-generation",
            tags=[*self._tag_names, *(["peft"] if hasattr(self.model, "peft_config") else [])],
            datasets=[dataset_name] if dataset_name else None,
        )
        card = ModelCard.from_template(
            card_data, template_str=_CARD_TEMPLATE, model_name=model_name, base_model=base_model or "a causal LM",
            repo_id=f"<user>/{model_name}", retrieval_mode=config.retrieval_mode,
            tokens=", ".join(f"`{token}`" for token in config.special_tokens.values()),
            lambda_gen=self.args.lambda_gen, lambda_ret=self.args.lambda_ret, loss_type=self.args.loss_type,
            temperature=self.args.contrastive_temperature, n_neg_per_pos=self.args.n_neg_per_pos,
            citation=self._paper["citation"],
        )
        output_dir.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=output_dir, prefix=".README-", suffix=".md")
        os.close(handle)
        try:
            card.save(tmp)
            os.replace(tmp, output_dir / "README.md")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
