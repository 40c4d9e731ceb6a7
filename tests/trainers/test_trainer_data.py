"""OneGen data: loading and validating the original JSONL formats, role-based labels, the collator."""

import json
import logging

import pytest
import torch
from onegen_model_tester import OneGenModelTester

from onegen.trainers import OneGenDataCollator, OneGenDataError, load_corpus, load_train_examples
from onegen.trainers.tokenization import IGNORE_INDEX, tokenize_document, tokenize_example


def write_jsonl(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


DOC = {"uid": "paris", "messages": [{"role": "user", "content": "describe"},
                                    {"role": "assistant", "content": "paris is a city[RD] in france[RD]"}]}
DOC2 = {"uid": "lake", "messages": [{"role": "user", "content": "describe"},
                                    {"role": "assistant", "content": "a lake[RD]"}]}
EXAMPLE = {"messages": [{"role": "user", "content": "where is paris"},
                        {"role": "assistant", "content": "it is[RQ] in france", "positive": ["paris-1"],
                         "negative": [["lake", "nowhere"]]}]}


def test_labels_follow_the_role_rules():
    model, tokenizer = OneGenModelTester().get_model(context_tags=("<p>", "</p>"))
    config = model.config
    messages = [{"role": "user", "content": "where is paris"},
                {"role": "assistant", "content": "it is[RQ]<p> paris is in france</p> in france"}]
    out = tokenize_example(messages, tokenizer, config, use_chat_template=True)
    ids, labels = out["input_ids"], out["labels"]
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\nwhere is paris<|im_end|>\n<|im_start|>assistant\n")
    trained = tokenizer.decode([t for t, label in zip(ids, labels) if label != IGNORE_INDEX])
    # Prompt masked; query token trained; the token after it (the context tag) and the whole context span masked;
    # the end-of-turn (EOS) trained.
    assert trained == "it is[RQ] in france<|im_end|>\n"
    (position,) = out["anchor_positions"]
    assert ids[position] == config.query_token_id and labels[position] == config.query_token_id
    assert labels[position + 1] == IGNORE_INDEX and out["anchor_slots"] == [0]

    plain = tokenize_example(messages, tokenizer, config, use_chat_template=False)
    assert tokenizer.decode(plain["input_ids"]).endswith("in france<|im_end|>")  # EOS appended without a template
    truncated = tokenize_example(messages, tokenizer, config, use_chat_template=True, max_length=position)
    assert len(truncated["input_ids"]) == position and truncated["anchor_positions"] == []


def test_documents_are_tokenized_like_encode_documents():
    model, tokenizer = OneGenModelTester().get_model()
    out = tokenize_document(DOC["messages"], tokenizer, model.config)
    assert out["input_ids"] == tokenizer("describeparis is a city[RD] in france[RD]").input_ids
    assert [out["input_ids"][p] for p in out["vector_positions"]] == [model.config.doc_token_id] * 2
    short = tokenize_document(DOC["messages"], tokenizer, model.config, max_length=6)
    assert len(short["input_ids"]) == 6 and len(short["vector_positions"]) == 2


def test_loading_validates_and_normalises(tmp_path):
    from transformers.testing_utils import CaptureLogger

    model, tokenizer = OneGenModelTester().get_model()
    corpus = load_corpus(write_jsonl(tmp_path / "db.jsonl", [DOC, DOC2]), "[RD]")
    assert corpus["num_vectors"] == [2, 1]
    # onegen's loggers print through their own handler, as transformers' do (not through the root logger's)
    with CaptureLogger(logging.getLogger("onegen.trainers.data")) as captured:
        examples = load_train_examples(write_jsonl(tmp_path / "train.jsonl", [EXAMPLE]), "[RQ]", corpus)
    assert examples[0]["positives"] == [["paris-1"]] and examples[0]["negatives"] == [["lake"]]
    assert "dropped 1 hard negatives" in captured.out


@pytest.mark.parametrize(
    "lines,kind,message",
    [
        (['{"uid": "a", "messages": [}'], "db", r"db.jsonl, line 1: invalid JSON"),
        ([DOC, {**DOC2, "uid": "a-1"}], "db", r"db.jsonl, line 2: field 'uid' is 'a-1'; uids must not contain '-'"),
        ([{"uid": "x", "messages": [{"role": "assistant", "content": "x[RD]"}]}], "db",
         r"line 1: field 'messages\[0\].role' is 'assistant', expected 'user'"),
        ([{"uid": "x", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "no token"}]}],
         "db", r"line 1: field 'messages' has no '\[RD\]' in an assistant turn"),
        ([EXAMPLE, {"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "q"}]}], "train",
         r"train.jsonl, line 2: field 'messages\[1\].role' is 'user', expected 'assistant'"),
        ([{"messages": [{"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a[RQ] b[RQ]", "positive": ["lake"], "negative": [[]]}]}],
         "train", r"line 1: field 'messages\[1\].positive' must be a list with one entry per '\[RQ\]' in the content \(2\)"),
        ([{"messages": [{"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a[RQ]", "positive": ["paris-7"], "negative": [[]]}]}],
         "train", r"line 1: field 'messages\[1\].positive\[0\]' names 'paris-7', which is not in the corpus"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, lines, kind, message):
    if kind == "db":
        with pytest.raises(OneGenDataError, match=message):
            load_corpus(write_jsonl(tmp_path / "db.jsonl", lines), "[RD]")
    else:
        corpus = load_corpus(write_jsonl(tmp_path / "db.jsonl", [DOC, DOC2]), "[RD]")
        with pytest.raises(OneGenDataError, match=message):
            load_train_examples(write_jsonl(tmp_path / "train.jsonl", lines), "[RQ]", corpus)


def make_collator(num_docs=30, n_neg=3, seed=0, random_negatives=True, pack_documents=False):
    tokenizer = OneGenModelTester().get_tokenizer()
    lengths = [3 + i % 5 for i in range(num_docs)]
    return OneGenDataCollator(
        corpus_input_ids=[[5] * n + [400] for n in lengths],
        corpus_vector_positions=[[n] for n in lengths],
        corpus_uids=[f"d{i}" for i in range(num_docs)],
        pad_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), n_pos_per_sent=1, n_neg_per_pos=n_neg,
        random_negatives=random_negatives, seed=seed, pack_documents=pack_documents,
    )


def example(i, positive, hard, length=6):
    return {"example_id": i, "input_ids": [7] * length, "labels": [IGNORE_INDEX] + [7] * (length - 1),
            "anchor_positions": [length - 2], "anchor_slots": [0], "positives": [[positive]], "negatives": [hard]}


def test_collator_negatives_padding_and_determinism():
    collator = make_collator()  # unpacked: one row per document
    batch_examples = [example(0, "d1", ["d2", "d1", "d3"]), example(1, "d2", [], length=4)]
    batch = collator(batch_examples)
    num_anchors = 2
    positions = batch["retrieval_positions"]
    docs = positions[num_anchors:]
    # Dynamic padding: rows are as wide as the longest row of this batch, not a fixed max_length.
    assert batch["input_ids"].shape[1] == batch["attention_mask"].sum(1).max() < 20
    assert (batch["labels"][2:] == IGNORE_INDEX).all()  # document rows carry no labels
    uid_of = {}
    for vector, (row, position) in enumerate(docs.tolist()):
        assert batch["input_ids"][row, position] == 400
        uid_of[vector] = row
    positive_rows = {uid_of[i] for i in batch["positive_index"].tolist()}
    # Hard negatives first, never a positive of the batch: anchor 0 skips d1 (its positive) and d2 (anchor 1's).
    first = [uid_of[i] for i in batch["negative_index"][0].tolist()]
    assert len(first) == 3 and not positive_rows & set(first)
    row_of_doc = {row: int(batch["input_ids"][row].ne(collator.pad_token_id).sum()) for row in set(uid_of.values())}
    assert row_of_doc[first[0]] == len(collator.corpus_input_ids[3])  # d3, the only usable hard negative
    assert len(set(docs[:, 0].tolist())) == docs.shape[0]  # one row per unique document
    # Seeded: the same batch at the same epoch draws the same negatives; another epoch draws others.
    assert torch.equal(collator(batch_examples)["input_ids"], batch["input_ids"])
    draws = set()
    for epoch in range(5):
        collator.epoch = epoch
        draws.add(tuple(collator(batch_examples)["input_ids"][2:, 0:8].flatten().tolist()))
    assert len(draws) > 1  # another epoch draws other random negatives


def test_collator_without_random_negatives_uses_hard_ones_only():
    batch = make_collator(random_negatives=False)([example(0, "d1", ["d2"])])
    assert batch["positive_index"].tolist() == [0] and batch["negative_index"].tolist() == [[1, -1, -1]]
    assert batch["retrieval_positions"].shape == (3, 2)  # 1 anchor + 2 document vectors


def test_negatives_never_include_a_document_the_anchor_accepts():
    """An anchor's other acceptable documents and the other vectors of its positive's document are not negatives
    (hard or random), and the collator hands the loss the ids it needs to mask them."""
    two_vectors = OneGenDataCollator(
        corpus_input_ids=[[5, 400, 5, 400], [5, 400], [5, 400], [5, 400]], corpus_vector_positions=[[1, 3], [1], [1], [1]],
        corpus_uids=["d0", "d1", "d2", "d3"], pad_token_id=0, n_neg_per_pos=3, random_negatives=True, seed=0,
    )
    for seed in range(20):
        two_vectors.seed = seed
        record = {"example_id": 0, "input_ids": [7] * 6, "labels": [7] * 6, "anchor_positions": [4],
                  "anchor_slots": [0], "positives": [["d0-0", "d1"]], "negatives": [["d0-1", "d1", "d2"]]}
        batch = two_vectors([record])
        ids = batch["document_ids"].tolist()
        negatives = {ids[i] for i in batch["negative_index"][0].tolist() if i >= 0}
        accepted = set(batch["positive_ids"][0].tolist())
        assert accepted == {0 << 16 | 0, 0 << 16 | 1, 1 << 16 | 0}  # both vectors of d0, and d1
        assert not negatives & accepted and ids[batch["positive_index"][0]] in accepted


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_packed_documents_give_the_vectors_and_loss_of_one_row_each(arch):
    """Packing documents several to a row (positions restarting per document, no attention mask) changes nothing the
    model computes: the same document vectors and generation loss as a row each, with fewer rows."""
    torch.manual_seed(0)
    model, tokenizer = OneGenModelTester(arch).get_model()
    doc_id = model.config.doc_token_id
    texts = ["paris is the capital of france", "a lake", "the mississippi is a long river in the united states",
             "meridian", "rome is in italy and it is old", "x y z"]
    corpus = [tokenizer(t + "[RD]").input_ids for t in texts]
    kwargs = dict(corpus_input_ids=corpus, corpus_vector_positions=[[ids.index(doc_id)] for ids in corpus],
                  corpus_uids=[f"d{i}" for i in range(len(texts))], pad_token_id=tokenizer.pad_token_id,
                  n_neg_per_pos=5, random_negatives=True, seed=0)
    ids = tokenizer("where is paris? it is in france, a city[RQ] on a river with many bridges and old streets").input_ids
    records = [{"example_id": 0, "input_ids": ids, "labels": ids, "anchor_positions": [ids.index(model.config.query_token_id)],
                "anchor_slots": [0], "positives": [["d0"]], "negatives": [["d1", "d2"]]}]
    unpacked = OneGenDataCollator(**kwargs, pack_documents=False)(records)
    packed = OneGenDataCollator(**kwargs, pack_documents=True)(records)
    assert packed["input_ids"].shape[0] < unpacked["input_ids"].shape[0] == 1 + len(texts)
    assert packed["input_ids"].shape[1] == unpacked["input_ids"].shape[1]  # packing never widens the batch
    assert packed["attention_mask"].sum() == unpacked["attention_mask"].sum()

    def run(batch, packed):
        with torch.no_grad():
            return model(input_ids=batch["input_ids"], labels=batch["labels"],
                         attention_mask=None if packed else batch["attention_mask"],
                         position_ids=batch["position_ids"] if packed else None,
                         retrieval_positions=batch["retrieval_positions"], return_logits=False, use_cache=False)

    want, got = run(unpacked, False), run(packed, True)
    torch.testing.assert_close(got.retrieval_embeddings, want.retrieval_embeddings, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.loss, want.loss, atol=1e-6, rtol=1e-6)
    assert torch.equal(packed["document_ids"], unpacked["document_ids"])
