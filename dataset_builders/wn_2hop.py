# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build WN-2Hop: multi-hop QA over WordNet 3.0, built the way 2WikiMultihopQA was (templates over relations,
glosses as evidence).

- Bridge: X --part holonym--> Y --part holonym--> Z (WordNet pointer `#p`), where Y's name appears in X's gloss and
  Z's name in Y's gloss. "The American state that contains Meridian is part of which geographical area?" -> Deep
  South; support = [X, Y]. The assistant writes X's name, retrieves X, writes Y's name (read from X), retrieves Y and
  answers with the name of Z read from Y. Split group: the bridge entity Y.
- Comparison: two named instances of the same type whose glosses give a birth year, paired without overlap.
  "Which rock star was born first, John Lennon or Jim Morrison?" support = [A, B]. Split group: the sorted pair.

Hard negatives of a hop: the other senses of the entity's name, then its co-hyponyms.

    python -m onegen.dataset_builders.wn_2hop --small                      # into ~/.cache/onegen/datasets/wn-2hop
    python -m onegen.dataset_builders.wn_2hop --output_dir data/wn-2hop --small
"""

import re
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from .common import BuildArguments, OneGenTokens, finish_build, logger, sample_negatives
from .debian_sources import locate_package
from .wn_source import WordNet, co_hyponyms, mentions_name


FULL_SIZES = {"train": 2_000, "dev": 300, "test": 1_000}
SMALL_SIZES = {"train": 1_000, "dev": 300, "test": 300}
_BIRTH = re.compile(r"\((?:born |b\. )?(\d{3,4})\s*-\s*\d{2,4}\)")


@dataclass
class WnTwoHopArguments(BuildArguments):
    negatives: int = field(default=6, metadata={"help": "Hard negatives per hop."})


def type_name(wordnet: WordNet, synset_id: str) -> str | None:
    """First lemma of the (instance) hypernym: 'American state' for Mississippi."""
    parents = wordnet.synsets[synset_id].related("@i") or wordnet.synsets[synset_id].related("@")
    return wordnet.synsets[parents[0]].lemmas[0] if parents else None


def hop_negatives(wordnet: WordNet, synset_id: str, name: str, limit: int) -> list[str]:
    pool = [s for s in wordnet.senses(name) if s != synset_id] + co_hyponyms(wordnet, synset_id)
    return sample_negatives(pool, {synset_id}, limit, seed_key=synset_id)


def bridge_items(wordnet: WordNet, tokens: OneGenTokens, limit: int) -> list[dict]:
    items = []
    for x in sorted(wordnet.synsets.values(), key=lambda s: s.id):
        for y_id in x.related("#p"):
            y = wordnet.synsets[y_id]
            y_name = mentions_name(x.definition, y.lemmas)
            if y_name is None:
                continue
            for z_id in y.related("#p"):
                z = wordnet.synsets[z_id]
                z_name = mentions_name(y.definition, z.lemmas)
                y_type, z_type = type_name(wordnet, y.id), type_name(wordnet, z.id)
                if z_id == x.id or z_name is None or not y_type or not z_type:
                    continue
                x_name = x.lemmas[0]
                hops = [(x_name, x.render(), [x.id], hop_negatives(wordnet, x.id, x_name, limit)),
                        (y_name, y.render(), [y.id], hop_negatives(wordnet, y.id, y_name, limit))]
                question = f"The {y_type} that contains {x_name} is part of which {z_type}?"
                items.append(_record(f"wn2hop_b_{x.id}_{y.id}_{z.id}", "bridge", question, z_name, z.lemmas,
                                     [x.id, y.id], y.id, hops, tokens))
    return items


def comparison_items(wordnet: WordNet, tokens: OneGenTokens, limit: int) -> list[dict]:
    by_type: dict[str, list[tuple[str, int]]] = {}
    for synset in sorted(wordnet.synsets.values(), key=lambda s: s.id):
        born = _BIRTH.search(synset.definition)
        if synset.pos == "n" and born and synset.related("@i"):
            by_type.setdefault(synset.related("@i")[0], []).append((synset.id, int(born.group(1))))
    items = []
    for type_id, people in sorted(by_type.items()):
        for (a_id, a_year), (b_id, b_year) in zip(people[0::2], people[1::2]):
            if a_year == b_year:
                continue
            a, b = wordnet.synsets[a_id], wordnet.synsets[b_id]
            a_name, b_name = (max(s.lemmas, key=lambda n: len(n.split())) for s in (a, b))
            first = a if a_year < b_year else b
            answer = a_name if first is a else b_name
            hops = [(a_name, a.render(), [a.id], hop_negatives(wordnet, a.id, a.lemmas[0], limit)),
                    (b_name, b.render(), [b.id], hop_negatives(wordnet, b.id, b.lemmas[0], limit))]
            question = f"Which {wordnet.synsets[type_id].lemmas[0]} was born first, {a_name} or {b_name}?"
            items.append(_record(f"wn2hop_c_{a.id}_{b.id}", "comparison", question, answer,
                                 [answer] + [n for n in first.lemmas if n != answer], [a.id, b.id],
                                 "|".join(sorted([a.id, b.id])), hops, tokens))
    return items


def _record(record_id, kind, question, answer, aliases, support, group, hops, tokens: OneGenTokens) -> dict:
    return {
        "id": record_id,
        "task": "wn-2hop",
        "query": question,
        "answers": list(dict.fromkeys([answer] + list(aliases))),
        "gold_doc_ids": list(support),
        "support_doc_ids": list(support),
        "group": group,
        "messages": [{"role": "user", "content": question}, tokens.insert_turn(hops, answer)],
        "meta": {"type": kind, "bridge_names": [hop[0] for hop in hops]},
    }


def build(args: WnTwoHopArguments) -> dict:
    tokens = OneGenTokens.from_args(args)
    source = locate_package("wordnet-base", args.wordnet_dir, args.debian_cache)
    logger.warning(f"Reading WordNet {source.version} from {source.data_dir}")
    wordnet = WordNet(source.data_dir)
    items = bridge_items(wordnet, tokens, args.negatives) + comparison_items(wordnet, tokens, args.negatives)
    return finish_build(args, "wn-2hop", items, wordnet, [source], (FULL_SIZES, SMALL_SIZES),
                        lambda r: r["gold_doc_ids"], tokens)


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(WnTwoHopArguments).parse_args_into_dataclasses(args=argv)
    build(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
