# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Files and folders that readers never see half-written, and JSONL reading whose errors name the file and line.

Every writer of the package goes through here: a file or folder is written under a temporary name beside its
target, then renamed onto it (`os.replace`), so a crash leaves the old version or nothing, never a mix.

The Hub-facing files (the remote code copied next to saved models: `pipelines/document_index.py`, ...) keep private
copies of what they need: they may import only torch, transformers and the standard library.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and setting it back at once (not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def publishable_modes(folder: str | os.PathLike) -> None:
    """Give `folder` and everything in it the modes new files and folders get here (0755 / 0644 under umask 022):
    `mkdtemp` makes a folder 0700 and `mkstemp` a file 0600, which others on a shared machine could not read."""
    umask = current_umask()
    os.chmod(folder, 0o777 & ~umask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Yield a handle on a temporary file beside `path` (text `"w"` in UTF-8, or binary `"wb"`); when the block
    succeeds the file replaces `path`, when it fails it is deleted. The file gets a new file's mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename (see [`atomic_file`])."""
    with atomic_file(path) as file:
        file.write(text)


def write_json_atomically(path: str | os.PathLike, value) -> Path:
    """Write `value` as indented UTF-8 JSON (with a final newline) to `path` atomically; returns the path."""
    with atomic_file(path) as file:
        json.dump(value, file, indent=2, ensure_ascii=False)
        file.write("\n")
    return Path(path)


def check_replaceable(directory: str | os.PathLike, marker: str | tuple[str, ...] | None, what: str,
                      keep: Callable[[str], bool] | None = None) -> None:
    """Raise `FileExistsError` unless [`atomic_directory`] may replace `directory`: it does not exist, is empty, or
    holds a `marker` file (entries for which `keep(name)` is true aside). Without a marker any folder may be
    replaced. Call it early to fail before long work."""
    target = Path(directory)
    if marker is None or not target.exists():
        return
    markers = (marker,) if isinstance(marker, str) else tuple(marker)
    ours = [entry for entry in target.iterdir() if not (keep and keep(entry.name))] if target.is_dir() else None
    if ours is None or (ours and not any((target / name).is_file() for name in markers)):
        raise FileExistsError(f"{target} exists and is not a {what} folder ({' or '.join(markers)} is missing); "
                              "refusing to overwrite it")


@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike, marker: str | tuple[str, ...] | None = None, what: str = "",
                     keep: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder of `directory`; when the block succeeds it replaces `directory` (an existing
    folder is moved aside, then deleted), when it fails it is deleted. Readers see the old folder or the complete
    new one, never a half-written one.

    Args:
        marker: with a marker file name (or a tuple of them), a non-empty `directory` holding none of them is
            refused: it is not a `what` folder written earlier, and its files are not ours to delete.
        keep: `keep(name) -> bool` names entries of an existing `directory` that are not part of it (a trainer's
            `checkpoint-*` folders beside its saved model): ignored by the check above, moved into the new folder
            just before it replaces the old one, and moved back if that fails.
    """
    target = Path(directory)
    check_replaceable(target, marker, what, keep)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old, carried, swapped = None, [], False
    try:
        yield tmp
        publishable_modes(tmp)
        kept = sorted(entry.name for entry in target.iterdir() if keep(entry.name)) if keep and target.is_dir() else []
        clash = [name for name in kept if (tmp / name).exists()]
        if clash:
            raise FileExistsError(f"the new {what or 'folder'} holds {clash}, which {target} keeps from before")
        for name in kept:
            os.replace(target / name, tmp / name)
            carried.append(name)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        swapped = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if not swapped:  # put the old folder and what it keeps back where they were
            if old is not None and (old / "previous").exists() and not target.exists():
                os.replace(old / "previous", target)
            for name in carried:
                os.replace(tmp / name, target / name)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _parse_line(line: str, where, line_number: int, error: type[Exception]) -> dict | None:
    """The JSON object on one JSONL line (None for a blank line); `error` naming `where` and the line otherwise."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise error(f"{where}, line {line_number}: invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise error(f"{where}, line {line_number}: expected a JSON object, got {type(record).__name__}")
    return record


def parse_jsonl(text: str, where: str | os.PathLike,
                error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, record)` for every non-blank line of JSONL `text` read from `where`. A line that is not a
    JSON object raises `error` naming `where` and the line."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        if (record := _parse_line(line, where, line_number, error)) is not None:
            yield line_number, record


def iter_jsonl(path: str | os.PathLike, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, record)` from the JSONL file `path`, one line at a time (see [`parse_jsonl`])."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if (record := _parse_line(line, path, line_number, error)) is not None:
                yield line_number, record
