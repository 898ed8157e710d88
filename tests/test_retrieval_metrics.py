"""kbert.metrics.ranking reproduces sentence-transformers' InformationRetrievalEvaluator (recorded fixtures),
plus hand-computed cases for each quirk of its definitions."""

import json
import math

import numpy as np
import pytest

from conftest import EXPECTED
from kbert.errors import InputError
from kbert.metrics.ranking import retrieval_metrics

RECORDED = json.loads((EXPECTED / "retrieval_metrics.json").read_text())["setups"]


@pytest.mark.parametrize("setup", RECORDED, ids=lambda s: f"seed{s['seed']}-{s['documents']}docs")
def test_matches_the_evaluator_on_recorded_rankings(setup):
    rankings = {q: [doc for doc, _ in ranked] for q, ranked in setup["rankings"].items()}
    got = retrieval_metrics(rankings, {q: set(d) for q, d in setup["relevant"].items()}, **setup["k"])
    assert list(got) == list(setup["metrics"])  # same names, same order
    for name, value in setup["metrics"].items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("setup", RECORDED[:2], ids=lambda s: f"seed{s['seed']}")
def test_scores_sort_a_shuffled_ranking(setup):
    rng = np.random.default_rng(setup["seed"])
    rankings, scores = {}, {}
    for query, ranked in setup["rankings"].items():
        order = rng.permutation(len(ranked))
        rankings[query] = [ranked[i][0] for i in order]
        scores[query] = [ranked[i][1] for i in order]
    got = retrieval_metrics(rankings, setup["relevant"], scores=scores, **setup["k"])
    assert got == pytest.approx(setup["metrics"], abs=1e-12)


def test_the_recorded_setups_cover_the_quirks():
    """Queries without relevant documents, relevant ids missing from the corpus, k beyond the ranking."""
    first = RECORDED[0]
    assert any(not docs for docs in first["relevant"].values())
    assert set(first["relevant"]) - set(first["rankings"])  # left out by the evaluator
    assert any(d.startswith("missing") for docs in first["relevant"].values() for d in docs)
    assert max(first["k"]["precision_recall_at_k"]) > first["documents"]


K = dict(mrr_at_k=[1, 3], ndcg_at_k=[1, 3], accuracy_at_k=[1, 3], precision_recall_at_k=[1, 3, 5], map_at_k=[1, 3])


def test_hand_computed_single_query():
    got = retrieval_metrics({"q": ["x", "a", "y", "b"]}, {"q": {"a", "b", "c"}}, **K)
    assert got["accuracy@1"] == 0 and got["accuracy@3"] == 1
    assert got["precision@3"] == pytest.approx(1 / 3) and got["precision@5"] == pytest.approx(2 / 5)  # / k, not / 4
    assert got["recall@5"] == pytest.approx(2 / 3)  # c was never ranked: still counts
    assert got["mrr@1"] == 0 and got["mrr@3"] == pytest.approx(1 / 2)
    assert got["ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    assert got["map@3"] == pytest.approx((1 / 2) / 3)  # divided by min(k, R) = 3
    assert got["map@1"] == 0


def test_map_divides_by_min_of_k_and_relevant_count():
    relevant = {"q": {f"d{i}" for i in range(10)}}
    got = retrieval_metrics({"q": ["d0", "d1", "z"]}, relevant, **K)
    assert got["map@1"] == 1.0  # 1 / min(1, 10)
    assert got["map@3"] == pytest.approx((1 + 1) / 3)
    assert got["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4)))


def test_queries_without_relevant_documents_are_left_out_of_the_mean():
    base = retrieval_metrics({"q1": ["a"]}, {"q1": {"a"}}, **K)
    with_empty = retrieval_metrics({"q1": ["a"], "q2": ["a"]}, {"q1": {"a"}, "q2": set()}, **K)
    with_unranked = retrieval_metrics({"q1": ["a"]}, {"q1": {"a"}, "q9": {"a"}}, **K)
    assert base == with_empty == with_unranked and base["mrr@3"] == 1.0


def test_score_ties_keep_the_given_order():
    got = retrieval_metrics({"q": ["x", "a"]}, {"q": {"a"}}, scores={"q": [0.5, 0.5]}, **K)
    assert got["mrr@3"] == 0.5  # stable: x stays first
    got = retrieval_metrics({"q": ["x", "a"]}, {"q": {"a"}}, scores={"q": [0.4, 0.5]}, **K)
    assert got["mrr@3"] == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: retrieval_metrics({"q": ["a"]}, {"q": set()}), "no ranked query has a relevant document"),
    (lambda: retrieval_metrics({"q": ["a", "b", "a"]}, {"q": {"a"}}), "document 'a' is ranked twice"),
    (lambda: retrieval_metrics({"q": ["a"]}, {"q": {"a"}}, mrr_at_k=[0]), r"mrr_at_k must be .* positive integers"),
    (lambda: retrieval_metrics({"q": ["a"]}, {"q": {"a"}}, scores={"q": [1.0, 2.0]}), "1 ranked documents but 2 scores"),
    (lambda: retrieval_metrics([["a"]], {"q": {"a"}}), "must map query ids"),
])
def test_errors_name_the_problem(call, message):
    with pytest.raises(InputError, match=message):
        call()
