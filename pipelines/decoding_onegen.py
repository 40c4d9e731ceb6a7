# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""OneGen's retrieve-while-decoding loop, as a `custom_generate` function for `model.generate`.

Hub-facing file (travels with saved models next to `pipeline_onegen.py`): imports only torch, transformers and the
standard library.

One KV cache per batch, one forward per decoding step. When a row samples the query token, that token is fed once
like any other token: the forward extends the cache and its last hidden state is the query vector (no re-encoding of
the prefix). The index is searched; in `insert` mode the retrieved documents, wrapped in the context tags, are
prefilled onto the same cache (rows that did not retrieve wait behind masked pad positions); in `link` mode the
continuation token is forced next and nothing is inserted.

Two views of each row are kept:
- the cache view: every position the cache holds, including pad positions where a row waited (masked out through
  `attention_mask`, with position ids counting only the row's real tokens), so the batch stays rectangular;
- the token view (`input_ids` given to logits processors and stopping criteria): the row's own tokens, left-padded
  as in `generate`, without the waiting gaps, so a row sees the same history batched or alone.
"""

import time
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.generation.logits_process import LogitsProcessor, LogitsProcessorList
from transformers.generation.stopping_criteria import MaxLengthCriteria, StoppingCriteriaList
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import logging


logger = logging.get_logger(__name__)

# OneGenConfig's modes, repeated here because this module travels without the `onegen` package.
RETRIEVAL_MODES = ("insert", "link")

# transformers 5.24 renamed the KV cache argument `past_key_values` -> `cache` (in `generate`'s model kwargs and in
# model `forward`). A private copy of `modeling_onegen.CACHE_NAME`: this file must not import the model's files.
_CACHE_NAME = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


@dataclass
class OneGenGenerateOutput:
    r"""
    Output of [`onegen_generate`].

    Args:
        sequences (`list[list[int]]`): per row, the continuation after the prompt: sampled tokens and inserted
            documents (with their tags), in order; ends with the EOS token when one was sampled.
        retrievals (`list[list[dict]]`): per row, one dict per retrieved document: `step` (number of tokens the row
            had sampled before the query token, i.e. its 0-based decoding step), `position` (offset of the query
            token in `sequences[row]`), `rank`, and what the retriever returns (the pipeline's: `doc_id`, `score`,
            `text`).
        stats (`dict`): `total_time`, `forward_time`, `search_time` (s); `forward_calls`; `forward_tokens` (real
            tokens fed, prompt included); `forward_positions` (including pad positions); `sampled_tokens`;
            `inserted_tokens`; `retrievals`.
    """

    sequences: list[list[int]]
    retrievals: list[list[dict]]
    stats: dict = field(default_factory=dict)


def _context_length(config) -> int | None:
    text_config = getattr(config, "text_config", config)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class RetrievalCapLogitsProcessor(LogitsProcessor):
    r"""
    Masks the query token out of the rows that used up their retrievals. It runs first in the processor list, before
    the sampling warpers (top-k, top-p, ...): masked afterwards, a query token that held most of the probability
    could leave a row with no token at all (`probability tensor contains inf/nan`).

    Args:
        query_token_id (`int`): the model's query token.
        max_retrievals (`int`): retrievals allowed per row.
        retrieved (`list[int]`): retrievals made so far, per row; the decoding loop updates it in place.
    """

    def __init__(self, query_token_id: int, max_retrievals: int, retrieved: list[int]):
        self.query_token_id, self.max_retrievals, self.retrieved = query_token_id, max_retrievals, retrieved

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        capped = [row for row, count in enumerate(self.retrieved) if count >= self.max_retrievals]
        if capped:
            scores = scores.clone()
            scores[capped, self.query_token_id] = float("-inf")
        return scores


class _TokenView:
    """Each row's own token history as a left-padded `(batch, length)` tensor (what logits processors see)."""

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int):
        self.pad_id = pad_id
        self.lengths = attention_mask.sum(-1).tolist()
        self.ids = input_ids.clone()  # left padding: the prompt's own pads are already on the left

    def append_column(self, tokens: torch.Tensor) -> None:
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=-1)
        self.lengths = [n + 1 for n in self.lengths]

    def extend_rows(self, rows: list[int], blocks: list[list[int]]) -> None:
        """Append `blocks[i]` to row `rows[i]`; the other rows keep their tokens, right-aligned."""
        extra = {r: b for r, b in zip(rows, blocks)}
        new_lengths = [n + len(extra.get(r, ())) for r, n in enumerate(self.lengths)]
        width = max(self.ids.shape[1], max(new_lengths))
        ids = torch.full((self.ids.shape[0], width), self.pad_id, dtype=self.ids.dtype, device=self.ids.device)
        for r, n in enumerate(self.lengths):
            row = self.ids[r, self.ids.shape[1] - n:]
            if r in extra:
                row = torch.cat([row, torch.tensor(extra[r], dtype=row.dtype, device=row.device)])
            ids[r, width - row.shape[0]:] = row
        self.ids, self.lengths = ids, new_lengths


class _DecodingState:
    r"""
    What one [`onegen_generate`] call keeps between decoding steps: the KV cache with the attention mask over every
    position it holds, each row's next position id, the rows' outputs (tokens, retrievals) and counters, and the
    stats. Its two operations on the cache are `feed` (append a block of tokens for every row, or for some rows) and
    `insert` (prefill retrieved documents onto the rows that asked for them, the others waiting on masked pads).
    """

    def __init__(self, model, cache, attention_mask: torch.Tensor, pad_id: int, context: int | None):
        batch_size = attention_mask.shape[0]
        self.model, self.cache, self.pad_id, self.context = model, cache, pad_id, context
        self.attention = attention_mask[:, :0]  # `feed` appends each fed block's mask
        self.holes = False  # once a pad position is in the cache, every forward needs the mask
        self.next_pos = attention_mask.sum(-1)  # each row's next position id: its real tokens so far
        self.max_pos = (context or 1 << 30) - 1
        self.sliceable = False
        self.sequences = [[] for _ in range(batch_size)]
        self.retrievals = [[] for _ in range(batch_size)]
        self.sampled = [0] * batch_size
        self.retrieved = [0] * batch_size
        self.finished = torch.zeros(batch_size, dtype=torch.bool, device=attention_mask.device)
        self.forced = torch.full((batch_size,), -1, dtype=torch.long, device=attention_mask.device)
        self.stats = dict(forward_time=0.0, search_time=0.0, forward_calls=0, forward_tokens=0, forward_positions=0,
                          sampled_tokens=0, inserted_tokens=0, retrievals=0)

    def feed(self, ids: torch.Tensor, real: torch.Tensor, positions: torch.Tensor, rows: list[int] | None = None):
        """Feed `ids` (`(batch, width)`, or `(len(rows), width)` for only those rows) on the cache; `real`
        (`(batch, width)`) marks the real positions among the appended ones."""
        self.attention = torch.cat([self.attention, real.to(torch.long)], dim=-1)
        self.holes = self.holes or not bool(real.all())
        begin = time.perf_counter()
        if rows is None:
            out = self.model(input_ids=ids, attention_mask=self.attention if self.holes else None,
                             position_ids=positions, use_cache=True, logits_to_keep=1, **{_CACHE_NAME: self.cache})
        else:
            out = _forward_rows(self.model, self.cache, rows, ids, self.attention[rows], positions)
        self.stats["forward_time"] += time.perf_counter() - begin
        self.stats["forward_calls"] += 1
        self.stats["forward_tokens"] += int(real.sum())
        self.stats["forward_positions"] += ids.numel()
        return out

    def prefill(self, input_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        """Feed the prompts (positions count each row's real tokens from 0; left padding is masked); returns the
        next-token logits. Afterwards the cache tells whether insertions may run on a row slice of it: when every
        layer is a plain full-attention `DynamicLayer` (otherwise all rows run, the waiting ones on masked pads)."""
        positions = (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.feed(input_ids, prompt_mask, positions)
        self.sliceable = all(type(layer) is DynamicLayer and layer.is_initialized
                             for layer in getattr(self.cache, "layers", [None]))
        return out.logits[:, -1].float()

    def record(self, tokens: torch.Tensor, active: torch.Tensor) -> None:
        """Append the sampled `tokens` to the active rows' sequences."""
        token_list, active_list = tokens.tolist(), active.tolist()
        for r in range(len(token_list)):
            if active_list[r]:
                self.sequences[r].append(token_list[r])
                self.sampled[r] += 1
        self.stats["sampled_tokens"] += sum(active_list)

    def add_hits(self, row: int, hits: list[dict]) -> None:
        """Record one retrieval of `row` (its hits, best first) at the query token it just sampled."""
        self.retrieved[row] += 1
        self.stats["retrievals"] += 1
        for rank, hit in enumerate(hits):
            self.retrievals[row].append({"step": self.sampled[row] - 1, "position": len(self.sequences[row]) - 1,
                                         "rank": rank, **hit})

    def fits(self, row: int, insertion) -> bool:
        """Whether `row` has room in the model's context for `insertion` and one more token."""
        return self.context is None or int(self.next_pos[row]) + len(insertion) + 1 <= self.context

    def insert(self, logits: torch.Tensor, rows: list[int], blocks: list[list[int]]) -> torch.Tensor:
        """Prefill `blocks[i]` onto row `rows[i]` in one forward and append it to the row's sequence; returns the
        logits with the inserting rows' replaced (the others keep theirs)."""
        logits = _insert(self.feed, logits, rows, blocks, self.next_pos.clamp(max=self.max_pos), self.pad_id,
                         self.sliceable)
        self.next_pos = self.next_pos.clone()
        for r, block in zip(rows, blocks):
            self.next_pos[r] += len(block)
            self.sequences[r].extend(block)
            self.stats["inserted_tokens"] += len(block)
        return logits


@torch.no_grad()
def onegen_generate(model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None, *,
                    retriever, max_retrievals: int | None = None, streamer=None, retrieval_mode: str | None = None,
                    **model_kwargs) -> OneGenGenerateOutput:
    r"""
    Decode with retrieval inside the loop. Call it through `generate`, which prepares the cache, the logits
    processors and the stopping criteria from the generation config and the call's kwargs:

    ```python
    model.generate(input_ids, attention_mask=mask, max_new_tokens=64, do_sample=False,
                   custom_generate=functools.partial(onegen_generate, retriever=retriever, max_retrievals=3))
    ```

    Args:
        input_ids (`torch.LongTensor` of shape `(batch_size, prompt_length)`): left-padded prompts.
        retriever (callable): `retriever(query_vectors)` with `query_vectors` of shape `(num_queries, hidden_size)`
            returns, per query, `(hits, insertion_ids)`: a list of hit dicts, best first (copied into the output), and
            the token ids to insert (ignored in `link` mode; empty = insert nothing).
        max_retrievals (`int`, *optional*): retrievals allowed per row; after that the query token is masked out of
            the next-token distribution and decoding goes on without retrieval. `None` = no cap.
        streamer (`BaseStreamer`, *optional*): receives the prompt, then every sampled or inserted token (batch 1).
        retrieval_mode (`str`, *optional*): `"insert"` or `"link"` for this call; defaults to the model config's.
        model_kwargs: from `generate`: the empty cache (`cache`, or `past_key_values` before transformers 5.24),
            `attention_mask` (None when all ones), `use_cache`; the rest is ignored (position ids are rebuilt here for
            every forward).

    Returns:
        [`OneGenGenerateOutput`].
    """
    start_time = time.perf_counter()
    config = model.config
    query_id = config.query_token_id
    retrieval_mode = retrieval_mode or config.retrieval_mode
    if retrieval_mode not in RETRIEVAL_MODES:
        raise ValueError(f"retrieval_mode must be one of {RETRIEVAL_MODES}, got {retrieval_mode!r}")
    link_mode = retrieval_mode == "link"
    continuation_id = config.continuation_token_id if link_mode else None
    cache = model_kwargs.get(_CACHE_NAME)
    if cache is None:
        raise ValueError("onegen_generate needs a KV cache (call it through generate with use_cache=True)")
    batch_size, prompt_length = input_ids.shape
    device = input_ids.device
    attention = model_kwargs.get("attention_mask")
    attention = torch.ones_like(input_ids) if attention is None else attention.to(torch.long)
    pad_id = generation_config._pad_token_tensor
    eos = generation_config._eos_token_tensor
    pad_id = int(pad_id) if pad_id is not None else (int(eos.view(-1)[0]) if eos is not None else 0)
    eos = eos.view(-1).to(device) if eos is not None else None
    max_new = generation_config.max_new_tokens
    if max_new is None:
        max_new = generation_config.max_length - prompt_length
    if max_new <= 0:
        logger.warning(f"Nothing to generate: the prompts take {prompt_length} of "
                       f"max_length={generation_config.max_length}")
        empty = [[] for _ in range(batch_size)]
        return OneGenGenerateOutput(sequences=empty, retrievals=[[] for _ in range(batch_size)])
    context = _context_length(config)
    criteria = StoppingCriteriaList(c for c in (stopping_criteria or []) if not isinstance(c, MaxLengthCriteria))
    do_sample = bool(generation_config.do_sample)

    state = _DecodingState(model, cache, attention, pad_id, context)
    prompt_mask = attention.bool()
    logits = state.prefill(input_ids, prompt_mask)
    view = _TokenView(input_ids, prompt_mask, pad_id)
    cap = None if max_retrievals is None else RetrievalCapLogitsProcessor(query_id, max_retrievals, state.retrieved)
    if cap is not None:
        logits_processor = LogitsProcessorList([cap, *(logits_processor or [])])
    if streamer is not None:
        streamer.put(input_ids.cpu())

    while True:
        # 1. Choose the next token of every row.
        scores = logits_processor(view.ids, logits) if logits_processor else logits
        if cap is not None:  # again: a user's processor runs after the warpers and may have raised the token
            scores = cap(view.ids, scores)
        if do_sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        tokens = torch.where(state.forced >= 0, state.forced, tokens)
        state.forced.fill_(-1)
        active = ~state.finished
        tokens = torch.where(active, tokens, torch.full_like(tokens, pad_id))
        view.append_column(tokens)
        pos_list = state.next_pos.tolist()
        state.record(tokens, active)
        if streamer is not None:
            streamer.put(tokens.cpu())

        # 2. Which rows stop after this token (EOS, stop strings, max_new_tokens, a full context).
        done = torch.tensor([state.sampled[r] >= max_new or (context is not None and pos_list[r] + 1 >= context)
                             for r in range(batch_size)], device=device)
        if eos is not None:
            done |= torch.isin(tokens, eos)
        if len(criteria):
            done |= criteria(view.ids, scores).to(device)
        is_query = active & (tokens == query_id)
        state.finished = state.finished | (active & done)
        if bool(state.finished.all()) and not bool(is_query.any()):
            break

        # 3. Feed the sampled tokens: one forward for the whole batch. Rows that finished earlier are masked.
        out = state.feed(tokens[:, None], active[:, None], state.next_pos[:, None].clamp(max=state.max_pos))
        state.next_pos = state.next_pos + active.long()
        logits = out.logits[:, -1].float()
        if not bool(is_query.any()):
            continue

        # 4. Retrieval for rows that fed the query token: its last hidden state is the query vector.
        rows = is_query.nonzero().view(-1).tolist()
        begin = time.perf_counter()
        results = retriever(out.last_hidden_state[rows, -1])
        state.stats["search_time"] += time.perf_counter() - begin
        insert_rows, blocks = [], []
        for r, (hits, insertion) in zip(rows, results):
            state.add_hits(r, hits)
            if state.finished[r]:
                continue
            if link_mode:  # 5a. link: force the continuation token next, insert nothing
                if continuation_id is not None:
                    state.forced[r] = continuation_id
            elif insertion:  # 5b. insert: the document (with its tags) goes onto the same cache
                if not state.fits(r, insertion):
                    logger.warning(f"Row {r}: inserting {len(insertion)} document tokens would exceed the model's "
                                   f"context of {context} tokens; the row stops here.")
                    state.finished[r] = True
                    continue
                insert_rows.append(r)
                blocks.append(list(insertion))
        if insert_rows:
            logits = state.insert(logits, insert_rows, blocks)
            if streamer is not None:
                for block in blocks:
                    streamer.put(torch.tensor(block))
            view.extend_rows(insert_rows, blocks)
        if bool(state.finished.all()):
            break

    if streamer is not None:
        streamer.end()
    state.stats["total_time"] = time.perf_counter() - start_time
    return OneGenGenerateOutput(sequences=state.sequences, retrievals=state.retrievals, stats=state.stats)


def _insert(feed, logits, rows, blocks, next_pos, pad_id, sliceable):
    """Prefill `blocks[i]` onto row `rows[i]` in one forward (`feed`, [`_DecodingState.feed`]). Blocks are
    left-padded to a common width so that the last column is every inserting row's last document token; the other
    rows keep the logits they had and get masked positions in the cache. When the cache can be sliced, only the
    inserting rows are computed (a batch of 8 where one row inserts a 50-token document computes 50 positions, not
    400)."""
    batch_size, device = logits.shape[0], logits.device
    width = max(len(b) for b in blocks)
    only_rows = rows if sliceable and len(rows) < batch_size else None
    fed = rows if only_rows is not None else list(range(batch_size))
    ids = torch.full((len(fed), width), pad_id, dtype=torch.long, device=device)
    positions = next_pos[fed][:, None].expand(len(fed), width).clone()
    real = torch.zeros((batch_size, width), dtype=torch.bool, device=device)
    for i, (r, block) in enumerate(zip(rows, blocks)):
        j = i if only_rows is not None else r
        ids[j, width - len(block):] = torch.tensor(block, dtype=torch.long, device=device)
        positions[j, width - len(block):] = next_pos[r] + torch.arange(len(block), device=device)
        real[r, width - len(block):] = True
    out = feed(ids, real, positions, rows=only_rows)
    logits = logits.clone()
    logits[rows] = out.logits[:, -1].float() if only_rows is not None else out.logits[rows, -1].float()
    return logits


def _forward_rows(model, cache, rows, ids, attention_mask, positions):
    """Run `ids` for `rows` only, on a row slice of `cache`, then grow `cache` by the same width for every row:
    the computed keys/values for `rows`, zeros (masked by the caller's attention mask) for the others."""
    sliced = DynamicCache(ddp_cache_data=[(layer.keys[rows], layer.values[rows]) for layer in cache.layers])
    out = model(input_ids=ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                logits_to_keep=1, **{_CACHE_NAME: sliced})
    width = ids.shape[1]
    for layer, part in zip(cache.layers, sliced.layers):
        for name in ("keys", "values"):
            full, new = getattr(layer, name), getattr(part, name)[:, :, -width:]
            grown = full.new_zeros(full.shape[:2] + (width,) + full.shape[3:])
            grown[rows] = new
            setattr(layer, name, torch.cat([full, grown], dim=-2))
    return out


__all__ = ["OneGenGenerateOutput", "RetrievalCapLogitsProcessor", "onegen_generate"]
