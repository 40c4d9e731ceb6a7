"""Saving, loading (with and without remote code), exporting, converting and LoRA-wrapping OneGen models."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from onegen_model_tester import OneGenModelTester
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from onegen import OneGenForCausalLM


DOCS = ["paris is the capital of france", "a cat[RD] and a dog[RD]"]


def build_and_save(path, arch="llama", tie=False, keep_tie=True):
    """A tiny OneGen model saved to `path`; a tied base keeps its tie unless `keep_tie=False` (the default of
    `from_base_model`, which gives the head its own rows)."""
    model, tokenizer = OneGenModelTester(arch, tie_word_embeddings=tie).get_model(
        context_tags=("<paragraph>", "</paragraph>"), untie_word_embeddings=not keep_tie,
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model, tokenizer


@pytest.mark.parametrize("arch,tie,keep_tie", [("llama", False, True), ("qwen2", True, True), ("gpt2", True, True),
                                               ("qwen2", True, False)])
def test_round_trip_is_exact(tmp_path, arch, tie, keep_tie):
    model, tokenizer = build_and_save(tmp_path, arch, tie, keep_tie)
    tie = tie and keep_tie
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_onegen.OneGenConfig",
                                  "AutoModelForCausalLM": "modeling_onegen.OneGenForCausalLM"}
    assert (tmp_path / "configuration_onegen.py").is_file() and (tmp_path / "modeling_onegen.py").is_file()

    # With `onegen` imported, the folder loads through the registered local classes, no remote code.
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is OneGenForCausalLM
    assert loaded.config.special_tokens == model.config.special_tokens
    assert loaded.config.special_token_ids == model.config.special_token_ids
    assert loaded.config.retrieval_mode == model.config.retrieval_mode
    without_dtype = lambda config: {k: v for k, v in config.to_dict().items() if k != "dtype"}  # noqa: E731
    assert without_dtype(loaded.config.text_config) == without_dtype(model.config.text_config)
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    tied = loaded.get_input_embeddings().weight.data_ptr() == loaded.get_output_embeddings().weight.data_ptr()
    assert tied == tie
    torch.testing.assert_close(loaded.encode_documents(DOCS, loaded_tokenizer).embeddings,
                               model.encode_documents(DOCS, tokenizer).embeddings, atol=0, rtol=0)


def test_remote_code_load_in_fresh_process_without_onegen(tmp_path):
    model, tokenizer = build_and_save(tmp_path / "model", "qwen2")
    ids = tokenizer(["the capital of france[RQ]"], return_tensors="pt").input_ids
    save_file({"ids": ids, "logits": model(ids).logits.detach().contiguous(),
               "docs": model.encode_documents(DOCS, tokenizer).embeddings}, tmp_path / "expected.safetensors")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["onegen"] = None  # `import onegen` now raises ImportError: only the remote code can serve
        import torch
        torch.set_num_threads(1)
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        model = AutoModelForCausalLM.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
        torch.testing.assert_close(model(expected["ids"]).logits, expected["logits"], atol=1e-6, rtol=0)
        torch.testing.assert_close(model.encode_documents({DOCS!r}, tokenizer).embeddings, expected["docs"],
                                   atol=1e-6, rtol=0)
        generated = model.generate(expected["ids"], max_new_tokens=4, do_sample=False)
        assert generated.shape == (1, expected["ids"].shape[1] + 4)
        print("REMOTE-OK", model.config.retrieval_mode, model.config.doc_token_id)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"REMOTE-OK insert {model.config.doc_token_id}" in result.stdout


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_export_base_model(tmp_path, arch):
    model, tokenizer = build_and_save(tmp_path / "onegen", arch)
    model.export_base_model(tmp_path / "base", tokenizer)
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert config["model_type"] == arch and "auto_map" not in config
    assert not (tmp_path / "base" / "modeling_onegen.py").exists()
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    assert type(base).__name__ == model.lm.__class__.__name__
    ids = tokenizer(["a cat[RD]"], return_tensors="pt").input_ids
    expected = model(ids)
    exported = base(ids, output_hidden_states=True)
    torch.testing.assert_close(exported.hidden_states[-1], expected.last_hidden_state, atol=0, rtol=0)
    torch.testing.assert_close(exported.logits, expected.logits, atol=0, rtol=0)
    assert AutoTokenizer.from_pretrained(tmp_path / "base").convert_tokens_to_ids("[RD]") == model.config.doc_token_id


def test_lora_wraps_and_trains_one_step():
    from peft import LoraConfig, get_peft_model

    model, tokenizer = OneGenModelTester("llama").get_model()
    peft_model = get_peft_model(
        model,
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                   trainable_token_indices={"embed_tokens": list(model.config.special_token_ids.values())}),
    )
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "token_adapter" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    frozen_before = model.lm.model.layers[0].mlp.up_proj.weight.detach().clone()

    peft_model.train()
    batch = tokenizer(["the capital of france is paris[RQ]"], return_tensors="pt")
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    output = peft_model(**batch, labels=batch.input_ids)
    assert output.last_hidden_state is not None and torch.isfinite(output.loss)
    output.loss.backward()
    optimizer.step()
    changed = [n for n, p in peft_model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("lora_B" in n for n in changed) and any("token_adapter" in n for n in changed)
    assert torch.equal(model.lm.model.layers[0].mlp.up_proj.weight, frozen_before)


def _save_original_checkpoint(path, tokens):
    """A tiny random Llama saved the way the original OneGen saves its checkpoints: plain Llama + added tokens."""
    tokenizer = OneGenModelTester().get_tokenizer()
    tokenizer.add_tokens(tokens, special_tokens=True)
    base = OneGenModelTester("llama", vocab_size=len(tokenizer)).get_base_model()
    base.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return base, tokenizer


@pytest.mark.parametrize(
    "tokens,mode,roles",
    [
        (["[SE]", "[LK]", "[_CONTINUE_]"], "link",
         {"query_token": "[LK]", "doc_token": "[SE]", "continuation_token": "[_CONTINUE_]"}),
        (["<paragraph>", "</paragraph>", "[Question Representation]", "[Document Fragment Representation]"], "insert",
         {"query_token": "[Question Representation]", "doc_token": "[Document Fragment Representation]",
          "context_start_token": "<paragraph>", "context_end_token": "</paragraph>"}),
    ],
)
def test_convert_original_checkpoint(tmp_path, tokens, mode, roles):
    from convert_original_onegen import main

    base, tokenizer = _save_original_checkpoint(tmp_path / "original", tokens)
    assert main(["--input_dir", str(tmp_path / "original"), "--output_dir", str(tmp_path / "converted")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "converted")
    assert model.config.retrieval_mode == mode
    assert model.config.special_tokens == roles
    assert model.config.special_token_ids == {f: tokenizer.convert_tokens_to_ids(t) for f, t in roles.items()}
    ids = tokenizer(["the capital of france" + roles["query_token"]], return_tensors="pt").input_ids
    torch.testing.assert_close(model(ids).logits, base(ids).logits, atol=0, rtol=0)  # weights untouched
    assert not list(tmp_path.glob(".converted-*"))  # no temporary folder left behind


def test_convert_refuses_an_unknown_layout(tmp_path):
    from convert_original_onegen import convert

    _save_original_checkpoint(tmp_path / "original", ["[FOO]"])
    with pytest.raises(ValueError, match="cannot tell the OneGen layout.*Pass --layout"):
        convert(tmp_path / "original", tmp_path / "converted")
    assert not (tmp_path / "converted").exists()
