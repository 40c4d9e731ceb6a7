"""One rendering of a document everywhere (`OneGenForCausalLM.render_document`): the index encodes it, the pipeline
inserts it, the evaluation's retrievers index it and the dataset builders write it to `db.jsonl`, so a titled document
is never encoded from text the model was not trained on."""
import torch
from pipeline_helpers import PROMPTS, PipelineModelTester, greedy_continuations, query_after
from transformers import pipeline

from onegen import DocumentIndex
from onegen.dataset_builders import common as builder_common
from onegen.modeling_onegen import render_document


TITLED = [
    {"id": "paris", "title": "Paris", "text": "the capital of france"},
    {"id": "dying", "title": "dying", "text": "dying: in or associated with the process of passing from life"},
    {"id": "river", "text": "the mississippi is the largest river in the country"},
]


def test_a_title_goes_on_its_own_line_unless_the_text_begins_with_it():
    assert render_document("a plain text") == "a plain text"
    assert render_document(TITLED[0]) == "Paris\nthe capital of france"
    assert render_document(TITLED[1]) == TITLED[1]["text"]  # a WordNet gloss already leads with its lemma
    assert render_document(TITLED[2]) == TITLED[2]["text"]
    assert render_document({"title": None, "text": "x"}) == "x"


def test_the_index_encodes_and_the_pipeline_inserts_the_models_rendering():
    model, tokenizer = PipelineModelTester().get_model()
    index = DocumentIndex.build(model, tokenizer, TITLED)
    rendered = model.encode_documents([render_document(d) for d in TITLED], tokenizer).embeddings
    untitled = model.encode_documents([d["text"] for d in TITLED], tokenizer).embeddings
    scores, indices = index.search(rendered, 1)
    assert indices[:, 0].tolist() == [0, 1, 2]
    torch.testing.assert_close(scores[:, 0], torch.ones(3), atol=1e-5, rtol=0)
    # The title changes the vector: indexing the text alone would not be what the model encodes.
    assert torch.nn.functional.cosine_similarity(rendered[0], untitled[0], dim=0) < 0.9999

    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    trigger = greedy_continuations(model, tokenizer, PROMPTS[:1], 8)[0][1]
    out = rag(PROMPTS[0], top_k=3, max_new_tokens=8, max_retrievals=1, return_tensors=True,
              logits_processor=query_after(model, trigger))
    generated = out["generated_token_ids"]
    start = out["retrievals"][0]["position"] + 1
    block = []
    for hit in out["retrievals"]:
        document = next(d for d in TITLED if d["id"] == hit["doc_id"])
        block += [model.config.context_start_token_id,
                  *tokenizer(render_document(document), add_special_tokens=False).input_ids,
                  model.config.context_end_token_id]
    assert generated[start: start + len(block)] == block


def test_the_builders_write_db_jsonl_with_the_models_rendering():
    tokens = builder_common.OneGenTokens()
    for document in TITLED[:2]:
        record = tokens.db_record({"doc_id": document["id"], **document})
        assert record["uid"] == document["id"]
        assert "".join(m["content"] for m in record["messages"]) == render_document(document) + tokens.doc_token
