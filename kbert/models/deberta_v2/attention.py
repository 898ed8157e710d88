"""DeBERTa's disentangled self-attention (transformers' ``DisentangledSelfAttention``) and the encoder layer around it.

The score of query ``i`` and key ``j`` is the content term plus, per ``pos_att_type``, a content→position term
(``c2p``: query ``i`` against the relative embedding of ``δ(i, j)``) and a position→content term (``p2c``: key
``j`` against the relative embedding of ``δ(j, i)``), all divided by ``sqrt(head_dim * (1 + len(pos_att_type)))``.
``δ`` is :func:`relative_buckets` shifted by the span and clamped into the table. The relative embeddings go
through the layer's own query/key projections (``share_att_key``) or through ``pos_query_proj``/``pos_key_proj``.

Example:
    >>> from keras import ops
    >>> ops.convert_to_numpy(relative_buckets(9, position_buckets=8, max_relative_positions=64))[0].tolist()
    [0, -1, -2, -3, -4, -5, -5, -5, -5]
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kbert.errors import UnsupportedModelError
from kbert.modeling.activations import get_activation
from kbert.modeling.attention import key_mask, masked_softmax, merge_heads, post_norm_residuals, split_heads


def _clone(initializer):
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def relative_buckets(length, position_buckets: int, max_relative_positions: int):
    """``(T, T)`` int32 relative positions ``i - j`` of query ``i`` and key ``j``, log-bucketed as transformers'
    ``make_log_bucket_position`` when ``position_buckets > 0``: exact within ``mid = position_buckets // 2``, then
    ``mid + ceil(log(|d| / mid) / log((max_relative_positions - 1) / mid) * (mid - 1))`` with the sign of ``d``.

    The float part is float32 in transformers' order, and both logarithms come from the same op, so the ceiling
    lands on the same integers (``|d| = max_relative_positions - 1`` gives exactly ``mid - 1``).
    """
    ids = ops.arange(length, dtype="int32")
    rel = ids[:, None] - ids[None, :]
    if position_buckets <= 0 or max_relative_positions <= 0:
        return rel
    mid = position_buckets // 2
    abs_pos = ops.where((rel < mid) & (rel > -mid), mid - 1, ops.abs(rel))
    numerator = ops.log(ops.cast(abs_pos, "float32") / float(mid))
    denominator = ops.log(ops.convert_to_tensor((max_relative_positions - 1) / mid, "float32"))
    log_pos = ops.cast(ops.ceil(numerator / denominator * float(mid - 1)), "int32") + mid
    return ops.where(abs_pos <= mid, rel, log_pos * ops.sign(rel))


@keras.saving.register_keras_serializable(package="kbert")
class DebertaV2EncoderLayer(keras.layers.Layer):
    """One DeBERTa-v2 layer: post-norm disentangled self-attention, then the feed-forward block.

    Call with ``x`` ``(B, T, H)``, ``rel_embeddings`` ``(2 * span, H)`` (``None`` without relative attention),
    ``relative_positions`` ``(T, T)`` (:func:`relative_buckets`) and ``padding_mask`` ``(B, T)``. Scores, mask and
    softmax are float32 whatever the compute dtype.
    """

    def __init__(self, num_heads: int, intermediate_dim: int, *, hidden_act: str = "gelu",
                 layer_norm_epsilon: float = 1e-7, dropout: float = 0.1, attention_dropout: float = 0.1,
                 pos_att_type=("p2c", "c2p"), share_att_key: bool = True, relative_attention: bool = True,
                 attention_span: int = 256, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.pos_att_type = tuple(pos_att_type)
        unknown = set(self.pos_att_type) - {"c2p", "p2c"}
        if unknown:
            raise UnsupportedModelError(f"pos_att_type {list(pos_att_type)!r}: kbert knows 'c2p' and 'p2c' only")
        self.share_att_key = bool(share_att_key)
        self.relative_attention = bool(relative_attention)
        self.attention_span = int(attention_span)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        hidden = int(input_shape[-1])
        if hidden % self.num_heads:
            raise UnsupportedModelError(f"hidden size {hidden} is not a multiple of the {self.num_heads} heads")
        self.head_dim = hidden // self.num_heads

        def dense(units, name, activation=None):
            layer = keras.layers.Dense(units, activation=activation, kernel_initializer=_clone(self.kernel_initializer),
                                       dtype=self.dtype_policy, name=name)
            layer.build((None, None, hidden if name != "output_dense" else self.intermediate_dim))
            return layer

        def norm(name):
            layer = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
            layer.build((None, None, hidden))
            return layer

        # transformers: attention.self.{query,key,value}_proj (+ pos_key_proj, pos_query_proj), attention.output.
        self.query_dense, self.key_dense, self.value_dense = (dense(hidden, n) for n in ("query", "key", "value"))
        relative = self.relative_attention and not self.share_att_key
        self.pos_key_dense = dense(hidden, "pos_key") if relative and "c2p" in self.pos_att_type else None
        self.pos_query_dense = dense(hidden, "pos_query") if relative and "p2c" in self.pos_att_type else None
        self.attention_output_dense = dense(hidden, "attention_output")
        self.attention_layer_norm = norm("attention_layer_norm")
        self.intermediate_dense = dense(self.intermediate_dim, "intermediate_dense", get_activation(self.hidden_act))
        self.output_dense = dense(hidden, "output_dense")
        self.output_layer_norm = norm("output_layer_norm")
        self.position_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="position_dropout")
        self.probs_dropout = keras.layers.Dropout(self.attention_dropout, dtype=self.dtype_policy,
                                                  name="attention_dropout")
        self.attention_output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy,
                                                             name="attention_output_dropout")
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="output_dropout")
        self.built = True

    def _heads(self, x):
        """``(B, T, H)`` → ``(B, heads, T, head_dim)``; a 2-D ``(R, H)`` → ``(heads, R, head_dim)``."""
        if len(x.shape) == 2:
            return ops.transpose(ops.reshape(x, (-1, self.num_heads, self.head_dim)), (1, 0, 2))
        return split_heads(x, self.num_heads, self.head_dim)

    def _relative_scores(self, q, k, rel_embeddings, relative_positions, scale, training):
        """The ``c2p`` and ``p2c`` terms ``(B, heads, T, T)``, float32, already divided by ``scale``."""
        span = self.attention_span
        rel = self.position_dropout(rel_embeddings, training=training)
        score = 0.0
        if "c2p" in self.pos_att_type:
            pos_key = self._heads((self.key_dense if self.share_att_key else self.pos_key_dense)(rel))
            c2p = ops.cast(ops.einsum("bhqd,hrd->bhqr", q, pos_key), "float32")  # (B, heads, T, 2 span)
            index = ops.clip(relative_positions + span, 0, 2 * span - 1)  # (Tq, Tk)
            score = score + _take_last(c2p, index) / scale
        if "p2c" in self.pos_att_type:
            pos_query = self._heads((self.query_dense if self.share_att_key else self.pos_query_dense)(rel))
            p2c = ops.cast(ops.einsum("bhkd,hrd->bhkr", k, pos_query), "float32")  # (B, heads, T, 2 span)
            index = ops.clip(span - relative_positions, 0, 2 * span - 1)  # (Tk, Tq): δ(k, q) negated
            score = score + ops.transpose(_take_last(p2c, index), (0, 1, 3, 2)) / scale
        return score

    def call(self, x, rel_embeddings, relative_positions, padding_mask, training=None):
        q, k, v = (self._heads(layer(x)) for layer in (self.query_dense, self.key_dense, self.value_dense))
        scale = math.sqrt(self.head_dim * (1 + len(self.pos_att_type)))
        scores = ops.cast(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)) / scale), "float32")  # k / scale first, as HF
        if self.relative_attention:
            scores = scores + self._relative_scores(q, k, rel_embeddings, relative_positions, scale, training)
        probs = self.probs_dropout(masked_softmax(scores, key_mask(padding_mask), self.compute_dtype),
                                   training=training)
        context = merge_heads(ops.matmul(probs, v))  # (B, T, H)
        return post_norm_residuals(self, x, self.attention_output_dense(context), training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_dim=self.intermediate_dim, hidden_act=self.hidden_act,
                      layer_norm_epsilon=self.layer_norm_epsilon, dropout=self.dropout,
                      attention_dropout=self.attention_dropout, pos_att_type=list(self.pos_att_type),
                      share_att_key=self.share_att_key, relative_attention=self.relative_attention,
                      attention_span=self.attention_span,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


def _take_last(scores, index):
    """``scores[b, h, i, index[i, j]]`` for ``scores`` ``(B, heads, T, R)`` and ``index`` ``(T, T)``."""
    shape = ops.shape(scores)
    index = ops.broadcast_to(index[None, None], (shape[0], shape[1], shape[2], ops.shape(index)[1]))
    return ops.take_along_axis(scores, index, axis=-1)
