"""The pipeline travels with the model: saved with `save_model_with_pipeline`, rebuilt by
`pipeline("onegen-rag", model=dir, trust_remote_code=True, index=...)` in a process where `import onegen` fails."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pipeline_helpers import DOCS, PROMPTS, PipelineModelTester, greedy_continuations, query_after
from transformers import pipeline

from onegen import DocumentIndex
from onegen.pipelines import save_model_with_pipeline


def test_saved_pipeline_runs_in_a_fresh_process_without_onegen(tmp_path):
    model, tokenizer = PipelineModelTester("qwen2").get_model()
    save_model_with_pipeline(model, tokenizer, tmp_path / "model")
    index = DocumentIndex.build(model, tokenizer, DOCS)
    index.save(tmp_path / "index")

    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "onegen-rag": {"impl": "pipeline_onegen.OneGenRAGPipeline", "pt": ["AutoModelForCausalLM"]}
    }
    for code in ("pipeline_onegen.py", "decoding_onegen.py", "document_index.py", "index_backends.py",
                 "index_files.py", "modeling_onegen.py", "configuration_onegen.py"):
        assert (tmp_path / "model" / code).is_file(), code
    for builder in ("index_builder.py", "corpus_reader.py", "index_cli.py"):  # the builder is not remote code
        assert not (tmp_path / "model" / builder).exists(), builder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "model"]  # written atomically, nothing left over
    assert not hasattr(model.config, "custom_pipelines")  # the live model is unchanged: a plain save stays plain

    # The expected output, from this process (onegen imported): a retrieval after the second generated token.
    trigger = greedy_continuations(model, tokenizer, PROMPTS[:1], 4)[0][1]
    rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=index)
    kwargs = dict(max_new_tokens=10, top_k=2, logits_processor=query_after(model, trigger), return_tensors=True)
    expected = [rag(prompt, **kwargs) for prompt in PROMPTS[:2]]
    assert expected[0]["retrievals"]

    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["onegen"] = None  # `import onegen` now raises ImportError: only the saved code can serve
        import torch
        torch.set_num_threads(1)
        from transformers import LogitsProcessor, LogitsProcessorList, pipeline

        class QueryAfter(LogitsProcessor):
            def __init__(self, trigger, query_id):
                self.trigger, self.query_id = trigger, query_id
            def __call__(self, input_ids, scores):
                scores = scores.clone()
                fire = input_ids[:, -1] == self.trigger
                scores[fire, self.query_id] = scores[fire].max(dim=-1).values + 10.0
                return scores

        rag = pipeline("onegen-rag", model={str(tmp_path / "model")!r}, trust_remote_code=True,
                       index={str(tmp_path / "index")!r})
        assert type(rag).__module__.startswith("transformers_modules."), type(rag).__module__
        processor = LogitsProcessorList([QueryAfter({trigger}, rag.model.config.query_token_id)])
        kwargs = dict(max_new_tokens=10, top_k=2, logits_processor=processor, return_tensors=True)
        from_folder = rag({PROMPTS[:2]!r}, batch_size=2, **kwargs)
        from_list = rag({PROMPTS[0]!r}, index={DOCS!r}, **kwargs)  # documents encoded in this process
        rag.save_pretrained({str(tmp_path / "resaved")!r})  # a remote-code pipeline saves itself too
        print("RESULT" + json.dumps({{"from_folder": from_folder, "from_list": from_list}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    outputs = json.loads(line[len("RESULT"):])
    for want, got in zip(expected, outputs["from_folder"], strict=True):
        assert got["generated_token_ids"] == want["generated_token_ids"]
        assert got["generated_text"] == want["generated_text"]
        assert [(h["doc_id"], h["step"], h["rank"]) for h in got["retrievals"]] == \
               [(h["doc_id"], h["step"], h["rank"]) for h in want["retrievals"]]
        assert [h["score"] for h in got["retrievals"]] == pytest.approx([h["score"] for h in want["retrievals"]], abs=1e-5)
    assert outputs["from_list"]["generated_token_ids"] == expected[0]["generated_token_ids"]
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert resaved["custom_pipelines"]["onegen-rag"]["impl"] == "pipeline_onegen.OneGenRAGPipeline"
    assert (tmp_path / "resaved" / "decoding_onegen.py").is_file()


def test_saving_refuses_a_folder_that_is_not_a_model(tmp_path):
    model, tokenizer = PipelineModelTester().get_model()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a model folder"):
        save_model_with_pipeline(model, tokenizer, tmp_path)
    assert [p.name for p in Path(tmp_path).iterdir()] == ["notes.txt"]
    save_model_with_pipeline(model, tokenizer, tmp_path / "model")
    save_model_with_pipeline(model, tokenizer, tmp_path / "model")  # an earlier save is replaced as a whole
    assert (tmp_path / "model" / "pipeline_onegen.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "notes.txt"]
