"""Retrieval quality against training steps: the demo's recipe, measured along the way on dev queries.

Trains the demo model of `--task` exactly as `onegen demo --task T --max_steps N` does and, at each step of
`--eval_steps`, measures on `--eval_queries` dev queries with the adapter in place (teacher forcing, as
`onegen eval`'s retrieval figures):

- emission: share of queries whose most likely token at the data's query-token position is the query token;
- retrieval accuracy@1 against a `--kb_size` subset of the KB (every gold, candidate and positive document of the
  queries, then a deterministic fill: a proxy for the full KB, cheaper to encode at every point);
- WN-EL in-KB accuracy (the best of the lemma's candidates: exact, it needs only the candidates).

The final model is saved where the demo caches it, so `onegen demo --task T --max_steps N` then prints the full
evaluation (full KB, end to end through the pipeline, baselines) without training again. The dev split only.

    python benchmarks/learning_curve.py --task wn-el --max_steps 320 --eval_steps 48,96,160,240,320

`--data_dir` trains on another build of the task (e.g. more train queries: `python -m onegen.dataset_builders.wn_el
--output_dir DIR --max_train 8000 --max_test 500`); its dev split and KB are the ones measured, unless
`--eval_data_dir` names another build (e.g. the demo's `--small` one, to measure on the demo's 10k KB: with
`--kb_size 10000` that is the whole of it, the KB the demo's table and the baselines use).
"""

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.hf_argparser import string_to_bool

from onegen.chat_utils import render_conversation
from onegen.default_model import default_cache_dir, load_default_base_model
from onegen.evaluation import scoring
from onegen.evaluation.data import load_eval_data, subset_kb
from onegen.evaluation.demo import DemoArguments, _model_key, prepare_dataset, train_demo_model
from onegen.evaluation.retrievers import OneGenScorer, retrieve
from onegen.modeling_onegen import render_document


def emission_share(model, tokenizer, queries: list[dict]) -> tuple[float, float]:
    """(share of queries whose argmax at the first query token's position is the query token, median probability)."""
    query_id = model.config.query_token_id
    hits, probabilities = [], []
    for record in queries:
        text, add_special = render_conversation(tokenizer, record["messages"])
        ids = tokenizer(text, add_special_tokens=add_special).input_ids
        at = ids.index(query_id)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[:at]]), use_cache=False).logits[0, -1].float()
        hits.append(int(logits.argmax()) == query_id)
        probabilities.append(logits.softmax(-1)[query_id].item())
    return sum(hits) / len(hits), statistics.median(probabilities)


class CurveCallback(TrainerCallback):
    """Measures the model at the given steps. `evaluation_seconds` (the time spent measuring) is not training time:
    a point's `train_seconds` and `train_demo_model`'s result leave it out."""

    def __init__(self, data, steps: set[int], report: Path):
        self.data, self.steps, self.report = data, steps, report
        self.points, self.evaluation_seconds = [], 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step not in self.steps:
            return
        evaluation_start = time.perf_counter()
        onegen = model.get_base_model() if hasattr(model, "get_base_model") else model
        onegen.eval()
        data, tokenizer = self.data, processing_class  # the base tokenizer with the dataset's tokens added
        emitted, p_median = emission_share(onegen, tokenizer, data.queries)
        scorer = OneGenScorer(onegen, tokenizer, [render_document(d) for d in data.kb])
        run = retrieve(scorer, data.queries, [d["doc_id"] for d in data.kb], depth=10)
        metrics = scoring.retrieval_metrics(data.queries, run)
        train_seconds = evaluation_start - self.start - self.evaluation_seconds
        point = {"step": state.global_step, "train_seconds": round(train_seconds, 1),
                 "emission": emitted, "p_query_median": round(p_median, 4),
                 "accuracy@1": metrics.get("accuracy@1", metrics.get("hop1/accuracy@1"))}
        if data.task == "wn-el":
            point["in_kb_accuracy"] = scoring.linking_metrics(data.queries, run)["in_kb_accuracy"]
        if "support@1" in metrics:
            point["support@1"], point["support@10"] = metrics["support@1"], metrics["support@10"]
        self.points.append(point)
        summary = {"task": data.task, "kb_size": len(data.kb), "points": self.points}
        self.report.write_text(json.dumps(summary, indent=2))
        print(json.dumps(point), flush=True)
        onegen.train()
        self.evaluation_seconds += time.perf_counter() - evaluation_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="wn-el", choices=["wn-el", "rd-1913", "wn-2hop"])
    parser.add_argument("--max_steps", type=int, default=320)
    parser.add_argument("--eval_steps", default="48,96,160,240,320")
    parser.add_argument("--eval_queries", type=int, default=200)
    parser.add_argument("--kb_size", type=int, default=2000)
    parser.add_argument("--learning_rate", type=float, default=None, help="default: the task's demo recipe")
    parser.add_argument("--n_neg_per_pos", type=int, default=None, help="default: the task's demo recipe")
    parser.add_argument("--contrastive_temperature", type=float, default=None, help="default: the task's demo recipe")
    parser.add_argument("--adam_beta2", type=float, default=None, help="default: the task's demo recipe")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the task's demo recipe")
    parser.add_argument("--full_finetune", action="store_true")
    parser.add_argument("--seed", type=int, default=DemoArguments.seed)
    parser.add_argument("--data_dir", default=None,
                        help="dataset folder (default: the demo's --small build, built if missing)")
    parser.add_argument("--eval_data_dir", default=None, help="dataset folder measured (default: --data_dir)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", type=string_to_bool, default=None,
                        help="true/false: bf16 autocast (default: the demo's, where the CPU has bf16 instructions)")
    parser.add_argument("--output", default=None, help="JSON report (default: the cache's reports folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cache = Path(default_cache_dir())
    demo_args = replace(DemoArguments(), task=args.task, max_steps=args.max_steps, learning_rate=args.learning_rate,
                        n_neg_per_pos=args.n_neg_per_pos,
                        contrastive_temperature=args.contrastive_temperature, adam_beta2=args.adam_beta2,
                        batch_size=args.batch_size,
                        full_finetune=args.full_finetune, seed=args.seed, num_threads=args.threads,
                        bf16=args.bf16)
    data_dir = Path(args.data_dir) if args.data_dir else prepare_dataset(args.task, cache)
    model_dir = cache / "models" / f"onegen-smollm2-{args.task}-{_model_key(demo_args, data_dir)}"
    report = Path(args.output or cache / "reports" / f"curve-{model_dir.name}.json")
    report.parent.mkdir(parents=True, exist_ok=True)

    load_default_base_model(cache)
    data = load_eval_data(Path(args.eval_data_dir) if args.eval_data_dir else data_dir, args.task, "dev")
    data.queries = data.queries[: args.eval_queries]
    data = subset_kb(data, args.kb_size)
    callback = CurveCallback(data, {int(s) for s in args.eval_steps.split(",")}, report)
    seconds = train_demo_model(demo_args, data_dir, model_dir, callbacks=[callback])
    print(f"trained {args.max_steps} steps in {seconds:.0f} s (evaluation pauses left out) -> {model_dir}")
    print(f"curve: {report}")


if __name__ == "__main__":
    main()
