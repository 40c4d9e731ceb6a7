"""A synthetic retrieval task in the original OneGen formats: a question and its document share a hidden key (a
set of words, shuffled in the question), so retrieval must be learned; held-out items have unseen keys."""

import random

from onegen_model_tester import WORDS


KEY_WORDS = WORDS[:40]


def make_items(num_items: int, seed: int = 0, key_size: int = 3) -> list[dict]:
    rng = random.Random(seed)
    seen, items = set(), []
    while len(items) < num_items:
        key = tuple(sorted(rng.sample(KEY_WORDS, key_size)))
        if key in seen:
            continue
        seen.add(key)
        shuffled = list(key)
        rng.shuffle(shuffled)
        items.append({"uid": f"d{len(items)}", "key": key, "question": "find " + " ".join(shuffled)})
    return items


def corpus_records(items, doc_token="[RD]") -> list[dict]:
    """`db.jsonl` records: the document is the key, ending with the document token."""
    return [{"uid": item["uid"], "messages": [{"role": "user", "content": "record"},
                                              {"role": "assistant", "content": " " + " ".join(item["key"]) + doc_token}]}
            for item in items]


def document_text(record) -> str:
    """The text `model.encode_documents` / `DocumentIndex` sees for a corpus record (contents concatenated)."""
    return "".join(message["content"] for message in record["messages"])


def train_records(items, query_token="[RQ]", num_negatives=0, seed=0) -> list[dict]:
    """`train.jsonl` records: the user asks, the assistant emits the query token, then answers with the key."""
    rng = random.Random(seed)
    records = []
    for item in items:
        negatives = [other["uid"] for other in rng.sample(items, num_negatives + 1) if other is not item][:num_negatives]
        records.append({"messages": [
            {"role": "user", "content": item["question"]},
            {"role": "assistant", "content": f"looking{query_token} found " + " ".join(item["key"]),
             "positive": [item["uid"]], "negative": [negatives]},
        ]})
    return records


def query_prefix(tokenizer, item, query_token="[RQ]") -> str:
    """The rendered conversation up to and including the query token, as the model sees it when it emits it."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": item["question"]}], tokenize=False,
                                           add_generation_prompt=True)
    return prompt + "looking" + query_token
