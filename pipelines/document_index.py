# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`DocumentIndex`: a corpus encoded by a OneGen model (one vector per document token) and searchable by cosine.

Hub-facing file: it travels with saved models next to `pipeline_onegen.py`, so it imports only torch, transformers,
the standard library and (inside `try` blocks, so that remote-code loading does not demand them) faiss and numpy.
Without faiss, an exact torch search serves instead.

On disk (`save` / `load`), never pickle:
    index_config.json          metadata: format, dims, counts, index type, fingerprint of the model that built it
    index.faiss                faiss's own file (faiss backend), or
    vectors.safetensors        the float32 vectors (torch backend)
    documents.jsonl|.parquet   one row per document: id, text, optional title, num_vectors
"""

import base64
import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers.utils import logging


logger = logging.get_logger(__name__)

_FAISS = None  # (faiss, numpy) once imported, False when faiss is not installed


def _faiss():
    """`(faiss, numpy)`, imported on first use (a quarter of a second), or `(None, None)` without faiss. The imports
    sit in a `try` block, so that loading this file as remote code does not demand faiss."""
    global _FAISS
    if _FAISS is None:
        try:
            import faiss
            import numpy

            _FAISS = (faiss, numpy)
        except ImportError:
            _FAISS = False
    return _FAISS or (None, None)

FORMAT_VERSION = 1
INDEX_TYPES = ("flat", "hnsw", "ivf")
BACKENDS = ("faiss", "torch")
CONFIG_FILE = "index_config.json"
FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.safetensors"


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
    records = []
    for i, row in enumerate(corpus):
        if isinstance(row, str):
            row = {"id": str(i), "text": row}
        elif isinstance(row, dict) or hasattr(row, "keys"):
            row = dict(row)
            if "text" not in row:
                raise ValueError(f"corpus row {i} has no 'text' field (fields: {sorted(row)})")
            row = {"id": row.get("id", str(i)), "text": row["text"], **({"title": row["title"]} if row.get("title") else {})}
        else:
            raise TypeError(f"corpus row {i} is a {type(row).__name__}; expected a str or a dict with 'text'")
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise ValueError(f"corpus row {i} (id {row['id']!r}) has an empty or non-string 'text'")
        if not isinstance(row["id"], (str, int)):
            raise ValueError(f"corpus row {i}: 'id' must be a str or an int, got {type(row['id']).__name__}")
        records.append(row)
    return records


class DocumentIndex:
    r"""
    Documents encoded by a OneGen model and searched by cosine similarity (inner product of unit vectors).

    Build one with [`DocumentIndex.build`], grow it with [`~DocumentIndex.add`], query it with
    [`~DocumentIndex.search`], persist it with [`~DocumentIndex.save`] / [`DocumentIndex.load`]. A document may carry
    several vectors (one per document token in its text); search ranks documents by their best vector.

    Args:
        dim (`int`): vector size (the model's hidden size).
        index_type (`str`, defaults to `"flat"`): `"flat"` (exact), `"hnsw"` or `"ivf"` (approximate; faiss only).
        backend (`str`, *optional*): `"faiss"` (default when installed) or `"torch"` (exact matmul; no faiss needed).
        fingerprint (`str`, *optional*): [`model_fingerprint`] of the model whose vectors go in.
        device (`str` or `torch.device`, *optional*): search device. A CUDA device puts a faiss index on the GPU when
            the installed faiss has GPU support (flat and ivf; hnsw stays on the CPU), or the torch vectors there.
        hnsw_m, ef_construction, ef_search (`int`): HNSW graph degree and build/search breadth.
        nlist, nprobe (`int`, *optional*): IVF cell count (default about 4*sqrt(N), chosen at the first `add`) and the
            cells visited per query (default nlist / 4).
    """

    def __init__(self, dim: int, index_type: str = "flat", backend: str | None = None, fingerprint: str | None = None,
                 device=None, hnsw_m: int = 32, ef_construction: int = 40, ef_search: int = 64,
                 nlist: int | None = None, nprobe: int | None = None):
        if index_type not in INDEX_TYPES:
            raise ValueError(f"DocumentIndex: index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        faiss, _ = _faiss()
        if backend is None:
            backend = "faiss" if faiss is not None else "torch"
            if faiss is None and index_type != "flat":
                logger.warning(f"faiss is not installed: the {index_type!r} index falls back to exact torch search")
        if backend not in BACKENDS:
            raise ValueError(f"DocumentIndex: backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "faiss" and faiss is None:
            raise ImportError("DocumentIndex(backend='faiss') needs faiss: pip install faiss-cpu (or faiss-gpu)")
        if backend == "torch" and index_type != "flat":
            index_type = "flat"  # the torch backend is always exact
        self.dim, self.index_type, self.backend, self.fingerprint = int(dim), index_type, backend, fingerprint
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.params = {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
                       "nlist": nlist, "nprobe": nprobe}
        self.documents: list[dict] = []
        self._num_vectors: list[int] = []  # vectors per document, in document order
        self._vector_doc = torch.empty(0, dtype=torch.long)  # document index of every vector
        self._vectors = torch.empty(0, self.dim)  # torch backend only
        self._faiss_index = None  # faiss backend: the CPU index (saved); `_search_index` may be a GPU copy
        self._search_index = None

    # ------------------------------------------------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, model, tokenizer, corpus, batch_size: int = 32, index_type: str = "flat", device=None,
              backend: str | None = None, show_progress_bar: bool | None = None, max_length: int | None = None,
              **index_kwargs) -> "DocumentIndex":
        r"""
        Encode `corpus` with `model`'s document token and index it.

        Args:
            model: a OneGen model (`encode_documents`, `config.doc_token_id`).
            tokenizer: its tokenizer.
            corpus: a list of strings, a list of dicts (`id`, `text`, optional `title`) or a `datasets.Dataset`
                with those columns. Ids default to the row number (as a string) and must be unique.
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
        seen = {doc["id"] for doc in self.documents}
        for i, doc in enumerate(records):
            if doc["id"] in seen:
                raise ValueError(f"corpus row {i}: document id {doc['id']!r} is already in the index; ids must be unique")
            seen.add(doc["id"])
        # The model renders each record (`render_document`: title, text) exactly as it was trained to read documents.
        vectors = model.encode_documents(records, tokenizer, batch_size=batch_size,
                                         show_progress_bar=show_progress_bar, max_length=max_length)
        counts = torch.bincount(vectors.text_index, minlength=len(records)).tolist()
        self._add_vectors(vectors.embeddings, records, counts)

    def _add_vectors(self, embeddings: torch.Tensor, documents: list[dict], counts: list[int]) -> None:
        """Append `embeddings` (`(sum(counts), dim)`, grouped by document in order) for `documents`."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"DocumentIndex: vectors of shape {tuple(embeddings.shape)} do not fit dim {self.dim}")
        embeddings = F.normalize(embeddings.detach().float().cpu(), dim=-1).contiguous()
        first_doc = len(self.documents)
        doc_of_vector = torch.repeat_interleave(torch.arange(first_doc, first_doc + len(documents)),
                                                torch.tensor(counts, dtype=torch.long))
        if self.backend == "torch":
            self._vectors = torch.cat([self._vectors.cpu(), embeddings]).to(self.device)
        else:
            if self._faiss_index is None:
                self._faiss_index = self._new_faiss_index(embeddings)
            self._faiss_index.add(embeddings.numpy())
            self._search_index = self._maybe_to_gpu(self._faiss_index)
        self.documents.extend(dict(d) for d in documents)
        self._num_vectors.extend(counts)
        self._vector_doc = torch.cat([self._vector_doc, doc_of_vector])

    def _new_faiss_index(self, first_vectors: torch.Tensor):
        faiss, p = _faiss()[0], self.params
        if self.index_type == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.index_type == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, p["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = p["ef_construction"]
            index.hnsw.efSearch = p["ef_search"]
            return index
        n = first_vectors.shape[0]
        nlist = p["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        if nlist > n:
            raise ValueError(f"DocumentIndex(ivf): nlist={nlist} needs at least that many vectors to train, got {n}")
        p["nlist"], p["nprobe"] = nlist, p["nprobe"] or max(1, nlist // 4)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(first_vectors.numpy())  # trained once, on the first batch of documents
        index.nprobe = p["nprobe"]
        return index

    def _maybe_to_gpu(self, index):
        if self.device.type != "cuda":
            return index
        faiss = _faiss()[0]
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0 or self.index_type == "hnsw":
            logger.warning_once(f"faiss cannot search this {self.index_type!r} index on {self.device}: using the CPU")
            return index
        if not hasattr(self, "_gpu_resources"):
            self._gpu_resources = faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_resources, self.device.index or 0, index)

    # ------------------------------------------------------------------------------------------------------------
    # Searching
    # ------------------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of documents (not vectors)."""
        return len(self.documents)

    @property
    def num_vectors(self) -> int:
        return int(self._vector_doc.numel())

    @property
    def ids(self) -> list:
        return [doc["id"] for doc in self.documents]

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All stored vectors, unit-norm float32 `(num_vectors, dim)`, grouped by document in document order, and
        the document index of each `(num_vectors,)`. Exact for `flat` and `hnsw`; `ivf` keeps a direct map for it."""
        if self.backend == "torch":
            return self._vectors.cpu(), self._vector_doc.clone()
        if self._faiss_index is None:
            return torch.empty(0, self.dim), self._vector_doc.clone()
        if self.index_type == "ivf":
            self._faiss_index.make_direct_map()
        return torch.from_numpy(self._faiss_index.reconstruct_n(0, self._faiss_index.ntotal)), self._vector_doc.clone()

    def __getitem__(self, i: int) -> dict:
        """Document `i` as a dict `{"id", "text"[, "title"]}`."""
        return dict(self.documents[i])

    def __repr__(self) -> str:
        return (f"DocumentIndex(documents={len(self)}, vectors={self.num_vectors}, dim={self.dim}, "
                f"index_type={self.index_type!r}, backend={self.backend!r})")

    def search(self, query_vectors, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        The `k` most similar documents of each query.

        Args:
            query_vectors (`torch.Tensor` of shape `(num_queries, dim)` or `(dim,)`): raw or normalised query vectors
                (they are L2-normalised here; similarity is cosine).
            k (`int`): documents per query, at most `len(self)`.

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
        per_doc = max(self._num_vectors)
        fetch = min(self.num_vectors, k * per_doc)
        if self.backend == "torch":
            vector_scores, vector_ids = (queries.to(self._vectors.device) @ self._vectors.T).topk(fetch, dim=-1)
            vector_scores, vector_ids = vector_scores.cpu(), vector_ids.cpu()
        else:
            np = _faiss()[1]
            scores_np, ids_np = self._search_index.search(np.ascontiguousarray(queries.cpu().numpy()), fetch)
            vector_scores, vector_ids = torch.from_numpy(scores_np), torch.from_numpy(ids_np)
        if per_doc == 1 and bool((vector_ids >= 0).all()):
            return vector_scores, self._vector_doc[vector_ids]
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
    def save(self, directory: str | os.PathLike, documents_format: str = "jsonl") -> None:
        """Write the index to `directory` (see the module docstring for the files). Everything is written to a
        temporary folder first and moved into place, so an interrupted save leaves no half-written index. An
        existing index in `directory` is replaced; a non-empty folder that is not an index is refused."""
        if documents_format not in ("jsonl", "parquet"):
            raise ValueError(f"documents_format must be 'jsonl' or 'parquet', got {documents_format!r}")
        with atomic_directory(directory, CONFIG_FILE, what="DocumentIndex") as tmp:
            if self.backend == "faiss":
                faiss, data_file = _faiss()[0], FAISS_FILE
                faiss.write_index(self._faiss_index if self._faiss_index is not None else faiss.IndexFlatIP(self.dim),
                                  str(tmp / FAISS_FILE))
            else:
                data_file = VECTORS_FILE
                save_file({"vectors": self._vectors.cpu().contiguous()}, str(tmp / VECTORS_FILE))
            rows = [{**doc, "num_vectors": n} for doc, n in zip(self.documents, self._num_vectors)]
            documents_file = f"documents.{documents_format}"
            _write_documents(tmp / documents_file, rows)
            config = {
                "format_version": FORMAT_VERSION, "dim": self.dim, "index_type": self.index_type,
                "backend": self.backend, "params": self.params, "num_documents": len(self),
                "num_vectors": self.num_vectors, "fingerprint": self.fingerprint, "data_file": data_file,
                "documents_file": documents_file,
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike, model=None, device=None) -> "DocumentIndex":
        """Read an index written by [`~DocumentIndex.save`]. With `model`, refuse it unless that model built it."""
        directory = Path(directory)
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
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{config_path}: format_version {config.get('format_version')!r} is not supported "
                             f"(this code reads version {FORMAT_VERSION}). {_rebuild_hint(directory)}")
        missing = [key for key in _CONFIG_KEYS if key not in config]
        if missing:
            raise _damaged(directory, f"{CONFIG_FILE} lacks the field(s) {missing}")
        faiss = _faiss()[0]
        if config["backend"] == "faiss" and faiss is None:
            raise ImportError(f"{directory} holds a faiss index; install faiss to load it: pip install faiss-cpu")
        params = {k: v for k, v in config["params"].items() if k in ("hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe")}
        index = cls(config["dim"], index_type=config["index_type"], backend=config["backend"],
                    fingerprint=config.get("fingerprint"), device=device, **params)
        try:
            rows = _read_documents(directory / config["documents_file"])
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
        if config["backend"] == "faiss":
            try:
                index._faiss_index = faiss.read_index(str(data_path))
            except RuntimeError as error:  # faiss's own message is about its C++ internals ("Index type 0x...")
                reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
                raise _damaged(directory, f"{config['data_file']} is not a readable faiss index ({reason})") from None
            stored = index._faiss_index.ntotal
            if index.index_type == "hnsw":
                index._faiss_index.hnsw.efSearch = index.params["ef_search"]
            elif index.index_type == "ivf":
                index._faiss_index.nprobe = index.params["nprobe"]
            index._search_index = index._maybe_to_gpu(index._faiss_index)
        else:
            try:
                index._vectors = load_file(str(data_path))["vectors"].float().to(index.device)
            except Exception as error:  # safetensors raises its own error types for a truncated or foreign file
                reason = f"{type(error).__name__}: {error}"
                raise _damaged(directory, f"{config['data_file']} is not readable ({reason})") from None
            stored = index._vectors.shape[0]
        if stored != config["num_vectors"]:
            raise _damaged(directory, f"{config['data_file']} holds {stored} vectors but {CONFIG_FILE} says "
                                      f"{config['num_vectors']}")
        index.documents, index._num_vectors = rows, counts
        index._vector_doc = torch.repeat_interleave(torch.arange(len(rows)), torch.tensor(counts, dtype=torch.long))
        if model is not None:
            index.check_model(model)
        return index


_CONFIG_KEYS = ("dim", "index_type", "backend", "params", "num_documents", "num_vectors", "data_file", "documents_file")


def _rebuild_hint(directory) -> str:
    return (f"Rebuild it with DocumentIndex.build(model, tokenizer, corpus).save({str(directory)!r}) using the model "
            "that will query it.")


def _damaged(directory, problem: str) -> ValueError:
    """The error for an index folder whose files are missing, truncated or inconsistent."""
    return ValueError(f"The DocumentIndex folder {directory} is damaged: {problem}. {_rebuild_hint(directory)}")


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


def _write_documents(path: Path, rows: list[dict]) -> None:
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("documents_format='parquet' needs pyarrow: pip install pyarrow") from None
        # ids may be ints or strs; JSON-encode them so a column has one type and they round-trip exactly
        table = {"id": [json.dumps(r["id"]) for r in rows], "text": [r["text"] for r in rows],
                 "title": [r.get("title") for r in rows], "num_vectors": [r["num_vectors"] for r in rows]}
        pq.write_table(pa.table(table), str(path))
        return
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_documents(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"{path} is parquet; reading it needs pyarrow: pip install pyarrow") from None
        table = pq.read_table(str(path)).to_pydict()
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


__all__ = ["DocumentIndex", "atomic_directory", "check_replaceable", "current_umask", "fingerprints_match",
           "model_fingerprint", "normalize_corpus", "write_text_atomically"]
