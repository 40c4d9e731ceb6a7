# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Indexing at scale: encoding throughput over processes, memory of whole builds, and faiss index types at 1M vectors.

Three parts, each run as it would be used (`onegen index` in child processes, the index backends of `DocumentIndex`):

1. encode: documents/s of `onegen index` with the default model (SmolLM2-135M-Instruct,
   `onegen.load_default_base_model`, wrapped as an untrained OneGen model: the speed does not depend on training) on
   the first `--encode_docs` documents of the WordNet KB (`<onegen cache>/datasets/wn-el/kb.jsonl`), on 1 process
   and on 2 processes (`accelerate launch`, gloo), one torch thread each. The rate is the build's own
   `documents_per_second` (encoding, from the first shard to the last, model loading excluded), also reported with
   the whole command's wall time.
2. rss: peak resident memory (`wait4` of the build process, from a small launcher) of whole `onegen index` builds
   (flat index) of `--rss_sizes` short synthetic documents with a tiny random model (Llama, 2 layers, width 64, the
   real tokenizer): what grows there is the pipeline's memory, not the model's.
3. vectors: `--num_vectors` synthetic unit vectors of the real model's width (576), clustered (`--clusters` centres;
   members at cosine ~0.5 of each other) with planted near neighbours: each of `--num_queries` queries has 10
   database vectors at cosine 0.65-0.89 of it (`--planted_cosines`; below ~0.62 the last ones tie with background
   vectors). Per index type and search setting: build time (train + add), bytes
   per vector (saved file / N), queries/s at batch 1 and 64, recall@10 against the exact (flat) top-10.

Targets (issue 12): 1M-document build peak RSS <= 1.3x the 100k build's; IVF-PQ recall@10 >= 0.90 with >= 8x
fewer bytes per vector than flat; HNSW recall@10 >= 0.95 at >= 5x flat's queries/s at batch 1; 2 processes
encode >= 1.7x the documents/s of 1 (one thread each).

    python benchmarks/index_scale.py                                  # everything (about an hour on 2 idle cores)
    python benchmarks/index_scale.py --parts vectors --num_vectors 20000 --encode_docs 200 --rss_sizes 2000,20000
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402


WIDTH = 576  # SmolLM2-135M's hidden size
TARGETS = {"rss_ratio_max": 1.3, "ivfpq_recall_min": 0.90, "ivfpq_compression_min": 8.0, "hnsw_recall_min": 0.95,
           "hnsw_speedup_min": 5.0, "two_process_speedup_min": 1.7}
WORDS = ("the river city state country mountain president book song film team north south east west lake island "
         "capital largest small old new famous known located born wrote plays built founded near across between "
         "history music science museum bridge station market garden harbour valley forest desert coast").split()


def child_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_measured(command: list[str], env: dict) -> dict:
    """Run `command` as a child process; its wall time and peak RSS (`wait4`'s ru_maxrss, the child alone)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate()  # the process has exited; its rusage is still ours to collect
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed ({process.returncode}):\n{err[-3000:]}")
    return {"seconds": seconds, "stdout": out, "stderr": err}


# Runs a command and prints its peak RSS in KiB. The command must not be forked from the benchmark itself: Linux
# starts a forked child's high-water mark at the parent's resident size (up to gigabytes here, with 1M vectors in
# memory) and keeps it through exec, so a small launcher (this snippet, forked after its own exec) stands between.
_RSS_LAUNCHER = ("import os, subprocess, sys; process = subprocess.Popen(sys.argv[1:]); "
                 "_, status, usage = os.wait4(process.pid, 0); "
                 "print(f'PEAK_RSS_KB {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}', file=sys.stderr)")


def run_with_rss(command: list[str], env: dict) -> dict:
    """Run `command`; its wall time and its own peak RSS (`wait4` of the process, from a small launcher)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _RSS_LAUNCHER, *command], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    line = next((line for line in reversed(result.stderr.splitlines()) if line.startswith("PEAK_RSS_KB ")), None)
    if line is None or line.split()[2] != "0":
        raise RuntimeError(f"{' '.join(command[:6])} ... failed:\n{result.stderr[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": int(line.split()[1]) / 1024}


def index_command(model_dir: Path, corpus: Path, output: Path, *extra) -> list[str]:
    return ["-m", "onegen.cli", "index", "--model", str(model_dir), "--corpus", str(corpus), "--output_dir",
            str(output), "--num_threads", "1", *extra]


def build_info(output: Path) -> dict:
    return json.loads((output / "index_config.json").read_text())["build"]


# ------------------------------------------------------------------------------------------------------------------
# 1. Encoding throughput, 1 vs 2 processes, default model
# ------------------------------------------------------------------------------------------------------------------
def part_encode(args, work: Path) -> dict:
    import onegen
    from onegen import OneGenForCausalLM

    base, tokenizer = onegen.load_default_base_model()
    model = OneGenForCausalLM.from_base_model(base, tokenizer, context_tags=("<paragraph>", "</paragraph>"))
    model.save_pretrained(work / "smollm2-onegen")
    tokenizer.save_pretrained(work / "smollm2-onegen")
    del model, base
    kb = Path(args.kb).expanduser()
    lines = []
    with open(kb, encoding="utf-8") as file:
        for line in file:
            lines.append(line)
            if len(lines) == args.encode_docs:
                break
    corpus = work / "kb-subset.jsonl"
    corpus.write_text("".join(lines))
    extra = ["--id_column", "doc_id", "--batch_size", str(args.batch_size), "--shard_size", str(args.encode_shard)]
    results = {}
    for processes in (1, 2):
        output = work / f"encode-{processes}"
        command = [sys.executable, *index_command(work / "smollm2-onegen", corpus, output, *extra)]
        if processes == 2:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines",
                       "1", "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_port", str(port), *command[1:]]
        print(f"[encode] {processes} process(es), {len(lines)} documents ...", flush=True)
        run = run_measured(command, child_env(1))
        info = build_info(output)
        results[processes] = {"documents": info["documents_encoded"], "encode_seconds": info["encode_seconds"],
                              "documents_per_second": info["documents_per_second"],
                              "wall_seconds": round(run["seconds"], 1),
                              "per_process": info["documents_encoded_per_process"]}
        print(f"[encode]   {results[processes]}", flush=True)
        shutil.rmtree(output)
    speedup = results[2]["documents_per_second"] / results[1]["documents_per_second"]
    full_kb = args.full_kb_size
    return {"model": onegen.DEFAULT_BASE_MODEL_NAME, "corpus": str(kb), "documents": len(lines),
            "batch_size": args.batch_size, "processes": results, "speedup": round(speedup, 2),
            "full_kb_documents": full_kb,
            "full_kb_hours_1": round(full_kb / results[1]["documents_per_second"] / 3600, 2),
            "full_kb_hours_2": round(full_kb / results[2]["documents_per_second"] / 3600, 2)}


# ------------------------------------------------------------------------------------------------------------------
# 2. Peak RSS of whole builds, tiny model
# ------------------------------------------------------------------------------------------------------------------
def tiny_model(folder: Path) -> None:
    from transformers import AutoModelForCausalLM, LlamaConfig

    import onegen
    from onegen import OneGenForCausalLM

    _, tokenizer = onegen.load_default_base_model()
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True))
    model = OneGenForCausalLM.from_base_model(base, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def synthetic_corpus(path: Path, n: int) -> None:
    """`n` short documents (8-16 words, an id and a title), written as JSON Lines."""
    rng = random.Random(n)
    with open(path, "w", encoding="utf-8") as file:
        for i in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
            file.write(json.dumps({"id": f"doc-{i}", "title": f"{rng.choice(WORDS)} {i}", "text": words}) + "\n")


def part_rss(args, work: Path) -> dict:
    tiny_model(work / "tiny")
    results = {}
    for size in args.rss_sizes:
        corpus, output = work / f"synthetic-{size}.jsonl", work / f"rss-{size}"
        synthetic_corpus(corpus, size)
        print(f"[rss] building an index of {size:,} documents ...", flush=True)
        run = run_with_rss([sys.executable, *index_command(work / "tiny", corpus, output, "--batch_size", "64")],
                           child_env(1))
        info = build_info(output)
        results[size] = {"peak_rss_mb": round(run["peak_rss_mb"], 1), "wall_seconds": round(run["seconds"], 1),
                         "documents_per_second": info["documents_per_second"],
                         "index_mb": round(sum(f.stat().st_size for f in output.rglob("*") if f.is_file()) / 2**20, 1)}
        print(f"[rss]   {results[size]}", flush=True)
        shutil.rmtree(output)
        corpus.unlink()
    small, large = min(results), max(results)
    return {"model": "tiny random Llama (2 layers, width 64, SmolLM2 tokenizer)", "builds": results,
            "ratio": round(results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"], 3),
            "sizes": [small, large]}


# ------------------------------------------------------------------------------------------------------------------
# 3. Index types on 1M synthetic vectors
# ------------------------------------------------------------------------------------------------------------------
def synthetic_vectors(n: int, queries: int, clusters: int, planted: tuple[float, float] = (0.65, 0.89),
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of width 576: cluster members (cosine 0.50 +- 0.03 to each other and to a query of their
    cluster; the closest of 1,000 at about 0.58) and, for every query, 10 planted neighbours at cosines evenly spread
    over `planted` (highest first), written over random database rows."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(clusters, WIDTH, generator=generator), dim=-1)
    sigma = 1.0 / WIDTH ** 0.5  # noise of norm ~1: members at cosine ~0.5 of each other, ~0.7 of their centre
    base = np.empty((n, WIDTH), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        members = centres[torch.randint(clusters, (stop - start,), generator=generator)]
        base[start:stop] = torch.nn.functional.normalize(
            members + sigma * torch.randn(stop - start, WIDTH, generator=generator), dim=-1).numpy()
    query_centres = centres[torch.randint(clusters, (queries,), generator=generator)]
    q = torch.nn.functional.normalize(query_centres + sigma * torch.randn(queries, WIDTH, generator=generator), dim=-1)
    rows = torch.randperm(n, generator=generator)[: queries * 10].view(queries, 10)
    # Noise of norm `level` puts a planted vector at cosine 1/sqrt(1 + level^2) of its query. Above ~0.62 the exact
    # top-10 is the planted set; lower, the last planted ones tie with the query's closest cluster members, and
    # recall@10 then also counts which of near-equal background vectors (within ~0.01) an index returns.
    low, high = planted
    levels = torch.linspace((1 / high**2 - 1) ** 0.5, (1 / low**2 - 1) ** 0.5, 10)
    for j in range(10):
        near = q + levels[j] * sigma * torch.randn(queries, WIDTH, generator=generator)
        base[rows[:, j].numpy()] = torch.nn.functional.normalize(near, dim=-1).numpy()
    return base, q.numpy()


def queries_per_second(searcher, queries: np.ndarray, batch: int, count: int, **params) -> float:
    tensor = torch.from_numpy(queries[:count])
    start = time.perf_counter()
    for i in range(0, count, batch):
        searcher.search(tensor[i:i + batch], 10, **params)
    return count / (time.perf_counter() - start)


def part_vectors(args, work: Path) -> dict:
    """Each index type is built as `onegen index` builds it (trained on an evenly spaced sample, filled 100k vectors
    at a time; ivfpq streams its kept float32 vectors to disk), saved, freed, and loaded back as `DocumentIndex.load`
    does before it is searched. RAM bytes/vector is the size of what search holds in memory (the faiss file, or the
    flat vectors) over N; disk bytes/vector adds the float32 vectors ivfpq keeps memory-mapped for re-ranking."""
    import faiss

    from onegen.pipelines.index_backends import VECTORS_FILE, backend_class
    from onegen.pipelines.index_files import VectorsWriter, map_vectors

    # torch and faiss share one OpenMP runtime here: torch's lazy thread setup on its next operation would reset
    # faiss's thread count to torch's, so both get the same count (and torch goes back to 1 afterwards).
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    print(f"[vectors] generating {args.num_vectors:,} x {WIDTH} vectors ...", flush=True)
    base, queries = synthetic_vectors(args.num_vectors, args.num_queries, args.clusters, args.planted_cosines)
    n = len(base)
    settings = {
        "flat": ({}, [{}]),
        "hnsw": ({"hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction},
                 [{"ef_search": e} for e in (64, 128, 256, 512)]),
        "ivf": ({"nlist": args.nlist}, [{"nprobe": p} for p in (8, 32, 64)]),
        "ivfpq": ({"nlist": args.nlist, "pq_m": args.pq_m, "keep_vectors": True},
                  [{"nprobe": p, "rerank": 1} for p in (8, 32, 64)] + [{"nprobe": 32, "rerank": r} for r in (4, 10)]),
    }
    rows, exact = [], None
    for index_type in args.index_types:
        build_params, searches = settings[index_type]
        cls = backend_class(index_type, "faiss")
        searcher = cls(WIDTH, **{k: v for k, v in build_params.items() if v is not None})
        folder = work / f"vectors-{index_type}"
        folder.mkdir()
        print(f"[vectors] {index_type} {build_params}: building ...", flush=True)
        start = time.perf_counter()
        if searcher.needs_training:
            sample = base[np.linspace(0, n - 1, searcher.training_size(n)).astype(np.int64)]
            searcher.train(torch.from_numpy(sample), n)
        writer = VectorsWriter(folder / VECTORS_FILE, n, WIDTH) if build_params.get("keep_vectors") else None
        if writer is not None:
            searcher.stream_vectors_to(writer)
        for i in range(0, n, 100_000):
            searcher.add(torch.from_numpy(base[i:i + 100_000]))
        if writer is not None:
            writer.close()
            searcher.stream_vectors_to(None)
            searcher.attach_vectors(map_vectors(folder / VECTORS_FILE))
        build_seconds = time.perf_counter() - start
        data_file = searcher.save(folder)
        params = dict(searcher.params)
        del searcher
        ram_bytes = (folder / data_file).stat().st_size
        disk_bytes = sum(f.stat().st_size for f in folder.iterdir())
        searcher = cls.load(folder / data_file, WIDTH, params)
        assert faiss.omp_get_max_threads() == args.threads, faiss.omp_get_max_threads()
        for search in searches:
            ids = searcher.search(torch.from_numpy(queries), 10, **search)[1].numpy()
            if index_type == "flat":
                exact = ids
            recall = None if exact is None else float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)]))
            row = {
                "index": index_type,
                "build": {k: v for k, v in params.items() if k in ("hnsw_m", "ef_construction", "nlist", "pq_m")},
                "search": search, "build_seconds": round(build_seconds, 1),
                "ram_bytes_per_vector": round(ram_bytes / n, 1), "disk_bytes_per_vector": round(disk_bytes / n, 1),
                "qps_batch1": round(queries_per_second(searcher, queries, 1, args.batch1_queries[index_type],
                                                       **search), 1),
                "qps_batch64": round(queries_per_second(searcher, queries, 64, min(len(queries), 640), **search), 1),
                "recall_at_10": round(recall, 4) if recall is not None else None,
            }
            rows.append(row)
            print(f"[vectors]   {row}", flush=True)
        del searcher
        shutil.rmtree(folder)
    threads = faiss.omp_get_max_threads()  # before torch, which shares the OpenMP runtime, goes back to 1
    torch.set_num_threads(1)
    return {"num_vectors": n, "width": WIDTH, "queries": len(queries), "clusters": args.clusters,
            "planted_cosines": list(args.planted_cosines), "threads": threads, "rows": rows}


# ------------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------------
def verdicts(report: dict) -> list[tuple[str, str, str, bool]]:
    """(target, measured, condition, passed) per target whose part ran."""
    out = []
    if "rss" in report:
        r = report["rss"]
        out.append((f"peak RSS {r['sizes'][1]:,} docs <= 1.3x {r['sizes'][0]:,} docs", f"{r['ratio']:.2f}x",
                    "<= 1.3", r["ratio"] <= TARGETS["rss_ratio_max"]))
    if "vectors" in report:
        rows = report["vectors"]["rows"]
        flat = next((r for r in rows if r["index"] == "flat"), None)
        if flat:
            def compression(r):
                return flat["ram_bytes_per_vector"] / r["ram_bytes_per_vector"]

            for label, rerank in (("ivfpq", False), ("ivfpq + exact re-rank of candidates from disk", True)):
                pq = [r for r in rows if r["index"] == "ivfpq" and (r["search"].get("rerank", 1) > 1) == rerank]
                good = [r for r in pq if r["recall_at_10"] >= TARGETS["ivfpq_recall_min"]
                        and compression(r) >= TARGETS["ivfpq_compression_min"]]
                best = max(good or pq, key=lambda r: (r["recall_at_10"], r["qps_batch1"]), default=None)
                if best:
                    disk = (f", disk {best['disk_bytes_per_vector']:.0f} B/vector vs flat's "
                            f"{flat['disk_bytes_per_vector']:.0f}") if rerank else ""
                    out.append((f"{label}: recall@10 >= 0.90 with >= 8x fewer bytes/vector in RAM",
                                f"recall {best['recall_at_10']:.3f}, RAM {compression(best):.1f}x{disk} "
                                f"({best['search']})", ">= 0.90, >= 8x", bool(good)))
            hnsw = [r for r in rows if r["index"] == "hnsw"]
            good = [r for r in hnsw if r["recall_at_10"] >= TARGETS["hnsw_recall_min"]
                    and r["qps_batch1"] / flat["qps_batch1"] >= TARGETS["hnsw_speedup_min"]]
            best = good[0] if good else max(hnsw, key=lambda r: r["recall_at_10"], default=None)
            if best:
                out.append(("hnsw recall@10 >= 0.95 at >= 5x flat q/s (batch 1)",
                            f"recall {best['recall_at_10']:.3f}, {best['qps_batch1'] / flat['qps_batch1']:.0f}x "
                            f"({best['search']})", ">= 0.95, >= 5x", bool(good)))
    if "encode" in report:
        e = report["encode"]
        out.append(("2 processes >= 1.7x the docs/s of 1", f"{e['speedup']:.2f}x", ">= 1.7",
                    e["speedup"] >= TARGETS["two_process_speedup_min"]))
    return out


def print_report(report: dict) -> None:
    if "encode" in report:
        e = report["encode"]
        print(f"\nEncoding, {e['model']}, {e['documents']:,} WordNet KB documents, batch {e['batch_size']}, 1 thread "
              "per process:")
        for p, r in e["processes"].items():
            print(f"  {p} process(es): {r['documents_per_second']:.1f} docs/s (encoding {r['encode_seconds']:.0f} s, "
                  f"command {r['wall_seconds']:.0f} s)")
        print(f"  the full {e['full_kb_documents']:,}-document KB: {e['full_kb_hours_1']:.1f} h on 1 process, "
              f"{e['full_kb_hours_2']:.1f} h on 2")
    if "rss" in report:
        print(f"\nWhole builds (onegen index, flat), {report['rss']['model']}:")
        for size, r in report["rss"]["builds"].items():
            print(f"  {int(size):>9,} docs: peak RSS {r['peak_rss_mb']:7.1f} MB, {r['wall_seconds']:6.1f} s, "
                  f"{r['documents_per_second']:.0f} docs/s, index {r['index_mb']:.0f} MB")
    if "vectors" in report:
        v = report["vectors"]
        print(f"\n{v['num_vectors']:,} synthetic unit vectors x {v['width']}, {v['clusters']} clusters, "
              f"{v['queries']} queries with 10 planted neighbours at cosine "
              f"{v['planted_cosines'][0]}-{v['planted_cosines'][1]}, "
              f"{v['threads']} faiss thread(s):")
        print(f"  {'index':6} {'build':40} {'search':26} {'build s':>8} {'RAM B/v':>8} {'disk B/v':>8} {'q/s b=1':>9} "
              f"{'q/s b=64':>9} {'recall@10':>9}")
        for r in v["rows"]:
            print(f"  {r['index']:6} {json.dumps(r['build']):40} {json.dumps(r['search']):26} "
                  f"{r['build_seconds']:8.1f} "
                  f"{r['ram_bytes_per_vector']:8.1f} {r['disk_bytes_per_vector']:8.1f} {r['qps_batch1']:9.1f} "
                  f"{r['qps_batch64']:9.1f} {r['recall_at_10']:9.4f}")
    print("\nTargets:")
    for target, measured, condition, passed in verdicts(report):
        print(f"  {'PASS' if passed else 'MISS'}  {target}: {measured}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="encode,rss,vectors", help="comma-separated: encode, rss, vectors")
    parser.add_argument("--kb", default=None,
                        help="WordNet KB JSON Lines (default: <onegen cache>/datasets/wn-el/kb.jsonl)")
    parser.add_argument("--encode_docs", type=int, default=5000)
    parser.add_argument("--encode_shard", type=int, default=250, help="shard size of the encoding runs")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--full_kb_size", type=int, default=117_659, help="documents of the full WordNet KB")
    parser.add_argument("--rss_sizes", default="100000,1000000")
    parser.add_argument("--num_vectors", type=int, default=1_000_000)
    parser.add_argument("--num_queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--planted_cosines", default="0.65,0.89",
                        help="lowest,highest cosine of the 10 planted neighbours to their query (below ~0.62 the "
                             "last ones tie with background vectors)")
    parser.add_argument("--index_types", default="flat,hnsw,ivf,ivfpq")
    parser.add_argument("--hnsw_m", type=int, default=32, help="hnsw graph degree (the library's default)")
    parser.add_argument("--ef_construction", type=int, default=200, help="hnsw build breadth (the library's default)")
    parser.add_argument("--nlist", type=int, default=1024, help="IVF cells (1M vectors: 1024, 977 vectors per cell)")
    parser.add_argument("--pq_m", type=int, default=None, help="ivfpq codes per vector (default: the library's, 72)")
    parser.add_argument("--threads", type=int, default=1, help="faiss threads for the vectors part")
    parser.add_argument("--output", default="index_scale_report.json", help="JSON report path")
    parser.add_argument("--work_dir", default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from onegen.default_model import default_cache_dir

    args.kb = args.kb or str(default_cache_dir() / "datasets" / "wn-el" / "kb.jsonl")
    args.rss_sizes = [int(s) for s in args.rss_sizes.split(",")]
    args.index_types = args.index_types.split(",")
    args.planted_cosines = tuple(float(c) for c in args.planted_cosines.split(","))
    flat_batch1 = 20 if args.num_vectors > 200_000 else 100  # flat at batch 1 scans every vector per query
    args.batch1_queries = {"flat": flat_batch1, "hnsw": 1000, "ivf": 200, "ivfpq": 500}
    parts = args.parts.split(",")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="index-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                         f"{'GPU' if torch.cuda.is_available() else 'no GPU'}", "targets": TARGETS}
    try:
        if "rss" in parts:
            report["rss"] = part_rss(args, work)
        if "vectors" in parts:
            report["vectors"] = part_vectors(args, work)
        if "encode" in parts:
            report["encode"] = part_encode(args, work)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    report["verdicts"] = [{"target": t, "measured": m, "condition": c, "pass": p} for t, m, c, p in verdicts(report)]
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nreport: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
