"""Callbacks of a kbert training run, besides Keras's own (early stopping, best model, backup, TensorBoard).

- :class:`Evaluation` scores the evaluation data after every epoch with the task's metrics and adds
  them to the epoch logs as ``val_*`` (so early stopping and "keep the best" can watch them).
- :class:`HistoryFile` keeps ``history.json`` (one entry per epoch, surviving a resumed run) and
  redraws ``training_curves.png`` from it.
- :class:`EpochBackup` and :class:`KeepBest` are Keras's ``BackupAndRestore`` and ``ModelCheckpoint``
  (best only, weights only) writing less: each checkpoint of MiniLM's weights and AdamW state is
  ~270 MB of HDF5 and ~1 s on a 2-core machine, and Keras wrote two per epoch, plus one more backup
  after the last epoch that it deletes a moment later at the end of training.

  * ``EpochBackup`` skips the backup after the final epoch (``on_train_end`` removes the backup folder;
    only an interruption during that epoch's evaluation would now redo the epoch) and writes every
    backup to a new file that replaces the old one, never overwriting it in place.
  * ``KeepBest`` saves the best weights as a hard link to this epoch's backup (the same bytes; no
    second write) when there is one, and after the final epoch writes nothing when that epoch is the
    best: it removes an older best file, because the model already holds the best weights (so the
    trainer neither reloads nor re-scores them).
"""

from __future__ import annotations

import json
import os
import pathlib

import keras

from kbert.atomic_files import write_json
from kbert.plots import plot_history


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


def _final_epoch(callback: keras.callbacks.Callback, epoch: int) -> bool:
    return epoch + 1 >= (callback.params or {}).get("epochs", float("inf"))


class EpochBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that skips the backup after the final epoch and replaces backups atomically."""

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir)
        self.saved_epoch: int | None = None  # the epoch whose state ``backup_weights`` holds

    @property
    def backup_weights(self) -> str:
        return self._weights_path

    def on_epoch_end(self, epoch, logs=None):
        if _final_epoch(self, epoch):
            self._current_epoch = epoch + 1
            return
        super().on_epoch_end(epoch, logs)
        self.saved_epoch = epoch

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        partial = os.path.join(self.backup_dir, "partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, self._weights_path)  # a new file: a hard link to the old one keeps its bytes
        partial = self._training_metadata_path + ".partial"
        with open(partial, "w") as f:
            f.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
        os.replace(partial, self._training_metadata_path)


class KeepBest(keras.callbacks.ModelCheckpoint):
    """Best weights (and optimizer state) by ``monitor``, as ``ModelCheckpoint(save_best_only=True,
    save_weights_only=True)``; a hard link to ``backup``'s file of the same epoch instead of a second
    write, and no file at all when the final epoch is the best (the model holds those weights)."""

    def __init__(self, filepath: str, *, monitor: str, mode: str, backup: EpochBackup | None = None):
        super().__init__(filepath, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True)
        self.backup = backup

    def _save_model(self, epoch, batch, logs):
        path = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, path):
            return
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if _final_epoch(self, epoch):
            if os.path.exists(path):
                os.remove(path)
            return
        partial = path[:-len(".weights.h5")] + ".partial.weights.h5"
        if os.path.exists(partial):
            os.remove(partial)
        if self.backup is not None and self.backup.saved_epoch == epoch:
            try:
                os.link(self.backup.backup_weights, partial)
            except OSError:  # no hard links on this file system
                self.model.save_weights(partial, overwrite=True)
        else:
            self.model.save_weights(partial, overwrite=True)
        os.replace(partial, path)
