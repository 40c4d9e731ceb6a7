"""Small dataset folders for the evaluation and Hub tests, written with the builders' own writer and card."""

from pathlib import Path

from onegen.dataset_builders.common import OneGenTokens, write_dataset
from onegen.dataset_builders.dataset_card import write_dataset_card


WORDS = ("capital city state river country mountain president born wrote book song film team plays located "
         "famous largest small north south east west lake paris france meridian mississippi apple orange banana "
         "car house tree dog cat").split()
TOKENS = OneGenTokens()


def _kb(n=24):
    return [{"doc_id": f"n{i:08d}", "title": WORDS[i % len(WORDS)],
             "text": f"{WORDS[i % len(WORDS)]}: a {WORDS[(3 * i + 1) % len(WORDS)]} of the "
                     f"{WORDS[(5 * i + 2) % len(WORDS)]}"}
            for i in range(n)]


def _records(task: str, kb: list[dict], n: int = 12) -> list[dict]:
    records = []
    for i in range(n):
        gold, other = kb[i]["doc_id"], kb[(i + 7) % len(kb)]["doc_id"]
        word = kb[i]["title"]
        query = f"the {word} {WORDS[(i * 3) % len(WORDS)]} was {WORDS[(i * 5) % len(WORDS)]}"
        record = {"id": f"q{i}", "task": task, "query": query, "answers": [word], "gold_doc_ids": [gold],
                  "group": f"g{i}"}
        if task == "wn-el":
            record["mention"] = {"start": 4, "end": 4 + len(word), "text": word}
            record["candidates"] = [other, gold, kb[(i + 3) % len(kb)]["doc_id"]]
            assistant = TOKENS.link_turn(word, [gold], [other])
        elif task == "rd-1913":
            assistant = TOKENS.insert_turn([("", kb[i]["text"], [gold], [other])], word)
        else:
            second = kb[(i + 1) % len(kb)]
            record["gold_doc_ids"] = record["support_doc_ids"] = [gold, second["doc_id"]]
            hops = [(word, kb[i]["text"], [gold], [other]), (second["title"], second["text"], [second["doc_id"]], [])]
            assistant = TOKENS.insert_turn(hops, second["title"])
        record["messages"] = [{"role": "user", "content": query}, assistant]
        record["meta"] = {"type": "bridge"} if task == "wn-2hop" else {}
        records.append(record)
    return records


def make_dataset(root: Path, task: str) -> Path:
    kb = _kb()
    splits = {"train": [], "dev": _records(task, kb), "test": []}  # every record in dev, whatever its hash bucket
    info = {"small": True, "sources": [{"package": "wordnet-base", "version": "fixture", "origin": "test"}]}
    write_dataset(root / task, task, kb, splits, TOKENS, info, write_dataset_card)
    return root / task
