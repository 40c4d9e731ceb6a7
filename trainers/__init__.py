# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen training: `OneGenTrainingConfig` + `OneGenTrainer` (TRL-style), the data collator and the losses."""

from .collator import OneGenDataCollator
from .data import OneGenDataError, OneGenDataFileNotFoundError, load_corpus, load_train_examples, resolve_data_file
from .losses import BPRLoss, InfoNCELoss
from .onegen_config import OneGenTrainingConfig
from .onegen_trainer import OneGenTrainer


__all__ = [
    "BPRLoss",
    "InfoNCELoss",
    "OneGenDataCollator",
    "OneGenDataError",
    "OneGenDataFileNotFoundError",
    "OneGenTrainer",
    "OneGenTrainingConfig",
    "load_corpus",
    "load_train_examples",
    "resolve_data_file",
]
