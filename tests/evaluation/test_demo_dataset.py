"""`onegen demo` keeps a cached dataset folder only when the current builders wrote it: a folder of an older builder
format (for WN-EL, format 1 dropped the train queries whose documents did not fit the 10k KB) is rebuilt."""

import json

import pytest

from onegen.dataset_builders.common import BUILD_FORMAT
from onegen.evaluation.demo import prepare_dataset


def _cached_folder(cache, build_info: dict):
    folder = cache / "datasets" / "wn-el"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("")
    (folder / "build_info.json").write_text(json.dumps(build_info))
    return folder


def test_a_dataset_of_the_current_format_is_kept(tmp_path, capsys):
    folder = _cached_folder(tmp_path, {"format": BUILD_FORMAT})
    assert prepare_dataset("wn-el", tmp_path) == folder
    assert f"cached in {folder}" in capsys.readouterr().out
    assert (folder / "train.jsonl").read_text() == ""


@pytest.mark.slow
def test_a_dataset_of_an_older_builder_is_rebuilt(tmp_path, capsys):
    folder = _cached_folder(tmp_path, {"task": "wn-el", "counts": {"queries_train": 1302}})  # no format: 1
    assert prepare_dataset("wn-el", tmp_path) == folder
    assert f"written by an older builder (format 1, now {BUILD_FORMAT})" in capsys.readouterr().out
    info = json.loads((folder / "build_info.json").read_text())
    assert info["format"] == BUILD_FORMAT and info["counts"]["queries_train"] == 4000
    assert info["counts"]["kb"] == 10_000 < info["counts"]["corpus"]
    assert sum(1 for _ in (folder / "train.jsonl").open()) == 4000
