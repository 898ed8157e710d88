"""The answer-span loss of ``BertForQuestionAnswering``: mean start and end cross-entropy over the window's tokens.

Hugging Face (``modeling_bert.py``)::

    ignored_index = start_logits.size(1)                         # T, the padded length of the batch
    start_positions = start_positions.clamp(0, ignored_index)    # so is end_positions
    loss_fct = CrossEntropyLoss(ignore_index=ignored_index)      # mean over the windows not ignored
    total_loss = (loss_fct(start_logits, start_positions) + loss_fct(end_logits, end_positions)) / 2

:class:`SpanLoss` computes the same number: ``y_true`` is ``(B, 2)`` ``[start, end]`` token indices,
``y_pred`` the ``(B, T, 2)`` logits (start ``[..., 0]``, end ``[..., 1]``). A position outside
``[0, T)`` is clamped and, at ``T``, ignored (its window then leaves that half's mean, as in HF; negative
positions become 0, the ``[CLS]`` index; a half with every window ignored adds 0, where HF's mean is
NaN). Under ``tf.distribute`` each replica computes this over its part
of the batch and Keras averages the replicas (the usual ``sum_over_batch_size`` scaling).

Padded positions are *not* masked, by HF or here: the softmax runs over all ``T`` positions, padding
included (the Dense head gives padded tokens logits like any other). The loss of a window therefore
depends on how far its batch is padded: run_qa pads every window to ``max_seq_len`` (its default
``--pad_to_max_length``), kbert's length buckets pad only to the batch's longest window, so kbert's loss
(on the same model) is that of HF on a less padded batch; on the same padded batch the two are equal.

Example:
    >>> import numpy as np
    >>> logits = np.zeros((1, 4, 2), "float32")                     # 4 tokens, uniform: ln 4 each
    >>> round(float(SpanLoss()(np.array([[1, 2]]), logits)), 4)
    1.3863
    >>> round(float(SpanLoss()(np.array([[1, 2], [9, 9]]), np.zeros((2, 4, 2), "float32"))), 4)  # 9 → 4: ignored
    1.3863
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class SpanLoss(keras.losses.Loss):
    """``(CE(start) + CE(end)) / 2``, each averaged over the windows whose position is not ignored (HF's)."""

    def __init__(self, name: str = "span_loss", **kwargs):
        kwargs.setdefault("reduction", "sum_over_batch_size")
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")  # (B, T, 2); mixed precision gives float16 logits
        length = ops.shape(y_pred)[1]
        batch = ops.cast(ops.shape(y_pred)[0], "float32")
        positions = ops.clip(ops.cast(y_true, "int32"), 0, length)  # (B, 2), HF's clamp(0, ignored_index)
        kept = ops.not_equal(positions, length)
        losses = ops.sparse_categorical_crossentropy(ops.where(kept, positions, 0), ops.transpose(y_pred, (0, 2, 1)),
                                                     from_logits=True)  # (B, 2)
        kept = ops.cast(kept, "float32")
        # Each half is a mean over its kept windows; the reduction divides the per-window sum by B.
        share = batch / ops.maximum(ops.sum(kept, axis=0), 1.0)  # (2,)
        return ops.sum(losses * kept * share, axis=1) / 2.0  # (B,)
