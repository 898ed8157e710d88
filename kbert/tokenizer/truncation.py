"""How many tokens of each text survive truncation, and where overflow windows start.

Pure functions over integer tensors, mirroring the Rust ``tokenizers`` crate
(``truncate_encodings`` and ``Encoding::truncate``), so that they run inside a graph.

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer.truncation import pair_lengths
    >>> [t.numpy().tolist() for t in pair_lengths(tf.constant([10, 3]), tf.constant([4, 20]), 9, "longest_first")]
    [[5, 3], [4, 6]]
"""

from __future__ import annotations

import tensorflow as tf

from kbert.errors import TokenizerError

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


def check_strategy(truncation: str) -> str:
    if truncation not in TRUNCATION_STRATEGIES:
        raise TokenizerError(f"truncation={truncation!r} is not one of {list(TRUNCATION_STRATEGIES)}")
    return truncation


def single_lengths(n: tf.Tensor, budget: int | tf.Tensor) -> tf.Tensor:
    """Tokens kept of texts of lengths ``n`` when ``budget`` tokens fit (special tokens excluded)."""
    return tf.minimum(n, budget)


def pair_lengths(n1: tf.Tensor, n2: tf.Tensor, budget: int | tf.Tensor,
                 truncation: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Tokens kept of each side of text pairs, as Hugging Face's fast tokenizer decides.

    ``longest_first`` gives the shorter side all it needs up to half the budget and the longer side
    the rest (the longer side gets the odd token). ``only_first``/``only_second`` cut one side only;
    when that side cannot absorb the excess the caller must report an error (see ``pair_overflow``).
    """
    check_strategy(truncation)
    budget = tf.cast(budget, n1.dtype)
    fits = n1 + n2 <= budget
    if truncation == "only_first":
        keep1 = tf.maximum(budget - n2, 0)
        return tf.where(fits, n1, keep1), n2
    if truncation == "only_second":
        keep2 = tf.maximum(budget - n1, 0)
        return n1, tf.where(fits, n2, keep2)
    short = tf.minimum(n1, n2)
    keep_long = tf.where(short > budget, short, tf.maximum(short, budget - short))
    keep_short = short
    both_cut = keep_short + keep_long > budget
    keep_short = tf.where(both_cut, budget // 2, keep_short)
    keep_long = tf.where(both_cut, budget // 2 + budget % 2, keep_long)
    first_is_short = n1 <= n2
    keep1 = tf.where(first_is_short, keep_short, keep_long)
    keep2 = tf.where(first_is_short, keep_long, keep_short)
    return tf.where(fits, n1, tf.minimum(n1, keep1)), tf.where(fits, n2, tf.minimum(n2, keep2))


def pair_overflow(n1: tf.Tensor, n2: tf.Tensor, budget: int | tf.Tensor, truncation: str) -> tf.Tensor:
    """True where ``only_first``/``only_second`` cannot make the pair fit (HF raises then)."""
    budget = tf.cast(budget, n1.dtype)
    if truncation == "only_first":
        return (n1 + n2 > budget) & (n1 <= n1 + n2 - budget)
    if truncation == "only_second":
        return (n1 + n2 > budget) & (n2 <= n1 + n2 - budget)
    return tf.zeros_like(n1, tf.bool)


def window_starts(n: tf.Tensor, size: tf.Tensor, stride: int) -> tf.RaggedTensor:
    """Start of every overflow window over sequences of lengths ``n`` (``(B,)`` → ``(B, (k))``).

    Windows of ``size`` tokens start every ``size - stride`` tokens until one reaches the end, as in
    ``Encoding::truncate``; a sequence that fits has one window starting at 0.
    """
    size = tf.broadcast_to(tf.cast(size, n.dtype), tf.shape(n))
    step = tf.maximum(size - stride, 1)  # callers reject stride >= size before getting here
    count = 1 + (tf.maximum(n - size, 0) + step - 1) // step
    return tf.ragged.range(count) * tf.expand_dims(step, 1)
