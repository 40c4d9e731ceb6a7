# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen QA metric: exact match and token F1 with SQuAD / HotpotQA answer normalisation, max over aliases.

Normalisation (SQuAD v1.1, reused by HotpotQA): lower-case, drop punctuation, drop the articles a/an/the, collapse
white space. F1 follows HotpotQA's `f1_score`: when either side normalises to "yes", "no" or "noanswer" and the two
differ, F1 is 0. Each prediction scores the maximum over its reference aliases, for EM and F1 separately.
"""

import collections
import re
import string

import datasets
import evaluate


_DESCRIPTION = """Exact match and token F1 of generated answers against lists of acceptable answers (aliases), with
SQuAD/HotpotQA normalisation; scores in [0, 1]."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the generated answers.
    references (`list[list[str]]`): for each prediction, the acceptable answers (at least one).
Returns:
    dict with "exact_match", "f1", "precision" and "recall" (of the alias with the best F1), means in [0, 1].
Examples:
    >>> metric = evaluate.load("onegen_qa")
    >>> metric.compute(predictions=["The Deep South"], references=[["Deep South", "South"]])["exact_match"]
    1.0
"""

_CITATION = """@inproceedings{yang2018hotpotqa,
  title = {HotpotQA: A Dataset for Diverse, Explainable Multi-hop Question Answering},
  author = {Yang, Zhilin and Qi, Peng and Zhang, Saizheng and Bengio, Yoshua and Cohen, William W. and
            Salakhutdinov, Ruslan and Manning, Christopher D.},
  booktitle = {EMNLP},
  year = {2018}
}"""

_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower-case, remove punctuation and articles, collapse white space (SQuAD v1.1 / HotpotQA)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_precision_recall(prediction: str, reference: str) -> tuple[float, float, float]:
    """HotpotQA's token-level F1, precision and recall of one prediction against one reference."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0, 0.0, 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = collections.Counter(pred_tokens) & collections.Counter(ref_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0, 0.0, 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OnegenQa(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
            reference_urls=["https://github.com/hotpotqa/hotpot/blob/master/hotpot_evaluate_v1.py"],
        )

    def _compute(self, predictions, references):
        if len(predictions) == 0:
            raise ValueError("onegen_qa: no predictions to score")
        totals = collections.Counter()
        for i, (prediction, aliases) in enumerate(zip(predictions, references)):
            if not aliases:
                raise ValueError(f"onegen_qa: references[{i}] is empty; every question needs at least one answer")
            totals["exact_match"] += max(float(normalize_answer(prediction) == normalize_answer(a)) for a in aliases)
            f1, precision, recall = max(f1_precision_recall(prediction, a) for a in aliases)
            totals["f1"] += f1
            totals["precision"] += precision
            totals["recall"] += recall
        return {key: totals[key] / len(predictions) for key in ("exact_match", "f1", "precision", "recall")}
