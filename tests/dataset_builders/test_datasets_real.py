"""Real builds of WN-EL, RD-1913 and WN-2Hop from Debian's wordnet-base and dict-gcide, at a small size. The builders
fetch and unpack the packages themselves (apt-get download + dpkg-deb, cached under ~/.cache/onegen/debian), exactly
as they do for a user; each folder is then checked and loaded back with `datasets.load_dataset`."""

import json
import re

import pytest
from datasets import load_dataset

from onegen.dataset_builders import rd_1913 as build_rd_1913  # noqa: E402
from onegen.dataset_builders import wn_2hop as build_wn_2hop  # noqa: E402
from onegen.dataset_builders import wn_el as build_wn_el  # noqa: E402
from onegen.dataset_builders.common import SPLITS, file_checksums, split_of  # noqa: E402


pytestmark = pytest.mark.slow
SIZE = ["--max_train", "40", "--max_dev", "15", "--max_test", "15", "--kb_size", "1500"]
BUILDERS = {"wn-el": build_wn_el, "rd-1913": build_rd_1913, "wn-2hop": build_wn_2hop}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    for task, module in BUILDERS.items():
        assert module.main(["--output_dir", str(root / task), *SIZE]) == 0
    return root


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("task", list(BUILDERS))
def test_folder_is_consistent_onegen_data(built, task):
    folder = built / task
    info = json.loads((folder / "build_info.json").read_text())
    kb = {d["doc_id"]: d for d in _jsonl(folder / "kb.jsonl")}
    assert len(kb) == info["counts"]["kb"] == 1500
    assert info["sha256"] == file_checksums(folder)
    assert info["sources"][0]["version"] and info["sources"][-1]["package"] == "wordnet-base"

    db = _jsonl(folder / "db.jsonl")
    corpus = {row["uid"] for row in db}
    assert [row["uid"] for row in db if row["uid"] in kb] == list(kb) and len(db) == info["counts"]["corpus"]
    for row in db:
        assert "-" not in row["uid"]
        user, assistant = row["messages"]
        if row["uid"] in kb:
            assert user["content"] + assistant["content"] == kb[row["uid"]]["text"] + "[RD]"
        assert "[RD]" in assistant["content"] and "[RD]" not in user["content"]

    groups = {}
    for split in SPLITS:
        rows = _jsonl(folder / "queries" / f"{split}.jsonl")
        assert 0 < len(rows) <= {"train": 40, "dev": 15, "test": 15}[split]
        for row in rows:
            assert split_of(row["group"]) == split
            groups.setdefault(row["group"], set()).add(split)
            # Evaluation indexes the KB: dev and test documents are in it; train's are at least in the corpus.
            documents = corpus if split == "train" else set(kb)
            assert set(row["gold_doc_ids"]) <= documents and set(row.get("candidates", [])) <= documents
            assistant = row["messages"][-1]
            n_queries = assistant["content"].count("[RQ]")
            assert n_queries == len(assistant["positive"]) == len(assistant["negative"]) >= 1
            for positive, negative in zip(assistant["positive"], assistant["negative"]):
                assert positive and set(positive) <= documents
                assert set(negative) <= corpus and not set(negative) & set(positive)
    assert all(len(splits) == 1 for splits in groups.values())  # a group never spans two splits
    train = _jsonl(folder / "train.jsonl")
    assert [r["id"] for r in train] == [r["id"] for r in _jsonl(folder / "queries" / "train.jsonl")]


def test_a_small_kb_cuts_what_is_indexed_not_what_is_trained_on(tmp_path):
    folder = tmp_path / "wn-el"
    assert build_wn_el.main(["--output_dir", str(folder), "--max_train", "40", "--max_dev", "5", "--max_test", "5",
                             "--kb_size", "150"]) == 0
    info = json.loads((folder / "build_info.json").read_text())
    assert info["counts"]["kb"] == 150 and info["counts"]["queries_train"] == 40
    kb = {d["doc_id"] for d in _jsonl(folder / "kb.jsonl")}
    corpus = {row["uid"] for row in _jsonl(folder / "db.jsonl")}
    assert kb < corpus and info["counts"]["corpus"] == len(corpus)
    train = _jsonl(folder / "queries" / "train.jsonl")
    assert all(set(r["gold_doc_ids"] + r["candidates"]) <= corpus for r in train)
    assert any(not set(r["gold_doc_ids"]) <= kb for r in train)  # some train queries only fit the corpus


def test_wn_el_mentions_and_candidates(built):
    for row in _jsonl(built / "wn-el" / "queries" / "dev.jsonl"):
        mention = row["mention"]
        assert row["query"][mention["start"] : mention["end"]] == mention["text"]
        assert row["gold_doc_ids"][0] in row["candidates"] and len(row["candidates"]) >= 2
        # The continuation token after the query token: what follows a link (the end of the turn) is trained.
        assert row["messages"][-1]["content"] == mention["text"] + "[RQ][CONT]"


def test_rd_1913_queries_hide_the_answer(built):
    for row in _jsonl(built / "rd-1913" / "queries" / "dev.jsonl"):
        (answer,) = row["answers"]
        assert not re.search(r"(?<![\w-])" + re.escape(answer) + r"(?![\w-])", row["query"], re.I)
        assert row["messages"][-1]["content"].endswith("</paragraph>" + answer)


def test_wn_2hop_has_both_hops(built):
    rows = _jsonl(built / "wn-2hop" / "queries" / "train.jsonl")
    assert {r["meta"]["type"] for r in rows} == {"bridge", "comparison"}
    for row in rows:
        assert len(row["support_doc_ids"]) == 2
        assert [p[0] for p in row["messages"][-1]["positive"]] == row["support_doc_ids"]


def test_card_and_load_dataset(built):
    folder = built / "rd-1913"
    card = (folder / "README.md").read_text()
    assert "license: gpl-2.0" in card and "WordNet 3.0 Copyright 2006 by Princeton University" in card
    assert "GNU General Public License" in card and "onegen-v0:" in card
    assert all(digest in card for digest in file_checksums(folder).values())
    queries = load_dataset(str(folder), "queries")
    assert set(queries) == set(SPLITS) and queries["dev"].num_rows == 15
    kb = load_dataset(str(folder), "kb", split="train")
    assert kb.num_rows == 1500 and kb.column_names == ["doc_id", "title", "text"]
    train = load_dataset(str(folder), "onegen_train", split="train")
    assert train[0]["messages"][1]["positive"][0]


def test_rebuild_is_byte_identical(built, tmp_path):
    assert build_wn_2hop.main(["--output_dir", str(tmp_path / "again"), *SIZE]) == 0
    assert file_checksums(tmp_path / "again") == file_checksums(built / "wn-2hop")
