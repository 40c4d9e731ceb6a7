# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""End-to-end OneGen outputs for `onegen eval`: a `DocumentIndex` over the KB and `pipeline("onegen-rag")`, which
retrieves inside decoding (`insert` mode for QA: the retrieved document is inserted and the answer generated;
`link` mode for WN-EL: each query token links the mention written before it)."""

import hashlib
import json
from pathlib import Path

from transformers import pipeline
from transformers.utils import logging

from onegen.chat_utils import plain_messages, render_prompt, uses_chat_template
from onegen.modeling_onegen import render_document

from .generation import extract_answer


logger = logging.get_logger(__name__)


def build_index(model, tokenizer, kb: list[dict], batch_size: int = 16, cache_dir=None):
    """A `DocumentIndex` of the KB documents, each as the model renders it (`render_document`, as `db.jsonl` has it).

    With `cache_dir`, the index is saved there under a key of the model's fingerprint and the KB, and loaded from
    there next time (encoding a 10k-document KB takes minutes on a CPU)."""
    from ..pipelines import DocumentIndex, model_fingerprint

    corpus = [{"id": d["doc_id"], "text": render_document(d)} for d in kb]
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps([model_fingerprint(model), corpus]).encode("utf-8")).hexdigest()[:24]
        path = Path(cache_dir) / f"index-{digest}"
        if path.is_dir():  # saved atomically: a folder that exists is complete
            try:
                return DocumentIndex.load(path, model=model)
            except (OSError, ValueError) as error:  # an unreadable cache is rebuilt, not fatal
                logger.warning(f"rebuilding the cached index {path}: {error}")
    index = DocumentIndex.build(model, tokenizer, corpus, batch_size=batch_size)
    if path is not None:
        index.save(path)
    return index


def run_pipeline(model, tokenizer, index, records: list[dict], max_new_tokens: int = 32, batch_size: int = 8,
                 use_chat_template: bool = True, max_retrievals: int | None = None,
                 retrieval_mode: str | None = None) -> list[dict]:
    """`pipeline("onegen-rag")` over each record's prompt (greedy, one document per retrieval, in `retrieval_mode`,
    default the model's); returns its outputs (`generated_text` with the special tokens kept, `retrievals`)."""
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    chat = uses_chat_template(tokenizer, use_chat_template)
    outputs = []
    chunk = max(1, batch_size) * 4
    for start in logging.tqdm(range(0, len(records), chunk), desc="onegen-rag answers", unit="chunk"):
        batch = records[start : start + chunk]
        if chat:
            inputs = [plain_messages(r["messages"][:-1]) for r in batch]
            kwargs = {}
        else:
            rendered = [render_prompt(tokenizer, r["messages"], False) for r in batch]
            inputs, kwargs = [text for text, _ in rendered], {"add_special_tokens": rendered[0][1]}
        result = rag(inputs, batch_size=batch_size, top_k=1, max_new_tokens=max_new_tokens,
                     max_retrievals=max_retrievals, retrieval_mode=retrieval_mode, skip_special_tokens=False, **kwargs)
        outputs += result
    return outputs


class FixedRanking:
    """A document index for the pipeline-RAG baseline: whatever the query vector, the i-th retrieval of a record
    gets the i-th document of a ranking made beforehand by another retriever (e.g. MiniLM over the question), so
    the same model inserts that retriever's documents where it decides to retrieve."""

    def __init__(self, kb: list[dict], ranking: list[str]):
        self._kb = kb
        self._position = {doc["doc_id"]: i for i, doc in enumerate(kb)}
        self._ranking, self._calls = ranking, 0

    def __len__(self) -> int:
        return len(self._kb)

    def __getitem__(self, i: int) -> dict:
        return {"id": self._kb[i]["doc_id"], "text": render_document(self._kb[i])}

    def search(self, query_vectors, k: int = 1):
        import torch

        rows = []
        for _ in range(query_vectors.shape[0]):
            start = min(self._calls, len(self._ranking) - k)
            rows.append([self._position[doc_id] for doc_id in self._ranking[start : start + k]])
            self._calls += 1
        indices = torch.tensor(rows, dtype=torch.long)
        return torch.zeros(indices.shape), indices


def run_pipeline_rag(model, tokenizer, kb: list[dict], records: list[dict], rankings: list[list[str]],
                     max_new_tokens: int = 32, max_retrievals: int | None = None) -> list[dict]:
    """The pipeline-RAG baseline: `pipeline("onegen-rag")` with the same model, but each retrieval inserts the next
    document of `rankings[i]` (another retriever's ranking for record i) instead of searching with the query
    vector. One record at a time (each has its own ranking)."""
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=FixedRanking(kb, rankings[0]))
    outputs = []
    for record, ranking in logging.tqdm(list(zip(records, rankings)), desc="pipeline-RAG answers", unit="query"):
        messages = plain_messages(record["messages"][:-1])
        outputs.append(rag(messages, index=FixedRanking(kb, ranking), top_k=1, max_new_tokens=max_new_tokens,
                           max_retrievals=max_retrievals, retrieval_mode="insert", skip_special_tokens=False))
    return outputs


def _strip_special(text: str, tokenizer, config) -> str:
    for token in list(tokenizer.all_special_tokens) + list(config.special_tokens.values()):
        if token:
            text = text.replace(token, " ")
    return text


def generated_answer(output: dict, tokenizer, config) -> str:
    """The answer of an `insert`-mode generation: the text after the last inserted document (or after the last
    query token when the model has no context tags), special tokens removed, first line."""
    text = output["generated_text"]
    for marker in (config.context_end_token, config.query_token):
        if marker and marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    return extract_answer(_strip_special(text, tokenizer, config))


def generated_links(output: dict, tokenizer, config) -> list[dict]:
    """The links of a `link`-mode generation: for each retrieval, the text written before its query token (since
    the previous one) as the mention, and the retrieved document as the entity."""
    pieces = output["generated_text"].split(config.query_token)
    links = []
    for piece, hit in zip(pieces, output["retrievals"]):
        if config.continuation_token:
            piece = piece.replace(config.continuation_token, "")
        links.append({"mention": " ".join(_strip_special(piece, tokenizer, config).split()), "entity": hit["doc_id"]})
    return links
