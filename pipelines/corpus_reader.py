# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Read a corpus in fixed blocks of rows without loading it: what `onegen index` shards are cut from.

Sources: a JSON Lines file (`.jsonl`, `.json`), a Parquet file, a folder written by `Dataset.save_to_disk`, a
`datasets.Dataset`, a streamed `datasets.IterableDataset`, anything `datasets.load_dataset(..., streaming=True)`
reads (a local dataset folder, a Hub name when online), or a list of documents. Block `b` is rows
`[b * block_size, (b + 1) * block_size)` in corpus order, whatever the source, so every process of a distributed
build cuts the same blocks, and a restarted build finds the same ones.

Only the blocks a caller asks for are decoded into Python objects (`read_blocks(wanted=...)`): the other rows of a
file are skipped as raw lines or Arrow batches. Not Hub-facing (not shipped with models).
"""

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .document_index import normalize_record


JSON_SUFFIXES = (".jsonl", ".json")


@dataclass
class CorpusColumns:
    """Which fields of a row hold the document id (optional: the row number when absent), text and title."""

    id: str = "id"
    text: str = "text"
    title: str = "title"


@dataclass
class Block:
    """Rows `[start, start + len(records))` of a corpus, normalised to `{"id", "text"[, "title"]}` dicts."""

    index: int
    start: int
    records: list[dict]


class CorpusReader:
    r"""
    Args:
        corpus: a path (JSON Lines, Parquet, a `save_to_disk` folder, or a `load_dataset` name), a
            `datasets.Dataset` / `IterableDataset`, or a list of str / dicts.
        block_size (`int`): rows per block.
        columns ([`CorpusColumns`], *optional*): field names of id, text and title.
        split (`str`, defaults to `"train"`): the split of a `DatasetDict` or of `load_dataset`.
    """

    def __init__(self, corpus, block_size: int, columns: CorpusColumns | None = None, split: str = "train"):
        if block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size}")
        self.corpus, self.block_size, self.split = corpus, int(block_size), split
        self.columns = columns or CorpusColumns()
        self.name = str(corpus) if isinstance(corpus, (str, os.PathLike)) else type(corpus).__name__
        self.num_rows: int | None = None  # known after a full pass, or up front for sized sources

    def describe(self) -> dict:
        """What identifies this corpus for a resumed build: path, size and modification time of a file, the
        fingerprint of a `datasets.Dataset`, or the length of a list (a stream cannot be identified)."""
        corpus = self.corpus
        if isinstance(corpus, (str, os.PathLike)) and Path(corpus).exists():
            path = Path(corpus).resolve()
            stat = path.stat()
            return {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if hasattr(corpus, "_fingerprint") and hasattr(corpus, "__len__"):
            return {"dataset_fingerprint": corpus._fingerprint, "rows": len(corpus)}
        if isinstance(corpus, (str, os.PathLike)):
            return {"name": str(corpus), "split": self.split}
        if isinstance(corpus, (list, tuple)):
            return {"list_rows": len(corpus)}
        return {"stream": type(corpus).__name__}

    # ------------------------------------------------------------------------------------------------------------
    def read_blocks(self, wanted: Callable[[int], bool] = lambda b: True) -> Iterator[Block]:
        """Yield the blocks `b` for which `wanted(b)`, in order; afterwards `num_rows` is the corpus length."""
        source = self._open()
        rows = 0
        for b, (start, raw, place) in enumerate(source):
            rows = start + len(raw)
            if wanted(b):
                yield Block(b, start, [self._record(row, start + j, place(j)) for j, row in enumerate(raw)])
        self.num_rows = rows

    def _record(self, row, i: int, place: str) -> dict:
        if isinstance(row, dict) or hasattr(row, "keys"):
            row = self._rename(dict(row), place)
        return normalize_record(row, i, place=place)

    def _rename(self, row: dict, place: str) -> dict:
        c = self.columns
        if c.text not in row:
            raise ValueError(f"{place} has no {c.text!r} field (fields: {sorted(row)}); name the text field with "
                             "--text_column")
        renamed = {"text": row[c.text]}
        if row.get(c.id) is not None:
            renamed["id"] = row[c.id]
        if row.get(c.title):
            renamed["title"] = row[c.title]
        return renamed

    def _open(self) -> Iterator[tuple[int, list, Callable[[int], str]]]:
        """`(start, raw rows, place(j))` per block, `place` naming row `start + j` in errors."""
        corpus = self.corpus
        if isinstance(corpus, (str, os.PathLike)):
            path = Path(corpus)
            if path.is_file() and path.suffix in JSON_SUFFIXES:
                return self._json_lines(path)
            if path.is_file() and path.suffix == ".parquet":
                return self._parquet(path)
            if path.is_file():
                raise ValueError(f"{path}: unsupported corpus file type {path.suffix!r} (use .jsonl, .json or "
                                 ".parquet, a folder written by Dataset.save_to_disk, or a datasets dataset name)")
            if path.is_dir() and any((path / name).is_file() for name in ("state.json", "dataset_dict.json")):
                import datasets

                loaded = datasets.load_from_disk(str(path))
                if isinstance(loaded, datasets.DatasetDict):
                    if self.split not in loaded:
                        raise ValueError(f"{path} has no split {self.split!r} (splits: {sorted(loaded)}); "
                                         "pass --split")
                    loaded = loaded[self.split]
                return self._dataset(loaded, str(path))
            import datasets

            return self._stream(datasets.load_dataset(str(corpus), split=self.split, streaming=True), str(corpus))
        if hasattr(corpus, "column_names") and hasattr(corpus, "__getitem__") and hasattr(corpus, "__len__"):
            return self._dataset(corpus, "dataset")
        if hasattr(corpus, "iter") and hasattr(corpus, "column_names"):
            return self._stream(corpus, "streamed dataset")
        if isinstance(corpus, (dict, bytes)):
            raise TypeError(f"corpus must be a path, a datasets.Dataset / IterableDataset or a list of documents, "
                            f"got a {type(corpus).__name__}")
        return self._sequence(corpus)

    def _json_lines(self, path: Path):
        block, start = _JsonLines(path), 0
        with open(path, encoding="utf-8") as file:
            for line_number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                block.append(line_number, line)
                if len(block) == self.block_size:
                    yield start, block, block.place
                    start, block = start + len(block), _JsonLines(path)
        if len(block):
            yield start, block, block.place

    def _parquet(self, path: Path):
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=self.block_size):
            yield start, _LazyRows(batch), (lambda s: lambda j: f"{path}, row {s + j}")(start)
            start += batch.num_rows

    def _dataset(self, dataset, name: str):
        self.num_rows = len(dataset)
        for start in range(0, len(dataset), self.block_size):
            stop = min(len(dataset), start + self.block_size)
            yield start, _LazyRows(dataset, start, stop), (lambda s: lambda j: f"{name} row {s + j}")(start)

    def _stream(self, stream, name: str):
        start = 0
        for batch in stream.iter(batch_size=self.block_size):
            count = len(next(iter(batch.values()))) if batch else 0
            rows = [{key: values[j] for key, values in batch.items()} for j in range(count)]
            yield start, rows, (lambda s: lambda j: f"{name} row {s + j}")(start)
            start += count

    def _sequence(self, corpus):
        block, start = [], 0
        for row in corpus:
            block.append(row)
            if len(block) == self.block_size:
                yield start, block, (lambda s: lambda j: f"corpus row {s + j}")(start)
                start, block = start + len(block), []
        if block:
            yield start, block, (lambda s: lambda j: f"corpus row {s + j}")(start)


class _JsonLines:
    """Raw lines of a JSON Lines file, parsed only when iterated; errors name the file and line."""

    def __init__(self, path: Path):
        self.path, self.lines, self.numbers = path, [], []

    def append(self, number: int, line: str) -> None:
        self.numbers.append(number)
        self.lines.append(line)

    def __len__(self) -> int:
        return len(self.lines)

    def place(self, j: int) -> str:
        return f"{self.path}, line {self.numbers[j]}"

    def __iter__(self):
        for j, line in enumerate(self.lines):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{self.place(j)}: not valid JSON ({error})") from None


class _LazyRows:
    """Rows of an Arrow record batch or a slice of a `datasets.Dataset`, decoded only when iterated (a block that
    another process encodes is skipped without converting it to Python objects)."""

    def __init__(self, source, start: int | None = None, stop: int | None = None):
        self.source, self.start, self.stop = source, start, stop

    def __len__(self) -> int:
        return self.stop - self.start if self.start is not None else self.source.num_rows

    def __iter__(self):
        if self.start is None:  # a pyarrow RecordBatch
            return iter(self.source.to_pylist())
        columns = self.source[self.start:self.stop]
        return iter([{key: values[j] for key, values in columns.items()} for j in range(self.stop - self.start)])


__all__ = ["Block", "CorpusColumns", "CorpusReader"]
