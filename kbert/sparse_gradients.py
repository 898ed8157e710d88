"""Dense embedding gradients: Keras's Adam and global-norm clipping miscount a token that repeats in a batch.

An embedding lookup (``tf.gather``) differentiates to ``tf.IndexedSlices`` with one row *per lookup*: a
token that occurs k times in a batch (``[CLS]``, ``[SEP]``, "the", ".") contributes k rows with the same
index. Keras 3 (3.15, TensorFlow backend) squares such slices row by row before the rows are summed
(``keras.ops.square`` keeps them sparse), so

- Adam's second moment collects ``sum(g_i ** 2)`` instead of ``(sum(g_i)) ** 2``: for frequent tokens it is
  too small and their embedding rows take larger steps than PyTorch's (dense) AdamW gives them;
- ``keras.optimizers``' ``global_norm`` (``global_clipnorm``), and ``tf.linalg.global_norm`` alike, measure
  ``sqrt(sum(g_i ** 2))``, so clipping scales the whole update by a different factor than torch's
  ``clip_grad_norm_``.

Summing the rows first (converting to a dense tensor) gives exactly the dense gradient that PyTorch's
``nn.Embedding`` produces. The Adam update is dense over the whole table anyway (``m``, ``v`` decay every
row), so this costs one scatter-add per step. ``kbert.training.optimizer.TorchAdamW`` applies it to every
gradient it receives. ``tests/test_sparse_gradients.py`` shows the problem in plain Keras.

Example:
    >>> import tensorflow as tf
    >>> rows = tf.IndexedSlices(tf.constant([[1.0], [1.0]]), tf.constant([0, 0]), tf.constant([2, 1]))
    >>> [g.numpy().ravel().tolist() for g in dense_gradients([rows, None])[:1]]
    [[2.0, 0.0]]
"""

from __future__ import annotations

import tensorflow as tf


def dense_gradients(gradients):
    """``gradients`` with every ``tf.IndexedSlices`` summed into a dense tensor (repeated rows added); others as given."""
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]
