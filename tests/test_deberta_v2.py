"""DeBERTa-v2/v3 beyond the shared family tests (tests/test_family_*.py): mixed precision, XLA, the config keys
transformers reads its own way, and what is refused.

References: transformers' hidden states of the tiny checkpoints (tests/fixtures/make_family_fixtures.py).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.checkpoint.config import EncoderConfig
from kbert.errors import UnsupportedModelError
from kbert.models.deberta_v2.attention import relative_buckets

META = json.loads((EXPECTED / "families_models.json").read_text())["models"]
ARRAYS = np.load(EXPECTED / "families_models.npz")
NAME = "tiny-deberta-v2-cls"


def inputs(name=NAME, batch="single"):
    keys = META[name]["batches"][batch]
    ids = ARRAYS[keys["input_ids"]].astype("int32")
    return ({"token_ids": ids, "segment_ids": ARRAYS[keys["token_type_ids"]].astype("int32"),
             "padding_mask": ARRAYS[keys["attention_mask"]].astype("int32")}, ARRAYS[keys["last_hidden_state"]])


@pytest.fixture(scope="module")
def checkpoint():
    return kbert.load_checkpoint(CHECKPOINTS / NAME)


def test_buckets_are_exact_near_and_logarithmic_far():
    """transformers' make_log_bucket_position with 8 buckets up to 64 (values from its build_relative_position):
    exact up to 4, then 4 + ceil(log(d / 4) / log(63 / 4) * 3), so distance 63 (max_relative_positions - 1) is
    bucket 7 and farther ones go past the span (clamped later)."""
    distances = np.array([0, 1, 3, 4, 5, 9, 10, 11, 63, 64, 299])
    row = np.asarray(relative_buckets(300, position_buckets=8, max_relative_positions=64))[299]  # i - j, i = 299
    assert row[299 - distances].tolist() == [0, 1, 3, 4, 5, 5, 5, 6, 7, 8, 9]
    assert np.asarray(relative_buckets(300, position_buckets=8, max_relative_positions=64))[0, distances].tolist() \
        == [0, -1, -3, -4, -5, -5, -5, -6, -7, -8, -9]
    assert np.asarray(relative_buckets(5, position_buckets=-1, max_relative_positions=-1))[0].tolist() == \
        [0, -1, -2, -3, -4]


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_builds_runs_and_trains_a_step(checkpoint, policy):
    """Variables float32, compute in half precision (scores and softmax in float32), hidden states near float32's,
    and one finite training step of the classifier."""
    from kbert.tasks import get_task

    task = get_task("text-classification")(checkpoint)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = task.build_model()
        backbone = checkpoint.build_backbone(dtype=policy)
    finally:
        keras.config.set_dtype_policy(previous)
    x, want = inputs()
    assert {v.dtype for v in backbone.weights} == {"float32"}
    hidden = np.asarray(keras.ops.cast(backbone(x)["sequence_output"], "float32"))
    mask = x["padding_mask"].astype(bool)
    assert np.isfinite(hidden).all() and np.abs(hidden - want)[mask].max() < 0.3
    trainable = keras.Model(model.input, model.output["logits"])
    trainable.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    loss = trainable.train_on_batch(x, np.arange(len(x["token_ids"])) % 3)
    assert np.isfinite(loss)


def test_xla_predict_matches_eager(checkpoint):
    backbone = checkpoint.build_backbone()
    x, want = inputs(batch="multilingual")
    compiled = tf.function(lambda batch: backbone(batch)["sequence_output"], jit_compile=True)
    got = np.asarray(compiled({k: tf.constant(v) for k, v in x.items()}))
    assert np.abs(got - want)[x["padding_mask"].astype(bool)].max() < 1e-4


def test_a_dynamic_length_graph_and_a_config_round_trip(checkpoint):
    """One traced graph serves every length (the relative positions follow T); from_config rebuilds it."""
    backbone = checkpoint.build_backbone()
    fn = tf.function(lambda batch: backbone(batch)["sequence_output"],
                     input_signature=[{k: tf.TensorSpec([None, None], tf.int32) for k in inputs()[0]}])
    for batch in ("single", "pair"):
        x, want = inputs(batch=batch)
        assert np.abs(np.asarray(fn(x)) - want)[x["padding_mask"].astype(bool)].max() < 1e-4
    clone = type(backbone).from_config(backbone.get_config())
    assert [w.shape for w in clone.weights] == [w.shape for w in backbone.weights]


def config(**changes):
    return EncoderConfig.from_dict({"model_type": "deberta-v2", "vocab_size": 10, "hidden_size": 8,
                                    "num_attention_heads": 2, **changes}, source="my/config.json")


def test_transformers_defaults_and_string_pos_att_type():
    plain = config()
    assert (plain.type_vocab_size, plain.layer_norm_eps, plain.extra["relative_attention"],
            plain.extra["position_biased_input"], plain.extra["pos_att_type"]) == (0, 1e-7, False, True, [])
    assert config(pos_att_type="P2C|c2p").extra["pos_att_type"] == ["p2c", "c2p"]


@pytest.mark.parametrize("key, value, match", [
    ("conv_kernel_size", 3, "conv_kernel_size 3 is not supported"),
    ("embedding_size", 4, "embedding_size 4 is not supported"),
    ("pos_att_type", ["c2p", "p2p"], "pos_att_type .* is not supported"),
])
def test_what_the_backbone_does_not_build_is_refused_naming_the_file(key, value, match):
    with pytest.raises(UnsupportedModelError, match=rf"^my/config.json: {match}"):
        config(**{key: value})


def test_the_context_pooler_is_the_head_and_follows_pooler_hidden_act():
    """The pooler is saved as transformers writes it (no deberta. prefix) and never loaded into the backbone."""
    types = kbert.load_checkpoint(CHECKPOINTS / "tiny-deberta-v2-types")
    family = types.family
    assert family.head_layout("ForSequenceClassification", types.config).hidden == ("pooler.dense", "tanh")
    assert family.head_layout("ForSequenceClassification", kbert.load_checkpoint(CHECKPOINTS / NAME).config).hidden \
        == ("pooler.dense", "gelu")
    assert family.is_head_tensor("pooler.dense.weight") and not family.is_head_tensor("encoder.rel_embeddings.weight")
    names = [s.hf_name for s in family.backbone_slots(types.build_backbone())]
    assert "embeddings.position_embeddings.weight" in names and "embeddings.token_type_embeddings.weight" in names
    assert "encoder.layer.0.attention.self.pos_key_proj.weight" in names and "encoder.LayerNorm.weight" not in names
    assert not any(n.startswith("pooler.") for n in names)
