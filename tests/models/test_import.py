"""`import onegen` stays cheap (nothing but transformers' lazy top level loads: no torch, no pipeline) and still
registers the config, the model and the pipeline the moment transformers' auto classes or pipelines load; each test
runs in a fresh process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path


TESTS = Path(__file__).resolve().parents[1]  # tests/: the helpers (onegen_model_tester, pipeline_helpers)


def _run(script: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_onegen_leaves_the_pipeline_side_unloaded():
    out = _run("""
        import sys
        import onegen
        print(sorted(m for m in ("torch", "transformers.pipelines", "onegen.pipelines", "faiss") if m in sys.modules))
        print(onegen.DocumentIndex.__module__, "onegen.pipelines" in sys.modules)
        print("DocumentIndex" in dir(onegen), "OneGenRAGPipeline" in onegen.__all__)
    """)
    assert out.splitlines() == ["[]", "onegen.pipelines.document_index True", "True True"]


def test_pipeline_works_right_after_import_onegen(tmp_path):
    out = _run("""
        from onegen_model_tester import OneGenModelTester  # before `import onegen`: builds through the package
        from pipeline_helpers import DOCS, TAGS

        import onegen
        from transformers import pipeline

        model, tokenizer = OneGenModelTester("llama", with_pad=True).get_model(context_tags=TAGS)
        rag = pipeline("onegen-rag", model=model, tokenizer=tokenizer, index=DOCS)
        print(type(rag).__name__, sorted(rag("the capital of france is", max_new_tokens=4)))
    """)
    assert out.splitlines()[-1] == "OneGenRAGPipeline ['generated_text', 'retrievals']"


def test_saved_model_loads_through_the_auto_class_right_after_import_onegen(model_dir):
    out = _run(f"""
        import onegen
        from transformers import AutoConfig, AutoModelForCausalLM

        print(type(AutoConfig.from_pretrained({str(model_dir)!r})).__name__)
        model = AutoModelForCausalLM.from_pretrained({str(model_dir)!r})  # registered classes, no remote code
        print(type(model).__module__, type(model).__name__, model._pipeline_code_writer is not None)
    """)
    assert out.splitlines()[-2:] == ["OneGenConfig", "onegen.modeling_onegen OneGenForCausalLM True"]


def test_registration_when_transformers_pipelines_came_first():
    out = _run("""
        from transformers.pipelines import PIPELINE_REGISTRY
        import onegen
        print("onegen-rag" in PIPELINE_REGISTRY.get_supported_tasks())
    """)
    assert out.strip() == "True"
