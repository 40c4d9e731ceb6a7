# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen.pipelines`: the "onegen-rag" pipeline (retrieval inside the decoding loop) and `DocumentIndex`.

The modules here are Hub-facing: they travel with saved models as the pipeline's remote code (see
`save_model_with_pipeline`), so they import only torch, transformers, the standard library and each other.
"""

from .decoding_onegen import OneGenGenerateOutput, onegen_generate
from .document_index import DocumentIndex, model_fingerprint
from .pipeline_onegen import OneGenRAGPipeline, save_model_with_pipeline, save_pipeline_code


__all__ = [
    "DocumentIndex",
    "OneGenGenerateOutput",
    "OneGenRAGPipeline",
    "model_fingerprint",
    "onegen_generate",
    "save_model_with_pipeline",
    "save_pipeline_code",
]
