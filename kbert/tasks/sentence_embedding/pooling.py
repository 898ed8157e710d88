"""sentence-transformers' Pooling modes as one Keras layer (TF ops only, so it runs in the SavedModel too).

Inputs are the encoder's hidden states ``(B, T, H)`` and the padding mask ``(B, T)`` (right padding, as kbert
pads); the output is ``(B, len(modes) * H)``, the modes concatenated in order. Each mode is computed as
``sentence_transformers.models.Pooling._forward_padded`` computes it:

* ``mean``: sum over real tokens / max(count, 1e-9); ``mean_sqrt_len_tokens``: the same sum / sqrt(count);
* ``cls``: the first token; ``lasttoken``: the last real token; ``max``: the maximum over real tokens;
* ``weightedmean``: real tokens weighted by their position (1, 2, ...), divided by the weights' sum.

Example:
    >>> import numpy as np
    >>> hidden = np.array([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]]], "float32")   # (1, 3, 2); the last is padding
    >>> mask = np.array([[1, 1, 0]], "int32")
    >>> SentencePooling(("mean", "max", "cls"))(hidden, mask).numpy().tolist()
    [[2.0, 2.0, 3.0, 4.0, 1.0, 0.0]]
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kbert.tasks.sentence_embedding.config import POOLING_MODES


class SentencePooling(keras.layers.Layer):
    """Pool ``(B, T, H)`` hidden states to ``(B, len(modes) * H)`` sentence vectors over the padding mask."""

    def __init__(self, modes=("mean",), **kwargs):
        super().__init__(**kwargs)
        unknown = [m for m in modes if m not in POOLING_MODES]
        if not modes or unknown:
            raise ValueError(f"pooling modes must be among {list(POOLING_MODES)}, got {list(modes)}")
        self.modes = tuple(modes)

    def call(self, hidden, padding_mask):
        mask3 = tf.cast(padding_mask, hidden.dtype)[:, :, None]  # (B, T, 1)
        outputs = []
        for mode in self.modes:
            if mode == "cls":
                outputs.append(hidden[:, 0])
            elif mode == "max":
                outputs.append(tf.reduce_max(tf.where(mask3 > 0, hidden, tf.cast(float("-inf"), hidden.dtype)),
                                             axis=1))
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = tf.reduce_sum(hidden * mask3, axis=1)  # (B, H)
                count = tf.maximum(tf.reduce_sum(mask3, axis=1), 1e-9)  # (B, 1)
                outputs.append(total / (count if mode == "mean" else tf.sqrt(count)))
            elif mode == "weightedmean":
                positions = tf.cast(tf.range(1, tf.shape(hidden)[1] + 1), hidden.dtype)[None, :, None]  # (1, T, 1)
                weights = mask3 * positions
                outputs.append(tf.reduce_sum(hidden * weights, axis=1)
                               / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9))
            else:  # lasttoken: the last real token of each row (right padding)
                last = tf.maximum(tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1) - 1, 0)  # (B,)
                outputs.append(tf.gather(hidden * mask3, last, axis=1, batch_dims=1))
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)

    def compute_output_shape(self, hidden_shape, padding_mask_shape=None):
        width = None if hidden_shape[-1] is None else hidden_shape[-1] * len(self.modes)
        return (hidden_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "modes": list(self.modes)}
