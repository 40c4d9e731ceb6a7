# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build a `DocumentIndex` folder from a corpus of any size, on one process or many (`accelerate launch`), resumably.

The corpus is cut into shards of `shard_size` rows in corpus order (see `corpus_reader.py`); shard `s` is encoded by
process `s % num_processes`. Each finished shard is published atomically (written to a temporary folder, then
renamed) in the work folder `<output_dir>.building/`:

    build.json                 what identifies this build (model fingerprint, corpus, shard size, ...)
    shard-00000/vectors.safetensors   vectors (float32, (num_vectors, dim)), num_vectors (int64, (rows,)) and
                                      id_hash (int64, (rows,)) of the shard's documents
    shard-00000/documents.arrow       the shard's documents (Arrow)

A build that is stopped (killed, out of time) and started again with the same arguments skips the finished shards.
When every shard is there, the main process merges them into the index folder (again atomically), and the work
folder is removed. Memory stays flat in the corpus size: the corpus is read block by block, a process holds one
shard at a time, a flat index's vectors are copied shard by shard into its file, and the merged documents table
is memory-mapped Arrow. (An hnsw or ivf index is built in RAM at the merge, as faiss builds it; ivfpq keeps only
its codes.)

Distributed work goes through accelerate's `PartialState` (rank, world size, barriers): the same command runs on
one process and under `accelerate launch` on several processes, GPUs or machines. Not Hub-facing.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.utils import logging

from .corpus_reader import CorpusColumns, CorpusReader
from .document_index import (
    CONFIG_FILE,
    DOCUMENTS_FILE,
    DocumentIndex,
    model_fingerprint,
    write_index_config,
)
from .index_backends import VECTORS_FILE, backend_class
from .index_files import (
    DocumentsWriter,
    VectorsWriter,
    atomic_directory,
    check_replaceable,
    documents_schema_of,
    documents_table,
    id_type_of,
    load_documents,
    map_vectors,
    save_documents,
    write_text_atomically,
)


logger = logging.get_logger(__name__)

BUILD_FILE = "build.json"
SHARD_PREFIX = "shard-"


def distributed_state(use_cpu: bool | None = None):
    """accelerate's `PartialState` for this process (rank, world size, device, barriers). `use_cpu=None` picks the CPU
    (gloo) when accelerate says so (`ACCELERATE_USE_CPU`, as `accelerate launch --cpu` sets it) or when the processes
    were launched (`LOCAL_RANK` set) on a machine with no accelerator accelerate could use instead: `PartialState`
    alone would then start each process on its own."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    if use_cpu is None:
        use_cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (
            os.environ.get("LOCAL_RANK", "-1") != "-1" and not _has_accelerator())
    return PartialState(cpu=use_cpu)


def _has_accelerator() -> bool:
    import accelerate.utils as accelerate_utils

    if torch.cuda.is_available():
        return True
    checks = ("is_xpu_available", "is_npu_available", "is_mlu_available", "is_musa_available", "is_sdaa_available")
    return any(getattr(accelerate_utils, name, lambda: False)() for name in checks)


def work_folder(output_dir: str | os.PathLike) -> Path:
    """Where the shards of a build of `output_dir` live until the merge: the sibling `<output_dir>.building`."""
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + ".building")


def shard_folder(work: Path, shard: int) -> Path:
    return work / f"{SHARD_PREFIX}{shard:05d}"


def shard_tensor(shard: Path, name: str) -> torch.Tensor:
    """One tensor (`vectors`, `num_vectors` or `id_hash`) of a shard's safetensors file, reading only it."""
    with safe_open(str(shard / VECTORS_FILE), framework="pt") as file:
        return file.get_tensor(name)


def id_hashes(ids: list) -> torch.Tensor:
    """64-bit hashes of document ids (`(len(ids),)` int64), to find duplicates across shards in 8 bytes per id."""
    digests = b"".join(hashlib.blake2b(json.dumps(i).encode(), digest_size=8).digest() for i in ids)
    return torch.from_numpy(np.frombuffer(digests, dtype=np.int64).copy())


def build_index(
    model,
    tokenizer,
    corpus,
    output_dir: str | os.PathLike,
    index_type: str = "flat",
    backend: str | None = None,
    batch_size: int = 32,
    shard_size: int = 10_000,
    max_length: int | None = None,
    columns: CorpusColumns | None = None,
    split: str = "train",
    overwrite: bool = False,
    state=None,
    show_progress_bar: bool = True,
    **index_params,
) -> Path:
    r"""
    Encode `corpus` with `model` shard by shard and write a [`DocumentIndex`] folder to `output_dir`.

    Call it on every process of an `accelerate launch` (each encodes its shards; the main process merges); on one
    process it does all the work. A run stopped midway resumes from its finished shards when called again with the
    same arguments.

    Args:
        model: a OneGen model, on the device this process encodes with; `tokenizer`: its tokenizer.
        corpus: a path (JSON Lines, Parquet, a `save_to_disk` folder, a `load_dataset` name), a `datasets.Dataset`
            or `IterableDataset`, or a list of documents (see `corpus_reader.py`).
        output_dir: the index folder to write (an existing index there is replaced only with `overwrite`).
        index_type, backend, **index_params: see [`DocumentIndex`] (`nlist`, `nprobe`, `pq_m`, `hnsw_m`, ...).
        batch_size (`int`): documents per forward pass. shard_size (`int`): documents per shard (the unit of
            resumption and of the work split between processes).
        max_length (`int`, *optional*): truncation length (document tokens are kept).
        columns ([`CorpusColumns`], *optional*): field names of id, text and title in the corpus rows.
        split (`str`): the split of a `DatasetDict` or `load_dataset` name.
        overwrite (`bool`): replace an index already in `output_dir` (a build in progress is resumed regardless).
        state (`accelerate.PartialState`, *optional*): the process state (default: [`distributed_state`]).

    Returns:
        `Path` of the index folder (written by the main process; the other processes return once their shards are
        written).
    """
    if state is None:
        state = distributed_state()
    output_dir, work = Path(output_dir), work_folder(output_dir)
    dim = model.config.text_config.hidden_size
    DocumentIndex(dim, index_type=index_type, backend=backend, **index_params)  # bad options fail before encoding
    reader = CorpusReader(corpus, shard_size, columns, split)
    fingerprint = model_fingerprint(model)
    identity = {
        "model_fingerprint": fingerprint, "corpus": reader.describe(), "shard_size": shard_size,
        "columns": vars(reader.columns), "split": split, "max_length": max_length,
    }
    if state.is_main_process:
        _prepare_work_folder(output_dir, work, identity, overwrite)
    state.wait_for_everyone()
    _check_identity(work, identity)

    started = time.perf_counter()
    encoded = _encode_shards(model, tokenizer, reader, work, state, batch_size, max_length, show_progress_bar)
    state.wait_for_everyone()  # every shard is written
    seconds = time.perf_counter() - started
    totals = torch.tensor([[encoded, reader.num_rows]], dtype=torch.long)
    if state.num_processes > 1:
        from accelerate.utils import gather

        totals = gather(totals.to(state.device)).view(-1, 2).cpu()
    per_process, num_rows = totals[:, 0].tolist(), int(totals[:, 1].max())
    encoded = sum(per_process)
    if state.is_main_process:
        build_info = {
            "processes": state.num_processes, "documents_encoded": encoded,
            "documents_encoded_per_process": per_process, "encode_seconds": round(seconds, 3),
            "documents_per_second": round(encoded / seconds, 2) if encoded and seconds > 0 else None,
            "shard_size": shard_size, "corpus": identity["corpus"],
        }
        merge_shards(work, output_dir, num_rows, shard_size, fingerprint, dim, index_type, backend, build_info,
                     index_params)
        shutil.rmtree(work, ignore_errors=True)
        logger.info(f"Wrote {output_dir}: {num_rows} documents ({encoded} encoded in this run, {seconds:.1f} s)")
    return output_dir


def _prepare_work_folder(output_dir: Path, work: Path, identity: dict, overwrite: bool) -> None:
    """Create the work folder (or check that it belongs to this build), and clear half-written shards."""
    check_replaceable(output_dir, CONFIG_FILE, "DocumentIndex")
    if (output_dir / CONFIG_FILE).is_file() and not overwrite and not work.is_dir():
        raise FileExistsError(f"{output_dir} already holds a DocumentIndex; pass --overwrite (overwrite=True) to "
                              "rebuild it")
    if work.is_dir():
        if not (work / BUILD_FILE).is_file():
            raise FileExistsError(f"{work} exists but holds no {BUILD_FILE}: it is not a build's work folder; "
                                  "move or delete it")
        for stale in work.glob(f".{SHARD_PREFIX}*"):  # temporary folders of shards a killed run was writing
            shutil.rmtree(stale, ignore_errors=True)
        done = len(list(work.glob(f"{SHARD_PREFIX}*")))
        logger.warning(f"Resuming the build in {work}: {done} shard(s) are already encoded")
        return
    work.mkdir(parents=True)
    write_text_atomically(work / BUILD_FILE, json.dumps(identity, indent=2) + "\n")


def _check_identity(work: Path, identity: dict) -> None:
    recorded = json.loads((work / BUILD_FILE).read_text())
    different = sorted(key for key in identity if recorded.get(key) != identity[key])
    if different:
        raise ValueError(
            f"{work} holds the shards of another build (it differs in {different}: {work / BUILD_FILE} says "
            f"{ {k: recorded.get(k) for k in different} }); delete {work} to start this build afresh"
        )


def _encode_shards(model, tokenizer, reader: CorpusReader, work: Path, state, batch_size: int,
                   max_length: int | None, show_progress_bar: bool) -> int:
    """Encode this process's unfinished shards; returns how many documents it encoded."""
    rank, world = state.process_index, state.num_processes
    done = {int(p.name[len(SHARD_PREFIX):]) for p in work.glob(f"{SHARD_PREFIX}*")}
    mine = lambda shard: shard % world == rank and shard not in done  # noqa: E731
    progress = logging.tqdm(desc=f"Encoding (process {rank})", unit="doc", total=reader.num_rows,
                            disable=not (show_progress_bar and state.is_local_main_process))
    encoded = 0
    for block in reader.read_blocks(wanted=mine):
        # The model renders each record (`OneGenForCausalLM.render_document`) as it was trained to read documents.
        vectors = model.encode_documents(block.records, tokenizer, batch_size=batch_size, max_length=max_length,
                                         show_progress_bar=False)
        counts = torch.bincount(vectors.text_index, minlength=len(block.records))
        _write_shard(work, block.index, block.records, vectors.embeddings, counts, block.start)
        encoded += len(block.records)
        progress.update(len(block.records) * world)  # the others advance at about the same pace
    progress.close()
    return encoded


def _write_shard(work: Path, shard: int, records: list[dict], embeddings: torch.Tensor, counts: torch.Tensor,
                 first_row: int) -> None:
    """Publish one shard atomically: a temporary folder renamed to `shard-NNNNN` once complete."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{SHARD_PREFIX}{shard:05d}-", dir=work))
    try:
        id_type = id_type_of([r["id"] for r in records], offset=first_row)
        save_documents(documents_table(records, counts.tolist(), id_type=id_type), tmp / DOCUMENTS_FILE)
        save_file({"vectors": embeddings.float().contiguous(), "num_vectors": counts.to(torch.int64).contiguous(),
                   "id_hash": id_hashes([r["id"] for r in records])}, str(tmp / VECTORS_FILE),
                  metadata={"first_row": str(first_row), "id_type": id_type})
        os.replace(tmp, shard_folder(work, shard))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def merge_shards(work: Path, output_dir: Path, num_rows: int, shard_size: int, fingerprint: str, dim: int,
                 index_type: str, backend: str | None, build_info: dict, index_params: dict) -> None:
    """Merge the shards of `work` into the index folder `output_dir` (atomically), shard by shard: one shard's
    vectors and one shard's documents file are open at a time."""
    num_shards = -(-num_rows // shard_size)
    if num_rows == 0:
        raise ValueError("the corpus is empty; an index needs at least one document")
    missing = [s for s in range(num_shards) if not shard_folder(work, s).is_dir()]
    if missing:
        raise RuntimeError(f"{work} lacks shard(s) {missing[:10]} of {num_shards}; run the build again to finish them")
    shards = [shard_folder(work, s) for s in range(num_shards)]
    _check_ids(shards, shard_size)
    counts = [shard_tensor(s, "num_vectors") for s in shards]
    num_vectors = int(sum(int(c.sum()) for c in counts))
    max_per_document = max(int(c.max()) for c in counts)
    searcher_class = backend_class(index_type, backend)
    with atomic_directory(output_dir, CONFIG_FILE, what="DocumentIndex") as tmp:
        if searcher_class.data_file == VECTORS_FILE:  # flat: the vectors go to their file one shard at a time
            with VectorsWriter(tmp / VECTORS_FILE, num_vectors, dim) as writer:
                for shard in shards:
                    writer.write(shard_tensor(shard, "vectors"))
            params, data_file = {}, VECTORS_FILE
        else:
            searcher = DocumentIndex(dim, index_type=index_type, backend=backend, **index_params).searcher
            if searcher.needs_training:
                searcher.train(_training_sample(shards, num_vectors, searcher.training_size(num_vectors)), num_vectors)
            # ivfpq with keep_vectors: the full vectors go to their file shard by shard, not into memory
            keep = searcher.params.get("keep_vectors")
            writer = VectorsWriter(tmp / VECTORS_FILE, num_vectors, dim) if keep else None
            if writer is not None:
                searcher.stream_vectors_to(writer)
            for shard in logging.tqdm(shards, desc="Indexing shards", unit="shard"):
                searcher.add(shard_tensor(shard, "vectors"))
            if writer is not None:
                writer.close()
                searcher.stream_vectors_to(None)
                searcher.attach_vectors(map_vectors(tmp / VECTORS_FILE))
            params, data_file = searcher.params, searcher.save(tmp)
        with DocumentsWriter(tmp / DOCUMENTS_FILE) as documents:
            for shard in shards:
                documents.append_file(shard / DOCUMENTS_FILE)
        write_index_config(tmp, dim, searcher_class.index_type, searcher_class.backend, params, num_rows, num_vectors,
                           max_per_document, fingerprint, data_file, build=build_info)


def _training_sample(shards: list[Path], total: int, size: int) -> torch.Tensor:
    """`size` vectors evenly spaced over all `total` vectors of the shards (`(size, dim)`), read shard by shard."""
    wanted = torch.linspace(0, total - 1, size).round().long().unique()
    picked, offset = [], 0
    for shard in shards:
        vectors = shard_tensor(shard, "vectors")
        inside = wanted[(wanted >= offset) & (wanted < offset + vectors.shape[0])] - offset
        picked.append(vectors[inside])
        offset += vectors.shape[0]
    return torch.cat(picked)


def _check_ids(shards: list[Path], shard_size: int) -> None:
    """Ids must be unique across the corpus and of one type: checked with 8-byte hashes (a hash collision is then
    told apart from a real duplicate by comparing the ids themselves)."""
    id_types = [documents_schema_of(s / DOCUMENTS_FILE).field("id").type for s in shards]
    first = next((i for i, t in enumerate(id_types) if t != id_types[0]), None)
    if first is not None:
        raise ValueError(f"document ids are {id_types[0]} in the first shard but {id_types[first]} in shard {first} "
                         f"(rows from {first * shard_size}); ids must be all str or all int")
    hashes = torch.cat([shard_tensor(s, "id_hash") for s in shards]).numpy()
    order = np.argsort(hashes, kind="stable")
    same = np.nonzero(hashes[order][1:] == hashes[order][:-1])[0]

    def id_at(row: int):
        return load_documents(shards[row // shard_size] / DOCUMENTS_FILE)[row % shard_size]["id"]

    for j in same:
        a, b = sorted((int(order[j]), int(order[j + 1])))
        if id_at(a) == id_at(b):
            raise ValueError(f"document id {id_at(a)!r} appears at corpus rows {a} and {b}; ids must be unique")


__all__ = ["build_index", "distributed_state", "merge_shards", "work_folder"]
