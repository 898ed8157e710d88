"""AdamW with Hugging Face Trainer's defaults: linear warm-up then linear decay, no decay on biases/LayerNorm.

Example:
    >>> from kbert.training.optimizer import WarmupLinearDecay
    >>> schedule = WarmupLinearDecay(peak_learning_rate=1e-3, warmup_steps=10, total_steps=110)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 60, 110)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0]
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kbert.training.replica_clipping import clip_summed_gradient
from kbert.training.sparse_gradients import dense_gradients


@keras.saving.register_keras_serializable(package="kbert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``transformers.get_linear_schedule_with_warmup``: 0 → peak over ``warmup_steps``, then → 0 at ``total_steps``."""

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        decay = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        rising = step / warmup
        falling = ops.maximum(0.0, (self.total_steps - step) / decay)
        return self.peak_learning_rate * ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="kbert")
class TorchAdamW(keras.optimizers.AdamW):
    """Keras AdamW with PyTorch's update: ``eps`` is added to ``sqrt(v_hat)``, not to ``sqrt(v)``.

    Keras computes ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, which is torch's
    ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``eps`` scaled by ``1 / sqrt(1 - b2^t)`` (30x in the first
    step). Hugging Face's Trainer uses torch's form; fine-tuning with "the same hyperparameters" needs it too.
    Weight decay is Keras's (decoupled, ``var -= lr * wd * var`` before the update), as torch's AdamW.
    Embedding gradients are made dense first (``kbert.training.sparse_gradients``): Keras would square a
    repeated token's rows one by one, in Adam's second moment and in the clipping norm. Under
    ``tf.distribute``, ``global_clipnorm`` clips the sum over replicas (``kbert.training.replica_clipping``),
    not each replica's part as Keras does.
    """

    def apply(self, grads, trainable_variables=None):
        grads = dense_gradients(grads)
        if self.global_clipnorm:
            grads = clip_summed_gradient(grads, self.global_clipnorm)
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        bias_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        bias_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(bias_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / bias_1), denominator))


def warmup_steps(warmup: float, total_steps: int) -> int:
    """``warmup`` below 1 is a fraction of the training steps (HF ``warmup_ratio``: rounded up), else a step count.

    >>> warmup_steps(0.1, 125), warmup_steps(20, 125)
    (13, 20)
    """
    return math.ceil(warmup * total_steps) if warmup < 1 else int(warmup)


def build_optimizer(*, learning_rate: float, warmup: int, total_steps: int, weight_decay: float,
                    clip_norm: float | None, no_decay_variables) -> TorchAdamW:
    """AdamW as torch / HF Trainer (eps 1e-8) whose weight decay skips ``no_decay_variables`` (biases, LayerNorm)."""
    if not 0 <= warmup <= total_steps:
        warmup = min(max(warmup, 0), total_steps)
    optimizer = TorchAdamW(
        learning_rate=WarmupLinearDecay(learning_rate, warmup, total_steps), weight_decay=weight_decay,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, global_clipnorm=clip_norm or None)
    optimizer.exclude_from_weight_decay(var_list=list(no_decay_variables))
    return optimizer
