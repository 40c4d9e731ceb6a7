"""A data file that does not exist is reported as missing (with its absolute path), never looked up as a Hub dataset
id; `onegen train` checks its files, model path and output folder before it loads anything."""

import json

import pytest
import yaml
from onegen_model_tester import OneGenModelTester
from synthetic import corpus_records, make_items, train_records

from onegen.trainers import OneGenDataError, OneGenDataFileNotFoundError, load_corpus, resolve_data_file


def test_a_missing_absolute_path_is_a_missing_file(tmp_path):
    missing = tmp_path / "data" / "db.jsonl"
    with pytest.raises(OneGenDataFileNotFoundError) as error:
        load_corpus(str(missing), "[RD]", name="corpus")
    assert str(error.value) == f"corpus file {str(missing)!r} does not exist (no file at {missing})"
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, OneGenDataError)


def test_a_missing_relative_path_is_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Under a folder that exists here, `data/wn-el/dev.jsonl` is a path, not the Hub dataset `data/wn-el`.
    (tmp_path / "data").mkdir()
    with pytest.raises(OneGenDataFileNotFoundError, match=r"^eval file 'data/wn-el/dev.jsonl' does not exist \(no file "
                                                          rf"at {tmp_path}/data/wn-el/dev.jsonl\)$"):
        resolve_data_file("data/wn-el/dev.jsonl", "eval")
    for spec in ("./train.jsonl", "~/no-such-onegen-file.jsonl", "train.jsonl"):
        with pytest.raises(OneGenDataFileNotFoundError, match="does not exist"):
            resolve_data_file(spec, "train")
    with pytest.raises(OneGenDataFileNotFoundError, match="'data' is a folder"):
        resolve_data_file("data", "train")
    # Without such a folder it may be a Hub dataset file: offline it is not found there either, and the message
    # still starts with the local answer.
    with pytest.raises(OneGenDataFileNotFoundError, match=r"^train file 'org/onegen-data/train.jsonl' does not exist: "
                                                          r"there is no file at .*, and it is not a file of the Hub "
                                                          r"dataset 'org/onegen-data' either"):
        resolve_data_file("org/onegen-data/train.jsonl", "train")


def test_cli_checks_files_before_loading_the_model(tmp_path, monkeypatch):
    from onegen.cli import main

    monkeypatch.chdir(tmp_path)
    items = make_items(8)
    (tmp_path / "db.jsonl").write_text("\n".join(json.dumps(r) for r in corpus_records(items)) + "\n")
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in train_records(items)) + "\n")
    # A model folder that cannot load: had the model been loaded first, its error would show instead.
    (tmp_path / "broken-model").mkdir()
    (tmp_path / "broken-model" / "config.json").write_text("{not json")
    cfg = {"model_name_or_path": "broken-model", "train_file": "train.jsonl", "corpus_file": "db.jsonl",
           "eval_file": "data/wn-el/dev.jsonl", "output_dir": "out", "use_cpu": True, "report_to": []}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(OneGenDataFileNotFoundError, match="eval file 'data/wn-el/dev.jsonl' does not exist"):
        main(["train", "--config", "cfg.yaml"])

    cfg.update(eval_file=None, model_name_or_path="./runs/missing-model")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FileNotFoundError, match=r"model_name_or_path './runs/missing-model' does not exist"):
        main(["train", "--config", "cfg.yaml"])

    OneGenModelTester("llama").save_base(tmp_path / "base")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("not a model")
    cfg.update(model_name_or_path="base")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FileExistsError, match="out exists and is not a OneGen model folder"):
        main(["train", "--config", "cfg.yaml"])  # refused before training, not after it

    cfg.update(retrieval_mode="retrieve")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"retrieval_mode must be one of \('insert', 'link'\), got 'retrieve'"):
        main(["train", "--config", "cfg.yaml"])
    with pytest.raises(SystemExit):  # on the command line, argparse's own usage error
        main(["train", "--config", "cfg.yaml", "--retrieval_mode", "retrieve"])
