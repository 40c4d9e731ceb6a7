# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen retrieval metric: Accuracy@k, Precision@k, Recall@k, MRR@k, NDCG@k and MAP@k of ranked document ids.

The definitions are those of sentence-transformers' `InformationRetrievalEvaluator.compute_metrics` (binary
relevance; Recall@k divides by the number of relevant documents; NDCG's ideal ranking puts every relevant document
first; MAP@k divides by min(k, number relevant)), so the numbers are identical on the same rankings.
"""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """Retrieval metrics over ranked lists of document ids, with sentence-transformers'
InformationRetrievalEvaluator definitions (Accuracy@k, Precision@k, Recall@k, MRR@k, NDCG@k, MAP@k)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]`): for each query, retrieved document ids, best first, without duplicates
        (at least max(k) of them when the corpus allows).
    references (`list[list[str]]`): for each query, the relevant document ids (at least one).
    accuracy_at_k (`list[int]`, defaults to [1, 3, 5, 10]), precision_recall_at_k (defaults to [1, 3, 5, 10]),
    mrr_at_k (defaults to [10]), ndcg_at_k (defaults to [10]), map_at_k (defaults to [100]): cut-offs.
Returns:
    dict with keys "accuracy@k", "precision@k", "recall@k", "mrr@k", "ndcg@k", "map@k" for each cut-off, in [0, 1].
Examples:
    >>> metric = evaluate.load("onegen_retrieval")
    >>> metric.compute(predictions=[["d1", "d2"]], references=[["d2"]], accuracy_at_k=[1, 2])["mrr@10"]
    0.5
"""

_CITATION = """@inproceedings{reimers-2019-sentence-bert,
  title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
  author = "Reimers, Nils and Gurevych, Iryna",
  booktitle = "EMNLP-IJCNLP",
  year = "2019",
}"""


def _dcg(relevances: list[int], k: int) -> float:
    return sum(relevances[i] / np.log2(i + 2) for i in range(min(len(relevances), k)))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OnegenRetrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("string")),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
            reference_urls=["https://sbert.net/docs/package_reference/sentence_transformer/evaluation.html"],
        )

    def _compute(self, predictions, references, accuracy_at_k=(1, 3, 5, 10), precision_recall_at_k=(1, 3, 5, 10),
                 mrr_at_k=(10,), ndcg_at_k=(10,), map_at_k=(100,)):
        if len(predictions) == 0:
            raise ValueError("onegen_retrieval: no queries to score")
        hits = {k: 0 for k in accuracy_at_k}
        precision = {k: [] for k in precision_recall_at_k}
        recall = {k: [] for k in precision_recall_at_k}
        mrr = {k: 0.0 for k in mrr_at_k}
        ndcg = {k: [] for k in ndcg_at_k}
        average_precision = {k: [] for k in map_at_k}
        for i, (ranking, relevant) in enumerate(zip(predictions, references)):
            relevant = set(relevant)
            if not relevant:
                raise ValueError(f"onegen_retrieval: references[{i}] is empty; every query needs a relevant document")
            if len(set(ranking)) != len(ranking):
                raise ValueError(f"onegen_retrieval: predictions[{i}] ranks a document twice: {list(ranking)[:20]}")
            is_hit = [1 if doc in relevant else 0 for doc in ranking]
            for k in accuracy_at_k:
                hits[k] += 1 if any(is_hit[:k]) else 0
            for k in precision_recall_at_k:
                precision[k].append(sum(is_hit[:k]) / k)
                recall[k].append(sum(is_hit[:k]) / len(relevant))
            for k in mrr_at_k:
                first = next((rank for rank, hit in enumerate(is_hit[:k]) if hit), None)
                mrr[k] += 0.0 if first is None else 1.0 / (first + 1)
            for k in ndcg_at_k:
                ndcg[k].append(_dcg(is_hit[:k], k) / _dcg([1] * len(relevant), k))
            for k in map_at_k:
                correct, total = 0, 0.0
                for rank, hit in enumerate(is_hit[:k]):
                    if hit:
                        correct += 1
                        total += correct / (rank + 1)
                average_precision[k].append(total / min(k, len(relevant)))
        n = len(predictions)
        result = {f"accuracy@{k}": hits[k] / n for k in accuracy_at_k}
        result.update({f"precision@{k}": float(np.mean(v)) for k, v in precision.items()})
        result.update({f"recall@{k}": float(np.mean(v)) for k, v in recall.items()})
        result.update({f"mrr@{k}": v / n for k, v in mrr.items()})
        result.update({f"ndcg@{k}": float(np.mean(v)) for k, v in ndcg.items()})
        result.update({f"map@{k}": float(np.mean(v)) for k, v in average_precision.items()})
        return result
