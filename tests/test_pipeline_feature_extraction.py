"""kbert.pipeline("feature-extraction") reproduces transformers' feature-extraction pipeline (fixtures)."""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.errors import InputError

PIPELINES = json.loads((EXPECTED / "pipelines.json").read_text())
CALLS = PIPELINES["feature_extraction"]["calls"]
TOL = 1e-4


@pytest.fixture(scope="module")
def extractor(minilm_path):
    return kbert.pipeline("feature-extraction")  # the default model is the embedded MiniLM


@pytest.fixture(scope="module")
def tiny_extractor():
    return kbert.pipeline("feature-extraction", model=CHECKPOINTS / "tiny-uncased-cls")


def nesting(value):
    """Shape of a nested list, checking that it is rectangular."""
    if not isinstance(value, list):
        assert isinstance(value, float), type(value)
        return ()
    inner = {nesting(v) for v in value}
    assert len(inner) == 1, "ragged nesting"
    return (len(value), *inner.pop())


def unpadded(models, key_prefix, row):
    """HF hidden states of one batch row without its padding."""
    mask = models[f"{key_prefix}/attention_mask"][row].astype(bool)
    return models[f"{key_prefix}/last_hidden_state"][row][mask]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: repr(c["inputs"])[:40])
def test_matches_hf_pipeline(extractor, expected_models, call):
    _, models = expected_models
    out = extractor(call["inputs"], **call["kwargs"])
    items = out if call["output_is_list_of_items"] else [out]
    assert isinstance(out, list) and len(items) == len(call["npz_keys"])
    for item, shape, key in zip(items, call["item_shapes"], call["npz_keys"]):
        assert nesting(item) == tuple(shape)  # [1][T][H], plain Python floats
        np.testing.assert_allclose(np.asarray(item), models[key], atol=TOL, err_msg=key)


def test_a_single_string_is_not_wrapped_in_an_extra_list(extractor):
    single, batch = extractor("I love Paris"), extractor(["I love Paris"])
    assert nesting(single) == (1, 5, 384) and nesting(batch) == (1, 1, 5, 384)
    np.testing.assert_allclose(np.asarray(batch[0]), np.asarray(single), atol=1e-6)


def test_mean_pooling_normalized_matches_hf_hidden_states(extractor, expected_models):
    spec, models = expected_models
    texts = spec["minilm"]["batches"]["single"]["texts"]  # four texts of different lengths, padded by HF
    got = extractor(texts, pooling="mean", normalize=True)
    assert nesting(got) == (len(texts), 384)
    for row, vector in enumerate(got):
        hidden = unpadded(models, "minilm", row)
        want = hidden.mean(axis=0)
        want /= np.linalg.norm(want)
        np.testing.assert_allclose(vector, want, atol=TOL, err_msg=texts[row])
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_cls_pooling_and_unnormalised_mean(extractor, expected_models):
    _, models = expected_models
    hidden = models["minilm/feature_extraction/4"][0]  # "The weather in London is nice today."
    text = CALLS[2]["inputs"][1]
    np.testing.assert_allclose(extractor(text, pooling="cls"), hidden[0], atol=TOL)
    mean = extractor(text, pooling="mean")
    np.testing.assert_allclose(mean, hidden.mean(axis=0), atol=TOL)
    assert abs(np.linalg.norm(mean) - 1.0) > 1e-2  # not normalised unless asked


def test_batch_size_does_not_change_results(extractor):
    texts = [c for call in CALLS for c in ([call["inputs"]] if isinstance(call["inputs"], str) else call["inputs"])]
    texts += ["a much longer sentence " * 6, "x"]
    one = extractor(texts, batch_size=1, pooling="mean")
    many = extractor(texts, batch_size=32, pooling="mean")
    np.testing.assert_allclose(np.asarray(one), np.asarray(many), atol=1e-5)


def test_return_tensors_gives_numpy_arrays(extractor, expected_models):
    _, models = expected_models
    out = extractor("I love Paris", return_tensors=True)
    assert isinstance(out, np.ndarray) and out.shape == (1, 5, 384) and out.dtype == np.float32
    np.testing.assert_allclose(out, models["minilm/feature_extraction/0"], atol=TOL)
    batch = extractor(["I love Paris", "The weather in London is nice today."], return_tensors=True)
    assert isinstance(batch, list) and [b.shape for b in batch] == [(1, 5, 384), (1, 10, 384)]
    assert all(isinstance(b, np.ndarray) for b in batch)
    pooled = extractor("I love Paris", pooling="mean", normalize=True, return_tensors=True)
    assert isinstance(pooled, np.ndarray) and pooled.shape == (384,)


def test_pairs_match_hf_hidden_states(tiny_extractor, expected_models):
    spec, models = expected_models
    pairs = spec["tiny-uncased-cls"]["batches"]["pair"]["pairs"]
    out = tiny_extractor([{"text": a, "text_pair": b} for a, b in pairs])
    assert len(out) == len(pairs)
    for row, item in enumerate(out):
        want = unpadded(models, "tiny-uncased-cls/pair", row)
        assert nesting(item) == (1, *want.shape)
        np.testing.assert_allclose(np.asarray(item)[0], want, atol=TOL, err_msg=str(pairs[row]))
    single_pair = tiny_extractor({"text": pairs[0][0], "text_pair": pairs[0][1]})
    np.testing.assert_allclose(np.asarray(single_pair), np.asarray(out[0]), atol=1e-6)


def test_pairs_and_singles_mixed_keep_input_order(tiny_extractor, expected_models):
    spec, models = expected_models
    (a, b), text = spec["tiny-uncased-cls"]["batches"]["pair"]["pairs"][1], "Hello world!"
    out = tiny_extractor([{"text": a, "text_pair": b}, text], return_tensors=True)
    np.testing.assert_allclose(out[0][0], unpadded(models, "tiny-uncased-cls/pair", 1), atol=TOL)
    single_row = spec["tiny-uncased-cls"]["batches"]["single"]["texts"].index(text)
    np.testing.assert_allclose(out[1][0], unpadded(models, "tiny-uncased-cls", single_row), atol=TOL)


def test_pooled_output_matches_hf_pooler(tiny_extractor, expected_models):
    spec, models = expected_models
    texts = spec["tiny-uncased-cls"]["batches"]["single"]["texts"]
    got = tiny_extractor(texts, pooling="pooled", return_tensors=True)
    np.testing.assert_allclose(np.stack(got), models["tiny-uncased-cls/pooler_output"], atol=TOL)


def test_pooled_without_pooler_weights_is_an_input_error():
    folder = CHECKPOINTS / "tiny-cased-token-cls"
    extractor = kbert.pipeline("feature-extraction", model=folder)
    with pytest.raises(InputError, match=rf"pooling='pooled' needs pooler weights, which {folder} lacks"):
        extractor("Hello", pooling="pooled")
    assert nesting(extractor("Hello")) == (1, 3, 32)  # plain hidden states still work


@pytest.mark.parametrize("inputs, params, message", [
    ("hi", {"pooling": "max"}, r"pooling must be one of \['mean', 'cls', 'pooled'\] or None, got 'max'"),
    ("hi", {"top_k": 1}, r"unknown argument\(s\) \['top_k'\]; accepted: \['pooling', 'normalize', 'return_tensors'\]"),
    (42, {}, r"inputs must be a str, a dict with 'text' \(and 'text_pair'\) or a list of them; got int"),
    ([], {}, r"got an empty list of inputs"),
    ([{"text": "a", "pair": "b"}], {},
     r"input 0: a dict input needs the key 'text' and may have 'text_pair'; got keys \['pair', 'text'\]"),
    (["ok", None], {}, r"input 1 is NoneType None; expected a str"),
])
def test_bad_inputs(tiny_extractor, inputs, params, message):
    with pytest.raises(InputError, match=message):
        tiny_extractor(inputs, **params)
