"""ModernBERT beyond the shared family tests (tests/test_family_models.py): the sliding window is what the
fixtures exercise, mixed precision and XLA give transformers' numbers, a jit-compiled mixed-precision training step
runs, and configs kbert cannot compute are refused naming the file.

References: tests/fixtures/make_family_fixtures.py (3 layers, global attention on layers 0 and 2, a local window
of 8 on layer 1, texts of ~60 tokens).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, EXPECTED

META = json.loads((EXPECTED / "families_models.json").read_text())["models"]
ARRAYS = np.load(EXPECTED / "families_models.npz")
NAME = "tiny-modernbert-ner"  # every bias, one local layer


def batch(name=NAME):
    keys = META[name]["batches"]["single"]
    ids = ARRAYS[keys["input_ids"]].astype("int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": ARRAYS[keys["attention_mask"]]
              .astype("int32")}
    return inputs, ARRAYS[keys["last_hidden_state"]]


def hidden_error(backbone, **call) -> float:
    inputs, want = batch()
    got = np.asarray(backbone(inputs, **call)["sequence_output"], "float32")
    return float(np.abs(got - want)[inputs["padding_mask"].astype(bool)].max())


@pytest.fixture(scope="module")
def checkpoint():
    return kbert.load_checkpoint(CHECKPOINTS / NAME)


def test_the_fixture_reaches_past_the_local_window(checkpoint):
    """Layer 1 attends within 4 tokens (banded: the batch is longer than twice the window); the same weights with a
    window covering every token (a masked full attention) miss the reference."""
    inputs, _ = batch()
    assert inputs["padding_mask"].sum(1).max() > 4 * checkpoint.config.extra["local_attention"]
    windows = [layer.window for layer in checkpoint.build_backbone().transformer_layers]
    assert windows == [0, 8, 0]
    wide = checkpoint.config.replace(extra={**checkpoint.config.extra, "local_attention": 1024})
    backbone = checkpoint.family.build_backbone(wide, use_pooler=False, random_init=False)
    for mine, theirs in zip(backbone.weights, checkpoint.build_backbone().weights):
        mine.assign(theirs)
    assert hidden_error(backbone) > 1e-3
    assert hidden_error(checkpoint.build_backbone()) < 1e-4


@pytest.mark.parametrize("length, half", [(37, 4), (8, 4), (3, 4), (64, 16)])
def test_banded_attention_equals_the_masked_full_attention(length, half):
    """Blocks of ``half`` queries against the three blocks around them give what the ``T x T`` masked softmax gives
    (a padded row included; lengths shorter than a block, and a multiple of it)."""
    from kbert.models.modernbert.backbone import banded_attention, window_keep

    rng = np.random.default_rng(length)
    q, k, v = (rng.normal(size=(2, 3, length, 8)).astype("float32") for _ in range(3))
    mask = np.ones((2, length), "int32")
    mask[1, length // 2 + 1:] = 0
    keep = (mask[:, None, None, :] > 0) & np.asarray(window_keep(length, 2 * half))[None, None]
    scores = np.where(keep, np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(8), -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    want = (probs / probs.sum(-1, keepdims=True)) @ v
    got = np.asarray(banded_attention(q, k, v, mask, half))
    real = mask.astype(bool)
    np.testing.assert_allclose(got.transpose(0, 2, 1, 3)[real], want.transpose(0, 2, 1, 3)[real], atol=1e-6)


@pytest.mark.parametrize("precision, atol", [("mixed_float16", 2e-2), ("mixed_bfloat16", 2e-1)])
def test_mixed_precision_stays_close(checkpoint, precision, atol):
    backbone = checkpoint.build_backbone(dtype=precision)
    inputs, _ = batch()
    assert backbone(inputs)["sequence_output"].dtype == precision.split("_")[1]
    assert hidden_error(backbone) < atol


def test_xla_gives_the_same_hidden_states(checkpoint):
    backbone = checkpoint.build_backbone()
    spec = {k: tf.TensorSpec((None, None), tf.int32) for k in ("token_ids", "segment_ids", "padding_mask")}
    compiled = tf.function(lambda x: backbone(x), input_signature=[spec], jit_compile=True)
    assert hidden_error(compiled) < 1e-4


def test_a_jit_compiled_mixed_precision_training_step_runs(tmp_path):
    """``ModernBertForSequenceClassification`` with mean pooling and the head's LayerNorm, in bfloat16 under XLA."""
    from conftest import ROOT
    from kbert.training.config import TrainConfig
    from kbert.training.strategy import make_strategy
    from kbert.training.trainer import TrainingRun

    demo = ROOT / "kbert" / "data" / "demo"
    config = TrainConfig(output=str(tmp_path), model=str(CHECKPOINTS / "tiny-modernbert-mean"), epochs=1,
                         train=str(demo / "sentiment_train.tsv") + "[:32]", batch_size=16, max_length=32, verbose=0,
                         bucket_by_length=False, jit_compile=True, precision="mixed_bfloat16")
    run = TrainingRun(config)
    run.build(make_strategy("default"))
    assert run.model.get_layer("head_norm").compute_dtype == "bfloat16"
    assert run.model.output["logits"].dtype == "float32"
    history = run.trainable.fit(run.plan.train.dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_rotary_positions_allow_the_full_8192_tokens():
    from kbert.checkpoint.config import EncoderConfig

    config = EncoderConfig.from_dict({"model_type": "modernbert"})
    assert (config.max_tokens, config.hidden_size, config.num_hidden_layers, config.type_vocab_size) == \
        (8192, 768, 22, 0)


@pytest.mark.parametrize("raw, message", [
    ({"classifier_pooling": "max"}, r"classifier_pooling 'max' is not supported \(only 'cls' and 'mean'\)"),
    ({"rope_scaling": {"rope_type": "yarn"}}, r"rope_scaling \{'rope_type': 'yarn'\} is not supported"),
    ({"local_attention": 0}, r"local_attention must be a positive integer, got 0"),
])
def test_configs_kbert_cannot_compute_are_refused_naming_the_file(raw, message):
    from kbert.checkpoint.config import EncoderConfig
    from kbert.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=rf"^my/config.json: {message}"):
        EncoderConfig.from_dict({"model_type": "modernbert", "vocab_size": 10, **raw}, source="my/config.json")
