"""Clip the *summed* gradient under ``tf.distribute``, as one device (and PyTorch DDP) would.

Keras 3.15 (TensorFlow backend, ``BaseOptimizer._backend_apply_gradients``) clips each replica's gradient
*before* the cross-replica sum (``_backend_update_step`` all-reduces after ``_clip_gradients``). With
``global_clipnorm`` and two replicas, the update is ``clip(g1) + clip(g2)`` instead of ``clip(g1 + g2)``:
when clipping is active (early fine-tuning: gradient norms of 5-50 against a limit of 1) mirrored training
takes different steps than single-device training on the same global batch.

:func:`clip_summed_gradient` all-reduces first, clips the sum, and hands every replica ``clip(sum) / N``;
Keras then clips again (a no-op: the norm is already under the limit) and sums the N copies back to
``clip(sum)``. It costs one extra all-reduce per step, only with more than one replica and clipping on.
``kbert.training.optimizer.TorchAdamW`` calls it; ``tests/test_replica_clipping.py`` shows the problem.

Example (one replica: nothing to do):
    >>> import tensorflow as tf
    >>> [g.numpy().tolist() for g in clip_summed_gradient([tf.constant([3.0, 4.0])], clip_norm=1.0)]
    [[3.0, 4.0]]
"""

from __future__ import annotations

import tensorflow as tf


def clip_summed_gradient(gradients, clip_norm: float):
    """Per replica, ``clip_by_global_norm(sum over replicas, clip_norm) / replicas``; unchanged with one replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(gradients)
    replicas = context.num_replicas_in_sync
    present = [i for i, g in enumerate(gradients) if g is not None]
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.convert_to_tensor(gradients[i]) for i in present])
    clipped, _ = tf.clip_by_global_norm(summed, clip_norm)
    result = list(gradients)
    for i, gradient in zip(present, clipped):
        result[i] = gradient / replicas
    return result
