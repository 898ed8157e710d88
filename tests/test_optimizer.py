"""The fine-tuning optimizer and schedule match PyTorch's AdamW and transformers' linear schedule."""

import numpy as np
import pytest

import keras

from kbert.training.optimizer import TorchAdamW, WarmupLinearDecay, warmup_steps


def torch_adamw_reference(param, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    """torch.optim.AdamW, as its documentation states the algorithm (decoupled decay, then Adam)."""
    m, v = np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        param = param - lr * wd * param
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        param = param - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return param


@pytest.mark.parametrize("scale", [1.0, 1e-6])  # tiny gradients are where Keras's eps placement differs
def test_torch_adamw_matches_the_pytorch_algorithm(scale):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float64)
    grads = [rng.normal(size=(4, 3)) * scale for _ in range(5)]
    variable = keras.Variable(start, dtype="float64")
    optimizer = TorchAdamW(learning_rate=1e-2, weight_decay=0.1, epsilon=1e-8)
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g, "float64"), variable)])
    want = torch_adamw_reference(start, grads, lr=1e-2, wd=0.1)
    # Keras keeps some hyperparameters in float32 (beta_2 -> ~1e-5 relative), so not bit-exact in float64
    np.testing.assert_allclose(np.asarray(variable) - start, want - start, rtol=1e-4)
    if scale < 1:  # and plain Keras AdamW does not, which is why kbert has its own
        plain = keras.Variable(start, dtype="float64")
        keras_adamw = keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=0.1, epsilon=1e-8)
        for g in grads:
            keras_adamw.apply_gradients([(keras.ops.convert_to_tensor(g, "float64"), plain)])
        keras_step, torch_step = np.asarray(plain) - start, want - start
        assert np.abs(keras_step - torch_step).max() > 0.05 * np.abs(torch_step).max()


def test_linear_schedule_matches_transformers():
    # transformers.get_linear_schedule_with_warmup(lr=1.0, warmup=13, total=125), step by step
    schedule = WarmupLinearDecay(1.0, 13, 125)
    for step in (0, 1, 12, 13, 14, 100, 124, 125, 130):
        want = step / 13 if step < 13 else max(0.0, (125 - step) / (125 - 13))
        assert float(schedule(step)) == pytest.approx(want, abs=1e-7), step
    assert warmup_steps(0.1, 125) == 13  # HF: ceil(ratio * steps)


def test_traced_update_is_one_fused_kernel_per_variable_and_one_set_of_step_scalars():
    # The trace (and Grappler, and the first training step) grow with the ops per variable: ResourceApplyAdam
    # does m, v and the variable in one op, and the step's beta powers / eps' / decay factor are built once.
    import tensorflow as tf

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    optimizer = TorchAdamW(learning_rate=WarmupLinearDecay(1e-2, 2, 10), weight_decay=0.1, global_clipnorm=1.0)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(grads):
        optimizer.apply(grads, model.trainable_variables)

    grads = [tf.ones_like(v) for v in model.trainable_variables]
    ops = [op.type for op in step.get_concrete_function(grads).graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == len(model.trainable_variables) == 4
    assert ops.count("Pow") == 2  # beta_1 ** t and beta_2 ** t, shared by every variable
    before = [np.asarray(v) for v in model.trainable_variables]
    step(grads)
    step(grads)
    assert all(np.abs(np.asarray(v) - b).max() > 0 for v, b in zip(model.trainable_variables, before))
    assert int(optimizer.iterations) == 2
