import os
import sys
from pathlib import Path

# Offline by construction: a hub lookup would otherwise hang ~46 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# One thread: with anything else busy on this 2-core machine, 2 torch threads run several times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def onegen_cache(tmp_path_factory):
    """Cache folder for the converted default base model, shared by the slow tests of one session."""
    return Path(os.environ.get("ONEGEN_TEST_CACHE") or tmp_path_factory.mktemp("onegen-cache"))
