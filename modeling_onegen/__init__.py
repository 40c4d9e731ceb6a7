# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen-HF: one causal LM that retrieves while it generates (OneGen, EMNLP 2024 Findings), on the HF stack.

Importing `onegen` registers `OneGenConfig` / `OneGenForCausalLM` with the transformers auto classes, so saved
OneGen models load with `AutoModelForCausalLM.from_pretrained(path)` without remote code.
"""

from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_onegen import OneGenConfig
from .default_model import DEFAULT_BASE_MODEL_NAME, load_default_base_model
from .modeling_onegen import OneGenCausalLMOutputWithPast, OneGenForCausalLM, RetrievalVectors
from .pipelines import DocumentIndex, OneGenRAGPipeline  # after the model: pipelines depend on it, not the reverse


__version__ = "0.1.0"

AutoConfig.register(OneGenConfig.model_type, OneGenConfig, exist_ok=True)
AutoModelForCausalLM.register(OneGenConfig, OneGenForCausalLM, exist_ok=True)
# pt_model must be a transformers attribute (resolved by name when loading remote code); auto_map picks OneGen.
PIPELINE_REGISTRY.register_pipeline("onegen-rag", pipeline_class=OneGenRAGPipeline, pt_model=AutoModelForCausalLM)

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
