"""DocumentIndex: building from every corpus form, faiss vs torch search, save/load, fingerprints, bad input."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pipeline_helpers import DOCS, PipelineModelTester
from safetensors.torch import save_file

from onegen import DocumentIndex
from onegen.pipelines import model_fingerprint
from onegen.pipelines.document_index import fingerprints_match


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return PipelineModelTester().get_model()


def _queries(model, tokenizer):
    return model.encode_queries(["the capital of france", "a river in mississippi", "a small tree"], tokenizer).embeddings


def test_build_from_strings_dicts_and_dataset(model_and_tokenizer):
    from datasets import Dataset

    model, tokenizer = model_and_tokenizer
    dicts = [{"id": f"d{i}", "text": t} for i, t in enumerate(DOCS)]
    by_strings = DocumentIndex.build(model, tokenizer, DOCS)
    by_dicts = DocumentIndex.build(model, tokenizer, dicts)
    by_dataset = DocumentIndex.build(model, tokenizer, Dataset.from_list(dicts))
    assert by_strings.ids == [str(i) for i in range(len(DOCS))] and by_dicts.ids == by_dataset.ids == [d["id"] for d in dicts]
    assert by_dicts[2] == {"id": "d2", "text": DOCS[2]}
    queries = _queries(model, tokenizer)
    expected = by_strings.search(queries, 3)
    for other in (by_dicts, by_dataset):
        scores, indices = other.search(queries, 3)
        torch.testing.assert_close(scores, expected[0], atol=1e-6, rtol=0)
        assert torch.equal(indices, expected[1])
    # Scores are cosines of the model's own document vectors, best first.
    vectors = model.encode_documents(DOCS, tokenizer).embeddings
    exact = torch.nn.functional.normalize(queries, dim=-1) @ vectors.T
    torch.testing.assert_close(expected[0], exact.topk(3).values, atol=1e-5, rtol=0)
    assert torch.equal(expected[1], exact.topk(3).indices)


def test_flat_faiss_and_torch_fallback_agree(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with_faiss = DocumentIndex.build(model, tokenizer, DOCS, backend="faiss")
    with_torch = DocumentIndex.build(model, tokenizer, DOCS, backend="torch")
    assert (with_faiss.backend, with_torch.backend) == ("faiss", "torch")
    queries = _queries(model, tokenizer)
    for k in (1, len(DOCS)):
        faiss_scores, faiss_ids = with_faiss.search(queries, k)
        torch_scores, torch_ids = with_torch.search(queries, k)
        torch.testing.assert_close(faiss_scores, torch_scores, atol=1e-5, rtol=0)
        assert torch.equal(faiss_ids, torch_ids)
        assert faiss_scores.shape == faiss_ids.shape == (3, k)


def test_documents_with_several_vectors_rank_by_their_best(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    corpus = [{"id": "two", "text": DOCS[0] + "[RD]" + DOCS[1] + "[RD]"}, {"id": "one", "text": DOCS[2]},
              {"id": "title", "title": "apple", "text": DOCS[3]}]
    index = DocumentIndex.build(model, tokenizer, corpus)
    assert (len(index), index.num_vectors) == (3, 4)
    vectors = model.encode_documents([corpus[0]["text"], DOCS[2], "apple\n" + DOCS[3]], tokenizer)
    queries = torch.nn.functional.normalize(_queries(model, tokenizer), dim=-1)
    per_vector = queries @ vectors.embeddings.T
    per_doc = torch.stack([per_vector[:, vectors.text_index == d].max(-1).values for d in range(3)], dim=-1)
    scores, indices = index.search(queries, 3)
    assert torch.equal(indices, per_doc.argsort(dim=-1, descending=True))  # every document once, by its best vector
    torch.testing.assert_close(scores, per_doc.sort(dim=-1, descending=True).values, atol=1e-5, rtol=0)


@pytest.mark.parametrize("index_type,backend", [("flat", "faiss"), ("hnsw", "faiss"), ("ivf", "faiss"),
                                                ("ivfpq", "faiss"), ("flat", "torch")])
def test_save_load_round_trip(tmp_path, model_and_tokenizer, index_type, backend):
    model, tokenizer = model_and_tokenizer
    corpus = [{"id": i * 10, "text": t, **({"title": "a title"} if i == 1 else {})} for i, t in enumerate(DOCS)]
    index = DocumentIndex.build(model, tokenizer, corpus, index_type=index_type, backend=backend, nlist=2)
    queries = _queries(model, tokenizer)
    before = index.search(queries, 2)
    index.save(tmp_path / "index")

    files = sorted(p.name for p in (tmp_path / "index").iterdir())
    data_file = "vectors.safetensors" if index_type == "flat" else "index.faiss"  # flat: the raw vectors, any backend
    assert files == sorted(["index_config.json", data_file, "documents.arrow"])
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temporary folder left behind
    config = json.loads((tmp_path / "index" / "index_config.json").read_text())
    assert config["fingerprint"] == model_fingerprint(model) and config["num_documents"] == len(DOCS)
    assert config["format_version"] == 2 and config["params"] == index.params

    for mmap in (False, True):
        loaded = DocumentIndex.load(tmp_path / "index", model=model, mmap=mmap)
        assert (loaded.index_type, loaded.backend, loaded.ids) == (index.index_type, backend, [i * 10 for i in range(5)])
        assert loaded[1] == {"id": 10, "text": DOCS[1], "title": "a title"} and loaded[-1]["id"] == 40
        # The texts stay on disk: the documents table is a memory map of the saved Arrow file.
        assert type(loaded.documents.data).__name__ == "MemoryMappedTable" and loaded.documents.cache_files
        after = loaded.search(queries, 2)
        assert torch.equal(after[1], before[1]) and torch.equal(after[0], before[0])

    if index_type != "flat":  # faiss would write into a read-only mapping
        with pytest.raises(ValueError, match="loaded memory-mapped .* load it with mmap=False to add documents"):
            loaded.add(model, tokenizer, [{"id": 50, "text": "a small dog"}])

    # Saving again replaces the folder as a whole; a folder that is not an index is never overwritten.
    loaded = DocumentIndex.load(tmp_path / "index")
    loaded.add(model, tokenizer, [{"id": 50, "text": "a small dog"}])
    loaded.save(tmp_path / "index")
    assert len(DocumentIndex.load(tmp_path / "index")) == len(DOCS) + 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a DocumentIndex folder"):
        index.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_approximate_indexes_find_the_exact_neighbours_on_a_small_corpus(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    corpus = [f"{a} {b} {c}" for a in ("the city", "a river", "an apple") for b in ("north", "south", "east", "west")
              for c in ("of paris", "in france", "by the lake", "of the state")]
    queries = _queries(model, tokenizer)
    flat = DocumentIndex.build(model, tokenizer, corpus).search(queries, 5)
    hnsw = DocumentIndex.build(model, tokenizer, corpus, index_type="hnsw", ef_search=64).search(queries, 5)
    ivf = DocumentIndex.build(model, tokenizer, corpus, index_type="ivf", nlist=4, nprobe=4).search(queries, 5)
    for approx in (hnsw, ivf):  # efSearch above the corpus size / every IVF cell probed: exact results
        assert torch.equal(approx[1], flat[1])
        torch.testing.assert_close(approx[0], flat[0], atol=1e-5, rtol=0)


def test_an_index_built_by_another_model_is_refused(tmp_path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    other, other_tokenizer = PipelineModelTester(seed=1).get_model()
    index = DocumentIndex.build(model, tokenizer, DOCS)
    index.save(tmp_path / "index")
    with pytest.raises(ValueError, match="built by another model"):
        DocumentIndex.load(tmp_path / "index", model=other)
    with pytest.raises(ValueError, match="built by another model"):
        index.add(other, other_tokenizer, ["a small dog"])
    gpt2, _ = PipelineModelTester("gpt2").get_model()  # another architecture, same width
    with pytest.raises(ValueError, match="built by another model"):
        index.check_model(gpt2)
    # The fingerprint ignores the dtype: fp16 and bf16 copies of the same weights are the same model.
    for dtype in (torch.float16, torch.bfloat16):
        copy = PipelineModelTester().get_model()[0].to(dtype)
        index.check_model(copy)
        DocumentIndex.load(tmp_path / "index", model=copy)
    # An index saved before fingerprints were dtype-blind says what to do.
    config_path = tmp_path / "index" / "index_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "fingerprint": "0123456789abcdef0123456789abcdef"}))
    with pytest.raises(ValueError, match="older fingerprint format.*index.fingerprint = model_fingerprint"):
        DocumentIndex.load(tmp_path / "index", model=model)


def test_bad_input_gets_a_clear_error(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match="corpus is empty"):
        DocumentIndex.build(model, tokenizer, [])
    with pytest.raises(ValueError, match="corpus row 1 has no 'text' field"):
        DocumentIndex.build(model, tokenizer, [{"text": "a dog"}, {"body": "a cat"}])
    with pytest.raises(ValueError, match="corpus row 1 .* empty"):
        DocumentIndex.build(model, tokenizer, ["a dog", "  "])
    with pytest.raises(ValueError, match="id 'x' is already in the index"):
        DocumentIndex.build(model, tokenizer, [{"id": "x", "text": "a dog"}, {"id": "x", "text": "a cat"}])
    with pytest.raises(TypeError, match="got one str"):
        DocumentIndex.build(model, tokenizer, "a dog")
    index = DocumentIndex.build(model, tokenizer, DOCS[:2])
    with pytest.raises(ValueError, match="k=3 is larger than the index, which holds 2 documents"):
        index.search(torch.randn(64), 3)
    with pytest.raises(ValueError, match="do not match dim 64"):
        index.search(torch.randn(2, 32), 1)
    with pytest.raises(ValueError, match="DocumentIndex is empty"):
        DocumentIndex(64).search(torch.randn(64), 1)
    with pytest.raises(FileNotFoundError, match="index_config.json is missing"):
        DocumentIndex.load(Path(__file__).parent)


def test_without_faiss_the_torch_search_serves(tmp_path, model_and_tokenizer):
    """In a process where `import faiss` fails: exact torch search by default, the same results as faiss; a flat
    index saved with faiss loads (its file holds the raw vectors), an hnsw index is refused with an error that says
    what to install."""
    model, tokenizer = model_and_tokenizer
    index = DocumentIndex.build(model, tokenizer, DOCS)
    index.save(tmp_path / "faiss-index")
    DocumentIndex.build(model, tokenizer, DOCS, index_type="hnsw").save(tmp_path / "hnsw-index")
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    expected = index.search(_queries(model, tokenizer), 2)
    save_file({"scores": expected[0].contiguous(), "ids": expected[1].contiguous()},
              tmp_path / "expected.safetensors")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["faiss"] = None  # `import faiss` raises ImportError
        import torch
        torch.set_num_threads(1)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from onegen import DocumentIndex
        model = AutoModelForCausalLM.from_pretrained({str(tmp_path / "model")!r})
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "model")!r})
        index = DocumentIndex.build(model, tokenizer, {DOCS!r})
        assert index.backend == "torch", index.backend
        queries = model.encode_queries(["the capital of france", "a river in mississippi", "a small tree"], tokenizer)
        scores, ids = index.search(queries.embeddings, 2)
        from safetensors.torch import load_file
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        assert torch.equal(ids, expected["ids"]), (ids, expected["ids"])
        torch.testing.assert_close(scores, expected["scores"], atol=1e-5, rtol=0)
        # A flat index keeps its raw vectors, whichever backend saved it: torch searches it exactly.
        loaded = DocumentIndex.load({str(tmp_path / "faiss-index")!r})
        assert loaded.backend == "torch", loaded.backend
        scores, ids = loaded.search(queries.embeddings, 2)
        assert torch.equal(ids, expected["ids"]), (ids, expected["ids"])
        try:
            DocumentIndex.load({str(tmp_path / "hnsw-index")!r})
        except ImportError as error:
            assert "pip install faiss-cpu" in str(error), error
        else:
            raise AssertionError("a faiss index loaded without faiss")
        print("NO-FAISS-OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NO-FAISS-OK" in result.stdout


def test_fingerprint_samples_tensors_beyond_float32_precision():
    """A float linspace over 2**24+ elements overshoots the last index; the fingerprint must not."""
    model, tokenizer = PipelineModelTester().get_model()
    embeddings = model.get_input_embeddings()
    embeddings.weight = torch.nn.Parameter(torch.zeros(2**24 // 64 + 7, 64))  # 16.8M > 2**24 elements
    fingerprint = model_fingerprint(model)
    with torch.no_grad():
        embeddings.weight.view(-1)[-1] = 1.0  # the very last element is one of the samples
    assert not fingerprints_match(model_fingerprint(model), fingerprint)
