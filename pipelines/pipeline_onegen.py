# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The `"onegen-rag"` pipeline: generation with retrieval inside the decoding loop, on one KV cache.

Hub-facing file: `save_model_with_pipeline` (or `OneGenRAGPipeline.save_pretrained`) copies it, with the same-folder
modules it imports (`decoding_onegen.py`, `document_index.py`), next to the model and records it under
`custom_pipelines` in config.json, so that

```python
pipe = pipeline("onegen-rag", model="path/or/hub-id", trust_remote_code=True, index="path/to/saved/index")
```

works without the `onegen` package. It imports only torch, transformers, the standard library and those modules.
"""

import copy
import functools
import json
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, Pipeline, StoppingCriteriaList, StopStringCriteria
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import logging

from .decoding_onegen import RETRIEVAL_MODES, _context_length, onegen_generate
from .document_index import DocumentIndex, atomic_directory, write_text_atomically


logger = logging.get_logger(__name__)

TASK = "onegen-rag"
DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_MAX_RETRIEVALS_INSERT = 5  # the original OneGen's `max_retrieval_cnt`
# Call kwargs that go to `generate` besides GenerationConfig fields. `top_k` is not one: here it counts documents.
_GENERATE_EXTRA_KWARGS = {"generation_config", "logits_processor", "stopping_criteria"}


class _Retriever:
    """Searches `index` for query vectors and prepares the token ids to insert (`insert` mode): each hit as
    `<context_start> text <context_end>` (tags when the model has them), its text without document tokens."""

    def __init__(self, index, tokenizer, config, top_k: int, render_document, insert: bool):
        # `render_document` is the model's (`OneGenForCausalLM.render_document`): a hit is inserted as the very text
        # it was encoded from.
        self.index, self.tokenizer, self.top_k, self.render_document = index, tokenizer, top_k, render_document
        self.insert = insert
        self.doc_token = config.doc_token
        self.start = [config.context_start_token_id] if config.context_start_token_id is not None else []
        self.end = [config.context_end_token_id] if config.context_end_token_id is not None else []
        self._ids: dict[int, list[int]] = {}

    def document_ids(self, doc_index: int) -> list[int]:
        if doc_index not in self._ids:
            text = self.render_document(self.index[doc_index])
            if self.doc_token:
                text = text.replace(self.doc_token, "")
            self._ids[doc_index] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._ids[doc_index]

    def __call__(self, query_vectors: torch.Tensor) -> list[tuple[list[dict], list[int]]]:
        scores, indices = self.index.search(query_vectors.float(), self.top_k)
        results = []
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
            hits, insertion = [], []
            for score, doc_index in zip(row_scores, row_indices):
                if doc_index < 0:  # an approximate index found fewer than top_k documents
                    continue
                document = self.index[doc_index]
                hits.append({"doc_id": document["id"], "score": float(score), "text": document["text"]})
                if self.insert:
                    insertion += self.start + self.document_ids(doc_index) + self.end
            results.append((hits, insertion))
        return results


def _check_onegen_model(model) -> None:
    config = getattr(model, "config", None)
    missing = [f for f in ("query_token_id", "doc_token_id", "retrieval_mode") if getattr(config, f, None) is None]
    if missing:
        raise TypeError(
            f"The onegen-rag pipeline needs a OneGen model (OneGenForCausalLM); {type(model).__name__} has no "
            f"{', '.join(missing)} in its config. Build one with OneGenForCausalLM.from_base_model(...)."
        )


def _left_pad(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int):
    """Re-pad a batch on the left, whichever side the collator padded (decoding needs the prompts right-aligned)."""
    lengths = attention_mask.sum(-1).tolist()
    width = max(lengths)
    ids = torch.full((input_ids.shape[0], width), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    mask = torch.zeros((input_ids.shape[0], width), dtype=attention_mask.dtype, device=input_ids.device)
    for r, n in enumerate(lengths):
        ids[r, width - n:] = input_ids[r][attention_mask[r].bool()]
        mask[r, width - n:] = 1
    return ids, mask


class OneGenRAGPipeline(Pipeline):
    r"""
    Generation with retrieval inside the decoding loop (OneGen): when the model samples its query token, the
    token's last hidden state is the query vector, the document index is searched, and in `insert` mode the
    retrieved text (wrapped in the context tags) is prefilled onto the same KV cache before decoding continues; in
    `link` mode the continuation token is forced and nothing is inserted. The prefix is never re-encoded.

    Args:
        model: a OneGen model (`OneGenForCausalLM`, loaded locally or as remote code).
        tokenizer: its tokenizer (with a pad token for `batch_size > 1`).
        index: a [`DocumentIndex`] (or any object with its `search` / `__getitem__` / `__len__`), the folder of a
            saved one, or the documents themselves (list of strings or dicts, `datasets.Dataset`), encoded at once
            with this model. May also be given per call. An index built by another model is refused.

    Call kwargs (also accepted at construction): `index`, `top_k` (documents per retrieval, default 1; in insert
    mode all are inserted in rank order), `retrieval_mode` (`"insert"` or `"link"`, default the model config's: a
    model trained on both kinds of data serves both), `max_retrievals` (per input; default 5 in insert mode, none
    in link mode), `max_new_tokens` (default 256), `do_sample` (default False) and any other `GenerationConfig`
    field or a `generation_config`, `logits_processor`, `stopping_criteria`, `streamer` (batch size 1), `batch_size`,
    `add_special_tokens`, `continue_final_message`, `skip_special_tokens` (default False, so the query token and
    the context tags stay visible), `return_tensors` (add `generated_token_ids`), `return_stats` (timings and
    forward-token counts of the batch). Sampling `top_k` goes through `generation_config`, as `top_k` counts
    documents here.

    Returns, per input, a dict: `generated_text` (the continuation: generated tokens and inserted documents) and
    `retrievals`, a list of `{"step", "position", "doc_id", "score", "text", "rank"}` (`step`: the decoding step
    at which the query token was sampled; `position`: its token offset in the continuation).

    Example:

    ```python
    >>> rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=DocumentIndex.build(model, tokenizer, docs))
    >>> rag("Which American state contains Meridian?", max_new_tokens=32)
    {'generated_text': '...[RQ]<paragraph>Meridian is a city in ...</paragraph>...', 'retrievals': [{'step': 7, ...}]}
    ```
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, model, tokenizer=None, index=None, **kwargs):
        _check_onegen_model(model)
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)
        if self.tokenizer is None:
            raise ValueError("The onegen-rag pipeline needs the model's tokenizer")
        if hasattr(self.model, "check_tokenizer"):
            self.model.check_tokenizer(self.tokenizer)
        if index is not None:
            self._forward_params["index"] = self._resolve_index(index)

    def _resolve_index(self, index):
        if isinstance(index, (str, os.PathLike)):
            index = DocumentIndex.load(index, model=self.model)
        elif isinstance(index, (list, tuple)) or hasattr(index, "column_names"):
            logger.info(f"Encoding {len(index)} documents into a DocumentIndex with this model")
            index = DocumentIndex.build(self.model, self.tokenizer, index)
        elif not all(hasattr(index, a) for a in ("search", "__getitem__", "__len__")):
            raise TypeError(f"index must be a DocumentIndex, the folder of a saved one, or a list of documents; "
                            f"got {type(index).__name__}")
        elif hasattr(index, "check_model"):
            index.check_model(self.model)  # refuses an index built by another model
        if len(index) == 0:
            raise ValueError("The document index is empty: add documents before generating with it")
        return index

    def _sanitize_parameters(self, index=None, top_k=None, max_retrievals=None, retrieval_mode=None, streamer=None,
                             return_stats=None, return_tensors=None, add_special_tokens=None,
                             continue_final_message=None, skip_special_tokens=None, clean_up_tokenization_spaces=None,
                             **generate_kwargs):
        allowed = {k for k in vars(GenerationConfig()) if not k.startswith("_")} | _GENERATE_EXTRA_KWARGS
        unknown = sorted(set(generate_kwargs) - allowed)
        if unknown:
            raise TypeError(f"OneGenRAGPipeline got unexpected keyword argument(s) {unknown}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int (documents per retrieval), got {top_k!r}")
        if max_retrievals is not None and (not isinstance(max_retrievals, int) or max_retrievals < 0):
            raise ValueError(f"max_retrievals must be a non-negative int or None, got {max_retrievals!r}")
        if retrieval_mode is not None and retrieval_mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval_mode must be one of {RETRIEVAL_MODES}, got {retrieval_mode!r}")

        preprocess = {k: v for k, v in (("add_special_tokens", add_special_tokens),
                                        ("continue_final_message", continue_final_message)) if v is not None}
        forward = dict(generate_kwargs)
        for key, value in (("top_k", top_k), ("max_retrievals", max_retrievals), ("retrieval_mode", retrieval_mode),
                           ("streamer", streamer)):
            if value is not None:
                forward[key] = value
        if index is not None:
            forward["index"] = self._resolve_index(index)
        postprocess = {k: v for k, v in (("return_stats", return_stats), ("return_tensors", return_tensors),
                                         ("skip_special_tokens", skip_special_tokens),
                                         ("clean_up_tokenization_spaces", clean_up_tokenization_spaces)) if v is not None}
        return preprocess, forward, postprocess

    def __call__(self, inputs, **kwargs):
        r"""
        Generate with retrieval for `inputs`: a string, a chat (list of `{"role", "content"}` dicts), or a list of
        either (then a list of results comes back; `batch_size=N` decodes N of them in lock-step).

        Returns:
            `dict` (or a list of them): `generated_text`, `retrievals` (see the class docstring).
        """
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, add_special_tokens=None, continue_final_message=None):
        if hasattr(inputs, "messages") or (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], dict)):
            messages = list(inputs.messages if hasattr(inputs, "messages") else inputs)
            if continue_final_message is None:
                continue_final_message = messages[-1].get("role") == "assistant"
            encoded = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=not continue_final_message,
                continue_final_message=continue_final_message, return_dict=True, return_tensors="pt",
            )
            shown = messages[-1].get("content", "")
        elif isinstance(inputs, str):
            extra = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
            encoded = self.tokenizer(inputs, return_tensors="pt", **extra)
            shown = inputs
        else:
            raise TypeError(f"onegen-rag inputs must be a string or chat messages, got {type(inputs).__name__}")
        length = encoded["input_ids"].shape[1]
        context = _context_length(self.model.config)
        if length == 0:
            raise ValueError("The prompt is empty (0 tokens): give at least one token to generate from")
        if context is not None and length >= context:
            raise ValueError(
                f"The prompt is {length} tokens long but the model's context holds {context} positions (and at least "
                f"one is needed to generate): shorten the prompt starting {str(shown)[:60]!r}"
            )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _forward(self, model_inputs, index=None, top_k=1, max_retrievals=None, retrieval_mode=None, streamer=None,
                 **generate_kwargs):
        if index is None:
            raise ValueError("No document index: pass index=... (a DocumentIndex, the folder of a saved one, or a list "
                             "of documents) when creating the pipeline or calling it")
        if top_k > len(index):
            raise ValueError(f"top_k={top_k} is larger than the document index, which holds {len(index)} documents")
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        input_ids, attention_mask = _left_pad(model_inputs["input_ids"], model_inputs["attention_mask"], pad_id)
        if streamer is not None and input_ids.shape[0] > 1:
            raise ValueError("A streamer follows one sequence: use it with batch_size=1")
        retrieval_mode = retrieval_mode or self.model.config.retrieval_mode
        if max_retrievals is None and retrieval_mode == "insert":
            max_retrievals = DEFAULT_MAX_RETRIEVALS_INSERT

        # Greedy unless asked otherwise; a pipeline default length, as text-generation has.
        if "do_sample" not in generate_kwargs and "generation_config" not in generate_kwargs:
            generate_kwargs["do_sample"] = False
        if not {"max_new_tokens", "max_length", "generation_config"} & generate_kwargs.keys():
            generate_kwargs["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
        generate_kwargs.setdefault("pad_token_id", pad_id)
        self._warn_once_past_context(int(attention_mask.sum(-1).max()), generate_kwargs)
        self._stop_strings_to_criteria(generate_kwargs)
        decode = functools.partial(
            onegen_generate, max_retrievals=max_retrievals, streamer=streamer, retrieval_mode=retrieval_mode,
            retriever=_Retriever(index, self.tokenizer, self.model.config, top_k, self.model.render_document,
                                 insert=retrieval_mode == "insert"),
        )
        output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, custom_generate=decode,
                                     **generate_kwargs)
        rows = [{"generated_ids": ids, "retrievals": hits, "stats": output.stats}
                for ids, hits in zip(output.sequences, output.retrievals)]
        return {"rows": rows}

    def _warn_once_past_context(self, prompt_length: int, generate_kwargs: dict) -> None:
        """Decoding stops where the model's context ends; say so (once per pipeline) when the asked length passes it,
        rather than return a shorter text without a word."""
        context = _context_length(self.model.config)
        if context is None or getattr(self, "_warned_past_context", False):
            return
        config = generate_kwargs.get("generation_config") or self.model.generation_config
        max_new = generate_kwargs.get("max_new_tokens")
        if max_new is None and "max_length" not in generate_kwargs:
            max_new = config.max_new_tokens
        total = prompt_length + max_new if max_new is not None else generate_kwargs.get("max_length", config.max_length)
        if total > context:
            self._warned_past_context = True
            logger.warning(
                f"A prompt of {prompt_length} tokens plus max_new_tokens={total - prompt_length} passes the model's "
                f"context of {context} tokens: generation stops at the context, after at most "
                f"{context - prompt_length} new tokens (inserted documents count too). Shown once per pipeline."
            )

    def _stop_strings_to_criteria(self, generate_kwargs: dict) -> None:
        """Turn `stop_strings` (a call kwarg, or a field of the given or the model's generation config) into a
        `StopStringCriteria` built with this pipeline's tokenizer. `generate` would need `tokenizer=`, which it does
        not hand on to a `custom_generate` callable (transformers 5.24)."""
        config = generate_kwargs.get("generation_config") or self.model.generation_config
        stop_strings = generate_kwargs.pop("stop_strings", None) or config.stop_strings
        if not stop_strings:
            return
        if config.stop_strings:
            config = copy.deepcopy(config)
            config.stop_strings = None
            generate_kwargs["generation_config"] = config
        generate_kwargs["stopping_criteria"] = StoppingCriteriaList(
            [*(generate_kwargs.get("stopping_criteria") or []), StopStringCriteria(self.tokenizer, stop_strings)]
        )

    def postprocess(self, model_outputs, return_stats=False, return_tensors=False, skip_special_tokens=False,
                    clean_up_tokenization_spaces=None):
        row = model_outputs["rows"]
        row = row[0] if isinstance(row, list) else row  # batch_size=1 keeps the batch list; batched runs unroll it
        ids = list(row["generated_ids"])
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) | {self.tokenizer.eos_token_id}
        text_ids = ids[:-1] if ids and ids[-1] in eos else ids
        extra = {} if clean_up_tokenization_spaces is None else {"clean_up_tokenization_spaces": clean_up_tokenization_spaces}
        result = {
            "generated_text": self.tokenizer.decode(text_ids, skip_special_tokens=skip_special_tokens, **extra),
            "retrievals": [{key: hit[key] for key in ("step", "position", "doc_id", "score", "text", "rank")}
                           for hit in row["retrievals"]],
        }
        if return_tensors:
            result["generated_token_ids"] = ids
        if return_stats:
            result["stats"] = dict(row["stats"])
        return result

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model, the tokenizer and this pipeline's code, recorded under `custom_pipelines` in config.json,
        so `pipeline("onegen-rag", model=save_directory, trust_remote_code=True)` rebuilds it without `onegen`."""
        # Registration (on `import onegen`) is what makes the base class record the pipeline; a pipeline loaded as
        # remote code is not registered in this process, so record it here either way.
        self._registered_impl = {TASK: {"impl": type(self), "pt": (AutoModelForCausalLM,)}}
        config = self.model.config
        had, before = hasattr(config, "custom_pipelines"), getattr(config, "custom_pipelines", None)
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            # The base class sets `custom_pipelines` on the live config; left there, a later plain
            # `model.save_pretrained` would record the pipeline without copying its code.
            if had:
                config.custom_pipelines = before
            else:
                del config.custom_pipelines


def save_pipeline_code(save_directory: str | os.PathLike) -> None:
    r"""
    Add the onegen-rag pipeline's code (this file and the same-folder modules it imports) and its `custom_pipelines`
    entry to a saved OneGen model folder, so that `pipeline("onegen-rag", model=save_directory,
    trust_remote_code=True)` rebuilds the pipeline where `onegen` is not installed. `config.json` is rewritten
    through a temporary file. Safe to call again on the same folder.
    """
    folder = Path(save_directory)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} holds no config.json: save the model there before its pipeline code")
    custom_object_save(OneGenRAGPipeline, folder)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    # The entry `Pipeline.save_pretrained` writes for a registered pipeline ("module.Class", model classes by name).
    module = OneGenRAGPipeline.__module__.rsplit(".", 1)[-1]
    entry = {"impl": f"{module}.{OneGenRAGPipeline.__name__}", "pt": [AutoModelForCausalLM.__name__]}
    config["custom_pipelines"] = {**(config.get("custom_pipelines") or {}), TASK: entry}
    write_text_atomically(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_model_with_pipeline(model, tokenizer, save_directory, **save_kwargs) -> None:
    r"""
    Save `model` and `tokenizer` with the onegen-rag pipeline's code into `save_directory`, atomically (written to a
    temporary folder, then moved into place). Afterwards, in any process (the `onegen` package not needed):

    ```python
    rag = pipeline("onegen-rag", model=save_directory, trust_remote_code=True, index=index_or_its_folder)
    ```

    Push the folder to the Hub as it is (or use `OneGenRAGPipeline(...).push_to_hub(repo_id)`). The document index
    is not part of the model folder: save it with `DocumentIndex.save` and pass it (or its folder) as `index`.
    """
    pipe = OneGenRAGPipeline(model=model, tokenizer=tokenizer, device=model.device)
    with atomic_directory(save_directory, "config.json", what="model") as tmp:
        pipe.save_pretrained(tmp, **save_kwargs)


__all__ = ["OneGenRAGPipeline", "save_model_with_pipeline", "save_pipeline_code"]
