"""Evaluation metrics for classification, multi_label and regression, computed by scikit-learn and SciPy.

Every function takes array-likes, checks them (kbert's :class:`kbert.errors.InputError`, naming what
was wrong, before any library sees them), and returns Python ``float`` values (``int`` for supports)
so results can go straight into JSON. The numbers are scikit-learn's (``accuracy_score``,
``f1_score``, ``precision_recall_fscore_support``, ``mean_squared_error``) and SciPy's
(``pearsonr``, ``spearmanr``, ``rankdata``); kbert only chooses their arguments:

* F1 is ``2·TP / (2·TP + FP + FN)``. A label with ``TP + FP + FN == 0`` (absent from both ``y_true``
  and ``y_pred``) has no defined F1; it gets ``zero_division``: 0.0 by default (scikit-learn's
  ``zero_division="warn"`` value, without the warning), 1.0, or ``float("nan")``, which leaves such
  labels out of macro averages, as scikit-learn does. Other values raise ``InputError``.
* Single-label :func:`macro_f1` averages over the labels present in ``y_true`` or ``y_pred``
  (``f1_score(average="macro")`` without ``labels``), so labels absent from both never count.
* Multi-label :func:`macro_f1_multilabel` averages over *every* column, as scikit-learn does for
  indicator matrices: a column absent from both counts as ``zero_division``. A one-column multi-hot
  array stays multi_label (scikit-learn alone would read it as binary classes 0/1).
* :func:`pearson` and :func:`spearman` return ``nan`` when either input is constant, has fewer than
  two values, or holds a NaN (SciPy returns ``nan`` there with a warning, or raises for fewer than two
  values; kbert checks first and stays silent).

scikit-learn and SciPy are imported on first use, not with this module, to keep the CLI quick:
``sklearn.metrics`` takes 2.4 s to import on its own (0.4 s more even after Keras has loaded
``sklearn`` and ``scipy.stats``), ``scipy.stats`` 1.4 s on its own.

Empty inputs and mismatched shapes raise :class:`kbert.errors.InputError`.

Example:
    >>> import numpy as np
    >>> from kbert.metrics.classification import compute_metrics
    >>> logits = np.array([[2.0, 0.1], [0.3, 1.5], [1.0, -1.0], [0.0, 0.5]])
    >>> compute_metrics("class", [0, 1, 1, 1], logits, names=["neg", "pos"])
    {'accuracy': 0.75, 'macro_f1': 0.7333333333333334}
"""

from __future__ import annotations

import math
import warnings
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


def _zero_division(value) -> float:
    """``zero_division`` as scikit-learn accepts it: 0.0, 1.0 or NaN."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"zero_division must be 0.0, 1.0 or nan, got {value!r}") from None
    if not (value in (0.0, 1.0) or math.isnan(value)):
        raise InputError(f"zero_division must be 0.0, 1.0 or nan, got {value!r}")
    return value


def _indicator(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Multi-hot pair and the label columns to score, in a form scikit-learn reads as multi_label.

    scikit-learn reads a one-column indicator matrix as binary classes 0/1 (and then scores the
    negatives too), so such a column gets an all-zero companion that ``labels`` leaves out.
    """
    labels = list(range(t.shape[1]))
    t, p = t.astype(np.int8), p.astype(np.int8)      # scikit-learn's np.unique checks run faster than on bool
    if t.shape[1] == 1:
        pad = np.zeros_like(t)
        t, p = np.concatenate([t, pad], axis=1), np.concatenate([p, pad], axis=1)
    return t, p, labels


# --- single-label classification -----------------------------------------------------------------
def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose predicted class id equals the true one (``sklearn.metrics.accuracy_score``).

    >>> accuracy([0, 1, 2, 1], [0, 2, 2, 1])
    0.75
    """
    from sklearn.metrics import accuracy_score

    t, p = _pair_1d(y_true, y_pred)
    return float(accuracy_score(t, p))


def macro_f1(y_true, y_pred, num_labels: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    Class ids must lie in ``0..num_labels-1``. A class absent from both inputs is left out of the
    mean (scikit-learn's ``f1_score(y_true, y_pred, average="macro")``, which this calls); a class
    present in only one of them has F1 0 and counts. Here class 2 is only predicted and class 3
    appears nowhere, so the mean is over classes 0, 1 and 2: ``(1 + 2/3 + 0) / 3``.

    >>> round(macro_f1([0, 1, 1], [0, 1, 2], num_labels=4), 6)
    0.555556
    """
    from sklearn.metrics import f1_score

    t, p = _pair_1d(y_true, y_pred)
    _check_range(t, num_labels, "y_true")
    _check_range(p, num_labels, "y_pred")
    # Every class scikit-learn averages over occurs in t or p, so zero_division never applies; it
    # is set only to keep scikit-learn from checking for (and warning about) undefined scores.
    return float(f1_score(t, p, average="macro", zero_division=0.0))


# --- multi_label classification ------------------------------------------------------------------
def micro_f1(y_true_multi_hot, y_pred_multi_hot, zero_division: float = 0.0) -> float:
    """F1 of all (example, label) decisions pooled: ``2·TP / (2·TP + FP + FN)`` over the matrix.

    ``sklearn.metrics.f1_score(average="micro")``. Returns ``zero_division`` when neither input has
    a single positive.

    >>> micro_f1([[1, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 1, 1]])
    0.6666666666666666
    >>> micro_f1([[0, 0]], [[0, 0]])
    0.0
    """
    from sklearn.metrics import f1_score

    t, p, labels = _indicator(*_pair_multi_hot(y_true_multi_hot, y_pred_multi_hot))
    return float(f1_score(t, p, labels=labels, average="micro", zero_division=_zero_division(zero_division)))


def macro_f1_multilabel(y_true_multi_hot, y_pred_multi_hot, zero_division: float = 0.0) -> float:
    """Unweighted mean of per-label (per-column) F1 over every label column.

    ``sklearn.metrics.f1_score(average="macro")`` on the indicator matrices. A column with no
    positive in either input has no defined F1 and counts as ``zero_division``;
    ``zero_division=float("nan")`` leaves such columns out of the mean instead (``nan`` when every
    column is empty). Here the last column is empty in both:

    >>> y_true = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
    >>> y_pred = [[1, 0, 0], [0, 0, 0], [1, 1, 0]]
    >>> round(macro_f1_multilabel(y_true, y_pred), 6)   # (1 + 2/3 + 0) / 3
    0.555556
    >>> round(macro_f1_multilabel(y_true, y_pred, zero_division=float("nan")), 6)   # (1 + 2/3) / 2
    0.833333
    """
    from sklearn.metrics import f1_score

    t, p, labels = _indicator(*_pair_multi_hot(y_true_multi_hot, y_pred_multi_hot))
    return float(f1_score(t, p, labels=labels, average="macro", zero_division=_zero_division(zero_division)))


def subset_accuracy(y_true_multi_hot, y_pred_multi_hot) -> float:
    """Fraction of examples whose predicted label set equals the true one exactly.

    ``sklearn.metrics.accuracy_score`` on the indicator matrices.

    >>> subset_accuracy([[1, 0, 1], [0, 1, 0]], [[1, 0, 1], [0, 1, 1]])
    0.5
    """
    from sklearn.metrics import accuracy_score

    t, p = _pair_multi_hot(y_true_multi_hot, y_pred_multi_hot)
    return float(accuracy_score(t, p))


# --- per-label report ----------------------------------------------------------------------------
def per_label_f1(y_true, y_pred, names: Sequence[str], zero_division: float = 0.0) -> dict[str, dict]:
    """Precision, recall, F1 and support for every label in ``names``, like ``classification_report``.

    ``y_true`` / ``y_pred`` are either 1-D class ids (single-label; ids index ``names``) or 2-D
    multi-hot arrays with one column per name (multi_label; a 2-D input is always read as
    multi-hot). The numbers are ``sklearn.metrics.precision_recall_fscore_support`` with
    ``labels`` = every name's index, so every name is reported, present or not; a ratio whose
    denominator is 0 (precision with no predictions, recall with no true examples, F1 with neither)
    is ``zero_division``. ``support`` is the number of true examples of the label.

    >>> report = per_label_f1([0, 1, 1], [0, 1, 0], names=["neg", "pos", "mixed"])
    >>> report["neg"]
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    >>> report["pos"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    >>> report["mixed"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 0}
    """
    from sklearn.metrics import precision_recall_fscore_support

    names = list(names)
    if len(set(names)) != len(names):
        raise InputError(f"names: duplicate label names in {names}")
    zero_division = _zero_division(zero_division)
    if np.asarray(y_true).ndim == 2:
        t, p = _pair_multi_hot(y_true, y_pred)
        if t.shape[1] != len(names):
            raise InputError(f"{len(names)} names for a multi-hot array of {t.shape[1]} label columns")
        t, p, labels = _indicator(t, p)
    else:
        t, p = _pair_1d(y_true, y_pred)
        _check_range(t, len(names), "y_true")
        _check_range(p, len(names), "y_pred")
        labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=zero_division)
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(names)
    }


# --- regression ----------------------------------------------------------------------------------
def mse(x, y) -> float:
    """Mean squared error ``mean((x - y)**2)`` (``sklearn.metrics.mean_squared_error``).

    >>> mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    from sklearn.metrics import mean_squared_error

    a, b = _pair_values(x, y)
    return float(mean_squared_error(a, b))


def _undefined_correlation(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a correlation of ``a`` and ``b`` is undefined: < 2 values, a NaN, or a constant input."""
    return a.size < 2 or np.isnan(a).any() or np.isnan(b).any() or np.all(a == a[0]) or np.all(b == b[0])


def pearson(x, y) -> float:
    """Pearson correlation coefficient of two equally long 1-D inputs (``scipy.stats.pearsonr``).

    ``nan``, without a warning, when either input is constant (the coefficient is undefined), has
    fewer than two values, or contains a NaN (or an infinity, which makes the coefficient NaN).

    >>> pearson([1, 2, 3, 4], [2, 4, 6, 8])
    1.0
    >>> round(pearson([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.8
    >>> pearson([1, 2, 3], [5, 5, 5])
    nan
    """
    a, b = _pair_values(x, y)
    if _undefined_correlation(a, b) or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    from scipy.stats import pearsonr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # NearConstantInputWarning: the value is still returned
        return float(pearsonr(a, b).statistic)


def rankdata(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (``scipy.stats.rankdata``, ``"average"``).

    >>> rankdata([10, 20, 10, 30])
    array([1.5, 3. , 1.5, 4. ])
    """
    from scipy.stats import rankdata as scipy_rankdata

    return scipy_rankdata(_values_1d(values, "values"), method="average")


def spearman(x, y) -> float:
    """Spearman rank correlation with average ranks for ties (``scipy.stats.spearmanr``).

    ``nan``, without a warning, in the same cases as :func:`pearson` (a constant input has constant
    ranks); infinities are ranked like any other value.

    >>> spearman([1, 2, 3, 4], [1, 4, 9, 16])
    1.0
    >>> round(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 6)
    0.948683
    """
    a, b = _pair_values(x, y)
    if _undefined_correlation(a, b):
        return float("nan")
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


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

    Speed (measured on a shared 2-core CPU): scikit-learn's input checks (``np.unique`` over the
    labels) make it 10-100x slower than plain numpy counts, but small in absolute terms once per
    evaluation: ``"class"`` 5-10 ms for 872 examples (SST-2 dev) and 7,600 (AG News test),
    ``"multi_label"`` 45-110 ms for 5,426 x 28 (GoEmotions dev size), ``"regression"`` 2-3 ms for
    1,500 (STS-B dev size). So kbert keeps no metric code of its own.

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
