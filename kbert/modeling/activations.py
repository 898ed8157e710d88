"""Hugging Face ``hidden_act`` names mapped to Keras activations with the same formula.

keras-hub's ``BertBackbone`` always uses the tanh approximation of GELU; Hugging Face's
``"gelu"`` is the exact erf form, and the difference (~3e-3 in hidden states) breaks parity.

Example:
    >>> import numpy as np
    >>> from kbert.modeling.activations import get_activation
    >>> float(get_activation("gelu")(np.float32(1.0)))  # 0.5 * (1 + erf(1 / sqrt(2)))
    0.8413447141647339
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
def gelu_exact(x):
    """GELU with erf, Hugging Face's ``"gelu"``."""
    return ops.multiply(ops.multiply(x, 0.5), ops.add(1.0, ops.erf(ops.divide(x, math.sqrt(2.0)))))


@keras.saving.register_keras_serializable(package="kbert")
def gelu_tanh(x):
    """Tanh approximation of GELU: ``"gelu_new"``, ``"gelu_pytorch_tanh"``, ``"gelu_fast"``."""
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * ops.power(x, 3))
    return 0.5 * x * (1.0 + ops.tanh(inner))


@keras.saving.register_keras_serializable(package="kbert")
def quick_gelu(x):
    return x * ops.sigmoid(1.702 * x)


ACTIVATIONS = {
    "gelu": gelu_exact,
    "gelu_python": gelu_exact,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "quick_gelu": quick_gelu,
    "relu": keras.activations.relu,
    "silu": keras.activations.silu,
    "swish": keras.activations.silu,
    "tanh": keras.activations.tanh,
}


def get_activation(name: str):
    """The Keras function for a Hugging Face ``hidden_act`` name (validated by ``EncoderConfig``)."""
    return ACTIVATIONS[name]
