"""Exports answer edge batches as the pipeline does, served in a bare TensorFlow process.

Each tiny fixture checkpoint is exported once (module-scoped fixtures) and all its batches go to one
subprocess (tests/test_export.py's ``serve_many``): all-short, whitespace-only and CJK/emoji contexts, a
question longer than its context, those mixed with a long context, empty and 10,000-character texts. What
the pipeline answers, the export answers equally; what the pipeline refuses (an empty question or context),
the export refuses too, with an ``InvalidArgument`` error that says what was wrong.
"""

import re

import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.errors import InputError
from kbert.export import export_saved_model
from test_export import assert_answers, assert_entities, assert_tokens, serve_many

LONG_CONTEXT = "Sinan lives in California but Matt lives in Boston. " * 12  # several windows
LONG_QUESTION = "Who is the person that lives in this town and what is the name of the town where he lives?"
SHORT = {"question": ["Who lives in Boston?", "Who?", "Who?"], "context": ["Boston", "Sinan", "Ed"]}
BLANK = {"question": ["Who?", "Who?", "Where?"], "context": [" ", "\t\n", "\u3000 \u200b"]}
LONGER_QUESTION = {"question": [LONG_QUESTION], "context": ["Ed"]}
CJK_EMOJI = {"question": ["Who?", "What?", "Which?", "Who?"], "context": ["中国人", "😀", "Café 😀 中国人", "😀😀 🎉"]}


def with_long(batch: dict) -> dict:
    return {"question": batch["question"] + ["Who lives in Boston?"], "context": batch["context"] + [LONG_CONTEXT]}


QA_BATCHES = {"all short": SHORT, "blank contexts": BLANK, "question longer than the context": LONGER_QUESTION,
              "CJK and emoji": CJK_EMOJI, "one question, blank": {"question": ["Who?"], "context": [" "]},
              **{f"{name} + a long context": with_long(batch) for name, batch in
                 (("all short", SHORT), ("blank", BLANK), ("CJK and emoji", CJK_EMOJI),
                  ("question longer", LONGER_QUESTION))}}
QA_REFUSED = {"empty question": ({"question": ["Who?", ""], "context": ["Boston", "Sinan"]},
                                 "input 1: (the |')question'? is empty"),
              "empty context": ({"question": ["Who?", "Who?"], "context": ["Boston", ""]},
                                "input 1: (the |')context'? is empty"),
              "more questions than contexts": ({"question": ["Who?", "Who?"], "context": ["Boston"]},
                                               "2 questions but 1 contexts")}


@pytest.fixture(scope="module", params=["tiny-uncased-qa", "kbert-trained-tiny-qa", "tiny-roberta-qa"])
def qa_export(request, tmp_path_factory):
    folder = CHECKPOINTS / request.param
    return folder, export_saved_model(folder, tmp_path_factory.mktemp("exports") / "qa")


def test_question_answering_edge_batches(qa_export):
    folder, version = qa_export
    assert_question_answering_edges(version, kbert.pipeline("question-answering", model=folder),
                                    impossible=folder.name == "kbert-trained-tiny-qa")  # trained for SQuAD 2.0


def assert_question_answering_edges(version, pipe, impossible: bool = False):
    """The QA export at ``version`` answers every edge batch as ``pipe`` does and refuses what it refuses (also
    used by tests/test_family_pipelines.py on each family's export)."""
    requests = [*QA_BATCHES.values(), *(batch for batch, _ in QA_REFUSED.values()), {"question": [], "context": []}]
    *answered, empty = serve_many(version, requests)
    for (name, batch), got in zip(QA_BATCHES.items(), answered):
        assert "error" not in got, f"{name}: {got['error']}"
        assert_answers(got, pipe, batch, impossible=impossible)
    for (name, (batch, message)), got in zip(QA_REFUSED.items(), answered[len(QA_BATCHES):]):
        with pytest.raises(InputError, match=message):
            pipe(**batch)
        assert re.search(message, got.get("error", "")), f"{name}: the export answered {got}"
    assert empty["answer"] == [] and empty["count"] == [] and empty["top_k_answer"] == []


TEXT_BATCHES = [["", "I love Paris", " ", "\t\n"], ["", ""], [" "], [("Café 😀 中国人 Paris naïve " * 500)[:10_000]],
                ["", ("Paris is nice. " * 700)[:10_000], "   "]]


@pytest.fixture(scope="module")
def text_exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    return {name: export_saved_model(CHECKPOINTS / name, base / name)
            for name in ("tiny-uncased-cls", "tiny-cased-token-cls")}


def test_text_classification_edge_batches(text_exports):
    pipe = kbert.pipeline("text-classification", model=CHECKPOINTS / "tiny-uncased-cls")
    for texts, got in zip(TEXT_BATCHES, serve_many(text_exports["tiny-uncased-cls"],
                                                   [{"text": t} for t in TEXT_BATCHES])):
        want = pipe(texts, top_k=None)
        for b, ranked in enumerate(want):
            assert got["label"][b] == ranked[0]["label"], texts[b][:40]
            assert got["score"][b] == pytest.approx(ranked[0]["score"], abs=1e-5)
            assert sorted(got["scores"][b], reverse=True) == pytest.approx([r["score"] for r in ranked], abs=1e-5)


def test_token_classification_edge_batches(text_exports):
    assert_token_classification_edges(text_exports["tiny-cased-token-cls"],
                                      kbert.pipeline("ner", model=CHECKPOINTS / "tiny-cased-token-cls"))


def assert_token_classification_edges(version, pipe):
    """The token-classification export at ``version`` tags every edge batch as ``pipe`` does (also used by
    tests/test_family_pipelines.py on each family's export)."""
    for texts, got in zip(TEXT_BATCHES, serve_many(version, [{"text": t} for t in TEXT_BATCHES])):
        tokens = pipe(texts, ignore_labels=[])
        groups = pipe(texts, aggregation_strategy="simple")
        for b in range(len(texts)):
            assert_tokens(got, b, tokens[b])
            assert_entities(got, b, groups[b])
