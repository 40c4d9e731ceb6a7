# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Configuration of [`OneGenTrainer`], TRL-style: a `TrainingArguments` dataclass with help metadata."""

from dataclasses import dataclass, field

from transformers import TrainingArguments


LOSS_TYPES = ("bpr", "infonce")


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
    max_length: int | None = field(default=1024, metadata={"help": "Maximum tokens of a training example."})
    doc_max_length: int | None = field(
        default=512, metadata={"help": "Maximum tokens of a document (document tokens are always kept)."}
    )
    use_chat_template: bool = field(
        default=True, metadata={"help": "Render training messages with the tokenizer's chat template if it has one."}
    )
    dataset_num_proc: int | None = field(default=None, metadata={"help": "Processes for dataset tokenisation."})

    # TRL-style defaults that differ from TrainingArguments.
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps (a float < 1 is a ratio)."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Initial AdamW learning rate (paper: 2e-5 QA, 5e-6 EL)."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the OneGen columns."}
    )

    def __post_init__(self):
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
