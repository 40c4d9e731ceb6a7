# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen index`: encode a corpus with a OneGen model into a `DocumentIndex` folder.

    onegen index --model MODEL_DIR --corpus kb.jsonl --output_dir kb-index [--index_type flat|hnsw|ivf|ivfpq]
    accelerate launch --num_processes 4 -m onegen.cli index --model ... (the same options: each process encodes
    its shards, the main process merges them)

Arguments are parsed with transformers' `HfArgumentParser` from [`IndexArguments`]. A build that was stopped is
resumed by running the same command again.
"""

import logging as std_logging
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser
from transformers.utils import logging

from .index_backends import INDEX_TYPES


logger = logging.get_logger(__name__)


@dataclass
class IndexArguments:
    """Options of `onegen index` (`--index-type` = `--index_type`)."""

    model: str = field(metadata={"help": "OneGen model folder (or Hub id) whose document token encodes the corpus."})
    corpus: str = field(
        metadata={"help": "Corpus: a JSON Lines (.jsonl/.json) or Parquet file, a folder written by "
                          "Dataset.save_to_disk, or a name datasets.load_dataset streams (a local dataset folder)."}
    )
    output_dir: str = field(metadata={"help": "Index folder to write (shards go to <output_dir>.building meanwhile)."})
    index_type: str = field(default="flat", metadata={"help": "Kind of index.", "choices": list(INDEX_TYPES)})
    backend: str | None = field(
        default=None, metadata={"help": "faiss or torch (flat only; default: faiss when installed).",
                                "choices": ["faiss", "torch"]}
    )
    id_column: str = field(default="id", metadata={"help": "Field of the document id (absent: the row number)."})
    text_column: str = field(default="text", metadata={"help": "Field of the document text."})
    title_column: str = field(default="title", metadata={"help": "Field of the optional title."})
    split: str = field(default="train", metadata={"help": "Split of a DatasetDict folder or a load_dataset name."})
    batch_size: int = field(default=32, metadata={"help": "Documents per forward pass."})
    shard_size: int = field(
        default=10_000, metadata={"help": "Documents per shard: the unit of work split and of resumption."}
    )
    max_length: int | None = field(default=None, metadata={"help": "Truncation length in tokens (default: model's)."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16, float16 or auto."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an index already in --output_dir."})
    num_threads: int = field(default=0, metadata={"help": "torch threads per process (0: torch's default)."})
    use_cpu: bool | None = field(
        default=None, metadata={"help": "Encode on the CPU (gloo between processes). Default: when accelerate is told "
                                        "so (--cpu) or finds no GPU."}
    )
    hnsw_m: int | None = field(default=None, metadata={"help": "hnsw: graph degree (default 32)."})
    ef_construction: int | None = field(default=None, metadata={"help": "hnsw: build breadth (default 200)."})
    ef_search: int | None = field(default=None, metadata={"help": "hnsw: search breadth (default 64)."})
    nlist: int | None = field(default=None, metadata={"help": "ivf/ivfpq: k-means cells (default ~4*sqrt(N))."})
    nprobe: int | None = field(default=None, metadata={"help": "ivf/ivfpq: cells searched (default nlist/16, >=8)."})
    train_size: int | None = field(default=None, metadata={"help": "ivf/ivfpq: vectors sampled to train on."})
    pq_m: int | None = field(default=None, metadata={"help": "ivfpq: codes per vector (default: dim/4 or below)."})
    pq_bits: int | None = field(default=None, metadata={"help": "ivfpq: bits per code (default 8)."})
    keep_vectors: bool = field(
        default=False, metadata={"help": "ivfpq: also keep the float32 vectors on disk (memory-mapped on load) so "
                                         "that searches can re-rank candidates exactly (search parameter rerank)."}
    )
    rerank: int | None = field(
        default=None, metadata={"help": "ivfpq with --keep_vectors: default re-ranking factor recorded in the index "
                                        "(k * rerank candidates re-scored exactly)."}
    )

    def index_params(self) -> dict:
        names = ("hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "train_size", "pq_m", "pq_bits",
                 "rerank")
        params = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return {**params, "keep_vectors": True} if self.keep_vectors else params


def load_model(path: str, dtype: str, device):
    """The OneGen model and tokenizer in `path` (with the package's classes, or its remote code)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import onegen  # noqa: F401  (registers the OneGen auto classes)

    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device).eval()
    if not hasattr(model, "encode_documents"):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a OneGen model (no encode_documents); convert "
                         "it with OneGenForCausalLM.from_base_model and fine-tune it first")
    return model, AutoTokenizer.from_pretrained(path)


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(IndexArguments).parse_args_into_dataclasses(args=argv)
    import torch

    from .corpus_reader import CorpusColumns
    from .index_builder import build_index, distributed_state

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    state = distributed_state(args.use_cpu)
    if state.is_main_process and "TRANSFORMERS_VERBOSITY" not in os.environ:
        std_logging.getLogger("onegen").setLevel(std_logging.INFO)  # progress lines of the build, main process only
    model, tokenizer = load_model(args.model, args.dtype, state.device)
    columns = CorpusColumns(id=args.id_column, text=args.text_column, title=args.title_column)
    output = build_index(model, tokenizer, args.corpus, args.output_dir, index_type=args.index_type,
                         backend=args.backend, batch_size=args.batch_size, shard_size=args.shard_size,
                         max_length=args.max_length, columns=columns, split=args.split, overwrite=args.overwrite,
                         state=state, **args.index_params())
    if state.is_main_process:
        print(f"onegen index: wrote {output}")
    # Leave the process group explicitly once every process is past its last collective (the main one merged the
    # shards): left to interpreter teardown, a gloo rank that returned first can abort ("terminate called without
    # an active exception") and fail the launch although the index is written.
    state.wait_for_everyone()
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
