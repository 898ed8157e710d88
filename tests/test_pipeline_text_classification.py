"""kbert's text-classification pipeline returns what transformers' pipeline returns (fixtures)."""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from fixtures.minilm_heads import assemble_minilm_head
from kbert.errors import InputError, UnknownTaskError

CASES = json.loads((EXPECTED / "pipelines.json").read_text())


@pytest.fixture(scope="module")
def pipelines():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = kbert.pipeline("text-classification", model=CHECKPOINTS / name)
        return cache[name]

    return get


def assert_same_structure(got, want, where=""):
    """Same nesting, same labels, scores within 1e-4."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_structure(g, w, f"{where}[{i}]")
    else:
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: {got!r} vs {want!r}"
        assert got["label"] == want["label"], f"{where}: {got} vs {want}"
        assert got["score"] == pytest.approx(want["score"], abs=1e-4), where


@pytest.mark.parametrize("case", CASES["text_classification"],
                         ids=lambda c: f"{c['checkpoint']}-{json.dumps(c['kwargs'])}-{type(c['inputs']).__name__}")
def test_matches_transformers_pipeline(case, pipelines):
    kwargs = dict(case["kwargs"])
    kwargs.pop("truncation", None)  # kbert always truncates to the model's maximum
    got = pipelines(case["checkpoint"])(case["inputs"], **kwargs)
    assert_same_structure(got, case["output"])


def test_finbert_style_head_on_real_minilm(tmp_path, minilm_path):
    """A fine-tuned-classifier layout (bert.* + classifier.*) on the real backbone, as HF saves it."""
    assemble_minilm_head(CHECKPOINTS / "minilm-sentiment-head", minilm_path, tmp_path)
    case = CASES["minilm_sentiment_head"]["calls"][0]
    got = kbert.pipeline("sentiment-analysis", model=tmp_path)(case["inputs"], **case["kwargs"])
    assert_same_structure(got, case["output"])


def test_bad_inputs_raise_clear_errors(pipelines):
    pipe = pipelines("tiny-uncased-cls")
    with pytest.raises(InputError, match=r"input 1 is int 5; expected a str"):
        pipe(["fine", 5])
    with pytest.raises(InputError, match="needs the key 'text'"):
        pipe({"txt": "a"})
    with pytest.raises(InputError, match="empty list"):
        pipe([])
    with pytest.raises(InputError, match="unknown argument.*'topk'"):
        pipe("a", topk=2)
    with pytest.raises(InputError, match="function_to_apply must be one of"):
        pipe("a", function_to_apply="relu")
    with pytest.raises(InputError, match="top_k must be a positive int"):
        pipe("a", top_k=0)
    with pytest.raises(UnknownTaskError, match="unknown task 'text-clasification'; known tasks"):
        kbert.pipeline("text-clasification", model=CHECKPOINTS / "tiny-uncased-cls")


def test_empty_and_overlong_texts_behave_like_transformers(pipelines):
    pipe = pipelines("tiny-uncased-cls")
    empty = pipe("")  # HF classifies [CLS] [SEP]
    assert len(empty) == 1 and empty[0]["label"] in {"negative", "neutral", "positive"}
    long_text = "the movie was great " * 200  # far beyond the 64-token maximum: truncated, not an error
    assert pipe(long_text)[0]["score"] > 0


def test_batching_does_not_change_results(pipelines):
    pipe = pipelines("tiny-uncased-cls")
    texts = ["I love Paris", "the movie was not good", "what a day ! the team won the match today", "a"] * 3
    one_by_one = [pipe(t, top_k=None) for t in texts]
    batched = pipe(texts, top_k=None, batch_size=5)
    for a, b in zip(one_by_one, batched):
        assert [d["label"] for d in a] == [d["label"] for d in b]
        np.testing.assert_allclose([d["score"] for d in a], [d["score"] for d in b], atol=1e-5)


def test_forward_pass_is_traced_once_for_all_batch_shapes(pipelines):
    pipe = pipelines("tiny-multilabel")
    pipe(["a", "the movie was great and the story was good " * 3, "hello world"], batch_size=2)
    pipe("what a day ! the team won the match today and all the people were happy")
    assert pipe._forward.experimental_get_tracing_count() == 1


def test_eager_first_calls_and_traced_tokenizer_give_the_same_results():
    import importlib

    pipeline_module = importlib.import_module("kbert.pipelines")
    texts = ["I love Paris", "a", "the movie was not good " * 20, "what a day ! the team won", "ünïcödé café"]
    pipe = kbert.pipeline("text-classification", model=CHECKPOINTS / "tiny-uncased-cls")
    eager = pipe(texts, top_k=None, batch_size=2)
    (key, encoder), = pipe._encoders.items()
    assert key == (False, None, pipe.max_length) and not encoder.traced  # a first call is tokenized eagerly
    encoder.budget_seconds = 0.0  # spent: the next call traces
    traced = pipe(texts, top_k=None, batch_size=2)
    assert encoder.traced
    assert_same_structure(traced, eager)
    assert pipeline_module.bucket_length(13, 512, 1) == 13 and pipeline_module.bucket_length(13, 512) == 16


def test_lone_surrogates_are_rejected_with_the_position(pipelines):
    with pytest.raises(InputError, match=r"input 1: not valid Unicode \(lone surrogate '.*ud800' at index 2\)"):
        pipelines("tiny-uncased-cls")(["fine", "ab\ud800c"])
