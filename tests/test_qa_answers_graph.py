"""The in-graph answer decoding gives kbert's numpy postprocessing's (hence transformers') positive-score answers.

Every question recorded by tests/fixtures/make_qa_fixtures.py (transformers 4.57 ``pipeline("question-answering")``:
one and several windows, top_k 1/3/more than there are spans, handle_impossible_answer, align_to_words on/off,
max_answer_len, accents/CJK/emoji contexts, all-masked windows) is replayed through :func:`answer_spans_graph`
inside a ``tf.function`` with ``None`` dimensions: all questions sharing the same arguments in one batch, their
windows interleaved and padded. Answers with a score > 0 must equal :func:`answer_question`'s and HF's (same
answer/start/end, same order, score within 1e-5 relative); the graph returns nothing else but the null answer.
"""

import collections
import json

import numpy as np
import pytest
import tensorflow as tf

from kbert.tasks.question_answering.answers_graph import answer_spans_graph, answers_for_every_top_k
from kbert.tasks.question_answering.postprocess import QAWindow, answer_question
from test_qa_postprocess import DATA, questions, small_window

EXTRA_PADDING = 3  # columns beyond the longest window, as a serving batch pads

SIGNATURE = [tf.TensorSpec([None, None], tf.float32)] * 2 + [tf.TensorSpec([None, None], tf.int32)] * 4 + [
    tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32), tf.TensorSpec([None], tf.string)]


def graph_function(**kwargs):
    return tf.function(lambda *args: answer_spans_graph(*args, **kwargs), input_signature=SIGNATURE)


def batch_inputs(examples: list[tuple[str, list[QAWindow]]], extra_padding: int = EXTRA_PADDING) -> list:
    """The graph's inputs for ``examples`` (context, windows): windows interleaved round-robin, padded."""
    order = sorted(((k, i) for i, (_, windows) in enumerate(examples) for k in range(len(windows))))
    windows = [examples[i][1][k] for k, i in order]
    length = max(len(w.start_logits) for w in windows) + extra_padding

    def dense(field, value, dtype):
        rows = [np.asarray(getattr(w, field)) for w in windows]
        return np.stack([np.pad(r, (0, length - len(r)), constant_values=value) for r in rows]).astype(dtype)

    # padding logits are arbitrary: they are masked like any non-context token
    return [dense("start_logits", 7.0, np.float32), dense("end_logits", -3.0, np.float32),
            dense("sequence_ids", -1, np.int32), dense("starts", 0, np.int32), dense("ends", 0, np.int32),
            dense("word_ids", -1, np.int32), np.array([i for _, i in order], np.int32), np.int32(len(examples)),
            np.array([context for context, _ in examples], dtype=object)]


def unpadded(outputs: dict, row: int) -> list[dict]:
    count = int(outputs["count"][row])
    assert all(outputs["answer"][row, count:] == b"") and all(outputs["start"][row, count:] == -1)
    assert all(outputs["end"][row, count:] == -1) and all(outputs["score"][row, count:] == 0)
    return [{"score": float(outputs["score"][row, j]), "start": int(outputs["start"][row, j]),
             "end": int(outputs["end"][row, j]), "answer": outputs["answer"][row, j].decode()} for j in range(count)]


def run(function, examples: list[tuple[str, list[QAWindow]]], extra_padding: int = EXTRA_PADDING) -> list[list[dict]]:
    outputs = {k: v.numpy() for k, v in function(*batch_inputs(examples, extra_padding)).items()}
    return [unpadded(outputs, row) for row in range(len(examples))]


def assert_same_positive_answers(got: list[dict], want: list[dict], context: str, what: str):
    positive = [a for a in want if a["score"] > 0]
    assert [(a["answer"], a["start"], a["end"]) for a in got] == \
        [(a["answer"], a["start"], a["end"]) for a in positive], what
    np.testing.assert_allclose([a["score"] for a in got], [a["score"] for a in positive], rtol=1e-5, err_msg=what)
    assert all(a["answer"] == context[a["start"]:a["end"]] for a in got)


def recorded_groups():
    """(kwargs, [(context, windows, HF answers)]) for every distinct postprocess_kwargs of the fixture."""
    groups = collections.defaultdict(list)
    for case in DATA["cases"]:
        if case.get("synthetic") == "uniform":  # all-equal logits: ties between positive spans, see below
            continue
        groups[json.dumps(case["postprocess_kwargs"], sort_keys=True)] += questions(case)
    return sorted(groups.items())


GROUPS = recorded_groups()


@pytest.mark.parametrize("kwargs,examples", GROUPS, ids=[k for k, _ in GROUPS])
def test_matches_postprocess_and_transformers(kwargs, examples):
    kwargs = json.loads(kwargs)
    function = graph_function(**kwargs)
    outputs = {k: v.numpy() for k, v in function(*batch_inputs([(c, w) for c, w, _ in examples])).items()}
    top_k = kwargs.get("top_k", 1)
    assert outputs["answer"].shape == outputs["score"].shape == (len(examples), top_k)
    assert outputs["start"].dtype == outputs["end"].dtype == outputs["count"].dtype == np.int32
    assert outputs["score"].dtype == np.float32
    for row, (context, windows, hf) in enumerate(examples):
        got = unpadded(outputs, row)
        assert_same_positive_answers(got, answer_question(windows, context, **kwargs), context, f"example {row}")
        assert_same_positive_answers(got, hf, context, f"example {row} vs HF")


def test_every_top_k_is_its_own_call():
    # HF draws 2 * top_k + 10 candidates per window: with more of them more spans merge into an answer and more
    # answers compete, so top_k=3's answers are not the first three of top_k=5's (HF's recorded top_k=3 calls,
    # matched by answer_question above, pin that down). Row k - 1 of answers_for_every_top_k is top_k=k's.
    groups = collections.defaultdict(dict)  # the recorded questions by their other arguments, each once
    for kwargs, examples in GROUPS:
        kwargs = {k: v for k, v in json.loads(kwargs).items() if k != "top_k"}
        if kwargs.get("max_answer_len", 15) <= 3:  # (one trace each: short answers are tested above)
            continue
        unique = {(c, tuple(w[0].start_logits.tolist())): (c, w) for c, w, _ in examples}
        groups[json.dumps(kwargs, sort_keys=True)].update(unique)
    differ = 0
    for kwargs, examples in groups.items():
        kwargs, examples = json.loads(kwargs), list(examples.values())
        function = tf.function(lambda *args: answers_for_every_top_k(*args, top_k=5, **kwargs),
                               input_signature=SIGNATURE)
        outputs = {k: v.numpy() for k, v in function(*batch_inputs(examples)).items()}
        assert outputs["answer"].shape == outputs["score"].shape == (len(examples), 5, 5)
        assert outputs["count"].shape == (len(examples), 5)
        for row, (context, windows) in enumerate(examples):
            best_five = answer_question(windows, context, top_k=5, **kwargs)
            for top_k in range(1, 6):
                got = unpadded({k: v[:, top_k - 1] for k, v in outputs.items()}, row)
                want = answer_question(windows, context, top_k=top_k, **kwargs)
                assert_same_positive_answers(got, want, context, f"example {row}, top_k {top_k}, {kwargs}")
                differ += want != best_five[:top_k]
    assert len(groups) >= 4 and differ >= 30


def test_short_windows_without_padding():
    # a serving batch of short contexts only is padded to its longest window: no column after it, and fewer
    # positive spans than candidates (top_k fills with zero-score cells, some past the last column)
    windows = [small_window([0, 9, 9, 1, 0, 3, 9], [0, 9, 9, 0, 1.5, 2, 9]),  # no ties between spans
               small_window([0, 9, 9, 3, 9], [0, 9, 9, 3, 9], context_tokens=((0, 1),), word_ids=(0,))]
    for top_k, align_to_words in ((1, True), (5, True), (20, False)):
        function = graph_function(top_k=top_k, align_to_words=align_to_words)
        got = run(function, [("xy z", windows[:1]), ("xy z", windows[1:])], extra_padding=0)
        for row, window in enumerate(windows):
            want = answer_question([window], "xy z", top_k=top_k, align_to_words=align_to_words)
            assert_same_positive_answers(got[row], want, "xy z", f"window {row}, top_k {top_k}")


def test_the_recorded_cases_cover_what_matters():
    kwargs = [json.loads(k) for k, _ in GROUPS]
    assert {k.get("top_k", 1) for k in kwargs} >= {1, 3, 100} and any(k.get("align_to_words") is False for k in kwargs)
    assert any(k.get("handle_impossible_answer") for k in kwargs) and any("max_answer_len" in k for k in kwargs)
    examples = [e for _, group in GROUPS for e in group]
    assert max(len(w) for _, w, _ in examples) >= 8
    contexts = "".join(c for c, _, _ in examples)
    assert all(any(lo <= ord(ch) <= hi for ch in contexts) for lo, hi in ((0xC0, 0x24F), (0x4E00, 0x9FFF),
                                                                           (0x1F300, 0x1FAFF)))
    # HF's lists hold zero-score spans the graph leaves out, and the graph's lists are then shorter
    assert any(a["score"] == 0 for _, _, hf in examples for a in hf)


def test_ties_between_positive_spans():
    # all-equal logits: every allowed span has the same score, HF picks among them in argpartition's order and
    # the graph by position (lowest start, then end), so the answers differ; their number agrees, and so do the
    # scores when nothing merges (with align_to_words different tied spans merge into different sums)
    for case in (c for c in DATA["cases"] if c.get("synthetic") == "uniform"):
        (context, windows, hf), = questions(case)
        kwargs = case["postprocess_kwargs"]
        got = run(graph_function(**kwargs), [(context, windows)])[0]
        want = [a for a in answer_question(windows, context, **kwargs) if a["score"] > 0]
        assert len(got) == len(want) > 0
        if not kwargs.get("align_to_words", True):  # no merging: each answer is one span, all equal
            np.testing.assert_allclose([a["score"] for a in got], [a["score"] for a in want], rtol=1e-5)
        assert all(a["answer"] == context[a["start"]:a["end"]] for a in got)


def test_traced_once_for_every_shape():
    function = graph_function(top_k=3)
    for group in (GROUPS[0][1][:1], [e for _, g in GROUPS for e in g][:7]):
        function(*batch_inputs([(c, w) for c, w, _ in group]))
    assert function.experimental_get_tracing_count() == 1


def test_lower_casing_merges_like_python():
    # "İstanbul" lower-cases to "i̇stanbul" (two code points) in Python and ICU alike, "ΟΔΟΣ" to "οδος"
    for context, first, second in (("İSTANBUL i̇stanbul", (0, 8), (9, 18)), ("ΟΔΟΣ οδος", (0, 4), (5, 9)),
                                   ("Ⱟ ⱟ", (0, 1), (2, 3))):
        windows = [small_window([0, 9, 9, 3, 9], [0, 9, 9, 3, 9], context_tokens=(span,), word_ids=(i,))
                   for i, span in enumerate((first, second))]
        got = run(graph_function(top_k=2), [(context, windows)])[0]
        want = [a for a in answer_question(windows, context, top_k=2) if a["score"] > 0]
        if context.startswith("Ⱟ"):  # a Unicode 14 capital: TF's ICU does not lower it, Python does
            assert len(want) == 1 and [a["answer"] for a in got] == ["Ⱟ", "ⱟ"]
        else:
            assert len(want) == 1 and got[0]["answer"] == context[slice(*first)]
            assert_same_positive_answers(got, want, context, context)


def test_saved_model_roundtrip(tmp_path):
    module = tf.Module()
    module.answers = graph_function(top_k=2, handle_impossible_answer=True)
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    examples = [(c, w) for c, w, _ in GROUPS[0][1][:3]]
    got = {k: v.numpy() for k, v in loaded.answers(*batch_inputs(examples)).items()}
    want = {k: v.numpy() for k, v in module.answers(*batch_inputs(examples)).items()}
    assert sorted(got) == sorted(want) == ["answer", "count", "end", "score", "start"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    assert all(any(a["answer"] == "" for a in unpadded(got, row)) or got["count"][row] == 2
               for row in range(len(examples)))
