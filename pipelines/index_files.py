# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Files of a saved `DocumentIndex`: atomic folders and files, the vectors file, the documents table.

Hub-facing file: it travels with saved models next to `document_index.py`, so it imports only torch,
numpy (a transformers dependency), the standard library and, inside `try` blocks or functions called only when
documents are read or written (remote-code loading must not demand them), `datasets` and its `pyarrow`.

- Vectors: one float32 tensor `"vectors"` of shape `(num_vectors, dim)` in a safetensors file. [`VectorsWriter`]
  writes it shard by shard (the total size is known before the first byte, so the header comes first and nothing is
  held in memory); [`map_vectors`] maps it without reading it (`torch.from_file`: pages come from the page cache on
  use, so resident memory stays what a search touches).
- Documents: one Arrow IPC stream file (`documents.arrow`, the format of `datasets`' cache files), written batch by
  batch by [`DocumentsWriter`] and opened memory-mapped as a `datasets.Dataset` by [`load_documents`]; one row per
  document with the columns of [`DOCUMENT_COLUMNS`].
"""

import contextlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import torch


VECTORS_KEY = "vectors"
# Columns of the documents table: the document id (all str or all int), its text, optional title (None when
# absent) and how many vectors (document tokens) it has. The model's `render_document` turns a row into the encoded
# text.
DOCUMENT_COLUMNS = ("id", "text", "title", "num_vectors")
_ALIGN = 8  # safetensors pads its header so that the data starts at a multiple of 8 bytes


def _need_datasets():
    """The `datasets` module, imported on first use (it takes most of a second, and `import onegen` must stay
    cheap); in a `try` block, so that remote-code loading does not demand it."""
    try:
        import datasets
    except ImportError:
        raise ImportError("DocumentIndex keeps its documents in Arrow through `datasets`: "
                          "pip install datasets") from None
    return datasets


def _need_pyarrow():
    """pyarrow (a `datasets` dependency), imported on first use inside a `try` block (see `_need_datasets`)."""
    try:
        import pyarrow
    except ImportError:
        raise ImportError(
            "DocumentIndex keeps its documents in Arrow: pip install datasets (it brings pyarrow)"
        ) from None
    return pyarrow


# ----------------------------------------------------------------------------------------------------------------
# Documents (Arrow through `datasets`)
# ----------------------------------------------------------------------------------------------------------------
def document_features(id_type: str):
    """The `datasets.Features` of the documents table; `id_type` is `"string"` or `"int64"`."""
    ds = _need_datasets()
    return ds.Features({"id": ds.Value(id_type), "text": ds.Value("string"), "title": ds.Value("string"),
                        "num_vectors": ds.Value("int32")})


def documents_table(rows: list[dict], num_vectors: list[int], id_type: str | None = None):
    """An in-memory `datasets.Dataset` of documents (`rows`: dicts with `id`, `text`, optional `title`)."""
    ds = _need_datasets()
    id_type = id_type or id_type_of([row["id"] for row in rows])
    columns = {"id": [row["id"] for row in rows], "text": [row["text"] for row in rows],
               "title": [row.get("title") or None for row in rows], "num_vectors": list(num_vectors)}
    return ds.Dataset.from_dict(columns, features=document_features(id_type))


def id_type_of(ids: list, where: str = "corpus", offset: int = 0) -> str:
    """`"int64"` when every id is an int, `"string"` when every id is a str; a clear error for a mix (rows are
    numbered from `offset` in it)."""
    first = None
    for i, value in enumerate(ids, offset):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{where} row {i}: 'id' must be a str or an int, got {type(value).__name__}")
        kind = "int" if isinstance(value, int) else "str"
        if first is None:
            first = (i, kind)
        elif kind != first[1]:
            raise ValueError(f"{where} row {i}: 'id' {value!r} is a {kind} but row {first[0]}'s is a {first[1]}; "
                             "ids must be all str or all int (an Arrow column has one type)")
    return "int64" if first is not None and first[1] == "int" else "string"


class _FileWriter:
    """Context-manager protocol of the writers below: `close()` (which checks the file is complete) on success,
    `_abandon()` (release the file, check nothing) when the block raised; the caller's atomic folder drops it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self._abandon()


class DocumentsWriter(_FileWriter):
    r"""
    Write a documents table to one Arrow IPC stream file (the format of `datasets`' own cache files, which
    `datasets.Dataset.from_file` memory-maps) piece by piece: `write(dataset)` appends a `datasets.Dataset`'s rows,
    `append_file(path)` the rows of another documents file, one record batch at a time, so nothing but a batch is in
    memory and one input file is open at a time. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, schema=None):
        pa = _need_pyarrow()
        self._pa, self.path, self.schema, self.rows = pa, Path(path), schema, 0
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = None

    def _write_batches(self, batches, schema) -> None:
        if self._writer is None:
            self.schema = self.schema or schema
            self._writer = self._pa.ipc.new_stream(self._sink, self.schema)
        elif not schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"documents with columns {schema} cannot follow documents with columns {self.schema}")
        for batch in batches:
            self._writer.write_batch(batch.cast(self.schema) if batch.schema != self.schema else batch)
            self.rows += batch.num_rows

    def write(self, table) -> None:
        """Append the rows of a documents `datasets.Dataset` (in memory or memory-mapped)."""
        if table._indices is not None:  # a selection or shuffle of another table: write the rows it shows
            table = table.flatten_indices()
        self._write_batches(table.data.to_batches(max_chunksize=10_000), table.data.schema)

    def append_file(self, path: str | os.PathLike) -> None:
        """Append the rows of a documents file written by this class."""
        with self._pa.memory_map(str(path)) as source:
            reader = self._pa.ipc.open_stream(source)
            self._write_batches(reader, reader.schema)

    def close(self) -> None:
        if self._writer is None:
            raise ValueError("DocumentsWriter: no documents were written")
        self._writer.close()
        self._sink.close()

    def _abandon(self) -> None:
        self._sink.close()


def save_documents(table, path: Path) -> None:
    """Write a documents `datasets.Dataset` (Arrow, possibly memory-mapped) to the file `path`."""
    with DocumentsWriter(path) as writer:
        writer.write(table)


def documents_schema_of(path: str | os.PathLike):
    """The Arrow schema of a documents file (reading its header only)."""
    pa = _need_pyarrow()
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).schema


def load_documents(path: Path, expected_rows: int | None = None):
    """Open a documents file memory-mapped (`datasets.Dataset.from_file`: the texts stay on disk); raise
    `FileNotFoundError` when it is missing, `ValueError` when it is unreadable or not a documents table."""
    ds = _need_datasets()
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} (the documents) is missing")
    try:
        table = ds.Dataset.from_file(str(path), in_memory=False)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError ... by damage
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(f"{path.name} is not a readable documents table ({reason})") from None
    missing = [c for c in DOCUMENT_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {missing}")
    if expected_rows is not None and len(table) != expected_rows:
        raise ValueError(f"{path.name} holds {len(table)} documents but the config says {expected_rows}")
    return table


def read_documents_v1(path: Path) -> list[dict]:
    """Rows of a format-1 documents file (`documents.jsonl` or `.parquet`: `id`, `text`, optional `title`,
    `num_vectors`), read into memory to convert the index. Errors name the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    if path.suffix == ".parquet":
        table = _need_datasets().Dataset.from_parquet(str(path), keep_in_memory=True).to_dict()
        return [{"id": json.loads(i), "text": t, **({"title": ti} if ti else {}), "num_vectors": n}
                for i, t, ti, n in zip(table["id"], table["text"], table["title"], table["num_vectors"])]
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {line_number}: not valid JSON ({error})") from None
            for field in ("id", "text", "num_vectors"):
                if field not in row:
                    raise ValueError(f"{path}, line {line_number}: missing field {field!r}")
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Vectors (one safetensors tensor, written in pieces, mapped on read)
# ----------------------------------------------------------------------------------------------------------------
class VectorsWriter(_FileWriter):
    r"""
    Write a `(num_vectors, dim)` float32 safetensors file piece by piece, in order, without holding the vectors: the
    header (which names the final shape) is written first, then each `write(block)` appends raw rows. The file is
    a plain safetensors file: `safetensors.torch.load_file(path)["vectors"]` reads it back. Use as a context manager;
    the file is complete only when exactly `num_vectors` rows were written (else `close` raises).
    """

    def __init__(self, path: str | os.PathLike, num_vectors: int, dim: int):
        self.path, self.num_vectors, self.dim, self.written = Path(path), int(num_vectors), int(dim), 0
        header = {VECTORS_KEY: {"dtype": "F32", "shape": [self.num_vectors, self.dim],
                                "data_offsets": [0, self.num_vectors * self.dim * 4]}}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-(8 + len(text)) % _ALIGN)
        self._file = open(self.path, "wb")
        self._file.write(struct.pack("<Q", len(text)) + text)

    def write(self, block: torch.Tensor) -> None:
        """Append `block` (`(n, dim)`, any float dtype; stored as float32)."""
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"VectorsWriter: a block of shape {tuple(block.shape)} does not fit dim {self.dim}")
        if self.written + block.shape[0] > self.num_vectors:
            raise ValueError(f"VectorsWriter: more than the announced {self.num_vectors} vectors")
        self._file.write(block.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
        self.written += block.shape[0]

    def close(self) -> None:
        self._file.close()
        if self.written != self.num_vectors:
            raise ValueError(f"VectorsWriter: {self.written} vectors written, {self.num_vectors} announced")

    def _abandon(self) -> None:
        self._file.close()


def _vectors_header(path: Path) -> tuple[int, list[int]]:
    """`(data_offset, shape)` of the `"vectors"` tensor of a safetensors file."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError("too short to be a safetensors file")
        (size,) = struct.unpack("<Q", prefix)
        if size > 100_000_000:
            raise ValueError("not a safetensors file (header size out of range)")
        try:
            header = json.loads(f.read(size))
            entry = header[VECTORS_KEY]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise ValueError(f"not a safetensors file with a {VECTORS_KEY!r} tensor") from None
    if entry.get("dtype") != "F32" or len(entry.get("shape", ())) != 2:
        raise ValueError(f"{VECTORS_KEY!r} is {entry.get('dtype')} of shape {entry.get('shape')}, not 2-D float32")
    start, end = entry["data_offsets"]
    rows, dim = entry["shape"]
    if end - start != rows * dim * 4 or os.path.getsize(path) < 8 + size + end:
        raise ValueError("the file is truncated")
    return 8 + size + start, [rows, dim]


def map_vectors(path: str | os.PathLike) -> torch.Tensor:
    """The `(num_vectors, dim)` float32 vectors of a safetensors file, memory-mapped read-only in effect (a private
    mapping: nothing is read until used, and nothing is ever written back)."""
    path = Path(path)
    offset, (rows, dim) = _vectors_header(path)
    raw = torch.from_file(str(path), shared=False, size=offset + rows * dim * 4, dtype=torch.uint8)
    return raw[offset:].view(torch.float32).view(rows, dim)


def read_vectors(path: str | os.PathLike) -> torch.Tensor:
    """The vectors of a safetensors file, read into memory."""
    return map_vectors(path).clone()


# ----------------------------------------------------------------------------------------------------------------
# Atomic folders and files
# ----------------------------------------------------------------------------------------------------------------
def check_replaceable(directory: str | os.PathLike, marker: str | tuple[str, ...], what: str, keep=None) -> None:
    """Raise `FileExistsError` unless [`atomic_directory`] may replace `directory`: it does not exist, is empty, or
    holds a `marker` file (entries for which `keep(name)` is true aside). Call it early to fail before long work."""
    target = Path(directory)
    if not target.exists():
        return
    markers = (marker,) if isinstance(marker, str) else tuple(marker)
    ours = [entry for entry in target.iterdir() if not (keep and keep(entry.name))] if target.is_dir() else None
    if ours is None or (ours and not any((target / name).is_file() for name in markers)):
        raise FileExistsError(f"{target} exists and is not a {what} folder ({' or '.join(markers)} is missing); "
                              "refusing to overwrite it")


# A private copy of `onegen.file_utils.atomic_directory` (and its helpers here): this Hub-facing file must load
# without the `onegen` package. Keep the two in step.
@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike, marker: str | tuple[str, ...], what: str, keep=None):
    """Yield a temporary sibling folder of `directory`; when the block succeeds it replaces `directory` (an existing
    folder is moved aside, then deleted), when it fails it is deleted. So readers see the old folder or the complete
    new one, never a half-written one. A non-empty `directory` without a `marker` file (one of them, when a tuple) is
    refused: it is not a `what` folder written earlier, and its files are not ours to delete.

    `keep(name) -> bool` names entries of an existing `directory` that are not part of the `what` (a trainer's
    `checkpoint-*` folders beside its saved model): they are ignored by the check above and moved into the new
    folder just before it replaces the old one, and moved back if that fails."""
    target = Path(directory)
    check_replaceable(target, marker, what, keep)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old, carried, swapped = None, [], False
    try:
        yield tmp
        _publishable_modes(tmp)
        kept = sorted(entry.name for entry in target.iterdir() if keep(entry.name)) if keep and target.is_dir() else []
        clash = [name for name in kept if (tmp / name).exists()]
        if clash:
            raise FileExistsError(f"the new {what} folder holds {clash}, which {target} keeps from before")
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


def _publishable_modes(folder: Path) -> None:
    """Give `folder` and everything in it the modes new files and folders get here (0755 / 0644 under umask 022):
    mkdtemp makes the folder 0700, and writers that go through mkstemp (the card, safetensors' shards) leave 0600,
    so others on a shared machine could not read a published model or index."""
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


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename, so that readers see the old
    file or the new one, never a part; the file gets the mode a new file gets here (0644 under umask 022)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def current_umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and setting it back at once (not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


__all__ = [
    "DOCUMENT_COLUMNS", "DocumentsWriter", "VectorsWriter", "atomic_directory", "check_replaceable", "current_umask",
    "documents_schema_of", "documents_table", "load_documents", "map_vectors", "read_vectors", "save_documents",
    "write_text_atomically",
]
