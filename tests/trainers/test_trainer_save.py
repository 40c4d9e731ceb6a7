"""What `OneGenTrainer.save_model` (and the other save paths) write: every saved OneGen folder loads in one call as a
model and as a pipeline, with the `onegen` package and without it (remote code); LoRA runs save a merged model or an
adapter whose base loads; saving is atomic and keeps the run's checkpoints; folders are readable by others."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from onegen_model_tester import OneGenModelTester
from safetensors.torch import load_file, save_file
from synthetic import corpus_records, make_items, train_records
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, pipeline

from onegen import OneGenForCausalLM
from onegen.pipelines import save_model_with_pipeline
from onegen.trainers import OneGenTrainer, OneGenTrainingConfig


PIPELINE_FILES = ("pipeline_onegen.py", "decoding_onegen.py", "document_index.py")
PROBE = "the capital of france[RQ] is paris"
DOCS = ["paris is the capital of france", "a cat and a dog"]


def lora_config():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])


def train(tmp_path, name="out", peft=False, model=None, tokenizer=None, **overrides):
    """A few steps of OneGenTrainer on the synthetic task, at a learning rate that moves the weights visibly."""
    items = make_items(32, seed=4)
    if model is None:
        model, tokenizer = OneGenModelTester("llama", seed=1).get_model()
    args = dict(output_dir=str(tmp_path / name), max_steps=3, per_device_train_batch_size=8, learning_rate=5e-2,
                save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    trainer = OneGenTrainer(model, OneGenTrainingConfig(**{**args, **overrides}), train_dataset=train_records(items),
                            corpus=corpus_records(items), processing_class=tokenizer,
                            peft_config=lora_config() if peft else None)
    trainer.train()
    return trainer


def probe_ids(tokenizer):
    return tokenizer([PROBE], return_tensors="pt").input_ids


def logits_of(model, ids):
    model.eval()
    with torch.no_grad():
        return model(ids).logits.float()


def package_pipeline(folder):
    """`pipeline("onegen-rag", model=folder)` with the package imported and no remote code. A folder's
    `custom_pipelines` (its code for processes without the package) makes transformers demand trust_remote_code even
    for a task registered in this process, unless the package's OneGenConfig leaves that entry out on load."""
    adapter = Path(folder, "adapter_config.json")
    config_folder = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.is_file() else folder
    assert "onegen-rag" not in (getattr(AutoConfig.from_pretrained(config_folder), "custom_pipelines", None) or {})
    return pipeline("onegen-rag", model=str(folder), index=DOCS)


def test_lora_adapter_output_loads_in_one_call(tmp_path):
    from peft import AutoPeftModelForCausalLM, PeftModel

    trainer = train(tmp_path, peft=True)  # merge_adapter=None: OneGenTrainer saves the adapter, as TRL's do
    ids = probe_ids(trainer.processing_class)
    trained = logits_of(trainer.model, ids)
    trainer.save_model()
    out = tmp_path / "out"

    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "base_model", "README.md", "tokenizer.json",
            "training_args.json"} <= names
    assert "config.json" not in names and "training_args.bin" not in names  # no pickle in a published folder
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str((out / "base_model").resolve())
    assert adapter_config["task_type"] == "CAUSAL_LM"
    assert (out / "base_model" / "config.json").is_file() and (out / "base_model" / "pipeline_onegen.py").is_file()

    # One call each, the trained model's logits.
    loaded = AutoModelForCausalLM.from_pretrained(out)
    torch.testing.assert_close(logits_of(loaded, ids), trained, atol=1e-5, rtol=1e-5)
    peft_loaded = AutoPeftModelForCausalLM.from_pretrained(out)
    torch.testing.assert_close(logits_of(peft_loaded, ids), trained, atol=1e-5, rtol=1e-5)
    assert AutoTokenizer.from_pretrained(out).convert_tokens_to_ids("[RQ]") == loaded.config.query_token_id
    # The untrained base is exactly the model before training, and saving left the trainer's model as it was.
    untrained, _ = OneGenModelTester("llama", seed=1).get_model()
    torch.testing.assert_close(logits_of(AutoModelForCausalLM.from_pretrained(out / "base_model"), ids),
                               logits_of(untrained, ids), atol=0, rtol=0)
    assert isinstance(trainer.model, PeftModel)
    torch.testing.assert_close(logits_of(trainer.model, ids), trained, atol=0, rtol=0)

    rag = package_pipeline(out)
    torch.testing.assert_close(logits_of(rag.model, ids), trained, atol=1e-5, rtol=1e-5)


def test_lora_merged_output_is_the_trained_model(tmp_path):
    from peft import PeftModel

    trainer = train(tmp_path, peft=True, merge_adapter=True)
    ids = probe_ids(trainer.processing_class)
    trained = logits_of(trainer.model, ids)
    trainer.save_model()
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json", *PIPELINE_FILES} <= names
    assert not {"adapter_config.json", "base_model", "training_args.bin"} & names
    assert not [n for n in names if n.startswith(".")]  # the merge's scratch folder is gone
    loaded = AutoModelForCausalLM.from_pretrained(out)
    assert type(loaded) is OneGenForCausalLM and not hasattr(loaded, "peft_config")
    torch.testing.assert_close(logits_of(loaded, ids), trained, atol=1e-5, rtol=1e-5)
    assert isinstance(trainer.model, PeftModel)  # merged on a copy: the trainer can go on training
    torch.testing.assert_close(logits_of(trainer.model, ids), trained, atol=0, rtol=0)
    rag = package_pipeline(out)
    assert rag("the capital", max_new_tokens=3)["generated_text"]


def test_lora_on_a_saved_onegen_model_records_its_folder(tmp_path):
    model, tokenizer = OneGenModelTester("llama", seed=1).get_model()
    model.save_pretrained(tmp_path / "onegen")
    tokenizer.save_pretrained(tmp_path / "onegen")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "onegen")
    trainer = train(tmp_path, peft=True, model=model, tokenizer=AutoTokenizer.from_pretrained(tmp_path / "onegen"))
    ids = probe_ids(trainer.processing_class)
    trained = logits_of(trainer.model, ids)
    trainer.save_model()
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tmp_path / "onegen") and not (tmp_path / "out" / "base_model").exists()
    torch.testing.assert_close(logits_of(AutoModelForCausalLM.from_pretrained(tmp_path / "out"), ids), trained,
                               atol=1e-5, rtol=1e-5)


def test_full_finetuning_output_is_a_model_and_a_pipeline(tmp_path):
    trainer = train(tmp_path)
    ids = probe_ids(trainer.processing_class)
    trained = logits_of(trainer.model, ids)
    trainer.save_model()
    out = tmp_path / "out"
    config = json.loads((out / "config.json").read_text())
    assert config["custom_pipelines"]["onegen-rag"]["impl"] == "pipeline_onegen.OneGenRAGPipeline"
    assert "use_cache" not in config  # Trainer's `config.use_cache = False` does not leak into the saved model
    assert all((out / name).is_file() for name in PIPELINE_FILES) and not (out / "training_args.bin").exists()
    assert json.loads((out / "training_args.json").read_text())["learning_rate"] == 5e-2
    torch.testing.assert_close(logits_of(AutoModelForCausalLM.from_pretrained(out), ids), trained, atol=0, rtol=0)
    rag = package_pipeline(out)
    assert rag("the capital", max_new_tokens=3)["generated_text"]


def test_an_interrupted_save_leaves_the_previous_model_and_the_checkpoints(tmp_path):
    trainer = train(tmp_path, save_strategy="steps", save_steps=2)
    out = tmp_path / "out"
    trainer.save_model()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-3"]

    trainer.args.max_steps = 6
    trainer.train(resume_from_checkpoint=str(out / "checkpoint-3"))  # new weights
    # The tokenizer cannot be written (a real failure, after the weights): the save must leave no trace.
    trainer.processing_class.init_kwargs["unsaveable"] = object()
    with pytest.raises(TypeError, match="not JSON serializable"):
        trainer.save_model()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3", "checkpoint-4", "checkpoint-6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left beside it

    del trainer.processing_class.init_kwargs["unsaveable"]
    trainer.save_model()
    assert (out / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3", "checkpoint-4", "checkpoint-6"]

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("not a model")
    with pytest.raises(FileExistsError, match="not a OneGen model folder"):
        trainer.save_model(str(tmp_path / "notes"))
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]


def test_saved_folders_are_readable_by_others(tmp_path):
    previous = os.umask(0o022)
    try:
        trainer = train(tmp_path)
        trainer.save_model()
        from onegen import DocumentIndex

        DocumentIndex.build(trainer.model, trainer.processing_class, DOCS).save(tmp_path / "index")
    finally:
        os.umask(previous)
    for folder in (tmp_path / "out", tmp_path / "index"):
        assert folder.stat().st_mode & 0o777 == 0o755, folder
    for file in (tmp_path / "out" / "README.md", tmp_path / "out" / "config.json", tmp_path / "out" / "model.safetensors"):
        assert file.stat().st_mode & 0o777 == 0o644, file


@pytest.mark.parametrize("merge", [None, False], ids=["cli-default-merged", "adapter"])
def test_cli_lora_output_loads(tmp_path, merge):
    from onegen.cli import main

    items = make_items(32, seed=6)
    OneGenModelTester("llama").save_base(tmp_path / "base")
    for name, records in (("db", corpus_records(items)), ("train", train_records(items))):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = {"model_name_or_path": str(tmp_path / "base"), "train_file": str(tmp_path / "train.jsonl"),
           "corpus_file": str(tmp_path / "db.jsonl"), "output_dir": str(tmp_path / "model"), "max_steps": 2,
           "per_device_train_batch_size": 4, "save_strategy": "no", "report_to": [], "use_cpu": True,
           "dtype": "float32", "use_peft": True, "lora_r": 4, "lora_target_modules": ["q_proj", "v_proj"]}
    if merge is not None:
        cfg["merge_adapter"] = merge
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "cfg.yaml")]) == 0
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert ("adapter_config.json" in names) is (merge is False) and ("config.json" in names) is (merge is None)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert type(model) is OneGenForCausalLM and model.config.retrieval_mode == "insert"
    assert package_pipeline(tmp_path / "model")("the capital", max_new_tokens=2)["generated_text"]


def _every_saved_folder(tmp_path) -> dict[str, Path]:
    """One folder per save path, and the logits each must reproduce (saved beside them)."""
    from convert_original_onegen import convert

    folders, expected = {}, {}
    for name, kwargs in (("trainer", {}), ("trainer-lora-merged", dict(peft=True, merge_adapter=True)),
                         ("trainer-lora-adapter", dict(peft=True, merge_adapter=False))):
        trainer = train(tmp_path, name, **kwargs)
        ids = probe_ids(trainer.processing_class)
        expected[name] = logits_of(trainer.model, ids)
        trainer.save_model()
        folders[name] = tmp_path / name

    model, tokenizer = OneGenModelTester("qwen2", seed=2).get_model()
    save_model_with_pipeline(model, tokenizer, tmp_path / "with-pipeline")
    folders["with-pipeline"] = tmp_path / "with-pipeline"
    expected["with-pipeline"] = logits_of(model, probe_ids(tokenizer))

    original = OneGenModelTester().get_tokenizer()
    original.add_tokens(["[SE]", "[LK]", "[_CONTINUE_]"], special_tokens=True)
    base = OneGenModelTester("llama", vocab_size=len(original), seed=3).get_base_model()
    base.save_pretrained(tmp_path / "original")
    original.save_pretrained(tmp_path / "original")
    convert(tmp_path / "original", tmp_path / "converted")
    folders["converted"] = tmp_path / "converted"
    expected["converted"] = logits_of(base, original(["the capital of france[LK] is paris"], return_tensors="pt").input_ids)
    save_file({name: value.contiguous() for name, value in expected.items()}, tmp_path / "expected.safetensors")
    return folders


@pytest.mark.slow
def test_every_saved_folder_loads_with_and_without_the_package(tmp_path):
    """Trainer (full, LoRA merged, LoRA adapter), `save_model_with_pipeline` and the checkpoint converter: each
    folder loads as a model (same logits) and as a pipeline, here with `onegen` imported and in a fresh process where
    `import onegen` fails (remote code)."""
    folders = _every_saved_folder(tmp_path)
    expected = load_file(tmp_path / "expected.safetensors")
    for name, folder in folders.items():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        text = "the capital of france[LK] is paris" if name == "converted" else PROBE
        ids = tokenizer([text], return_tensors="pt").input_ids
        torch.testing.assert_close(logits_of(AutoModelForCausalLM.from_pretrained(folder), ids), expected[name],
                                   atol=1e-5, rtol=1e-5, msg=name)
        assert all((folder / "base_model" if "adapter" in name else folder).joinpath(f).is_file()
                   for f in PIPELINE_FILES), name

    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["onegen"] = None  # only the saved code can serve
        import torch
        torch.set_num_threads(1)
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        for name, folder in {json.dumps({k: str(v) for k, v in folders.items()})}.items():
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
            text = "the capital of france[LK] is paris" if name == "converted" else {PROBE!r}
            ids = tokenizer([text], return_tensors="pt").input_ids
            model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
            assert type(model).__module__.startswith("transformers_modules."), (name, type(model).__module__)
            with torch.no_grad():
                torch.testing.assert_close(model(ids).logits, expected[name], atol=1e-5, rtol=1e-5, msg=name)
            rag = pipeline("onegen-rag", model=folder, trust_remote_code=True, index={DOCS!r})
            assert type(rag).__module__.startswith("transformers_modules."), (name, type(rag).__module__)
            out = rag("the capital", max_new_tokens=3)
            print("OK", name, sorted(out))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count("OK ") == len(folders), result.stdout

    for name, folder in folders.items():
        assert package_pipeline(folder)("the capital", max_new_tokens=3)["retrievals"] is not None, name


def test_model_save_pretrained_writes_the_pipeline_code(tmp_path):
    model, tokenizer = OneGenModelTester("llama").get_model()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "pipeline_onegen.py").is_file()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["custom_pipelines"]["onegen-rag"] == {"impl": "pipeline_onegen.OneGenRAGPipeline",
                                                        "pt": ["AutoModelForCausalLM"]}
    assert not hasattr(model.config, "custom_pipelines")  # the live config is unchanged
    assert package_pipeline(tmp_path / "model")("the capital", max_new_tokens=2)["generated_text"]
