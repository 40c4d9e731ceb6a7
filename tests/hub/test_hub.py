"""Hub publishing scripts: each builds its upload folder offline, the folder is loaded back the way a user would
(`datasets.load_dataset`, `evaluate.load`, `from_pretrained` / `pipeline` with `trust_remote_code`), and only the
`HfApi` calls that would reach the Hub are replaced, recording what they were given."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import evaluate
import push_dataset  # hub_scripts/ is on pytest's pythonpath
import push_metric
import push_model
import pytest
from datasets import load_dataset
from eval_datasets import make_dataset
from huggingface_hub import HfApi, ModelCard

import onegen.metrics
from onegen.dataset_builders.debian_sources import sha256_file
from onegen.evaluation import write_report


@pytest.fixture
def hub_calls(monkeypatch):
    """Record the HfApi calls that would reach the Hub; upload_folder / upload_file return a commit-like object."""
    calls = []

    def recorder(name):
        def call(self, *args, **kwargs):
            if name in ("upload_folder", "upload_file"):
                folder = kwargs.get("folder_path")
                files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()) if folder else None
                content = Path(kwargs["path_or_fileobj"]).read_text() if name == "upload_file" else None
                calls.append((name, args, kwargs, files, content))
                oid = f"{len(calls):040x}"
                return SimpleNamespace(oid=oid, commit_url=f"https://hub.invalid/commit/{oid}")
            calls.append((name, args, kwargs, None, None))
        return call

    for name in ("create_repo", "create_branch", "upload_folder", "upload_file"):
        monkeypatch.setattr(HfApi, name, recorder(name))
    return calls


def test_push_dataset_stages_parquet_and_a_card_then_uploads(tmp_path, hub_calls):
    folder = make_dataset(tmp_path / "built", "wn-el")
    args = push_dataset.PushDatasetArguments(repo_id="org/onegen-wn-el", dataset_dir=str(folder),
                                             output_dir=str(tmp_path / "out"), private=True)
    staged, commit = push_dataset.push_dataset(args)
    upload_dir = tmp_path / "out" / "wn-el"
    assert commit.oid and [c[0] for c in hub_calls] == ["create_repo", "upload_folder"]
    assert hub_calls[0][1] == ("org/onegen-wn-el",) and hub_calls[0][2]["repo_type"] == "dataset"
    assert hub_calls[0][2]["private"] is True
    upload = hub_calls[1]
    assert upload[2]["folder_path"] == str(upload_dir) and upload[2]["repo_type"] == "dataset"
    assert upload[3] == ["README.md", "data/kb.parquet", "data/onegen_db.parquet", "data/queries/dev.parquet", "db.jsonl",
                         "train.jsonl"]  # no train queries in this fixture: no train files beyond the empty jsonl

    dev = load_dataset(str(upload_dir), "queries", split="dev")
    original = [json.loads(line) for line in (folder / "queries" / "dev.jsonl").read_text().splitlines()]
    assert dev["id"] == [r["id"] for r in original] and dev[0]["candidates"] == original[0]["candidates"]
    assert load_dataset(str(upload_dir), "kb", split="train").num_rows == 24
    assert load_dataset(str(upload_dir), "onegen_db", split="train")[0]["messages"][1]["content"] == "[RD]"
    card = (upload_dir / "README.md").read_text()
    assert staged["sha256"]["data/kb.parquet"] in card and "WordNet 3.0 Copyright 2006" in card


def test_push_dataset_refuses_tampered_or_mismatched_folders(tmp_path, hub_calls):
    folder = make_dataset(tmp_path, "rd-1913")
    args = push_dataset.PushDatasetArguments(repo_id="org/x", dataset_dir=str(folder), dry_run=True)
    kb_lines = (folder / "kb.jsonl").read_text().splitlines()
    (folder / "kb.jsonl").write_text("\n".join(kb_lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"kb\.jsonl changed since it was built"):
        push_dataset.push_dataset(args)
    info = json.loads((folder / "build_info.json").read_text())  # a consistent record of a KB missing a gold doc
    info["sha256"]["kb.jsonl"] = sha256_file(folder / "kb.jsonl")
    (folder / "build_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"dev\.jsonl, line 1: field 'gold_doc_ids' names documents not in kb\.jsonl"):
        push_dataset.push_dataset(args)
    assert hub_calls == []


def test_push_metric_builds_an_evaluate_space(tmp_path, hub_calls):
    args = push_metric.PushMetricArguments(repo_id="org/onegen_qa", metric="onegen_qa", output_dir=str(tmp_path))
    push_metric.push_metric(args)
    space = tmp_path / "onegen_qa"
    assert sorted(p.name for p in space.iterdir()) == ["README.md", "app.py", "onegen_qa.py", "requirements.txt"]
    readme = (space / "README.md").read_text()
    assert "sdk: gradio" in readme and "app_file: app.py" in readme and "- evaluate" in readme
    assert 'evaluate.load("org/onegen_qa")' in (space / "app.py").read_text()
    assert "evaluate" in (space / "requirements.txt").read_text()
    inputs = dict(predictions=["the Deep South", "Paris"], references=[["Deep South"], ["Lyon"]])
    assert evaluate.load(str(space)).compute(**inputs) == onegen.metrics.load("onegen_qa").compute(**inputs)
    create, upload = hub_calls
    assert create[2]["repo_type"] == "space" and create[2]["space_sdk"] == "gradio"
    assert upload[2]["repo_type"] == "space" and upload[2]["folder_path"] == str(space)


def _report(path, task="rd-1913", methods=("onegen", "bm25")):
    results = {m: {"accuracy@1": 0.25 + i / 10, "accuracy@10": 0.5, "mrr@10": 0.3, "exact_match": 0.2, "f1": 0.25}
               for i, m in enumerate(methods)}
    return write_report({"task": task, "split": "dev", "kb_size": 10000, "num_queries": 500, "results": results}, path)


def test_push_model_uploads_code_pipeline_and_a_pinned_card(tmp_path, model_dir, hub_calls):  # noqa: F811
    report = _report(tmp_path / "eval-rd.json")
    args = push_model.PushModelArguments(
        repo_id="org/onegen-tiny", model_dir=str(model_dir), eval_reports=[str(report)],
        datasets=["rd-1913=org/onegen-rd-1913"], base_model="org/tiny-llama", output_dir=str(tmp_path / "out"),
    )
    commit, card_commit = push_model.push_model(args)
    folder = tmp_path / "out" / model_dir.name
    names = [c[0] for c in hub_calls]
    assert names == ["create_repo", "upload_folder", "upload_file"]
    files = hub_calls[1][3]
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "modeling_onegen.py",
            "configuration_onegen.py", "pipeline_onegen.py"} <= set(files)
    pinned = hub_calls[2][4]
    assert f'revision = "org/onegen-tiny", "{commit.oid}"' in pinned and "trust_remote_code=True" in pinned
    assert hub_calls[2][2]["path_in_repo"] == "README.md"

    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "org/tiny-llama" and card.data.datasets == ["org/onegen-rd-1913"]
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics["accuracy@1"] == 0.25 and metrics["exact_match"] == 0.2
    assert "bm25" in card.text  # the baselines' table

    config = json.loads((folder / "config.json").read_text())
    assert "onegen-rag" in config.get("custom_pipelines", {}) and "AutoModelForCausalLM" in config["auto_map"]
    # Load it back as a Hub user would, in a process where `import onegen` is impossible.
    script = textwrap.dedent(f"""
        import sys
        sys.modules["onegen"] = None
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        model = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True)
        tok = AutoTokenizer.from_pretrained({str(folder)!r})
        vectors = model.encode_queries(["the capital city"], tok).embeddings
        rag = pipeline("onegen-rag", model={str(folder)!r}, trust_remote_code=True, index=["paris france", "a dog"])
        out = rag("the capital city", max_new_tokens=3)
        print(type(model).__module__, tuple(vectors.shape), sorted(out))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout and "(1, 64)" in result.stdout
    assert "['generated_text', 'retrievals']" in result.stdout


def test_push_model_refuses_reports_a_card_cannot_use(tmp_path, model_dir, hub_calls):  # noqa: F811
    (tmp_path / "bad.json").write_text(json.dumps({"task": "wn-el", "results": {}}))
    args = push_model.PushModelArguments(repo_id="org/x", model_dir=str(model_dir), dry_run=True,
                                         eval_reports=[str(tmp_path / "bad.json")], output_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['split', 'kb_size', 'num_queries'\]"):
        push_model.push_model(args)
    args.eval_reports = [str(_report(tmp_path / "baselines.json", methods=("bm25",)))]
    with pytest.raises(ValueError, match="has no 'onegen' results"):
        push_model.push_model(args)
    assert hub_calls == [] and not list((tmp_path / "out").iterdir())  # nothing half-written
