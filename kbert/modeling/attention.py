"""Attention arithmetic shared by the families with their own attention layers (MPNet, DeBERTa-v2, ModernBERT).

Scores are summed and normalised in float32 whatever the layer's compute dtype (so mixed precision keeps
transformers' softmax), and masked keys get float32's minimum, as transformers adds it; ``where`` gives the same
softmax without overflowing.

Example:
    >>> from keras import ops
    >>> probs = masked_softmax(ops.zeros((1, 1, 1, 3)), ops.convert_to_tensor([[[[True, True, False]]]]), "float32")
    >>> ops.convert_to_numpy(probs).round(2).tolist()
    [[[[0.5, 0.5, 0.0]]]]
"""

from __future__ import annotations

from keras import ops

FLOAT32_MIN = float.fromhex("-0x1.fffffep+127")


def key_mask(padding_mask):
    """``(B, T)`` padding mask → ``(B, 1, 1, T)`` bool: which keys every query may attend to."""
    return ops.cast(padding_mask, "bool")[:, None, None, :]


def masked_softmax(scores, keep, dtype):
    """Softmax over the last axis in float32, entries where ``keep`` is false at float32's minimum, cast to
    ``dtype``."""
    scores = ops.where(keep, ops.cast(scores, "float32"), ops.convert_to_tensor(FLOAT32_MIN, "float32"))
    return ops.cast(ops.softmax(scores, axis=-1), dtype)


def split_heads(x, num_heads: int, head_dim: int):
    """``(B, T, heads * head_dim)`` → ``(B, heads, T, head_dim)``."""
    return ops.transpose(ops.reshape(x, (ops.shape(x)[0], -1, num_heads, head_dim)), (0, 2, 1, 3))


def post_norm_residuals(layer, x, attention, training=None):
    """BERT's post-norm layer after the attention's output projection ``attention``: dropout, residual,
    ``attention_layer_norm``; ``intermediate_dense`` (with its activation) → ``output_dense`` → dropout, residual,
    ``output_layer_norm``. ``layer`` holds those sub-layers under these names (MPNet's and DeBERTa's layers)."""
    attended = layer.attention_layer_norm(x + layer.attention_output_dropout(attention, training=training))
    hidden = layer.output_dense(layer.intermediate_dense(attended))
    return layer.output_layer_norm(attended + layer.output_dropout(hidden, training=training))


def merge_heads(context):
    """``(B, heads, T, head_dim)`` → ``(B, T, heads * head_dim)``."""
    shape = ops.shape(context)
    return ops.reshape(ops.transpose(context, (0, 2, 1, 3)), (shape[0], shape[2], -1))
