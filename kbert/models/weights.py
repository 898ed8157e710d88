"""Between Hugging Face tensors and Keras variables: :class:`WeightSlot` and the converters families build theirs from.

Each :class:`WeightSlot` knows the Hugging Face name, the Keras variable, and how to convert a tensor each
way (PyTorch ``Linear`` stores ``(out, in)``; Keras ``Dense`` ``(in, out)``; keras-hub attention kernels are
``(hidden, heads, head_dim)``). Loading uses ``to_keras``; saving a Hugging Face checkpoint uses ``to_hf``,
so the round trip is exact by construction. Which names a family's layers carry is the family's
(``kbert.models.<family>``); this module knows no family.

Example:
    >>> import keras
    >>> from kbert.models.weights import dense_slots
    >>> layer = keras.layers.Dense(3)
    >>> layer.build((None, 2))
    >>> [(s.hf_name, s.to_hf(s.variable.numpy()).shape) for s in dense_slots("classifier", layer)]
    [('classifier.weight', (3, 2)), ('classifier.bias', (3,))]
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class WeightSlot:
    hf_name: str  # canonical: without the family's "bert." / "distilbert." ... prefix for encoder weights
    variable: object  # keras.Variable
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]


def _same(x):
    return x


def linear(shape):
    """HF ``(out, in)`` ↔ Keras kernel of ``shape`` (``(in, out)`` or ``(in, heads, head_dim)``)."""
    return (lambda w: np.reshape(np.transpose(w), shape)), (lambda v: np.transpose(np.reshape(v, (shape[0], -1))))


def linear_out(shape):
    """HF ``(out, in)`` ↔ Keras attention output kernel ``(heads, head_dim, out)``."""
    return (lambda w: np.reshape(np.transpose(w), shape)), (lambda v: np.transpose(np.reshape(v, (-1, shape[-1]))))


def reshaped(shape):
    return (lambda w: np.reshape(w, shape)), (lambda v: np.reshape(v, (-1,)))


def slot(hf_name, variable, converters=None) -> WeightSlot:
    """A tensor stored as it is (embedding tables, LayerNorm vectors) or through ``converters``."""
    to_keras, to_hf = converters or (_same, _same)
    return WeightSlot(hf_name, variable, to_keras, to_hf)


def dense_slots(prefix: str, layer, kind=linear) -> list[WeightSlot]:
    """A Dense / EinsumDense layer saved as ``<prefix>.weight/.bias`` (``kind``: :func:`linear` or
    :func:`linear_out`); a layer without a bias has only ``<prefix>.weight``."""
    kernel = [slot(f"{prefix}.weight", layer.kernel, kind(tuple(layer.kernel.shape)))]
    if layer.bias is None:
        return kernel
    bias_converters = reshaped(tuple(layer.bias.shape)) if len(layer.bias.shape) > 1 else None
    return kernel + [slot(f"{prefix}.bias", layer.bias, bias_converters)]


def layer_norm_slots(prefix: str, layer) -> list[WeightSlot]:
    """A LayerNorm saved as ``<prefix>.weight/.bias``; one without an offset (``center=False``) has no bias."""
    beta = [] if layer.beta is None else [slot(f"{prefix}.bias", layer.beta)]
    return [slot(f"{prefix}.weight", layer.gamma), *beta]


def head_layer_slots(prefix: str, layer) -> list[WeightSlot]:
    """A task head's layer: a LayerNorm (ModernBERT's ``head.norm``) or a Dense."""
    return layer_norm_slots(prefix, layer) if hasattr(layer, "gamma") else dense_slots(prefix, layer)
