# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Contrastive losses on retrieval-token vectors. Both use cosine similarity (per-vector L2 normalisation; the
original BPR normalised along the sequence axis, a bug not reproduced here) divided by a temperature. Both score in
float32, also under bf16/fp16 autocast (see [`scored_in_float32`])."""

import functools

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def all_gather_ids(ids: torch.Tensor) -> torch.Tensor:
    """Concatenate the integer ids `(n_local,)` of all processes, each process's padded with -1 to the largest
    count (the layout of [`all_gather_with_grad`])."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return ids
    sizes = [torch.zeros(1, dtype=torch.long, device=ids.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([ids.shape[0]], device=ids.device))
    padded = int(max(size.item() for size in sizes))
    parts = [torch.empty(padded, dtype=ids.dtype, device=ids.device) for _ in sizes]
    dist.all_gather(parts, F.pad(ids, (0, padded - ids.shape[0]), value=-1))
    return torch.cat(parts)


def all_gather_with_grad(tensor: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Concatenate `tensor` (`(n_local, dim)`, n_local may differ per process) over all processes, keeping the
    gradient to the local part (`torch.distributed.nn.functional.all_gather` is autograd-aware).

    Returns:
        `(gathered, offset, valid)`: `gathered` is `(world_size * padded, dim)`, each process's rows padded to the
        largest count; this process's rows start at `offset`; `valid` `(world_size * padded,)` marks real rows.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor, 0, torch.ones(tensor.shape[0], dtype=torch.bool, device=tensor.device)
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    padded = int(max(size.item() for size in sizes))
    local = F.pad(tensor, (0, 0, 0, padded - tensor.shape[0]))
    gathered = torch.cat(all_gather(local), dim=0)
    valid = torch.cat([torch.arange(padded, device=tensor.device) < size for size in sizes])
    return gathered, dist.get_rank() * padded, valid


def scored_in_float32(forward):
    """Run a loss's `forward(self, anchors, documents, ...)` in float32 with autocast off. Autocast would compute the
    cosine scores in bf16, whose resolution near 1 is 2**-8: close documents tie, and after the temperature the
    logits move in steps of 0.2 (tau 0.02), which is exactly the ranking a retriever has to learn."""

    @functools.wraps(forward)
    def wrapper(self, anchors, documents, *args, **kwargs):
        with torch.autocast(device_type=anchors.device.type, enabled=False):
            return forward(self, anchors.float(), documents.float(), *args, **kwargs)

    return wrapper


class BPRLoss(nn.Module):
    r"""
    Bayesian personalised ranking (pairwise) loss, OneGen's default:

    $$\mathcal{L} = \frac{1}{|\mathcal{P}|} \sum_{(i, j) \in \mathcal{P}} -\log \sigma\!\left(\frac{\cos(a_i, p_i) -
    \cos(a_i, n_{ij})}{\tau}\right)$$

    over every anchor $a_i$ and each of its own negatives $n_{ij}$ (no in-batch negatives).

    Args:
        temperature (`float`): $\tau$.

    Inputs:
        anchors: `(num_anchors, dim)`; documents: `(num_documents, dim)`;
        positive_index: `(num_anchors,)` rows of `documents`; negative_index: `(num_anchors, num_negatives)` rows of
        `documents`, -1 where an anchor has fewer negatives.

    Returns:
        `(loss, accuracy)`: accuracy = fraction of anchors whose positive scores above all their negatives.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    @scored_in_float32
    def forward(self, anchors, documents, positive_index, negative_index):
        anchors, documents = F.normalize(anchors, dim=-1), F.normalize(documents, dim=-1)
        positive = (anchors * documents[positive_index]).sum(-1)  # (A,)
        valid = negative_index >= 0
        negative = torch.einsum("ad,and->an", anchors, documents[negative_index.clamp(min=0)])  # (A, N)
        margins = (positive[:, None] - negative) / self.temperature
        if not valid.any():
            return anchors.sum() * 0.0, torch.ones((), device=anchors.device)
        loss = F.softplus(-margins)[valid].mean()  # softplus(-x) = -log(sigmoid(x)), stable
        accuracy = ((margins > 0) | ~valid).all(dim=-1).float().mean()
        return loss, accuracy


class InfoNCELoss(nn.Module):
    r"""
    InfoNCE with in-batch negatives:

    $$\mathcal{L} = -\frac{1}{|A|} \sum_i \log \frac{\exp(\cos(a_i, p_i)/\tau)}{\sum_{d \in D} \exp(\cos(a_i, d)/\tau)}$$

    where $D$ is every document vector of the batch (all positives and negatives), and with
    `gather_across_devices=True` of every process's batch (autograd-aware all-gather), so the loss of
    `n` processes with batch `b` equals the one-process loss on batch `n * b`.

    Documents are told apart by `document_ids`: a document that appears more than once (in two processes'
    batches) counts once, and no document the anchor accepts (`positive_ids`: every vector of every acceptable
    document) counts as its negative. Without ids, every row is a distinct document and only the target is
    positive.

    Args:
        temperature (`float`): $\tau$.
        gather_across_devices (`bool`): gather the documents of all processes.

    Inputs and returns: as [`BPRLoss`]; `negative_index` is not needed (every other document is a negative), and
    accuracy = fraction of anchors whose positive is the top-scoring document. Optional `document_ids`
    `(num_documents,)` and `positive_ids` `(num_anchors, max_positives)` (-1 = none), as the collator returns them.
    """

    def __init__(self, temperature: float = 0.05, gather_across_devices: bool = False):
        super().__init__()
        self.temperature = temperature
        self.gather_across_devices = gather_across_devices

    @scored_in_float32
    def forward(self, anchors, documents, positive_index, negative_index=None, document_ids=None, positive_ids=None):
        anchors, documents = F.normalize(anchors, dim=-1), F.normalize(documents, dim=-1)
        offset, valid = 0, torch.ones(documents.shape[0], dtype=torch.bool, device=documents.device)
        local_ids = document_ids
        if self.gather_across_devices:
            documents, offset, valid = all_gather_with_grad(documents)
            document_ids = all_gather_ids(document_ids) if document_ids is not None else None
        if anchors.shape[0] == 0:
            return documents.sum() * 0.0, torch.ones((), device=documents.device)
        scores = anchors @ documents.T / self.temperature  # (A, D)
        targets = positive_index + offset
        drop = ~valid[None, :].expand_as(scores)  # padding rows of smaller batches
        if document_ids is not None:
            # Each document once (its first row), and the anchor's target moved to that row.
            same = document_ids[:, None] == document_ids[None, :]
            duplicate = torch.tril(same & valid[:, None] & valid[None, :], diagonal=-1).any(dim=1)
            first = valid & ~duplicate
            target_ids = local_ids[positive_index]
            targets = ((document_ids[None, :] == target_ids[:, None]) & first[None, :]).long().argmax(dim=-1)
            drop = drop | ~first[None, :]
            if positive_ids is not None:  # other acceptable documents are not negatives
                accepted = (document_ids[None, :, None] == positive_ids[:, None, :]).any(dim=-1)
                columns = torch.arange(scores.shape[1], device=scores.device)
                drop = drop | (accepted & (columns[None, :] != targets[:, None]))
        scores = scores.masked_fill(drop, float("-inf"))
        loss = F.cross_entropy(scores, targets)
        accuracy = (scores.argmax(dim=-1) == targets).float().mean()
        return loss, accuracy
