# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen.pipelines`: the "onegen-rag" pipeline (retrieval inside the decoding loop) and `DocumentIndex`.

`pipeline_onegen.py`, `decoding_onegen.py`, `document_index.py`, `index_backends.py` and `index_files.py` are
Hub-facing: they travel with saved models as the pipeline's remote code (see `save_model_with_pipeline`), so they
import only torch, transformers, numpy, the standard library and each other (faiss and datasets inside `try`
blocks). The index builder (`index_builder.py`, `corpus_reader.py`, `index_cli.py`: `onegen index`) is not shipped
and may use accelerate and datasets freely; the shipped files never import it.
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
