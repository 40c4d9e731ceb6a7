# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Answer generation for `onegen eval`: closed-book (the model answers with retrieval switched off: its query,
document and context tokens may not be generated), and answers extracted from generated text."""

import torch
from transformers.utils import logging

from onegen.chat_utils import render_prompt


logger = logging.get_logger(__name__)


def extract_answer(text: str) -> str:
    """The answer part of a generation: its first non-empty line, stripped."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _blocked_token_ids(config) -> list[list[int]]:
    return [[token_id] for token_id in config.special_token_ids.values()]


@torch.inference_mode()
def closed_book_token_ids(model, tokenizer, records: list[dict], max_new_tokens: int = 32, batch_size: int = 8,
                          use_chat_template: bool = True) -> list[list[int]]:
    """Greedy answer token ids for each record's question without retrieval: the model's query, document and
    context tokens may not be generated (`bad_words_ids`). Padding is removed."""
    if tokenizer.pad_token_id is None:
        raise ValueError("The tokenizer has no pad token; set one (e.g. tokenizer.pad_token = tokenizer.eos_token)")
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues each row from its last real token
    rows = []
    try:
        for start in logging.tqdm(range(0, len(records), batch_size), desc="Closed-book answers", unit="batch"):
            batch = records[start : start + batch_size]
            prompts = [render_prompt(tokenizer, r["messages"], use_chat_template) for r in batch]
            encoded = tokenizer([p for p, _ in prompts], add_special_tokens=prompts[0][1], return_tensors="pt",
                                padding=True).to(model.device)
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                bad_words_ids=_blocked_token_ids(model.config),
            )
            for row in output[:, encoded["input_ids"].shape[1]:].tolist():
                while row and row[-1] == tokenizer.pad_token_id:  # rows that stopped early are padded
                    row.pop()
                rows.append(row)
    finally:
        tokenizer.padding_side = padding_side
    return rows


def closed_book_answers(model, tokenizer, records: list[dict], max_new_tokens: int = 32, batch_size: int = 8,
                        use_chat_template: bool = True) -> list[str]:
    """Closed-book answers (see `closed_book_token_ids`), decoded and cut to their first line."""
    rows = closed_book_token_ids(model, tokenizer, records, max_new_tokens, batch_size, use_chat_template)
    return [extract_answer(tokenizer.decode(row, skip_special_tokens=True)) for row in rows]
