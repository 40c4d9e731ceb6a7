# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen model: any causal LM that also retrieves through the hidden states of special tokens.

Hub-facing file: it travels with saved models as remote code, so it imports only torch, transformers, the
standard library and `configuration_onegen` (same folder).
"""

import os
from dataclasses import dataclass
from typing import Unpack

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
from transformers.utils import TransformersKwargs, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_onegen import TOKEN_FIELDS, OneGenConfig


logger = logging.get_logger(__name__)

# Short descriptions whose mean embedding initialises each new token (paper, section 3; original `resize_and_initialize`).
DEFAULT_TOKEN_DESCRIPTIONS = {
    "query_token": "a query: find the document that answers this",
    "doc_token": "a document: the information this text describes",
    "context_start_token": "the beginning of a retrieved paragraph",
    "context_end_token": "the end of a retrieved paragraph",
    "continuation_token": "continue to output",
}

# Keyword arguments of the loss that the backbone must not receive.
_LOSS_KWARGS = ("num_items_in_batch", "ignore_index", "shift_labels")

# transformers 5.24 renamed the KV cache argument and output field `past_key_values` -> `cache` (the old name is
# deprecated, removed from `forward` in 5.40). Pass and read the cache under the name the installed version uses.
CACHE_NAME = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"

# Capability flags of `PreTrainedModel` that describe the wrapped model, not the wrapper: each instance copies them
# from the wrapped model's class (see `OneGenForCausalLM.__init__`). Only those the installed version defines.
_WRAPPED_MODEL_FLAGS = tuple(
    flag
    for flag in (
        "_supports_sdpa",
        "_supports_flash_attn",
        "_supports_flex_attn",
        "_supports_attention_backend",
        "_compatible_flash_implementations",
        "_can_compile_fullgraph",
        "_supports_context_parallel",
        "_is_stateful",
        "supports_gradient_checkpointing",
    )
    if hasattr(PreTrainedModel, flag)
)


def _warn_past_key_values(forward):
    """From transformers 5.24, `past_key_values` is the deprecated name of `cache`: warn and rename, as its models
    do. Before, it is the current name, which `forward` accepts silently."""
    if CACHE_NAME != "cache":
        return forward
    return deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")(forward)


@dataclass
class OneGenCausalLMOutputWithPast(CausalLMOutputWithPast):
    r"""
    [`CausalLMOutputWithPast`] plus the last hidden state.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
        Hidden state of the last layer, after the final norm, at every position (not only the positions kept by
        `logits_to_keep`). Its rows at retrieval tokens are OneGen's retrieval vectors (before L2 normalisation).
        Returned without `output_hidden_states=True`, which would keep every layer.
    retrieval_embeddings (`torch.FloatTensor` of shape `(num_vectors, hidden_size)`, *optional*):
        Last hidden states at the `retrieval_positions` passed to `forward`, not normalised.
    """

    last_hidden_state: torch.FloatTensor | None = None
    retrieval_embeddings: torch.FloatTensor | None = None


@dataclass
class RetrievalVectors:
    r"""
    One L2-normalised vector per retrieval-token occurrence in a list of texts.

    Attributes:
        embeddings (`torch.FloatTensor` of shape `(num_vectors, hidden_size)`): float32, unit L2 norm, in input order
            (text by text, occurrences left to right).
        text_index (`torch.LongTensor` of shape `(num_vectors,)`): index of the text each vector comes from.
        occurrence (`torch.LongTensor` of shape `(num_vectors,)`): 0-based rank of the token within its text, so that
            `(text_index, occurrence)` names a vector (the original's uid `"doc-k"`).
    """

    embeddings: torch.Tensor
    text_index: torch.Tensor
    occurrence: torch.Tensor

    def __len__(self) -> int:
        return self.embeddings.shape[0]


def _drop_gguf_quantization_flag(model: PreTrainedModel) -> None:
    """A GGUF checkpoint is de-quantized to plain float weights on load, but transformers still flags it as
    quantized, which blocks `save_pretrained` and training. Clear that flag (weights are untouched)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or "gguf" not in type(quantizer).__name__.lower():
        return
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _untie_output_embeddings(model: PreTrainedModel) -> None:
    """Give a tied causal LM's head its own copy of the embedding matrix (logits are unchanged)."""
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is not embeddings.weight:
        return
    head.weight = torch.nn.Parameter(embeddings.weight.detach().clone())
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):  # multimodal configs keep the flag on their text sub-config
        model.config.get_text_config().tie_word_embeddings = False
    if hasattr(model, "all_tied_weights_keys"):  # the tie map cached at construction, read when a wrapper ties
        model.all_tied_weights_keys = model.get_expanded_tied_weights_keys(all_submodels=False)


def _is_causal_lm_config(config) -> bool:
    return type(config) in MODEL_FOR_CAUSAL_LM_MAPPING


def _causal_lm_class(config) -> type:
    """The class `AutoModelForCausalLM.from_config(config)` builds (a config type may map to several; then
    `config.architectures` picks, as in transformers' auto factory)."""
    classes = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    if not isinstance(classes, (list, tuple)):
        return classes
    by_name = {cls.__name__: cls for cls in classes}
    return next((by_name[a] for a in getattr(config, "architectures", None) or [] if a in by_name), classes[0])


def render_document(document) -> str:
    """The text of one document, as the model encodes it and as the pipeline inserts it: the one rendering every
    part of the library uses (index, evaluation, dataset builders' `db.jsonl`, insertion), so a document is never
    encoded from text the model was not trained on.

    Args:
        document (`str` or mapping): a text, or a record with `text` and an optional `title`.

    Returns:
        `str`: the text itself; for a record, its `text` after its `title` on a line of its own, unless the text
        already begins with the title (a WordNet gloss `"dying: in or associated with ..."` is not prefixed again).
    """
    if isinstance(document, str):
        return document
    text, title = document["text"], document.get("title")
    return f"{title}\n{text}" if title and not text.startswith(title) else text


def truncation_keeping(input_ids: list[int], max_length: int | None, keep_ids: set[int], where: str) -> list[int]:
    """Indices of the tokens kept when right-truncating `input_ids` to `max_length`: ordinary tokens are dropped
    from the end first, a token in `keep_ids` (retrieval tokens, BOS/EOS) never, so a truncated document keeps its
    document tokens. `where` names the text in the error raised when even that cannot fit."""
    excess = len(input_ids) - max_length if max_length is not None else 0
    if excess <= 0:
        return list(range(len(input_ids)))
    droppable = [i for i in range(len(input_ids) - 1, -1, -1) if input_ids[i] not in keep_ids]
    if len(droppable) < excess:
        raise ValueError(
            f"{where}: its {len(input_ids) - len(droppable)} special and retrieval tokens alone exceed "
            f"max_length={max_length}; truncation must keep every retrieval token. Raise max_length or split the text."
        )
    dropped = set(droppable[:excess])
    return [i for i in range(len(input_ids)) if i not in dropped]


class OneGenPreTrainedModel(PreTrainedModel):
    config: OneGenConfig
    config_class = OneGenConfig
    base_model_prefix = "lm"
    # Class-level capability flags say what the wrapper itself allows (it adds no attention and no graph break);
    # every instance replaces them with its wrapped model's (`_WRAPPED_MODEL_FLAGS`).
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # The wrapper ties no weights of its own; the wrapped model declares its tie (e.g. SmolLM2's head = embedding)
    # in its own `_tied_weights_keys`. A dict (not None) is what makes transformers and PEFT look into submodules:
    # without it, PEFT's `trainable_token_indices` misses the tie and the head rows of new tokens never train.
    _tied_weights_keys = {}

    # The wrapper owns no weights: every module is the wrapped model's (`self.lm`, the `base_model_prefix`), which
    # initialises it as it would on its own.
    def _init_weights(self, module):
        # Called directly on the wrapper for modules it builds for the wrapped model (`resize_token_embeddings`).
        self.lm._init_weights(module)

    def initialize_weights(self):
        # Not through the wrapper's own pass: transformers hands the outermost model's `is_custom_code()` (true for
        # this remote code) down to every sub-model, and for custom code it counts a module whose own parameters
        # are all initialised (trivially so with none, like GPT-2's attention block) as done, so module-level inits
        # such as GPT-2's scaled `c_proj` would never run on weights missing from a checkpoint.
        self.lm.initialize_weights()
        super().initialize_weights()  # marks the wrapper itself; the wrapped model's modules are already done


class OneGenForCausalLM(OneGenPreTrainedModel, GenerationMixin):
    r"""
    A causal LM that retrieves while it generates (OneGen). Wraps any `AutoModelForCausalLM` (`self.lm`) without
    changing its architecture, attention or head: the retrieval vector of a query or document token is the last
    hidden state at that token (after the final norm), L2-normalised; similarity is cosine.

    Build one from a base model with [`OneGenForCausalLM.from_base_model`], or load a saved one with
    `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)`.
    """

    def __init__(self, config: OneGenConfig, lm: PreTrainedModel | None = None):
        if not _is_causal_lm_config(config.text_config):
            raise TypeError(
                f"OneGenConfig.text_config is a {type(config.text_config).__name__} (model_type "
                f"{getattr(config.text_config, 'model_type', None)!r}), which is not a causal LM config known to "
                "AutoModelForCausalLM"
            )
        # The wrapped model's capabilities (attention backends, compile, gradient checkpointing) are this model's.
        # Set before `PreTrainedModel.__init__`, which already checks the attention implementation against them.
        wrapped_class = type(lm) if lm is not None else _causal_lm_class(config.text_config)
        for flag in _WRAPPED_MODEL_FLAGS:
            object.__setattr__(self, flag, getattr(lm if lm is not None else wrapped_class, flag))
        super().__init__(config)
        self.lm = lm if lm is not None else AutoModelForCausalLM.from_config(config.text_config)
        # One config object for both, so resizing or attention changes on the inner model show in config.json.
        self.config.text_config = self.lm.config
        self.post_init()
        self.train(self.lm.training)  # wrapping a model in eval mode keeps it in eval mode

    # ----------------------------------------------------------------------------------------------------------
    # Delegation to the wrapped model
    # ----------------------------------------------------------------------------------------------------------
    def get_input_embeddings(self):
        return self.lm.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.lm.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings):
        self.lm.set_output_embeddings(new_embeddings)

    def get_decoder(self):
        """The wrapped model's backbone (the module that returns `last_hidden_state`)."""
        return self.lm.get_decoder()

    def set_decoder(self, decoder):
        self.lm.set_decoder(decoder)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of `hidden_states` (`(..., hidden_size)` -> `(..., vocab_size)`), with the wrapped
        model's final logit soft-capping when its config has one."""
        logits = self.lm.get_output_embeddings()(hidden_states)
        softcap = getattr(self.config.text_config, "final_logit_softcapping", None)
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    # ----------------------------------------------------------------------------------------------------------
    # Forward
    # ----------------------------------------------------------------------------------------------------------
    @_warn_past_key_values
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        retrieval_positions: torch.LongTensor | None = None,
        return_logits: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> OneGenCausalLMOutputWithPast | tuple:
        r"""
        Same contract as the wrapped `*ForCausalLM.forward`.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`)
            cache (`Cache`, *optional*): the KV cache, passed to the wrapped model under the name the installed
                transformers uses (`cache` from 5.24, `past_key_values` before; both names are accepted here).
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Next-token labels (shifted inside the loss), -100 where no loss is taken.
            logits_to_keep (`int` or `torch.Tensor`, defaults to 0):
                An int keeps the last `logits_to_keep` positions (0 = all); a 1D tensor keeps those sequence
                indices. Logits are only computed at kept positions; `last_hidden_state` always covers all of them.
            retrieval_positions (`torch.LongTensor` of shape `(num_vectors, 2)`, *optional*):
                `(row, position)` pairs of retrieval tokens; their last hidden states come back as
                `retrieval_embeddings` (not normalised). Computing them here keeps training inside `forward`, as
                DDP, DeepSpeed and FSDP require.
            return_logits (`bool`, defaults to `True`):
                With `False`, no logits are returned, and the loss (if `labels` are given) computes vocabulary logits
                only at labelled positions: rows without labels (e.g. documents) never pay for the LM head.
            return_dict (`bool`, *optional*): with `False` (or `config.return_dict=False`), the output's non-`None`
                fields come back as a tuple, in field order.

        Returns:
            [`OneGenCausalLMOutputWithPast`] with `logits` of shape `(batch_size, kept_positions, vocab_size)`,
            `last_hidden_state` of shape `(batch_size, sequence_length, hidden_size)` and, when asked,
            `retrieval_embeddings` of shape `(num_vectors, hidden_size)`.
        """
        loss_kwargs = {key: kwargs.pop(key) for key in _LOSS_KWARGS if key in kwargs}
        if "past_key_values" in kwargs:  # the name generate and callers use before transformers 5.24
            legacy = kwargs.pop("past_key_values")
            cache = legacy if cache is None else cache
        # `@can_return_tuple` has taken the caller's `return_dict`; the backbone's fields are read by name.
        kwargs["return_dict"] = True
        outputs = self.get_decoder()(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **{CACHE_NAME: cache},
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        logits = loss = None
        if return_logits:
            keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.compute_logits(hidden_states[:, keep, :])
        if labels is not None and logits is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **loss_kwargs
            )
        elif labels is not None:
            loss = self._loss_at_labelled_positions(hidden_states, labels, **loss_kwargs)
        retrieval_embeddings = None
        if retrieval_positions is not None:
            retrieval_embeddings = hidden_states[retrieval_positions[:, 0], retrieval_positions[:, 1]]

        return OneGenCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME, None)},
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
            last_hidden_state=hidden_states,
            retrieval_embeddings=retrieval_embeddings,
        )

    def _loss_at_labelled_positions(
        self, hidden_states, labels, num_items_in_batch=None, ignore_index=-100, shift_labels=None, **_
    ):
        """Next-token cross-entropy computed only where a label exists (same value as the dense loss).

        hidden_states: `(batch, seq, hidden)`; labels: `(batch, seq)`, unshifted, `ignore_index` where no loss;
        shift_labels: `(batch, seq)`, already aligned with the positions (sequence/context parallel training shifts
        before sharding), replaces `labels` when given, as in transformers' causal LM loss."""
        if shift_labels is None:
            hidden_states, shift_labels = hidden_states[:, :-1], labels[:, 1:]
        mask = shift_labels != ignore_index
        logits = self.compute_logits(hidden_states[mask]).float()  # (num_labelled, vocab)
        loss = F.cross_entropy(logits, shift_labels[mask], reduction="sum")
        if num_items_in_batch is None:
            return loss / mask.sum().clamp(min=1)
        return loss / num_items_in_batch

    # ----------------------------------------------------------------------------------------------------------
    # Retrieval vectors
    # ----------------------------------------------------------------------------------------------------------
    def check_tokenizer(self, tokenizer) -> None:
        """Raise a `ValueError` unless `tokenizer` encodes every special token of this model as its single id."""
        for token_field, id_field in TOKEN_FIELDS:
            token, token_id = getattr(self.config, token_field), getattr(self.config, id_field)
            if token is None or token_id is None:
                continue
            found = tokenizer.convert_tokens_to_ids(token)
            encoded = tokenizer(token, add_special_tokens=False)["input_ids"]
            if found != token_id or encoded != [token_id]:
                raise ValueError(
                    f"The tokenizer does not match this OneGen model: {token_field} {token!r} has id {token_id} in "
                    f"the model config, but the tokenizer maps it to {found} and encodes it as {encoded}. Use the "
                    "tokenizer saved with the model (or the one passed to OneGenForCausalLM.from_base_model)."
                )

    @torch.inference_mode()
    def encode(
        self,
        texts: list[str],
        tokenizer,
        token_id: int,
        batch_size: int = 16,
        max_length: int | None = None,
        add_special_tokens: bool = True,
        show_progress_bar: bool | None = None,
    ) -> RetrievalVectors:
        r"""
        Encode `texts` into one vector per occurrence of `token_id`, in length-sorted batches.

        The result does not depend on the batch composition or the tokenizer's padding side: each batch is padded,
        positions are counted from the first real token, and padded positions are masked. Vocabulary logits are
        never computed. Texts longer than `max_length` (default: the tokenizer's `model_max_length` when finite)
        are right-truncated while keeping every retrieval and special token.

        Returns:
            [`RetrievalVectors`]: `embeddings` of shape `(num_occurrences, hidden_size)`, float32, unit norm.
        """
        self.check_tokenizer(tokenizer)
        if isinstance(texts, str):
            raise TypeError("encode expects a list of texts, got a single str")
        if max_length is None and getattr(tokenizer, "model_max_length", None) and tokenizer.model_max_length < 1e6:
            max_length = int(tokenizer.model_max_length)
        if tokenizer.pad_token_id is None:
            raise ValueError("The tokenizer has no pad token; set one (e.g. tokenizer.pad_token = tokenizer.eos_token)")

        keep_ids = set(tokenizer.all_special_ids) | set(self.config.special_token_ids.values())
        encoded = []
        for i, text in enumerate(texts):
            ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
            if max_length is not None:
                ids = [ids[j] for j in truncation_keeping(ids, max_length, keep_ids, where=f"text {i}")]
            if token_id not in ids:
                token = tokenizer.convert_ids_to_tokens(token_id)
                raise ValueError(f"text {i} contains no {token!r} token (id {token_id}), so it has no vector: {text[:80]!r}")
            encoded.append(ids)

        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        device = self.get_input_embeddings().weight.device
        per_text: list[torch.Tensor | None] = [None] * len(encoded)
        progress = logging.tqdm(
            total=len(encoded), desc="Encoding", unit="text",
            disable=not (show_progress_bar if show_progress_bar is not None else len(encoded) > 4 * batch_size),
        )
        for start in range(0, len(order), batch_size):
            batch_ids = [encoded[i] for i in order[start : start + batch_size]]
            batch = tokenizer.pad({"input_ids": batch_ids}, return_tensors="pt").to(device)
            attention_mask = batch["attention_mask"]
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            hidden = self.get_decoder()(
                input_ids=batch["input_ids"], attention_mask=attention_mask, position_ids=position_ids,
                use_cache=False, return_dict=True,
            ).last_hidden_state
            is_ret = (batch["input_ids"] == token_id) & attention_mask.bool()
            for row, text_idx in enumerate(order[start : start + batch_size]):
                vectors = hidden[row][is_ret[row]].float()
                per_text[text_idx] = F.normalize(vectors, p=2, dim=-1, eps=1e-8).cpu()
            progress.update(len(batch_ids))
        progress.close()

        counts = [v.shape[0] for v in per_text]
        hidden_size = self.config.text_config.hidden_size
        return RetrievalVectors(
            embeddings=torch.cat(per_text) if per_text else torch.empty(0, hidden_size),
            text_index=torch.repeat_interleave(torch.arange(len(per_text)), torch.tensor(counts, dtype=torch.long)),
            occurrence=torch.cat([torch.arange(c) for c in counts]) if counts else torch.empty(0, dtype=torch.long),
        )

    render_document = staticmethod(render_document)

    def encode_documents(self, documents: list, tokenizer, **kwargs) -> RetrievalVectors:
        """Encode documents (texts, or records with `text` and an optional `title`, rendered by [`render_document`])
        with the document token; a text that has none gets one appended at its end. Keyword arguments go to
        [`~OneGenForCausalLM.encode`]."""
        doc_token = self.config.doc_token
        texts = [render_document(d) for d in documents]
        texts = [t if doc_token in t else t + doc_token for t in texts]
        return self.encode(texts, tokenizer, self.config.doc_token_id, **kwargs)

    def encode_queries(self, texts: list[str], tokenizer, **kwargs) -> RetrievalVectors:
        """Encode queries with the query token; a text that has none gets one appended at its end.
        Keyword arguments go to [`~OneGenForCausalLM.encode`]."""
        query_token = self.config.query_token
        texts = [t if query_token in t else t + query_token for t in texts]
        return self.encode(texts, tokenizer, self.config.query_token_id, **kwargs)

    # ----------------------------------------------------------------------------------------------------------
    # Building from a base model, exporting back to one
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_base_model(
        cls,
        model_or_path,
        tokenizer,
        query_token: str = "[RQ]",
        doc_token: str = "[RD]",
        context_tags: tuple[str, str] | None = None,
        continuation_token: str | None = None,
        retrieval_mode: str = "insert",
        token_descriptions: dict[str, str] | None = None,
        add_tokens: bool = True,
        untie_word_embeddings: bool = True,
        **from_pretrained_kwargs,
    ) -> "OneGenForCausalLM":
        r"""
        Turn a causal LM into a OneGen model, extending `tokenizer` in place.

        Args:
            model_or_path (`PreTrainedModel` or `str`): a causal LM instance, or a path / Hub id loaded with
                `AutoModelForCausalLM.from_pretrained(model_or_path, **from_pretrained_kwargs)`.
            tokenizer: the base model's tokenizer. The special tokens are added to it (as special tokens, so they
                are never split), and a pad token is set (the EOS token) if it has none.
            query_token, doc_token (`str`): the query and document retrieval tokens (paper `[RQ]`, `[RD]`).
            context_tags (`tuple[str, str]`, *optional*): tags around inserted documents, e.g.
                `("<paragraph>", "</paragraph>")`.
            continuation_token (`str`, *optional*): token forced after a query token in `link` mode.
            retrieval_mode (`str`): `"insert"` or `"link"`.
            token_descriptions (`dict[str, str]`, *optional*): per config field (`"query_token"`, ...), a short text
                whose mean token embedding initialises the new token's input and output rows.
            add_tokens (`bool`, defaults to `True`): add the tokens. With `False`, every token must already be a
                single token of `tokenizer` (used to convert checkpoints that already carry them); nothing is
                resized or initialised.
            untie_word_embeddings (`bool`, defaults to `True`): give a base model whose head shares the input
                embedding (SmolLM2, Qwen2.5 up to 3B, Llama 3.2 1B/3B) a head of its own. A query token plays two
                roles: as input it shapes the query vector, as output it decides when to retrieve; one shared row
                cannot learn both (on a tiny tied Llama under LoRA, p(query token) stays at 0.02 where an untied
                head reaches 0.99). Costs one more vocabulary x hidden matrix, about 20-27% of such small models.
        """
        model = cls._load_causal_lm(model_or_path, **from_pretrained_kwargs)
        _drop_gguf_quantization_flag(model)
        if untie_word_embeddings and add_tokens:
            _untie_output_embeddings(model)
        strings = {
            "query_token": query_token,
            "doc_token": doc_token,
            "context_start_token": context_tags[0] if context_tags else None,
            "context_end_token": context_tags[1] if context_tags else None,
            "continuation_token": continuation_token,
        }
        strings = {field: token for field, token in strings.items() if token is not None}
        if len(set(strings.values())) != len(strings):
            raise ValueError(f"OneGen special tokens must be distinct strings, got {strings}")

        if add_tokens:
            vocab = tokenizer.get_vocab()
            for field, token in strings.items():
                if token in vocab:
                    raise ValueError(
                        f"{field} {token!r} already exists in the tokenizer's vocabulary (id {vocab[token]}) with "
                        "another meaning; choose a new string (e.g. '[RQ]'), or pass add_tokens=False if the "
                        "checkpoint was trained with it as a OneGen token"
                    )
            # special_tokens=True: never split, not normalised (as the original adds them).
            tokenizer.add_tokens(list(strings.values()), special_tokens=True)
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError("The tokenizer has neither a pad token nor an EOS token to pad with; set one")
            tokenizer.pad_token = tokenizer.eos_token

        ids = {}
        for field, token in strings.items():
            encoded = tokenizer(token, add_special_tokens=False)["input_ids"]
            if len(encoded) != 1:
                raise ValueError(f"{field} {token!r} is not a single token of the tokenizer (encodes as {encoded})")
            ids[field] = encoded[0]

        if add_tokens:
            descriptions = {**DEFAULT_TOKEN_DESCRIPTIONS, **(token_descriptions or {})}
            cls._add_token_rows(model, tokenizer, {ids[f]: descriptions[f] for f in strings})
        elif max(ids.values()) >= model.get_input_embeddings().weight.shape[0]:
            raise ValueError(f"Token ids {ids} exceed the model's embedding matrix; the tokenizer does not fit it")

        config = OneGenConfig(
            text_config=model.config,
            # Given explicitly, or the composite config would reset the wrapped model's choice on its sub-config.
            attn_implementation=model.config._attn_implementation,
            retrieval_mode=retrieval_mode,
            **strings,
            **{f"{field}_id": token_id for field, token_id in ids.items()},
        )
        return cls(config, lm=model)

    @staticmethod
    def _load_causal_lm(model_or_path, **from_pretrained_kwargs) -> PreTrainedModel:
        if isinstance(model_or_path, OneGenForCausalLM):
            raise TypeError("from_base_model got a model that is already a OneGenForCausalLM")
        if isinstance(model_or_path, (str, os.PathLike)):
            config = AutoConfig.from_pretrained(model_or_path, **{
                k: v for k, v in from_pretrained_kwargs.items() if k in ("revision", "token", "gguf_file", "trust_remote_code")
            })
            if not _is_causal_lm_config(config):
                raise TypeError(
                    f"{model_or_path} is a {type(config).__name__} checkpoint, not a causal LM: OneGen wraps models "
                    "that AutoModelForCausalLM can load"
                )
            return AutoModelForCausalLM.from_pretrained(model_or_path, **from_pretrained_kwargs)
        if not isinstance(model_or_path, PreTrainedModel) or not _is_causal_lm_config(model_or_path.config) \
                or model_or_path.get_output_embeddings() is None:
            raise TypeError(
                f"from_base_model needs a causal LM (an AutoModelForCausalLM model or its path), got "
                f"{type(model_or_path).__name__}"
            )
        return model_or_path

    @staticmethod
    @torch.no_grad()
    def _add_token_rows(model: PreTrainedModel, tokenizer, descriptions_by_id: dict[int, str]) -> None:
        """Resize the embeddings to the tokenizer and set each new token's input (and untied output) row to the
        mean of the rows of its description's tokens. Ids are looked up by string, never by position."""
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        input_rows = model.get_input_embeddings().weight
        output = model.get_output_embeddings()
        tied = output is None or output.weight.data_ptr() == input_rows.data_ptr()
        for token_id, description in descriptions_by_id.items():
            description_ids = tokenizer(description, add_special_tokens=False)["input_ids"]
            input_rows[token_id] = input_rows[description_ids].mean(dim=0)
            if not tied:
                output.weight[token_id] = output.weight[description_ids].mean(dim=0)
                if getattr(output, "bias", None) is not None:
                    output.bias[token_id] = output.bias[description_ids].mean()

    # Set by `onegen/__init__.py` (the installed package) to `onegen.pipelines.save_pipeline_code`: it adds the
    # onegen-rag pipeline's code and `custom_pipelines` entry to a saved folder, so every saved model also loads as a
    # pipeline without the package. This file cannot import `pipelines`; loaded as remote code, it stays None.
    _pipeline_code_writer = None

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        if type(self)._pipeline_code_writer is not None and kwargs.get("is_main_process", True):
            type(self)._pipeline_code_writer(save_directory)

    def export_base_model(self, save_directory: str | os.PathLike, tokenizer=None, **save_kwargs) -> None:
        """Save the wrapped model (and `tokenizer`, if given) as a plain checkpoint of the base architecture, loadable
        with `AutoModelForCausalLM.from_pretrained(save_directory)` and no remote code. The OneGen token roles are
        not part of that format; the tokens stay in the vocabulary."""
        self.lm.save_pretrained(save_directory, **save_kwargs)
        if tokenizer is not None:
            tokenizer.save_pretrained(save_directory)


OneGenConfig.register_for_auto_class()
OneGenForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "OneGenCausalLMOutputWithPast", "OneGenForCausalLM", "OneGenPreTrainedModel", "RetrievalVectors", "render_document"
]
