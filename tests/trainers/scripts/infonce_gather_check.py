"""Run under `accelerate launch --num_processes 2 --cpu`: the InfoNCE loss (and gradient) of 2 processes x batch b
with gather_across_devices equals the 1-process loss on the 2b items. Prints a JSON line on rank 0."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import PartialState


sys.path.insert(0, str(Path(__file__).parents[2]))  # tests/: the helpers
from onegen_model_tester import OneGenModelTester  # noqa: E402
from synthetic import corpus_records, make_items, train_records  # noqa: E402

from onegen.trainers import InfoNCELoss, OneGenDataCollator, load_corpus, load_train_examples  # noqa: E402
from onegen.trainers.tokenization import tokenize_document, tokenize_example  # noqa: E402


def main():
    PartialState()  # joins the gloo process group that `accelerate launch` set up
    rank, world_size = dist.get_rank(), dist.get_world_size()
    assert world_size == 2, world_size
    torch.set_num_threads(1)
    model, tokenizer = OneGenModelTester("llama", seed=7).get_model()  # same weights everywhere
    items = make_items(8, seed=8)
    corpus = load_corpus(corpus_records(items), "[RD]")
    corpus = corpus.map(lambda r: tokenize_document(r["messages"], tokenizer, model.config))
    # Each example's hard negative is a positive of the other process's half: after the gather, those documents
    # sit on both processes and must count once, as in the one-process batch, where the collator dedups them.
    records = train_records(items)
    for i, record in enumerate(records):
        record["messages"][-1]["negative"] = [[items[(i + len(items) // 2) % len(items)]["uid"]]]
    examples = load_train_examples(records, "[RQ]", corpus)
    examples = examples.map(lambda r: tokenize_example(r["messages"], tokenizer, model.config))
    collator = OneGenDataCollator(corpus["input_ids"], corpus["vector_positions"], corpus["uid"],
                                  tokenizer.pad_token_id, n_neg_per_pos=1, random_negatives=False)

    def loss_on(rows, gather):
        batch = collator([examples[i] for i in rows])
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    retrieval_positions=batch["retrieval_positions"], return_logits=False)
        anchors = batch["positive_index"].shape[0]
        embeddings = out.retrieval_embeddings
        return InfoNCELoss(0.05, gather_across_devices=gather)(
            embeddings[:anchors], embeddings[anchors:], batch["positive_index"],
            document_ids=batch["document_ids"], positive_ids=batch["positive_ids"])[0]

    half = len(items) // world_size
    local = loss_on(range(rank * half, (rank + 1) * half), gather=True)
    local.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    dist.all_reduce(grads)
    grads /= world_size  # what DDP does with the gradients of the per-process means
    losses = [torch.zeros(1) for _ in range(world_size)]
    dist.all_gather(losses, local.detach().reshape(1))
    if rank == 0:
        model.zero_grad()
        full = loss_on(range(len(items)), gather=False)
        full.backward()
        full_grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        print(json.dumps({"distributed": torch.cat(losses).mean().item(), "single": full.item(),
                          "grad_max_diff": (grads - full_grads).abs().max().item(),
                          "grad_max": full_grads.abs().max().item()}))
    dist.barrier()
    dist.destroy_process_group()  # explicitly: left to interpreter teardown, a gloo rank can abort at exit


if __name__ == "__main__":
    main()
