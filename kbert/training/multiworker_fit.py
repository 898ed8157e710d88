"""Workarounds: Keras 3.15 ``fit`` fails under ``MultiWorkerMirroredStrategy`` in two places.

1. ``TensorFlowTrainer._maybe_symbolic_build`` (``keras/src/backend/tensorflow/trainer.py``) takes the first
   distributed batch and calls ``strategy.reduce("MEAN", batch, axis=None)`` on it, only to learn the input
   shapes for building metrics and losses. ``MirroredStrategy`` reduces a nested batch, but the collective
   all-reduce of ``MultiWorkerMirroredStrategy`` takes single tensors: with kbert's ``{"token_ids",
   "segment_ids", "padding_mask"}`` inputs ``fit`` raises ``ValueError: Attempt to convert a value
   ({'token_ids': PerReplica:...}) ... to a Tensor`` (keras-team/keras issues 20329 and 20585, open).
   :func:`prepare_fit` builds the same state from the dataset's ``element_spec`` (shapes only: no batch is
   drawn, so every epoch's seeded shuffle order is unchanged) and makes the model's ``_maybe_symbolic_build``
   a no-op.
2. ``reduce_per_replica`` (same file) reduces each step's logs (scalar loss and metric values) in multi-worker
   mode with ``strategy.reduce("MEAN", value, axis=0)``: axis 0 of a scalar does not exist (``ValueError:
   Invalid reduction dimension 0 for input with 0 dimensions``). :func:`prepare_fit` wraps that function once
   so that, for a multi-worker strategy only, ``"auto"``/``"mean"`` reduce over replicas (``axis=None``), as
   the single-machine branch of the same function does; every other case is Keras's own.

Used for ``--strategy multiworker`` only (``kbert.training.trainer``).

Example:
    >>> import keras, tensorflow as tf
    >>> from kbert.training.multiworker_fit import prepare_fit
    >>> inputs = {"a": keras.Input((3,), name="a")}
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(inputs["a"]))
    >>> model.compile(loss="mse", metrics=["mae"])
    >>> data = tf.data.Dataset.from_tensor_slices(({"a": tf.ones((4, 3))}, tf.ones((4, 1)))).batch(2)
    >>> prepare_fit(model, data)
    >>> model._compile_metrics.built, model._maybe_symbolic_build() is None
    (True, True)
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer
from keras.src import tree


def prepare_fit(model: keras.Model, dataset: tf.data.Dataset) -> None:
    """Build ``model``'s metrics and loss state for ``dataset``'s batches now (``fit`` then builds nothing) and
    make ``fit``'s step logs reducible under a multi-worker strategy."""
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    _install_scalar_log_reduction()


def _install_scalar_log_reduction() -> None:
    original = keras_tf_trainer.reduce_per_replica
    if getattr(original, "_kbert_multiworker", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and keras_tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._kbert_multiworker = True
    keras_tf_trainer.reduce_per_replica = reduce_per_replica
