# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""How a OneGen chat record (`messages`: `{"role", "content", ...}` dicts) becomes model text: one place for the
trainer, the evaluation and the demo, so a model is evaluated on text rendered exactly as it was trained on.

The tokenizer's chat template is used when it has one (and the caller wants it); otherwise the contents are
concatenated as they are (the original OneGen's `DocumentTemplator`).
"""


def plain_messages(messages: list[dict]) -> list[dict]:
    """`messages` with only `role` and `content` (OneGen's `positive` / `negative` lists and any other key dropped):
    what a chat template and the pipeline take."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def uses_chat_template(tokenizer, use_chat_template: bool = True) -> bool:
    """Whether rendering goes through the tokenizer's chat template: asked for, and the tokenizer has one."""
    return bool(use_chat_template and getattr(tokenizer, "chat_template", None))


def render_conversation(tokenizer, messages: list[dict], use_chat_template: bool = True) -> tuple[str, bool]:
    """The whole conversation as text, and whether the tokenizer should add its special tokens to it (a chat
    template writes its own)."""
    if uses_chat_template(tokenizer, use_chat_template):
        return tokenizer.apply_chat_template(plain_messages(messages), tokenize=False), False
    return "".join(m["content"] for m in messages), True


def render_messages(messages: list[dict], tokenizer,
                    use_chat_template: bool) -> tuple[str, list[tuple[int, int, int]]]:
    """Render chat `messages` to text.

    Returns:
        `(text, spans)`: `spans` holds `(start, end, message_index)` character spans of the assistant turns (with
        the template's end-of-turn markup, which is what the model must learn to emit). With the chat template,
        each prefix of the conversation must render as a prefix of the whole (true of ordinary templates).
    """
    plain = plain_messages(messages)
    text, _ = render_conversation(tokenizer, plain, use_chat_template)
    if not uses_chat_template(tokenizer, use_chat_template):
        spans, start = [], 0
        for i, message in enumerate(plain):
            if message["role"] == "assistant":
                spans.append((start, start + len(message["content"]), i))
            start += len(message["content"])
        return text, spans

    spans = []
    for i, message in enumerate(plain):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(plain[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(plain[: i + 1], tokenize=False)
        if not (through.startswith(before) and text.startswith(through)):
            raise ValueError(
                "The tokenizer's chat template does not render conversation prefixes as prefixes of the whole "
                "conversation, so assistant turns cannot be located; set use_chat_template=False"
            )
        spans.append((len(before), len(through), i))
    return text, spans


def prompt_messages(messages: list[dict]) -> list[dict]:
    """The conversation up to the assistant turn (everything before a final assistant message), role and content
    only: what a model is prompted with to write that turn."""
    return plain_messages(messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages)


def render_prompt(tokenizer, messages: list[dict], use_chat_template: bool = True) -> tuple[str, bool]:
    """[`prompt_messages`] as text ready for generation, and whether the tokenizer should add its special tokens
    to it (a chat template writes its own)."""
    prompt = prompt_messages(messages)
    if uses_chat_template(tokenizer, use_chat_template):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), False
    return "".join(m["content"] for m in prompt), True


__all__ = ["plain_messages", "prompt_messages", "render_conversation", "render_messages", "render_prompt",
           "uses_chat_template"]
