# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Task metrics of `onegen eval`, computed with the package's own `evaluate` modules (`onegen.metrics`)."""

import functools

from .. import metrics
from .retrievers import RetrievalRun


ACCURACY_AT_K = [1, 5, 10, 20, 100]
METRIC_KWARGS = dict(accuracy_at_k=ACCURACY_AT_K, precision_recall_at_k=ACCURACY_AT_K, mrr_at_k=[10],
                     ndcg_at_k=[10], map_at_k=[100])


@functools.lru_cache(maxsize=None)
def _metric(name: str):
    return metrics.load(name)


def retrieval_metrics(queries: list[dict], run: RetrievalRun) -> dict:
    """onegen_retrieval per hop (relevant = that hop's positives). With several hops, the keys get a `hop{k}/`
    prefix and `support@k` is the share of queries whose every hop finds a positive in its top k."""
    hops = max(len(q["messages"][-1]["positive"]) for q in queries)
    results = {}
    for hop in range(hops):
        rows = [(r[hop], q["messages"][-1]["positive"][hop]) for q, r in zip(queries, run.rankings)
                if hop < len(r) and q["messages"][-1]["positive"][hop]]
        if not rows:  # no query supervises this hop: nothing to measure
            continue
        scores = _metric("onegen_retrieval").compute(
            predictions=[ranking for ranking, _ in rows], references=[relevant for _, relevant in rows],
            **METRIC_KWARGS,
        )
        prefix = f"hop{hop + 1}/" if hops > 1 else ""
        results.update({prefix + key: value for key, value in scores.items()})
    if hops > 1:
        for k in ACCURACY_AT_K:
            # Hops without a positive are skipped here as in the per-hop metrics.
            found = [all(set(r[h][:k]) & set(q["messages"][-1]["positive"][h]) for h in range(len(r))
                         if q["messages"][-1]["positive"][h])
                     for q, r in zip(queries, run.rankings)]
            results[f"support@{k}"] = sum(found) / len(found)
    return results


def linking_metrics(queries: list[dict], run: RetrievalRun) -> dict:
    """WN-EL: in-KB accuracy when choosing among the lemma's candidates (`in_kb_accuracy`), and micro P/R/F1 of
    linking each mention to the top-1 document of the whole KB (`kb_precision`, `kb_recall`, `kb_f1`)."""
    references = [[{"mention": q["mention"]["text"], "entity": q["gold_doc_ids"][0]}] for q in queries]
    best_candidate = [
        [{"mention": q["mention"]["text"], "entity": max(zip(scores, q["candidates"]), key=lambda p: p[0])[1]}]
        for q, scores in zip(queries, run.candidate_scores)
    ]
    top1 = [[{"mention": q["mention"]["text"], "entity": r[0][0]}] for q, r in zip(queries, run.rankings)]
    in_kb = _metric("onegen_el").compute(predictions=best_candidate, references=references)
    full = _metric("onegen_el").compute(predictions=top1, references=references)
    return {"in_kb_accuracy": in_kb["in_kb_accuracy"], "kb_precision": full["precision"],
            "kb_recall": full["recall"], "kb_f1": full["f1"]}


def mfs_linking_metrics(queries: list[dict]) -> dict:
    """Most-frequent-sense baseline (WN-EL): the first candidate in WordNet's sense order."""
    references = [[{"mention": q["mention"]["text"], "entity": q["gold_doc_ids"][0]}] for q in queries]
    predictions = [[{"mention": q["mention"]["text"], "entity": q["candidates"][0]}] for q in queries]
    return {"in_kb_accuracy": _metric("onegen_el").compute(predictions=predictions, references=references)["in_kb_accuracy"]}


def answer_metrics(queries: list[dict], answers: list[str], prefix: str = "") -> dict:
    """onegen_qa exact match and F1 (max over each query's aliases)."""
    scores = _metric("onegen_qa").compute(predictions=answers, references=[q["answers"] for q in queries])
    return {prefix + "exact_match": scores["exact_match"], prefix + "f1": scores["f1"]}


def end_to_end_qa_metrics(queries: list[dict], outputs: list[dict], answers: list[str]) -> dict:
    """Generated answers (EM/F1), retrieval calls per query, and `e2e_support`: the share of queries whose k-th
    retrieval during decoding put a positive of hop k first, for every hop that has positives (single-hop: the
    first retrieval's top document is gold)."""
    results = answer_metrics(queries, answers)
    results["retrievals_per_query"] = sum(len({h["position"] for h in o["retrievals"]}) for o in outputs) / len(outputs)
    covered = []
    for query, output in zip(queries, outputs):
        firsts = [hit["doc_id"] for hit in output["retrievals"] if hit["rank"] == 0]  # one per query token, in order
        hops = query["messages"][-1]["positive"]
        covered.append(all(k < len(firsts) and firsts[k] in positives for k, positives in enumerate(hops) if positives))
    results["e2e_support"] = sum(covered) / len(covered)
    return results


def emission_metrics(queries: list[dict], outputs: list[dict], query_token: str) -> dict:
    """How the model decides to retrieve, through the pipeline: `emission_exact` is the share of items whose first
    query token comes exactly where the data puts it (after the same text, whitespace aside); `retrievals_extra` /
    `retrievals_missing` the share of items with more / fewer query tokens than the data has."""
    exact = extra = missing = 0
    for query, output in zip(queries, outputs):
        gold = query["messages"][-1]["content"]
        expected = gold.count(query_token)
        made = len({hit["position"] for hit in output["retrievals"]})  # one query token, top_k hits
        generated = output["generated_text"]
        if query_token in generated:
            exact += " ".join(generated.split(query_token, 1)[0].split()) == " ".join(gold.split(query_token, 1)[0].split())
        extra += made > expected
        missing += made < expected
    n = max(1, len(outputs))
    return {"emission_exact": exact / n, "retrievals_extra": extra / n, "retrievals_missing": missing / n}


def end_to_end_linking_metrics(queries: list[dict], links: list[list[dict]]) -> dict:
    """Micro P/R/F1 of the (mention, entity) links the model generated itself (`link` mode)."""
    references = [[{"mention": q["mention"]["text"], "entity": q["gold_doc_ids"][0]}] for q in queries]
    scores = _metric("onegen_el").compute(predictions=links, references=references)
    return {"e2e_precision": scores["precision"], "e2e_recall": scores["recall"], "e2e_f1": scores["f1"],
            "retrievals_per_query": sum(len(row) for row in links) / len(links)}


def reader_answers(run: RetrievalRun, titles: dict[str, str]) -> list[str]:
    """RD-1913's retrieve-and-read baseline: the first lemma (title) of the top-1 document."""
    return [titles[r[0][0]] for r in run.rankings]
