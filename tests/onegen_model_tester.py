"""`OneGenModelTester`: the tests' tiny random models (Llama, Qwen2, GPT-2), their configs, tokenizer and inputs, in
the style of transformers' `*ModelTester` classes. The tokenizer is a real byte-level BPE one, trained in-process on
a small word list; nothing is downloaded."""

import functools

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from onegen import OneGenConfig, OneGenForCausalLM


WORDS = (
    "the a an of to in is was for on with as by at from which who what where when capital city state river "
    "country mountain president born wrote book song film team plays located known famous largest small north "
    "south east west river lake paris france meridian mississippi apple orange banana car house tree dog cat"
).split()
TEXTS = ["the capital of france is paris", "meridian is a city in the state of mississippi"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONFIG_CLASSES = {"llama": LlamaConfig, "qwen2": Qwen2Config, "gpt2": GPT2Config}


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


class OneGenModelTester:
    """One tiny random model setting. The same arguments give the same tokenizer and weights: `get_base_model()`
    builds right after `torch.manual_seed(seed)`.

    - `arch`: "llama", "qwen2" or "gpt2"; `vocab_size`: the base model's (None: the tokenizer's).
    - `tie_word_embeddings`: None keeps the architecture's default (GPT-2 ties, the others do not).
    - `with_pad`, `padding_side`: the tokenizer's pad token (`<|endoftext|>`; without it `from_base_model` pads with
      the eos token) and side.
    - `intermediate_size`: None is 2 x `hidden_size` for Llama and Qwen2, GPT-2's own 4 x for GPT-2.
    - `dropout`: None keeps the architecture's rates; `sliding_window`: Qwen2 with sliding-window layers only.
    """

    def __init__(self, arch="llama", *, seed=0, vocab_size=None, tie_word_embeddings=False, tokenizer_vocab_size=400,
                 with_pad=False, padding_side="right", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=None, max_position_embeddings=256, bos_token_id=1,
                 eos_token_id=2, pad_token_id=None, dropout=None, sliding_window=None):
        if arch not in CONFIG_CLASSES or (sliding_window is not None and arch != "qwen2"):
            raise ValueError(f"arch={arch!r}, sliding_window={sliding_window!r}")
        self.arch = arch
        self.seed = seed
        self.tie_word_embeddings = tie_word_embeddings
        self.tokenizer_vocab_size = tokenizer_vocab_size
        self.with_pad = with_pad
        self.padding_side = padding_side
        self.vocab_size = vocab_size or len(self.get_tokenizer())
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.dropout = dropout
        self.sliding_window = sliding_window
        # In `get_config()`, the retrieval tokens are the last two ids of the vocabulary.
        self.query_token_id = self.vocab_size - 2
        self.doc_token_id = self.vocab_size - 1

    def get_tokenizer(self):
        """A new tokenizer (byte-level BPE on `WORDS`, with a chat template)."""
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(_tokenizer_json(self.tokenizer_vocab_size)),
            bos_token="<|im_start|>", eos_token="<|im_end|>",
            pad_token="<|endoftext|>" if self.with_pad else None,
            padding_side=self.padding_side,
        )
        tokenizer.chat_template = CHAT_TEMPLATE
        return tokenizer

    def get_text_config(self):
        """The base model's config."""
        kwargs = dict(vocab_size=self.vocab_size, bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id)
        optional = dict(pad_token_id=self.pad_token_id, tie_word_embeddings=self.tie_word_embeddings)
        if self.arch == "gpt2":
            optional.update(resid_pdrop=self.dropout, embd_pdrop=self.dropout, attn_pdrop=self.dropout)
            kwargs.update(n_embd=self.hidden_size, n_layer=self.num_hidden_layers, n_head=self.num_attention_heads,
                          n_inner=self.intermediate_size, n_positions=self.max_position_embeddings)
        else:
            optional.update(attention_dropout=self.dropout)
            kwargs.update(hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                          num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
                          intermediate_size=self.intermediate_size or 2 * self.hidden_size,
                          max_position_embeddings=self.max_position_embeddings)
        if self.sliding_window is not None:
            kwargs.update(use_sliding_window=True, sliding_window=self.sliding_window, max_window_layers=0)
        kwargs.update({key: value for key, value in optional.items() if value is not None})
        return CONFIG_CLASSES[self.arch](**kwargs)

    def get_config(self):
        """The OneGen config around `get_text_config()`."""
        return OneGenConfig(text_config=self.get_text_config(), query_token_id=self.query_token_id,
                            doc_token_id=self.doc_token_id)

    def prepare_config_and_inputs(self, texts=TEXTS):
        """`get_config()`, and the input ids and attention mask of `texts`, right-padded by the tokenizer."""
        tokenizer = self.get_tokenizer()
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token  # as `from_base_model` does
        batch = tokenizer(list(texts), return_tensors="pt", padding=True)
        return self.get_config(), batch.input_ids, batch.attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask = self.prepare_config_and_inputs()
        inputs = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        return config, inputs

    def get_base_model(self):
        """The random base causal LM, in eval mode."""
        torch.manual_seed(self.seed)
        return AutoModelForCausalLM.from_config(self.get_text_config()).eval()

    def get_model(self, **kwargs):
        """`(model, tokenizer)`: `OneGenForCausalLM.from_base_model(get_base_model(), tokenizer, **kwargs)` in eval
        mode, and the new tokenizer, to which it added the OneGen tokens."""
        tokenizer = self.get_tokenizer()
        return OneGenForCausalLM.from_base_model(self.get_base_model(), tokenizer, **kwargs).eval(), tokenizer

    def save_base(self, folder):
        """Save the base model and the tokenizer to `folder` (a base model to train), and return `folder`."""
        self.get_base_model().save_pretrained(folder)
        self.get_tokenizer().save_pretrained(folder)
        return folder
