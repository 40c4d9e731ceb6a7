"""transformers' own common test mixins (`ModelTesterMixin`, `ConfigTester`) for the installed transformers version.

They are not in the wheel, only in the sdist on PyPI. `load()` downloads that sdist once with pip, extracts
`tests/test_modeling_common.py`, `tests/test_configuration_common.py` and the modules of transformers' `tests/`
tree that they import, and caches them as the package `transformers_tests` in a folder per version:
`~/.cache/onegen/transformers-tests/<version>/`, or the folder named by `ONEGEN_TRANSFORMERS_TESTS_DIR`. Nothing
of transformers' test code is kept in this repository.

The sdist does not ship every module those two files import (5.24: `tests/exporters/`, `tests/generation/` and
`tests/utils/` are missing). Each missing one is replaced by a small stub from `STUBS` below, so the tests that need
it are lost, not faked: a stubbed mixin has no tests, and the stub says so (`ONEGEN_STUB = True`). An import that
is neither in the sdist nor in `STUBS` makes `load()` fail with its name.
"""

import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers


PACKAGE = "transformers_tests"
ENTRY_MODULES = ("test_modeling_common", "test_configuration_common")
# Modules of transformers' `tests/` tree imported by the entry modules but absent from the sdist.
STUBS = {
    "exporters.test_export": '''\
"""Stub (OneGen): tests/exporters/ is not in the transformers sdist, so ModelTesterMixin runs without export tests."""
ONEGEN_STUB = True


class ExportTesterMixin:
    pass
''',
    "generation.test_utils": '''\
"""Stub (OneGen): tests/generation/ is not in the transformers sdist. This class has no tests; a test class that
inherits it would only pretend to run the generation tests, so OneGen's tests check `ONEGEN_STUB` and do not."""
ONEGEN_STUB = True


class GenerationTesterMixin:
    pass
''',
    "utils.test_configuration_utils": '''\
"""Stub (OneGen): tests/utils/ is not in the transformers sdist. `config_common_kwargs` is only read by
`ConfigTester.check_config_arguments_init`, which returns early for composite configs such as OneGenConfig; any
other use fails loudly instead of checking nothing."""
from collections.abc import Mapping

ONEGEN_STUB = True


class _Missing(Mapping):
    def _fail(self, *args, **kwargs):
        raise RuntimeError("config_common_kwargs (tests/utils/test_configuration_utils.py) is not in the sdist")

    __getitem__ = __iter__ = __len__ = keys = _fail


config_common_kwargs = _Missing()
''',
}
_RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.([\w.]+)\s+import", re.MULTILINE)


class CommonTestsUnavailable(RuntimeError):
    pass


def cache_dir(version: str | None = None) -> Path:
    """Folder holding the `transformers_tests` package of `version` (default: the installed transformers)."""
    if os.environ.get("ONEGEN_TRANSFORMERS_TESTS_DIR"):
        return Path(os.environ["ONEGEN_TRANSFORMERS_TESTS_DIR"]).expanduser()
    return Path.home() / ".cache" / "onegen" / "transformers-tests" / (version or transformers.__version__)


def _download_sdist(version: str, into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--disable-pip-version-check",
        "--quiet", f"transformers=={version}", "-d", str(into),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CommonTestsUnavailable(f"`{' '.join(command)}` did not run: {error}") from error
    archives = sorted(into.glob("transformers-*.tar.gz"))
    if result.returncode != 0 or not archives:
        raise CommonTestsUnavailable(
            f"Could not download the transformers {version} sdist, which holds transformers' common model tests "
            f"(`{' '.join(command)}` exited with {result.returncode}):\n{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return archives[0]


def _extract(archive: Path, package_dir: Path) -> None:
    """Write the entry modules and, recursively, the `tests/` modules they import into `package_dir`."""
    with tarfile.open(archive) as tar:
        # "transformers-5.24.0/tests/x/y.py" -> "x/y.py"; regular files only, so nothing can escape `package_dir`.
        members = {}
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isfile() and len(parts) > 2 and parts[1] == "tests":
                members["/".join(parts[2:])] = member
        pending, done = list(ENTRY_MODULES), set()
        while pending:
            module = pending.pop()
            if module in done:
                continue
            done.add(module)
            relative = module.replace(".", "/") + ".py"
            if relative in members:
                source = tar.extractfile(members[relative]).read().decode("utf-8")
            elif module in STUBS:
                source = STUBS[module]
            else:
                raise CommonTestsUnavailable(
                    f"transformers' tests/{relative} is imported by the common tests but is neither in the sdist nor "
                    "stubbed in tests/transformers_common.py (STUBS)"
                )
            path = package_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
            pending.extend(_RELATIVE_IMPORT.findall(source))
    # Every folder on the way is a package (the relative imports need it); transformers' own __init__.py is empty.
    for folder in [package_dir, *[p for p in package_dir.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()


def ensure(version: str | None = None) -> Path:
    """Make sure the cache folder of `version` holds the common tests; return that folder (to put on `sys.path`)."""
    version = version or transformers.__version__
    target = cache_dir(version)
    stamp = target / "VERSION"
    if stamp.is_file():
        cached = stamp.read_text().strip()
        if cached != version:
            raise CommonTestsUnavailable(
                f"{target} holds the common tests of transformers {cached}, but {version} is installed; point "
                "ONEGEN_TRANSFORMERS_TESTS_DIR elsewhere or delete that folder"
            )
        return target
    if target.exists() and any(target.iterdir()):
        raise CommonTestsUnavailable(f"{target} exists but is not a transformers tests cache (no VERSION file)")
    if re.search(r"dev|\+", version):
        raise CommonTestsUnavailable(
            f"transformers {version} is not a release on PyPI, so its sdist (with the common tests) cannot be "
            "downloaded; point ONEGEN_TRANSFORMERS_TESTS_DIR at a folder holding a `VERSION` file and a "
            f"`{PACKAGE}` package made from that checkout's tests/"
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    # Build everything next to the target, then rename: a concurrent or interrupted run never sees a half cache.
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        archive = _download_sdist(version, scratch / "download")
        build = scratch / "build"
        _extract(archive, build / PACKAGE)
        (build / "VERSION").write_text(version + "\n")
        try:
            if target.exists():
                target.rmdir()  # empty (checked above); os.replace wants it gone or empty
            os.replace(build, target)
        except OSError:
            if not (target / "VERSION").is_file():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def load():
    """Import and return `(test_modeling_common, test_configuration_common)` of the installed transformers."""
    try:
        import parameterized  # noqa: F401  (test_modeling_common needs it; it is not a transformers dependency)
    except ImportError as error:
        raise CommonTestsUnavailable("transformers' common tests need `parameterized`: pip install parameterized") from error
    folder = str(ensure())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return tuple(importlib.import_module(f"{PACKAGE}.{name}") for name in ENTRY_MODULES)


def is_stub(module_or_class) -> bool:
    """Whether a module or class of `transformers_tests` is one of the stubs above (it has no tests)."""
    module = sys.modules.get(getattr(module_or_class, "__module__", ""), module_or_class)
    return bool(getattr(module, "ONEGEN_STUB", False))
