"""Backups and keep-best write less: no backup after the final epoch, the best weights as a hard link."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbert.training.callbacks import EpochBackup, KeepBest


class Scores(keras.callbacks.Callback):
    """Puts ``val_score`` (one value per epoch) into the logs, as kbert's Evaluation does."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = self.values[epoch]


class Files(keras.callbacks.Callback):
    """After every epoch: inode of the backup and of the best file (None when missing)."""

    def __init__(self, backup, best):
        super().__init__()
        self.paths, self.seen = (backup, best), []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(tuple(os.stat(p).st_ino if os.path.exists(p) else None for p in self.paths))


def fit(tmp_path, scores):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    backup = EpochBackup(str(tmp_path / "backup"))
    best = KeepBest(str(tmp_path / "best.weights.h5"), monitor="val_score", mode="max", backup=backup)
    files = Files(backup.backup_weights, best.filepath)
    weights = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: weights.append(model.get_weights()))
    backup.delete_checkpoint = False  # keep the last backup to look at it
    data = tf.data.Dataset.from_tensor_slices((np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))).batch(2)
    model.fit(data, epochs=len(scores), verbose=0, shuffle=False,
              callbacks=[backup, Scores(scores), best, files, record])
    return model, files.seen, weights


def test_best_epoch_before_the_last_is_a_hard_link_to_its_backup(tmp_path):
    model, seen, weights = fit(tmp_path, [0.5, 0.9, 0.7])
    (backup_0, best_0), (backup_1, best_1), (backup_2, best_2) = seen
    assert best_0 == backup_0 and best_1 == backup_1  # no second write: the same file
    assert backup_1 != backup_0  # each backup is a new file (an old link keeps its bytes)
    assert backup_2 == backup_1  # no backup after the final epoch
    assert best_2 == best_1  # epoch 3 was worse: the best file still holds epoch 2
    model.load_weights(str(tmp_path / "best.weights.h5"))
    for got, want in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(got, want)


def test_final_epoch_best_leaves_no_file_to_restore(tmp_path):
    _, seen, _ = fit(tmp_path, [0.5, 0.9, 0.95])
    assert seen[1][1] is not None and seen[2][1] is None  # the model itself holds the best weights


@pytest.mark.parametrize("epochs", [1, 2])
def test_resume_metadata_names_the_last_backed_up_epoch(tmp_path, epochs):
    import json

    fit(tmp_path, [0.1, 0.2][:epochs])
    metadata = tmp_path / "backup" / "training_metadata.json"
    if epochs == 1:  # the only epoch is the final one: nothing backed up
        assert not metadata.exists()
    else:
        assert json.loads(metadata.read_text())["epoch"] == 1
