"""The vector search backends behind DocumentIndex, on clustered synthetic unit vectors, and the index files."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from pipeline_helpers import DOCS, PipelineModelTester
from safetensors.torch import load_file

from onegen import DocumentIndex
from onegen.pipelines.index_backends import BACKENDS, ExactSearch, FaissFlat, FaissHNSW, FaissIVF, FaissIVFPQ
from onegen.pipelines.index_files import VectorsWriter, map_vectors


FIXTURES = Path(__file__).parent / "fixtures"


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> torch.Tensor:
    """Unit vectors around random centres (random i.i.d. vectors make approximate search meaningless)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=generator)
    members = centres[torch.randint(clusters, (n,), generator=generator)]
    points = members + 0.3 * torch.randn(n, dim, generator=generator)
    return torch.nn.functional.normalize(points, dim=-1)


@pytest.fixture(scope="module")
def data():
    return clustered(3000), clustered(40, seed=1)


def exact_top(base, queries, k):
    return (queries @ base.T).topk(k, dim=-1)


@pytest.mark.parametrize("cls,params,search", [
    (ExactSearch, {}, {}), (FaissFlat, {}, {}), (FaissHNSW, {"hnsw_m": 16}, {"ef_search": 256}),
    (FaissIVF, {"nlist": 16}, {"nprobe": 16}), (FaissIVFPQ, {"nlist": 16, "pq_m": 16}, {"nprobe": 16}),
])
def test_each_backend_finds_the_exact_neighbours_and_round_trips(tmp_path, data, cls, params, search):
    base, queries = data
    backend = cls(32, **params)
    if backend.needs_training:  # as a build does: train on a sample first, then add shard by shard
        backend.train(base[::2], total=len(base))
    for start in range(0, len(base), 1000):
        backend.add(base[start:start + 1000])
    assert len(backend) == len(base)
    scores, ids = backend.search(queries, 10, **search)
    expected_scores, expected_ids = exact_top(base, queries, 10)
    recall = sum(len(set(a) & set(b)) for a, b in zip(ids.tolist(), expected_ids.tolist())) / expected_ids.numel()
    if cls is FaissIVFPQ:  # 16 one-byte codes for 32 floats: approximate scores, most neighbours found
        assert recall >= 0.75, recall
    elif cls is FaissHNSW:  # a wide graph search: almost exact, never guaranteed
        assert recall >= 0.99, recall
    else:  # exact, or every IVF cell probed: the exact answer
        assert recall == 1.0
        torch.testing.assert_close(scores, expected_scores, atol=1e-5, rtol=0)

    name = backend.save(tmp_path)
    assert name == ("vectors.safetensors" if cls in (ExactSearch, FaissFlat) else "index.faiss")
    for mmap in (False, True):
        loaded = cls.load(tmp_path / name, 32, backend.params, mmap=mmap)
        assert loaded.params == backend.params and len(loaded) == len(base)
        again = loaded.search(queries, 10, **search)
        assert torch.equal(again[1], ids)
        torch.testing.assert_close(again[0], scores, atol=1e-5, rtol=0)


def test_exact_search_of_a_mapped_file_goes_block_by_block(tmp_path, data):
    base, queries = data
    in_ram = ExactSearch(32)
    in_ram.add(base)
    in_ram.save(tmp_path)
    mapped = ExactSearch.load(tmp_path / "vectors.safetensors", 32, {}, mmap=True)
    mapped.block_rows = 256  # 12 blocks, each merged into the running top-k
    for k in (1, 10, 300):
        expected, got = in_ram.search(queries, k), mapped.search(queries, k)
        assert torch.equal(got[1], expected[1])
        torch.testing.assert_close(got[0], expected[0], atol=1e-6, rtol=0)


def test_search_parameters_at_load_per_call_and_by_setter(tmp_path, data):
    base, queries = data
    ivf = FaissIVF(32, nlist=64, nprobe=1)
    ivf.add(base)
    one_cell = ivf.search(queries, 10)
    every_cell = ivf.search(queries, 10, nprobe=64)  # this call only
    assert torch.equal(every_cell[1], exact_top(base, queries, 10)[1])
    assert not torch.equal(one_cell[1], every_cell[1])
    assert ivf.params["nprobe"] == 1 and torch.equal(ivf.search(queries, 10)[1], one_cell[1])
    ivf.set_search_params(nprobe=64)
    assert torch.equal(ivf.search(queries, 10)[1], every_cell[1])
    with pytest.raises(ValueError, match=r"a 'ivf' index \(FaissIVF\) has no search parameter\(s\) \['ef_search'\]"):
        ivf.search(queries, 10, ef_search=10)
    with pytest.raises(ValueError, match="nprobe must be a positive int, got 0"):
        ivf.search(queries, 10, nprobe=0)
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['nprobe'\]"):
        FaissHNSW(32, nprobe=3)

    # Through DocumentIndex: at load, per call, and by the setter.
    model, tokenizer = PipelineModelTester().get_model()
    corpus = [f"{d} {i}" for i in range(12) for d in DOCS]
    DocumentIndex.build(model, tokenizer, corpus, index_type="ivf", nlist=8, nprobe=1).save(tmp_path / "index")
    doc_queries = model.encode_queries(["a river", "the capital"], tokenizer).embeddings
    exact = DocumentIndex.build(model, tokenizer, corpus).search(doc_queries, 5)
    assert torch.equal(DocumentIndex.load(tmp_path / "index", nprobe=8).search(doc_queries, 5)[1], exact[1])
    index = DocumentIndex.load(tmp_path / "index")
    assert index.params["nprobe"] == 1
    assert torch.equal(index.search(doc_queries, 5, nprobe=8)[1], exact[1])
    index.set_search_params(nprobe=8)
    assert torch.equal(index.search(doc_queries, 5)[1], exact[1])


def test_ivfpq_stores_codes_not_vectors(tmp_path, data):
    base, _ = data
    pq = FaissIVFPQ(32, nlist=16)  # pq_m defaults to dim/8: 4 one-byte codes per vector
    pq.add(base)
    assert (pq.params["pq_m"], pq.params["pq_bits"]) == (4, 8)
    flat = FaissFlat(32)
    flat.add(base)
    sizes = {}
    for name, backend in (("pq", pq), ("flat", flat)):
        (tmp_path / name).mkdir()
        sizes[name] = (tmp_path / name / backend.save(tmp_path / name)).stat().st_size
    assert sizes["flat"] / sizes["pq"] > 4  # 128 bytes of floats vs 4 of codes + 8 of id per vector, plus centroids


def test_vectors_writer_writes_a_plain_safetensors_file(tmp_path):
    vectors = torch.randn(10, 6)
    with VectorsWriter(tmp_path / "v.safetensors", 10, 6) as writer:
        writer.write(vectors[:3])
        writer.write(vectors[3:].double())
    assert torch.equal(load_file(tmp_path / "v.safetensors")["vectors"], vectors)
    assert torch.equal(map_vectors(tmp_path / "v.safetensors"), vectors)
    with pytest.raises(ValueError, match="3 vectors written, 10 announced"):
        with VectorsWriter(tmp_path / "w.safetensors", 10, 6) as writer:
            writer.write(vectors[:3])
    with pytest.raises(ValueError, match="does not fit dim 6"):
        VectorsWriter(tmp_path / "x.safetensors", 10, 6).write(torch.randn(2, 5))


@pytest.mark.parametrize("name", ["index_v1_faiss", "index_v1_torch", "index_v1_ivf"])
def test_an_index_saved_in_format_1_is_converted(tmp_path, name, caplog):
    """Folders written by the format-1 code (tests/pipelines/fixtures) load as they are, in memory, with the exact
    command that rewrites them; rewritten, they load memory-mapped with the same documents and search results."""
    model, tokenizer = PipelineModelTester().get_model()
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    old_config = json.loads((folder / "index_config.json").read_text())
    index = DocumentIndex.load(folder, model=model)  # the fingerprint of format 1 is today's
    assert f"DocumentIndex.load({str(folder)!r}).save({str(folder)!r})" in caplog.text
    assert (len(index), index.num_vectors, index.index_type) == (old_config["num_documents"],
                                                                  old_config["num_vectors"], old_config["index_type"])
    rows = [json.loads(line) for line in (folder / "documents.jsonl").read_text().splitlines()] \
        if (folder / "documents.jsonl").exists() else None
    if rows:
        expected = [{k: v for k, v in r.items() if k != "num_vectors"} for r in rows]
        assert [index[i] for i in range(len(index))] == expected
    else:  # parquet, ints as ids
        assert index.ids == [0, 10, 20, 30, 40] and index[1] == {"id": 10, "text": DOCS[1]}
    queries = model.encode_queries(["the capital of france", "a small tree"], tokenizer).embeddings
    before = index.search(queries, 3, **({"nprobe": 2} if index.index_type == "ivf" else {}))
    # The vectors are the model's own.
    texts = [DOCS[0] + "[RD]" + DOCS[1] + "[RD]"] + DOCS[2:] if name == "index_v1_ivf" else \
        [("a title\n" if name == "index_v1_faiss" and i == 1 else "") + d for i, d in enumerate(DOCS)]
    vectors, vector_doc = index.vectors()
    torch.testing.assert_close(vectors, model.encode_documents(texts, tokenizer).embeddings, atol=1e-5, rtol=0)

    index.save(folder)  # the conversion the warning names
    data_file = "vectors.safetensors" if old_config["index_type"] == "flat" else old_config["data_file"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["index_config.json", "documents.arrow", data_file])
    converted = DocumentIndex.load(folder, model=model, mmap=True)
    assert [converted[i] for i in range(len(converted))] == [index[i] for i in range(len(index))]
    after = converted.search(queries, 3, **({"nprobe": 2} if index.index_type == "ivf" else {}))
    assert torch.equal(after[1], before[1])
    assert torch.equal(converted.vectors()[1], vector_doc)


def test_every_backend_is_listed():
    assert set(BACKENDS) == {("torch", "flat"), ("faiss", "flat"), ("faiss", "hnsw"), ("faiss", "ivf"),
                             ("faiss", "ivfpq")}


def test_ivfpq_re_ranks_candidates_with_the_vectors_it_keeps_on_disk(tmp_path, data):
    base, queries = data
    plain = FaissIVFPQ(32, nlist=16, pq_m=4)  # 4 codes for 32 floats: coarse on its own
    kept = FaissIVFPQ(32, nlist=16, pq_m=4, keep_vectors=True)
    for backend in (plain, kept):
        backend.train(base, len(base))
        backend.add(base[:1500])
        backend.add(base[1500:])
    expected_scores, expected = exact_top(base, queries, 10)

    def recall(ids):
        return sum(len(set(a) & set(b)) for a, b in zip(ids.tolist(), expected.tolist())) / expected.numel()

    coarse = recall(plain.search(queries, 10, nprobe=16)[1])
    reranked_scores, reranked = kept.search(queries, 10, nprobe=16, rerank=8)
    assert recall(reranked) >= 0.9 > 0.5 > coarse, (coarse, recall(reranked))
    exact_of_found = (queries.unsqueeze(1) @ base[reranked].transpose(1, 2)).squeeze(1)
    torch.testing.assert_close(reranked_scores, exact_of_found, atol=1e-5, rtol=0)  # exact scores of what it found
    with pytest.raises(ValueError, match="rerank needs the full vectors; build the index with keep_vectors=True"):
        plain.search(queries, 10, rerank=4)

    kept.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss", "vectors.safetensors"]
    loaded = FaissIVFPQ.load(tmp_path / "index.faiss", 32, kept.params)
    assert torch.equal(loaded.search(queries, 10, nprobe=16, rerank=8)[1], reranked)
    assert torch.equal(loaded.vectors(), base)  # the kept vectors, not reconstructions
    (tmp_path / "vectors.safetensors").unlink()
    with pytest.raises(ValueError, match="vectors.safetensors .the full vectors kept for re-ranking. is missing"):
        FaissIVFPQ.load(tmp_path / "index.faiss", 32, kept.params)
