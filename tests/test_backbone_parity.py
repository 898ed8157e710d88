"""The Keras backbone reproduces Hugging Face hidden states for every fixture checkpoint."""

import numpy as np
import pytest

from conftest import CHECKPOINTS
from kbert.checkpoint import load_checkpoint

TINY = ["tiny-uncased-cls", "tiny-uncased-cls-bin", "tiny-uncased-cls-sharded", "tiny-cased-token-cls",
        "tiny-uncased-qa", "tiny-regression", "tiny-multilabel", "tiny-relu-pair"]


def _inputs(arrays, keys):
    return {
        "token_ids": arrays[keys["input_ids"]].astype("int32"),
        "segment_ids": arrays[keys["token_type_ids"]].astype("int32"),
        "padding_mask": arrays[keys["attention_mask"]].astype("int32"),
    }


def _check_batches(name, folder, expected_models):
    meta, arrays = expected_models
    backbone = load_checkpoint(folder).build_backbone()
    for batch in meta[name]["batches"].values():
        keys = batch["keys"]
        inputs = _inputs(arrays, keys)
        out = backbone(inputs)
        mask = inputs["padding_mask"].astype(bool)
        got = np.asarray(out["sequence_output"])[mask]
        want = arrays[keys["last_hidden_state"]][mask]
        assert np.abs(got - want).max() < 1e-4, f"{name}: hidden states differ by {np.abs(got - want).max()}"
        if "pooler_output" in keys:
            diff = np.abs(np.asarray(out["pooled_output"]) - arrays[keys["pooler_output"]]).max()
            assert diff < 1e-4, f"{name}: pooler differs by {diff}"
        else:
            assert "pooled_output" not in out


@pytest.mark.parametrize("name", TINY)
def test_tiny_checkpoints_match_transformers(name, expected_models):
    _check_batches(name, CHECKPOINTS / name, expected_models)


def test_minilm_matches_transformers(minilm_path, expected_models):
    _check_batches("minilm", minilm_path, expected_models)


def test_checkpoint_without_pooler_has_no_pooled_output():
    ckpt = load_checkpoint(CHECKPOINTS / "tiny-cased-token-cls")
    assert not ckpt.has_pooler
    assert ckpt.config.hidden_act == "gelu_new" and ckpt.config.type_vocab_size == 3
    assert ckpt.build_backbone().layer_norm_epsilon == pytest.approx(1e-7)


def test_backbone_config_round_trips_through_keras_serialization(tmp_path):
    from kbert.modeling.backbone import EncoderBackbone

    backbone = load_checkpoint(CHECKPOINTS / "tiny-cased-token-cls").build_backbone()
    clone = EncoderBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert (clone.hidden_act, clone.use_pooler, clone.num_segments) == ("gelu_new", False, 3)
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    import keras

    reloaded = keras.saving.load_model(path)
    inputs = {"token_ids": np.array([[2, 7, 9, 3]], "int32"), "segment_ids": np.zeros((1, 4), "int32"),
              "padding_mask": np.ones((1, 4), "int32")}
    np.testing.assert_allclose(reloaded(inputs)["sequence_output"], backbone(inputs)["sequence_output"], atol=1e-6)


def test_random_init_false_leaves_only_the_pooler_random():
    """Loading skips drawing weights the checkpoint overwrites; a pooler it lacks must still be drawn (as HF)."""
    from kbert.modeling.backbone import EncoderBackbone

    config = load_checkpoint(CHECKPOINTS / "tiny-uncased-cls").config
    drawn = EncoderBackbone.from_encoder_config(config, use_pooler=True)
    bare = EncoderBackbone.from_encoder_config(config, use_pooler=True, random_init=False)
    std = float(np.std(drawn.token_embedding.embeddings.numpy()))
    assert std == pytest.approx(config.extra.get("initializer_range", 0.02), rel=0.1)
    kernels = [v for v in bare.weights if "pooled_dense" not in v.path and v.path.endswith(("kernel", "embeddings"))]
    assert kernels and all(not np.any(v.numpy()) for v in kernels)
    assert np.std(bare.pooled_dense.kernel.numpy()) > 0.01

    no_pooler = load_checkpoint(CHECKPOINTS / "tiny-cased-token-cls")
    assert np.std(no_pooler.build_backbone(use_pooler=True).pooled_dense.kernel.numpy()) > 0.01
