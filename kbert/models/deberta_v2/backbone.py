"""The DeBERTa-v2/v3 encoder (Hugging Face ``DebertaV2Model``) as a keras-hub ``Backbone`` with BertBackbone's
inputs/outputs, computing what transformers 4.57 computes:

- embeddings: words, plus absolute positions only with ``position_biased_input`` (DeBERTa-v3: none), plus token
  types when ``type_vocab_size`` > 0; LayerNorm; then zeroed at padding (``embeddings * mask``);
- one relative-embedding table ``encoder.rel_embeddings`` (``2 * span`` rows, ``span = position_buckets`` or
  ``max_relative_positions``), LayerNorm-ed when ``norm_rel_ebd`` says ``layer_norm``, shared by every layer;
- each layer's disentangled attention (:mod:`kbert.models.deberta_v2.attention`): ``c2p``/``p2c`` per
  ``pos_att_type``, log-bucketed relative positions, ``share_att_key``, the ``sqrt(head_dim * factor)`` scale.

Why not keras-hub's ``DebertaV3Backbone``: with transformers' weights copied in, it matches transformers within
2e-6 on a deberta-v3-base-style config (``max_relative_positions`` -1), but is off by more than 1.0 when
``max_relative_positions`` differs from the position table (it log-buckets up to ``max_sequence_length``), and it
hard-codes DeBERTa-v3's other choices (``share_att_key``, both ``c2p`` and ``p2c``, a LayerNorm on the relative
embeddings and epsilon 1e-7, no token types, no absolute positions), so it cannot hold DeBERTa-v2 checkpoints; it
also takes no ``segment_ids`` and returns one tensor, not kbert's output dict. One set of layers that follows
transformers' config serves every checkpoint instead, and keeps the scores float32 (mixed precision).

Not supported (refused when ``config.json`` is read, :mod:`kbert.models.deberta_v2`): the convolution layer of
deberta-v2-xlarge (``conv_kernel_size``), an ``embedding_size`` other than ``hidden_size``, ``attention_head_size``
other than ``hidden_size / num_attention_heads``.

Example:
    >>> import numpy as np
    >>> backbone = DebertaV2Backbone(vocabulary_size=100, num_layers=2, num_heads=4, hidden_dim=32,
    ...                              intermediate_dim=37, position_buckets=8, max_relative_positions=64)
    >>> out = backbone({"token_ids": np.full((1, 20), 7, "int32"), "segment_ids": np.zeros((1, 20), "int32"),
    ...                 "padding_mask": np.ones((1, 20), "int32")})
    >>> tuple(out["sequence_output"].shape), tuple(backbone.relative_embeddings.embeddings.shape)
    ((1, 20, 32), (16, 32))
"""

from __future__ import annotations

import keras
from keras import ops
from keras.layers import ReversibleEmbedding
from keras_hub.layers import PositionEmbedding

from kbert.models.deberta_v2.attention import DebertaV2EncoderLayer, relative_buckets
from kbert.modeling.backbone import KbertBackbone, hf_initializer


def attention_span(position_buckets: int, max_relative_positions: int, max_sequence_length: int) -> int:
    """Half the rows of the relative table: ``position_buckets`` when > 0, else ``max_relative_positions`` (the
    position table's size when < 1), as ``DebertaV2Encoder`` sizes it."""
    if position_buckets > 0:
        return position_buckets
    return max_relative_positions if max_relative_positions >= 1 else max_sequence_length


@keras.saving.register_keras_serializable(package="kbert")
class RelativeEmbeddings(keras.layers.Layer):
    """``encoder.rel_embeddings`` ``(2 * span, H)``, through ``encoder.LayerNorm`` when ``layer_norm``; called on
    ``token_ids`` (for its place in the functional graph) it returns the table, whatever the batch."""

    def __init__(self, rows: int, hidden_dim: int, *, layer_norm: bool, layer_norm_epsilon: float = 1e-7,
                 initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.rows, self.hidden_dim, self.layer_norm = int(rows), int(hidden_dim), bool(layer_norm)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.rows, self.hidden_dim),
                                          initializer=self.initializer)
        self.norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
                                                    name="layer_norm") if self.layer_norm else None
        if self.norm is not None:
            self.norm.build((None, self.hidden_dim))
        self.built = True

    def call(self, token_ids):
        table = ops.cast(self.embeddings, self.compute_dtype)
        return self.norm(table) if self.norm is not None else table

    def compute_output_shape(self, input_shape):
        return (self.rows, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(rows=self.rows, hidden_dim=self.hidden_dim, layer_norm=self.layer_norm,
                      layer_norm_epsilon=self.layer_norm_epsilon,
                      initializer=keras.initializers.serialize(self.initializer))
        return config


@keras.saving.register_keras_serializable(package="kbert")
class RelativePositions(keras.layers.Layer):
    """The ``(T, T)`` int32 bucketed ``i - j`` (:func:`~kbert.models.deberta_v2.attention.relative_buckets`) for
    the length of ``token_ids`` ``(B, T)``."""

    def __init__(self, position_buckets: int, max_relative_positions: int, **kwargs):
        super().__init__(**kwargs)
        self.position_buckets, self.max_relative_positions = int(position_buckets), int(max_relative_positions)

    def call(self, token_ids):
        return relative_buckets(ops.shape(token_ids)[1], self.position_buckets, self.max_relative_positions)

    def compute_output_shape(self, input_shape):
        return (input_shape[1], input_shape[1])

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor((token_ids.shape[1], token_ids.shape[1]), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(position_buckets=self.position_buckets, max_relative_positions=self.max_relative_positions)
        return config


@keras.saving.register_keras_serializable(package="kbert")
class DebertaV2Backbone(KbertBackbone):
    """A DeBERTa-v2/v3 encoder with Hugging Face's numerics; inputs and outputs as
    :class:`~kbert.modeling.backbone.BertBackbone` (no pooler: ``DebertaV2ForSequenceClassification``'s
    ``ContextPooler`` is part of its head).

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim: the architecture.
        hidden_act, layer_norm_epsilon: as ``config.json`` (DeBERTa's default epsilon 1e-7).
        dropout, attention_dropout: ``hidden_dropout_prob`` (also on the relative embeddings) and
            ``attention_probs_dropout_prob``.
        max_sequence_length: ``max_position_embeddings``.
        num_segments: ``type_vocab_size`` (0: no token types, DeBERTa-v3).
        position_biased_input: add absolute position embeddings.
        relative_attention, position_buckets, max_relative_positions, pos_att_type, share_att_key, norm_rel_ebd:
            the disentangled attention, as ``DebertaV2Config``.
        initializer_range: stddev of the normal initialisation of new weights.
        weights_initializer: how the weights start (``Zeros`` before loading them all).
    """

    CONFIG_KEYS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "hidden_act",
                   "layer_norm_epsilon", "dropout", "attention_dropout", "max_sequence_length", "num_segments",
                   "position_biased_input", "relative_attention", "position_buckets", "max_relative_positions",
                   "pos_att_type", "share_att_key", "norm_rel_ebd", "initializer_range")

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, *, hidden_act="gelu",
                 layer_norm_epsilon=1e-7, dropout=0.1, attention_dropout=0.1, max_sequence_length=512,
                 num_segments=0, position_biased_input=False, relative_attention=True, position_buckets=256,
                 max_relative_positions=-1, pos_att_type=("p2c", "c2p"), share_att_key=True, norm_rel_ebd="layer_norm",
                 initializer_range=0.02, dtype=None, weights_initializer=None, **kwargs):
        def weights():
            return weights_initializer or hf_initializer(initializer_range)

        pos_att_type = list(pos_att_type or ())
        span = attention_span(position_buckets, max_relative_positions, max_sequence_length)
        max_relative = max_relative_positions if max_relative_positions >= 1 else max_sequence_length
        # === Layers ===
        self.token_embedding = ReversibleEmbedding(input_dim=vocabulary_size, output_dim=hidden_dim,
                                                   embeddings_initializer=weights(), dtype=dtype,
                                                   name="token_embedding")
        self.position_embedding = PositionEmbedding(initializer=weights(), sequence_length=max_sequence_length,
                                                    dtype=dtype, name="position_embedding") \
            if position_biased_input else None
        self.segment_embedding = keras.layers.Embedding(input_dim=num_segments, output_dim=hidden_dim,
                                                        embeddings_initializer=weights(), dtype=dtype,
                                                        name="segment_embedding") if num_segments else None
        self.embeddings_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=dtype,
                                                                     name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.relative_embeddings = RelativeEmbeddings(
            2 * span, hidden_dim, layer_norm="layer_norm" in _norm_rel_ebd(norm_rel_ebd),
            layer_norm_epsilon=layer_norm_epsilon, initializer=weights(), dtype=dtype,
            name="relative_embeddings") if relative_attention else None
        self.relative_positions = RelativePositions(position_buckets, max_relative, name="relative_positions")
        self.transformer_layers = [
            DebertaV2EncoderLayer(num_heads, intermediate_dim, hidden_act=hidden_act,
                                  layer_norm_epsilon=layer_norm_epsilon, dropout=dropout,
                                  attention_dropout=attention_dropout, pos_att_type=pos_att_type,
                                  share_att_key=share_att_key, relative_attention=relative_attention,
                                  attention_span=span, kernel_initializer=weights(), dtype=dtype,
                                  name=f"transformer_layer_{i}")
            for i in range(num_layers)]
        self.pooled_dense = None

        # === Functional model ===
        inputs = self.new_inputs()
        token_ids, segment_ids, padding_mask = inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"]
        x = self.token_embedding(token_ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding(x)
        if self.segment_embedding is not None:
            x = x + self.segment_embedding(segment_ids)
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x * ops.cast(padding_mask, x.dtype)[:, :, None])
        rel_embeddings = self.relative_embeddings(token_ids) if self.relative_embeddings is not None else None
        positions = self.relative_positions(token_ids)
        for layer in self.transformer_layers:
            x = layer(x, rel_embeddings=rel_embeddings, relative_positions=positions, padding_mask=padding_mask)
        self.finish(inputs, x, locals(), dtype=dtype, **kwargs)


def _norm_rel_ebd(value) -> list[str]:
    return [part.strip() for part in str(value or "none").lower().split("|")]
