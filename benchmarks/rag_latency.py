# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Latency of retrieval inside decoding: OneGen vs two-pass (GritLM-style) vs pipeline RAG, and batch throughput.

The benchmark lives in the package (`onegen.evaluation.latency`, also run by `onegen demo --latency`); this script
runs it from the checkout. See that module for what is measured.

    python benchmarks/rag_latency.py                 # the full run (about 10 min on 1 idle CPU thread)
    python benchmarks/rag_latency.py --tiny          # a quick check on a tiny random model
"""

import os
import sys


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from onegen.evaluation.latency import main

    sys.exit(main())
