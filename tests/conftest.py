import os
from pathlib import Path


# Offline by construction: a hub lookup would otherwise hang ~46 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("USE_HUB_KERNELS", "0")  # as run.sh: transformers >= 5.25 would kernelize every load

import pytest  # noqa: E402
import torch  # noqa: E402


# One thread: with anything else busy on this 2-core machine, 2 torch threads run several times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random OneGen model (Llama, insert mode) saved with its tokenizer: what `onegen eval` and the Hub
    scripts load."""
    from onegen_model_tester import OneGenModelTester

    folder = tmp_path_factory.mktemp("model")
    model, tokenizer = OneGenModelTester("llama").get_model(context_tags=("<paragraph>", "</paragraph>"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def onegen_cache(tmp_path_factory):
    """Cache folder for the converted default base model, shared by the slow tests of one session."""
    return Path(os.environ.get("ONEGEN_TEST_CACHE") or tmp_path_factory.mktemp("onegen-cache"))
