"""transformers' own common model tests (`ModelTesterMixin`) and config tests (`ConfigTester`), run against
OneGenForCausalLM wrapping tiny Llama, Qwen2 and GPT-2 models.

The test code comes from the sdist of the installed transformers version (see `transformers_common.py`); it is
downloaded once and cached. Without network the module fails; set ONEGEN_SKIP_COMMON_TESTS=1 to skip it instead.
"""

import os
import re
import unittest
import warnings
from unittest.mock import patch

import pytest
import torch
from onegen_model_tester import OneGenModelTester
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.testing_utils import torch_device

from onegen import OneGenConfig, OneGenForCausalLM


if os.environ.get("ONEGEN_SKIP_COMMON_TESTS") == "1":
    pytest.skip("ONEGEN_SKIP_COMMON_TESTS=1: transformers' common model tests are skipped", allow_module_level=True)

import transformers_common  # noqa: E402


unavailable = None
try:
    with warnings.catch_warnings():
        # transformers registers its marks (flash_attn_test, torch_compile_test, ...) in its own conftest, which
        # does not come with the sdist; unregistered, each would warn once at import.
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        modeling_common, configuration_common = transformers_common.load()
except transformers_common.CommonTestsUnavailable as error:
    unavailable = str(error)
if unavailable:  # a collection error, outside the `except` so that the message is shown once
    pytest.fail(
        f"transformers' common model tests are unavailable: {unavailable}\n"
        "(Set ONEGEN_SKIP_COMMON_TESTS=1 to skip them.)",
        pytrace=False,
    )

ModelTesterMixin = modeling_common.ModelTesterMixin
ConfigTester = configuration_common.ConfigTester
ids_tensor = modeling_common.ids_tensor
random_attention_mask = modeling_common.random_attention_mask
# The generation tests (tests/generation/) are not in the 5.24 sdist; inherit the mixin only where it is the real one.
GenerationTesterMixin = modeling_common.GenerationTesterMixin
HAS_GENERATION_TESTS = not transformers_common.is_stub(GenerationTesterMixin)
GenerationMixins = (GenerationTesterMixin,) if HAS_GENERATION_TESTS else ()


class OneGenCommonModelTester(OneGenModelTester):
    """`OneGenModelTester` at the sizes of transformers' model testers, with random ids as inputs and the checks of
    `test_model` and `test_loss_without_logits`."""

    def __init__(self, parent, backbone="llama", batch_size=3, seq_length=7, is_training=True, use_input_mask=True):
        # No dropout: the compiled-training test compares gradients with eager ones, draw for draw.
        super().__init__(backbone, vocab_size=99, hidden_size=32, intermediate_size=37, max_position_embeddings=64,
                         pad_token_id=0, dropout=0.0, tie_word_embeddings=None)
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.use_input_mask = use_input_mask

    def prepare_config_and_inputs(self):
        # Ordinary tokens only (no pad, retrieval or special ids), so every position is a plain LM position.
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 5) + 3
        input_mask = random_attention_mask([self.batch_size, self.seq_length]) if self.use_input_mask else None
        return self.get_config(), input_ids, input_mask

    def create_and_check_model(self, config, input_ids, input_mask):
        model = OneGenForCausalLM(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_ids, attention_mask=input_mask)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.seq_length, self.vocab_size))
        self.parent.assertEqual(result.last_hidden_state.shape, (self.batch_size, self.seq_length, self.hidden_size))

    def create_and_check_loss_without_logits(self, config, input_ids, input_mask):
        # OneGen's own loss path (`return_logits=False`: logits only at labelled positions) must give the dense
        # loss, also with pre-shifted `shift_labels`, which the common test checks on the dense path only.
        model = OneGenForCausalLM(config).to(torch_device).eval()
        labels = input_ids.clone()
        labels[:, : self.seq_length // 2] = -100
        shift_labels = torch.roll(input_ids, 1, dims=1)
        shift_labels[0, :3] = -100
        for targets in ({"labels": labels}, {"labels": labels, "shift_labels": shift_labels}):
            with torch.no_grad():
                dense = model(input_ids, attention_mask=input_mask, **targets).loss
                sparse = model(input_ids, attention_mask=input_mask, return_logits=False, **targets)
            self.parent.assertIsNone(sparse.logits)
            torch.testing.assert_close(sparse.loss, dense, rtol=1e-5, atol=1e-6)


# Tests of the mixins that do not apply to a wrapper of these backbones, with the reason; everything else runs.
# (Tests that the mixins skip by themselves for want of a GPU, flash-attn, kernels, DeepSpeed or RUN_SLOW are not
# listed: they run where those exist.) A parameterized test is named without its `_<index>_<suffix>`.
_ROPE = (
    "tests RoPE through the tester's `base_model_class` built from RoPE config fields; RoPE belongs to the wrapped "
    "model (OneGenConfig has none), covered by transformers' own Llama/Qwen2 tests (GPT-2 has none)"
)
_MOE = "for mixture-of-experts models; the wrapped Llama, Qwen2 and GPT-2 are dense"
_FP32 = (
    "the wrapper keeps no module in fp32 and Llama, Qwen2 and GPT-2 declare none (a wrapped model's list is "
    "collected onto the wrapper by post_init)"
)
SKIPPED = {
    "test_sdpa_can_dispatch_composite_models": (
        "needs a non-text tower beside the language model; the wrapper's single language sub-model is checked by "
        "test_sdpa_can_dispatch_non_composite_models"
    ),
    "test_sliding_window_mask": (
        "sets `sliding_window`/`use_sliding_window` on the top-level config, where a wrapper has no such field (it is "
        "the wrapped model's, on `text_config`); Llama and GPT-2 have no sliding window"
    ),
    "test_torch_save_load": (
        "loads a base model (MODEL_MAPPING[config]) into the head model; the wrapper has no base-model class of its "
        "own, its base is the wrapped causal LM"
    ),
    "test_reverse_loading_mapping": "transformers registers no checkpoint key conversion for `onegen` (nothing to reverse)",
    "test_can_load_from_already_mapped_keys": "transformers registers no checkpoint key conversion for `onegen`",
    "test_encoder_decoder_loss_no_double_shift": "for encoder-decoder models; OneGen wraps decoder-only LMs",
    "test_resize_position_vector_embeddings": (
        "Llama and Qwen2 use RoPE, and GPT-2's learned positions have no `resize_position_embeddings` in transformers"
    ),
    "test_keep_in_fp32_modules": _FP32,
    "test_keep_in_fp32_modules_exist": _FP32,
    "test_keep_in_fp32_modules_strict_also_hardcode_fp32": _FP32,
    "test_eager_matches_batched_and_grouped_inference": _MOE,
    "test_moe_models_record_router_logits": _MOE,
    "test_output_router_logits_from_config": _MOE,
    "test_model_rope_scaling_frequencies": _ROPE,
    "test_model_rope_scaling_from_config": _ROPE,
    "test_model_rope_with_partial_rotation": _ROPE,
    "test_vision_axial_rope": "for vision models",
}
if not HAS_GENERATION_TESTS:
    SKIPPED["test_generation_tester_mixin_inheritance"] = (
        "GenerationTesterMixin (tests/generation/) is not in the transformers sdist, so there is no real mixin to "
        "inherit; generation through the wrapper is checked token for token in tests/test_modeling.py"
    )
SKIPPED_PER_BACKBONE = {
    "gpt2": {"test_tp_plan_matches_params": "GPT-2 declares no tensor-parallel plan (the wrapper's is the wrapped model's)"},
}


def _skip_inapplicable(cls):
    skipped = {**SKIPPED, **SKIPPED_PER_BACKBONE.get(cls.backbone, {})}
    for attr in dir(cls):
        # `parameterized.expand` names its variants `<test>_<index>_<suffix>`.
        name = attr if attr in skipped else re.sub(r"_\d+_\w+$", "", attr)
        test = getattr(cls, attr)
        # `parameterized.expand` leaves the original name set to None: skip-wrapping it would make it a test.
        if attr.startswith("test_") and name in skipped and callable(test):
            setattr(cls, attr, unittest.skip(skipped[name])(test))
    return cls


class OneGenModelTestBase(ModelTesterMixin, *GenerationMixins):
    backbone = None
    all_model_classes = (OneGenForCausalLM,)
    # For the compiled-training tests (they need an accelerator and RUN_SLOW=1).
    _torch_compile_train_cls = OneGenForCausalLM
    # OneGenConfig nests the wrapped model's config (`text_config`), so attention implementations can be set per
    # sub-config, as the composite tests check.
    _is_composite = True

    def setUp(self):
        self.model_tester = OneGenCommonModelTester(self, backbone=self.backbone)
        self.config_tester = ConfigTester(
            self,
            config_class=OneGenConfig,
            # Text fields (vocab_size, ...) live on `text_config`, as for other composite configs.
            has_text_modality=False,
            # As the config serialises it (non-default fields), so that the JSON round trip compares equal.
            text_config={
                key: value
                for key, value in self.model_tester.get_text_config().to_diff_dict().items()
                if key != "transformers_version"
            },
            query_token_id=self.model_tester.query_token_id,
            doc_token_id=self.model_tester.doc_token_id,
            retrieval_mode="link",
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin gives causal LMs labels by looking their class name up in transformers' auto mappings, where a
        # remote-code class never is.
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs_dict["labels"] = torch.zeros(
                (self.model_tester.batch_size, self.model_tester.seq_length), dtype=torch.long, device=torch_device
            )
        return inputs_dict

    def test_sdpa_can_dispatch_non_composite_models(self):
        # The mixin runs it for non-composite models only; with one language sub-model and no other tower, the
        # wrapper dispatches as a whole like a plain LM, which is what this test checks.
        self._is_composite = False
        super().test_sdpa_can_dispatch_non_composite_models()

    def test_causal_lm_loss_honors_shift_labels(self):
        # The mixin finds causal LM heads by class name in transformers' auto mappings, where remote code never is.
        with patch.dict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, {"onegen": OneGenForCausalLM.__name__}):
            super().test_causal_lm_loss_honors_shift_labels()

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_loss_without_logits(self):
        self.model_tester.create_and_check_loss_without_logits(*self.model_tester.prepare_config_and_inputs())


@_skip_inapplicable
class OneGenLlamaModelTest(OneGenModelTestBase, unittest.TestCase):
    backbone = "llama"


@_skip_inapplicable
class OneGenQwen2ModelTest(OneGenModelTestBase, unittest.TestCase):
    backbone = "qwen2"


@_skip_inapplicable
class OneGenGPT2ModelTest(OneGenModelTestBase, unittest.TestCase):
    backbone = "gpt2"
