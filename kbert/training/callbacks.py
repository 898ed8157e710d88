"""Callbacks of a kbert training run, besides Keras's own (early stopping, best model, backup, TensorBoard).

- :class:`Evaluation` scores the evaluation data after every epoch with the task's metrics and adds
  them to the epoch logs as ``val_*`` (so early stopping and "keep the best" can watch them).
- :class:`HistoryFile` keeps ``history.json`` (one entry per epoch, surviving a resumed run) and
  redraws ``training_curves.png`` from it.
"""

from __future__ import annotations

import json
import pathlib

import keras

from kbert.atomic_files import write_json
from kbert.training.plots import plot_history


class Evaluation(keras.callbacks.Callback):
    """After each epoch: score the evaluation set, log ``val_loss``, ``val_accuracy``, ``val_macro_f1``...

    ``scorer(model)`` returns the task's :class:`~kbert.tasks.base.EvaluationReport`; its numbers (not
    counts or per-type tables) go to the logs. ``last`` is the latest report.
    """

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        self.last = self.scorer(self.model)
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.last.metrics.items()
                         if k not in ("examples", "words") and isinstance(v, float)})


class HistoryFile(keras.callbacks.Callback):
    """``history.json`` and ``training_curves.png`` in the run folder, updated every epoch."""

    def __init__(self, folder: pathlib.Path):
        super().__init__()
        self.path = folder / "history.json"
        self.png = folder / "training_curves.png"
        self.epochs: list[dict] = []

    def on_train_begin(self, logs=None):
        start = getattr(self.model, "_initial_epoch", None) or 0  # set by BackupAndRestore on resume
        previous = json.loads(self.path.read_text()) if start and self.path.is_file() else []
        self.epochs = [e for e in previous if e["epoch"] < start]

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch] + [{"epoch": epoch, **logs}]
        write_json(self.path, self.epochs, indent=1)
        history = self.history()
        if history:  # an epoch with no logged values has nothing to draw
            plot_history(history, self.png)

    def history(self) -> dict[str, list[float]]:
        keys = [k for k in self.epochs[-1] if k != "epoch"] if self.epochs else []
        return {k: [e.get(k, float("nan")) for e in self.epochs] for k in keys}
