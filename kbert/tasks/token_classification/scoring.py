"""Scores of token classification: window logits ─► one label per word ─► entity F1 or tag accuracy, plots.

A word counts once, from the window where it has the most context; entity scores are seqeval's
(:mod:`kbert.tasks.token_classification.entity_metrics`).

Example:
    >>> import numpy as np
    >>> from kbert.tasks.token_classification.scoring import labelled_loss
    >>> round(labelled_loss([np.array([[2.0, 0.0], [0.0, 0.0]])], [np.array([0, -100])]), 4)
    0.1269
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from kbert.tasks.base import EvaluationReport
from kbert.tasks.token_classification.features import IGNORE_INDEX, word_predictions
from kbert.tasks.token_classification.training_data import TaggedData
from kbert.tasks.token_classification.entity_metrics import tagging_metrics
from kbert.batching.inference import predict_rows


def predict_windows(model, dataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Logits ``(T, L)`` and labels ``(T,)`` of every window, in dataset order."""
    batch_logits, batch_labels = predict_rows(model, dataset)
    return [row for batch in batch_logits for row in batch], [row for batch in batch_labels for row in batch]


def score_tagged(model, tagged: TaggedData, names: Sequence[str], scheme: str) -> EvaluationReport:
    """Word-level metrics of ``model`` on evaluation data made by :func:`tagged_dataset` (``training=False``).

    ``scheme="entities"``: ``entity_f1``, ``precision``, ``recall``, ``token_accuracy``, ``per_type``;
    ``"tags"``: ``accuracy``, ``macro_f1``. Both add ``loss`` (cross-entropy over scored words),
    ``examples`` (sentences) and ``words``. A word without any word piece (only characters the
    tokenizer drops) is predicted ``O`` (or the first label when there is no ``O``).
    """
    logits, labels = predict_windows(model, tagged.data.dataset)
    predicted, _ = word_predictions(logits, labels, tagged.windows)
    fallback = list(names).index("O") if "O" in names else 0
    y_pred = [[names[i] if i >= 0 else names[fallback] for i in row] for row in predicted]
    y_true = [list(s.tags) for s in tagged.sentences]
    metrics = tagging_metrics(y_true, y_pred, kind=scheme)
    metrics["loss"] = labelled_loss(logits, labels)
    metrics["examples"] = len(tagged.sentences)
    metrics["words"] = int(sum(len(s.words) for s in tagged.sentences))
    return EvaluationReport(metrics, {"scheme": scheme, "y_true": y_true, "y_pred": y_pred, "names": list(names)})


def labelled_loss(logits: list[np.ndarray], labels: list[np.ndarray]) -> float:
    """Cross-entropy averaged over the labelled tokens of every window (``IGNORE_INDEX`` skipped)."""
    total, count = 0.0, 0
    for row_logits, row_labels in zip(logits, labels):
        keep = np.asarray(row_labels) != IGNORE_INDEX
        if not keep.any():
            continue
        x = np.asarray(row_logits, np.float64)[keep]
        x = x - x.max(axis=-1, keepdims=True)
        log_p = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
        total -= float(log_p[np.arange(len(x)), np.asarray(row_labels)[keep]].sum())
        count += int(keep.sum())
    return total / max(count, 1)


def write_plots(report: EvaluationReport, folder) -> list[str]:
    """``entity_f1.png`` (F1 per entity type) for entity tags; ``confusion_matrix.png`` of words for other tags."""
    from kbert.plots import plot_confusion_matrix, plot_per_type_f1

    details, folder = report.details, pathlib.Path(folder)
    if details["scheme"] == "entities":
        return [plot_per_type_f1(report.metrics["per_type"], folder / "entity_f1.png",
                                 title=f"entity F1 {report.metrics['entity_f1']:.3f}")]
    index = {name: i for i, name in enumerate(details["names"])}
    y_true = [index[t] for row in details["y_true"] for t in row]
    y_pred = [index[t] for row in details["y_pred"] for t in row]
    return [plot_confusion_matrix(np.array(y_true), np.array(y_pred), details["names"], folder / "confusion_matrix.png",
                                  title=f"{report.metrics['words']} evaluation words")]
