# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`OneGenTrainer`: a `transformers.Trainer` that trains generation and retrieval in one forward pass."""

import copy
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Dataset
from huggingface_hub import ModelCardData
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback
from transformers.utils import logging

from onegen.file_utils import atomic_directory, write_text_atomically
from onegen.modeling_onegen import OneGenForCausalLM
from onegen.pipelines.pipeline_onegen import save_pipeline_code

from .collator import OneGenDataCollator
from .data import load_corpus, load_train_examples
from .losses import BPRLoss, InfoNCELoss
from .model_card import PAPER_CITATION, hub_model_id, render_model_card
from .onegen_config import OneGenTrainingConfig, check_launch
from .tokenization import tokenize_document, tokenize_example


logger = logging.get_logger(__name__)

# A saved OneGen model folder holds one of these; `save_model` replaces such a folder as a whole.
MODEL_MARKERS = ("config.json", "adapter_config.json")
# Where an adapter's untrained OneGen model goes when it has no path of its own (inside the output folder).
BASE_MODEL_DIR = "base_model"
# Entries of an output folder that belong to the training run, not to the model saved there: kept by `save_model`.
_RUN_OUTPUTS = ("runs", "trainer_state.json", "all_results.json", "train_results.json", "eval_results.json")


def is_run_output(name: str) -> bool:
    """Whether an entry of `output_dir` is the training run's (checkpoints, logs, results), not the saved model's."""
    return name.startswith("checkpoint-") or name in _RUN_OUTPUTS


_UNSET = object()


def _is_peft_model(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


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
        "citation": PAPER_CITATION,
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
        check_launch(args)
        if isinstance(model, (str, os.PathLike)):
            model = AutoModelForCausalLM.from_pretrained(model)
        onegen_model = self._onegen_model(model)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(onegen_model.config._name_or_path)
        onegen_model.check_tokenizer(processing_class)
        if train_dataset is None or corpus is None:
            raise ValueError("OneGenTrainer needs a train_dataset and the corpus its positives point to")
        # LoRA leaves the base weights untouched: these references are the untrained OneGen model that a saved
        # adapter applies to (no copy is made; `save_model` writes it when the model has no path of its own).
        untrained_state = onegen_model.state_dict(keep_vars=True) if peft_config is not None else None
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
            pack_documents=args.pack_documents,
        )
        callbacks = [*(callbacks or []), _EpochToCollator(collator)]
        use_cache = onegen_model.config.__dict__.get("use_cache", _UNSET)
        super().__init__(
            model=model, args=args, data_collator=collator, train_dataset=train_dataset, eval_dataset=eval_dataset,
            processing_class=processing_class, callbacks=callbacks, optimizers=optimizers, **kwargs,
        )
        # Trainer sets `config.use_cache = args.use_cache` (False), which saved models would keep; every forward here
        # passes `use_cache=False` itself, so the config keeps what it had.
        if use_cache is _UNSET:
            onegen_model.config.__dict__.pop("use_cache", None)
        else:
            onegen_model.config.use_cache = use_cache
        self._untrained_state = untrained_state
        if _is_peft_model(self.model):
            self._check_adapter_saving()
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
        # Packed documents (`position_ids` restarting per document) need no attention mask: rows are right-padded, so
        # the causal mask alone keeps every real token off the padding.
        packed = "position_ids" in inputs
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=None if packed else inputs["attention_mask"],
            position_ids=inputs["position_ids"] if packed else None,
            labels=inputs["labels"],
            retrieval_positions=inputs["retrieval_positions"],
            return_logits=False,
            use_cache=False,
        )
        embeddings = outputs.retrieval_embeddings  # the loss scores in float32
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
        """Save the trained OneGen model to `output_dir` (default `args.output_dir`), loadable in one call as a model
        (`AutoModelForCausalLM.from_pretrained`, also as remote code) and as a pipeline (`pipeline("onegen-rag",
        model=output_dir)`): weights or adapter (see `OneGenTrainingConfig.merge_adapter`), tokenizer, the model's
        and the pipeline's code, `training_args.json` and a model card.

        The folder is written beside `output_dir` and moved into place when complete, so an interrupted save leaves
        the previous model (or nothing), never a mix; the run's `checkpoint-*` folders and logs stay where they are.
        A folder that is neither a model nor a run's output is refused. Checkpoints (`_internal_call`) are written by
        the Trainer as usual."""
        if _internal_call:
            return super().save_model(output_dir, _internal_call=True)
        output_dir = Path(output_dir or self.args.output_dir)
        peft = _is_peft_model(self.accelerator.unwrap_model(self.model))
        if not self.args.should_save:
            if not peft:
                super().save_model(str(output_dir), _internal_call=True)  # sharded models gather on every process
            return
        with atomic_directory(output_dir, MODEL_MARKERS, what="OneGen model", keep=is_run_output) as tmp:
            if peft:
                self._save_adapter_or_merged(tmp, output_dir)
            else:
                super().save_model(str(tmp), _internal_call=True)
                save_pipeline_code(tmp)
            # The Trainer's `training_args.bin` is a pickle: published folders get the same arguments as JSON.
            (tmp / "training_args.bin").unlink(missing_ok=True)
            write_text_atomically(tmp / "training_args.json", self.args.to_json_string() + "\n")
            self.create_model_card(output_dir=tmp, model_name=output_dir.name)
        logger.info(f"Saved the OneGen model to {output_dir}")
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _check_adapter_saving(self) -> None:
        """Fail before training when the adapter could not be saved in a loadable form."""
        peft_model = self.accelerator.unwrap_model(self.model)
        if self._untrained_state is None and self._adapter_base_path(peft_model) is None:
            logger.warning(
                "OneGenTrainer got a PeftModel whose adapter records no base model (base_model_name_or_path): "
                "save_model will refuse to save it. Pass the OneGen model with peft_config=... instead."
            )
        if (self.is_deepspeed_enabled or self.is_fsdp_enabled) and (
            self.args.merge_adapter or self._adapter_base_path(peft_model) is None
        ):
            raise ValueError(
                "With LoRA under DeepSpeed or FSDP the weights are sharded, so save_model can neither merge the "
                "adapter nor save the untrained model it applies to: save the OneGen model first "
                "(model.save_pretrained(dir)), train from that folder (model_name_or_path: dir), and set "
                "merge_adapter: false; merge afterwards with "
                "PeftModel.from_pretrained(base, adapter).merge_and_unload()."
            )

    @staticmethod
    def _adapter_base_path(peft_model) -> str | None:
        """The path or Hub id the adapter's untrained OneGen model loads from, when it has one (it was loaded with
        `from_pretrained`); None for a model built in this process (`from_base_model`)."""
        names = {config.base_model_name_or_path for config in peft_model.peft_config.values()}
        name = names.pop() if len(names) == 1 else None
        if not name:
            return None
        return os.path.abspath(name) if os.path.isdir(name) else name

    def _save_untrained_model(self, folder: Path) -> None:
        """Write the untrained OneGen model (what the adapter applies to) as a complete model folder."""
        onegen_model = self._onegen_model(self.accelerator.unwrap_model(self.model))
        state = {name: tensor.detach() for name, tensor in self._untrained_state.items()}
        onegen_model.save_pretrained(folder, state_dict=state)
        self.processing_class.save_pretrained(folder)
        save_pipeline_code(folder)

    def _write_adapter(self, folder: Path, base_path: str) -> None:
        """`adapter_config.json` + adapter weights, recording `base_path` and the causal-LM task (so that
        `AutoPeftModelForCausalLM` loads the base through `AutoModelForCausalLM`)."""
        peft_model = self.accelerator.unwrap_model(self.model)
        before = {name: (c.base_model_name_or_path, c.task_type) for name, c in peft_model.peft_config.items()}
        try:
            for config in peft_model.peft_config.values():
                config.base_model_name_or_path, config.task_type = base_path, config.task_type or "CAUSAL_LM"
            # The embeddings were resized before wrapping, so the base folder already holds them at full size.
            peft_model.save_pretrained(str(folder), save_embedding_layers=False)
        finally:
            for name, (base, task) in before.items():
                peft_model.peft_config[name].base_model_name_or_path = base
                peft_model.peft_config[name].task_type = task

    def _save_adapter_or_merged(self, folder: Path, final_dir: Path) -> None:
        """Write the LoRA run into `folder` (to become `final_dir`): merged, or the adapter and its base."""
        peft_model = self.accelerator.unwrap_model(self.model)
        base_path = self._adapter_base_path(peft_model)
        if base_path is None and self._untrained_state is None:
            raise ValueError(
                "Cannot save a loadable adapter: the PeftModel given to OneGenTrainer records no base model "
                "(base_model_name_or_path is empty). Save the untrained OneGen model, set "
                "model.peft_config['default'].base_model_name_or_path to its folder, or pass peft_config= instead."
            )
        if not self.args.merge_adapter:
            if base_path is None:
                self._save_untrained_model(folder / BASE_MODEL_DIR)
                base_path = str(final_dir.resolve() / BASE_MODEL_DIR)  # where it will be once the folder is moved
            self._write_adapter(folder, base_path)
            self.processing_class.save_pretrained(folder)
            return
        # Merge through the saved adapter, loaded on the CPU beside the training model (which stays as it is).
        from peft import PeftModel

        with tempfile.TemporaryDirectory(dir=folder, prefix=".merge-") as scratch:
            if base_path is None:
                base_path = str(Path(scratch) / BASE_MODEL_DIR)
                self._save_untrained_model(Path(base_path))
            self._write_adapter(Path(scratch) / "adapter", base_path)
            base = AutoModelForCausalLM.from_pretrained(base_path)
            merged = PeftModel.from_pretrained(base, str(Path(scratch) / "adapter")).merge_and_unload()
        merged.save_pretrained(folder)
        self.processing_class.save_pretrained(folder)
        save_pipeline_code(folder)

    def create_model_card(self, output_dir=None, model_name: str | None = None,
                          dataset_name: str | list[str] | None = None):
        """Write `README.md` (a huggingface_hub `ModelCard`) into `output_dir` (default: `args.output_dir`);
        `dataset_name`: the Hub id of the training dataset, or a list of them (a model trained on several)."""
        config = self._onegen_model(self.accelerator.unwrap_model(self.model)).config
        output_dir = Path(output_dir or self.args.output_dir)
        model_name = model_name or output_dir.name
        base_model = config.text_config._name_or_path or None
        card_data = ModelCardData(
            base_model=hub_model_id(base_model),
            library_name="transformers", pipeline_tag="text-generation",
            tags=[*self._tag_names, *(["peft"] if hasattr(self.model, "peft_config") else [])],
            datasets=[dataset_name] if isinstance(dataset_name, str) else dataset_name or None,
        )
        training = {
            "loss": f"`{self.args.lambda_gen} * CE + {self.args.lambda_ret} * {self.args.loss_type}` (temperature "
                    f"{self.args.contrastive_temperature})",
            "negatives per anchor": self.args.n_neg_per_pos,
            "adapter": "LoRA (PEFT)" if hasattr(self.model, "peft_config") else "none (full fine-tuning)",
        }
        card = render_model_card(card_data, config, model_name=model_name, repo_id=f"<user>/{model_name}",
                                 revision="<commit>", base_model=base_model or "a causal LM", training=training,
                                 citation=self._paper["citation"])
        output_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(output_dir / "README.md", str(card))
