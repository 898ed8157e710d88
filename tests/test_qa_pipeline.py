"""kbert.pipeline("question-answering"): transformers' input forms, errors, the qa_outputs head, and the
answers of recorded transformers 4.57 calls (tests/fixtures/make_qa_fixtures.py) end to end."""

import json
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.errors import InputError

TINY = CHECKPOINTS / "tiny-uncased-qa"
QUESTION, CONTEXT = "Where does Sinan live?", "Sinan lives in California but Matt lives in Boston."


@pytest.fixture(scope="module")
def qa():
    return kbert.pipeline("question-answering", model=TINY)


def test_the_qa_outputs_head_is_loaded_from_the_checkpoint(qa):
    tensors = read_safetensors(TINY / "model.safetensors")
    kernel, bias = qa.model.get_layer("qa_outputs").get_weights()
    np.testing.assert_array_equal(kernel, tensors["qa_outputs.weight"].T)
    np.testing.assert_array_equal(bias, tensors["qa_outputs.bias"])


def test_every_input_form_of_transformers_gives_the_same_answer(qa):
    one = qa(question=QUESTION, context=CONTEXT)
    assert sorted(one) == ["answer", "end", "score", "start"]
    assert one["answer"] == CONTEXT[one["start"]:one["end"]]
    assert qa({"question": QUESTION, "context": CONTEXT}) == one
    assert qa([{"question": QUESTION, "context": CONTEXT}]) == one  # a list of one comes back alone, as in HF
    assert qa(QUESTION, CONTEXT) == one
    two = qa(question=[QUESTION, "Who lives in Boston?"], context=CONTEXT)  # batched with padding: scores ~1e-7
    assert isinstance(two, list) and len(two) == 2
    _assert_same_answers(two[0], one, "many questions, one context")
    _assert_same_answers(qa(question=[QUESTION, QUESTION], context=[CONTEXT, CONTEXT]), [one, one], "two lists")


def test_call_parameters_at_construction_are_defaults():
    three = kbert.pipeline("question-answering", model=TINY, top_k=3)
    answers = three(question=QUESTION, context=CONTEXT)
    assert isinstance(answers, list) and len(answers) == 3
    assert [a["score"] for a in answers] == sorted((a["score"] for a in answers), reverse=True)
    assert three(question=QUESTION, context=CONTEXT, top_k=1) == answers[0]


@pytest.mark.parametrize("call, message", [
    (lambda qa: qa(question="", context=CONTEXT), "'question' is empty"),
    (lambda qa: qa({"question": QUESTION}), "exactly the keys 'question' and 'context'"),
    (lambda qa: qa({"question": QUESTION, "context": CONTEXT, "extra": 1}), "exactly the keys"),
    (lambda qa: qa(question=[QUESTION], context=[CONTEXT, CONTEXT]), "1 questions but 2 contexts"),
    (lambda qa: qa(question=QUESTION), "give question= and context="),
    (lambda qa: qa(question=QUESTION, context=CONTEXT, top_k=0), "top_k must be an integer >= 1"),
    (lambda qa: qa(question=QUESTION, context=CONTEXT, doc_stride=100, max_seq_len=50), "larger than max_seq_len"),
    (lambda qa: qa(question=QUESTION, context=CONTEXT, max_seq_len=10_000), "more than the model's"),
    (lambda qa: qa(question=QUESTION, context=CONTEXT, stride=3), "unknown argument"),
    (lambda qa: qa({"question": 3, "context": CONTEXT}), "'question' must be a str"),
])
def test_bad_inputs_are_clear_errors(qa, call, message):
    with pytest.raises(InputError, match=message):
        call(qa)


def test_context_word_ids_follow_the_wordpiece_continuations(qa):
    from kbert.tasks.question_answering.task import context_word_ids

    tokenizer = qa.tokenizer
    encoding = tokenizer.encode(np.array(["who?"]), np.array(["unaffable people, don't"]))
    ids, seq = encoding.token_ids[0].numpy(), encoding.sequence_ids[0].numpy()
    words = context_word_ids(ids, seq, qa.task._continuation())
    tokens = tokenizer.convert_ids_to_tokens(ids)
    for k in range(1, len(ids)):
        if seq[k] == 1 and seq[k - 1] == 1:
            assert (words[k] == words[k - 1]) == tokens[k].startswith("##"), tokens
    assert (words[seq != 1] == -1).all()


def test_kbert_predict_reads_question_and_context_lines(tmp_path, capsys):
    from kbert import cli

    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps({"question": QUESTION, "context": CONTEXT}) + "\n"
                    + json.dumps({"question": "Who lives in Boston?", "context": CONTEXT}) + "\n")
    assert cli.main(["predict", "--model", str(TINY), "--task", "question-answering", "--input", str(path),
                     "--top-k", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["question"] for line in lines] == [QUESTION, "Who lives in Boston?"]
    assert all(isinstance(line["result"], list) and len(line["result"]) == 2 for line in lines)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": QUESTION}) + "\n")
    assert cli.main(["predict", "--model", str(TINY), "--task", "question-answering", "--input", str(bad)]) == 2
    assert "bad.jsonl:1: expected an object with a string 'question' and a string 'context'" in capsys.readouterr().err


RECORDED = EXPECTED / "qa_pipeline.json"


def _recorded_cases():
    if not RECORDED.is_file():
        return []
    return json.loads(RECORDED.read_text())["cases"]


@pytest.fixture(scope="module")
def pipelines():
    """One kbert pipeline per recorded checkpoint (MiniLM + the qa head assembled as HF lays it out)."""
    from fixtures.minilm_heads import assemble_minilm_head
    from kbert.checkpoint.resolve import default_model_path

    made, folder = {}, tempfile.TemporaryDirectory()

    def get(name):
        if name not in made:
            path = TINY if name == "tiny-uncased-qa" else assemble_minilm_head(
                CHECKPOINTS / name, pathlib.Path(default_model_path()), pathlib.Path(tempfile.mkdtemp(dir=folder.name)))
            made[name] = kbert.pipeline("question-answering", model=path)
        return made[name]

    yield get
    folder.cleanup()


def _assert_same_answers(ours, theirs, where):
    """Same answers; in a ranked list, spans of probability exactly 0 are left out on both sides: which of
    them fill up a ``top_k`` list is numpy's ``argpartition`` order among ties, and that depends on float
    noise in the logits (kbert's TensorFlow logits are not PyTorch's bit for bit). test_qa_postprocess.py
    checks that tie order exactly, on transformers' own logits."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        ours, theirs = [ours], [theirs]
    if ours and theirs and all(isinstance(x, dict) for x in ours + theirs):
        ours, theirs = [a for a in ours if a["score"] > 0], [b for b in theirs if b["score"] > 0]
    assert isinstance(ours, list) and len(ours) == len(theirs), where
    for a, b in zip(ours, theirs):
        if isinstance(b, list) or (isinstance(b, dict) and isinstance(a, list)):
            _assert_same_answers(a, b, where)
            continue
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"]), where
        assert a["score"] == pytest.approx(b["score"], rel=2e-3, abs=1e-6), where


@pytest.mark.parametrize("case", [c for c in _recorded_cases() if c.get("inputs") is not None],
                         ids=lambda c: f"{c['checkpoint']}-{json.dumps(c['kwargs'])}-{str(c['inputs'])[:30]}")
def test_answers_equal_the_recorded_transformers_calls(pipelines, case):
    """The same call on the same checkpoint: kbert's answers are transformers 4.57's, field for field."""
    kwargs = dict(case["kwargs"])
    ours = pipelines(case["checkpoint"])(case["inputs"], **kwargs)
    _assert_same_answers(ours, case["output"], case["inputs"] if isinstance(case["inputs"], dict) else "list")


def test_a_question_too_long_for_its_windows_is_an_error_eagerly_and_traced(qa):
    """The eager tokenizer refuses it; the traced one (after a second of eager calls) skips that check, so the
    pipeline checks the window lengths itself instead of feeding over-long windows to the model."""
    from kbert.errors import KbertError

    call = dict(question="why " * 70, context="Sinan lives in California. " * 5, max_seq_len=64, doc_stride=16)
    with pytest.raises(KbertError, match="input 0: with truncation='only_second'"):
        qa(**call)
    for encoder in qa._encoders.values():
        encoder.budget_seconds = -1.0  # the eager budget is spent: the next call runs the traced tokenizer
    with pytest.raises(InputError, match="input 0: its first text leaves no room for the second in windows of 64"):
        qa(**call)


RETRACING = textwrap.dedent("""
    import sys
    import kbert
    base = "Sinan lives in California but Matt lives in Boston. "
    pipes = []
    for _ in range(6):  # a long context (10 windows) on each new pipeline
        pipes.append(kbert.pipeline("question-answering", model=sys.argv[1]))
        pipes[-1](question="Who lives in Boston?", context=base * 40)
    for pipe in pipes:  # 1 to ~12 windows per context, batches of several shapes
        for n in (1, 9, 3):
            pipe(question=["Who lives in Boston?", "Who?"], context=[base * n, base * (n + 2)], batch_size=4)
    print([pipe._forward.experimental_get_tracing_count() for pipe in pipes])
""")


def test_long_contexts_and_several_pipelines_trace_each_model_once():
    # each pipeline traces its model once, whatever the shapes of its batches; TensorFlow's warning
    # "triggered tf.function retracing" (which counts traces per Python code object) stays quiet
    done = subprocess.run([sys.executable, "-c", RETRACING, str(TINY)], capture_output=True, text=True, timeout=300,
                          cwd=pathlib.Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str([1] * 6)
    assert "retracing" not in done.stderr, done.stderr[-3000:]
