# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Convert an original OneGen checkpoint (zjunlp/OneGen) into a OneGen-HF model folder.

The original checkpoints are plain Llama (or Qwen2 / Mistral) checkpoints whose tokenizer carries the OneGen tokens:

- entity linking (G->R, `link` mode): `[LK]` (mention / query side), `[SE]` (entity / document side), and
  `[_CONTINUE_]`, which is forced after `[LK]` at inference;
- QA (R->G, `insert` mode): `[Question Representation]` (query), `[Document Fragment Representation]` (document),
  and `<paragraph>`, `</paragraph>` around inserted passages (multi-hop and Self-RAG checkpoints).

The weights are kept as they are (no resize, no re-initialisation); the roles and the mode go into `OneGenConfig`.
The output folder holds the model, its tokenizer and the model's and the `onegen-rag` pipeline's code, so it loads
as a model and as a pipeline, with the `onegen` package or without it (`trust_remote_code=True`).

    python hub_scripts/convert_original_onegen.py --input_dir OneGen-EntityLinking-Llama2-7B --output_dir onegen-el
"""

import os
import sys
from dataclasses import dataclass, field

from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser

from onegen import OneGenForCausalLM
from onegen.pipelines import save_model_with_pipeline


# Layouts of the released checkpoints (research notes, sections 1 and 8): the tokens that identify each one.
LAYOUTS = {
    "entity_linking": dict(
        query_token="[LK]", doc_token="[SE]", continuation_token="[_CONTINUE_]", context_tags=None, retrieval_mode="link"
    ),
    "qa": dict(
        query_token="[Question Representation]", doc_token="[Document Fragment Representation]",
        continuation_token=None, context_tags=("<paragraph>", "</paragraph>"), retrieval_mode="insert",
    ),
}


@dataclass
class ConvertArguments:
    input_dir: str = field(metadata={"help": "Folder of the original OneGen checkpoint (model + tokenizer)."})
    output_dir: str = field(metadata={"help": "Folder to write the OneGen-HF model, its tokenizer and remote code to."})
    layout: str | None = field(
        default=None, metadata={"help": "entity_linking or qa; detected from the tokenizer's tokens when omitted."}
    )
    dtype: str = field(default="auto", metadata={"help": "dtype to load the weights in (auto keeps the checkpoint's)."})


def detect_layout(tokenizer, source: str) -> str:
    """Name of the layout whose tokens are all single tokens of `tokenizer`."""
    vocab = tokenizer.get_vocab()
    found = []
    for name, layout in LAYOUTS.items():
        tokens = [layout["query_token"], layout["doc_token"], layout["continuation_token"], *(layout["context_tags"] or ())]
        if all(token in vocab for token in tokens if token is not None):
            found.append(name)
    if len(found) != 1:
        raise ValueError(
            f"{source}: cannot tell the OneGen layout from the tokenizer (matches: {found or 'none'}); expected the "
            "tokens [LK] [SE] [_CONTINUE_] (entity linking) or [Question Representation] [Document Fragment "
            "Representation] <paragraph> </paragraph> (QA). Pass --layout to choose."
        )
    return found[0]


def convert(input_dir: str | os.PathLike, output_dir: str | os.PathLike, layout: str | None = None, dtype="auto"):
    """Convert the checkpoint in `input_dir` and write it, with the pipeline's code, to `output_dir` (atomically; an
    existing folder that is not a model is refused). Returns the model."""
    tokenizer = AutoTokenizer.from_pretrained(input_dir)
    layout = layout or detect_layout(tokenizer, str(input_dir))
    if layout not in LAYOUTS:
        raise ValueError(f"--layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    base = AutoModelForCausalLM.from_pretrained(input_dir, dtype=dtype)
    model = OneGenForCausalLM.from_base_model(base, tokenizer, add_tokens=False, **LAYOUTS[layout])

    save_model_with_pipeline(model, tokenizer, output_dir)
    return model


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(ConvertArguments).parse_args_into_dataclasses(args=argv)
    model = convert(args.input_dir, args.output_dir, args.layout, args.dtype)
    print(f"Wrote {args.output_dir}: retrieval_mode={model.config.retrieval_mode}, tokens={model.config.special_token_ids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
