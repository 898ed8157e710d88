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


def warmup_steps(warmup: float, total_steps: int) -> int:
    """``warmup`` below 1 is a fraction of the training steps (HF ``warmup_ratio``: rounded up), else a step count.

    >>> warmup_steps(0.1, 125), warmup_steps(20, 125)
    (13, 20)
    """
    return math.ceil(warmup * total_steps) if warmup < 1 else int(warmup)


def build_optimizer(*, learning_rate: float, warmup: int, total_steps: int, weight_decay: float,
                    clip_norm: float | None, no_decay_variables) -> keras.optimizers.AdamW:
    """AdamW (eps 1e-8, as torch) whose weight decay skips ``no_decay_variables`` (biases, LayerNorm)."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(learning_rate, warmup, total_steps), weight_decay=weight_decay,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, global_clipnorm=clip_norm or None)
    optimizer.exclude_from_weight_decay(var_list=list(no_decay_variables))
    return optimizer
