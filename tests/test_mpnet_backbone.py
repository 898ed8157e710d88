"""MPNet parity with transformers: backbone outputs, weight names and round trip, relative buckets, tokenizer.

Reference fixtures come from ``tests/fixtures/make_mpnet_backbone_fixture.py`` (a tiny random ``MPNetModel`` with
perturbed biases, LayerNorms and relative bias, and an ``MPNetTokenizerFast``).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbert.checkpoint.loader import assign
from kbert.checkpoint.weights_files import load_state_dict
from kbert.errors import TokenizerError, UnsupportedModelError
from kbert.models.mpnet.backbone import MPNetBackbone, relative_position_bucket
from kbert.models.mpnet.tokenizer import MPNetTokenizer
from kbert.models.mpnet.weights import backbone_slots
from tests.conftest import FIXTURES

FOLDER = FIXTURES / "checkpoints" / "tiny-mpnet-backbone"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "expected" / "mpnet_backbone.npz"))


@pytest.fixture(scope="module")
def state_dict():
    return {name.removeprefix("mpnet."): np.asarray(t) for name, t in load_state_dict(FOLDER).items()}


def build(dtype=None, **overrides) -> MPNetBackbone:
    config = json.loads((FOLDER / "config.json").read_text())
    args = dict(vocabulary_size=config["vocab_size"], num_layers=config["num_hidden_layers"],
                num_heads=config["num_attention_heads"], hidden_dim=config["hidden_size"],
                intermediate_dim=config["intermediate_size"], hidden_act=config["hidden_act"],
                layer_norm_epsilon=config["layer_norm_eps"], dropout=config["hidden_dropout_prob"],
                max_sequence_length=config["max_position_embeddings"],
                relative_attention_num_buckets=config["relative_attention_num_buckets"],
                pad_token_id=config["pad_token_id"], initializer_range=config["initializer_range"], dtype=dtype)
    return MPNetBackbone(**{**args, **overrides})


@pytest.fixture(scope="module")
def backbone(state_dict):
    model = build(weights_initializer=keras.initializers.Zeros())
    assign(backbone_slots(model), state_dict, source=str(FOLDER))
    return model


def inputs(expected):
    ids = expected["ids"]
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": expected["mask"]}


def test_outputs_match_transformers(backbone, expected):
    out = backbone(inputs(expected))
    np.testing.assert_allclose(out["sequence_output"], expected["last_hidden_state"], atol=1e-4)
    np.testing.assert_allclose(out["pooled_output"], expected["pooler_output"], atol=1e-4)


def test_relative_bias_is_used(backbone, expected, state_dict):
    """The fixture's bias is large: a backbone without it (zeros) must miss the reference by far."""
    bias = backbone.relative_attention_bias.embeddings
    bias.assign(np.zeros(bias.shape, "float32"))
    try:
        out = backbone(inputs(expected))["sequence_output"]
        assert np.abs(np.asarray(out) - expected["last_hidden_state"]).max() > 1e-2
    finally:
        bias.assign(state_dict["encoder.relative_attention_bias.weight"])


def test_buckets_match_transformers(expected):
    buckets = relative_position_bucket(expected["relative_positions"])
    np.testing.assert_array_equal(np.asarray(buckets), expected["buckets"])
    # Every bucket but 16 (distance 0 is bucket 0, so keys on the right start at 17), log-spaced ones included.
    assert set(expected["buckets"].tolist()) == set(range(32)) - {16}


def test_slot_names_are_the_state_dict(backbone, state_dict):
    names = [s.hf_name for s in backbone_slots(backbone)]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(state_dict)
    assert len(names) == len(backbone.weights)  # every Keras variable has a slot


def test_round_trip_is_exact(backbone, state_dict):
    for slot in backbone_slots(backbone):
        original = state_dict[slot.hf_name]
        np.testing.assert_array_equal(slot.to_hf(slot.to_keras(original)), original, err_msg=slot.hf_name)
        np.testing.assert_array_equal(slot.to_hf(np.asarray(slot.variable)), original, err_msg=slot.hf_name)


def test_dynamic_length_in_tf_function_and_config_round_trip(backbone, expected):
    spec = {k: tf.TensorSpec((None, None), tf.int32) for k in ("token_ids", "segment_ids", "padding_mask")}
    traced = tf.function(lambda x: backbone(x), input_signature=[spec])
    short = {k: v[1:3, :23] for k, v in inputs(expected).items()}  # rows 5 and 23 tokens, cut to 23
    for batch, rows in ((inputs(expected), slice(None)), (short, slice(1, 3))):
        out = traced({k: tf.constant(v) for k, v in batch.items()})
        length = batch["token_ids"].shape[1]
        np.testing.assert_allclose(out["sequence_output"], expected["last_hidden_state"][rows, :length], atol=1e-4)
    clone = MPNetBackbone.from_config(backbone.get_config())
    clone.set_weights(backbone.get_weights())
    np.testing.assert_allclose(clone(short)["sequence_output"], expected["last_hidden_state"][1:3, :23], atol=1e-4)


def test_mixed_float16(state_dict, expected):
    model = build(dtype="mixed_float16", weights_initializer=keras.initializers.Zeros())
    assign(backbone_slots(model), state_dict, source=str(FOLDER))
    out = model(inputs(expected))
    assert out["sequence_output"].dtype == "float16"
    np.testing.assert_allclose(np.asarray(out["sequence_output"], "float32"), expected["last_hidden_state"], atol=5e-2)


def test_too_few_buckets_is_refused():
    with pytest.raises(UnsupportedModelError, match="relative_attention_num_buckets=16"):
        build(relative_attention_num_buckets=16)


# --- tokenizer --------------------------------------------------------------------------------------------
TOKENIZER_CASES = json.loads((FIXTURES / "expected" / "mpnet_tokenizer.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tokenizer():
    return MPNetTokenizer.from_pretrained(FOLDER, max_position_embeddings=66)


@pytest.mark.parametrize("case", TOKENIZER_CASES["singles"] + TOKENIZER_CASES["pairs"],
                         ids=lambda c: repr((c["text"], c.get("pair"))))
def test_tokenizer_matches_fast_tokenizer(tokenizer, case):
    pair = [case["pair"]] if "pair" in case else None
    enc = tokenizer.encode(tf.constant([case["text"]]), None if pair is None else tf.constant(pair))
    assert enc.token_ids.to_list()[0] == case["ids"]
    assert enc.segment_ids.to_list()[0] == case["token_types"]
    assert [list(o) for o in zip(enc.starts.to_list()[0], enc.ends.to_list()[0])] == case["offsets"]


def test_tokenizer_in_graph_and_special_ids(tokenizer):
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id) == (0, 2, 1, 99)
    traced = tf.function(lambda t: tokenizer.encode(t).starts.flat_values,
                         input_signature=[tf.TensorSpec((None,), tf.string)])
    assert traced(tf.constant(["a  <mask> world", "<mask>"])).numpy().tolist() == [0, 0, 1, 10, 0, 0, 0, 0]


def test_tokenizer_needs_mpnet_special_tokens(tmp_path):
    (tmp_path / "vocab.txt").write_text((FOLDER / "vocab.txt").read_text())
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": true, "cls_token": "<s>"}')
    with pytest.raises(TokenizerError, match=r"do not name \['sep_token', 'pad_token', 'mask_token'\]"):
        MPNetTokenizer.from_pretrained(tmp_path)
