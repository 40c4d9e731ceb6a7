# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Configuration of [`OneGenTrainer`], TRL-style: a `TrainingArguments` dataclass with help metadata."""

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.training_args import ParallelMode
from transformers.utils import logging


logger = logging.get_logger(__name__)

LOSS_TYPES = ("bpr", "infonce")


def _has_accelerator() -> bool:
    """Whether torch sees a device that `accelerate launch` would give each process (CUDA, XPU, NPU, ...)."""
    import torch
    from transformers.utils import (
        is_torch_hpu_available,
        is_torch_mlu_available,
        is_torch_musa_available,
        is_torch_npu_available,
        is_torch_xpu_available,
    )

    return torch.cuda.is_available() or any(
        check() for check in (is_torch_xpu_available, is_torch_npu_available, is_torch_mlu_available,
                              is_torch_musa_available, is_torch_hpu_available)
    )


def check_launch(args: TrainingArguments) -> None:
    """Refuse a process that was launched as one of several (`WORLD_SIZE` > 1, set by `accelerate launch` /
    `torchrun`) but would train alone: N such processes run N independent trainings that overwrite one output
    folder. (The transformers warning about `parallel_mode` is the only other trace of it.)"""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size > 1 and args.parallel_mode != ParallelMode.DISTRIBUTED:
        raise RuntimeError(
            f"This process (RANK {os.environ.get('RANK', '?')} of WORLD_SIZE {world_size}) was launched with "
            f"{world_size - 1} others but trains alone: no distributed backend joined them (parallel_mode "
            f"{args.parallel_mode.value}). On a machine without GPUs pass `use_cpu: true` and `ddp_backend: gloo` "
            "(YAML) or `--use_cpu --ddp_backend gloo`; with GPUs, check that torch sees them."
        )


@dataclass
class OneGenTrainingConfig(TrainingArguments):
    r"""
    Configuration class for [`OneGenTrainer`].

    Every field is also a command-line flag of `onegen train` (and a key of its YAML `--config`). Only the
    parameters specific to OneGen are listed here; see [`~transformers.TrainingArguments`] for the rest.

    > Parameters that control the loss

    loss_type (`str`, defaults to `"bpr"`):
        Contrastive loss on the retrieval tokens: `"bpr"` (pairwise, each anchor against its own negatives; the
        paper's choice) or `"infonce"` (cross-entropy over every document of the batch, in-batch negatives).
    contrastive_temperature (`float`, defaults to `0.05`):
        Temperature dividing cosine similarities in both losses. The original used 0.02 for InfoNCE and none for BPR
        (its BPR compared non-normalised scores); on cosine similarity, which lies in [-1, 1], BPR needs one too.
    lambda_gen (`float`, defaults to `1.0`) and lambda_ret (`float`, defaults to `1.0`):
        Weights of the generation (cross-entropy) and retrieval (contrastive) losses.
    gather_across_devices (`bool`, defaults to `False`):
        InfoNCE only: gather the documents of every process (autograd-aware all-gather) so each anchor sees all of
        them as negatives.

    > Parameters that control the sampling of positives and negatives

    n_pos_per_sent (`int`, defaults to `1`):
        Query-token occurrences of one example used as anchors per step (sampled when there are more).
    n_neg_per_pos (`int`, defaults to `4`):
        Negatives per anchor: its hard negatives first, then random documents when `random_negatives`.
    random_negatives (`bool`, defaults to `True`):
        Fill missing negatives with random corpus documents (never a positive of the batch).

    > Parameters that control data preprocessing

    pack_documents (`bool`, defaults to `True`):
        Pack a step's documents several to a row, each with its own positions and a block-diagonal causal mask
        (same vectors as a row each, a fraction of the padded compute; needs a model whose attention masks come from
        transformers' mask builders, as every model in the library's auto classes does).
    max_length (`int` or `None`, defaults to `1024`):
        Training examples are right-truncated to this many tokens (query tokens past it lose their supervision).
    doc_max_length (`int` or `None`, defaults to `512`):
        Documents are truncated to this many tokens, keeping every document token.
    use_chat_template (`bool`, defaults to `True`):
        Render `messages` with the tokenizer's chat template when it has one; otherwise (or with `False`) the
        contents are concatenated as they are, as the original's `DocumentTemplator` does. Documents are always
        rendered as plain concatenated text, exactly as `model.encode_documents` and `DocumentIndex` render them.
    dataset_num_proc (`int` or `None`, defaults to `None`):
        Processes for tokenising the datasets.

    > Parameters that control saving

    merge_adapter (`bool` or `None`, defaults to `None`):
        With LoRA (`peft_config`), what `save_model` writes. `True`: the adapter merged into a full OneGen model, which
        loads like any other (`AutoModelForCausalLM`, `pipeline("onegen-rag")`, remote code). `False`: the adapter,
        recording as `base_model_name_or_path` the untrained OneGen model it applies to (the model's own path when it
        was loaded from one, else a copy saved in `base_model/` inside the output folder), so that
        `AutoModelForCausalLM.from_pretrained(folder)`, `AutoPeftModelForCausalLM.from_pretrained(folder)` and
        `pipeline("onegen-rag", model=folder)` load the trained model in one call. `None`: `False` for
        `OneGenTrainer` (as TRL's trainers), `True` for `onegen train`. Ignored without LoRA.

    On a machine without GPUs, a multi-process launch (`accelerate launch --num_processes N`, `WORLD_SIZE` > 1)
    trains on the CPU with the `gloo` backend (`use_cpu` and `ddp_backend` are set for it).
    """

    loss_type: str = field(
        default="bpr", metadata={"help": "Contrastive loss on retrieval tokens.", "choices": list(LOSS_TYPES)}
    )
    contrastive_temperature: float = field(
        default=0.05, metadata={"help": "Temperature dividing cosine similarities in the contrastive loss."}
    )
    lambda_gen: float = field(default=1.0, metadata={"help": "Weight of the generation (cross-entropy) loss."})
    lambda_ret: float = field(default=1.0, metadata={"help": "Weight of the retrieval (contrastive) loss."})
    gather_across_devices: bool = field(
        default=False,
        metadata={"help": "InfoNCE: use the documents of all processes as negatives (autograd-aware all-gather)."},
    )
    n_pos_per_sent: int = field(default=1, metadata={"help": "Anchors (query-token occurrences) per example."})
    n_neg_per_pos: int = field(default=4, metadata={"help": "Negatives per anchor: hard ones first, then random."})
    random_negatives: bool = field(
        default=True, metadata={"help": "Fill missing negatives with random corpus documents."}
    )
    pack_documents: bool = field(
        default=True, metadata={"help": "Pack a step's documents several to a row (block-diagonal mask): less padding."}
    )
    max_length: int | None = field(default=1024, metadata={"help": "Maximum tokens of a training example."})
    doc_max_length: int | None = field(
        default=512, metadata={"help": "Maximum tokens of a document (document tokens are always kept)."}
    )
    use_chat_template: bool = field(
        default=True, metadata={"help": "Render training messages with the tokenizer's chat template if it has one."}
    )
    dataset_num_proc: int | None = field(default=None, metadata={"help": "Processes for dataset tokenisation."})
    merge_adapter: bool | None = field(
        default=None,
        metadata={"help": "LoRA: save the adapter merged into a full model (true) or the adapter with its untrained "
                          "base (false). Default: false for OneGenTrainer, true for `onegen train`."},
    )

    # TRL-style defaults that differ from TrainingArguments.
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps (a float < 1 is a ratio)."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Initial AdamW learning rate (paper: 2e-5 QA, 5e-6 EL)."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the OneGen columns."}
    )

    def __post_init__(self):
        deepspeed = self.deepspeed or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and not self.use_cpu and not deepspeed \
                and not _has_accelerator():
            # `accelerate launch` with a GPU config (examples/accelerate/ddp.yaml) on a CPU-only machine: without
            # these, each process would train alone (see `check_launch`).
            self.use_cpu, self.ddp_backend = True, self.ddp_backend or "gloo"
            logger.warning(f"{os.environ['WORLD_SIZE']} processes and no GPU: training on the CPU, the processes "
                           f"joined by the {self.ddp_backend!r} backend (use_cpu=True)")
        super().__post_init__()
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"OneGenTrainingConfig.loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.contrastive_temperature <= 0:
            raise ValueError(f"contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        if self.n_pos_per_sent < 1 or self.n_neg_per_pos < 0:
            raise ValueError(
                f"n_pos_per_sent must be >= 1 and n_neg_per_pos >= 0, got {self.n_pos_per_sent}, {self.n_neg_per_pos}"
            )
        if self.gather_across_devices and self.loss_type != "infonce":
            raise ValueError("gather_across_devices applies to loss_type='infonce' only")
