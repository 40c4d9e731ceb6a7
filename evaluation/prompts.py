# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""How `onegen eval` turns a record's chat `messages` into model text, the way `OneGenTrainer` renders training
examples (`use_chat_template`): the tokenizer's chat template when it has one, else the contents concatenated as
they are (the original OneGen's `DocumentTemplator`)."""


def _clean(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def uses_chat_template(tokenizer, use_chat_template: bool = True) -> bool:
    return bool(use_chat_template and getattr(tokenizer, "chat_template", None))


def render_conversation(tokenizer, messages: list[dict], use_chat_template: bool = True) -> tuple[str, bool]:
    """The whole conversation as text, and whether the tokenizer should add its special tokens to it (a chat
    template writes its own)."""
    if uses_chat_template(tokenizer, use_chat_template):
        return tokenizer.apply_chat_template(_clean(messages), tokenize=False), False
    return "".join(m["content"] for m in messages), True


def render_prompt(tokenizer, messages: list[dict], use_chat_template: bool = True) -> tuple[str, bool]:
    """The conversation up to the assistant turn (everything before the last assistant message), ready for
    generation, and whether the tokenizer should add its special tokens."""
    prompt = _clean(messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages)
    if uses_chat_template(tokenizer, use_chat_template):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), False
    return "".join(m["content"] for m in prompt), True
