"""Every call parameter of every task can be given when the pipeline is built, as transformers allows;
a call's own arguments override it, and a bad default fails at construction, naming the parameter."""

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.errors import InputError

CLS = str(CHECKPOINTS / "tiny-uncased-cls")
NER = str(CHECKPOINTS / "tiny-cased-token-cls")
TEXT = "Merhaba! Benim adım Sinan. San Francisco'dan geliyorum"


@pytest.mark.parametrize("task, model, defaults, call, text", [
    ("text-classification", CLS, {"top_k": None}, {"top_k": 1}, "I love Paris"),
    ("text-classification", CLS, {"function_to_apply": "none"}, {"function_to_apply": "sigmoid"}, "I love Paris"),
    ("ner", NER, {"aggregation_strategy": "simple"}, {"aggregation_strategy": "none"}, TEXT),
    ("ner", NER, {"ignore_labels": []}, {"ignore_labels": ["O"]}, TEXT),
    ("ner", NER, {"stride": 4, "aggregation_strategy": "first"}, {"stride": None, "aggregation_strategy": "first"},
     TEXT * 40),
    ("feature-extraction", CLS, {"pooling": "mean", "normalize": True}, {"pooling": "cls"}, "I love Paris"),
])
def test_construction_defaults_equal_call_arguments_and_calls_override_them(task, model, defaults, call, text):
    plain = kbert.pipeline(task, model=model)
    with_defaults = kbert.pipeline(task, model=model, **defaults)
    assert _same(with_defaults(text), plain(text, **defaults))
    assert _same(with_defaults(text, **call), plain(text, **{**defaults, **call}))
    assert not _same(plain(text, **defaults), plain(text, **{**defaults, **call}))  # the parameter matters here


def test_word_lists_as_a_default():
    words = ["Sinan", "lives", "in", "Paris"]
    ner = kbert.pipeline("ner", model=NER, is_split_into_words=True, aggregation_strategy="max")
    assert ner(words) == kbert.pipeline("ner", model=NER)(words, is_split_into_words=True, aggregation_strategy="max")


@pytest.mark.parametrize("task, model, defaults, message", [
    ("ner", NER, {"aggregation_strategy": "biggest"}, "aggregation_strategy"),
    ("text-classification", CLS, {"top_k": 0}, "top_k must be a positive int or None, got 0"),
    ("text-classification", CLS, {"aggregation_strategy": "simple"}, r"unknown argument\(s\) \['aggregation_strategy'\]"),
    ("feature-extraction", CLS, {"pooling": "max"}, "pooling must be one of"),
])
def test_bad_defaults_fail_at_construction(task, model, defaults, message):
    with pytest.raises(InputError, match=message):
        kbert.pipeline(task, model=model, **defaults)


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, atol=1e-6))
    return a == b
