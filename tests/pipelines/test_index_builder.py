"""`onegen index` on one process: every corpus form, equal to `DocumentIndex.build`, resumable, clear errors."""

import json
import subprocess
import sys

import pytest
import torch
from pipeline_helpers import DOCS, PipelineModelTester

from onegen import DocumentIndex
from onegen.pipelines.corpus_reader import CorpusColumns
from onegen.pipelines.index_builder import build_index, work_folder


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return PipelineModelTester().get_model()


def corpus_rows(n: int = 23) -> list[dict]:
    return [{"doc_id": f"w{i}", "text": f"{DOCS[i % 5]} number {i}", **({"title": f"t{i}"} if i % 4 == 0 else {})}
            for i in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_same_index(built: DocumentIndex, expected: DocumentIndex):
    assert built.ids == expected.ids and len(built) == len(expected)
    assert [built[i] for i in range(len(built))] == [expected[i] for i in range(len(expected))]
    (vectors, vector_doc), (expected_vectors, expected_doc) = built.vectors(), expected.vectors()
    torch.testing.assert_close(vectors, expected_vectors, atol=1e-5, rtol=0)
    assert torch.equal(vector_doc, expected_doc)


def test_every_corpus_form_gives_the_in_memory_index(tmp_path, model_and_tokenizer):
    from datasets import Dataset

    model, tokenizer = model_and_tokenizer
    rows = corpus_rows()
    renamed = [{"id": r["doc_id"], "text": r["text"], **({"title": r["title"]} if "title" in r else {})} for r in rows]
    expected = DocumentIndex.build(model, tokenizer, renamed)
    dataset = Dataset.from_list([{**r, "title": r.get("title")} for r in rows])
    dataset.save_to_disk(str(tmp_path / "saved"))
    dataset.to_parquet(str(tmp_path / "kb.parquet"))
    (tmp_path / "local-dataset").mkdir()  # a folder of data files: what datasets.load_dataset streams by name
    write_jsonl(tmp_path / "local-dataset" / "kb.jsonl", rows)
    forms = {
        "jsonl": write_jsonl(tmp_path / "kb.jsonl", rows), "parquet": tmp_path / "kb.parquet",
        "load_dataset": tmp_path / "local-dataset",
        "save_to_disk": tmp_path / "saved", "dataset": dataset, "iterable": dataset.to_iterable_dataset(),
        "list": rows,
    }
    for name, corpus in forms.items():
        out = build_index(model, tokenizer, corpus, tmp_path / f"index-{name}", shard_size=5,
                          columns=CorpusColumns(id="doc_id"), show_progress_bar=False)
        assert sorted(p.name for p in tmp_path.glob(f"index-{name}*")) == [f"index-{name}"]  # work folder gone
        built = DocumentIndex.load(out, model=model)
        assert_same_index(built, expected)
        config = json.loads((out / "index_config.json").read_text())
        assert config["build"]["processes"] == 1 and config["build"]["documents_encoded"] == len(rows)
        assert config["max_vectors_per_document"] == 1


def test_documents_with_several_vectors_and_default_ids(tmp_path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    corpus = [DOCS[0] + "[RD]" + DOCS[1] + "[RD]", *DOCS[1:], DOCS[2] + "[RD] and more[RD]"]
    out = build_index(model, tokenizer, corpus, tmp_path / "index", shard_size=2, show_progress_bar=False)
    built, expected = DocumentIndex.load(out), DocumentIndex.build(model, tokenizer, corpus)
    assert built.ids == [str(i) for i in range(len(corpus))] and built.num_vectors == len(corpus) + 2
    assert_same_index(built, expected)
    queries = model.encode_queries(["a river", "the capital"], tokenizer).embeddings
    assert torch.equal(built.search(queries, 4)[1], expected.search(queries, 4)[1])


@pytest.mark.parametrize("index_type,params,search", [("hnsw", {"ef_search": 64}, {}),
                                                       ("ivf", {"nlist": 4}, {"nprobe": 4}),
                                                       ("ivfpq", {"nlist": 2, "pq_m": 32}, {"nprobe": 2}),
                                                       ("ivfpq", {"nlist": 2, "pq_m": 4, "keep_vectors": True},
                                                        {"nprobe": 2, "rerank": 8})])
def test_approximate_indexes_are_trained_on_a_sample_and_filled_shard_by_shard(tmp_path, model_and_tokenizer,
                                                                               index_type, params, search):
    model, tokenizer = model_and_tokenizer
    corpus = [f"{a} {b} {c}" for a in ("the city", "a river", "an apple") for b in ("north", "south", "east", "west")
              for c in ("of paris", "in france", "by the lake", "of the state")]
    out = build_index(model, tokenizer, corpus, tmp_path / "index", index_type=index_type, shard_size=10,
                      show_progress_bar=False, **params)
    built = DocumentIndex.load(out, **search)
    assert built.index_type == index_type and len(built) == len(corpus)
    for name, value in params.items():
        assert built.params[name] == value
    queries = model.encode_queries(["a river in france", "the city of paris"], tokenizer).embeddings
    exact = DocumentIndex.build(model, tokenizer, corpus).search(queries, 5)
    found = built.search(queries, 5)
    overlap = sum(len(set(a) & set(b)) for a, b in zip(found[1].tolist(), exact[1].tolist())) / exact[1].numel()
    assert overlap >= (0.8 if index_type == "ivfpq" and "rerank" not in search else 1.0), overlap
    if params.get("keep_vectors"):  # the float32 vectors were streamed to disk beside the codes
        assert sorted(p.name for p in out.iterdir()) == ["documents.arrow", "index.faiss", "index_config.json",
                                                         "vectors.safetensors"]
        torch.testing.assert_close(built.vectors()[0], DocumentIndex.build(model, tokenizer, corpus).vectors()[0],
                                   atol=1e-5, rtol=0)


def test_a_failed_build_resumes_from_its_finished_shards(tmp_path, model_and_tokenizer, caplog):
    """A bad row in the fourth shard stops the build after three shards; fixed, the build skips those three."""
    model, tokenizer = model_and_tokenizer
    rows = [{"id": f"d{i}", "text": f"{DOCS[i % 5]} {i}"} for i in range(20)]
    broken = [dict(r) for r in rows]
    broken[16]["text"] = "  "
    with pytest.raises(ValueError, match=r"corpus row 16 \(id 'd16'\) has an empty or non-string 'text'"):
        build_index(model, tokenizer, broken, tmp_path / "index", shard_size=4, show_progress_bar=False)
    work = work_folder(tmp_path / "index")
    assert sorted(p.name for p in work.iterdir()) == ["build.json", "shard-00000", "shard-00001", "shard-00002",
                                                      "shard-00003"]
    assert not (tmp_path / "index").exists()
    first = (work / "shard-00000" / "vectors.safetensors").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        out = build_index(model, tokenizer, rows, tmp_path / "index", shard_size=4, show_progress_bar=False)
    assert "4 shard(s) are already encoded" in caplog.text
    config = json.loads((out / "index_config.json").read_text())
    assert config["build"]["documents_encoded"] == 4  # only the last shard was encoded by the second run
    assert not work.exists() and first  # merged, then the work folder was removed
    assert_same_index(DocumentIndex.load(out), DocumentIndex.build(model, tokenizer, rows))


def test_bad_corpora_and_folders_get_clear_errors(tmp_path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"id": "a", "text": "a dog"}\n\n{"id": "b", "text": "a cat"\n')
    with pytest.raises(ValueError, match=rf"{kb}, line 3: not valid JSON"):
        build_index(model, tokenizer, kb, tmp_path / "i1", shard_size=2, show_progress_bar=False)
    kb.write_text('{"id": "a", "text": "a dog"}\n{"id": "b", "body": "a cat"}\n')
    with pytest.raises(ValueError, match=rf"{kb}, line 2 has no 'text' field \(fields: \['body', 'id'\]\)"):
        build_index(model, tokenizer, kb, tmp_path / "i2", shard_size=2, show_progress_bar=False)
    with pytest.raises(ValueError, match=r"document id 'x' appears at corpus rows 1 and 4; ids must be unique"):
        rows = [{"id": f"d{i}" if i not in (1, 4) else "x", "text": f"doc {i}"} for i in range(6)]
        build_index(model, tokenizer, rows, tmp_path / "i3", shard_size=2, show_progress_bar=False)
    with pytest.raises(ValueError, match="ids are string in the first shard but int64 in shard 1"):
        build_index(model, tokenizer, [{"id": "a", "text": "a dog"}, {"id": 7, "text": "a cat"}], tmp_path / "i4",
                    shard_size=1, show_progress_bar=False)
    with pytest.raises(ValueError, match="unsupported corpus file type '.csv'"):
        (tmp_path / "kb.csv").write_text("id,text\n")
        build_index(model, tokenizer, tmp_path / "kb.csv", tmp_path / "i5", show_progress_bar=False)

    out = build_index(model, tokenizer, DOCS, tmp_path / "index", show_progress_bar=False)
    with pytest.raises(FileExistsError, match="already holds a DocumentIndex; pass --overwrite"):
        build_index(model, tokenizer, DOCS, out, show_progress_bar=False)
    build_index(model, tokenizer, DOCS[:3], out, overwrite=True, show_progress_bar=False)
    assert len(DocumentIndex.load(out)) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a DocumentIndex folder"):
        build_index(model, tokenizer, DOCS, tmp_path / "mine", show_progress_bar=False)

    # The work folder of a build with other settings is not resumed by mistake.
    with pytest.raises(ValueError):
        build_index(model, tokenizer, [*DOCS, " "], tmp_path / "i6", shard_size=2, show_progress_bar=False)
    with pytest.raises(ValueError, match=r"holds the shards of another build \(it differs in \['shard_size'\]"):
        build_index(model, tokenizer, [*DOCS, " "], tmp_path / "i6", shard_size=3, show_progress_bar=False)


def test_the_command_line(tmp_path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    rows = corpus_rows(9)
    kb = write_jsonl(tmp_path / "kb.jsonl", rows)
    command = [sys.executable, "-m", "onegen.cli", "index", "--model", str(tmp_path / "model"), "--corpus", str(kb),
               "--output_dir", str(tmp_path / "index"), "--id_column", "doc_id", "--shard_size", "4",
               "--index_type", "hnsw", "--ef_search", "32", "--num_threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"onegen index: wrote {tmp_path / 'index'}" in result.stdout
    index = DocumentIndex.load(tmp_path / "index", model=model)
    assert index.ids == [r["doc_id"] for r in rows] and index.params["ef_search"] == 32
    help_text = subprocess.run([sys.executable, "-m", "onegen.cli", "index", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    for option in ("--corpus", "--index_type", "{flat,hnsw,ivf,ivfpq}", "--shard_size", "--nprobe"):
        assert option in help_text
