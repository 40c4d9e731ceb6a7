"""`mix_tasks`: one training folder from several task datasets, for one model serving all of them."""

import json

import pytest

from onegen.evaluation.task_mixture import mix_tasks


def write_dataset(folder, train_ids, documents, **tokens):
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"id": i, "messages": []}) + "\n" for i in train_ids))
    (folder / "db.jsonl").write_text("".join(json.dumps({"uid": uid, "messages": [{"role": "user", "content": text}]})
                                             + "\n" for uid, text in documents.items()))
    tokens = {"query_token": "[RQ]", "doc_token": "[RD]", "context_tags": [], "continuation_token": "", **tokens}
    (folder / "build_info.json").write_text(json.dumps({"tokens": tokens}))
    return folder


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_side_by_side_documents_once_and_the_tokens_of_both_modes(tmp_path):
    link = write_dataset(tmp_path / "link", ["a1", "a2"], {"d1": "one", "d2": "two"}, continuation_token="[CONT]")
    insert = write_dataset(tmp_path / "insert", ["b1"], {"d2": "two", "d3": "three"}, context_tags=["<p>", "</p>"])
    out = mix_tasks([link, insert], tmp_path / "mixed")
    assert [row["id"] for row in read(out / "train.jsonl")] == ["a1", "a2", "b1"]
    assert [row["uid"] for row in read(out / "db.jsonl")] == ["d1", "d2", "d3"]
    info = json.loads((out / "build_info.json").read_text())
    assert info["tokens"] == {"query_token": "[RQ]", "doc_token": "[RD]", "context_tags": ["<p>", "</p>"],
                              "continuation_token": "[CONT]"}
    assert info["counts"] == {"train": 3, "db": 3}
    written = (out / "train.jsonl").stat().st_mtime_ns
    assert mix_tasks([link, insert], out) == out and (out / "train.jsonl").stat().st_mtime_ns == written  # kept
    mix_tasks([insert], out)  # another mixture replaces it
    assert [row["id"] for row in read(out / "train.jsonl")] == ["b1"]
    (insert / "train.jsonl").write_text(json.dumps({"id": "b2", "messages": []}) + "\n")
    mix_tasks([insert], out)  # so does a changed dataset
    assert [row["id"] for row in read(out / "train.jsonl")] == ["b2"]


def test_disagreements_name_the_file(tmp_path):
    first = write_dataset(tmp_path / "first", ["a"], {"d1": "one"})
    other_text = write_dataset(tmp_path / "other_text", ["b"], {"d0": "zero", "d1": "uno"})
    with pytest.raises(ValueError, match=r"other_text/db\.jsonl, line 2: document 'd1' differs from the one in .*fir"):
        mix_tasks([first, other_text], tmp_path / "mixed")
    other_token = write_dataset(tmp_path / "other_token", ["c"], {"d1": "one"}, query_token="[Q]")
    with pytest.raises(ValueError, match=r"other_token/build_info\.json: tokens\.query_token is '\[Q\]'"):
        mix_tasks([first, other_token], tmp_path / "mixed")
