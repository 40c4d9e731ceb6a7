# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen configuration.

Hub-facing file: it travels with saved models as remote code, so it imports only the standard library and
transformers.
"""

import sys

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


RETRIEVAL_MODES = ("insert", "link")

# (field holding the token string, field holding its id) for every special token a OneGen model knows.
TOKEN_FIELDS = (
    ("query_token", "query_token_id"),
    ("doc_token", "doc_token_id"),
    ("context_start_token", "context_start_token_id"),
    ("context_end_token", "context_end_token_id"),
    ("continuation_token", "continuation_token_id"),
)


def _registered_in_this_process(task: str) -> bool:
    """Whether a pipeline `task` is registered in transformers' registry (not imported here when it is not loaded)."""
    pipelines = sys.modules.get("transformers.pipelines")
    return pipelines is not None and task in pipelines.PIPELINE_REGISTRY.get_supported_tasks()


class OneGenConfig(PreTrainedConfig):
    r"""
    Configuration of a [`OneGenForCausalLM`]: any causal LM (`text_config`) plus the special tokens that make it
    retrieve while it generates (OneGen, Zhang et al., EMNLP 2024 Findings).

    Token roles follow the paper: the hidden state at a *query token* (paper `[RQ]`) or a *document token* (`[RD]`)
    is a retrieval vector (RET role); the context tags wrap inserted documents (CTX role, no loss); everything else
    is generated (GEN role).

    Args:
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the wrapped causal LM. A dict is resolved through `AutoConfig` by its `model_type`.
        query_token (`str`, *optional*, defaults to `"[RQ]"`):
            String of the query token; its last hidden state is the query vector.
        query_token_id (`int`, *optional*):
            Vocabulary id of `query_token`.
        doc_token (`str`, *optional*, defaults to `"[RD]"`):
            String of the document token; its last hidden state is a document vector.
        doc_token_id (`int`, *optional*):
            Vocabulary id of `doc_token`.
        context_start_token / context_end_token (`str`, *optional*):
            Tags wrapped around a document inserted into the context (`<paragraph>`, `</paragraph>` in the paper).
        context_start_token_id / context_end_token_id (`int`, *optional*):
            Their vocabulary ids.
        continuation_token (`str`, *optional*):
            Token forced right after a query token in `link` mode (the original's `[_CONTINUE_]`): the model never
            learns the token that follows a query token, because that position's hidden state is an embedding.
        continuation_token_id (`int`, *optional*):
            Its vocabulary id.
        retrieval_mode (`str`, *optional*, defaults to `"insert"`):
            `"insert"` (retrieve then generate: the retrieved text is inserted and decoding continues) or `"link"`
            (generate then retrieve, e.g. entity linking: nothing is inserted): the pipeline's default, which a call
            overrides with `retrieval_mode=` (a model trained on both kinds of data serves both).

    Field names avoid generation parameters (`temperature`, `top_k`, ...), which transformers keeps out of model
    configs.

    Example:

    ```python
    >>> from transformers import LlamaConfig
    >>> from onegen import OneGenConfig, OneGenForCausalLM
    >>> config = OneGenConfig(text_config=LlamaConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2,
    ...                       num_attention_heads=4, intermediate_size=128), query_token_id=510, doc_token_id=511)
    >>> model = OneGenForCausalLM(config)
    ```
    """

    model_type = "onegen"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    text_config: dict | PreTrainedConfig | None = None
    query_token: str = "[RQ]"
    query_token_id: int | None = None
    doc_token: str = "[RD]"
    doc_token_id: int | None = None
    context_start_token: str | None = None
    context_start_token_id: int | None = None
    context_end_token: str | None = None
    context_end_token_id: int | None = None
    continuation_token: str | None = None
    continuation_token_id: int | None = None
    retrieval_mode: str = "insert"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        # A saved folder carries the onegen-rag pipeline's code for processes without the `onegen` package. Where the
        # package has registered "onegen-rag" (`import onegen`), that copy must not shadow it: transformers runs a
        # config's `custom_pipelines` only with trust_remote_code=True, even for a task registered in the process.
        pipelines = kwargs.get("custom_pipelines")
        if pipelines and "onegen-rag" in pipelines and _registered_in_this_process("onegen-rag"):
            kwargs["custom_pipelines"] = {task: entry for task, entry in pipelines.items() if task != "onegen-rag"}
            if not kwargs["custom_pipelines"]:
                del kwargs["custom_pipelines"]
        super().__post_init__(**kwargs)
        if self.retrieval_mode not in RETRIEVAL_MODES:
            raise ValueError(f"OneGenConfig.retrieval_mode must be one of {RETRIEVAL_MODES}, got {self.retrieval_mode!r}")
        if (self.context_start_token is None) != (self.context_end_token is None):
            raise ValueError(
                "OneGenConfig: context_start_token and context_end_token go together; got "
                f"{self.context_start_token!r} and {self.context_end_token!r}"
            )
        ids = {name: getattr(self, id_field) for name, id_field in TOKEN_FIELDS if getattr(self, id_field) is not None}
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"OneGenConfig: special tokens must have distinct ids, got {ids}")
        # Tying lives in the wrapped model; mirror it so transformers' tying logic sees one consistent answer.
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))

    @property
    def retrieval_modes(self) -> tuple[str, ...]:
        """The modes this model was built for: `retrieval_mode` first, and the other one too when the model has the
        tokens of both (context tags for insert, a continuation token for link), as one trained on both kinds of
        data has."""
        if self.context_start_token is not None and self.continuation_token is not None:
            return (self.retrieval_mode, *(mode for mode in RETRIEVAL_MODES if mode != self.retrieval_mode))
        return (self.retrieval_mode,)

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Mapping `field name -> id` of every special token that is set (query, document, tags, continuation)."""
        return {
            token_field: getattr(self, id_field)
            for token_field, id_field in TOKEN_FIELDS
            if getattr(self, id_field) is not None
        }

    @property
    def special_tokens(self) -> dict[str, str]:
        """Mapping `field name -> string` of every special token that is set."""
        return {
            token_field: getattr(self, token_field)
            for token_field, _ in TOKEN_FIELDS
            if getattr(self, token_field) is not None
        }


__all__ = ["OneGenConfig"]
