"""Small ragged-tensor helpers that are cheaper than the generic ones on a million values.

``RaggedTensor.value_rowids()`` of a fresh ragged tensor (one made of row splits, as
``tf.strings.unicode_decode`` returns) costs ~55 ms per million values on this machine, twice what
decoding the text costs; a scatter and a cumulative sum give the same row ids in ~7 ms.

Example:
    >>> import tensorflow as tf
    >>> row_ids(tf.constant([0, 2, 2, 5])).numpy().tolist()
    [0, 0, 2, 2, 2]
    >>> splits_of_sorted_rows(tf.constant([0, 0, 2, 2, 2]), 4).numpy().tolist()
    [0, 2, 2, 5, 5]
"""

from __future__ import annotations

import tensorflow as tf


def row_ids(row_splits: tf.Tensor) -> tf.Tensor:
    """The row of every value of a ragged tensor with these ``row_splits`` (int32)."""
    row_splits = tf.cast(row_splits, tf.int32)
    size = row_splits[-1]
    starts = row_splits[:-1]
    marks = tf.math.unsorted_segment_sum(tf.ones_like(starts), starts, size + 1)  # rows that start at each value
    return tf.cumsum(marks)[:size] - 1


def splits_of_sorted_rows(rows: tf.Tensor, nrows) -> tf.Tensor:
    """Row splits (int64, ``nrows + 1``) of values whose sorted row ids are ``rows``."""
    counts = tf.math.bincount(tf.cast(rows, tf.int32), minlength=nrows, maxlength=nrows, dtype=tf.int64)
    return tf.concat([tf.zeros([1], tf.int64), tf.cumsum(counts)], axis=0)


def gather_rows(row_splits: tf.Tensor, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Rows ``rows`` of a ragged tensor given by ``row_splits``, as ``(flat_index, row_splits, row_of_value)``.

    ``flat_index`` is, for every value of the result, its position in the source's flat values (int32);
    the result's ``row_splits`` are int64 and ``row_of_value`` the result row of each value (int32).
    """
    row_splits = tf.cast(row_splits, tf.int32)
    begin = tf.gather(row_splits, rows)
    counts = tf.gather(row_splits, rows + 1) - begin
    out_splits = tf.concat([[0], tf.cumsum(counts)], axis=0)
    out_rows = row_ids(out_splits)
    flat = tf.range(out_splits[-1]) - tf.gather(out_splits, out_rows) + tf.gather(begin, out_rows)
    return flat, tf.cast(out_splits, tf.int64), out_rows
