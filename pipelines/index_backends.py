# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Vector search backends of `DocumentIndex`: one small class per kind of index behind one interface.

| class         | type  | stores                 | exact | trained      | GPU (faiss-gpu) | `mmap=True` load     |
|---------------|-------|------------------------|-------|--------------|-----------------|----------------------|
| `ExactSearch` | flat  | `vectors.safetensors`  | yes   | no           | torch tensors   | blocks of a mapping  |
| `FaissFlat`   | flat  | `vectors.safetensors`  | yes   | no           | yes             | `faiss.knn` on a map |
| `FaissHNSW`   | hnsw  | `index.faiss`          | no    | no           | no (none)       | `IO_FLAG_MMAP_IFC`   |
| `FaissIVF`    | ivf   | `index.faiss`          | no    | k-means      | yes             | `IO_FLAG_MMAP`       |
| `FaissIVFPQ`  | ivfpq | `index.faiss` (+ vectors) | no | k-means + PQ | yes          | `IO_FLAG_MMAP`       |

Every backend holds unit float32 vectors numbered 0..n-1 in the order they were added and answers inner-product
top-k queries. Flat indexes store the raw vectors (so the torch and faiss flat backends read each other's files, and
a flat index loads without faiss); the others store faiss's own file. Search parameters (`nprobe` for IVF,
`ef_search` for HNSW) are set at construction or load, changed with `set_search_params`, or passed per call.

Hub-facing file (travels with saved models): imports only torch, numpy, the standard library, its sibling
`index_files.py` and, in a `try` block, faiss.
"""

import math
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

from .index_files import VectorsWriter, map_vectors


logger = logging.get_logger(__name__)

VECTORS_FILE = "vectors.safetensors"
FAISS_FILE = "index.faiss"
_FAISS = None  # the faiss module once imported, False when it is not installed


def faiss_module():
    """The faiss module, imported on first use (a quarter of a second), or `None` without faiss. The import sits in
    a `try` block, so that loading this file as remote code does not demand faiss."""
    global _FAISS
    if _FAISS is None:
        try:
            import faiss

            _FAISS = faiss
        except ImportError:
            _FAISS = False
    return _FAISS or None


def faiss_has_gpu() -> bool:
    """Whether the installed faiss can put indexes on a GPU (faiss-gpu and at least one visible GPU)."""
    faiss = faiss_module()
    return bool(faiss is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0)


def _numpy(vectors: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(vectors.detach().to(torch.float32).cpu().numpy())


class VectorSearch:
    r"""
    The interface: unit vectors numbered in the order added, searched by inner product.

    Subclasses set `index_type`, `backend`, `data_file` and the names of their build and search parameters, and
    implement `_add`, `_search`, `_save`, `_load`, `vectors`.

    Args:
        dim (`int`): vector width.
        device (`torch.device`, *optional*): where searches run (CUDA only where the backend supports it).
        **params: build and search parameters of the backend (see each class); unknown names are refused.
    """

    index_type: str = ""
    backend: str = ""
    data_file: str = FAISS_FILE
    build_params: tuple[str, ...] = ()
    search_params: tuple[str, ...] = ()
    needs_training = False

    def __init__(self, dim: int, device=None, **params):
        unknown = sorted(set(params) - set(self.build_params) - set(self.search_params))
        if unknown:
            raise ValueError(f"{type(self).__name__} ({self.index_type!r} index) takes no parameter(s) {unknown}; "
                             f"it takes {list(self.build_params + self.search_params) or 'none'}")
        self.dim = int(dim)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.params = {name: params.get(name) for name in self.build_params + self.search_params}

    # -- building --------------------------------------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return True

    def train(self, sample: torch.Tensor, total: int | None = None) -> None:
        """Train on `sample` (`(n, dim)` unit vectors) for an index of about `total` vectors (default `n`)."""

    def add(self, vectors: torch.Tensor) -> None:
        """Append `vectors` (`(n, dim)`, unit norm, float32); they get the next `n` numbers."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}: vectors of shape {tuple(vectors.shape)} do not fit "
                             f"dim {self.dim}")
        if not self.is_trained:
            self.train(vectors)
        self._add(vectors.detach().to(torch.float32).cpu().contiguous())

    def __len__(self) -> int:
        raise NotImplementedError

    # -- searching -------------------------------------------------------------------------------------------------
    def set_search_params(self, **params) -> None:
        """Change search parameters for later calls (e.g. `nprobe=16`, `ef_search=128`)."""
        self._check_search_params(params)
        self.params.update({k: v for k, v in params.items() if v is not None})

    def _check_search_params(self, params: dict) -> None:
        unknown = sorted(k for k, v in params.items() if k not in self.search_params and v is not None)
        if unknown:
            raise ValueError(f"a {self.index_type!r} index ({type(self).__name__}) has no search parameter(s) "
                             f"{unknown}; it has {list(self.search_params) or 'none'}")
        for name, value in params.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"search parameter {name} must be a positive int, got {value!r}")

    def search(self, queries: torch.Tensor, k: int, **params) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        Args:
            queries (`torch.FloatTensor` of shape `(num_queries, dim)`): unit vectors.
            k (`int`): neighbours per query.
            **params: search parameters for this call only.

        Returns:
            `(scores, ids)`: `(num_queries, k)` float32 inner products (best first) and int64 vector numbers; an
            approximate index that finds fewer than `k` pads with id -1.
        """
        self._check_search_params(params)
        merged = {**self.params, **{key: value for key, value in params.items() if value is not None}}
        return self._search(queries.detach().to(torch.float32).cpu().contiguous(), k, merged)

    def vectors(self) -> torch.Tensor:
        """All vectors, `(len(self), dim)` float32, in number order (reconstructions for compressed indexes)."""
        raise NotImplementedError

    # -- files -----------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> str:
        """Write the backend's file into `folder`; returns its name."""
        self._save(Path(folder) / self.data_file)
        return self.data_file

    @classmethod
    def load(cls, path: Path, dim: int, params: dict, device=None, mmap: bool = False) -> "VectorSearch":
        """Read a file written by `save`. `mmap`: keep the data on disk, memory-mapped, instead of in RAM."""
        names = cls.build_params + cls.search_params
        backend = cls(dim, device=device, **{k: v for k, v in params.items() if k in names})
        backend._load(Path(path), mmap)
        return backend

    def _add(self, vectors: torch.Tensor) -> None:
        raise NotImplementedError

    def _search(self, queries: torch.Tensor, k: int, params: dict):
        raise NotImplementedError

    def _save(self, path: Path) -> None:
        raise NotImplementedError

    def _load(self, path: Path, mmap: bool) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vectors={len(self)}, dim={self.dim}, params={self.params})"


def _write_vectors_in_blocks(path: Path, count: int, dim: int, block_of, block: int = 65536) -> None:
    """Write `count` vectors with [`VectorsWriter`], fetching rows `[start, stop)` with `block_of(start, stop)`."""
    with VectorsWriter(path, count, dim) as writer:
        for start in range(0, count, block):
            writer.write(block_of(start, min(count, start + block)))


class ExactSearch(VectorSearch):
    """Exact search with torch matrix products (no faiss needed). In RAM, on `device`, or memory-mapped (searched in
    blocks of rows, so resident memory is what the page cache keeps)."""

    index_type, backend, data_file = "flat", "torch", VECTORS_FILE
    block_rows = 1 << 18  # rows per matrix product when searching a memory-mapped file

    def __init__(self, dim: int, device=None, **params):
        super().__init__(dim, device=device, **params)
        self._blocks: list[torch.Tensor] = []  # vectors added since the last search, concatenated lazily
        self._vectors = torch.empty(0, self.dim, device=self.device)
        self._mapped = False

    def __len__(self) -> int:
        return self._vectors.shape[0] + sum(b.shape[0] for b in self._blocks)

    def _add(self, vectors):
        if self._mapped:
            self._vectors, self._mapped = self._vectors.clone().to(self.device), False
        self._blocks.append(vectors.to(self.device))

    def _all(self) -> torch.Tensor:
        if self._blocks:
            self._vectors = torch.cat([self._vectors, *self._blocks])
            self._blocks = []
        return self._vectors

    def _search(self, queries, k, params):
        vectors = self._all()
        queries = queries.to(vectors.device)
        if not self._mapped:
            scores, ids = (queries @ vectors.T).topk(k, dim=-1)
            return scores.cpu(), ids.cpu()
        best_scores = torch.full((queries.shape[0], 0), float("-inf"))
        best_ids = torch.empty((queries.shape[0], 0), dtype=torch.long)
        for start in range(0, vectors.shape[0], self.block_rows):
            block = vectors[start:start + self.block_rows]
            scores, ids = (queries @ block.T).topk(min(k, block.shape[0]), dim=-1)
            merged_scores = torch.cat([best_scores, scores], dim=-1)
            merged_ids = torch.cat([best_ids, ids + start], dim=-1)
            best_scores, order = merged_scores.topk(min(k, merged_scores.shape[1]), dim=-1)
            best_ids = merged_ids.gather(-1, order)
        return best_scores, best_ids

    def vectors(self):
        return self._all().cpu()

    def _save(self, path):
        vectors = self._all()
        _write_vectors_in_blocks(path, vectors.shape[0], self.dim, lambda a, b: vectors[a:b])

    def _load(self, path, mmap):
        vectors = map_vectors(path)
        if mmap and self.device.type != "cpu":
            logger.warning_once(f"a memory-mapped index is searched on the CPU, not on {self.device}")
        self._mapped = mmap
        self._vectors = vectors if mmap else vectors.clone().to(self.device)


class _FaissBackend(VectorSearch):
    """What the faiss backends share: the faiss index, its GPU copy, reading and writing `index.faiss`."""

    backend = "faiss"
    gpu_capable = True

    def __init__(self, dim: int, device=None, **params):
        if faiss_module() is None:
            raise ImportError(f"the {self.index_type!r} index needs faiss: pip install faiss-cpu (or faiss-gpu)")
        super().__init__(dim, device=device, **params)
        self.index = None  # the CPU index (the one saved)
        self._gpu_index = None  # its copy on the GPU, made on first search
        self._read_only = False  # loaded memory-mapped

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def _searcher(self):
        """The index searches run on: a GPU copy when `device` is CUDA and faiss can, else the CPU index."""
        if self.device.type != "cuda":
            return self.index
        if not self.gpu_capable or not faiss_has_gpu():
            logger.warning_once(f"faiss cannot search a {self.index_type!r} index on {self.device} (faiss-gpu is not "
                                "installed, or sees no GPU, or has no GPU version of this index): using the CPU")
            return self.index
        if self._gpu_index is None:
            faiss = faiss_module()
            self._gpu_resources = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, self.device.index or 0, self.index)
        return self._gpu_index

    def _add(self, vectors):
        if self._read_only:  # faiss would write into the read-only mapping and crash
            raise ValueError(f"this {self.index_type!r} index was loaded memory-mapped (mmap=True), which is "
                             "read-only: load it with mmap=False to add documents")
        self.index.add(_numpy(vectors))
        self._gpu_index = None

    def _faiss_search(self, queries, k, search_parameters=None):
        searcher = self._searcher()
        if searcher is not self.index:  # GPU indexes take their parameters as attributes
            for name, value in (search_parameters or {}).items():
                setattr(searcher, name, value)
            search_parameters = None
        elif search_parameters:
            search_parameters = self._parameter_object(**search_parameters)
        scores, ids = searcher.search(_numpy(queries), k, params=search_parameters)
        return torch.from_numpy(scores), torch.from_numpy(ids)

    def _parameter_object(self, **values):
        raise NotImplementedError

    def vectors(self):
        if len(self) == 0:
            return torch.empty(0, self.dim)
        return torch.from_numpy(self.index.reconstruct_n(0, len(self)))

    def _save(self, path):
        faiss_module().write_index(self.index, str(path))

    def _load(self, path, mmap):
        faiss = faiss_module()
        flags = self._mmap_flag(faiss) if mmap else 0
        self._read_only = bool(mmap)
        try:
            self.index = faiss.read_index(str(path), flags)
        except RuntimeError as error:  # faiss's message is about its C++ internals ("Index type 0x...")
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
            raise ValueError(f"not a readable faiss index ({reason})") from None
        if self.index.d != self.dim:
            raise ValueError(f"the faiss index holds {self.index.d}-dimensional vectors, not {self.dim}")
        self._after_load()

    def _mmap_flag(self, faiss) -> int:
        return faiss.IO_FLAG_MMAP

    def _after_load(self) -> None:
        pass


class FaissFlat(_FaissBackend):
    """Exact inner-product search with faiss (`IndexFlatIP`); memory-mapped, `faiss.knn` over the mapped vectors."""

    index_type, data_file = "flat", VECTORS_FILE

    def __init__(self, dim: int, device=None, **params):
        super().__init__(dim, device=device, **params)
        self.index = faiss_module().IndexFlatIP(self.dim)
        self._mapped: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._mapped) if self._mapped is not None else int(self.index.ntotal)

    def _add(self, vectors):
        if self._mapped is not None:  # adding to a mapped index: bring it into RAM first
            self.index.add(np.ascontiguousarray(self._mapped))
            self._mapped = None
        super()._add(vectors)

    def _search(self, queries, k, params):
        if self._mapped is None:
            return self._faiss_search(queries, k)
        faiss = faiss_module()
        scores, ids = faiss.knn(_numpy(queries), self._mapped, k, metric=faiss.METRIC_INNER_PRODUCT)
        return torch.from_numpy(scores), torch.from_numpy(ids)

    def vectors(self):
        if self._mapped is not None:
            return torch.from_numpy(np.array(self._mapped))
        return super().vectors()

    def _save(self, path):
        if self._mapped is not None:
            _write_vectors_in_blocks(path, len(self), self.dim, lambda a, b: torch.from_numpy(self._mapped[a:b]))
        else:
            _write_vectors_in_blocks(path, len(self), self.dim,
                                     lambda a, b: torch.from_numpy(self.index.reconstruct_n(a, b - a)))

    def _load(self, path, mmap):
        vectors = map_vectors(path)
        if mmap:
            if self.device.type != "cpu":
                logger.warning_once(f"a memory-mapped index is searched on the CPU, not on {self.device}")
            self._mapped = vectors.numpy()
            return
        for start in range(0, vectors.shape[0], 65536):  # copied into faiss block by block
            self.index.add(np.ascontiguousarray(vectors[start:start + 65536].numpy()))


class FaissHNSW(_FaissBackend):
    """Graph search (`IndexHNSWFlat`). Parameters: `hnsw_m` (graph degree, default 32), `ef_construction` (build
    breadth, default 200 as in hnswlib, not faiss's 40: on 1M clustered 576-d vectors, recall@10 0.998 instead of
    0.76, for a build several times longer; benchmarks/index_scale.py), `ef_search` (search breadth, default 64;
    higher is slower and more exact). CPU only."""

    index_type = "hnsw"
    build_params, search_params = ("hnsw_m", "ef_construction"), ("ef_search",)
    gpu_capable = False

    def __init__(self, dim: int, device=None, **params):
        super().__init__(dim, device=device, **params)
        defaults = {"hnsw_m": 32, "ef_construction": 200, "ef_search": 64}
        self.params = {name: self.params.get(name) or value for name, value in defaults.items()}
        faiss = faiss_module()
        self.index = faiss.IndexHNSWFlat(self.dim, self.params["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = self.params["ef_construction"]
        self.index.hnsw.efSearch = self.params["ef_search"]

    def set_search_params(self, **params):
        super().set_search_params(**params)
        self.index.hnsw.efSearch = self.params["ef_search"]

    def _search(self, queries, k, params):
        return self._faiss_search(queries, k, {"efSearch": max(params["ef_search"], k)})

    def _parameter_object(self, efSearch):
        return faiss_module().SearchParametersHNSW(efSearch=efSearch)

    def _mmap_flag(self, faiss):
        return faiss.IO_FLAG_MMAP_IFC  # maps the stored vectors; the graph is read into RAM

    def _after_load(self):
        self.params["hnsw_m"] = int(self.index.hnsw.nb_neighbors(1))
        self.index.hnsw.efSearch = self.params["ef_search"]


class FaissIVF(_FaissBackend):
    """Inverted file over k-means cells, full vectors in the lists (`IndexIVFFlat`). Parameters: `nlist` (cells;
    default about 4*sqrt(N), at most N/39 so that k-means has 39 points per cell), `nprobe` (cells visited per
    query; default nlist/16, at least 8), `train_size` (vectors k-means trains on; default 64 per cell, at least
    10,000, at most 500,000: a sample, evenly spaced over the corpus)."""

    index_type = "ivf"
    build_params, search_params = ("nlist", "train_size"), ("nprobe",)
    needs_training = True

    @property
    def is_trained(self) -> bool:
        return self.index is not None

    def training_size(self, total: int) -> int:
        """How many vectors to train on for an index of `total` vectors."""
        nlist = self.params["nlist"] or self._default_nlist(total)
        return min(total, self.params["train_size"] or min(500_000, max(10_000, 64 * nlist)))

    @staticmethod
    def _default_nlist(total: int) -> int:
        return max(1, min(int(4 * math.sqrt(total)), total // 39 or 1))

    def train(self, sample, total=None):
        faiss, n = faiss_module(), sample.shape[0]
        nlist = self.params["nlist"] or self._default_nlist(total or n)
        nlist = min(nlist, n) if not self.params["nlist"] else nlist
        if nlist > n:
            raise ValueError(f"a {self.index_type!r} index with nlist={nlist} needs at least that many vectors to "
                             f"train on, got {n}")
        self.params["nlist"] = nlist
        self.params["nprobe"] = self.params["nprobe"] or min(nlist, max(8, nlist // 16))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = self._new_index(faiss, quantizer, nlist)
        index.train(_numpy(sample))
        index.nprobe = self.params["nprobe"]
        self.index, self._quantizer = index, quantizer  # the quantizer must outlive the index (SWIG ownership)

    def _new_index(self, faiss, quantizer, nlist):
        return faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)

    def __len__(self):
        return 0 if self.index is None else int(self.index.ntotal)

    def set_search_params(self, **params):
        super().set_search_params(**params)
        if self.index is not None:
            self.index.nprobe = self.params["nprobe"]

    def _search(self, queries, k, params):
        return self._faiss_search(queries, k, {"nprobe": params["nprobe"]})

    def _parameter_object(self, nprobe):
        return faiss_module().SearchParametersIVF(nprobe=nprobe)

    def vectors(self):
        if self.index is None:
            return torch.empty(0, self.dim)
        if not self.index.direct_map.type:  # the direct map lets faiss find vectors by number
            self.index.make_direct_map()
        return super().vectors()

    def _save(self, path):
        if self.index is None:
            raise ValueError(f"an empty {self.index_type!r} index has not been trained and cannot be saved")
        super()._save(path)

    def _after_load(self):
        self.params["nlist"] = int(self.index.nlist)
        self.params["nprobe"] = self.params["nprobe"] or int(self.index.nprobe)
        self.index.nprobe = self.params["nprobe"]


class FaissIVFPQ(FaissIVF):
    """Inverted file with product-quantised residuals (`IndexIVFPQ`): `pq_m` codes of `pq_bits` bits per vector
    instead of `dim` floats. Parameters as [`FaissIVF`], plus `pq_m` (default: the largest divisor of dim that is
    at most dim/8, so 8+ dimensions per one-byte code: 32x smaller than float32 before the 8-byte ids; faiss trains
    4-dimensional sub-quantizers about 10x slower, 131 s instead of 9.5 s for 20k x 576 here) and `pq_bits` (default
    8; fewer when the training sample is too small for 2**bits centroids).

    Codes lose the fine order of close neighbours. With `keep_vectors=True` the float32 vectors are also written to
    `vectors.safetensors` beside `index.faiss` and memory-mapped on load (they stay on disk: RAM holds the codes),
    and the search parameter `rerank=R` fetches `k * R` candidates by code and re-scores them exactly with their
    vectors (`k * R` row reads per query from the mapped file). Recall depends on the data: measure it
    (benchmarks/index_scale.py)."""

    index_type = "ivfpq"
    build_params = ("nlist", "train_size", "pq_m", "pq_bits", "keep_vectors")
    search_params = ("nprobe", "rerank")

    def __init__(self, dim: int, device=None, **params):
        super().__init__(dim, device=device, **params)
        self.params["keep_vectors"] = bool(self.params["keep_vectors"])
        self.params["rerank"] = self.params["rerank"] or 1
        self._blocks: list[torch.Tensor] = []  # full vectors added in this process (keep_vectors)
        self._full: torch.Tensor | None = None  # full vectors mapped from a file (keep_vectors)
        self._writer: VectorsWriter | None = None  # where a build streams the full vectors instead of keeping them

    def training_size(self, total):
        return min(total, max(super().training_size(total), 39 * 2 ** (self.params["pq_bits"] or 8)))

    def _new_index(self, faiss, quantizer, nlist):
        m = self.params["pq_m"] or max(d for d in range(1, max(1, self.dim // 8) + 1) if self.dim % d == 0)
        if self.dim % m:
            raise ValueError(f"ivfpq: pq_m={m} must divide the vector width {self.dim}")
        bits = self.params["pq_bits"] or 8
        self.params.update(pq_m=m, pq_bits=bits)
        return faiss.IndexIVFPQ(quantizer, self.dim, nlist, m, bits, faiss.METRIC_INNER_PRODUCT)

    def train(self, sample, total=None):
        needed = 2 ** (self.params["pq_bits"] or 8)
        if sample.shape[0] < needed:  # faiss refuses fewer training points than PQ centroids
            bits = max(1, int(math.log2(sample.shape[0])))
            logger.warning(f"ivfpq: {sample.shape[0]} training vectors are too few for {needed} PQ centroids; "
                           f"using pq_bits={bits}")
            self.params["pq_bits"] = bits
        super().train(sample, total)

    # -- the full vectors (keep_vectors) ---------------------------------------------------------------------------
    def stream_vectors_to(self, writer: VectorsWriter | None) -> None:
        """Send the full vectors of later `add`s to `writer` instead of keeping them in memory (a build writes the
        file shard by shard; after `writer` is closed, `attach_vectors(map_vectors(its path))`)."""
        self._writer = writer

    def attach_vectors(self, vectors: torch.Tensor) -> None:
        """Use `vectors` (`(len(self), dim)`, usually memory-mapped) as the full vectors for re-ranking."""
        if vectors.shape != (len(self), self.dim):
            raise ValueError(f"ivfpq: {tuple(vectors.shape)} full vectors for an index of {len(self)} x {self.dim}")
        self._full, self._blocks = vectors, []

    def _full_vectors(self) -> torch.Tensor:
        if self._blocks:
            self._full = torch.cat(([self._full] if self._full is not None else []) + self._blocks)
            self._blocks = []
        return self._full

    def _add(self, vectors):
        super()._add(vectors)
        if self.params["keep_vectors"]:
            if self._writer is not None:
                self._writer.write(vectors)
            else:
                self._blocks.append(vectors)

    def _search(self, queries, k, params):
        rerank = params["rerank"]
        if rerank == 1:
            return super()._search(queries, k, params)
        if not self.params["keep_vectors"]:
            raise ValueError("ivfpq: rerank needs the full vectors; build the index with keep_vectors=True")
        scores, ids = super()._search(queries, min(len(self), k * rerank), params)
        candidates = self._full_vectors()[ids.clamp(min=0)]  # (queries, k * rerank, dim): rows read from the map
        exact = (candidates @ queries.unsqueeze(-1)).squeeze(-1).masked_fill(ids < 0, float("-inf"))
        best, order = exact.topk(k, dim=-1)
        return best, ids.gather(-1, order).masked_fill(best == float("-inf"), -1)

    def vectors(self):
        if self.params["keep_vectors"]:
            return self._full_vectors().clone()
        logger.warning_once("ivfpq: the vectors are reconstructions from product-quantised codes, not the originals")
        return super().vectors()

    # -- files -----------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> str:
        """Write `index.faiss`, and with `keep_vectors` also `vectors.safetensors` (unless a build wrote it there)."""
        name = super().save(folder)
        path = Path(folder) / VECTORS_FILE
        if self.params["keep_vectors"] and not path.exists():
            full = self._full_vectors()
            _write_vectors_in_blocks(path, len(self), self.dim, lambda a, b: full[a:b])
        return name

    def _load(self, path, mmap):
        super()._load(path, mmap)
        if self.params["keep_vectors"]:
            vectors_path = Path(path).parent / VECTORS_FILE
            if not vectors_path.is_file():
                raise ValueError(f"{VECTORS_FILE} (the full vectors kept for re-ranking) is missing")
            self.attach_vectors(map_vectors(vectors_path))

    def _after_load(self):
        super()._after_load()
        self.params.update(pq_m=int(self.index.pq.M), pq_bits=int(self.index.pq.nbits))


BACKENDS = {("torch", "flat"): ExactSearch, ("faiss", "flat"): FaissFlat, ("faiss", "hnsw"): FaissHNSW,
            ("faiss", "ivf"): FaissIVF, ("faiss", "ivfpq"): FaissIVFPQ}
INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")


def backend_class(index_type: str, backend: str | None = None) -> type[VectorSearch]:
    """The class for `index_type` and `backend` (`"faiss"`, `"torch"`, or `None`: faiss when installed). Without
    faiss, every index type falls back to exact torch search, with a warning for the approximate ones."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
    if backend is None:
        backend = "faiss" if faiss_module() is not None else "torch"
        if backend == "torch" and index_type != "flat":
            logger.warning(f"faiss is not installed: the {index_type!r} index falls back to exact torch search")
    if backend not in ("faiss", "torch"):
        raise ValueError(f"backend must be 'faiss' or 'torch', got {backend!r}")
    if backend == "faiss" and faiss_module() is None:
        raise ImportError("backend='faiss' needs faiss: pip install faiss-cpu (or faiss-gpu)")
    return BACKENDS[(backend, index_type if backend == "faiss" else "flat")]


__all__ = ["BACKENDS", "ExactSearch", "FaissFlat", "FaissHNSW", "FaissIVF", "FaissIVFPQ", "INDEX_TYPES",
           "VectorSearch", "backend_class", "faiss_has_gpu", "faiss_module"]
