"""Shared pieces of the pipeline and index tests: the context tags of their tiny OneGen models, a documents list, a
logits processor that makes a random model sample its query token after chosen tokens, and a tiny entity linker
trained in-process."""

import torch
import torch.nn.functional as F
from onegen_model_tester import OneGenModelTester
from transformers import LogitsProcessor, LogitsProcessorList


ARCHS = ["llama", "qwen2", "gpt2"]
TAGS = ("<p>", "</p>")
DOCS = [
    "paris is the capital of france",
    "meridian is a city in the state of mississippi",
    "the mississippi is the largest river in the country",
    "an apple tree is a small tree",
    "the president was born in a small house",
]
PROMPTS = ["the capital of france is", "a dog", "meridian is a city in the state of", "the largest river"]


class QueryAfter(LogitsProcessor):
    """Make the query token the argmax wherever a row's last token is one of `triggers`: a random model then
    retrieves at predictable places. It looks only at each row's own last token, so batching cannot change it."""

    def __init__(self, triggers, query_id: int):
        self.triggers = torch.tensor(sorted(set(triggers)))
        self.query_id = query_id

    def __call__(self, input_ids, scores):
        fire = torch.isin(input_ids[:, -1], self.triggers.to(input_ids.device))
        scores = scores.clone()
        scores[fire, self.query_id] = scores[fire].max(dim=-1).values + 10.0
        return scores


def query_after(model, *triggers):
    return LogitsProcessorList([QueryAfter(triggers, model.config.query_token_id)])


def greedy_continuations(model, tokenizer, prompts, max_new_tokens):
    """Plain `generate` greedy continuations (token ids after the prompt), one prompt at a time."""
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        out.append(model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)[0, ids.shape[1]:].tolist())
    return out


def pick_triggers(continuations, retrieving, silent):
    """For each `retrieving` row, a token of its plain continuation (after the first step) that occurs nowhere in
    the `silent` rows' continuations, so that those rows never retrieve; first steps differ between rows when
    possible. Returns the triggers and, per retrieving row, the step at which its query token will be sampled."""
    banned = {t for r in silent for t in continuations[r]}
    triggers, steps = [], []
    for r in retrieving:
        options = [t for t in continuations[r][1:] if t not in banned and t not in triggers]
        if not options:
            raise AssertionError(f"no trigger separates row {r} from rows {silent}: {continuations}")
        fresh = [t for t in options if continuations[r].index(t) + 1 not in steps]
        triggers.append((fresh or options)[0])
    for r in retrieving:  # the query token follows the first occurrence of any trigger in the row
        steps.append(min(continuations[r].index(t) for t in triggers if t in continuations[r]) + 1)
    return triggers, steps


# ----------------------------------------------------------------------------------------------------------------
# A tiny entity linker ("link" mode), trained in a few seconds: it copies the text and writes the query token after
# each mention; the hidden state there must match the mention's entity document.
# ----------------------------------------------------------------------------------------------------------------
ENTITIES = {
    "paris": "paris is the capital city of france",
    "meridian": "meridian is a small city in the state of mississippi",
    "river": "the mississippi river is the largest river of the country",
    "apple": "an apple is a famous tree",
}
LINK_EXAMPLES = [
    ("the city paris and the city meridian", ["paris", "meridian"]),
    ("the river is north of paris", ["river", "paris"]),
    ("an apple in meridian", ["apple", "meridian"]),
]


def link_target(text: str, mentions: list[str], query_token: str, continuation_token: str) -> str:
    """`text` with `query_token continuation_token` after each mention (mentions in order of appearance)."""
    words, out, pending = text.split(), [], list(mentions)
    for word in words:
        out.append(word)
        if pending and word == pending[0]:
            out[-1] += query_token + continuation_token
            pending.pop(0)
    return " ".join(out)


class PipelineModelTester(OneGenModelTester):
    """The pipeline and index tests' setting of `OneGenModelTester`: a tokenizer with a pad token, and models in
    insert mode with the `TAGS` context tags (unless told otherwise)."""

    def __init__(self, arch="llama", **kwargs):
        super().__init__(arch, **{"with_pad": True, **kwargs})

    def get_model(self, **kwargs):
        return super().get_model(**{"context_tags": TAGS, **kwargs})


def link_prompt(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": "mark: " + text}], tokenize=False,
                                         add_generation_prompt=True)


def train_linker(seed: int = 0, steps: int = 200):
    """Train a tiny Llama OneGen model in link mode: LM loss on the marked copy (not on the token after the query
    token, which the pipeline forces) + InfoNCE between query-token and document-token states. A few seconds."""
    torch.manual_seed(seed)
    model, tokenizer = OneGenModelTester("llama", seed=seed, with_pad=True).get_model(
        query_token="[LK]", doc_token="[SE]", continuation_token="[C]", retrieval_mode="link",
    )
    config = model.config
    names = list(ENTITIES)
    rows, labels, positives = [], [], []
    for text, mentions in LINK_EXAMPLES:
        prompt = tokenizer(link_prompt(tokenizer, text), add_special_tokens=False).input_ids
        target = tokenizer(link_target(text, mentions, "[LK]", "[C]") + tokenizer.eos_token,
                           add_special_tokens=False).input_ids
        ids = prompt + target
        label = [-100] * len(prompt) + target
        for i in range(1, len(ids)):  # no loss on the token after the query token: the pipeline forces it
            if ids[i - 1] == config.query_token_id:
                label[i] = -100
        rows.append(ids)
        labels.append(label)
        positives.extend(names.index(m) for m in mentions)
    docs = [tokenizer(ENTITIES[n] + "[SE]", add_special_tokens=False).input_ids for n in names]
    batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
    label_tensor = torch.full_like(batch.input_ids, -100)
    for i, label in enumerate(labels):
        label_tensor[i, : len(label)] = torch.tensor(label)
    doc_batch = tokenizer.pad({"input_ids": docs}, return_tensors="pt")
    doc_last = doc_batch.attention_mask.sum(-1) - 1
    positives = torch.tensor(positives)

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        out = model(**batch, labels=label_tensor)
        queries = out.last_hidden_state[batch.input_ids == config.query_token_id]
        doc_states = model(**doc_batch).last_hidden_state[torch.arange(len(docs)), doc_last]
        sims = F.normalize(queries, dim=-1) @ F.normalize(doc_states, dim=-1).T
        loss = out.loss + F.cross_entropy(sims / 0.05, positives)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer
