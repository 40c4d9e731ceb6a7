"""OneGenTrainer: learning on a synthetic retrieval task, losses, resume, LoRA, model card, CLI."""

import json

import pytest
import torch
import torch.nn.functional as F
import yaml
from onegen_model_tester import OneGenModelTester
from synthetic import corpus_records, document_text, make_items, query_prefix, train_records

from onegen import OneGenForCausalLM
from onegen.trainers import BPRLoss, InfoNCELoss, OneGenTrainer, OneGenTrainingConfig


def config(tmp_path, **overrides):
    defaults = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, learning_rate=1e-3,
                    num_train_epochs=3, n_neg_per_pos=4, logging_steps=5, save_strategy="no", report_to=[],
                    use_cpu=True, seed=0, warmup_steps=0.05, lr_scheduler_type="cosine", disable_tqdm=True)
    return OneGenTrainingConfig(**{**defaults, **overrides})


def heldout_accuracy(model, tokenizer, items) -> float:
    """Top-1 accuracy of each held-out question's query vector against all held-out documents (full ranking)."""
    model.eval()
    docs = model.encode_documents([document_text(r) for r in corpus_records(items)], tokenizer).embeddings
    queries = model.encode([query_prefix(tokenizer, item) for item in items], tokenizer,
                           token_id=model.config.query_token_id, add_special_tokens=False).embeddings
    return ((queries @ docs.T).argmax(-1) == torch.arange(len(items))).float().mean().item()


@pytest.mark.parametrize("loss_type", ["bpr", "infonce"])
def test_training_learns_to_retrieve_held_out_items(tmp_path, loss_type):
    items = make_items(700, seed=1)
    train_items, held_out = items[:600], items[600:]  # held-out keys never appear in training
    model, tokenizer = OneGenModelTester().get_model()
    before = heldout_accuracy(model, tokenizer, held_out)
    assert before < 0.2  # chance is 0.01

    trainer = OneGenTrainer(model, config(tmp_path, loss_type=loss_type),
                            train_dataset=train_records(train_items, num_negatives=2),
                            corpus=corpus_records(items), processing_class=tokenizer)
    trainer.train()
    after = heldout_accuracy(model, tokenizer, held_out)
    assert after >= 0.9, f"held-out retrieval accuracy {before:.2f} -> {after:.2f}"

    logs = [entry for entry in trainer.state.log_history if "loss_gen" in entry and "train_runtime" not in entry]
    assert logs[-1]["loss_gen"] < 0.6 * logs[0]["loss_gen"]  # generation is learned too
    assert logs[-1]["retrieval_accuracy"] > logs[0]["retrieval_accuracy"]
    assert {"loss", "loss_gen", "loss_ret", "retrieval_accuracy", "num_tokens"} <= set(logs[-1])


def test_losses_match_their_formulas():
    torch.manual_seed(0)
    anchors, documents = torch.randn(3, 8), torch.randn(6, 8)
    positive_index = torch.tensor([0, 1, 2])
    negative_index = torch.tensor([[3, 4], [5, -1], [3, 5]])
    a, d = F.normalize(anchors, dim=-1), F.normalize(documents, dim=-1)
    terms = []
    for i, negatives in enumerate(negative_index.tolist()):
        for j in negatives:
            if j >= 0:
                terms.append(-F.logsigmoid((a[i] @ d[positive_index[i]] - a[i] @ d[j]) / 0.1))
    loss, accuracy = BPRLoss(0.1)(anchors, documents, positive_index, negative_index)
    torch.testing.assert_close(loss, torch.stack(terms).mean())

    loss, accuracy = InfoNCELoss(0.1)(anchors, documents, positive_index)
    expected = F.cross_entropy(a @ d.T / 0.1, positive_index)
    torch.testing.assert_close(loss, expected)
    assert accuracy == ((a @ d.T).argmax(-1) == positive_index).float().mean()


@pytest.mark.parametrize("loss", [BPRLoss(0.02), InfoNCELoss(0.02)], ids=["bpr", "infonce"])
def test_losses_score_in_float32_under_bf16_autocast(loss):
    # Vectors close together, as a trained retriever's are: bf16 scores would tie them and shift the loss by 1e-2.
    torch.manual_seed(0)
    base = torch.randn(1, 64)
    anchors, documents = base + 0.05 * torch.randn(4, 64), base + 0.05 * torch.randn(8, 64)
    args = (anchors, documents, torch.tensor([0, 1, 2, 3]), torch.tensor([[4, 5], [5, 6], [6, 7], [7, 4]]))
    expected, _ = loss(*args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast, _ = loss(*args)
    torch.testing.assert_close(under_autocast, expected, rtol=1e-5, atol=1e-5)


def test_infonce_counts_each_document_once_and_no_accepted_document_as_a_negative():
    torch.manual_seed(0)
    anchors, documents = torch.randn(2, 8), torch.randn(5, 8)
    # Rows 0 and 3 are one document (id 10) seen twice; anchor 1 accepts ids 11 and 12 (rows 1 and 2).
    document_ids = torch.tensor([10, 11, 12, 10, 13])
    positive_ids = torch.tensor([[10, -1], [11, 12]])
    loss, _ = InfoNCELoss(0.1)(anchors, documents, torch.tensor([3, 1]), document_ids=document_ids,
                               positive_ids=positive_ids)
    a, d = F.normalize(anchors, dim=-1), F.normalize(documents, dim=-1)
    scores = a @ d.T / 0.1
    expected = (F.cross_entropy(scores[0, [0, 1, 2, 4]][None], torch.tensor([0]))  # the duplicate row 3 dropped
                + F.cross_entropy(scores[1, [0, 1, 4]][None], torch.tensor([1]))) / 2  # and row 2, accepted too
    torch.testing.assert_close(loss, expected)


def test_sparse_generation_loss_equals_the_dense_loss():
    model, tokenizer = OneGenModelTester().get_model()
    batch = tokenizer(["the capital of france is paris", "a cat"], return_tensors="pt", padding=True)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    labels[:, :2] = -100
    dense = model(**batch, labels=labels)
    sparse = model(**batch, labels=labels, return_logits=False, retrieval_positions=torch.tensor([[0, 3], [1, 1]]))
    assert sparse.logits is None
    torch.testing.assert_close(sparse.loss, dense.loss)
    torch.testing.assert_close(sparse.retrieval_embeddings, dense.last_hidden_state[[0, 1], [3, 1]])


def _short_run(tmp_path, name, **overrides):
    items = make_items(96, seed=2)
    model, tokenizer = OneGenModelTester(seed=3).get_model()
    args = config(tmp_path / name, per_device_train_batch_size=8, num_train_epochs=2, logging_steps=1,
                  save_strategy="steps", save_steps=9, **overrides)
    trainer = OneGenTrainer(model, args, train_dataset=train_records(items, num_negatives=1),
                            corpus=corpus_records(items), processing_class=tokenizer)
    return trainer


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = _short_run(tmp_path, "full")
    full.train()
    losses = {e["step"]: e["loss"] for e in full.state.log_history if "loss" in e}
    assert len(losses) == 24 and (tmp_path / "full" / "out" / "checkpoint-9" / "README.md").is_file()

    resumed = _short_run(tmp_path, "resumed")
    # Resume mid-epoch (12 steps per epoch): the log history up to step 18 comes from the checkpoint.
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "out" / "checkpoint-18"))
    resumed_losses = {e["step"]: e["loss"] for e in resumed.state.log_history if "loss" in e and e["step"] > 18}
    assert sorted(resumed_losses) == list(range(19, 25))
    for step, loss in resumed_losses.items():
        assert loss == pytest.approx(losses[step], rel=1e-4, abs=1e-5), step


def test_lora_trains_and_saves_an_adapter(tmp_path):
    from peft import LoraConfig, PeftModel

    items = make_items(64, seed=4)
    model, tokenizer = OneGenModelTester().get_model()
    head_before = model.get_output_embeddings().weight.detach().clone()
    trainer = OneGenTrainer(model, config(tmp_path, num_train_epochs=1, per_device_train_batch_size=8),
                            train_dataset=train_records(items), corpus=corpus_records(items),
                            processing_class=tokenizer,
                            peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert isinstance(trainer.model, PeftModel)
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))
    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= files
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    ids = sorted(model.config.special_token_ids.values())
    assert adapter_config["trainable_token_indices"] == {"embed_tokens": ids, "lm_head": ids}
    # The new tokens' rows were trained (through the token adapter), the base head was not.
    merged = trainer.model.merge_and_unload()
    head_after = merged.get_output_embeddings().weight.detach()
    assert not torch.allclose(head_after[ids], head_before[ids])
    assert torch.equal(head_after[: ids[0]], head_before[: ids[0]])


@pytest.mark.parametrize("tie,untie", [(True, True), (False, True), (True, False)],
                         ids=["tied-base", "untied-base", "tie-kept"])
def test_lora_learns_to_emit_the_query_token_and_merges_into_the_trained_model(tmp_path, tie, untie):
    """Under LoRA the head rows of the new tokens must train whether the base model ties its head or not, and the
    merged, saved and reloaded model must be the model that was trained. A tied base gets a head of its own by
    default; kept tied, PEFT must see the tie (the head is the embedding) so that merging stays exact."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    items = make_items(96, seed=6)
    tester = OneGenModelTester("llama", tie_word_embeddings=tie)
    tokenizer, base = tester.get_tokenizer(), tester.get_base_model()
    model = OneGenForCausalLM.from_base_model(base, tokenizer, untie_word_embeddings=untie)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied is model.config.tie_word_embeddings is (tie and not untie)
    query_id = model.config.query_token_id
    prefixes = [tokenizer(query_prefix(tokenizer, item)[: -len("[RQ]")], add_special_tokens=False,
                          return_tensors="pt").input_ids for item in items[:16]]  # where the query token goes

    def logits_at_prefixes(m):
        with torch.no_grad():
            return torch.stack([m(input_ids=ids).logits[0, -1].float() for ids in prefixes])

    def p_query(m):
        return torch.softmax(logits_at_prefixes(m), -1)[:, query_id]

    assert p_query(model).max() < 0.05
    trainer = OneGenTrainer(model, config(tmp_path, max_steps=120, learning_rate=1e-2, per_device_train_batch_size=8),
                            train_dataset=train_records(items), corpus=corpus_records(items),
                            processing_class=tokenizer,
                            peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    trainer.train()
    peft_model = trainer.model.eval()
    if not tied:  # one shared row cannot learn both roles of the query token (measured: p stays near 0.02)
        p = p_query(peft_model)
        assert p.median() > 0.95 and p.min() > 0.8, p
    trained_logits = logits_at_prefixes(peft_model)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(logits_at_prefixes(reloaded), trained_logits, atol=1e-4, rtol=1e-4)
    assert (reloaded.get_output_embeddings().weight is reloaded.get_input_embeddings().weight) is tied


def test_model_card_and_bad_arguments(tmp_path):
    items = make_items(16, seed=5)
    model, tokenizer = OneGenModelTester().get_model()
    trainer = OneGenTrainer(model, config(tmp_path, max_steps=1), train_dataset=train_records(items),
                            corpus=corpus_records(items), processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "library_name: transformers" in card and "onegen" in card and "trust_remote_code=True" in card
    assert "2409.05152" in card and not list((tmp_path / "saved").glob(".README-*"))
    assert "- Retrieval mode: `insert`; special tokens" in card  # one mode: the model has no continuation token
    trainer.create_model_card(output_dir=tmp_path / "card", dataset_name=["onegen-hf/wn-el", "onegen-hf/rd-1913"])
    from huggingface_hub import ModelCard

    assert ModelCard.load(tmp_path / "card" / "README.md").data.datasets == ["onegen-hf/wn-el", "onegen-hf/rd-1913"]

    with pytest.raises(TypeError, match="needs a OneGen model"):
        OneGenTrainer(OneGenModelTester().get_base_model(), config(tmp_path), train_dataset=[], corpus=[],
                      processing_class=tokenizer)
    with pytest.raises(ValueError, match="tokenizer does not match"):
        OneGenTrainer(OneGenModelTester().get_model()[0], config(tmp_path), train_dataset=[], corpus=[],
                      processing_class=OneGenModelTester().get_tokenizer())
    with pytest.raises(ValueError, match="loss_type must be one of"):
        config(tmp_path, loss_type="triplet")
    with pytest.raises(ValueError, match="gather_across_devices applies to loss_type='infonce'"):
        config(tmp_path, gather_across_devices=True)


def test_cli_trains_from_a_yaml_config(tmp_path):
    from onegen.cli import main

    items = make_items(32, seed=6)
    OneGenModelTester("qwen2").save_base(tmp_path / "base")
    for name, records in (("db", corpus_records(items)), ("train", train_records(items))):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = {
        "model_name_or_path": str(tmp_path / "base"), "train_file": str(tmp_path / "train.jsonl"),
        "corpus_file": str(tmp_path / "db.jsonl"), "output_dir": str(tmp_path / "model"), "max_steps": 3,
        "per_device_train_batch_size": 4, "save_strategy": "no", "report_to": [], "use_cpu": True,
        "loss_type": "infonce", "context_start_token": "<p>", "context_end_token": "</p>", "dtype": "float32",
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "cfg.yaml")]) == 0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert trained.config.context_start_token == "<p>" and trained.config.retrieval_mode == "insert"
    assert AutoTokenizer.from_pretrained(tmp_path / "model").convert_tokens_to_ids("[RQ]") == trained.config.query_token_id
    assert (tmp_path / "model" / "README.md").is_file()
