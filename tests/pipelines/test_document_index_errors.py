"""Index mistakes get errors that say what is wrong, which folder is damaged and how to rebuild it."""

import json

import pytest
from pipeline_helpers import DOCS, PipelineModelTester

from onegen import DocumentIndex


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return PipelineModelTester().get_model()


REBUILD = r"Rebuild it with DocumentIndex\.build\(model, tokenizer, corpus\)\.save\("


def test_a_corpus_given_as_one_dict_is_refused(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    # Iterating a dict yields its keys: this used to index two documents, "id" and "text".
    with pytest.raises(TypeError, match=r"got one dict \(keys \['id', 'text'\]\): pass \[document\]"):
        DocumentIndex.build(model, tokenizer, {"id": "d1", "text": "paris is the capital of france"})
    with pytest.raises(TypeError, match="got one dict"):
        DocumentIndex.build(model, tokenizer, {"id": ["d1", "d2"], "text": DOCS[:2]})  # columns: Dataset.from_dict
    index = DocumentIndex.build(model, tokenizer, DOCS[:2])
    with pytest.raises(TypeError, match="got one dict"):
        index.add(model, tokenizer, {"id": "d3", "text": DOCS[2]})
    assert len(index) == 2


@pytest.mark.parametrize("index_type,backend", [("flat", "faiss"), ("hnsw", "faiss"), ("flat", "torch")])
def test_a_damaged_index_folder_names_itself_and_how_to_rebuild(tmp_path, model_and_tokenizer, index_type, backend):
    model, tokenizer = model_and_tokenizer
    folder = tmp_path / "kb-index"
    DocumentIndex.build(model, tokenizer, DOCS, index_type=index_type, backend=backend).save(folder)
    config = json.loads((folder / "index_config.json").read_text())
    data_file = config["data_file"]

    (folder / data_file).write_bytes(b"garbage, not an index")
    with pytest.raises(ValueError, match=rf"DocumentIndex folder {folder} is damaged: {data_file} is not (a )?readable"
                                         rf".*{REBUILD}'{folder}'\)"):
        DocumentIndex.load(folder)
    (folder / data_file).unlink()
    with pytest.raises(ValueError, match=rf"{folder} is damaged: {data_file} \(the vectors\) is missing.*{REBUILD}"):
        DocumentIndex.load(folder)

    DocumentIndex.build(model, tokenizer, DOCS, index_type=index_type, backend=backend).save(folder)
    (folder / "index_config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "dim"}))
    with pytest.raises(ValueError, match=rf"{folder} is damaged: index_config.json lacks the field\(s\) \['dim'\].*"
                                         rf"{REBUILD}"):
        DocumentIndex.load(folder)
    (folder / "index_config.json").write_text("{truncated")
    with pytest.raises(ValueError, match=rf"{folder} is damaged: index_config.json is not valid JSON.*{REBUILD}"):
        DocumentIndex.load(folder)

    DocumentIndex.build(model, tokenizer, DOCS, index_type=index_type, backend=backend).save(folder)
    (folder / "documents.arrow").unlink()
    missing = rf"{folder} is damaged: documents.arrow \(the documents\) is missing.*{REBUILD}"
    with pytest.raises(ValueError, match=missing):
        DocumentIndex.load(folder)
    with pytest.raises(FileNotFoundError, match=rf"DocumentIndex folder {tmp_path / 'nowhere'} does not exist"):
        DocumentIndex.load(tmp_path / "nowhere")
