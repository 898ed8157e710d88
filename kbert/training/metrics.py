"""Evaluation metrics in plain numpy: classification, multi-label and regression.

Every function takes array-likes, checks shapes, and returns Python ``float`` values (``int`` for
supports), so results can go straight into JSON. Definitions follow scikit-learn / SciPy defaults,
and the tests compare against them where those libraries are installed:

* F1 is ``2·TP / (2·TP + FP + FN)``. A label with ``TP + FP + FN == 0`` (absent from both ``y_true``
  and ``y_pred``) has no defined F1; it gets ``zero_division`` (0.0 by default, scikit-learn's
  ``zero_division="warn"`` value). Passing ``zero_division=float("nan")`` leaves such labels out of
  macro averages, as scikit-learn does.
* Single-label :func:`macro_f1` averages over the labels present in ``y_true`` or ``y_pred`` (what
  scikit-learn's ``f1_score(average="macro")`` does when ``labels`` is not given), so labels absent
  from both never count.
* Multi-label :func:`macro_f1_multilabel` averages over *every* column, as scikit-learn does for
  indicator matrices: a column absent from both counts as ``zero_division``.
* :func:`pearson` and :func:`spearman` return ``nan`` when either input is constant, has fewer than
  two values, or holds a NaN (SciPy also returns ``nan`` there, with a warning; kbert stays silent).

Empty inputs and mismatched shapes raise :class:`kbert.errors.InputError`.

Example:
    >>> import numpy as np
    >>> from kbert.training.metrics import compute_metrics
    >>> logits = np.array([[2.0, 0.1], [0.3, 1.5], [1.0, -1.0], [0.0, 0.5]])
    >>> compute_metrics("class", [0, 1, 1, 1], logits, names=["neg", "pos"])
    {'accuracy': 0.75, 'macro_f1': 0.7333333333333334}
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kbert.errors import InputError

__all__ = [
    "accuracy",
    "compute_metrics",
    "macro_f1",
    "macro_f1_multilabel",
    "micro_f1",
    "mse",
    "pearson",
    "per_label_f1",
    "rankdata",
    "spearman",
    "subset_accuracy",
]

KINDS = ("class", "multi_label", "regression")


# --- input checks --------------------------------------------------------------------------------
def _labels_1d(values, name: str) -> np.ndarray:
    """Class ids as a 1-D int64 array; an ``(n, 1)`` column is flattened."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of class ids, got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name}: empty; metrics need at least one example")
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)) \
                or np.any(array != np.round(array)):
            raise InputError(f"{name}: class ids must be integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _pair_1d(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels_1d(y_true, "y_true"), _labels_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise InputError(f"y_true has {t.shape[0]} examples but y_pred has {p.shape[0]}")
    return t, p


def _check_range(array: np.ndarray, num_labels: int, name: str) -> None:
    if num_labels < 1:
        raise InputError(f"num_labels must be at least 1, got {num_labels}")
    bad = (array < 0) | (array >= num_labels)
    if np.any(bad):
        raise InputError(f"{name}: class id {int(array[bad][0])} is outside 0..{num_labels - 1}")


def _multi_hot(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise InputError(f"{name}: expected a 2-D multi-hot array (examples, labels), got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name}: empty; metrics need at least one example and one label")
    if array.dtype != bool and not np.all((array == 0) | (array == 1)):
        raise InputError(f"{name}: a multi-hot array may hold only 0 and 1")
    return array.astype(bool)


def _pair_multi_hot(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _multi_hot(y_true, "y_true"), _multi_hot(y_pred, "y_pred")
    if t.shape != p.shape:
        raise InputError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    return t, p


def _values_1d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of numbers, got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name}: empty; metrics need at least one example")
    return array


def _pair_values(x, y) -> tuple[np.ndarray, np.ndarray]:
    a, b = _values_1d(x, "x"), _values_1d(y, "y")
    if a.shape != b.shape:
        raise InputError(f"x has {a.shape[0]} values but y has {b.shape[0]}")
    return a, b


def _ratio(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    """``numerator / denominator`` elementwise, ``zero_division`` where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _mean_ignoring_nan(values: np.ndarray) -> float:
    """Mean of the non-NaN entries (NaN when there are none), without numpy's warning."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


# --- single-label classification -----------------------------------------------------------------
def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose predicted class id equals the true one.

    >>> accuracy([0, 1, 2, 1], [0, 2, 2, 1])
    0.75
    """
    t, p = _pair_1d(y_true, y_pred)
    return float(np.mean(t == p))


def _counts_1d(t: np.ndarray, p: np.ndarray, num_labels: int):
    tp = np.bincount(t[t == p], minlength=num_labels)
    true_count = np.bincount(t, minlength=num_labels)
    pred_count = np.bincount(p, minlength=num_labels)
    return tp, true_count, pred_count


def macro_f1(y_true, y_pred, num_labels: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    Class ids must lie in ``0..num_labels-1``. A class absent from both inputs is left out of the
    mean (scikit-learn's ``f1_score(y_true, y_pred, average="macro")``); a class present in only one
    of them has F1 0 and counts. Here class 2 is only predicted and class 3 appears nowhere, so the
    mean is over classes 0, 1 and 2: ``(1 + 2/3 + 0) / 3``.

    >>> round(macro_f1([0, 1, 1], [0, 1, 2], num_labels=4), 6)
    0.555556
    """
    t, p = _pair_1d(y_true, y_pred)
    _check_range(t, num_labels, "y_true")
    _check_range(p, num_labels, "y_pred")
    tp, true_count, pred_count = _counts_1d(t, p, num_labels)
    present = (true_count + pred_count) > 0
    f1 = 2.0 * tp[present] / (true_count[present] + pred_count[present])
    return float(f1.mean())


# --- multi-label classification ------------------------------------------------------------------
def micro_f1(y_true_multi_hot, y_pred_multi_hot, zero_division: float = 0.0) -> float:
    """F1 of all (example, label) decisions pooled: ``2·TP / (2·TP + FP + FN)`` over the matrix.

    Returns ``zero_division`` when neither input has a single positive.

    >>> micro_f1([[1, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 1, 1]])
    0.6666666666666666
    >>> micro_f1([[0, 0]], [[0, 0]])
    0.0
    """
    t, p = _pair_multi_hot(y_true_multi_hot, y_pred_multi_hot)
    tp = np.sum(t & p)
    return float(_ratio(2.0 * tp, np.sum(t) + np.sum(p), zero_division))


def macro_f1_multilabel(y_true_multi_hot, y_pred_multi_hot, zero_division: float = 0.0) -> float:
    """Unweighted mean of per-label (per-column) F1 over every label column.

    A column with no positive in either input has no defined F1 and counts as ``zero_division``
    (scikit-learn's default for indicator matrices); ``zero_division=float("nan")`` leaves such
    columns out of the mean instead. Here the last column is empty in both:

    >>> y_true = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
    >>> y_pred = [[1, 0, 0], [0, 0, 0], [1, 1, 0]]
    >>> round(macro_f1_multilabel(y_true, y_pred), 6)   # (1 + 2/3 + 0) / 3
    0.555556
    >>> round(macro_f1_multilabel(y_true, y_pred, zero_division=float("nan")), 6)   # (1 + 2/3) / 2
    0.833333
    """
    t, p = _pair_multi_hot(y_true_multi_hot, y_pred_multi_hot)
    tp = np.sum(t & p, axis=0)
    f1 = _ratio(2.0 * tp, np.sum(t, axis=0) + np.sum(p, axis=0), zero_division)
    return _mean_ignoring_nan(f1)


def subset_accuracy(y_true_multi_hot, y_pred_multi_hot) -> float:
    """Fraction of examples whose predicted label set equals the true one exactly.

    >>> subset_accuracy([[1, 0, 1], [0, 1, 0]], [[1, 0, 1], [0, 1, 1]])
    0.5
    """
    t, p = _pair_multi_hot(y_true_multi_hot, y_pred_multi_hot)
    return float(np.mean(np.all(t == p, axis=1)))


# --- per-label report ----------------------------------------------------------------------------
def per_label_f1(y_true, y_pred, names: Sequence[str], zero_division: float = 0.0) -> dict[str, dict]:
    """Precision, recall, F1 and support for every label in ``names``, like ``classification_report``.

    ``y_true`` / ``y_pred`` are either 1-D class ids (single-label; ids index ``names``) or 2-D
    multi-hot arrays with one column per name (multi-label; a 2-D input is always read as
    multi-hot). Every name is reported, present or not; a ratio whose denominator is 0 (precision
    with no predictions, recall with no true examples, F1 with neither) is ``zero_division``.
    ``support`` is the number of true examples of the label.

    >>> report = per_label_f1([0, 1, 1], [0, 1, 0], names=["neg", "pos", "mixed"])
    >>> report["neg"]
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    >>> report["pos"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    >>> report["mixed"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 0}
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise InputError(f"names: duplicate label names in {names}")
    if np.asarray(y_true).ndim == 2:
        t, p = _pair_multi_hot(y_true, y_pred)
        if t.shape[1] != len(names):
            raise InputError(f"{len(names)} names for a multi-hot array of {t.shape[1]} label columns")
        tp = np.sum(t & p, axis=0)
        true_count, pred_count = np.sum(t, axis=0), np.sum(p, axis=0)
    else:
        t, p = _pair_1d(y_true, y_pred)
        _check_range(t, len(names), "y_true")
        _check_range(p, len(names), "y_pred")
        tp, true_count, pred_count = _counts_1d(t, p, len(names))
    precision = _ratio(tp, pred_count, zero_division)
    recall = _ratio(tp, true_count, zero_division)
    f1 = _ratio(2.0 * tp, true_count + pred_count, zero_division)
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(true_count[i])}
        for i, name in enumerate(names)
    }


# --- regression ----------------------------------------------------------------------------------
def mse(x, y) -> float:
    """Mean squared error ``mean((x - y)**2)``.

    >>> mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    a, b = _pair_values(x, y)
    return float(np.mean((a - b) ** 2))


def pearson(x, y) -> float:
    """Pearson correlation coefficient of two equally long 1-D inputs.

    ``nan`` when either input is constant (the coefficient is undefined), has fewer than two values,
    or contains a NaN.

    >>> pearson([1, 2, 3, 4], [2, 4, 6, 8])
    1.0
    >>> round(pearson([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.8
    >>> pearson([1, 2, 3], [5, 5, 5])
    nan
    """
    a, b = _pair_values(x, y)
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any() or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(da), np.linalg.norm(db)
    if na == 0 or nb == 0 or not np.isfinite(na * nb):
        return float("nan")
    return float(np.clip(np.dot(da / na, db / nb), -1.0, 1.0))


def rankdata(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (SciPy's ``"average"``).

    >>> rankdata([10, 20, 10, 30])
    array([1.5, 3. , 1.5, 4. ])
    """
    a = _values_1d(values, "values")
    order = np.argsort(a, kind="mergesort")
    inverse = np.empty(a.size, dtype=np.intp)
    inverse[order] = np.arange(a.size)
    sorted_values = a[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts)[inverse]                      # 1-based tie-group id of each value
    bounds = np.r_[np.nonzero(starts)[0], a.size]           # group g spans sorted positions [b[g-1], b[g])
    return 0.5 * (bounds[group] + bounds[group - 1] + 1)


def spearman(x, y) -> float:
    """Spearman rank correlation: :func:`pearson` of the average ranks (ties as ``scipy.stats.spearmanr``).

    ``nan`` in the same cases as :func:`pearson` (a constant input has constant ranks).

    >>> spearman([1, 2, 3, 4], [1, 4, 9, 16])
    1.0
    >>> round(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 6)
    0.948683
    """
    a, b = _pair_values(x, y)
    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    return pearson(rankdata(a), rankdata(b))


# --- from model outputs --------------------------------------------------------------------------
def compute_metrics(kind: str, y_true, logits, names: Sequence[str] | None = None) -> dict[str, float]:
    """The headline metrics of one evaluation, from true labels and raw model outputs.

    * ``"class"``: ``y_true`` holds class ids, ``logits`` is ``(n, num_labels)``; the prediction is
      the arg-max. Returns ``{"accuracy", "macro_f1"}``.
    * ``"multi_label"``: ``y_true`` is ``(n, num_labels)`` multi-hot; a label is predicted when
      ``sigmoid(logit) > 0.5``, i.e. ``logit > 0``. Returns ``{"micro_f1", "macro_f1",
      "subset_accuracy"}``.
    * ``"regression"``: ``y_true`` and ``logits`` hold one number per example (``(n,)`` or ``(n, 1)``).
      Returns ``{"pearson", "spearman", "mse"}``; the correlations are ``nan`` for constant inputs.

    ``names`` (optional) are the label names; when given, their number must match the logits' last
    axis for the classification kinds.

    >>> compute_metrics("multi_label", [[1, 0], [1, 1]], [[3.0, -2.0], [0.5, -0.1]])
    {'micro_f1': 0.8, 'macro_f1': 0.5, 'subset_accuracy': 0.5}
    >>> scores = compute_metrics("regression", [1.0, 2.0, 3.0], [[1.5], [2.0], [2.5]])
    >>> {name: round(value, 6) for name, value in scores.items()}
    {'pearson': 1.0, 'spearman': 1.0, 'mse': 0.166667}
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    scores = np.asarray(logits, dtype=np.float64)
    if kind == "regression":
        return {"pearson": pearson(y_true, scores), "spearman": spearman(y_true, scores),
                "mse": mse(y_true, scores)}
    if scores.ndim != 2:
        raise InputError(f"logits: expected shape (examples, labels) for kind {kind!r}, got {scores.shape}")
    num_labels = scores.shape[1]
    if names is not None and len(names) != num_labels:
        raise InputError(f"{len(names)} label names but the logits have {num_labels} columns")
    if kind == "class":
        y_pred = np.argmax(scores, axis=-1)
        return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, num_labels)}
    y_pred = scores > 0.0
    return {"micro_f1": micro_f1(y_true, y_pred), "macro_f1": macro_f1_multilabel(y_true, y_pred),
            "subset_accuracy": subset_accuracy(y_true, y_pred)}
