"""RoBERTa's position embedding: positions counted from ``pad_token_id + 1``, padding tokens at ``pad_token_id``.

transformers' ``create_position_ids_from_input_ids``: ``mask = ids != pad``, ``positions = cumsum(mask) * mask
+ pad``. keras-hub's ``PositionEmbedding`` takes rows ``0..T-1`` of its table, which is BERT's rule and is
off by ``pad + 1`` rows for RoBERTa (keras-hub's RoBERTa preset converter re-slices the table instead,
which gives padding a real position). This layer gathers the rows transformers uses, so a ``<pad>``
typed inside the text is numbered as transformers numbers it too.

Example:
    >>> import numpy as np
    >>> from kbert.modeling.positions import PaddingAwarePositionEmbedding
    >>> layer = PaddingAwarePositionEmbedding(sequence_length=8, hidden_dim=4, pad_token_id=1)
    >>> tuple(layer(np.array([[0, 5, 6, 2, 1, 1]], "int32")).shape)
    (1, 6, 4)
    >>> layer.position_ids(np.array([[0, 5, 6, 2, 1, 1]], "int32")).numpy().tolist()
    [[2, 3, 4, 5, 1, 1]]
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PaddingAwarePositionEmbedding(keras.layers.Layer):
    """Position embeddings looked up at transformers' RoBERTa position ids of ``token_ids`` ``(B, T)``.

    Args:
        sequence_length: rows of the table (``max_position_embeddings``).
        hidden_dim: width of the table.
        pad_token_id: the padding id (RoBERTa: 1); real tokens are numbered from ``pad_token_id + 1``.
        initializer: of the table.

    Returns ``(B, T, hidden_dim)``.
    """

    def __init__(self, sequence_length: int, hidden_dim: int, pad_token_id: int, initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.hidden_dim = int(hidden_dim)
        self.pad_token_id = int(pad_token_id)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape=None):
        self.position_embeddings = self.add_weight(
            name="embeddings", shape=(self.sequence_length, self.hidden_dim), initializer=self.initializer)
        self.built = True

    def position_ids(self, token_ids):
        """``(B, T)`` int32 position ids as transformers computes them from the ids."""
        mask = ops.cast(ops.not_equal(token_ids, self.pad_token_id), "int32")
        return ops.cumsum(mask, axis=-1) * mask + self.pad_token_id

    def call(self, token_ids):
        return ops.take(self.position_embeddings, self.position_ids(token_ids), axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(sequence_length=self.sequence_length, hidden_dim=self.hidden_dim,
                      pad_token_id=self.pad_token_id, initializer=keras.initializers.serialize(self.initializer))
        return config
