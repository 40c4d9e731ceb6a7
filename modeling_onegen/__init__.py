# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen-HF: one causal LM that retrieves while it generates (OneGen, EMNLP 2024 Findings), on the HF stack.

Importing `onegen` registers `OneGenConfig` / `OneGenForCausalLM` with the transformers auto classes, so saved
OneGen models load with `AutoModelForCausalLM.from_pretrained(path)` without remote code, and registers the
"onegen-rag" pipeline.

The import is cheap (about 1 s: `transformers`' own lazy top level, no torch): every public name is loaded on first
access, as transformers' lazy modules do, and each registration runs the moment the transformers module it
registers with is imported (`transformers.models.auto.configuration_auto` for `AutoConfig`, `...modeling_auto` for
`AutoModelForCausalLM`, `transformers.pipelines` for "onegen-rag"). So `AutoModelForCausalLM.from_pretrained(path)`
and `pipeline("onegen-rag", ...)` work right after `import onegen`, and `onegen --help` starts at once.
"""

import functools
import importlib
import importlib.abc
import importlib.util
import logging as _logging
import sys

from transformers.utils import logging as _hf_logging


__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access. `onegen.pipelines` is the one part built on
# the model that this package names (registration only; `tests/test_layout.py` guards the rule).
_LAZY_ATTRIBUTES = {
    "OneGenConfig": "onegen.configuration_onegen",
    "OneGenForCausalLM": "onegen.modeling_onegen",
    "OneGenCausalLMOutputWithPast": "onegen.modeling_onegen",
    "RetrievalVectors": "onegen.modeling_onegen",
    "DEFAULT_BASE_MODEL_NAME": "onegen.default_model",
    "load_default_base_model": "onegen.default_model",
    "DocumentIndex": "onegen.pipelines",
    "OneGenRAGPipeline": "onegen.pipelines",
}


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


def _register_config() -> None:
    from transformers import AutoConfig

    from .configuration_onegen import OneGenConfig

    AutoConfig.register(OneGenConfig.model_type, OneGenConfig, exist_ok=True)


def _register_model() -> None:
    from transformers import AutoModelForCausalLM

    from .configuration_onegen import OneGenConfig
    from .modeling_onegen import OneGenForCausalLM

    AutoModelForCausalLM.register(OneGenConfig, OneGenForCausalLM, exist_ok=True)
    OneGenForCausalLM._pipeline_code_writer = staticmethod(_save_pipeline_code)


def _register_pipeline() -> None:
    from transformers import AutoModelForCausalLM
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipelines import OneGenRAGPipeline

    # pt_model must be a transformers attribute (resolved by name when loading remote code); auto_map picks OneGen.
    PIPELINE_REGISTRY.register_pipeline("onegen-rag", pipeline_class=OneGenRAGPipeline, pt_model=AutoModelForCausalLM)


# Each registration: (the transformers module it registers with, the onegen module it needs, what it runs). It runs
# once both have finished loading, whichever is imported first: an onegen module may import the transformers one
# half-way through its own import (then it runs when the onegen module finishes), and a transformers module
# imported first pulls the onegen module in.
_REGISTRATIONS = [
    ("transformers.models.auto.configuration_auto", "onegen.configuration_onegen", _register_config),
    ("transformers.models.auto.modeling_auto", "onegen.modeling_onegen", _register_model),
    ("transformers.pipelines", "onegen.pipelines", _register_pipeline),
]
_loaded: set[str] = set()
_done: set[int] = set()


def _on_loaded(module_name: str) -> None:
    _loaded.add(module_name)
    for number, (theirs, ours, register) in enumerate(_REGISTRATIONS):
        if number in _done or module_name not in (theirs, ours):
            continue
        if theirs in _loaded and ours in _loaded:
            _done.add(number)
            register()
        elif theirs in _loaded and ours not in sys.modules:  # not being imported: import it; its hook registers
            importlib.import_module(ours)


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


def _install_registrations() -> None:
    watched = [name for theirs, ours, _ in _REGISTRATIONS for name in (theirs, ours)]
    for name in watched:
        if name in sys.modules:
            _loaded.add(name)
        elif not any(isinstance(f, _AfterImport) and f.module_name == name for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport(name, functools.partial(_on_loaded, name)))
    for theirs, _, _ in _REGISTRATIONS:  # transformers modules imported before onegen: register now
        if theirs in _loaded:
            _on_loaded(theirs)


_install_registrations()


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
