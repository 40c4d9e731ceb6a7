# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen-HF: one causal LM that retrieves while it generates (OneGen, EMNLP 2024 Findings), on the HF stack.

Importing `onegen` registers `OneGenConfig` / `OneGenForCausalLM` with the transformers auto classes, so saved
OneGen models load with `AutoModelForCausalLM.from_pretrained(path)` without remote code.
"""

import logging as _logging

from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging as _hf_logging

from .configuration_onegen import OneGenConfig
from .default_model import DEFAULT_BASE_MODEL_NAME, load_default_base_model
from .modeling_onegen import OneGenCausalLMOutputWithPast, OneGenForCausalLM, RetrievalVectors
from .pipelines import DocumentIndex, OneGenRAGPipeline  # after the model: pipelines depend on it, not the reverse
from .pipelines.pipeline_onegen import save_pipeline_code as _save_pipeline_code


__version__ = "0.1.0"

AutoConfig.register(OneGenConfig.model_type, OneGenConfig, exist_ok=True)
AutoModelForCausalLM.register(OneGenConfig, OneGenForCausalLM, exist_ok=True)
# pt_model must be a transformers attribute (resolved by name when loading remote code); auto_map picks OneGen.
PIPELINE_REGISTRY.register_pipeline("onegen-rag", pipeline_class=OneGenRAGPipeline, pt_model=AutoModelForCausalLM)
# With the package installed, `OneGenForCausalLM.save_pretrained` also writes the pipeline's code (remote code has
# no pipeline package to write it from); the model's own file cannot import `pipelines`.
OneGenForCausalLM._pipeline_code_writer = staticmethod(_save_pipeline_code)


def _follow_transformers_verbosity() -> None:
    """Put the `onegen` loggers under transformers' verbosity (`transformers.logging.set_verbosity_error()`,
    `TRANSFORMERS_VERBOSITY`): the `onegen` logger becomes a child of transformers' library root logger, whose level
    it inherits. Its lines print with an `[onegen]` prefix through a handler of its own and do not propagate, as
    transformers' do not; in CI (where transformers propagates to the root logger) they go through transformers'."""
    library_root = _hf_logging.get_logger()  # also configures transformers' root logger once
    onegen_logger = _logging.getLogger(__name__)
    if onegen_logger.parent is library_root:
        return
    onegen_logger.parent = library_root  # levels are looked up through parents; "onegen" has none of its own
    onegen_logger.setLevel(_logging.NOTSET)
    if not library_root.propagate:
        handler = _logging.StreamHandler()
        handler.setFormatter(_logging.Formatter("[onegen] %(message)s"))
        onegen_logger.addHandler(handler)
        onegen_logger.propagate = False


_follow_transformers_verbosity()

__all__ = [
    "DEFAULT_BASE_MODEL_NAME",
    "DocumentIndex",
    "OneGenCausalLMOutputWithPast",
    "OneGenConfig",
    "OneGenForCausalLM",
    "OneGenRAGPipeline",
    "RetrievalVectors",
    "load_default_base_model",
]
