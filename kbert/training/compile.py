"""Compile a task model for ``fit`` without Keras tracing the training step twice.

Keras 3 (``keras/src/backend/tensorflow/trainer.py``, ``_maybe_symbolic_build``) builds the optimizer
lazily *inside* the first traced training step when no ``tf.distribute`` strategy is in scope. The
optimizer then creates its slot variables during tracing, and ``tf.function`` must trace the whole
step (forward, backward, ~100 variable updates) a second time: about 7 s of MiniLM's first step on a
2-core CPU. Building the optimizer before ``fit`` makes the step trace once, under any strategy.

Example:
    >>> import keras, numpy as np
    >>> from kbert.training.compile import compile_for_training
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> compile_for_training(model, keras.optimizers.Adam(), "mse")
    >>> model.optimizer.built
    True
"""

from __future__ import annotations

import keras


def compile_for_training(model: keras.Model, optimizer: keras.optimizers.Optimizer, loss, metrics=None,
                         jit_compile="auto") -> None:
    """``model.compile(...)`` then build ``optimizer`` for the model's trainable variables (in the current scope)."""
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)
    if not model.optimizer.built:  # model.optimizer: a LossScaleOptimizer around ``optimizer`` under mixed_float16
        model.optimizer.build(model.trainable_variables)
