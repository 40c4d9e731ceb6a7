# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Turning OneGen chat records into token ids, role-based labels and retrieval-token positions.

Role rules (paper; original `Tokenizer.onegen_tokenize`):
- GEN: assistant text is trained with cross-entropy, the query token included (the model learns to emit it);
- CTX: prompts (user/system turns, template markup outside assistant turns) and every span from a context start
  tag to its end tag, both tags included, get no loss;
- RET: the token right *after* a query token is not trained: the query token's hidden state is an embedding, not a
  next-token predictor (in `link` mode the pipeline forces the continuation token there).
"""

from onegen.chat_utils import render_messages
from onegen.modeling_onegen import truncation_keeping


IGNORE_INDEX = -100


def _context_char_ranges(text: str, spans, start_tag: str | None, end_tag: str | None) -> list[tuple[int, int]]:
    """Character ranges `[start_tag ... end_tag]` (tags included) inside assistant spans."""
    ranges = []
    if not start_tag:
        return ranges
    for span_start, span_end, _ in spans:
        cursor = span_start
        while (open_at := text.find(start_tag, cursor, span_end)) != -1:
            close_at = text.find(end_tag, open_at + len(start_tag), span_end)
            close_end = span_end if close_at == -1 else close_at + len(end_tag)
            ranges.append((open_at, close_end))
            cursor = close_end
    return ranges


def tokenize_example(
    messages: list[dict],
    tokenizer,
    config,
    use_chat_template: bool = True,
    max_length: int | None = None,
) -> dict:
    """Tokenize one training conversation.

    Args:
        config: the model's `OneGenConfig` (token strings and ids).

    Returns:
        dict with `input_ids` and `labels` (lists of the same length), `anchor_positions` (token index of every
        query token in an assistant turn that survived truncation, in order) and `anchor_slots` (for each of them,
        its index among all query tokens of the conversation, i.e. into the record's `positives`/`negatives`).
    """
    text, spans = render_messages(messages, tokenizer, use_chat_template)
    eos = tokenizer.eos_token
    if eos and spans and spans[-1][2] == len(messages) - 1 and eos not in text[spans[-1][0] : spans[-1][1]]:
        text += eos  # the model must learn to stop (the original's missing EOS made Qwen2 runs never stop)
        spans[-1] = (spans[-1][0], len(text), spans[-1][2])

    using_template = use_chat_template and getattr(tokenizer, "chat_template", None)
    encoding = tokenizer(text, add_special_tokens=not using_template, return_offsets_mapping=True)
    input_ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    context = _context_char_ranges(text, spans, config.context_start_token, config.context_end_token)

    def inside(ranges, start, end):
        return any(r_start <= start and end <= r_end for r_start, r_end, *_ in ranges)

    labels, anchors, query_slot = [], [], 0
    for i, (token_id, (start, end)) in enumerate(zip(input_ids, offsets)):
        in_assistant = end > start and inside(spans, start, end)
        trained = in_assistant and not inside(context, start, end)
        if anchors and anchors[-1][0] == i - 1:
            trained = False  # the token after a query token: its predictor's hidden state is an embedding
        labels.append(token_id if trained else IGNORE_INDEX)
        if token_id == config.query_token_id and in_assistant:
            anchors.append((i, query_slot))
            query_slot += 1

    if max_length is not None and len(input_ids) > max_length:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
        anchors = [(position, slot) for position, slot in anchors if position < max_length]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "anchor_positions": [position for position, _ in anchors],
        "anchor_slots": [slot for _, slot in anchors],
    }


def tokenize_document(messages: list[dict], tokenizer, config, max_length: int | None = None, where: str = "") -> dict:
    """Tokenize one corpus document exactly as `model.encode_documents` tokenizes its text: the contents
    concatenated, the tokenizer's special tokens added, truncated keeping every document token.

    Returns:
        dict with `input_ids` and `vector_positions` (token index of each document token in an assistant turn).
    """
    text, spans = render_messages(messages, tokenizer, use_chat_template=False)
    encoding = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    input_ids = encoding["input_ids"]
    is_vector = [
        token_id == config.doc_token_id and any(s <= start and end <= e for s, e, _ in spans)
        for token_id, (start, end) in zip(input_ids, encoding["offset_mapping"])
    ]
    keep_ids = set(tokenizer.all_special_ids) | set(config.special_token_ids.values())
    kept = truncation_keeping(input_ids, max_length, keep_ids, where=where or "document")
    return {
        "input_ids": [input_ids[i] for i in kept],
        "vector_positions": [new for new, old in enumerate(kept) if is_vector[old]],
    }
