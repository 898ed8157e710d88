"""The one table between Hugging Face BERT/RoBERTa weight names and kbert's Keras variables.

Each :class:`WeightSlot` knows the HF name, the Keras variable, and how to convert a tensor each
way (PyTorch ``Linear`` stores ``(out, in)``; Keras ``Dense`` ``(in, out)``; keras-hub attention
kernels are ``(hidden, heads, head_dim)``). Loading uses ``to_keras``; saving a Hugging Face
checkpoint uses ``to_hf``, so the round trip is exact by construction.

Example:
    >>> from kbert.checkpoint.hf_names import canonical_name
    >>> canonical_name("bert.encoder.layer.0.attention.output.LayerNorm.gamma")
    'encoder.layer.0.attention.output.LayerNorm.weight'
    >>> canonical_name("roberta.embeddings.word_embeddings.weight")
    'embeddings.word_embeddings.weight'
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

from kbert.checkpoint.families import WEIGHT_PREFIXES


@dataclasses.dataclass(frozen=True)
class WeightSlot:
    hf_name: str  # canonical: no "bert." / "roberta." prefix for encoder weights
    variable: object  # keras.Variable
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]


def canonical_name(name: str) -> str:
    """HF names without the ``bert.`` / ``roberta.`` prefix of ``*For*`` models, with TF1-era LayerNorm names fixed."""
    for prefix in WEIGHT_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))


def _same(x):
    return x


def _linear(shape):
    """HF ``(out, in)`` ↔ Keras kernel of ``shape`` (``(in, out)`` or ``(in, heads, head_dim)``)."""
    return (lambda w: np.reshape(np.transpose(w), shape)), (lambda v: np.transpose(np.reshape(v, (shape[0], -1))))


def _linear_out(shape):
    """HF ``(out, in)`` ↔ Keras attention output kernel ``(heads, head_dim, out)``."""
    return (lambda w: np.reshape(np.transpose(w), shape)), (lambda v: np.transpose(np.reshape(v, (-1, shape[-1]))))


def _reshaped(shape):
    return (lambda w: np.reshape(w, shape)), (lambda v: np.reshape(v, (-1,)))


def _slot(hf_name, variable, converters=None):
    to_keras, to_hf = converters or (_same, _same)
    return WeightSlot(hf_name, variable, to_keras, to_hf)


def _dense(prefix, layer, kind=_linear):
    kernel_shape = tuple(layer.kernel.shape)
    bias_converters = _reshaped(tuple(layer.bias.shape)) if len(layer.bias.shape) > 1 else None
    return [_slot(f"{prefix}.weight", layer.kernel, kind(kernel_shape)),
            _slot(f"{prefix}.bias", layer.bias, bias_converters)]


def _layer_norm(prefix, layer):
    return [_slot(f"{prefix}.weight", layer.gamma), _slot(f"{prefix}.bias", layer.beta)]


def backbone_slots(backbone) -> list[WeightSlot]:
    """Slots of every variable of a :class:`kbert.modeling.backbone.BertBackbone`."""
    slots = [
        _slot("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
        _slot("embeddings.position_embeddings.weight", backbone.position_embedding.position_embeddings),
        _slot("embeddings.token_type_embeddings.weight", backbone.segment_embedding.embeddings),
        *_layer_norm("embeddings.LayerNorm", backbone.embeddings_layer_norm),
    ]
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}"
        attention = block._self_attention_layer
        slots += [
            *_dense(f"{p}.attention.self.query", attention.query_dense),
            *_dense(f"{p}.attention.self.key", attention.key_dense),
            *_dense(f"{p}.attention.self.value", attention.value_dense),
            *_dense(f"{p}.attention.output.dense", attention.output_dense, kind=_linear_out),
            *_layer_norm(f"{p}.attention.output.LayerNorm", block._self_attention_layer_norm),
            *_dense(f"{p}.intermediate.dense", block._feedforward_intermediate_dense),
            *_dense(f"{p}.output.dense", block._feedforward_output_dense),
            *_layer_norm(f"{p}.output.LayerNorm", block._feedforward_layer_norm),
        ]
    if backbone.pooled_dense is not None:
        slots += _dense("pooler.dense", backbone.pooled_dense)
    return slots


def dense_slots(hf_prefix: str, layer) -> list[WeightSlot]:
    """Slots of a task head's Dense layer saved as ``<hf_prefix>.weight/.bias`` (e.g. ``classifier``)."""
    return _dense(hf_prefix, layer)


def hf_checkpoint_name(slot: WeightSlot, prefix: str) -> str:
    """The name to write in a saved checkpoint: ``*For*`` models prefix encoder weights with the family's
    ``prefix`` (``"bert."``, ``"roberta."``; ``""`` for none)."""
    is_encoder = slot.hf_name.startswith(("embeddings.", "encoder.", "pooler."))
    return (prefix + slot.hf_name) if is_encoder else slot.hf_name
