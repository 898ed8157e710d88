"""The training step is traced once: the workaround for Keras building the optimizer inside the trace."""

import keras
import numpy as np
import tensorflow as tf

from kbert.training.compile import compile_for_training
from kbert.training.optimizer import build_optimizer


def _traces_of_fit(compile_step) -> int:
    """How many times Keras traces ``train_step`` while fitting a small model for 3 steps."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="gelu"), keras.layers.Dense(2)])
    optimizer = build_optimizer(learning_rate=1e-3, warmup=1, total_steps=3, weight_decay=0.01, clip_norm=1.0,
                                no_decay_variables=[model.layers[0].bias])
    compile_step(model, optimizer)
    traces = []
    step = model.train_step

    def counting_step(data):
        traces.append(1)  # Python runs only while tracing
        return step(data)

    model.train_step = counting_step
    data = tf.data.Dataset.from_tensor_slices((np.ones((6, 4), "float32"), np.array([0, 1] * 3))).batch(2)
    model.fit(data, epochs=1, verbose=0)
    return len(traces)


def keras_compile(model, optimizer):
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def kbert_compile(model, optimizer):
    compile_for_training(model, optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_plain_keras_compile_traces_the_training_step_twice():
    # The dependency problem itself: the optimizer's slot variables are created inside the first
    # trace, so tf.function traces again. If this starts failing, Keras fixed it and
    # compile_for_training can go.
    assert _traces_of_fit(keras_compile) == 2


def test_compile_for_training_traces_the_training_step_once():
    assert _traces_of_fit(kbert_compile) == 1


def _weights_after_fit(compile_step) -> np.ndarray:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    start = [np.full((4, 2), 0.1, "float32"), np.zeros(2, "float32")]
    model.set_weights(start)
    optimizer = build_optimizer(learning_rate=0.1, warmup=1, total_steps=4, weight_decay=0.01, clip_norm=1.0,
                                no_decay_variables=[model.layers[0].bias])
    compile_step(model, optimizer)
    x, y = np.arange(16, dtype="float32").reshape(4, 4) / 10, np.array([0, 1, 1, 0])
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
    kernel = model.get_weights()[0]
    assert np.abs(kernel - start[0]).max() > 1e-3  # it trained
    return kernel


def test_building_the_optimizer_early_changes_no_number():
    np.testing.assert_allclose(_weights_after_fit(kbert_compile), _weights_after_fit(keras_compile), rtol=1e-6)
