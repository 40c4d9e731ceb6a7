"""Tiny random causal LMs and a real (trained in-process) BPE tokenizer for the tests. Nothing is downloaded."""

import functools

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config


WORDS = (
    "the a an of to in is was for on with as by at from which who what where when capital city state river "
    "country mountain president born wrote book song film team plays located known famous largest small north "
    "south east west river lake paris france meridian mississippi apple orange banana car house tree dog cat"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@functools.lru_cache(maxsize=None)
def _tokenizer_json(vocab_size: int) -> str:
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sentences = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12)) for i in range(200)]
    tokenizer.train_from_iterator(sentences + [" ".join(WORDS)], trainer=trainer)
    return tokenizer.to_str()


def tiny_tokenizer(vocab_size: int = 400, with_pad: bool = False, padding_side: str = "right"):
    """A byte-level BPE tokenizer trained on a small word list (a real `tokenizers` tokenizer)."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>" if with_pad else None,
        padding_side=padding_side,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_config(arch: str, vocab_size: int, tie: bool = False):
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, tie_word_embeddings=tie)
    if arch == "llama":
        return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common)
    raise ValueError(arch)


def tiny_causal_lm(arch: str = "llama", vocab_size: int | None = None, tie: bool = False, seed: int = 0):
    """A random causal LM of the given architecture, sized for `tiny_tokenizer()`."""
    torch.manual_seed(seed)
    vocab_size = vocab_size or len(tiny_tokenizer())
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab_size, tie))
    return model.eval()
