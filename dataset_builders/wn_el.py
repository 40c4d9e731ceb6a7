# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build WN-EL: entity linking as word-sense linking over WordNet 3.0 (Debian `wordnet-base`).

A query is one of WordNet's own example sentences; the mention is the synset's lemma as it appears there (regular
inflections plus the `.exc` irregular forms); the entity is the synset. Only mentions that are ambiguous within
their part of speech are kept. Candidates are the lemma's same-pos senses from WordNet's index files (in sense
order, so the first is the most-frequent-sense baseline); hard negatives are the other senses of the lemma.
Split group: the lemma. The KB text is `lemma1, lemma2: definition`, never the examples (they are the queries).

    python -m onegen.dataset_builders.wn_el --small                      # into ~/.cache/onegen/datasets/wn-el
    python -m onegen.dataset_builders.wn_el --output_dir data/wn-el --small
    python -m onegen.dataset_builders.wn_el --output_dir data/wn-el            # full: 117,659-document KB
"""

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from .common import BuildArguments, OneGenTokens, finish_build, logger, sample_negatives
from .debian_sources import locate_package
from .wn_source import WordNet, find_mention


FULL_SIZES = {"train": 10_000, "dev": 500, "test": 2_000}
# Small: 4,000 train queries (the 10k KB holds the documents of 1,685 of them, the others' are in the training
# corpus only), enough for `onegen demo --max_steps 480` without repeating a query.
SMALL_SIZES = {"train": 4_000, "dev": 500, "test": 500}
PROMPT = 'Link "{mention}" to its WordNet sense in this sentence: {sentence}'


@dataclass
class WnElArguments(BuildArguments):
    negatives: int = field(default=8, metadata={"help": "Hard negatives per query (other senses of the lemma)."})
    # The model must learn what follows a link (here: the end of the turn), but the token right after the query
    # token is never trained (its hidden state is the query vector): the pipeline forces this token there instead.
    continuation_token: str = field(
        default="[CONT]", metadata={"help": "Token written (and forced by the pipeline) after the query token."}
    )


def collect_items(wordnet: WordNet, tokens: OneGenTokens, max_negatives: int) -> list[dict]:
    """Every (example sentence, mention, synset) item whose lemma has at least two same-pos senses."""
    items = []
    for synset in sorted(wordnet.synsets.values(), key=lambda s: s.id):
        for i, sentence in enumerate(synset.examples):
            found = find_mention(sentence, synset.lemmas, synset.pos, wordnet.exceptions[synset.pos])
            if found is None:
                continue
            start, end, lemma = found
            candidates = wordnet.senses(lemma, synset.pos)
            if synset.id not in candidates or len(candidates) < 2:
                continue
            mention = sentence[start:end]
            others = candidates + wordnet.senses(lemma)  # same-pos senses first, then the other parts of speech
            negatives = sample_negatives(others, {synset.id}, max_negatives, seed_key=f"{synset.id}:{i}")
            items.append({
                "id": f"wnel_{synset.id}_{i}",
                "task": "wn-el",
                "query": sentence,
                "mention": {"start": start, "end": end, "text": mention},
                "answers": list(synset.lemmas),
                "gold_doc_ids": [synset.id],
                "candidates": candidates,
                "group": lemma.lower(),
                "messages": [
                    {"role": "user", "content": PROMPT.format(mention=mention, sentence=sentence)},
                    tokens.link_turn(mention, [synset.id], negatives),
                ],
                "meta": {"lemma": lemma, "pos": synset.pos, "num_candidates": len(candidates)},
            })
    return items


def build(args: WnElArguments) -> dict:
    tokens = OneGenTokens.from_args(args)
    source = locate_package("wordnet-base", args.wordnet_dir, args.debian_cache)
    logger.warning(f"Reading WordNet {source.version} from {source.data_dir}")
    wordnet = WordNet(source.data_dir)
    items = collect_items(wordnet, tokens, args.negatives)
    return finish_build(args, "wn-el", items, wordnet, [source], (FULL_SIZES, SMALL_SIZES),
                        lambda r: r["gold_doc_ids"] + r["candidates"], tokens)


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(WnElArguments).parse_args_into_dataclasses(args=argv)
    build(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
