"""Tests for kbert.metrics.classification: hand-computed values, edge cases, and agreement with scikit-learn
and SciPy, which compute the numbers; the comparisons guard kbert's glue (labels, zero_division,
one-column multi-hot arrays, silent NaN for undefined correlations)."""

import json
import math
import warnings

import numpy as np
import pytest
import sklearn.metrics as sk
from scipy import stats

from kbert.errors import InputError
from kbert.metrics.classification import (accuracy, compute_metrics, macro_f1, macro_f1_multilabel, micro_f1,
                                    mse, pearson, per_label_f1, rankdata, spearman, subset_accuracy)

NAN = float("nan")


# --- single-label ---------------------------------------------------------------------------------
def test_accuracy_by_hand():
    assert accuracy([0, 1, 2, 1], [0, 2, 2, 1]) == 0.75
    assert accuracy([3], [3]) == 1.0
    assert accuracy(np.array([[1], [0]]), [0, 0]) == 0.5          # a (n, 1) column is flattened
    assert accuracy([1.0, 0.0], np.array([1, 1], dtype=np.int32)) == 0.5   # integer-valued floats
    assert isinstance(accuracy([1], [1]), float)


@pytest.mark.parametrize("y_true, y_pred", [([], []), ([0, 1], [0]), ([[0, 1]], [[0, 1]]), ([0.5], [0]),
                                            (["a"], [0])])
def test_bad_class_inputs_raise(y_true, y_pred):
    with pytest.raises(InputError):
        accuracy(y_true, y_pred)


def test_macro_f1_by_hand():
    # class 0: TP 1, FP 0, FN 0 -> 1; class 1: TP 1, FN 1 -> 2/3; class 2: only predicted -> 0;
    # class 3: absent from both -> left out of the mean.
    assert macro_f1([0, 1, 1], [0, 1, 2], num_labels=4) == pytest.approx((1 + 2 / 3 + 0) / 3)
    # 3 classes: TP/FP/FN = (2,1,0), (1,0,1), (0,0,0 absent) -> F1 4/5, 2/3; mean over 2.
    assert macro_f1([0, 0, 1, 1], [0, 0, 1, 0], num_labels=3) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1([2, 2], [2, 2], num_labels=5) == 1.0
    assert macro_f1([0, 0], [1, 1], num_labels=2) == 0.0


def test_macro_f1_checks_label_range():
    with pytest.raises(InputError, match="outside 0..2"):
        macro_f1([0, 3], [0, 1], num_labels=3)
    with pytest.raises(InputError, match="outside"):
        macro_f1([0, 1], [0, -1], num_labels=3)


# --- multi-label ----------------------------------------------------------------------------------
Y_TRUE = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
Y_PRED = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0]])


def test_multilabel_by_hand():
    # pooled: TP 3, FP 0, FN 1 -> 6/7
    assert micro_f1(Y_TRUE, Y_PRED) == pytest.approx(6 / 7)
    # columns: 1, 2/3, absent (0 by default)
    assert macro_f1_multilabel(Y_TRUE, Y_PRED) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert macro_f1_multilabel(Y_TRUE, Y_PRED, zero_division=NAN) == pytest.approx((1 + 2 / 3) / 2)
    assert macro_f1_multilabel(Y_TRUE, Y_PRED, zero_division=1.0) == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert subset_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)


def test_multilabel_nothing_positive():
    zeros = np.zeros((2, 3), dtype=bool)
    assert micro_f1(zeros, zeros) == 0.0
    assert micro_f1(zeros, zeros, zero_division=1.0) == 1.0
    assert math.isnan(micro_f1(zeros, zeros, zero_division=NAN))
    assert macro_f1_multilabel(zeros, zeros) == 0.0
    assert math.isnan(macro_f1_multilabel(zeros, zeros, zero_division=NAN))
    assert subset_accuracy(zeros, zeros) == 1.0


def test_one_label_column_stays_multi_label():
    # scikit-learn alone reads an (n, 1) indicator as binary classes 0/1 and would also score the 0s
    # (micro F1 0.75 = accuracy here); kbert scores only the label column.
    y_true, y_pred = [[1], [0], [0], [0]], [[0], [0], [0], [0]]
    assert micro_f1(y_true, y_pred) == 0.0
    assert macro_f1_multilabel(y_true, y_pred) == 0.0
    assert per_label_f1(y_true, y_pred, names=["x"])["x"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                              "support": 1}
    assert micro_f1([[1], [0]], [[1], [1]]) == pytest.approx(2 / 3)
    assert math.isnan(macro_f1_multilabel([[0], [0]], [[0], [0]], zero_division=NAN))
    assert compute_metrics("multi_label", [[1], [0]], [[2.0], [-1.0]]) == \
        {"micro_f1": 1.0, "macro_f1": 1.0, "subset_accuracy": 1.0}


@pytest.mark.parametrize("zero_division", [0.5, -1.0, "warn", None])
def test_zero_division_values_checked(zero_division):
    with pytest.raises(InputError, match="zero_division must be 0.0, 1.0 or nan"):
        micro_f1(Y_TRUE, Y_PRED, zero_division=zero_division)
    with pytest.raises(InputError, match="zero_division must be 0.0, 1.0 or nan"):
        per_label_f1([0, 1], [0, 1], names=["a", "b"], zero_division=zero_division)


def test_no_warnings_from_the_libraries():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zeros = np.zeros((2, 3), dtype=bool)
        micro_f1(zeros, zeros)
        macro_f1_multilabel(zeros, zeros, zero_division=NAN)
        per_label_f1([0, 0], [0, 0], names=["a", "b", "c"])
        macro_f1([0, 0], [1, 1], num_labels=3)
        for x, y in [([1, 2, 3], [5, 5, 5]), ([1.0], [2.0]), ([1, NAN, 3], [1, 2, 3]),
                     ([1, 1 + 1e-15, 1, 1], [1, 2, 3, 4])]:            # the last: SciPy's near-constant warning
            pearson(x, y)
            spearman(x, y)


def test_results_are_plain_json_values():
    report = per_label_f1([0, 1, 1], [0, 1, 0], names=["a", "b"])
    assert all(type(row[k]) is float for row in report.values() for k in ("precision", "recall", "f1"))
    assert all(type(row["support"]) is int for row in report.values())
    for kind, y_true, logits in [("class", [0, 1], [[1.0, 0.0], [0.0, 1.0]]),
                                 ("multi_label", [[1, 0], [0, 1]], [[1.0, -1.0], [1.0, 1.0]]),
                                 ("regression", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0])]:
        got = compute_metrics(kind, y_true, logits)
        assert all(type(v) is float for v in got.values()), (kind, got)
        json.dumps(got)
    assert type(pearson([1, 2, 3], [1, 3, 2])) is float and type(spearman([1, 2, 3], [1, 3, 2])) is float


@pytest.mark.parametrize("y_true, y_pred", [([1, 0], [1, 0]), ([[1, 2]], [[1, 0]]), ([[1, 0]], [[1, 0, 0]]),
                                            (np.zeros((0, 2)), np.zeros((0, 2)))])
def test_bad_multi_hot_raises(y_true, y_pred):
    with pytest.raises(InputError):
        micro_f1(y_true, y_pred)


# --- per-label report -----------------------------------------------------------------------------
def test_per_label_single_label_by_hand():
    report = per_label_f1([0, 1, 1, 2], [0, 1, 0, 1], names=["a", "b", "c", "d"])
    assert list(report) == ["a", "b", "c", "d"]
    assert report["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert report["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}   # never predicted
    assert report["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}   # absent
    assert isinstance(report["a"]["support"], int)
    nan_report = per_label_f1([0, 1, 1, 2], [0, 1, 0, 1], names="abcd", zero_division=NAN)
    assert math.isnan(nan_report["c"]["precision"]) and nan_report["c"]["f1"] == 0.0
    assert all(math.isnan(nan_report["d"][k]) for k in ("precision", "recall", "f1"))


def test_per_label_multi_hot_by_hand():
    report = per_label_f1(Y_TRUE, Y_PRED, names=["x", "y", "z"])
    assert report["x"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert report["y"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_label_checks_names():
    with pytest.raises(InputError, match="outside"):
        per_label_f1([0, 2], [0, 1], names=["a", "b"])
    with pytest.raises(InputError, match="3 names"):
        per_label_f1(Y_TRUE[:, :2], Y_PRED[:, :2], names=["x", "y", "z"])
    with pytest.raises(InputError, match="duplicate"):
        per_label_f1([0], [0], names=["a", "a"])


# --- regression -----------------------------------------------------------------------------------
def test_mse_by_hand():
    assert mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(4 / 3)
    assert mse([[1.0], [2.0]], [1.0, 4.0]) == 2.0
    with pytest.raises(InputError):
        mse([1.0, 2.0], [1.0])


def test_pearson_by_hand():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5): 4 / (sqrt 5 * sqrt 5)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-15)
    assert -1.0 <= pearson(np.arange(1000) * 1e-8, np.arange(1000) * 1e8) <= 1.0


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)        # monotone, not linear
    assert spearman([1, 2, 3, 4], [10, 1, 0, -5]) == pytest.approx(-1.0)
    # ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_rankdata_ties_average():
    np.testing.assert_array_equal(rankdata([10, 20, 10, 30]), [1.5, 3, 1.5, 4])
    np.testing.assert_array_equal(rankdata([5, 5, 5]), [2, 2, 2])
    np.testing.assert_array_equal(rankdata([3, 1, 2]), [3, 1, 2])
    np.testing.assert_array_equal(rankdata([2, 1, 2, 1, 2]), [4, 1.5, 4, 1.5, 4])


@pytest.mark.parametrize("fn", [pearson, spearman])
@pytest.mark.parametrize("x, y", [([1, 2, 3], [5, 5, 5]), ([7, 7], [1, 2]), ([1.0], [2.0]),
                                  ([1, NAN, 3], [1, 2, 3]), ([1, 2, 3], [1, 2, NAN])])
def test_correlations_undefined_are_nan(fn, x, y):
    assert math.isnan(fn(x, y))


# --- compute_metrics ------------------------------------------------------------------------------
def test_compute_metrics_class():
    logits = np.array([[2.0, 0.1, 0.0], [0.3, 1.5, 0.0], [1.0, -1.0, 0.0], [0.0, 0.5, 0.2]])
    got = compute_metrics("class", [0, 1, 1, 1], logits, names=["a", "b", "c"])
    # predictions 0, 1, 0, 1: class 0 F1 2/3, class 1 F1 4/5, class 2 absent
    assert got == {"accuracy": 0.75, "macro_f1": pytest.approx((2 / 3 + 0.8) / 2)}
    assert all(type(v) is float for v in got.values())
    assert compute_metrics("class", [0, 1, 1, 1], logits) == got                  # names optional


def test_compute_metrics_multi_label_thresholds_at_half():
    # logit 0 -> sigmoid 0.5, which is not > 0.5: not predicted
    logits = np.array([[3.0, -2.0, 0.0], [0.5, -0.1, 1e-3]])
    got = compute_metrics("multi_label", np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), logits)
    # predicted [[1,0,0],[1,0,1]]: TP 3, FN 1 -> 6/7; columns 1, 0, 1; one row exact
    assert got == {"micro_f1": pytest.approx(6 / 7), "macro_f1": pytest.approx(2 / 3), "subset_accuracy": 0.5}
    # huge logits do not overflow a sigmoid
    assert compute_metrics("multi_label", [[1, 0]], [[1e300, -1e300]])["subset_accuracy"] == 1.0


def test_compute_metrics_regression():
    got = compute_metrics("regression", [1.0, 2.0, 3.0, 4.0], np.array([[1.0], [3.0], [2.0], [4.0]]))
    assert got == {"pearson": pytest.approx(0.8), "spearman": pytest.approx(0.8), "mse": 0.5}
    constant = compute_metrics("regression", [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert math.isnan(constant["pearson"]) and math.isnan(constant["spearman"])
    assert constant["mse"] == pytest.approx((0.25 + 2.25 + 6.25) / 3)


def test_compute_metrics_checks():
    with pytest.raises(InputError, match="kind"):
        compute_metrics("ranking", [0], [[1.0]])
    with pytest.raises(InputError, match="2 label names"):
        compute_metrics("class", [0], [[1.0, 0.0, 0.0]], names=["a", "b"])
    with pytest.raises(InputError, match="logits"):
        compute_metrics("class", [0], [1.0, 0.0])
    with pytest.raises(InputError, match="outside"):
        compute_metrics("class", [2], [[1.0, 0.0]])


# --- references -----------------------------------------------------------------------------------
def _random_class_case(seed):
    rng = np.random.default_rng(seed)
    num_labels = int(rng.integers(2, 8))
    n = int(rng.integers(1, 40))
    # draw from a subset so that some classes are absent from y_true, y_pred or both
    pool = rng.choice(num_labels, size=max(1, num_labels - 2), replace=False)
    y_true = rng.choice(pool, size=n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, num_labels, size=n))
    return y_true, y_pred, num_labels


@pytest.mark.parametrize("seed", range(25))
def test_classification_matches_sklearn(seed):
    y_true, y_pred, num_labels = _random_class_case(seed)
    assert accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert macro_f1(y_true, y_pred, num_labels) == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
    names = [f"l{i}" for i in range(num_labels)]
    for zero_division in (0.0, 1.0, NAN):
        p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=list(range(num_labels)),
                                                        zero_division=zero_division)
        report = per_label_f1(y_true, y_pred, names, zero_division=zero_division)
        got = np.array([[report[n][k] for k in ("precision", "recall", "f1", "support")] for n in names])
        np.testing.assert_allclose(got, np.stack([p, r, f, s], axis=1), equal_nan=True)


@pytest.mark.parametrize("seed", range(25))
def test_multilabel_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 30)), int(rng.integers(2, 6))
    density = rng.random(k) * 0.6                       # some columns end up empty
    y_true = rng.random((n, k)) < density
    y_pred = np.where(rng.random((n, k)) < 0.7, y_true, rng.random((n, k)) < density)
    assert subset_accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    for zero_division in (0.0, 1.0, NAN):
        ref_micro = sk.f1_score(y_true, y_pred, average="micro", zero_division=zero_division)
        ref_macro = sk.f1_score(y_true, y_pred, average="macro", zero_division=zero_division)
        assert micro_f1(y_true, y_pred, zero_division) == pytest.approx(ref_micro, nan_ok=True)
        assert macro_f1_multilabel(y_true, y_pred, zero_division) == pytest.approx(ref_macro, nan_ok=True)
    names = [f"l{i}" for i in range(k)]
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    report = per_label_f1(y_true, y_pred, names)
    got = np.array([[report[n][key] for key in ("precision", "recall", "f1", "support")] for n in names])
    np.testing.assert_allclose(got, np.stack([p, r, f, s], axis=1))


@pytest.mark.parametrize("seed", range(25))
def test_regression_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 50))
    if seed % 2:   # few distinct values: many ties
        x, y = rng.integers(0, 4, n).astype(float), rng.integers(0, 3, n).astype(float)
        if np.all(x == x[0]) or np.all(y == y[0]):
            x[0], y[0] = 10.0, 10.0
    else:
        x = rng.standard_normal(n)
        y = 0.5 * x + rng.standard_normal(n)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    np.testing.assert_array_equal(rankdata(x), stats.rankdata(x))
    assert mse(x, y) == pytest.approx(sk.mean_squared_error(x, y), abs=1e-12)


def test_correlations_with_infinity():
    # pearson is nan (the mean is infinite); spearman ranks an infinity like any largest value
    assert math.isnan(pearson([1.0, 2.0, math.inf], [1.0, 2.0, 3.0]))
    assert spearman([1.0, 2.0, math.inf], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_constant_nan_like_scipy():
    with pytest.warns(Warning):
        ref = stats.pearsonr([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])[0]
    assert math.isnan(ref) and math.isnan(pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
