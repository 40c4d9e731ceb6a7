# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen entity-linking metric: micro precision, recall and F1 over (document, mention, entity) triples, and in-KB
accuracy.

As in OneGen's `scripts/entity_linking` evaluation: a unit is (document index, mention text stripped, entity id);
repeated identical units count as many times as they occur (multiset intersection); gold units whose entity is
`None` or in `nil_entities` (NIL, outside the KB) are removed, and a predicted mention equal to such a gold mention
is dropped, counting neither as a true nor as a false positive. In-KB accuracy: over gold (document, mention) pairs
with an in-KB entity, the share whose first prediction for that same mention is the gold entity (with gold mentions
given, as in WN-EL, it is the disambiguation accuracy).
"""

import collections

import datasets
import evaluate


_DESCRIPTION = """Micro precision/recall/F1 of (document, mention, entity) triples and in-KB accuracy."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[dict]]`): for each document, the predicted links `{"mention": str, "entity": str}`.
    references (`list[list[dict]]`): for each document, the gold links `{"mention": str, "entity": str | None}`.
    nil_entities (`list[str]`, defaults to ["Unknown", "NIL"]): entity ids meaning "not in the KB".
Returns:
    dict with "precision", "recall", "f1", "in_kb_accuracy" in [0, 1], plus the counts "num_predicted",
    "num_gold", "num_correct".
Examples:
    >>> metric = evaluate.load("onegen_el")
    >>> metric.compute(predictions=[[{"mention": "bank", "entity": "n1"}]],
    ...                references=[[{"mention": "bank", "entity": "n1"}]])["f1"]
    1.0
"""

_CITATION = """@inproceedings{zhang2024onegen,
  title = {OneGen: Efficient One-Pass Unified Generation and Retrieval for LLMs},
  author = {Zhang, Jintian and Peng, Cheng and Sun, Mengshu and Chen, Xiang and Liang, Lei and Zhang, Zhiqiang and
            Zhou, Jun and Chen, Huajun and Zhang, Ningyu},
  booktitle = {Findings of EMNLP},
  year = {2024}
}"""

_LINK = {"mention": datasets.Value("string"), "entity": datasets.Value("string")}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OnegenEl(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.List(_LINK), "references": datasets.List(_LINK)}),
            reference_urls=["https://github.com/zjunlp/OneGen"],
        )

    def _compute(self, predictions, references, nil_entities=("Unknown", "NIL")):
        nil = set(nil_entities)
        predicted, gold = collections.Counter(), collections.Counter()
        in_kb_total, in_kb_correct = 0, 0
        for doc, (pred_links, gold_links) in enumerate(zip(predictions, references)):
            # As the original scorer: each NIL gold occurrence removes one prediction of its mention.
            nil_left = collections.Counter(
                g["mention"].strip() for g in gold_links if g["entity"] is None or g["entity"] in nil
            )
            first_prediction = {}
            for link in pred_links:
                mention = link["mention"].strip()
                if nil_left[mention] > 0:
                    nil_left[mention] -= 1
                    continue
                predicted[(doc, mention, link["entity"])] += 1
                first_prediction.setdefault(mention, link["entity"])
            for link in gold_links:
                mention = link["mention"].strip()
                if link["entity"] is None or link["entity"] in nil:
                    continue
                gold[(doc, mention, link["entity"])] += 1
                in_kb_total += 1
                in_kb_correct += first_prediction.get(mention) == link["entity"]
        correct = sum((predicted & gold).values())
        num_predicted, num_gold = sum(predicted.values()), sum(gold.values())
        precision = correct / num_predicted if num_predicted else 0.0
        recall = correct / num_gold if num_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": precision, "recall": recall, "f1": f1,
            "in_kb_accuracy": in_kb_correct / in_kb_total if in_kb_total else 0.0,
            "num_predicted": num_predicted, "num_gold": num_gold, "num_correct": correct,
        }
