# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen-HF: one causal LM that retrieves while it generates (OneGen, EMNLP 2024 Findings), on the HF stack.

Importing `onegen` registers `OneGenConfig` / `OneGenForCausalLM` with the transformers auto classes, so saved
OneGen models load with `AutoModelForCausalLM.from_pretrained(path)` without remote code, and registers the
"onegen-rag" pipeline.

The import stays cheap: the pipeline side (`DocumentIndex`, `OneGenRAGPipeline`, and transformers' own
`transformers.pipelines`, about 2 s) loads only when it is used. `onegen.DocumentIndex` imports it on first access
(as transformers' lazy modules do), and "onegen-rag" is registered the moment `transformers.pipelines` is imported
(by `from transformers import pipeline`, or by anything else), so `pipeline("onegen-rag", ...)` works right after
`import onegen`.
"""

import functools
import importlib
import importlib.abc
import importlib.util
import logging as _logging
import sys

from transformers import AutoConfig, AutoModelForCausalLM
from transformers.utils import logging as _hf_logging

from .configuration_onegen import OneGenConfig
from .default_model import DEFAULT_BASE_MODEL_NAME, load_default_base_model
from .modeling_onegen import OneGenCausalLMOutputWithPast, OneGenForCausalLM, RetrievalVectors


__version__ = "0.1.0"

AutoConfig.register(OneGenConfig.model_type, OneGenConfig, exist_ok=True)
AutoModelForCausalLM.register(OneGenConfig, OneGenForCausalLM, exist_ok=True)

# The one place the model reaches up to the pipeline built on it (registration only; `tests/test_layout.py` guards
# the rule): public names that live in `onegen.pipelines`, imported on first access.
_LAZY_ATTRIBUTES = {"DocumentIndex": "onegen.pipelines", "OneGenRAGPipeline": "onegen.pipelines"}


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRIBUTES))


def _save_pipeline_code(save_directory) -> None:
    """With the package installed, `OneGenForCausalLM.save_pretrained` also writes the pipeline's code (remote code
    has no pipeline package to write it from); the model's own file cannot import `pipelines`."""
    from .pipelines.pipeline_onegen import save_pipeline_code

    save_pipeline_code(save_directory)


OneGenForCausalLM._pipeline_code_writer = staticmethod(_save_pipeline_code)


def _register_pipeline() -> None:
    """Register "onegen-rag" with transformers' pipeline registry (both pipeline modules are loaded by then)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipelines import OneGenRAGPipeline

    # pt_model must be a transformers attribute (resolved by name when loading remote code); auto_map picks OneGen.
    PIPELINE_REGISTRY.register_pipeline("onegen-rag", pipeline_class=OneGenRAGPipeline, pt_model=AutoModelForCausalLM)


# "onegen-rag" is registered once both `transformers.pipelines` and `onegen.pipelines` have finished loading,
# whichever is imported first (`onegen.pipelines` imports `transformers.pipelines` half-way through its own import).
_PIPELINE_MODULES = ("transformers.pipelines", "onegen.pipelines")
_loaded: set[str] = set()
_registered = False


def _on_loaded(module_name: str) -> None:
    global _registered
    _loaded.add(module_name)
    if _registered:
        return
    if "onegen.pipelines" not in _loaded:
        if "onegen.pipelines" not in sys.modules:  # not being imported: import it; its own hook registers
            importlib.import_module("onegen.pipelines")
        return  # being imported: it registers when it finishes
    if "transformers.pipelines" in _loaded:
        _registered = True
        _register_pipeline()


class _ThenLoader(importlib.abc.Loader):
    """A module loader that runs `then()` once the module has executed; every other attribute is the wrapped
    loader's (`get_source`, `get_data`, ...)."""

    def __init__(self, loader, then):
        self._loader, self._then = loader, then

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._then()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """A one-shot import hook: when `module_name` is first imported, `then()` runs right after it executes."""

    def __init__(self, module_name: str, then):
        self.module_name, self.then = module_name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)  # one shot; and the real finders below now find the spec
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self.then)
        return spec


for _name in _PIPELINE_MODULES:
    if _name in sys.modules:
        _loaded.add(_name)
    else:
        sys.meta_path.insert(0, _AfterImport(_name, functools.partial(_on_loaded, _name)))
if "transformers.pipelines" in _loaded:  # imported before onegen: register now
    _on_loaded("transformers.pipelines")


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
