# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Model cards of OneGen models, from one template (`templates/onegen_model_card.md`, a Jinja template rendered
by `huggingface_hub.ModelCard.from_template`): the card `OneGenTrainer` writes on save and the one
`hub_scripts/push_model.py` publishes (which adds evaluation results) are the same document."""

import os
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData


TEMPLATE_PATH = Path(__file__).parent / "templates" / "onegen_model_card.md"
PAPER_CITATION = (
    "@inproceedings{zhang2024onegen,\n  title={OneGen: Efficient One-Pass Unified Generation and Retrieval "
    "for LLMs},\n  author={Zhang, Jintian and Peng, Cheng and Sun, Mengshu and Chen, Xiang and Liang, Lei and "
    "Zhang, Zhiqiang and Zhou, Jun and Chen, Huajun and Zhang, Ningyu},\n  booktitle={Findings of EMNLP},\n"
    "  year={2024}\n}"
)


def hub_model_id(name: str | None) -> str | None:
    """`name` when it can be a Hub model id (`org/name` or `name`), None for local paths: a config's `_name_or_path`
    is often a local folder (`/root/.cache/onegen/...`), which means nothing on the Hub and must not become a card's
    `base_model`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or os.path.isabs(name) or name.startswith((".", "~")) or os.path.exists(name) or name.count("/") > 1:
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def render_model_card(card_data: ModelCardData, config, *, model_name: str, repo_id: str, revision: str,
                      base_model: str | None = None, training: dict | None = None, evaluation: str | None = None,
                      citation: str = PAPER_CITATION) -> ModelCard:
    """The card of the OneGen model whose config is `config`.

    Args:
        card_data: the YAML header (base model, tags, datasets, `model-index` results, ...).
        repo_id, revision: what the usage snippet loads (`<user>/<name>` and `<commit>` before publishing).
        base_model: the base model as the text names it (a local path is fine here; the header takes Hub ids only).
        training: settings shown in a "Training" table (setting -> value), or None for no such section.
        evaluation: the "Evaluation" section's tables (Markdown), or None for no such section.
    """
    tokens = ", ".join(f"{name} `{token}`" for name, token in config.special_tokens.items())
    default, *others = config.retrieval_modes
    modes = f"`{default}`" + "".join(f" (and `{mode}`: `retrieval_mode=\"{mode}\"` in a pipeline call)"
                                     for mode in others)
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATE_PATH), model_name=model_name, repo_id=repo_id, revision=revision,
        base_model=base_model, retrieval_modes=modes, tokens=tokens, training=training,
        evaluation=evaluation, citation=citation,
    )


__all__ = ["PAPER_CITATION", "TEMPLATE_PATH", "hub_model_id", "render_model_card"]
