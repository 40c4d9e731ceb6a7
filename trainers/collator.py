# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""The OneGen data collator: generation rows and the unique documents they need, in one padded micro-batch."""

import random
from dataclasses import dataclass, field

import torch
from transformers.data.data_collator import DataCollatorMixin

from .data import parse_uid
from .tokenization import IGNORE_INDEX


def _vector_id(vector: tuple[int, int]) -> int:
    """The id of document vector `(corpus row, k)`, the same on every process (up to 65,536 vectors a document)."""
    doc, k = vector
    return doc << 16 | k


@dataclass
class OneGenDataCollator(DataCollatorMixin):
    r"""
    Collates tokenized training examples (see [`tokenize_example`]) with the documents their anchors need.

    For each example, up to `n_pos_per_sent` query-token occurrences that have a positive become anchors; each
    gets one positive (sampled among its acceptable uids) and `n_neg_per_pos` negatives: its hard negatives
    first, then, with `random_negatives`, random corpus vectors; never a positive of the batch. Sampling is seeded
    by `seed`, the epoch and the examples, so a resumed run draws what the uninterrupted one drew.

    Rows are `[examples..., unique documents...]`, right-padded to the longest row (dynamic padding); documents
    carry no labels, so the model never computes vocabulary logits for them. With `pack_documents` (the default),
    the documents, usually far shorter than the examples, are packed several to a row (first fit, longest first)
    with `position_ids` restarting at 0 for each: transformers' mask builders turn restarting positions into a
    block-diagonal causal mask when no `attention_mask` is passed, so each document sees only itself, exactly as in
    a row of its own, and a step computes a fraction of the padded tokens.

    Args:
        corpus_input_ids (`list[list[int]]`): token ids of each corpus document.
        corpus_vector_positions (`list[list[int]]`): token index of each document vector, per document.
        corpus_uids (`list[str]`): uid of each document.

    Returns (dict of tensors):
        input_ids, attention_mask (1 = a real token), labels: `(num_rows, max_len)`; with `pack_documents`, also
        position_ids `(num_rows, max_len)`, to be passed instead of the attention mask;
        retrieval_positions: `(num_anchors + num_doc_vectors, 2)` `(row, position)`, anchors first;
        positive_index: `(num_anchors,)` and negative_index: `(num_anchors, n_neg_per_pos)` (-1 = none), indices
        into the document vectors (rows of `retrieval_positions` after the anchors);
        document_ids: `(num_doc_vectors,)` an id of each document vector that is the same on every process
        (`corpus row << 16 | k`), and positive_ids: `(num_anchors, max_positives)` (-1 = none) the ids of every
        vector an anchor accepts (all vectors of all its acceptable documents), so that a loss that gathers
        documents across processes can drop duplicates and never count an acceptable document as a negative.
    """

    corpus_input_ids: list
    corpus_vector_positions: list
    corpus_uids: list
    pad_token_id: int
    n_pos_per_sent: int = 1
    n_neg_per_pos: int = 4
    random_negatives: bool = True
    seed: int = 42
    epoch: int = 0
    pack_documents: bool = True
    return_tensors: str = "pt"
    _uid_index: dict = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self._uid_index = {uid: i for i, uid in enumerate(self.corpus_uids)}

    def _vector(self, uid: str) -> tuple[int, int] | None:
        doc, k = parse_uid(uid)
        index = self._uid_index.get(doc)
        if index is None or k >= len(self.corpus_vector_positions[index]):
            return None
        return index, k

    def _document_vectors(self, uids: list[str]) -> set[tuple[int, int]]:
        """Every vector `(doc, k)` of every document named in `uids`."""
        docs = {self._uid_index.get(parse_uid(uid)[0]) for uid in uids} - {None}
        return {(doc, k) for doc in docs for k in range(len(self.corpus_vector_positions[doc]))}

    def _random_vector(self, rng: random.Random) -> tuple[int, int]:
        doc = rng.randrange(len(self.corpus_uids))
        return doc, rng.randrange(len(self.corpus_vector_positions[doc]))

    def _document_rows(self, documents: list[int], example_width: int) -> list[list[int]]:
        """Documents grouped into rows: one each, or packed first-fit (longest first) into rows no wider than the
        widest example or document, so packing never widens the batch."""
        if not self.pack_documents:
            return [[doc] for doc in documents]
        lengths = {doc: len(self.corpus_input_ids[doc]) for doc in documents}
        capacity = max([example_width, *lengths.values()])
        rows, room = [], []
        for doc in sorted(documents, key=lambda d: (-lengths[d], d)):
            row = next((i for i, free in enumerate(room) if free >= lengths[doc]), None)
            if row is None:
                rows.append([]), room.append(capacity)
                row = len(rows) - 1
            rows[row].append(doc)
            room[row] -= lengths[doc]
        return rows

    def torch_call(self, examples: list[dict]) -> dict:
        rng = random.Random(f"{self.seed}/{self.epoch}/{[e['example_id'] for e in examples]}")
        anchors, positives, accepted = [], [], []  # (row, position, hard uids); (doc, k); {(doc, k), ...}
        for row, example in enumerate(examples):
            candidates = [
                (position, slot)
                for position, slot in zip(example["anchor_positions"], example["anchor_slots"])
                if example["positives"][slot]
            ]
            for c in sorted(rng.sample(range(len(candidates)), min(self.n_pos_per_sent, len(candidates)))):
                position, slot = candidates[c]
                anchors.append((row, position, example["negatives"][slot]))
                positives.append(self._vector(rng.choice(example["positives"][slot])))
                accepted.append(self._document_vectors(example["positives"][slot]))

        batch_positives = set(positives)
        negatives = []
        for (_, _, hard), own in zip(anchors, accepted):
            # Never a negative: a positive of the batch, or any vector of a document this anchor accepts.
            excluded = batch_positives | own
            picked = []
            for uid in hard:
                vector = self._vector(uid)
                if len(picked) < self.n_neg_per_pos and vector is not None and vector not in excluded \
                        and vector not in picked:
                    picked.append(vector)
            attempts = 0
            while self.random_negatives and len(picked) < self.n_neg_per_pos and attempts < 20 * self.n_neg_per_pos:
                vector = self._random_vector(rng)
                attempts += 1
                if vector not in excluded and vector not in picked:
                    picked.append(vector)
            negatives.append(picked)

        # Unique documents (one row each, or packed several to a row); their vectors are addressed by (doc, k).
        documents = sorted({doc for doc, _ in batch_positives} | {doc for picked in negatives for doc, _ in picked})
        vectors = sorted(batch_positives | {v for picked in negatives for v in picked})
        vector_index = {v: i for i, v in enumerate(vectors)}

        # Each row is a list of segments (ids, labels); a vector's position is its document's offset in its row.
        rows = [[(e["input_ids"], e["labels"])] for e in examples]
        doc_at = {}  # doc -> (row, offset)
        for row, members in enumerate(self._document_rows(documents, max(len(e["input_ids"]) for e in examples))):
            offset = 0
            for doc in members:
                doc_at[doc] = (len(examples) + row, offset)
                offset += len(self.corpus_input_ids[doc])
            rows.append([(self.corpus_input_ids[d], [IGNORE_INDEX] * len(self.corpus_input_ids[d])) for d in members])
        width = max(sum(len(ids) for ids, _ in segments) for segments in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        label_tensor = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        position_ids = torch.arange(width).repeat(len(rows), 1)
        for i, segments in enumerate(rows):
            start = 0
            for ids, segment_labels in segments:
                end = start + len(ids)
                input_ids[i, start:end] = torch.tensor(ids)
                label_tensor[i, start:end] = torch.tensor(segment_labels)
                attention_mask[i, start:end] = 1
                position_ids[i, start:] = torch.arange(width - start)  # padding continues the last segment
                start = end

        positions = [(row, position) for row, position, _ in anchors]
        positions += [(doc_at[doc][0], doc_at[doc][1] + self.corpus_vector_positions[doc][k]) for doc, k in vectors]
        negative_index = torch.full((len(anchors), self.n_neg_per_pos), -1, dtype=torch.long)
        for i, picked in enumerate(negatives):
            negative_index[i, : len(picked)] = torch.tensor([vector_index[v] for v in picked], dtype=torch.long)
        width = max([len(own) for own in accepted], default=0)
        positive_ids = torch.full((len(anchors), width), -1, dtype=torch.long)
        for i, own in enumerate(accepted):
            positive_ids[i, : len(own)] = torch.tensor(sorted(map(_vector_id, own)), dtype=torch.long)
        return {
            "document_ids": torch.tensor([_vector_id(v) for v in vectors], dtype=torch.long),
            "positive_ids": positive_ids,
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            **({"position_ids": position_ids} if self.pack_documents else {}),
            "labels": label_tensor,
            "retrieval_positions": torch.tensor(positions, dtype=torch.long).reshape(-1, 2),
            "positive_index": torch.tensor([vector_index[v] for v in positives], dtype=torch.long),
            "negative_index": negative_index,
        }
