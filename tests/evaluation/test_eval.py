"""`onegen eval` on small dataset folders (written with the builders' own writer and card) and a tiny random OneGen
model: the report's numbers against a direct computation, the baselines, and the bad-input errors."""

import json
from pathlib import Path

import pytest
import torch
from eval_datasets import make_dataset
from onegen_model_tester import OneGenModelTester

from onegen.cli import main as onegen_main
from onegen.evaluation import EvalDataError, load_eval_data


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for task in ("wn-el", "rd-1913", "wn-2hop"):
        make_dataset(root, task)
    return root


def _eval(tmp_path, *argv):
    out = tmp_path / "report.json"
    assert onegen_main(["eval", *argv, "--output_file", str(out), "--no_embedding_cache"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.json")]  # no temporary file left
    return json.loads(out.read_text())


def test_wn_el_onegen_numbers_equal_a_direct_computation(model_dir, data_root, tmp_path, capsys):
    report = _eval(tmp_path, "--model", str(model_dir), "--task", "wn-el", "--data_dir", str(data_root / "wn-el"),
                   "--baselines", "bm25,mfs,closed-book")
    table = capsys.readouterr().out
    assert "wn-el / dev: 12 queries, KB of 24 documents" in table and "inKB-acc" in table
    assert set(report["results"]) == {"onegen", "bm25", "mfs"}
    assert any("closed-book skipped" in note for note in report["notes"])
    assert any("needs a model in 'link' mode" in note for note in report["notes"])  # this model is in insert mode

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = load_eval_data(data_root / "wn-el", "wn-el", "dev")
    docs = model.encode_documents([d["text"] for d in data.kb], tokenizer, batch_size=1).embeddings
    top1, in_kb = [], []
    for q in data.queries:
        messages = [{"role": m["role"], "content": m["content"]} for m in q["messages"]]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        scores = model.encode_queries([text], tokenizer, add_special_tokens=False).embeddings[0] @ docs.T
        top1.append(data.doc_ids[int(scores.argmax())] == q["gold_doc_ids"][0])
        cands = [data.doc_ids.index(c) for c in q["candidates"]]
        in_kb.append(q["candidates"][int(scores[cands].argmax())] == q["gold_doc_ids"][0])
    onegen = report["results"]["onegen"]
    assert onegen["accuracy@1"] == pytest.approx(sum(top1) / len(top1))
    assert onegen["in_kb_accuracy"] == pytest.approx(sum(in_kb) / len(in_kb))
    assert onegen["accuracy@100"] == 1.0  # every gold is somewhere in a 24-document KB
    mfs = sum(q["candidates"][0] == q["gold_doc_ids"][0] for q in data.queries) / len(data.queries)
    assert report["results"]["mfs"]["in_kb_accuracy"] == pytest.approx(mfs)


def test_rd_1913_with_closed_book_and_minilm(model_dir, data_root, tmp_path):
    report = _eval(tmp_path, "--model", str(model_dir), "--task", "rd-1913", "--data-dir", str(data_root / "rd-1913"),
                   "--baselines", "bm25,minilm,closed-book,pipeline-rag", "--max_new_tokens", "4", "--kb-size", "16")
    assert report["kb_size"] == 16 and report["num_queries"] == 12
    assert set(report["results"]) == {"onegen", "bm25", "minilm", "closed-book", "pipeline-rag"}
    for method in ("onegen", "bm25", "minilm"):
        results = report["results"][method]
        assert 0 <= results["accuracy@1"] <= results["accuracy@5"] <= results["accuracy@100"] == 1.0
        assert {"reader_exact_match", "reader_f1", "mrr@10", "ndcg@10"} <= set(results)
    # The query "the <answer word> ..." shares the answer word with the gold text: with the ids wired right, the
    # lexical baselines are far above chance (1/16).
    assert report["results"]["bm25"]["accuracy@1"] >= 0.25 and report["results"]["minilm"]["accuracy@1"] >= 0.25
    assert set(report["results"]["closed-book"]) == {"exact_match", "f1"}
    onegen = report["results"]["onegen"]  # end to end through pipeline("onegen-rag")
    assert {"exact_match", "f1", "reader_exact_match", "e2e_support", "emission_exact"} <= set(onegen)
    assert 0 <= onegen["retrievals_per_query"] <= 2  # capped one above the task's one hop, so extras show
    # The same model inserting MiniLM's top document wherever it retrieves.
    assert {"exact_match", "f1", "e2e_support", "retrievals_per_query"} <= set(report["results"]["pipeline-rag"])


def test_wn_2hop_reports_each_hop_and_support(model_dir, data_root, tmp_path):
    report = _eval(tmp_path, "--model", str(model_dir), "--task", "wn-2hop", "--data_dir", str(data_root / "wn-2hop"),
                   "--baselines", "bm25")
    for method in ("onegen", "bm25"):
        results = report["results"][method]
        assert {"hop1/accuracy@10", "hop2/accuracy@10", "support@10"} <= set(results)
        assert results["support@10"] <= min(results["hop1/accuracy@10"], results["hop2/accuracy@10"])
        assert results["bridge/support@10"] == results["support@10"]  # every fixture question is a bridge


def test_bad_inputs_get_clear_errors(data_root, tmp_path):
    with pytest.raises(ValueError, match="--split test is reserved"):
        onegen_main(["eval", "--task", "wn-el", "--split", "test", "--data_dir", str(data_root / "wn-el")])
    with pytest.raises(EvalDataError, match=r"onegen\.dataset_builders\.wn_el --output_dir .* --small"):
        onegen_main(["eval", "--task", "wn-el", "--data_dir", str(tmp_path / "nowhere"), "--baselines", "bm25"])
    broken = make_dataset(tmp_path, "rd-1913")
    lines = (broken / "queries" / "dev.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["gold_doc_ids"] = ["n99999999"]
    lines[2] = json.dumps(row)
    lines[4] = "{not json"
    (broken / "queries" / "dev.jsonl").write_text("\n".join(lines[:4]) + "\n")
    with pytest.raises(EvalDataError, match=r"dev\.jsonl, line 3: field 'gold_doc_ids' names documents not in kb\.jsonl"):
        load_eval_data(broken, "rd-1913", "dev")
    (broken / "queries" / "dev.jsonl").write_text("\n".join(lines[:2] + lines[4:5]) + "\n")
    with pytest.raises(EvalDataError, match=r"dev\.jsonl, line 3: invalid JSON"):
        load_eval_data(broken, "rd-1913", "dev")
    with pytest.raises(EvalDataError, match="field 'task' is 'rd-1913', but this is a wn-el evaluation"):
        _wrong_task(data_root, tmp_path)
    with pytest.raises(ValueError, match="--baselines: unknown"):
        onegen_main(["eval", "--task", "wn-el", "--baselines", "bm26"])
    with pytest.raises(ValueError, match="smaller than the"):
        onegen_main(["eval", "--task", "wn-el", "--data_dir", str(data_root / "wn-el"), "--kb_size", "3",
                     "--baselines", "bm25", "--output_file", str(tmp_path / "r.json")])
    assert not (tmp_path / "r.json").exists()


def _wrong_task(data_root: Path, tmp_path: Path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "queries").mkdir()
    (folder / "kb.jsonl").write_text((data_root / "rd-1913" / "kb.jsonl").read_text())
    (folder / "queries" / "dev.jsonl").write_text((data_root / "rd-1913" / "queries" / "dev.jsonl").read_text())
    return load_eval_data(folder, "wn-el", "dev")


def test_closed_book_never_emits_retrieval_tokens(model_dir, data_root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from onegen.evaluation.generation import closed_book_answers, closed_book_token_ids

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    query_id = model.config.query_token_id
    with torch.no_grad():  # make the query token the model's favourite next token everywhere
        model.get_output_embeddings().weight[query_id] = model.get_decoder().norm.weight * 10
    data = load_eval_data(data_root / "rd-1913", "rd-1913", "dev")
    prompt = tokenizer.apply_chat_template([data.queries[0]["messages"][0]], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    free = model.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert query_id in free[0, prompt["input_ids"].shape[1]:].tolist()  # unconstrained, it would retrieve
    ids = closed_book_token_ids(model, tokenizer, data.queries[:3], max_new_tokens=5, batch_size=2)
    assert len(ids) == 3 and all(len(row) == 5 for row in ids)
    special = set(model.config.special_token_ids.values())
    assert not special & {token for row in ids for token in row}
    assert closed_book_answers(model, tokenizer, data.queries[:3], max_new_tokens=5, batch_size=2) == [
        tokenizer.decode(row, skip_special_tokens=True).strip().split("\n")[0].strip() for row in ids]


@pytest.fixture(scope="module")
def link_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("link-model")
    model, tokenizer = OneGenModelTester("llama", seed=1).get_model(continuation_token="[CONT]", retrieval_mode="link")
    with torch.no_grad():  # make it link at once: the query token is its favourite next token
        model.get_output_embeddings().weight[model.config.query_token_id] = model.get_decoder().norm.weight * 10
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_wn_el_end_to_end_linking_with_a_link_mode_model(link_model_dir, data_root, tmp_path):
    report = _eval(tmp_path, "--model", str(link_model_dir), "--task", "wn-el", "--data_dir",
                   str(data_root / "wn-el"), "--baselines", "", "--max_new_tokens", "6")
    onegen = report["results"]["onegen"]
    assert {"e2e_precision", "e2e_recall", "e2e_f1", "retrievals_per_query", "in_kb_accuracy"} <= set(onegen)
    # Every query links twice (the cap is one above the task's one mention, so the repeat shows as an extra); the
    # mention written before the first is empty, so the generated links are all wrong: precision and recall are 0,
    # not an error, and no query token comes where the data puts it.
    assert 1 < onegen["retrievals_per_query"] <= 2 and onegen["retrievals_extra"] > 0.5 and report["notes"] == []
    assert onegen["e2e_precision"] == onegen["e2e_recall"] == onegen["emission_exact"] == 0


def test_parsing_generated_answers_and_links():
    from types import SimpleNamespace

    from onegen.evaluation.pipeline_answers import generated_answer, generated_links

    tokenizer = OneGenModelTester().get_tokenizer()
    insert = SimpleNamespace(context_end_token="</paragraph>", query_token="[RQ]", continuation_token=None,
                             special_tokens={"query_token": "[RQ]", "context_end_token": "</paragraph>"})
    output = {"generated_text": "[RQ]<paragraph>bank: a slope</paragraph> humility <|im_end|>\nmore", "retrievals": []}
    assert generated_answer(output, tokenizer, insert) == "humility"
    link = SimpleNamespace(context_end_token=None, query_token="[RQ]", continuation_token="[CONT]",
                           special_tokens={"query_token": "[RQ]", "continuation_token": "[CONT]"})
    output = {"generated_text": "bank[RQ][CONT] and river bank[RQ][CONT]",
              "retrievals": [{"doc_id": "n1"}, {"doc_id": "n2"}]}
    assert generated_links(output, tokenizer, link) == [{"mention": "bank", "entity": "n1"},
                                                        {"mention": "and river bank", "entity": "n2"}]


def test_emission_and_end_to_end_support_count_each_query_token_in_order():
    from onegen.evaluation import scoring

    queries = [{"messages": [{"role": "assistant", "content": "Paris[RQ]<p>x</p>France[RQ]<p>y</p>Europe",
                              "positive": [["d1"], ["d2"]]}], "answers": ["Europe"]}] * 3
    hit = lambda position, doc_id, rank=0: {"position": position, "doc_id": doc_id, "rank": rank}  # noqa: E731
    outputs = [
        {"generated_text": " Paris[RQ]<p>x</p>France[RQ]<p>y</p>Europe", "retrievals": [hit(1, "d1"), hit(9, "d2")]},
        # both gold documents, but the second hop's only at rank 1, and a third retrieval
        {"generated_text": "Paris [RQ]..", "retrievals": [hit(2, "d1"), hit(8, "d9"), hit(8, "d2", 1), hit(12, "d2")]},
        {"generated_text": "Rome[RQ]..", "retrievals": [hit(1, "d2")]},  # hop 1 found hop 2's document
    ]
    emission = scoring.emission_metrics(queries, outputs, "[RQ]")
    assert emission == {"emission_exact": 2 / 3, "retrievals_extra": 1 / 3, "retrievals_missing": 1 / 3}
    results = scoring.end_to_end_qa_metrics(queries, outputs, ["Europe", "Europe", "Rome"])
    assert results["e2e_support"] == 1 / 3 and results["retrievals_per_query"] == 2
