# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen eval`: a OneGen model and the baselines on one task split and one KB, as a table and a JSON report."""

import datetime
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
from transformers.utils import logging

from ..default_model import default_cache_dir
from ..modeling_onegen import render_document
from . import scoring
from .data import EvalData, load_eval_data, subset_kb
from .generation import closed_book_answers
from .pipeline_answers import build_index, generated_answer, generated_links, run_pipeline, run_pipeline_rag
from .report import format_table, write_report
from .retrievers import BM25Scorer, MiniLMScorer, OneGenScorer, RetrievalRun, retrieve
from .tasks import QA_TASKS, TASKS, get_task


logger = logging.get_logger(__name__)
BASELINES = ("bm25", "minilm", "closed-book", "pipeline-rag", "mfs")


@dataclass
class EvalArguments:
    """Options of `onegen eval` (parsed with transformers' HfArgumentParser; `--kb-size` = `--kb_size`)."""

    task: str = field(metadata={"help": "Task to evaluate.", "choices": list(TASKS)})
    model: str | None = field(
        default=None, metadata={"help": "OneGen model folder (or Hub id); omit to run the baselines only."}
    )
    split: str = field(default="dev", metadata={"help": "Split to evaluate.", "choices": ["dev", "train", "test"]})
    allow_test_split: bool = field(
        default=False, metadata={"help": "Required with --split test: the test split is reserved for final evaluation."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Dataset folder built by onegen.dataset_builders (default: <onegen cache>/datasets/<task>)."},
    )
    kb_size: int | None = field(
        default=None,
        metadata={"help": "Cut the KB to N documents that keep every gold/candidate document (default: all)."},
    )
    baselines: str = field(
        default="bm25,minilm,closed-book",
        metadata={"help": f"Comma-separated baselines among {', '.join(BASELINES)} ('' for none). closed-book (the "
                          "model with retrieval off) and pipeline-rag (the model inserting MiniLM's documents where "
                          "it retrieves) need --model and a QA task; mfs (most frequent sense) is WN-EL only."},
    )
    max_queries: int | None = field(default=None, metadata={"help": "Evaluate only the first N queries of the split."})
    batch_size: int = field(default=16, metadata={"help": "Batch size for encoding and generation."})
    depth: int = field(default=100, metadata={"help": "Documents ranked per query (the largest k of the metrics)."})
    max_new_tokens: int = field(default=32, metadata={"help": "Generated tokens per answer."})
    use_chat_template: bool = field(
        default=True, metadata={"help": "Render prompts with the tokenizer's chat template, as OneGenTrainer does."}
    )
    output_file: str | None = field(
        default=None, metadata={"help": "JSON report path (default: ./eval-<task>-<split>.json)."}
    )
    num_threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)."})
    generate: bool = field(
        default=True, metadata={"help": "Also answer (QA) or link (WN-EL) end to end with pipeline('onegen-rag')."}
    )
    embedding_cache: bool = field(
        default=True,
        metadata={"help": "Cache the MiniLM KB embeddings under <onegen cache>/embeddings (keyed by the KB texts)."},
    )

    def __post_init__(self):
        names = [b.strip() for b in self.baselines.split(",") if b.strip()]
        unknown = [b for b in names if b not in BASELINES]
        if unknown:
            raise ValueError(f"--baselines: unknown {unknown}; choose among {', '.join(BASELINES)}")
        self.baseline_list = names
        if self.split == "test" and not self.allow_test_split:
            raise ValueError("--split test is reserved for the final evaluation; pass --allow_test_split to run it")


def _load_model(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    if getattr(model.config, "query_token_id", None) is None:
        raise ValueError(f"{path} is not a OneGen model (its config has no query_token_id)")
    return model, tokenizer


def _retrieval_results(data: EvalData, run, titles: dict[str, str]) -> dict:
    results = scoring.retrieval_metrics(data.queries, run)
    if data.task == "wn-el":
        results.update(scoring.linking_metrics(data.queries, run))
    if data.task == "wn-2hop":  # bridge questions need the hop-1 document to find hop 2; comparisons name both
        for kind in sorted({q["meta"]["type"] for q in data.queries}):
            rows = [i for i, q in enumerate(data.queries) if q["meta"]["type"] == kind]
            subset = scoring.retrieval_metrics([data.queries[i] for i in rows], RetrievalRun(
                rankings=[run.rankings[i] for i in rows], candidate_scores=[run.candidate_scores[i] for i in rows]))
            results.update({f"{kind}/{key}": subset[key] for key in ("hop2/accuracy@10", "support@10")})
    if data.task == "rd-1913":  # retrieve-and-read: the top document's first lemma is the answer
        results.update(scoring.answer_metrics(data.queries, scoring.reader_answers(run, titles), prefix="reader_"))
    return results


def _end_to_end(model, tokenizer, index, data: EvalData, args: EvalArguments, notes: list[str]) -> dict:
    """Answers (QA) or links (WN-EL) generated by pipeline("onegen-rag") over a DocumentIndex of the same KB."""
    wanted = get_task(data.task).retrieval_mode
    if wanted not in model.config.retrieval_modes:
        notes.append(f"onegen-rag generation skipped: {data.task} needs a model in {wanted!r} mode, this one is in "
                     f"{model.config.retrieval_mode!r} mode")
        return {}
    # One retrieval more than the data has: an extra retrieval is then seen (and counted), and decoding is bounded.
    outputs = run_pipeline(model, tokenizer, index, data.queries, args.max_new_tokens, args.batch_size,
                           args.use_chat_template, max_retrievals=data.num_hops + 1, retrieval_mode=wanted)
    results = scoring.emission_metrics(data.queries, outputs, model.config.query_token)
    if wanted == "link":
        return {**results, **scoring.end_to_end_linking_metrics(
            data.queries, [generated_links(o, tokenizer, model.config) for o in outputs])}
    answers = [generated_answer(o, tokenizer, model.config) for o in outputs]
    return {**results, **scoring.end_to_end_qa_metrics(data.queries, outputs, answers)}


def run_evaluation(args: EvalArguments) -> dict:
    """Evaluate, print the table, write the JSON report; returns the report."""
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    data = load_eval_data(args.data_dir, args.task, args.split)
    if args.max_queries is not None:
        data.queries = data.queries[: args.max_queries]
    data = subset_kb(data, args.kb_size)  # after the cut: it keeps what the evaluated queries need
    kb_texts = [render_document(d) for d in data.kb]  # what every retriever indexes, the model's rendering
    titles = {d["doc_id"]: d.get("title") or d["text"].split(":", 1)[0].split(",")[0] for d in data.kb}
    results, timings, notes = {}, {}, []

    def timed(name, fn):
        start = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return value

    cache = default_cache_dir() / "embeddings" if args.embedding_cache else None
    model = tokenizer = None
    if args.model:
        model, tokenizer = _load_model(args.model)
        # One DocumentIndex serves both the retrieval metrics and the pipeline (cached by model and KB).
        index = timed("onegen_index", lambda: build_index(model, tokenizer, data.kb, args.batch_size,
                                                          cache_dir=cache.parent / "indexes" if cache else None))
        vectors, vector_doc = index.vectors()
        if not torch.equal(vector_doc, torch.arange(len(data.kb))):
            raise ValueError("onegen eval: every KB text must carry exactly one document vector")
        scorer = OneGenScorer(model, tokenizer, kb_texts, args.batch_size, args.use_chat_template,
                              doc_embeddings=vectors)
        run = timed("onegen_retrieval", lambda: retrieve(scorer, data.queries, data.doc_ids, args.depth))
        results["onegen"] = _retrieval_results(data, run, titles)
        if args.generate:
            results["onegen"].update(
                timed("onegen_generation", lambda: _end_to_end(model, tokenizer, index, data, args, notes)))
    baselines = {"bm25": lambda: BM25Scorer(kb_texts), "minilm": lambda: MiniLMScorer(kb_texts, cache_dir=cache)}
    runs = {}
    for name, make in baselines.items():
        if name in args.baseline_list or (name == "minilm" and "pipeline-rag" in args.baseline_list):
            scorer = timed(f"{name}_index", make)
            runs[name] = timed(f"{name}_retrieval", lambda: retrieve(scorer, data.queries, data.doc_ids, args.depth))
        if name in args.baseline_list:
            results[name] = _retrieval_results(data, runs[name], titles)
    if "mfs" in args.baseline_list:
        if args.task == "wn-el":
            results["mfs"] = scoring.mfs_linking_metrics(data.queries)
        else:
            notes.append("mfs skipped: it is a WN-EL baseline")
    if "closed-book" in args.baseline_list:
        if args.task not in QA_TASKS:
            notes.append("closed-book skipped: WN-EL is not a QA task")
        elif model is None:
            notes.append("closed-book skipped: it needs --model")
        else:
            answers = timed("closed_book", lambda: closed_book_answers(
                model, tokenizer, data.queries, args.max_new_tokens, args.batch_size, args.use_chat_template))
            results["closed-book"] = scoring.answer_metrics(data.queries, answers)
    if "pipeline-rag" in args.baseline_list:
        if args.task not in QA_TASKS or model is None:
            notes.append("pipeline-rag skipped: it needs --model and a QA task")
        else:
            # MiniLM ranks once from the question; the i-th retrieval inserts its i-th document.
            rankings = [ranking[0] for ranking in runs["minilm"].rankings]
            outputs = timed("pipeline_rag", lambda: run_pipeline_rag(
                model, tokenizer, data.kb, data.queries, rankings, args.max_new_tokens, data.num_hops + 1))
            answers = [generated_answer(o, tokenizer, model.config) for o in outputs]
            results["pipeline-rag"] = scoring.end_to_end_qa_metrics(data.queries, outputs, answers)
    for note in notes:
        logger.warning(note)

    report = {
        "task": args.task, "split": args.split, "kb_size": len(data.kb), "num_queries": len(data.queries),
        "model": args.model, "data_dir": str(data.folder), "queries_sha256": data.queries_sha256,
        "results": results, "timings_seconds": timings, "notes": notes,
        "arguments": {k: v for k, v in asdict(args).items()},
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "onegen eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else None,
    }
    from .. import __version__

    report["onegen_version"] = __version__
    print(format_table(report))
    path = write_report(report, args.output_file or f"eval-{args.task}-{args.split}.json")
    print(f"report: {path}")
    return report
