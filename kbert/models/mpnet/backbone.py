"""The MPNet encoder (Hugging Face ``MPNetModel``) as a keras-hub ``Backbone`` with BertBackbone's inputs/outputs.

MPNet is BERT's post-norm encoder with three differences, all reproduced here as transformers 4.57 computes them:

- no token types: ``segment_ids`` is an input (every family is fed the same dict) but is not used;
- positions numbered from ``padding_idx + 1`` over the non-padding ids, as RoBERTa's
  (:class:`~kbert.modeling.positions.PaddingAwarePositionEmbedding`); ``MPNetEmbeddings`` hard-codes
  ``padding_idx = 1`` whatever ``config.pad_token_id`` says;
- a relative position bias, one ``(heads, T, T)`` table computed once from the plain positions ``0..T-1``
  (not the padding-aware ones) and added to the attention scores of every layer. transformers buckets the
  distances with ``num_buckets=32`` whatever ``relative_attention_num_buckets`` says (that only sizes the table).

Example:
    >>> import numpy as np
    >>> from kbert.models.mpnet.backbone import MPNetBackbone
    >>> backbone = MPNetBackbone(vocabulary_size=100, num_layers=2, num_heads=4, hidden_dim=32,
    ...                          intermediate_dim=37, max_sequence_length=66)
    >>> out = backbone({"token_ids": np.full((1, 5), 7, "int32"), "segment_ids": np.zeros((1, 5), "int32"),
    ...                 "padding_mask": np.ones((1, 5), "int32")})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((1, 5, 32), (1, 32))
"""

from __future__ import annotations

import math

import keras
from keras import ops
from keras.layers import ReversibleEmbedding

from kbert.errors import UnsupportedModelError
from kbert.modeling.activations import get_activation
from kbert.modeling.attention import key_mask, masked_softmax, merge_heads, post_norm_residuals, split_heads
from kbert.modeling.backbone import KbertBackbone, hf_initializer
from kbert.modeling.positions import PaddingAwarePositionEmbedding

HF_BUCKETS = 32  # MPNetEncoder.compute_position_bias's default num_buckets, the one transformers uses
HF_MAX_DISTANCE = 128  # MPNetEncoder.relative_position_bucket's max_distance


def _clone(initializer):
    """A fresh copy of ``initializer`` for each weight (Keras's habit for seeded initializers)."""
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def relative_position_bucket(relative_position, num_buckets: int = HF_BUCKETS, max_distance: int = HF_MAX_DISTANCE):
    """``MPNetEncoder.relative_position_bucket``: int32 buckets of ``key - query`` distances.

    Half the buckets for keys on the left (``0..num_buckets/2 - 1``), half for keys on the right; within a
    half, exact distances below ``num_buckets/4``, then log-spaced up to ``max_distance``. The float part runs
    in float32, in transformers' order of operations, so the truncation lands on the same integers.
    """
    n = -ops.cast(relative_position, "int32")
    half = num_buckets // 2
    ret = ops.cast(n < 0, "int32") * half
    n = ops.abs(n)
    max_exact = half // 2
    scaled = (ops.log(ops.cast(ops.maximum(n, 1), "float32") / float(max_exact))
              / math.log(max_distance / max_exact) * float(half - max_exact))
    large = ops.minimum(max_exact + ops.cast(ops.maximum(scaled, 0.0), "int32"), half - 1)
    return ret + ops.where(n < max_exact, n, large)


@keras.saving.register_keras_serializable(package="kbert")
class RelativePositionBias(keras.layers.Layer):
    """MPNet's relative attention bias ``(1, heads, T, T)`` for the length ``T`` of ``token_ids`` ``(B, T)``.

    The weight is transformers' ``encoder.relative_attention_bias`` (``Embedding(num_buckets, heads)``).
    """

    def __init__(self, num_buckets: int, num_heads: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_buckets = int(num_buckets)
        self.num_heads = int(num_heads)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.num_buckets, self.num_heads),
                                          initializer=self.initializer)
        self.built = True

    def call(self, token_ids):
        positions = ops.arange(ops.shape(token_ids)[1], dtype="int32")
        buckets = relative_position_bucket(positions[None, :] - positions[:, None])  # (T, T): key - query
        values = ops.take(self.embeddings, buckets, axis=0)  # (T, T, heads)
        return ops.expand_dims(ops.transpose(values, (2, 0, 1)), 0)

    def compute_output_shape(self, input_shape):
        return (1, self.num_heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(num_buckets=self.num_buckets, num_heads=self.num_heads,
                      initializer=keras.initializers.serialize(self.initializer))
        return config


@keras.saving.register_keras_serializable(package="kbert")
class MPNetEncoderLayer(keras.layers.Layer):
    """One MPNet layer: post-norm self-attention with an additive score bias, then the feed-forward block.

    Its own layer because keras-hub's ``TransformerEncoder`` (and Keras's ``MultiHeadAttention`` inside it)
    cannot add a bias to the attention scores. Scores, bias, mask and softmax are float32 whatever the
    compute dtype (mixed_float16 safe).

    Call with ``x`` ``(B, T, H)``, ``position_bias`` ``(1 or B, heads, T, T)``, ``padding_mask`` ``(B, T)``.
    """

    def __init__(self, num_heads: int, intermediate_dim: int, *, hidden_act: str = "gelu",
                 layer_norm_epsilon: float = 1e-12, dropout: float = 0.1, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        hidden = int(input_shape[-1])
        if hidden % self.num_heads:
            raise UnsupportedModelError(f"hidden size {hidden} is not a multiple of the {self.num_heads} heads")
        self.head_dim = hidden // self.num_heads

        def dense(units, name, activation=None):
            return keras.layers.Dense(units, activation=activation, kernel_initializer=_clone(self.kernel_initializer),
                                      dtype=self.dtype_policy, name=name)

        def norm(name):
            return keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)

        # Names as transformers' MPNetLayer: attention.attn.{q,k,v,o}, attention.LayerNorm, intermediate, output.
        self.q_dense, self.k_dense, self.v_dense = (dense(hidden, n) for n in ("q_dense", "k_dense", "v_dense"))
        self.o_dense = dense(hidden, "o_dense")
        self.attention_layer_norm = norm("attention_layer_norm")
        self.intermediate_dense = dense(self.intermediate_dim, "intermediate_dense", get_activation(self.hidden_act))
        self.output_dense = dense(hidden, "output_dense")
        self.output_layer_norm = norm("output_layer_norm")
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.attention_output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy,
                                                             name="attention_output_dropout")
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="output_dropout")
        for layer in (self.q_dense, self.k_dense, self.v_dense, self.o_dense, self.intermediate_dense,
                      self.attention_layer_norm, self.output_layer_norm):
            layer.build((None, None, hidden))
        self.output_dense.build((None, None, self.intermediate_dim))
        self.built = True

    def call(self, x, position_bias, padding_mask, training=None):
        q, k, v = (split_heads(layer(x), self.num_heads, self.head_dim) for layer in (self.q_dense, self.k_dense,
                                                                                      self.v_dense))
        scores = ops.cast(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), "float32")  # (B, heads, T, T)
        scores = scores / math.sqrt(self.head_dim) + ops.cast(position_bias, "float32")
        probs = self.attention_dropout(masked_softmax(scores, key_mask(padding_mask), self.compute_dtype),
                                       training=training)
        context = merge_heads(ops.matmul(probs, v))  # (B, T, H)
        return post_norm_residuals(self, x, self.o_dense(context), training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_dim=self.intermediate_dim, hidden_act=self.hidden_act,
                      layer_norm_epsilon=self.layer_norm_epsilon, dropout=self.dropout,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config



@keras.saving.register_keras_serializable(package="kbert")
class MPNetBackbone(KbertBackbone):
    """An MPNet encoder with Hugging Face's numerics; inputs and outputs as
    :class:`~kbert.modeling.backbone.BertBackbone`.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim: the architecture.
        hidden_act: Hugging Face activation name.
        layer_norm_epsilon: ``layer_norm_eps`` (MPNetConfig's default 1e-12; real checkpoints say 1e-5).
        dropout: hidden and attention dropout during training.
        max_sequence_length: ``max_position_embeddings`` (514: 512 tokens after the ``padding_idx + 1`` offset).
        relative_attention_num_buckets: rows of the relative bias table (at least 32, the buckets used).
        pad_token_id: the ``padding_idx`` positions are numbered from; transformers hard-codes 1 (the default).
        use_pooler: add the tanh Dense on token 0 that produces ``pooled_output``.
        initializer_range: stddev of the normal initialisation of new weights.
        weights_initializer: how the embeddings and encoder kernels start (``Zeros`` before loading them all).

    Inputs ``token_ids``, ``segment_ids`` (unused) and ``padding_mask``, int32 ``(B, T)``; outputs
    ``sequence_output`` ``(B, T, H)`` and, with a pooler, ``pooled_output`` ``(B, H)``.
    """

    CONFIG_KEYS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "hidden_act",
                   "layer_norm_epsilon", "dropout", "max_sequence_length", "relative_attention_num_buckets",
                   "pad_token_id", "use_pooler", "initializer_range")

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, *,
                 hidden_act="gelu", layer_norm_epsilon=1e-12, dropout=0.1, max_sequence_length=514,
                 relative_attention_num_buckets=32, pad_token_id=1, use_pooler=True, initializer_range=0.02,
                 dtype=None, weights_initializer=None, **kwargs):
        if relative_attention_num_buckets < HF_BUCKETS:
            raise UnsupportedModelError(
                f"relative_attention_num_buckets={relative_attention_num_buckets}: MPNet looks up {HF_BUCKETS} "
                "buckets, so the table needs at least that many rows")

        def weights():
            return weights_initializer or hf_initializer(initializer_range)

        # === Layers (embedding and pooler names as BertBackbone's) ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size, output_dim=hidden_dim, embeddings_initializer=weights(), dtype=dtype,
            name="token_embedding")
        self.position_embedding = PaddingAwarePositionEmbedding(
            sequence_length=max_sequence_length, hidden_dim=hidden_dim, pad_token_id=pad_token_id,
            initializer=weights(), dtype=dtype, name="position_embedding")
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.relative_attention_bias = RelativePositionBias(
            relative_attention_num_buckets, num_heads, initializer=weights(), dtype=dtype,
            name="relative_attention_bias")
        self.transformer_layers = [
            MPNetEncoderLayer(num_heads, intermediate_dim, hidden_act=hidden_act, layer_norm_epsilon=layer_norm_epsilon,
                              dropout=dropout, kernel_initializer=weights(), dtype=dtype, name=f"transformer_layer_{i}")
            for i in range(num_layers)
        ]
        self.pooled_dense = self.new_pooler(hidden_dim, initializer_range, dtype, use_pooler)

        # === Functional model ===
        inputs = self.new_inputs()  # segment_ids unused: MPNet has no token types
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        x = self.embeddings_add((self.token_embedding(token_ids), self.position_embedding(token_ids)))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        position_bias = self.relative_attention_bias(token_ids)  # (1, heads, T, T), shared by every layer
        for layer in self.transformer_layers:
            x = layer(x, position_bias=position_bias, padding_mask=padding_mask)
        self.finish(inputs, x, locals(), dtype=dtype, **kwargs)
