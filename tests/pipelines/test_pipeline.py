"""The onegen-rag pipeline on tiny random Llama, Qwen2 and GPT-2 models (and a tiny entity linker trained here):
one KV cache, the query vector from the loop, insertion, lock-step batching, link mode, sampling, streaming."""

import pytest
import torch
from onegen_model_tester import OneGenModelTester
from pipeline_helpers import (
    ARCHS,
    DOCS,
    ENTITIES,
    LINK_EXAMPLES,
    PROMPTS,
    PipelineModelTester,
    greedy_continuations,
    link_prompt,
    link_target,
    pick_triggers,
    query_after,
    train_linker,
)
from transformers import GenerationConfig, TextIteratorStreamer, pipeline
from transformers.generation.streamers import BaseStreamer

from onegen import DocumentIndex, OneGenRAGPipeline
from onegen.configuration_onegen import RETRIEVAL_MODES
from onegen.pipelines import pipeline_onegen


class RecordingIndex(DocumentIndex):
    """A real DocumentIndex that also keeps the query vectors it was asked about."""

    def search(self, query_vectors, k=1):
        self.queries = getattr(self, "queries", []) + [query_vectors.detach().clone()]
        return super().search(query_vectors, k)


def setup(arch, index_class=DocumentIndex):
    """`"qwen2-sliding"`: Qwen2 with sliding-window layers (window above the context, so results are those of full
    attention), whose cache cannot be sliced by rows: the decoding loop's fallback path."""
    window = 512 if arch == "qwen2-sliding" else None
    model, tokenizer = PipelineModelTester(arch.removesuffix("-sliding"), sliding_window=window).get_model()
    index = index_class.build(model, tokenizer, DOCS)
    return model, tokenizer, index, pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)


def block_of(model, tokenizer, text):
    """The tokens inserted for one document: context tags around its text."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return [model.config.context_start_token_id, *ids, model.config.context_end_token_id]


@pytest.mark.parametrize("arch", ARCHS)
def test_without_a_query_token_the_output_is_generate_greedy(arch):
    model, tokenizer, _, rag = setup(arch)
    expected = greedy_continuations(model, tokenizer, PROMPTS, 12)
    single = [rag(prompt, max_new_tokens=12, return_tensors=True) for prompt in PROMPTS]
    batched = rag(PROMPTS, batch_size=3, max_new_tokens=12, return_tensors=True)
    for want, one, many in zip(expected, single, batched):
        assert one["generated_token_ids"] == want == many["generated_token_ids"]
        assert one["retrievals"] == many["retrievals"] == []
        assert one["generated_text"] == tokenizer.decode(want) == many["generated_text"]

    chat = [{"role": "user", "content": PROMPTS[2]}]
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True).input_ids
    want = model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:].tolist()
    assert rag(chat, max_new_tokens=12, return_tensors=True)["generated_token_ids"] == want


@pytest.mark.parametrize("arch", ARCHS)
def test_the_query_vector_is_the_hidden_state_of_one_full_forward(arch):
    model, tokenizer, index, rag = setup(arch, RecordingIndex)
    plain = greedy_continuations(model, tokenizer, PROMPTS[:1], 8)[0]
    # Fire after the trigger and again right after the inserted document: the second query sees an insertion.
    processor = query_after(model, plain[2], model.config.context_end_token_id)
    out = rag(PROMPTS[0], max_new_tokens=12, max_retrievals=2, logits_processor=processor, return_tensors=True)
    first = plain.index(plain[2]) + 1
    assert [hit["step"] for hit in out["retrievals"]] == [first, first + 1]
    prompt_ids = tokenizer(PROMPTS[0]).input_ids
    for hit, query in zip(out["retrievals"], index.queries, strict=True):
        prefix = prompt_ids + out["generated_token_ids"][: hit["position"] + 1]
        assert prefix[-1] == model.config.query_token_id
        full = model(torch.tensor([prefix])).last_hidden_state[0, -1]  # one forward over the whole prefix
        torch.testing.assert_close(query[0], full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_after_an_insertion_decoding_continues_as_a_fresh_generation(arch):
    model, tokenizer, index, rag = setup(arch)
    plain = greedy_continuations(model, tokenizer, PROMPTS[:1], 8)[0]
    out = rag(PROMPTS[0], top_k=2, max_new_tokens=16, max_retrievals=1, return_tensors=True,
              logits_processor=query_after(model, plain[1]))
    hits, generated = out["retrievals"], out["generated_token_ids"]
    step = plain.index(plain[1]) + 1
    assert [hit["rank"] for hit in hits] == [0, 1] and hits[0]["score"] >= hits[1]["score"]
    assert {hit["text"] for hit in hits} <= set(DOCS) and [hit["step"] for hit in hits] == [step, step]
    # Both documents are inserted, in rank order, each in its tags, right after the query token.
    block = block_of(model, tokenizer, hits[0]["text"]) + block_of(model, tokenizer, hits[1]["text"])
    start = hits[0]["position"] + 1
    assert generated[start - 1] == model.config.query_token_id and generated[start: start + len(block)] == block
    assert tokenizer.decode(generated).count("<p>") == 2

    prefix = tokenizer(PROMPTS[0]).input_ids + generated[: start + len(block)]
    rest = generated[start + len(block):]
    assert len(rest) == 16 - (step + 1)  # the sampled tokens up to the query token came before the insertion
    fresh = model.generate(torch.tensor([prefix]), max_new_tokens=len(rest), do_sample=False,
                           suppress_tokens=[model.config.query_token_id])  # the retrieval cap is reached
    assert fresh[0, len(prefix):].tolist() == rest


@pytest.mark.parametrize("arch", [*ARCHS, "qwen2-sliding"])
def test_batched_equals_one_at_a_time_with_mixed_retrievals(arch):
    model, tokenizer, _, rag = setup(arch)
    plain = greedy_continuations(model, tokenizer, PROMPTS, 16)
    triggers, first_steps = pick_triggers(plain, retrieving=[0, 2], silent=[1])
    kwargs = dict(max_new_tokens=16, top_k=2, max_retrievals=3, return_tensors=True,
                  logits_processor=query_after(model, *triggers, model.config.context_end_token_id))
    single = [rag(prompt, **kwargs) for prompt in PROMPTS]
    batched = rag(PROMPTS, batch_size=3, **kwargs)  # a full batch of 3, then a batch of 1
    for one, many in zip(single, batched, strict=True):
        assert one["generated_token_ids"] == many["generated_token_ids"]
        assert one["generated_text"] == many["generated_text"]
        strip = lambda hits: [(h["step"], h["position"], h["doc_id"], h["rank"]) for h in hits]  # noqa: E731
        assert strip(one["retrievals"]) == strip(many["retrievals"])
        for a, b in zip(one["retrievals"], many["retrievals"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    steps = [[h["step"] for h in out["retrievals"] if h["rank"] == 0] for out in single]
    assert steps[1] == [] and [steps[0][0], steps[2][0]] == first_steps  # rows inserted while another row waited


def test_link_mode_links_one_document_per_query_token():
    model, tokenizer = train_linker()
    index = DocumentIndex.build(model, tokenizer, [{"id": name, "text": text + "[SE]"} for name, text in ENTITIES.items()])
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    query_id, continuation_id = model.config.query_token_id, model.config.continuation_token_id
    prompts = [link_prompt(tokenizer, text) for text, _ in LINK_EXAMPLES]
    outputs = rag(prompts, batch_size=3, max_new_tokens=40, add_special_tokens=False, return_tensors=True,
                  return_stats=True)
    for (text, mentions), out in zip(LINK_EXAMPLES, outputs, strict=True):
        ids = out["generated_token_ids"]
        positions = [i for i, token in enumerate(ids) if token == query_id]
        assert len(positions) == len(mentions) == len(out["retrievals"])
        assert [hit["position"] for hit in out["retrievals"]] == positions
        assert [hit["doc_id"] for hit in out["retrievals"]] == mentions  # the right entity for every mention
        assert all(ids[p + 1] == continuation_id for p in positions)  # forced: the model never learned it
        assert out["generated_text"] == link_target(text, mentions, "[LK]", "[C]")
        assert out["stats"]["inserted_tokens"] == 0
        first = tokenizer(prompts[0], add_special_tokens=False).input_ids if text == LINK_EXAMPLES[0][0] else None
        if first is not None:  # left to itself, the model would not write the continuation token there
            own = model(torch.tensor([first + ids[: positions[0] + 1]])).logits[0, -1].argmax()
            assert own != continuation_id


def test_the_retrieval_mode_is_chosen_per_call_for_a_model_trained_in_both():
    # A model with context tags and a continuation token (as one trained on link and insert data together).
    model, tokenizer = PipelineModelTester("llama").get_model(continuation_token="[C]")
    index = DocumentIndex.build(model, tokenizer, DOCS)
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    config = model.config
    prompt_ids = tokenizer(PROMPTS[2]).input_ids
    first = query_after(model, prompt_ids[-1])  # the query token is sampled at the first step
    kwargs = {"max_new_tokens": 12, "max_retrievals": 1, "logits_processor": first, "return_tensors": True,
              "return_stats": True}

    inserted = rag(PROMPTS[2], **kwargs)  # the model's own mode: insert
    linked = rag(PROMPTS[2], retrieval_mode="link", **kwargs)
    assert config.retrieval_mode == "insert"  # the call did not change the model
    hit = inserted["retrievals"][0]
    assert [(h["step"], h["doc_id"]) for h in linked["retrievals"]] == [(0, hit["doc_id"])] and hit["step"] == 0
    assert linked["retrievals"][0]["score"] == pytest.approx(hit["score"], abs=1e-5)  # the same query vector
    block = block_of(model, tokenizer, hit["text"])
    assert inserted["generated_token_ids"][1 : 1 + len(block)] == block
    assert inserted["stats"]["inserted_tokens"] == len(block)
    assert linked["generated_token_ids"][:2] == [config.query_token_id, config.continuation_token_id]
    assert linked["stats"]["inserted_tokens"] == 0
    assert rag(PROMPTS[2], retrieval_mode="insert", **kwargs)["generated_token_ids"] == inserted["generated_token_ids"]
    with pytest.raises(ValueError, match=r"retrieval_mode must be one of \('insert', 'link'\), got 'fetch'"):
        rag(PROMPTS[2], retrieval_mode="fetch")

    # Given at construction it is the pipeline's default; the retrieval cap's default follows the mode in use.
    always = query_after(model, *range(len(tokenizer)))
    linking = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index, retrieval_mode="link")
    out = linking(PROMPTS[2], max_new_tokens=12, logits_processor=always, return_tensors=True, return_stats=True)
    assert out["stats"]["inserted_tokens"] == 0 and len(out["retrievals"]) == 6  # link mode: no cap, every other step
    out = linking(PROMPTS[2], retrieval_mode="insert", max_new_tokens=80, logits_processor=always, return_stats=True)
    assert out["stats"]["inserted_tokens"] > 0 and len(out["retrievals"]) == pipeline_onegen.DEFAULT_MAX_RETRIEVALS_INSERT
    assert pipeline_onegen.RETRIEVAL_MODES == RETRIEVAL_MODES  # the hub-facing file's copy of the config's modes


def test_sampling_follows_the_generation_config_and_greedy_is_the_default():
    model, tokenizer, _, rag = setup("llama")
    ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    config = GenerationConfig(do_sample=True, temperature=0.7, top_k=8, top_p=0.9, max_new_tokens=12)
    torch.manual_seed(123)
    expected = model.generate(ids, generation_config=config)[0, ids.shape[1]:].tolist()
    torch.manual_seed(123)
    out = rag(PROMPTS[0], generation_config=config, return_tensors=True)
    assert out["generated_token_ids"] == expected and out["retrievals"] == []
    torch.manual_seed(7)
    expected = model.generate(ids, do_sample=True, temperature=1.3, max_new_tokens=12)[0, ids.shape[1]:].tolist()
    torch.manual_seed(7)
    assert rag(PROMPTS[0], do_sample=True, temperature=1.3, max_new_tokens=12, return_tensors=True)[
        "generated_token_ids"] == expected
    greedy = greedy_continuations(model, tokenizer, PROMPTS[:1], 12)[0]
    assert expected != greedy
    model.generation_config.do_sample = True  # a model whose own config samples is still greedy by default here
    assert rag(PROMPTS[0], max_new_tokens=12, return_tensors=True)["generated_token_ids"] == greedy


def test_max_retrievals_caps_retrieval_and_decoding_goes_on():
    model, tokenizer, _, rag = setup("llama")
    always = query_after(model, *range(len(tokenizer)))  # the model would retrieve at every step
    query_id = model.config.query_token_id
    out = rag(PROMPTS[0], max_new_tokens=20, max_retrievals=3, logits_processor=always, return_tensors=True,
              return_stats=True)
    assert out["generated_token_ids"].count(query_id) == 3 == len(out["retrievals"])
    assert [hit["step"] for hit in out["retrievals"]] == [0, 1, 2]
    assert out["stats"]["sampled_tokens"] == 20 and out["stats"]["retrievals"] == 3
    out = rag(PROMPTS[0], max_new_tokens=20, max_retrievals=0, logits_processor=always, return_tensors=True)
    assert query_id not in out["generated_token_ids"] and out["retrievals"] == []
    assert len(out["generated_token_ids"]) == 20


def test_the_cap_acts_before_top_p_when_the_model_itself_prefers_the_query_token():
    model, tokenizer, _, rag = setup("llama")
    query_id = model.config.query_token_id
    # The model itself now puts almost all probability on its query token at every step.
    bias = torch.zeros(model.config.text_config.vocab_size)
    bias[query_id] = 30.0
    hook = model.get_output_embeddings().register_forward_hook(lambda module, args, output: output + bias)
    try:
        torch.manual_seed(0)
        out = rag(PROMPTS[0], do_sample=True, top_p=0.9, max_new_tokens=12, max_retrievals=1, return_tensors=True)
    finally:
        hook.remove()
    assert out["generated_token_ids"].count(query_id) == 1 == len(out["retrievals"])
    assert out["generated_token_ids"][0] == query_id


def test_stop_strings_from_the_call_or_the_generation_config():
    model, tokenizer, _, rag = setup("llama")
    full = rag(PROMPTS[1], max_new_tokens=16, return_tensors=True)
    stop = tokenizer.decode(full["generated_token_ids"][:3])  # first seen when the third token is written
    out = rag(PROMPTS[1], max_new_tokens=16, stop_strings=[stop])
    assert out["generated_text"] == stop != full["generated_text"]
    config = GenerationConfig(max_new_tokens=16, stop_strings=stop, do_sample=False)
    assert rag(PROMPTS[1], generation_config=config)["generated_text"] == out["generated_text"]


class Recorder(BaseStreamer):
    def __init__(self):
        self.tokens, self.ends = [], 0

    def put(self, value):
        self.tokens.extend(value.view(-1).tolist())

    def end(self):
        self.ends += 1


def test_streamers_see_the_prompt_then_every_generated_and_inserted_token():
    model, tokenizer, _, rag = setup("qwen2")
    trigger = greedy_continuations(model, tokenizer, PROMPTS[:1], 8)[0][3]
    kwargs = dict(max_new_tokens=10, logits_processor=query_after(model, trigger), return_tensors=True)
    recorder = Recorder()
    out = rag(PROMPTS[0], streamer=recorder, **kwargs)
    assert out["retrievals"] and recorder.ends == 1
    assert recorder.tokens == tokenizer(PROMPTS[0]).input_ids + out["generated_token_ids"]
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    out = rag(PROMPTS[0], streamer=streamer, **kwargs)
    assert "".join(streamer) == tokenizer.decode(out["generated_token_ids"])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_decoding_stops_cleanly_at_the_end_of_the_context(arch):
    model, tokenizer, _, rag = setup(arch)  # context: 256 positions
    words = []
    while len(tokenizer(" ".join(words)).input_ids) < 245:
        words.append("the city")
    prompt = " ".join(words)
    length = len(tokenizer(prompt).input_ids)
    assert 245 <= length < 256
    out = rag(prompt, max_new_tokens=50, return_tensors=True)
    assert len(out["generated_token_ids"]) == 256 - length  # prompt + generation fill the context exactly
    # A document that no longer fits ends the row instead of overflowing the positions.
    out = rag(prompt, max_new_tokens=50, logits_processor=query_after(model, *range(len(tokenizer))), top_k=3,
              return_tensors=True)
    assert out["retrievals"] and length + len(out["generated_token_ids"]) <= 256


def test_bad_input_gets_a_clear_error():
    model, tokenizer, index, rag = setup("llama")
    small = DocumentIndex.build(model, tokenizer, DOCS[:2])
    with pytest.raises(ValueError, match="top_k=3 is larger than the document index, which holds 2 documents"):
        rag(PROMPTS[0], index=small, top_k=3, max_new_tokens=4)
    with pytest.raises(ValueError, match="document index is empty"):
        OneGenRAGPipeline(model=model, tokenizer=tokenizer, index=DocumentIndex(64))
    other, other_tokenizer = PipelineModelTester(seed=1).get_model()
    with pytest.raises(ValueError, match="built by another model"):
        rag(PROMPTS[0], index=DocumentIndex.build(other, other_tokenizer, DOCS))
    with pytest.raises(ValueError, match="built by another model"):
        pipeline("onegen-rag", model=other, tokenizer=other_tokenizer, index=index)
    with pytest.raises(ValueError, match=r"prompt is \d+ tokens long but the model's context holds 256 positions"):
        rag(" ".join(["the"] * 300))
    with pytest.raises(ValueError, match="No document index"):
        OneGenRAGPipeline(model=model, tokenizer=tokenizer)(PROMPTS[0])
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['top_n'\]"):
        rag(PROMPTS[0], top_n=2)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        rag(PROMPTS[0], top_k=0)
    with pytest.raises(ValueError, match="streamer follows one sequence"):
        rag(PROMPTS[:2], batch_size=2, streamer=Recorder())
    with pytest.raises(TypeError, match="needs a OneGen model"):
        OneGenRAGPipeline(model=OneGenModelTester("llama").get_base_model(), tokenizer=tokenizer)
