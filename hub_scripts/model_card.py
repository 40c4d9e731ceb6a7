# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Model cards for published OneGen models: the trainer's card template (`onegen.trainers.model_card`) with the
evaluation results read from `onegen eval` reports (as a `model-index` block and as tables against the baselines),
and a usage snippet with `trust_remote_code=True` and a pinned revision."""

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from onegen.evaluation.report import format_table
from onegen.evaluation.tasks import get_task
from onegen.trainers.model_card import hub_model_id, render_model_card  # the trainer's card, with results


def eval_results(report: dict, dataset_ids: dict[str, str]) -> list[EvalResult]:
    """`EvalResult`s of the OneGen method of one report (its task's headline metrics)."""
    if "onegen" not in report["results"]:
        raise ValueError(f"the {report['task']} report has no 'onegen' results (was `onegen eval` run without "
                         "--model?); a model card needs the model's own numbers")
    task = get_task(report["task"])
    results = report["results"]["onegen"]
    return [
        EvalResult(task_type=task.hub_task_type, task_name=task.hub_task_name, dataset_type=dataset_ids.get(report["task"], report["task"]),
                   dataset_name=f"{report['task']} ({report['split']}, KB of {report['kb_size']:,} documents)",
                   dataset_split=report["split"], metric_type=key, metric_name=title, metric_value=round(results[key], 4))
        for title, key in task.headlines if key in results
    ]


def build_model_card(repo_id: str, config, reports: list[dict], revision: str = "main", base_model: str | None = None,
                     dataset_ids: dict[str, str] | None = None, license: str = "apache-2.0") -> ModelCard:
    """A model card for a OneGen model whose config is `config`, with one results table per report. A `base_model`
    that is not a Hub id (a local path) is left out."""
    dataset_ids = dataset_ids or {}
    base_model = hub_model_id(base_model)
    results = [r for report in reports for r in eval_results(report, dataset_ids)]
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1], base_model=base_model, license=license, library_name="transformers",
        pipeline_tag="text-generation", datasets=sorted(set(dataset_ids.values())) or None, language=["en"],
        tags=["onegen", "retrieval-augmented-generation", "dense-retrieval", "custom_code"],
        eval_results=results or None,
    )
    tables = "\n\n".join(f"```\n{format_table(report)}\n```" for report in reports) or "No evaluation report given."
    return render_model_card(card_data, config, model_name=repo_id.split("/")[-1], repo_id=repo_id, revision=revision,
                             base_model=base_model, evaluation=tables)
