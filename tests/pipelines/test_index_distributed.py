"""`onegen index` as real processes: 2 processes under `accelerate launch` (gloo) build what 1 builds, and a build
killed with SIGKILL resumes from its finished shards."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from pipeline_helpers import DOCS, PipelineModelTester

from onegen import DocumentIndex
from onegen.pipelines.index_builder import build_index


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def index_command(model_dir, corpus, output_dir, *extra):
    return ["-m", "onegen.cli", "index", "--model", str(model_dir), "--corpus", str(corpus), "--output_dir",
            str(output_dir), "--num_threads", "1", *extra]


def accelerate_launch(args, timeout=600):
    """`accelerate launch` with 2 CPU processes (`--multi_gpu` on a machine without GPUs starts 2 torchrun workers
    that join a gloo process group; `--cpu` alone would start one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
               "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model, tokenizer = PipelineModelTester().get_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model


def write_corpus(path, n):
    rows = [{"id": f"d{i}", "text": f"{DOCS[i % 5]} number {i}" + ("[RD] second part[RD]" if i == 7 else ""),
             **({"title": f"title {i}"} if i % 3 == 0 else {})} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def assert_same(a: DocumentIndex, b: DocumentIndex):
    assert a.ids == b.ids and [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    (va, da), (vb, db) = a.vectors(), b.vectors()
    torch.testing.assert_close(va, vb, atol=1e-5, rtol=0)
    assert torch.equal(da, db)


@pytest.mark.slow
def test_two_processes_build_the_index_one_process_builds(tmp_path, saved_model):
    model_dir, model = saved_model
    rows = write_corpus(tmp_path / "kb.jsonl", 37)
    two = accelerate_launch(index_command(model_dir, tmp_path / "kb.jsonl", tmp_path / "two", "--shard_size", "4"))
    assert two.returncode == 0, two.stderr[-4000:]
    one = subprocess.run([sys.executable, *index_command(model_dir, tmp_path / "kb.jsonl", tmp_path / "one",
                                                         "--shard_size", "4")],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert one.returncode == 0, one.stderr[-4000:]

    built = {name: DocumentIndex.load(tmp_path / name, model=model) for name in ("one", "two")}
    assert_same(built["two"], built["one"])
    assert built["two"].ids == [r["id"] for r in rows]
    assert built["two"].num_vectors == 38  # document 7 has two document tokens
    info = json.loads((tmp_path / "two" / "index_config.json").read_text())["build"]
    # 10 shards of 4 (the last of 1): process 0 encodes shards 0, 2, ..., 8, process 1 shards 1, 3, ..., 9.
    assert info["processes"] == 2 and info["documents_encoded_per_process"] == [20, 17]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.jsonl", "one", "two"]  # no work folders left


@pytest.mark.slow
def test_a_killed_build_resumes_and_ends_with_the_same_index(tmp_path, saved_model):
    model_dir, model = saved_model
    write_corpus(tmp_path / "kb.jsonl", 1000)
    command = [sys.executable, *index_command(model_dir, tmp_path / "kb.jsonl", tmp_path / "index",
                                              "--shard_size", "10", "--batch_size", "5")]
    work = tmp_path / "index.building"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 300
    while process.poll() is None and not (work / "shard-00000").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    finished = sorted(p.name for p in work.glob("shard-*"))
    assert 1 <= len(finished) < 100 and not (tmp_path / "index").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"Resuming the build in {work}: {len(finished)} shard(s) are already encoded" in again.stderr
    info = json.loads((tmp_path / "index" / "index_config.json").read_text())["build"]
    assert info["documents_encoded"] == 1000 - 10 * len(finished)
    assert not work.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["index", "kb.jsonl"]

    _, tokenizer = PipelineModelTester().get_model()
    fresh = build_index(model, tokenizer, tmp_path / "kb.jsonl", tmp_path / "fresh", shard_size=10, batch_size=5,
                        show_progress_bar=False)  # in this process, never interrupted
    assert_same(DocumentIndex.load(tmp_path / "index", model=model), DocumentIndex.load(fresh))
