# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`DocumentIndex`: a corpus encoded by a OneGen model (one vector per document token) and searchable by cosine.

Hub-facing file: it travels with saved models next to `pipeline_onegen.py`, with its siblings `index_backends.py`
(one class per kind of vector search) and `index_files.py` (the file helpers), so it imports only torch,
transformers, numpy, the standard library and those modules; faiss and `datasets` are imported inside `try` blocks.
Without faiss, an exact torch search serves instead.

On disk (`save` / `load`; format 2), never pickle:
    index_config.json      metadata: format, dims, counts, index type and parameters, fingerprint of the model
    vectors.safetensors    the unit float32 vectors, in document order (flat indexes, torch or faiss), or
    index.faiss            faiss's own file (hnsw, ivf, ivfpq)
    documents.arrow        the documents, an Arrow stream file as `datasets` caches them, memory-mapped on load
                           (`datasets.Dataset.from_file`): columns id, text, title (None when absent), num_vectors

Format 1 (documents in `documents.jsonl` or `.parquet`, flat faiss indexes in `index.faiss`) is still read: `load`
converts it in memory and says how to rewrite the folder. Large corpora are built by `onegen index` (sharded over
processes with accelerate, resumable), which writes this same format.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers.utils import logging

from .index_backends import BACKENDS, FAISS_FILE, INDEX_TYPES, backend_class, faiss_module
from .index_files import (
    atomic_directory,
    check_replaceable,
    current_umask,
    documents_table,
    id_type_of,
    load_documents,
    read_documents_v1,
    read_vectors,
    save_documents,
    write_text_atomically,
)


logger = logging.get_logger(__name__)

FORMAT_VERSION = 2
CONFIG_FILE = "index_config.json"
DOCUMENTS_FILE = "documents.arrow"


_SAMPLES_PER_TENSOR = 16
# Two fingerprints name the same model when every sampled block agrees within this relative L2 distance: fp16 and
# bf16 copies of one checkpoint differ by 1e-3 at most, while training moves at least the retrieval-token rows by far
# more than 1e-2.
_FINGERPRINT_RTOL = 1e-2


def model_fingerprint(model) -> str:
    """A short description of a OneGen model that tells models apart but not dtypes: `"2:<hash>:<samples>"`, where
    `<hash>` covers the config shape, special-token ids and every parameter's name and shape, and `<samples>`
    (base64 float16) holds 16 evenly spaced values of every parameter and of the document and query token rows.
    Compare two with [`fingerprints_match`]: an fp32, fp16 or bf16 copy of one checkpoint matches itself. Cost: a
    few milliseconds, independent of model size beyond the tensor count."""
    config = model.config
    text_config = getattr(config, "text_config", config)
    digest = hashlib.sha256()
    header = {
        "model_type": getattr(text_config, "model_type", None),
        "hidden_size": getattr(text_config, "hidden_size", None),
        "special_token_ids": dict(getattr(config, "special_token_ids", {}) or {}),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    blocks = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            digest.update(f"{name}{tuple(param.shape)}".encode())
            blocks.append(_even_sample(param.detach().reshape(-1)))
        embeddings = model.get_input_embeddings().weight
        for token_id in (getattr(config, "doc_token_id", None), getattr(config, "query_token_id", None)):
            if token_id is not None and token_id < embeddings.shape[0]:
                blocks.append(_even_sample(embeddings[token_id].detach()))
    samples = torch.stack(blocks).clamp(-65504, 65504).to(torch.float16).numpy().tobytes()
    return f"2:{digest.hexdigest()[:32]}:{base64.b64encode(samples).decode()}"


def _even_sample(flat: torch.Tensor) -> torch.Tensor:
    """`_SAMPLES_PER_TENSOR` evenly spaced float32 values of a 1D tensor (zero-padded when it is shorter); integer
    positions, as a float linspace overshoots tensors of more than 2**24 elements."""
    steps = min(_SAMPLES_PER_TENSOR, flat.numel())
    positions = torch.arange(steps, device=flat.device) * (flat.numel() - 1) // max(1, steps - 1)
    sample = flat[positions].float().cpu()
    return F.pad(sample, (0, _SAMPLES_PER_TENSOR - steps))


def fingerprints_match(a: str, b: str) -> bool:
    """Whether two [`model_fingerprint`]s name the same model: the same architecture hash, and every sampled block
    within a relative L2 distance of 1e-2 (so dtype copies match, other weights do not)."""
    if a == b:
        return True
    parts_a, parts_b = a.split(":"), b.split(":")
    if len(parts_a) != 3 or len(parts_b) != 3 or parts_a[:2] != parts_b[:2]:
        return False
    blocks_a, blocks_b = (
        torch.frombuffer(bytearray(base64.b64decode(p[2])), dtype=torch.float16).float().view(-1, _SAMPLES_PER_TENSOR)
        for p in (parts_a, parts_b)
    )
    if blocks_a.shape != blocks_b.shape:
        return False
    distance = (blocks_a - blocks_b).norm(dim=-1)
    scale = torch.maximum(blocks_a.norm(dim=-1), blocks_b.norm(dim=-1))
    return bool((distance <= _FINGERPRINT_RTOL * scale + 1e-6).all())


def normalize_record(row, i: int, place: str | None = None) -> dict:
    """One corpus entry (a str, or a mapping with `text` and optional `id`, `title`) as `{"id", "text"[, "title"]}`.
    `i` is its row number (the default id, as a str); `place` names it in errors (default `"corpus row {i}"`; a
    file reader passes `"kb.jsonl, line 7"`)."""
    place = place or f"corpus row {i}"
    if isinstance(row, str):
        row = {"id": str(i), "text": row}
    elif isinstance(row, dict) or hasattr(row, "keys"):
        row = dict(row)
        if "text" not in row:
            raise ValueError(f"{place} has no 'text' field (fields: {sorted(row)})")
        identifier = row.get("id")
        row = {"id": str(i) if identifier is None else identifier, "text": row["text"],
               **({"title": row["title"]} if row.get("title") else {})}
    else:
        raise TypeError(f"{place} is a {type(row).__name__}; expected a str or a dict with 'text'")
    if not isinstance(row["text"], str) or not row["text"].strip():
        raise ValueError(f"{place} (id {row['id']!r}) has an empty or non-string 'text'")
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool):
        raise ValueError(f"{place}: 'id' must be a str or an int, got {type(row['id']).__name__}")
    if "title" in row and not isinstance(row["title"], str):
        raise ValueError(f"{place} (id {row['id']!r}): 'title' must be a str, got {type(row['title']).__name__}")
    return row


def normalize_corpus(corpus) -> list[dict]:
    """Turn a list of strings, a list of dicts (`id`, `text`, optional `title`) or a `datasets.Dataset` into a list
    of `{"id", "text"[, "title"]}` dicts, with a clear error naming the first bad row."""
    if isinstance(corpus, (str, bytes)):
        raise TypeError("corpus must be a list of documents (strings or dicts) or a datasets.Dataset, got one str")
    if isinstance(corpus, dict) or (hasattr(corpus, "keys") and not hasattr(corpus, "column_names")):
        # Iterating a dict yields its keys: {"id": .., "text": ..} would become documents named "id" and "text".
        raise TypeError(
            f"corpus must be a list of documents or a datasets.Dataset, got one dict (keys {sorted(corpus)}): pass "
            "[document] for a single document, or datasets.Dataset.from_dict(columns) for a dict of columns"
        )
    records = [normalize_record(row, i) for i, row in enumerate(corpus)]
    id_type_of([row["id"] for row in records])
    return records


class DocumentIndex:
    r"""
    Documents encoded by a OneGen model and searched by cosine similarity (inner product of unit vectors).

    Build one with [`DocumentIndex.build`] (in this process) or `onegen index` (a large corpus, sharded over
    processes), grow it with [`~DocumentIndex.add`], query it with [`~DocumentIndex.search`], persist it with
    [`~DocumentIndex.save`] / [`DocumentIndex.load`]. A document may carry several vectors (one per document token
    in its text); search ranks documents by their best vector. `index[i]` is document `i` (read from Arrow, which a
    loaded index keeps memory-mapped: the texts are not held in RAM).

    Args:
        dim (`int`): vector size (the model's hidden size).
        index_type (`str`, defaults to `"flat"`): `"flat"` (exact), `"hnsw"`, `"ivf"` or `"ivfpq"` (approximate;
            faiss only). See `index_backends.py` for what each stores and costs.
        backend (`str`, *optional*): `"faiss"` (default when installed) or `"torch"` (exact matmul; no faiss needed).
        fingerprint (`str`, *optional*): [`model_fingerprint`] of the model whose vectors go in.
        device (`str` or `torch.device`, *optional*): search device. A CUDA device puts a faiss index on the GPU when
            the installed faiss has GPU support (flat, ivf, ivfpq; hnsw stays on the CPU), or the torch vectors there.
        **params: parameters of the index type: `hnsw_m`, `ef_construction`, `ef_search` (hnsw); `nlist`, `nprobe`,
            `train_size` (ivf, ivfpq); `pq_m`, `pq_bits`, `keep_vectors`, `rerank` (ivfpq). Search parameters
            (`nprobe`, `ef_search`, `rerank`) can also be changed with [`~DocumentIndex.set_search_params`] or passed
            to `search`. Parameters of other index types are ignored.
    """

    def __init__(self, dim: int, index_type: str = "flat", backend: str | None = None, fingerprint: str | None = None,
                 device=None, **params):
        search_class = backend_class(index_type, backend)
        known = {name for cls in BACKENDS.values() for name in cls.build_params + cls.search_params}
        unknown = sorted(set(params) - known)
        if unknown:
            raise TypeError(f"DocumentIndex got unknown parameter(s) {unknown}; index parameters are {sorted(known)}")
        # The parameters of other index types are ignored (an exact index takes none), as one set of options may
        # serve several index types.
        taken = search_class.build_params + search_class.search_params
        self.searcher = search_class(dim, device=device, **{k: v for k, v in params.items()
                                                             if k in taken and v is not None})
        self.dim, self.fingerprint = int(dim), fingerprint
        self._documents = None  # a datasets.Dataset of DOCUMENT_COLUMNS (in memory, or memory-mapped after load)
        self._vector_doc: torch.Tensor | None = None  # document of each vector; None when vector i is document i
        self._max_vectors_per_document = 0

    @property
    def index_type(self) -> str:
        return self.searcher.index_type

    @property
    def backend(self) -> str:
        return self.searcher.backend

    @property
    def params(self) -> dict:
        """Build and search parameters of the index (after defaults were chosen)."""
        return dict(self.searcher.params)

    @property
    def device(self) -> torch.device:
        return self.searcher.device

    # ------------------------------------------------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, model, tokenizer, corpus, batch_size: int = 32, index_type: str = "flat", device=None,
              backend: str | None = None, show_progress_bar: bool | None = None, max_length: int | None = None,
              **index_kwargs) -> "DocumentIndex":
        r"""
        Encode `corpus` with `model`'s document token and index it, in this process and in memory. (For corpora
        that do not fit, or to spread the encoding over processes, use `onegen index`.)

        Args:
            model: a OneGen model (`encode_documents`, `config.doc_token_id`).
            tokenizer: its tokenizer.
            corpus: a list of strings, a list of dicts (`id`, `text`, optional `title`) or a `datasets.Dataset`
                with those columns. Ids default to the row number (as a string) and must be unique, and all str or
                all int.
            batch_size (`int`): documents per forward pass; documents are sorted by length first.
            index_type, device, backend, **index_kwargs: see [`DocumentIndex`].
            show_progress_bar (`bool`, *optional*): tqdm bar while encoding (default: on for large corpora).
            max_length (`int`, *optional*): truncation length (document tokens are always kept).
        """
        records = normalize_corpus(corpus)
        if not records:
            raise ValueError("DocumentIndex.build: the corpus is empty; an index needs at least one document")
        index = cls(model.config.text_config.hidden_size, index_type=index_type, backend=backend,
                    fingerprint=model_fingerprint(model), device=device, **index_kwargs)
        index.add(model, tokenizer, records, batch_size=batch_size, show_progress_bar=show_progress_bar,
                  max_length=max_length)
        return index

    def add(self, model, tokenizer, corpus, batch_size: int = 32, show_progress_bar: bool | None = None,
            max_length: int | None = None) -> None:
        """Encode more documents with `model` (which must be the model that built this index) and add them."""
        self.check_model(model)
        records = normalize_corpus(corpus)
        if not records:
            return
        seen = set(self._documents["id"]) if self._documents is not None else set()
        for i, doc in enumerate(records):
            if doc["id"] in seen:
                raise ValueError(f"corpus row {i}: document id {doc['id']!r} is already in the index; ids must be unique")
            seen.add(doc["id"])
        # The model renders each record (`render_document`: title, text) exactly as it was trained to read documents.
        vectors = model.encode_documents(records, tokenizer, batch_size=batch_size,
                                         show_progress_bar=show_progress_bar, max_length=max_length)
        counts = torch.bincount(vectors.text_index, minlength=len(records)).tolist()
        self.add_vectors(vectors.embeddings, records, counts)

    def add_vectors(self, embeddings: torch.Tensor, documents: list[dict], counts: list[int]) -> None:
        """Append `embeddings` (`(sum(counts), dim)`, grouped by document in order; normalised here) for `documents`
        (dicts with `id`, `text`, optional `title`), document `j` having `counts[j]` vectors."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"DocumentIndex: vectors of shape {tuple(embeddings.shape)} do not fit dim {self.dim}")
        if sum(counts) != embeddings.shape[0] or len(counts) != len(documents):
            raise ValueError(f"DocumentIndex: {len(documents)} documents with {sum(counts)} vectors in all, but "
                             f"{embeddings.shape[0]} vectors and {len(counts)} counts were given")
        id_type = id_type_of([d["id"] for d in documents])
        if self._documents is not None and len(self) and id_type != self.id_type:
            raise ValueError(f"DocumentIndex: the new documents' ids are {id_type} but this index's are "
                             f"{self.id_type}; ids must be all str or all int")
        self.searcher.add(F.normalize(embeddings.detach().float().cpu(), dim=-1))
        table = documents_table(documents, counts, id_type=id_type)
        if self._documents is None or not len(self):
            self._documents = table
        else:
            from datasets import concatenate_datasets  # documents_table has imported datasets already

            self._documents = concatenate_datasets([self._documents, table])
        self._set_vector_counts(torch.as_tensor(counts, dtype=torch.long), extend=True)

    def _set_vector_counts(self, counts: torch.Tensor, extend: bool = False) -> None:
        """Record the vectors of each document (`counts`, `(num_documents,)`), appended to the known ones when
        `extend`. While every document has one vector the map from vector to document is the identity."""
        first_doc = len(self) - counts.numel() if extend else 0
        new_max = int(counts.max()) if counts.numel() else 0
        if self._vector_doc is None and max(new_max, self._max_vectors_per_document) <= 1:
            self._max_vectors_per_document = max(new_max, self._max_vectors_per_document)
            return
        if self._vector_doc is None:  # the identity so far
            self._vector_doc = torch.arange(first_doc) if extend else torch.empty(0, dtype=torch.long)
        new = torch.repeat_interleave(torch.arange(first_doc, first_doc + counts.numel()), counts)
        self._vector_doc = torch.cat([self._vector_doc, new]) if extend else new
        self._max_vectors_per_document = max(new_max, self._max_vectors_per_document)

    # ------------------------------------------------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of documents (not vectors)."""
        return 0 if self._documents is None else len(self._documents)

    @property
    def num_vectors(self) -> int:
        return len(self.searcher)

    @property
    def ids(self) -> list:
        return [] if self._documents is None else list(self._documents["id"])

    @property
    def id_type(self) -> str:
        """`"string"` or `"int64"`: the type of the document ids."""
        return "string" if self._documents is None else self._documents.features["id"].dtype

    @property
    def documents(self):
        """The documents table (a `datasets.Dataset` with columns id, text, title, num_vectors), or `None`."""
        return self._documents

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All stored vectors, unit-norm float32 `(num_vectors, dim)`, grouped by document in document order, and
        the document index of each `(num_vectors,)`. Exact for flat, hnsw and ivf; ivfpq gives reconstructions."""
        vector_doc = self._vector_doc.clone() if self._vector_doc is not None else torch.arange(self.num_vectors)
        return self.searcher.vectors(), vector_doc

    def __getitem__(self, i: int) -> dict:
        """Document `i` as a dict `{"id", "text"[, "title"]}`."""
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"DocumentIndex indices are ints (document positions), got {type(i).__name__}")
        size = len(self)
        if not -size <= i < size:
            raise IndexError(f"document {i} is out of range: the index holds {size} documents")
        row = self._documents[int(i) % size]
        return {"id": row["id"], "text": row["text"], **({"title": row["title"]} if row["title"] else {})}

    def __repr__(self) -> str:
        return (f"DocumentIndex(documents={len(self)}, vectors={self.num_vectors}, dim={self.dim}, "
                f"index_type={self.index_type!r}, backend={self.backend!r})")

    # ------------------------------------------------------------------------------------------------------------
    # Searching
    # ------------------------------------------------------------------------------------------------------------
    def set_search_params(self, **params) -> None:
        """Change search parameters for later searches: `nprobe` (ivf, ivfpq), `ef_search` (hnsw), `rerank` (ivfpq
        built with `keep_vectors=True`)."""
        self.searcher.set_search_params(**params)

    def search(self, query_vectors, k: int = 1, **search_params) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        The `k` most similar documents of each query.

        Args:
            query_vectors (`torch.Tensor` of shape `(num_queries, dim)` or `(dim,)`): raw or normalised query vectors
                (they are L2-normalised here; similarity is cosine).
            k (`int`): documents per query, at most `len(self)`.
            **search_params: search parameters for this call only: `nprobe` (ivf, ivfpq), `ef_search` (hnsw),
                `rerank` (ivfpq with kept vectors).

        Returns:
            `(scores, indices)`: `torch.FloatTensor` and `torch.LongTensor` of shape `(num_queries, k)`, best first.
            `indices` are document positions (`self[i]`). An approximate index that finds fewer than `k` documents
            pads with index -1 and score `-inf`.
        """
        if len(self) == 0:
            raise ValueError("DocumentIndex is empty: add documents (DocumentIndex.build / add) before searching")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"DocumentIndex.search: k must be a positive int, got {k!r}")
        if k > len(self):
            raise ValueError(f"DocumentIndex.search: k={k} is larger than the index, which holds {len(self)} documents")
        queries = torch.as_tensor(query_vectors).detach().float()
        queries = queries.unsqueeze(0) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"DocumentIndex.search: queries of shape {tuple(queries.shape)} do not match dim {self.dim}")
        queries = F.normalize(queries, dim=-1)
        # Top-k documents are among the top k*m vectors when no document has more than m vectors.
        fetch = min(self.num_vectors, k * max(1, self._max_vectors_per_document))
        vector_scores, vector_ids = self.searcher.search(queries, fetch, **search_params)
        if self._vector_doc is None:
            vector_scores = vector_scores.masked_fill(vector_ids < 0, float("-inf"))
            return vector_scores, vector_ids
        return self._best_per_document(vector_scores, vector_ids, k)

    def _best_per_document(self, vector_scores, vector_ids, k):
        scores = torch.full((vector_ids.shape[0], k), float("-inf"))
        indices = torch.full((vector_ids.shape[0], k), -1, dtype=torch.long)
        for q in range(vector_ids.shape[0]):
            taken = []
            for score, vid in zip(vector_scores[q].tolist(), vector_ids[q].tolist()):
                doc = int(self._vector_doc[vid]) if vid >= 0 else -1
                if doc >= 0 and doc not in taken:
                    scores[q, len(taken)], indices[q, len(taken)] = score, doc
                    taken.append(doc)
                    if len(taken) == k:
                        break
        return scores, indices

    def check_model(self, model) -> None:
        """Raise a `ValueError` unless `model` is the model that built this index (same fingerprint, same size)."""
        hidden_size = getattr(getattr(model.config, "text_config", model.config), "hidden_size", None)
        if hidden_size != self.dim:
            raise ValueError(
                f"This DocumentIndex holds {self.dim}-dimensional vectors but the model's hidden size is {hidden_size}: "
                "it was built by another model. Rebuild it with DocumentIndex.build(model, tokenizer, corpus)."
            )
        if self.fingerprint is None:
            return
        if not self.fingerprint.startswith("2:"):
            raise ValueError(
                "This DocumentIndex records its model in an older fingerprint format that cannot be compared across "
                "dtypes. Rebuild it with DocumentIndex.build(model, tokenizer, corpus); or, if you know this model "
                "built it, load it without `model=`, set `index.fingerprint = model_fingerprint(model)` and save it."
            )
        if not fingerprints_match(model_fingerprint(model), self.fingerprint):
            raise ValueError(
                f"This DocumentIndex was built by another model (fingerprint {self.fingerprint[:34]}..., this "
                f"model's is {model_fingerprint(model)[:34]}...); its vectors would not match this model's queries. "
                "Rebuild it with DocumentIndex.build(model, tokenizer, corpus)."
            )

    # ------------------------------------------------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the index to `directory` (see the module docstring for the files). Everything is written to a
        temporary folder first and moved into place, so an interrupted save leaves no half-written index. An
        existing index in `directory` is replaced; a non-empty folder that is not an index is refused."""
        if self._documents is None or not len(self):
            raise ValueError("DocumentIndex.save: the index is empty; add documents before saving it")
        with atomic_directory(directory, CONFIG_FILE, what="DocumentIndex") as tmp:
            data_file = self.searcher.save(tmp)
            save_documents(self._documents, tmp / DOCUMENTS_FILE)
            write_index_config(tmp, self.dim, self.index_type, self.backend, self.params, len(self),
                               self.num_vectors, self._max_vectors_per_document, self.fingerprint, data_file)

    @classmethod
    def load(cls, directory: str | os.PathLike, model=None, device=None, mmap: bool = False,
             backend: str | None = None, **search_params) -> "DocumentIndex":
        r"""
        Read an index written by [`~DocumentIndex.save`] or `onegen index`. The documents stay on disk
        (memory-mapped Arrow); the vectors are read into RAM, or with `mmap=True` stay on disk memory-mapped too
        (flat: searched block by block; hnsw: vectors mapped, graph in RAM; ivf/ivfpq: inverted lists mapped).

        Args:
            directory: the index folder.
            model (*optional*): refuse the index unless this model built it (see [`~DocumentIndex.check_model`]).
            device (*optional*): search device (see [`DocumentIndex`]).
            mmap (`bool`, defaults to `False`): keep the vectors on disk, memory-mapped.
            backend (`str`, *optional*): for a flat index, `"torch"` or `"faiss"` (default: as saved, or torch
                when faiss is not installed); other index types need faiss.
            **search_params: `nprobe` (ivf, ivfpq), `ef_search` (hnsw) or `rerank` (ivfpq) for the searches of
                this instance.
        """
        directory = Path(directory)
        config = read_index_config(directory)
        if config["format_version"] == 1:
            index = _load_format_1(cls, directory, config, device)
        else:
            index = _load_format_2(cls, directory, config, device, mmap, backend)
        if search_params:
            index.set_search_params(**search_params)
        if model is not None:
            index.check_model(model)
        return index


_CONFIG_KEYS = ("dim", "index_type", "backend", "params", "num_documents", "num_vectors", "data_file")


def write_index_config(folder: Path, dim: int, index_type: str, backend: str, params: dict, num_documents: int,
                       num_vectors: int, max_vectors_per_document: int, fingerprint: str | None, data_file: str,
                       **extra) -> None:
    """Write `index_config.json` (format 2) into `folder`; `extra` fields (e.g. how it was built) are kept too."""
    config = {
        "format_version": FORMAT_VERSION, "dim": dim, "index_type": index_type, "backend": backend,
        "params": params, "num_documents": num_documents, "num_vectors": num_vectors,
        "max_vectors_per_document": max_vectors_per_document, "fingerprint": fingerprint, "data_file": data_file,
        "documents": DOCUMENTS_FILE, **extra,
    }
    write_text_atomically(Path(folder) / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


def read_index_config(directory: Path) -> dict:
    """The checked `index_config.json` of an index folder (format 1 or 2)."""
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(f"DocumentIndex folder {directory} does not exist")
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory} is not a DocumentIndex folder: {CONFIG_FILE} is missing. "
                                f"{_rebuild_hint(directory)}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _damaged(directory, f"{CONFIG_FILE} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise _damaged(directory, f"{CONFIG_FILE} holds a JSON {type(config).__name__}, not an object")
    if config.get("format_version") not in (1, FORMAT_VERSION):
        raise ValueError(f"{config_path}: format_version {config.get('format_version')!r} is not supported "
                         f"(this code reads versions 1 and {FORMAT_VERSION}). {_rebuild_hint(directory)}")
    missing = [key for key in _CONFIG_KEYS + (("documents_file",) if config["format_version"] == 1 else ())
               if key not in config]
    if missing:
        raise _damaged(directory, f"{CONFIG_FILE} lacks the field(s) {missing}")
    if config["index_type"] not in INDEX_TYPES:
        raise _damaged(directory, f"{CONFIG_FILE} names an unknown index_type {config['index_type']!r}")
    return config


def _load_format_2(cls, directory: Path, config: dict, device, mmap: bool, backend: str | None) -> "DocumentIndex":
    index_type, saved_backend = config["index_type"], config["backend"]
    if backend is None:
        backend = saved_backend
        if faiss_module() is None and backend == "faiss":
            if index_type != "flat":
                raise ImportError(f"{directory} holds a faiss {index_type!r} index; install faiss to load it: "
                                  "pip install faiss-cpu (or faiss-gpu)")
            logger.info(f"faiss is not installed: {directory} (a flat index) is searched exactly with torch")
            backend = "torch"
    index = cls(config["dim"], index_type=index_type, backend=backend, fingerprint=config.get("fingerprint"),
                device=device, **_saved_params(config, index_type, backend))
    if index.searcher.data_file != config["data_file"]:
        raise _damaged(directory, f"{CONFIG_FILE} names {config['data_file']} as the data of a {index_type!r} index, "
                                  f"which keeps {index.searcher.data_file}")
    data_path = directory / config["data_file"]
    if not data_path.is_file():
        raise _damaged(directory, f"{config['data_file']} (the vectors) is missing")
    try:
        index.searcher = type(index.searcher).load(data_path, config["dim"], index.searcher.params, device=device,
                                                   mmap=mmap)
    except ValueError as error:
        raise _damaged(directory, f"{config['data_file']} is not readable ({error})") from None
    if len(index.searcher) != config["num_vectors"]:
        raise _damaged(directory, f"{config['data_file']} holds {len(index.searcher)} vectors but {CONFIG_FILE} says "
                                  f"{config['num_vectors']}")
    try:
        index._documents = load_documents(directory / config.get("documents", DOCUMENTS_FILE),
                                           config["num_documents"])
    except (FileNotFoundError, ValueError) as error:
        raise _damaged(directory, str(error)) from None
    if config.get("max_vectors_per_document", 2) > 1:  # else vector i is document i: nothing to read
        counts = torch.from_numpy(index._documents.data.column("num_vectors").to_numpy().astype(np.int64))
        if int(counts.sum()) != config["num_vectors"]:
            raise _damaged(directory, f"the documents count {int(counts.sum())} vectors but {CONFIG_FILE} says "
                                      f"{config['num_vectors']}")
        index._set_vector_counts(counts)
    else:
        index._max_vectors_per_document = 1
    return index


def _saved_params(config: dict, index_type: str, backend: str) -> dict:
    params = config.get("params") or {}
    if backend == "torch" or index_type == "flat":
        return {}
    wanted = backend_class(index_type, backend)
    return {k: v for k, v in params.items() if k in wanted.build_params + wanted.search_params}


def _load_format_1(cls, directory: Path, config: dict, device) -> "DocumentIndex":
    """Read a format-1 folder (documents in JSONL/Parquet; a flat faiss index in `index.faiss`) into memory."""
    faiss = faiss_module()
    index_type, backend = config["index_type"], config["backend"]
    if backend == "faiss" and faiss is None and index_type != "flat":
        raise ImportError(f"{directory} holds a faiss index; install faiss to load it: pip install faiss-cpu")
    try:
        rows = read_documents_v1(directory / config["documents_file"])
    except (FileNotFoundError, ValueError, OSError) as error:
        raise _damaged(directory, str(error)) from error
    counts = [int(row.pop("num_vectors")) for row in rows]
    if len(rows) != config["num_documents"] or sum(counts) != config["num_vectors"]:
        raise _damaged(directory, f"{config['documents_file']} lists {len(rows)} documents with {sum(counts)} "
                                  f"vectors but {CONFIG_FILE} says {config['num_documents']} and "
                                  f"{config['num_vectors']}")
    data_path = directory / config["data_file"]
    if not data_path.is_file():
        raise _damaged(directory, f"{config['data_file']} (the vectors) is missing")
    params = {k: v for k, v in (config.get("params") or {}).items() if v is not None}
    if backend == "faiss" and index_type != "flat":  # the faiss file is format 2's as well
        index = cls(config["dim"], index_type=index_type, fingerprint=config.get("fingerprint"), device=device,
                    **_saved_params(config, index_type, "faiss"))
        try:
            index.searcher = type(index.searcher).load(data_path, config["dim"], index.searcher.params, device=device)
        except ValueError as error:
            raise _damaged(directory, f"{config['data_file']} is not readable ({error})") from None
        vectors = None
    else:
        index = cls(config["dim"], backend=None if backend == "faiss" else backend,
                    fingerprint=config.get("fingerprint"), device=device)
        try:
            if config["data_file"] == FAISS_FILE:  # a flat faiss index: read its vectors out of it
                if faiss is None:
                    raise ImportError(f"{directory} keeps its vectors in a faiss file (format 1); install faiss to "
                                      "convert it: pip install faiss-cpu")
                flat = faiss.read_index(str(data_path))
                vectors = torch.from_numpy(flat.reconstruct_n(0, flat.ntotal))
            else:
                vectors = read_vectors(data_path)
        except (RuntimeError, ValueError) as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
            raise _damaged(directory, f"{config['data_file']} is not readable ({reason})") from None
    stored = len(index.searcher) if vectors is None else vectors.shape[0]
    if stored != config["num_vectors"]:
        raise _damaged(directory, f"{config['data_file']} holds {stored} vectors but {CONFIG_FILE} says "
                                  f"{config['num_vectors']}")
    if vectors is not None:
        index.searcher.add(vectors)
    index._documents = documents_table(rows, counts)
    index._set_vector_counts(torch.as_tensor(counts, dtype=torch.long))
    if params.get("nprobe") and index_type == "ivf":
        index.set_search_params(nprobe=params["nprobe"])
    logger.warning(
        f"{directory} is a DocumentIndex of format 1 (documents in {config['documents_file']}, read into memory). "
        f"It works as it is; to rewrite it in format {FORMAT_VERSION} (documents memory-mapped from Arrow) run once: "
        f"DocumentIndex.load({str(directory)!r}).save({str(directory)!r})"
    )
    return index


def _rebuild_hint(directory) -> str:
    return (f"Rebuild it with DocumentIndex.build(model, tokenizer, corpus).save({str(directory)!r}) using the model "
            "that will query it.")


def _damaged(directory, problem: str) -> ValueError:
    """The error for an index folder whose files are missing, truncated or inconsistent."""
    return ValueError(f"The DocumentIndex folder {directory} is damaged: {problem}. {_rebuild_hint(directory)}")


__all__ = ["DocumentIndex", "atomic_directory", "check_replaceable", "current_umask", "fingerprints_match",
           "model_fingerprint", "normalize_corpus", "normalize_record", "write_text_atomically"]
