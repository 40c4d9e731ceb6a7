# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Publish a OneGen model: weights, tokenizer, remote code (model + `onegen-rag` pipeline) and a model card.

The upload folder is written with `onegen.pipelines.save_model_with_pipeline` (model, tokenizer, `auto_map`,
`custom_pipelines` and their code files), plus a model card (`model_card.py`) with the evaluation results of the
given `onegen eval` reports. After the upload, the card's usage snippet is pinned to the commit just made (a second,
card-only commit), so users load exactly the code they read.

    python hub_scripts/push_model.py --model_dir out/onegen-wn-el --repo_id my-org/onegen-smollm2-wn-el \\
        --eval_reports eval-wn-el-dev.json --datasets wn-el=my-org/onegen-wn-el [--dry_run --output_dir out]
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hub_common import PushArguments, logger, prepared_folder, upload
from model_card import build_model_card, eval_results, hub_model_id
from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser

from onegen.evaluation.report import read_report


@dataclass
class PushModelArguments(PushArguments):
    model_dir: str | None = field(
        default=None, metadata={"help": "Saved OneGen model folder (with its tokenizer).", "required": True}
    )
    eval_reports: list[str] = field(default_factory=list, metadata={"help": "JSON reports written by `onegen eval`."})
    datasets: list[str] = field(
        default_factory=list, metadata={"help": "Hub dataset ids per task, as task=repo_id (e.g. wn-el=org/onegen-wn-el)."}
    )
    base_model: str | None = field(
        default=None, metadata={"help": "Hub id of the base model (default: the config's, when it is a Hub id and not a "
                                        "local path)."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "Licence of the model card."})


def _dataset_ids(pairs: list[str]) -> dict[str, str]:
    ids = {}
    for pair in pairs:
        task, sep, repo = pair.partition("=")
        if not sep or not task or not repo:
            raise ValueError(f"--datasets takes task=repo_id entries, got {pair!r}")
        ids[task] = repo
    return ids


def stage_model(args: PushModelArguments, folder: Path, revision: str = "main") -> dict:
    """Write model + tokenizer + remote code + card into `folder`; returns what the card needs to be re-rendered."""
    from onegen.pipelines import save_model_with_pipeline

    reports = [read_report(path) for path in args.eval_reports]  # bad reports fail before anything is written
    dataset_ids = _dataset_ids(args.datasets)
    for report in reports:
        eval_results(report, dataset_ids)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    if getattr(model.config, "query_token_id", None) is None:
        raise ValueError(f"{args.model_dir} is not a OneGen model (its config has no query_token_id)")
    base_model = args.base_model or getattr(model.config.text_config, "_name_or_path", None) or None
    save_model_with_pipeline(model, tokenizer, folder)
    card_args = dict(repo_id=args.repo_id, config=model.config, reports=reports, base_model=base_model,
                     dataset_ids=dataset_ids, license=args.license)
    build_model_card(revision=revision, **card_args).save(folder / "README.md")
    return card_args


def push_model(args: PushModelArguments):
    """Stage and upload; returns (commit of the model files, commit of the pinned card), None with --dry_run."""
    if not args.model_dir:
        raise ValueError("--model_dir is required")
    fill = lambda folder: stage_model(args, folder)  # noqa: E731
    with prepared_folder(args.output_dir, Path(args.model_dir).name, fill) as (folder, card_args):
        commit = upload(folder, args, "model", "Upload OneGen model, tokenizer, remote code and pipeline")
        if commit is None:
            return None, None
        card = build_model_card(revision=commit.oid, **card_args)
        card.save(folder / "README.md")
        from huggingface_hub import HfApi

        card_commit = HfApi(token=args.token).upload_file(
            path_or_fileobj=str(folder / "README.md"), path_in_repo="README.md", repo_id=args.repo_id,
            repo_type="model", revision=args.revision, commit_message=f"Pin the usage snippet to {commit.oid[:12]}",
        )
        logger.warning(f"Model card pinned to revision {commit.oid}")
        return commit, card_commit


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser(PushModelArguments, prog="push_model.py")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    # Argument mistakes are usage errors (message + exit status 2), not tracebacks.
    if Path(args.model_dir, "adapter_config.json").is_file() and not Path(args.model_dir, "config.json").is_file():
        parser.error(f"--model_dir {args.model_dir!r} holds a LoRA adapter, whose base is a local folder: publish the "
                     "merged model (`onegen train ... --merge_adapter true`, the default of `onegen train`)")
    if not Path(args.model_dir, "config.json").is_file():
        parser.error(f"--model_dir {args.model_dir!r} is not a saved model folder (no config.json in it)")
    if args.base_model and hub_model_id(args.base_model) is None:
        parser.error(f"--base_model {args.base_model!r} is not a Hub model id (org/name)")
    try:
        _dataset_ids(args.datasets)
    except ValueError as error:
        parser.error(str(error))
    push_model(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
