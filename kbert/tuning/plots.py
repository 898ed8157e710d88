"""``trials.png`` of a search: the objective of every trial in the order they ran, with the best so far, and
the objective against each searched number (log axis for rates), drawn with matplotlib's Agg renderer.

Example:
    >>> import os, tempfile
    >>> from kbert.tuning.plots import plot_trials
    >>> trials = [{"trial_id": "0", "score": 0.61, "hyperparameters": {"learning_rate": 1e-5, "batch_size": 16}},
    ...           {"trial_id": "1", "score": 0.74, "hyperparameters": {"learning_rate": 5e-5, "batch_size": 32}},
    ...           {"trial_id": "2", "score": None, "hyperparameters": {"learning_rate": 1e-3, "batch_size": 32}}]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     os.path.getsize(plot_trials(trials, "val_accuracy", "max", os.path.join(folder, "trials.png"))) > 0
    True
"""

from __future__ import annotations

import numbers

import numpy as np

from kbert.plots import PANEL_HEIGHT, PANEL_WIDTH, TRAIN_COLOR, VAL_COLOR, new_figure, save_png

COLUMNS = 3  # panels per row


def trials_figure(trials: list[dict], objective: str, direction: str):
    """The figure :func:`plot_trials` writes (a trial without a score is left out of every panel)."""
    scored = [t for t in trials if t.get("score") is not None]
    names = [n for n in (trials[0]["hyperparameters"] if trials else {})
             if all(isinstance(t["hyperparameters"].get(n), numbers.Real) for t in scored)]
    panels = 1 + len(names)
    columns = min(panels, COLUMNS)
    rows = -(-panels // columns)
    figure = new_figure(PANEL_WIDTH * columns, PANEL_HEIGHT * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.set_axis_off()
    order = np.array([int(t["trial_id"]) if str(t["trial_id"]).isdigit() else i for i, t in enumerate(scored)])
    scores = np.array([t["score"] for t in scored], dtype=float)
    best = (np.maximum if direction == "max" else np.minimum).accumulate(scores) if len(scores) else scores
    axes[0].plot(order, scores, "o", color=TRAIN_COLOR, label="trial")
    axes[0].plot(order, best, "-", color=VAL_COLOR, label="best so far")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel(objective)
    axes[0].set_title(f"{len(scored)} of {len(trials)} trials scored")
    axes[0].legend(loc="best", fontsize="small")
    for ax, name in zip(axes[1:], names):
        values = np.array([float(t["hyperparameters"][name]) for t in scored])
        ax.plot(values, scores, "o", color=TRAIN_COLOR)
        if len(values) and values.min() > 0 and values.max() / values.min() >= 10:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(objective)
    return figure


def plot_trials(trials: list[dict], objective: str, direction: str, path) -> str:
    """Write ``trials.png`` (see :func:`trials_figure`) at ``path``; returns the path as a str."""
    return save_png(trials_figure(trials, objective, direction), path)
