"""kbert.data.labels.LabelSet: inference, encoding, id2label round trips and checkpoint compatibility."""

import re

import numpy as np
import pytest

from kbert.data.examples import RawExample
from kbert.data.labels import LabelSet, sort_names
from kbert.data.readers import read_examples
from kbert.errors import DataError


def ex(label, where=""):
    return RawExample("t", label=label, where=where)


def raises(message):
    return pytest.raises(DataError, match=re.escape(message))


def test_infer_class_sorts_names_and_numbers_numerically():
    labels = LabelSet.infer([ex("10"), ex("2"), ex("b"), ex("2"), ex("a")], "class")
    assert labels.names == ("2", "10", "a", "b") and labels.num_labels == 4
    assert labels.problem_type == "single_label_classification"
    assert labels.id2label() == {0: "2", 1: "10", 2: "a", 3: "b"}
    assert labels.label2id() == {"2": 0, "10": 1, "a": 2, "b": 3}


def test_infer_is_independent_of_order():
    names = ["neutral", "positive", "negative", "1.5", "-3", "0"]
    forward = LabelSet.infer([ex(n) for n in names], "class")
    backward = LabelSet.infer([ex(n) for n in reversed(names)], "class")
    assert forward == backward and forward.names == ("-3", "0", "1.5", "negative", "neutral", "positive")


def test_sort_names_keeps_distinct_spellings_of_one_number():
    assert sort_names(["1.0", "1", "01"]) == ("01", "1", "1.0")


def test_encode_class():
    labels = LabelSet(("negative", "positive"))
    ids = labels.encode([ex("positive"), ex("negative"), ex("positive")])
    assert ids.dtype == np.int32 and ids.tolist() == [1, 0, 1]
    assert labels.encode([]).shape == (0,)


def test_multi_label_infer_and_multi_hot():
    examples = [ex(("sports", "news")), ex(()), ex(("politics",))]
    labels = LabelSet.infer(examples, "multi_label")
    assert labels.names == ("news", "politics", "sports") and labels.problem_type == "multi_label_classification"
    hot = labels.encode(examples)
    assert hot.dtype == np.float32 and hot.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_regression():
    examples = [ex(3.8), ex(0.0), ex(5)]
    labels = LabelSet.infer(examples, "regression")
    assert labels.names == ("LABEL_0",) and labels.num_labels == 1 and labels.problem_type == "regression"
    values = labels.encode(examples)
    assert values.dtype == np.float32 and values.shape == (3,) and values.tolist() == pytest.approx([3.8, 0, 5])


def test_from_id2label_accepts_json_string_keys():
    labels = LabelSet.from_id2label({"1": "not_entailment", "0": "entailment"})
    assert labels.names == ("entailment", "not_entailment") and labels.id2label() == {0: "entailment",
                                                                                      1: "not_entailment"}
    assert LabelSet.from_id2label({0: "LABEL_0"}, "regression").kind == "regression"


def test_label_set_is_frozen_and_hashable():
    labels = LabelSet(["a", "b"])
    assert labels.names == ("a", "b") and hash(labels) == hash(LabelSet(("a", "b")))
    with pytest.raises(AttributeError):
        labels.names = ("c",)


# --- errors -------------------------------------------------------------------------------------
def test_unknown_label_names_where_and_choices():
    labels = LabelSet(("negative", "positive"))
    with raises("train.csv:17: label 'postive' is not one of ['negative', 'positive']"):
        labels.encode([ex("positive", "train.csv:16"), ex("postive", "train.csv:17"), ex("x", "train.csv:18")])


def test_unknown_label_long_list_is_cut():
    labels = LabelSet(tuple(f"c{i:02d}" for i in range(57)))
    with raises("d.csv:3: label 'zz' is not one of ['c00', 'c01',") as info:
        labels.encode([ex("zz", "d.csv:3")])
    assert "'c19', ...] (57 labels)" in str(info.value) and "c20" not in str(info.value)


@pytest.mark.parametrize("kind, examples, message", [
    ("class", [ex("a", "f:1"), ex(None, "f:2")], "f:2: missing label"),
    ("class", [ex("a"), ex(None)], "example[1]: missing label"),
    ("class", [ex("a", "f:1"), ex(1, "f:2")], "f:2: a class label must be a string, got int 1"),
    ("class", [ex("a"), ex("a")], "only one class label 'a' occurs in the 2 examples; a classifier needs at least two"),
    ("class", [], "no examples to infer the labels from"),
    ("multi_label", [ex(()), ex(())], "no label occurs in the 2 examples"),
    ("multi_label", [ex("a", "f:4")], "f:4: a multi_label label must be a tuple of names, got str 'a'"),
    ("regression", [ex(1.0), ex("2.5", "f:2")], "f:2: a regression label must be a finite number, got '2.5'"),
    ("regression", [ex(float("nan"), "f:9")], "f:9: a regression label must be a finite number, got nan"),
    ("regression", [ex(True, "f:1")], "f:1: a regression label must be a finite number, got True"),
    ("ordinal", [ex("a")], "unknown label kind 'ordinal'"),
])
def test_infer_errors(kind, examples, message):
    with raises(message):
        LabelSet.infer(examples, kind)


@pytest.mark.parametrize("labels, examples, message", [
    (LabelSet(("a", "b")), [ex("a", "f:1"), ex(None, "f:2")], "f:2: missing label"),
    (LabelSet(("a", "b")), [ex(("a",), "f:1")], "f:1: a class label must be a string, got tuple"),
    (LabelSet(("a", "b"), "multi_label"), [ex(("a", "c"), "f:3")], "f:3: label 'c' is not one of ['a', 'b']"),
    (LabelSet(("a", "b"), "multi_label"), [ex(None, "f:1")], "f:1: missing label"),
    (LabelSet(("LABEL_0",), "regression"), [ex(1.0), ex(float("inf"), "f:2")],
     "f:2: a regression label must be a finite number, got inf"),
])
def test_encode_errors(labels, examples, message):
    with raises(message):
        labels.encode(examples)


@pytest.mark.parametrize("make, message", [
    (lambda: LabelSet(("a", "b", "a")), "label names must be unique; ['a'] appear more than once"),
    (lambda: LabelSet(()), "a label set needs at least one label name"),
    (lambda: LabelSet(("a", 1)), "label names must be strings, got 1"),
    (lambda: LabelSet(("a", "b"), "regression"), "a regression label set has one output, got 2 names"),
    (lambda: LabelSet(("a",), "ranking"), "unknown label kind 'ranking'"),
    (lambda: LabelSet.from_id2label({0: "a", 2: "b"}), "id2label keys must be 0..1, got [0, 2]"),
    (lambda: LabelSet.from_id2label({"x": "a"}), "id2label keys must be label ids 0, 1, ..., got 'x'"),
])
def test_construction_errors(make, message):
    with raises(message):
        make()


# --- checkpoint compatibility ------------------------------------------------------------------
def test_compatible_when_data_labels_are_a_subset_in_any_order():
    head = LabelSet.from_id2label({0: "negative", 1: "neutral", 2: "positive"})
    head.check_compatible(["positive", "negative"], "ckpt")
    head.check_compatible(LabelSet(("negative", "positive")), "ckpt")
    LabelSet(("LABEL_0",), "regression").check_compatible(LabelSet.infer([ex(1.0)], "regression"), "ckpt")


@pytest.mark.parametrize("head, data, message", [
    (LabelSet(("negative", "positive")), ["0", "1"],
     "ckpt: the checkpoint's head predicts ['negative', 'positive'], but the data has labels ['0', '1']: "
     "'0', '1' are not among the head's labels; train a new head to use other labels"),
    (LabelSet(("LABEL_0", "LABEL_1")), ["neg", "pos"],
     "'neg', 'pos' are not among the head's labels (the head's names are the generic LABEL_i; "
     "its config has no real id2label)"),
    (LabelSet(("a", "b")), LabelSet(("a", "b"), "multi_label"),
     "ckpt: the checkpoint's head is for single_label_classification (2 outputs), but the data is for "
     "multi_label_classification"),
    (LabelSet(("LABEL_0",), "regression"), ["a", "b"],
     "ckpt: the checkpoint's head is a regression head (1 output), but the data has 2 labels ['a', 'b']"),
])
def test_incompatible(head, data, message):
    with raises(message):
        head.check_compatible(data, "ckpt")


# --- with the readers and the real data --------------------------------------------------------
def test_error_names_file_and_line_from_a_real_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nnice,positive\nugh,negative\nhmm,postive\n")
    train = read_examples(path)
    labels = LabelSet.infer(train[:2], "class")
    with raises(f"{path}:4: label 'postive' is not one of ['negative', 'positive']"):
        labels.encode(train)


def test_real_rte_labels(shared_data):
    examples = read_examples(shared_data / "rte" / "train.tsv")
    labels = LabelSet.infer(examples, "class")
    assert labels.names == ("0", "1")
    ids = labels.encode(examples)
    assert ids.shape == (2_490,) and ids[0] == 1 and set(np.unique(ids)) == {0, 1}


def test_real_sst2_and_stsb_labels(shared_data):
    sst2 = read_examples(shared_data / "sst2" / "train.tsv")
    ids = LabelSet.infer(sst2, "class").encode(sst2)
    assert ids.shape == (67_349,) and 0.4 < ids.mean() < 0.7
    stsb = read_examples(shared_data / "stsb" / "stsb-en-train.csv", label_type="regression")
    values = LabelSet.infer(stsb, "regression").encode(stsb)
    assert values.shape == (5_749,) and values[0] == 5.0 and values.min() >= 0 and values.max() <= 5
