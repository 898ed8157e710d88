"""kbert's SQuAD metrics against the official evaluate-v1.1.py / evaluate-v2.0.py, key by key.

``fixtures/squad_official/official_scores.json`` holds what the official scripts printed
(``make_metric_fixtures.py`` made it): on the shared dev files with deterministic predictions
that the tests rebuild with the same function (their SHA-256 is checked), and on small made-up
files. With ``$KBERT_SQUAD_EVAL`` naming a folder that holds the two official scripts, the tests
also run them afresh (``subprocess``) and compare.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib

import pytest

from conftest import FIXTURES, data_dir
from kbert.errors import InputError
from kbert.tasks.question_answering.examples import QAExample
from kbert.tasks.question_answering.squad_files import read_qa_examples
from kbert.tasks.question_answering.squad_metrics import (KBERT_NAMES, exact_match, f1, normalize_answer,
                                                          qa_metrics, squad_v1_scores, squad_v2_scores)

OFFICIAL = FIXTURES / "squad_official"
RECORDED = json.loads((OFFICIAL / "official_scores.json").read_text())
_spec = importlib.util.spec_from_file_location("make_metric_fixtures", OFFICIAL / "make_metric_fixtures.py")
maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(maker)


def assert_same(kbert: dict, official: dict) -> None:
    """Same keys in the same order, every number within 1e-9 (counts exactly)."""
    assert list(kbert) == list(official)
    for key, value in official.items():
        assert type(kbert[key]) is type(value) or isinstance(value, float), (key, kbert[key], value)
        assert kbert[key] == pytest.approx(value, abs=1e-9, rel=0), key


# --- the real dev files ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=sorted(RECORDED["real"]))
def real(request):
    """(name, recorded runs, SQuAD JSON, kbert examples, predictions, complete predictions, na_probs)."""
    name = request.param
    recorded = RECORDED["real"][name]
    path = data_dir() / recorded["file"]
    if not path.is_file():
        pytest.skip(f"{path} is absent (set KBERT_DATA)")
    dataset = json.loads(path.read_text())
    predictions, na_probs = maker.make_predictions(dataset, recorded["seed"], missing=name == "squad_v1.1")
    assert maker.digest(predictions) == recorded["predictions_sha256"]  # the predictions the scripts scored
    assert maker.digest(na_probs) == recorded["na_probs_sha256"]
    return (name, recorded, path, read_qa_examples(path), predictions, maker.filled(dataset, predictions),
            na_probs)


def test_real_predictions_are_non_trivial(real):
    name, recorded, _, examples, predictions, complete, _ = real
    assert len(examples) == recorded["v2"]["total"] >= 4000
    runs = [run for key, run in recorded.items() if key.startswith("v") and run]
    for run in runs:
        for key, value in run.items():
            if key.endswith(("exact", "f1", "exact_match")):
                assert 10 < value < 90, (name, key, value)
    if name == "squad_v1.1":
        assert 0.05 < 1 - len(predictions) / len(examples) < 0.15  # about one in ten unanswered
        assert recorded["v1"]["exact_match"] != recorded["v2"]["exact"]  # v1.1 and v2.0 rules differ here
    else:
        best = recorded["v2_na"]
        assert 0 < best["best_exact_thresh"] < 1 and 0 < best["best_f1_thresh"] < 1
        assert best["best_f1"] > best["f1"] and recorded["v2_na_thresh_0.5"]["f1"] != best["f1"]


def test_v1_scores_match_official_on_real_data(real):
    name, recorded, _, examples, predictions, _, _ = real
    if recorded["v1"] is None:
        with pytest.raises(InputError, match="no gold answer"):
            squad_v1_scores(examples, predictions)
        return
    scores = squad_v1_scores(examples, predictions)
    assert scores.pop("examples") == len(examples)
    assert_same(scores, recorded["v1"])


def test_v2_scores_match_official_on_real_data(real):
    name, recorded, _, examples, _, complete, na_probs = real
    assert_same(squad_v2_scores(examples, complete), recorded["v2"])
    if "v2_na" in recorded:
        assert_same(squad_v2_scores(examples, complete, na_probs), recorded["v2_na"])
        for thresh in maker.THRESHOLDS:
            assert_same(squad_v2_scores(examples, complete, na_probs, na_prob_thresh=thresh),
                        recorded[f"v2_na_thresh_{thresh}"])


def test_qa_metrics_names_the_official_numbers(real):
    name, recorded, _, examples, predictions, complete, na_probs = real
    if name == "squad_v1.1":
        scores = qa_metrics(examples, predictions)
        assert scores == {**recorded["v1"], "examples": len(examples)}
        return
    scores = qa_metrics(examples, complete, null_scores=na_probs, version_2=True)
    # no threshold on the main numbers (the predictions hold the no-answer decisions); best_* from na_probs
    official = {**recorded["v2"], **{k: v for k, v in recorded["v2_na"].items() if k.startswith("best")}}
    assert_same(scores, {KBERT_NAMES[k]: v for k, v in official.items()})
    assert scores["exact_match"] == recorded["v2"]["exact"] and scores["examples"] == len(examples)
    assert set(qa_metrics(examples, complete, version_2=True)) == {KBERT_NAMES[k] for k in recorded["v2"]}


def test_transformers_squad_evaluate_differs_where_documented(real):
    """transformers scores v1.1 data with v2.0 rules and always adds best_*; on v2.0 data it agrees."""
    name, recorded, _, examples, _, complete, na_probs = real
    theirs = RECORDED["transformers"][name]
    if name == "squad_v1.1":
        assert {k: v for k, v in theirs.items() if not k.startswith("best")} == recorded["v2"]
        assert theirs["best_exact_thresh"] == theirs["best_f1_thresh"] == 0.0
        assert theirs["exact"] != recorded["v1"]["exact_match"]
        assert squad_v1_scores(examples, complete)["exact_match"] != theirs["exact"]
    else:
        assert theirs == recorded["v2_na"]


# --- small made-up files -----------------------------------------------------------------------------
@pytest.fixture(params=range(len(RECORDED["hand"])), ids=[c["name"] for c in RECORDED["hand"]])
def hand(request, tmp_path):
    case = RECORDED["hand"][request.param]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(case["data"]))
    return case, read_qa_examples(path), maker.filled(case["data"], case["predictions"])


def test_hand_cases_match_official(hand):
    case, examples, complete = hand
    if case["v1"] is not None:
        scores = squad_v1_scores(examples, case["predictions"])
        assert scores.pop("examples") == len(examples)
        assert_same(scores, case["v1"])
    assert_same(squad_v2_scores(examples, complete), case["v2"])
    if case["na_probs"] is not None:
        assert_same(squad_v2_scores(examples, complete, case["na_probs"]), case["v2_na"])
        for thresh in maker.THRESHOLDS:
            assert_same(squad_v2_scores(examples, complete, case["na_probs"], thresh),
                        case[f"v2_na_thresh_{thresh}"])


def test_hand_cases_cover_the_rules():
    """What the made-up files pin down, read off the recorded official numbers."""
    v1, ties, answerable, impossible = RECORDED["hand"]
    assert v1["v1"]["exact_match"] == 40.0 and v1["v2"]["f1"] > v1["v1"]["f1"]  # ';' gold: v1 F1 0, v2 F1 1
    assert "NoAns_total" not in answerable["v2"] and "HasAns_total" not in impossible["v2"]
    assert ties["v2_na"]["best_f1_thresh"] == 0.6 and ties["v2_na"]["best_exact_thresh"] == 0.1
    # the impossible question predicted " " scores 1 but costs 1 in the threshold walk
    assert impossible["v2_na"]["best_exact"] == 100.0 and impossible["v2"]["exact"] == 50.0


# --- the official scripts, run afresh ------------------------------------------------------------------
def official_scripts() -> tuple[pathlib.Path, pathlib.Path]:
    folder = os.environ.get("KBERT_SQUAD_EVAL")
    if not folder:
        pytest.skip("set KBERT_SQUAD_EVAL to a folder with the official evaluate-v1.1.py and evaluate-v2.0.py")
    v1, v2 = pathlib.Path(folder) / "evaluate-v1.1.py", pathlib.Path(folder) / "evaluate-v2.0.py"
    if not (v1.is_file() and v2.is_file()):
        pytest.fail(f"KBERT_SQUAD_EVAL={folder}: evaluate-v1.1.py and evaluate-v2.0.py not both there")
    return v1, v2


def test_official_scripts_live_on_real_data(real):
    v1, v2 = official_scripts()
    name, recorded, path, examples, predictions, complete, na_probs = real
    live = maker.official_runs(v1, v2, path, predictions, None if name == "squad_v1.1" else na_probs,
                               name == "squad_v1.1", complete)
    assert live == {k: v for k, v in recorded.items() if k.startswith("v")}
    assert_same(squad_v2_scores(examples, complete), live["v2"])


def test_official_scripts_live_on_hand_cases(hand):
    v1, v2 = official_scripts()
    case, examples, complete = hand
    assert_same(squad_v2_scores(examples, complete, case["na_probs"]),
                maker.run_official(v2, case["data"], complete, case["na_probs"]))
    if case["v1"] is not None:
        scores = squad_v1_scores(examples, case["predictions"])
        del scores["examples"]
        assert_same(scores, maker.run_official(v1, case["data"], case["predictions"]))


# --- one answer ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, normalised", [
    ("The Eiffel Tower", "eiffel tower"), ("an apple a day", "apple day"), ("A", ""), ("the the", ""),
    ("theatre and anthem", "theatre and anthem"),  # articles only as whole words
    ("Tom's U.S.A. (1889)!", "toms usa 1889"), ("e-mail", "email"),  # punctuation removed before articles
    ("a-the", "athe"), ("  new\t\nyork  ", "new york"),
    ("Café « Paris » — naïve", "café « paris » — naïve"),  # only ASCII punctuation, accents kept
    ("THE END.", "end"), ("", ""),
])
def test_normalize_answer(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_and_f1():
    assert exact_match("the Eiffel  Tower!", "Eiffel tower") == 1 and exact_match("Tower Eiffel", "Eiffel Tower") == 0
    assert f1("Tower Eiffel", "Eiffel Tower") == 1.0  # bag of tokens
    assert f1("cat cat dog", "cat") == pytest.approx(0.5)  # precision 1/3, recall 1
    assert f1("cat", "cat cat") == pytest.approx(2 / 3)  # repeated tokens count once each
    assert f1("cat", "dog") == 0 and f1("", "dog") == 0 and f1("dog", "") == 0
    assert f1("", "") == 1 and f1("the", "a.") == 1  # v2.0: both empty after normalising
    assert f1("", "", version_2=False) == 0 and f1("the", "a.", version_2=False) == 0  # v1.1: no common token


def example(qid, answers=(), context="Paris is in France."):
    return QAExample(qid, "Where?", context, tuple(answers), tuple(context.index(a) for a in answers))


def test_v1_missing_predictions_score_zero_and_extra_ones_are_ignored():
    examples = [example("a", ["Paris"]), example("b", ["France"])]
    assert squad_v1_scores(examples, {"a": "paris", "zzz": "x"}) == {"exact_match": 50.0, "f1": 50.0, "examples": 2}


def test_v2_needs_every_prediction_and_probability():
    examples = [example("a", ["Paris"]), example("b")]
    with pytest.raises(InputError, match=r"1 questions have no prediction \(first: id 'b'\)"):
        squad_v2_scores(examples, {"a": "Paris"})
    with pytest.raises(InputError, match=r"no no-answer probability \(first: id 'b'\)"):
        squad_v2_scores(examples, {"a": "Paris", "b": ""}, {"a": 0.5})
    with pytest.raises(InputError, match="'a': the prediction must be a str"):
        squad_v1_scores(examples[:1], {"a": None})
    with pytest.raises(InputError, match="no questions"):
        squad_v2_scores([], {})
    with pytest.raises(InputError, match="'b' has no gold answer"):
        qa_metrics(examples, {"a": "Paris", "b": ""})


def test_v2_gold_answers_normalising_to_empty_are_dropped():
    examples = [example("a", [".", "Paris"]), example("b", ["."], context="Paris. France.")]
    scores = squad_v2_scores(examples, {"a": "", "b": ""})
    assert scores["HasAns_exact"] == 50.0  # a: "" is wrong against "Paris"; b: only "." is left → [""]
    assert "NoAns_total" not in scores  # b has an answer ("."), so it is a HasAns question


def test_threshold_turns_confident_no_answers_into_empty_answers():
    examples = [example("a", ["Paris"]), example("b")]
    predictions, probs = {"a": "Paris", "b": "France"}, {"a": 0.2, "b": 0.9}
    assert squad_v2_scores(examples, predictions, probs)["exact"] == 50.0
    assert squad_v2_scores(examples, predictions, probs, na_prob_thresh=0.5)["exact"] == 100.0
    best = qa_metrics(examples, predictions, null_scores=probs, version_2=True)
    assert best["exact_match"] == 50.0 and best["best_exact"] == 100.0 and best["best_f1_thresh"] == 0.2
    assert not math.isinf(best["best_exact_thresh"])
