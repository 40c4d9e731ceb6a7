"""OneGenForCausalLM and OneGenConfig on tiny random Llama, Qwen2 and GPT-2 models."""

import copy

import pytest
import torch
from onegen_model_tester import TEXTS, OneGenModelTester
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, GenerationConfig

from onegen import OneGenConfig, OneGenForCausalLM
from onegen.modeling_onegen import DEFAULT_TOKEN_DESCRIPTIONS


ARCHS = ["llama", "qwen2", "gpt2"]


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_wrapping_changes_nothing(arch, tie):
    tester = OneGenModelTester(arch, tie_word_embeddings=tie, with_pad=True)
    tokenizer, base = tester.get_tokenizer(), tester.get_base_model()
    _, batch = tester.prepare_config_and_inputs_for_common()
    reference = base(**batch, output_hidden_states=True)

    config = OneGenConfig(text_config=base.config, attn_implementation=base.config._attn_implementation,
                          query_token_id=len(tokenizer) - 2, doc_token_id=len(tokenizer) - 1)
    wrapped = OneGenForCausalLM(config, lm=copy.deepcopy(base))
    output = wrapped(**batch)
    assert not wrapped.training
    torch.testing.assert_close(output.logits, reference.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(output.last_hidden_state, reference.hidden_states[-1], atol=1e-5, rtol=0)
    assert output.hidden_states is None  # the last hidden state comes without keeping every layer

    # Generation is the base model's, token for token.
    prompt = tokenizer(TEXTS[:1], return_tensors="pt")
    expected = base.generate(**prompt, max_new_tokens=8, do_sample=False)
    torch.testing.assert_close(wrapped.generate(**prompt, max_new_tokens=8, do_sample=False), expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_adding_tokens_keeps_old_logits(arch):
    tester = OneGenModelTester(arch)
    base, tokenizer = tester.get_base_model(), tester.get_tokenizer()
    ids = tokenizer(TEXTS[:1], return_tensors="pt").input_ids
    reference = base(ids).logits
    model = OneGenForCausalLM.from_base_model(copy.deepcopy(base), tokenizer, context_tags=("<p>", "</p>"))
    logits = model(ids).logits
    assert logits.shape[-1] == len(tokenizer) == reference.shape[-1] + 4
    torch.testing.assert_close(logits[..., : reference.shape[-1]], reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("tie,untie", [(False, True), (True, True), (True, False)])
def test_new_rows_are_the_mean_of_their_description(tie, untie):
    tester = OneGenModelTester("qwen2", tie_word_embeddings=tie)
    base = tester.get_base_model()
    old_input = base.get_input_embeddings().weight.detach().clone()
    old_output = base.get_output_embeddings().weight.detach().clone()
    tokenizer = tester.get_tokenizer()
    model = OneGenForCausalLM.from_base_model(
        base, tokenizer, context_tags=("<paragraph>", "</paragraph>"), continuation_token="[_CONTINUE_]",
        token_descriptions={"doc_token": "a famous book"}, untie_word_embeddings=untie,
    )
    descriptions = {**DEFAULT_TOKEN_DESCRIPTIONS, "doc_token": "a famous book"}
    new_input = model.get_input_embeddings().weight
    new_output = model.get_output_embeddings().weight
    # A tied base gets a head of its own by default (the query token's input and output rows differ in role).
    assert (new_input.data_ptr() == new_output.data_ptr()) == (tie and not untie) == model.config.tie_word_embeddings
    for field, token_id in model.config.special_token_ids.items():
        # Ids were looked up by string: the config's id is the tokenizer's id for the config's string.
        assert tokenizer.convert_tokens_to_ids(getattr(model.config, field)) == token_id
        description_ids = tokenizer(descriptions[field], add_special_tokens=False).input_ids
        torch.testing.assert_close(new_input[token_id], old_input[description_ids].mean(0))
        expected_output = old_input if tie else old_output
        torch.testing.assert_close(new_output[token_id], expected_output[description_ids].mean(0))
    assert tokenizer.pad_token == tokenizer.eos_token  # the base had no pad token


def test_config_roles_and_validation():
    model, tokenizer = OneGenModelTester().get_model(context_tags=("<p>", "</p>"), continuation_token="[C]",
                                                     retrieval_mode="link")
    config = model.config
    assert config.retrieval_mode == "link"
    assert config.retrieval_modes == ("link", "insert")  # it has the tokens of both modes
    assert OneGenConfig(retrieval_mode="link", continuation_token="[C]").retrieval_modes == ("link",)
    assert OneGenConfig(context_start_token="<p>", context_end_token="</p>").retrieval_modes == ("insert",)
    assert config.special_tokens == {"query_token": "[RQ]", "doc_token": "[RD]", "context_start_token": "<p>",
                                     "context_end_token": "</p>", "continuation_token": "[C]"}
    # No config field is a generation parameter (transformers would drop it or refuse to save).
    generation_params = set(GenerationConfig._get_default_generation_params())
    assert not generation_params & set(config.to_dict())
    with pytest.raises(ValueError, match="retrieval_mode must be one of"):
        OneGenConfig(retrieval_mode="fetch")
    with pytest.raises(ValueError, match="distinct ids"):
        OneGenConfig(query_token_id=5, doc_token_id=5)
    with pytest.raises(ValueError, match="go together"):
        OneGenConfig(context_start_token="<p>")


def test_forward_logits_to_keep_and_loss():
    model, tokenizer = OneGenModelTester("llama").get_model()
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    full = model(**batch, labels=batch.input_ids)
    last = model(**batch, logits_to_keep=1)
    assert full.logits.shape[:2] == batch.input_ids.shape and last.logits.shape[1] == 1
    assert last.last_hidden_state.shape == (*batch.input_ids.shape, 64)  # all positions, whatever is kept
    torch.testing.assert_close(last.logits[:, 0], full.logits[:, -1])
    picked = model(**batch, logits_to_keep=torch.tensor([0, 3]))
    torch.testing.assert_close(picked.logits, full.logits[:, [0, 3]])
    assert torch.isfinite(full.loss) and full.loss > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_encoding_is_independent_of_batching_and_padding_side(arch):
    model, tokenizer = OneGenModelTester(arch).get_model()
    docs = [
        "paris is the capital of france",
        "a cat[RD] and a dog[RD]",  # two document tokens: two vectors
        "meridian is a small city in the south of the state of mississippi",
        "the river",
    ]
    alone = [model.encode_documents([doc], tokenizer).embeddings for doc in docs]
    reference = torch.cat(alone)
    for side in ("left", "right"):
        tokenizer.padding_side = side
        for batch_size in (1, 2, 4):
            result = model.encode_documents(docs, tokenizer, batch_size=batch_size)
            torch.testing.assert_close(result.embeddings, reference, atol=1e-5, rtol=1e-4)
    assert result.embeddings.dtype == torch.float32
    torch.testing.assert_close(result.embeddings.norm(dim=-1), torch.ones(5))
    assert result.text_index.tolist() == [0, 1, 1, 2, 3]
    assert result.occurrence.tolist() == [0, 0, 1, 0, 0]

    # The vector is the last hidden state (post final norm) at the document token, L2-normalised.
    ids = tokenizer(docs[0] + "[RD]", return_tensors="pt").input_ids
    hidden = model(ids).last_hidden_state[0, -1]
    torch.testing.assert_close(result.embeddings[0], hidden / hidden.norm(), atol=1e-5, rtol=1e-4)

    queries = model.encode_queries(["which city is in mississippi"], tokenizer)
    assert queries.embeddings.shape == (1, 64)
    assert not torch.allclose(queries.embeddings[0], result.embeddings[3])


def test_truncation_keeps_the_document_token():
    model, tokenizer = OneGenModelTester().get_model()
    long_doc = " ".join(["the capital of france is paris"] * 20)
    full_ids = tokenizer(long_doc).input_ids
    result = model.encode_documents([long_doc], tokenizer, max_length=16)
    # Same as encoding the first 15 content tokens followed by the document token.
    expected_text = tokenizer.decode(full_ids[:15]) + "[RD]"
    expected = model.encode_documents([expected_text], tokenizer)
    assert tokenizer(expected_text).input_ids == full_ids[:15] + [model.config.doc_token_id]
    torch.testing.assert_close(result.embeddings, expected.embeddings)

    with pytest.raises(ValueError, match=r"text 1: .*exceed max_length=2.*keep every retrieval token"):
        model.encode_documents(["a", "[RD] b [RD] c [RD]"], tokenizer, max_length=2)


def test_bad_inputs_get_clear_errors(tmp_path):
    tester = OneGenModelTester()
    tokenizer = tester.get_tokenizer()
    existing = tokenizer.convert_ids_to_tokens(50)
    with pytest.raises(ValueError, match=rf"query_token '{existing}' already exists in the tokenizer's vocabulary \(id 50\)"):
        OneGenForCausalLM.from_base_model(tester.get_base_model(), tokenizer, query_token=existing)
    with pytest.raises(ValueError, match="already exists.*id 2"):
        OneGenForCausalLM.from_base_model(tester.get_base_model(), tester.get_tokenizer(), doc_token="<|im_end|>")

    model, _ = tester.get_model()
    with pytest.raises(ValueError, match=r"tokenizer does not match this OneGen model: query_token '\[RQ\]'"):
        model.encode_documents(["a"], tester.get_tokenizer())  # a tokenizer that lacks the model's tokens

    bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64))
    with pytest.raises(TypeError, match="needs a causal LM.*BertModel"):
        OneGenForCausalLM.from_base_model(bert, tester.get_tokenizer())
    encoder = DistilBertModel(DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=64))
    encoder.save_pretrained(tmp_path / "encoder")
    with pytest.raises(TypeError, match="DistilBertConfig checkpoint, not a causal LM"):
        OneGenForCausalLM.from_base_model(str(tmp_path / "encoder"), tester.get_tokenizer())
    with pytest.raises(TypeError, match="already a OneGenForCausalLM"):
        OneGenForCausalLM.from_base_model(model, tester.get_tokenizer())
    with pytest.raises(TypeError, match="not a causal LM config"):
        OneGenForCausalLM(OneGenConfig(text_config=encoder.config))
