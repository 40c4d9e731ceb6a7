"""Training throughput of OneGenTrainer against a plain cross-entropy Trainer and the original OneGen's style.

All three run in this process on the same model, the same examples and the same batches:

- `onegen`:   OneGenTrainer (one forward over generation rows + unique documents, dynamic padding, vocabulary
              logits only at labelled positions, hybrid loss);
- `plain-ce`: transformers.Trainer doing cross-entropy only on the same generation rows (dynamic padding, full
              logits: what an ordinary SFT step costs);
- `original`: the original OneGen collation: every row (generation + documents) padded to `max_length`, full
              vocabulary logits for all rows including documents, plus the same contrastive loss.

Two throughputs, the first steps being warm-up and not timed:
- tokens/s: real (non-padding) tokens forwarded per second, documents included (what TRL-style trainers log as
  `num_tokens`); the issue's targets are on this one (onegen >= 0.85x plain-ce, >= 2x original);
- examples/s: training conversations per second, i.e. the wall-clock price of also training retrieval, which
  grows with the documents each example brings (1 positive + `n_neg_per_pos` negatives).

    python benchmarks/train_throughput.py              # SmolLM2-135M-Instruct (embedded), bf16 autocast off
    python benchmarks/train_throughput.py --tiny       # a tiny random Llama, seconds
"""

import argparse
import random
import time

import torch
from transformers import Trainer, TrainerCallback

from onegen import OneGenForCausalLM, load_default_base_model
from onegen.trainers import OneGenTrainer, OneGenTrainingConfig
from onegen.trainers.tokenization import IGNORE_INDEX


WORDS = ("river city state mountain king queen author book song film team player country capital lake island "
         "ocean desert forest bridge tower castle church museum school garden market harbor valley village").split()


def make_data(num_items: int, doc_words: int, question_words: int, seed: int = 0):
    rng = random.Random(seed)
    corpus, train = [], []
    for i in range(num_items):
        doc = " ".join(rng.choice(WORDS) for _ in range(doc_words))
        corpus.append({"uid": f"d{i}", "messages": [{"role": "user", "content": "Describe the entity."},
                                                    {"role": "assistant", "content": f" {doc}[RD]"}]})
    for i in range(num_items):
        question = " ".join(rng.choice(WORDS) for _ in range(question_words))
        answer = " ".join(rng.choice(WORDS) for _ in range(question_words // 2))
        negatives = [f"d{j}" for j in rng.sample(range(num_items), 3) if j != i][:2]
        train.append({"messages": [{"role": "user", "content": question},
                                   {"role": "assistant", "content": f"Let me look it up[RQ] The answer is {answer}.",
                                    "positive": [f"d{i}"], "negative": [negatives]}]})
    return corpus, train


class StepTimer(TrainerCallback):
    """Wall time and generation-row tokens of each step after `warmup` steps."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self._start = warmup, [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.warmup:
            self.times.append(time.perf_counter() - self._start)


class CountingCollator:
    """Wraps a collator and counts the real (non-padding) tokens of each batch it emits."""

    def __init__(self, collator):
        self.collator, self.tokens = collator, []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


class PlainCETrainer(Trainer):
    """Cross-entropy only, generation rows only, full logits (an ordinary SFT step)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rows = inputs["num_generation_rows"]
        out = model(input_ids=inputs["input_ids"][:rows], attention_mask=inputs["attention_mask"][:rows],
                    labels=inputs["labels"][:rows], use_cache=False)
        return out.loss


class OriginalStyleTrainer(OneGenTrainer):
    """The original's collation: every row padded to max_length, full-vocabulary logits for every row."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        num_anchors = inputs["positive_index"].shape[0]
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=inputs["labels"],
                    retrieval_positions=inputs["retrieval_positions"], return_logits=True, use_cache=False)
        embeddings = out.retrieval_embeddings.float()
        loss_ret, _ = self.retrieval_loss(embeddings[:num_anchors], embeddings[num_anchors:],
                                          inputs["positive_index"], inputs["negative_index"])
        return out.loss + loss_ret


def pad_to(batch, max_length, pad_token_id):
    width = batch["input_ids"].shape[1]
    if width < max_length:
        extra = max_length - width
        batch["input_ids"] = torch.nn.functional.pad(batch["input_ids"], (0, extra), value=pad_token_id)
        batch["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, extra), value=0)
        batch["labels"] = torch.nn.functional.pad(batch["labels"], (0, extra), value=IGNORE_INDEX)
    return batch


def run(kind, model, tokenizer, corpus, train, args_kwargs, warmup):
    model = model.train()
    args = OneGenTrainingConfig(**args_kwargs)
    trainer_class = {"onegen": OneGenTrainer, "plain-ce": OneGenTrainer, "original": OriginalStyleTrainer}[kind]
    trainer = trainer_class(model, args, train_dataset=train, corpus=corpus, processing_class=tokenizer)
    collator = trainer.data_collator
    if kind == "plain-ce":
        def plain_collate(examples):
            batch = collator(examples)
            rows = len(examples)
            width = int(batch["attention_mask"][:rows].sum(1).max())
            return {"input_ids": batch["input_ids"][:rows, :width], "attention_mask": batch["attention_mask"][:rows, :width],
                    "labels": batch["labels"][:rows, :width], "num_generation_rows": rows}
        counting = CountingCollator(plain_collate)
        trainer = PlainCETrainer(model=model, args=args, train_dataset=trainer.train_dataset,
                                 data_collator=counting, processing_class=tokenizer)
    elif kind == "original":
        counting = CountingCollator(lambda ex: pad_to(collator(ex), args.max_length, tokenizer.pad_token_id))
        trainer.data_collator = counting
    else:
        counting = CountingCollator(collator)
        trainer.data_collator = counting
    timer = StepTimer(warmup)
    trainer.add_callback(timer)
    trainer.train()
    # The dataloader may prefetch: step i consumed batch i.
    tokens = sum(counting.tokens[warmup : warmup + len(timer.times)])
    seconds = sum(timer.times)
    return tokens / seconds, len(timer.times) * args.per_device_train_batch_size / seconds, seconds / len(timer.times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random Llama instead of SmolLM2-135M")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--max_length", type=int, default=512, help="the original style pads every row to this")
    parser.add_argument("--threads", type=int, default=1)
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)

    base, tokenizer = load_default_base_model()
    if cli.tiny:  # a small random Llama on the real tokenizer: checks the script, not the claims
        from transformers import AutoModelForCausalLM, LlamaConfig

        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_config(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True))
    model = OneGenForCausalLM.from_base_model(base, tokenizer)
    steps = cli.steps + cli.warmup
    corpus, train = make_data(steps * cli.batch_size, doc_words=60, question_words=40)
    args_kwargs = dict(output_dir="/tmp/onegen-bench", per_device_train_batch_size=cli.batch_size, max_steps=steps,
                       n_neg_per_pos=2, save_strategy="no", report_to=[], use_cpu=True, logging_steps=1000,
                       max_length=cli.max_length, disable_tqdm=True, seed=0, learning_rate=1e-5)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    results = {}
    for kind in ("plain-ce", "onegen", "original"):
        model.load_state_dict(initial)  # same weights for every run
        results[kind] = run(kind, model, tokenizer, corpus, train, args_kwargs, cli.warmup)
        tokens, examples, step = results[kind]
        print(f"{kind:<10} {tokens:9.1f} tokens/s  {examples:7.2f} examples/s  {step:7.3f} s/step", flush=True)
    for name, index in (("tokens/s", 0), ("examples/s", 1)):
        onegen, plain, original = (results[k][index] for k in ("onegen", "plain-ce", "original"))
        print(f"{name:<11} onegen/plain-ce = {onegen / plain:.2f}x   onegen/original = {onegen / original:.2f}x")
    print("targets (tokens/s): onegen >= 0.85x plain-ce, >= 2x original")


if __name__ == "__main__":
    main()
