# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Model cards for OneGen models (`huggingface_hub.ModelCard`): base model, datasets, evaluation results read from
`onegen eval` reports (as a `model-index` block and as tables against the baselines), and a usage snippet with
`trust_remote_code=True` and a pinned revision."""

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from onegen.evaluation.report import format_table
from onegen.evaluation.tasks import get_task
from onegen.trainers.onegen_trainer import hub_model_id  # one rule for the trainer's card and this one

USAGE = '''```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

repo, revision = "{repo_id}", "{revision}"  # pin the revision: this model runs code from its repository
rag = pipeline("onegen-rag", model=repo, revision=revision, trust_remote_code=True,
               index=["Meridian is a city in the American state of Mississippi.", "Paris is the capital of France."])
print(rag("Which American state contains Meridian?", top_k=1, max_new_tokens=32))

# retrieval vectors only
model = AutoModelForCausalLM.from_pretrained(repo, revision=revision, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(repo, revision=revision, trust_remote_code=True)
docs = model.encode_documents(["Paris is the capital of France."], tokenizer).embeddings
queries = model.encode_queries(["Which country has Paris as its capital?"], tokenizer).embeddings
print(queries @ docs.T)
```'''


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
    tokens = ", ".join(f"{name} `{token}`" for name, token in config.special_tokens.items())
    content = f"""---
{card_data.to_yaml()}
---

# {repo_id.split('/')[-1]}

A OneGen model (Zhang et al., "OneGen: Efficient One-Pass Unified Generation and Retrieval for LLMs", Findings of
EMNLP 2024): one causal LM that retrieves while it generates. The last hidden state at its query token is the query
vector, the one at its document token a document vector (cosine similarity); retrieval happens inside decoding on
the same KV cache (`pipeline("onegen-rag")`).

- Base model: {base_model or 'not recorded'}
- Retrieval mode: `{config.retrieval_mode}`; special tokens: {tokens}
- Code: the model (`modeling_onegen.py`, `configuration_onegen.py`) and the `onegen-rag` pipeline travel with this
  repository as remote code; load with `trust_remote_code=True` and a pinned revision.

## Usage

{USAGE.format(repo_id=repo_id, revision=revision)}

## Evaluation

Measured with `onegen eval` (OneGen-HF) on the splits and KBs named in each table; baselines run in the same
command on the same KB (BM25: `bm25s`; MiniLM: all-MiniLM-L6-v2; closed-book: this model with retrieval off).

{tables}
"""
    return ModelCard(content)
