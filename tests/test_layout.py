"""The direction of imports between the package's parts, read from the source with `ast` (nothing is imported).

The model (`modeling_onegen/`, import name `onegen`) is at the bottom: the trainer, the pipeline, the evaluation
(with the demo) and the dataset builders are built on it, so nothing under `modeling_onegen/` may import them. The
one exception is the registration in `onegen/__init__.py` (the auto classes and the "onegen-rag" pipeline).
"""

import ast
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
# Source folder -> import name, as setup.cfg's package_dir maps them.
PACKAGES = {"modeling_onegen": "onegen", "trainers": "onegen.trainers", "pipelines": "onegen.pipelines",
            "evaluation": "onegen.evaluation", "dataset_builders": "onegen.dataset_builders"}
BUILT_ON_THE_MODEL = ("onegen.trainers", "onegen.pipelines", "onegen.evaluation", "onegen.dataset_builders")


def _module_name(path: Path) -> tuple[str, bool]:
    """The import name of a source file, and whether it is a package's `__init__.py`."""
    folder, *rest = path.relative_to(REPO).with_suffix("").parts
    parts = [PACKAGES[folder], *rest]
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative imports resolved against its package)."""
    name, is_package = _module_name(path)
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import pipelines`
    return found


def _imports_under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _sources(folder: str):
    return sorted((REPO / folder).rglob("*.py"))


def test_module_names_resolve_like_setup_cfg():
    assert _module_name(REPO / "modeling_onegen" / "__init__.py") == ("onegen", True)
    assert _module_name(REPO / "evaluation" / "demo.py") == ("onegen.evaluation.demo", False)
    assert "onegen.pipelines" in imported_modules(REPO / "modeling_onegen" / "__init__.py")


@pytest.mark.parametrize("path", [p for p in _sources("modeling_onegen") if p.name != "__init__.py"
                                  or p.parent != REPO / "modeling_onegen"], ids=lambda p: str(p.relative_to(REPO)))
def test_the_model_imports_nothing_built_on_it(path):
    wrong = sorted(m for m in imported_modules(path) if _imports_under(m, BUILT_ON_THE_MODEL))
    assert not wrong, (f"{path.relative_to(REPO)} imports {wrong}: the model must not import the parts built on it "
                       "(only the registration in onegen/__init__.py may)")


@pytest.mark.parametrize("folder,forbidden", [
    ("pipelines", ("onegen.trainers", "onegen.evaluation", "onegen.dataset_builders")),
    ("dataset_builders", ("onegen.trainers", "onegen.pipelines", "onegen.evaluation")),
    ("trainers", ("onegen.evaluation", "onegen.dataset_builders")),
])
def test_one_direction_between_the_parts(folder, forbidden):
    wrong = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p) if _imports_under(m, forbidden))
             for p in _sources(folder)}
    assert not {k: v for k, v in wrong.items() if v}


def test_installed_code_does_not_reach_into_the_checkout():
    """The package runs from a wheel: no path to the checkout's scripts (hub_scripts/, benchmarks/, tests/)."""
    for folder in PACKAGES:
        for path in _sources(folder):
            text = path.read_text(encoding="utf-8")
            for script_folder in ("hub_scripts/", "benchmarks/", "tests/"):
                assert f'"{script_folder}' not in text and f"'{script_folder}" not in text, (path, script_folder)
            assert "parents[1]" not in text, path
