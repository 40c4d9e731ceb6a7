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


@torch.no_grad()
def onegen_generate(model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None, *,
                    retriever, max_retrievals: int | None = None, streamer=None, **model_kwargs) -> OneGenGenerateOutput:
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
        model_kwargs: from `generate`: the empty cache (`cache`, or `past_key_values` before transformers 5.24),
            `attention_mask` (None when all ones), `use_cache`; the rest is ignored (position ids are rebuilt here for
            every forward).

    Returns:
        [`OneGenGenerateOutput`].
    """
    start_time = time.perf_counter()
    config = model.config
    query_id = config.query_token_id
    link_mode = config.retrieval_mode == "link"
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
        logger.warning(f"Nothing to generate: the prompts take {prompt_length} of max_length={generation_config.max_length}")
        return OneGenGenerateOutput(sequences=[[] for _ in range(batch_size)], retrievals=[[] for _ in range(batch_size)])
    context = _context_length(config)
    criteria = StoppingCriteriaList(c for c in (stopping_criteria or []) if not isinstance(c, MaxLengthCriteria))
    do_sample = bool(generation_config.do_sample)
    stats = dict(forward_time=0.0, search_time=0.0, forward_calls=0, forward_tokens=0, forward_positions=0,
                 sampled_tokens=0, inserted_tokens=0, retrievals=0)

    holes = False  # once a pad position is in the cache, every forward needs the mask

    def forward(ids: torch.Tensor, real: torch.Tensor, positions: torch.Tensor, rows: list[int] | None = None):
        """Feed `ids` (`(batch, width)`, or `(len(rows), width)` for only those rows) on the cache; `real`
        (`(batch, width)`) marks the real positions among the appended ones."""
        nonlocal attention, holes
        attention = torch.cat([attention, real.to(torch.long)], dim=-1)
        holes = holes or not bool(real.all())
        begin = time.perf_counter()
        if rows is None:
            out = model(input_ids=ids, attention_mask=attention if holes else None, position_ids=positions,
                        use_cache=True, logits_to_keep=1, **{_CACHE_NAME: cache})
        else:
            out = _forward_rows(model, cache, rows, ids, attention[rows], positions)
        stats["forward_time"] += time.perf_counter() - begin
        stats["forward_calls"] += 1
        stats["forward_tokens"] += int(real.sum())
        stats["forward_positions"] += ids.numel()
        return out

    # Prefill: positions count each row's real tokens from 0 (left padding is masked).
    prompt_mask = attention.bool()
    next_pos = attention.sum(-1)
    max_pos = (context or 1 << 30) - 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    attention = attention[:, :0]  # `forward` appends each fed block's mask
    out = forward(input_ids, prompt_mask, positions)
    logits = out.logits[:, -1].float()

    view = _TokenView(input_ids, prompt_mask, pad_id)
    # Insertions can run on the inserting rows alone (a row slice of the cache) when every cache layer is a plain
    # full-attention DynamicLayer; otherwise all rows run, the waiting ones on masked pads.
    sliceable = all(type(layer) is DynamicLayer and layer.is_initialized for layer in getattr(cache, "layers", [None]))
    sequences = [[] for _ in range(batch_size)]
    retrievals = [[] for _ in range(batch_size)]
    sampled = [0] * batch_size
    retrieved = [0] * batch_size
    cap = RetrievalCapLogitsProcessor(query_id, max_retrievals, retrieved) if max_retrievals is not None else None
    if cap is not None:
        logits_processor = LogitsProcessorList([cap, *(logits_processor or [])])
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    forced = torch.full((batch_size,), -1, dtype=torch.long, device=device)
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
        tokens = torch.where(forced >= 0, forced, tokens)
        forced.fill_(-1)
        active = ~finished
        tokens = torch.where(active, tokens, torch.full_like(tokens, pad_id))
        view.append_column(tokens)
        token_list, active_list, pos_list = tokens.tolist(), active.tolist(), next_pos.tolist()
        for r in range(batch_size):
            if active_list[r]:
                sequences[r].append(token_list[r])
                sampled[r] += 1
        stats["sampled_tokens"] += sum(active_list)
        if streamer is not None:
            streamer.put(tokens.cpu())

        # 2. Which rows stop after this token (EOS, stop strings, max_new_tokens, a full context).
        done = torch.tensor([sampled[r] >= max_new or (context is not None and pos_list[r] + 1 >= context)
                             for r in range(batch_size)], device=device)
        if eos is not None:
            done |= torch.isin(tokens, eos)
        if len(criteria):
            done |= criteria(view.ids, scores).to(device)
        is_query = active & (tokens == query_id)
        finished = finished | (active & done)
        if bool(finished.all()) and not bool(is_query.any()):
            break

        # 3. Feed the sampled tokens: one forward for the whole batch. Rows that finished earlier are masked.
        out = forward(tokens[:, None], active[:, None], next_pos[:, None].clamp(max=max_pos))
        next_pos = next_pos + active.long()
        logits = out.logits[:, -1].float()

        # 4. Retrieval for rows that fed the query token: its last hidden state is the query vector.
        if bool(is_query.any()):
            rows = is_query.nonzero().view(-1).tolist()
            begin = time.perf_counter()
            results = retriever(out.last_hidden_state[rows, -1])
            stats["search_time"] += time.perf_counter() - begin
            insert_rows, blocks = [], []
            for r, (hits, insertion) in zip(rows, results):
                retrieved[r] += 1
                stats["retrievals"] += 1
                for rank, hit in enumerate(hits):
                    retrievals[r].append({"step": sampled[r] - 1, "position": len(sequences[r]) - 1, "rank": rank, **hit})
                if finished[r]:
                    continue
                if link_mode:
                    if continuation_id is not None:
                        forced[r] = continuation_id
                elif insertion:
                    if context is not None and int(next_pos[r]) + len(insertion) + 1 > context:
                        logger.warning(f"Row {r}: inserting {len(insertion)} document tokens would exceed the model's "
                                       f"context of {context} tokens; the row stops here.")
                        finished[r] = True
                        continue
                    insert_rows.append(r)
                    blocks.append(list(insertion))
            if insert_rows:
                logits = _insert(forward, logits, insert_rows, blocks, next_pos.clamp(max=max_pos), pad_id, sliceable)
                next_pos = next_pos.clone()
                for r, block in zip(insert_rows, blocks):
                    next_pos[r] += len(block)
                    sequences[r].extend(block)
                    stats["inserted_tokens"] += len(block)
                    if streamer is not None:
                        streamer.put(torch.tensor(block))
                view.extend_rows(insert_rows, blocks)
            if bool(finished.all()):
                break

    if streamer is not None:
        streamer.end()
    stats["total_time"] = time.perf_counter() - start_time
    return OneGenGenerateOutput(sequences=sequences, retrievals=retrievals, stats=stats)


def _insert(forward, logits, rows, blocks, next_pos, pad_id, sliceable):
    """Prefill `blocks[i]` onto row `rows[i]` in one forward. Blocks are left-padded to a common width so that the
    last column is every inserting row's last document token; the other rows keep the logits they had and get
    masked positions in the cache. When the cache can be sliced, only the inserting rows are computed (a batch of 8
    where one row inserts a 50-token document computes 50 positions, not 400)."""
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
    out = forward(ids, real, positions, rows=only_rows)
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
