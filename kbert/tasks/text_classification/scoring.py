"""Scores of the text-classification family: logits ─► metrics + loss, and the confusion-matrix plot.

Example:
    >>> import numpy as np
    >>> from kbert.tasks.text_classification.scoring import loss_value
    >>> round(loss_value("class", np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]])), 4)
    0.1269
"""

from __future__ import annotations

import numpy as np

from kbert.tasks.base import EvaluationReport, sigmoid, softmax
from kbert.batching.inference import predict
from kbert.metrics.classification import compute_metrics


def loss_value(kind: str, labels: np.ndarray, logits: np.ndarray) -> float:
    """The task loss (mean over examples), as the model was trained with."""
    logits = logits.astype(np.float64)
    if kind == "regression":
        return float(np.mean((logits.reshape(-1) - labels.reshape(-1)) ** 2))
    if kind == "multi_label":
        p = np.clip(sigmoid(logits), 1e-12, 1 - 1e-12)
        return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    p = softmax(logits)[np.arange(len(labels)), labels.astype(int)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def score_logits(kind: str, labels: np.ndarray, logits: np.ndarray, names: list[str]) -> EvaluationReport:
    """Task metrics plus ``loss`` and ``examples``; ``details`` keeps labels and logits for plots."""
    flat = kind == "regression"
    metrics = compute_metrics(kind, labels.reshape(-1) if flat else labels, logits.reshape(-1) if flat else logits,
                              names)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["loss"] = loss_value(kind, labels, logits)
    metrics["examples"] = int(len(labels))
    return EvaluationReport(metrics, {"kind": kind, "labels": labels, "logits": logits, "names": names})


def score(kind: str, model, dataset, names: list[str]) -> EvaluationReport:
    """Run ``model`` over ``dataset`` (``(features, labels)`` batches) and score it."""
    logits, labels = predict(model, dataset)
    return score_logits(kind, labels, logits, names)


def write_plots(report: EvaluationReport, folder) -> list[str]:
    """``confusion_matrix.png`` for single-label classification (nothing for multi-hot labels or regression)."""
    import pathlib

    from kbert.plots import plot_confusion_matrix

    details = report.details
    if not details or details["kind"] != "class":
        return []
    predicted = np.argmax(details["logits"], axis=-1)
    path = pathlib.Path(folder) / "confusion_matrix.png"
    return [plot_confusion_matrix(details["labels"].astype(int), predicted, details["names"], path,
                                  title=f"{report.metrics['examples']} evaluation examples")]
