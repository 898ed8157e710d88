"""Find literal special tokens (``[CLS]``, ``[MASK]`` ...) in raw text, as Hugging Face does.

The fast tokenizer matches its special ("added") tokens in the raw text before any normalisation,
case-sensitively, and turns each match into that token (``"Hello [MASK]"`` → ``hello``, ``[MASK]``;
``"[mask]"`` is ordinary text). This does the same over code points, vectorised: for each special
token and each of its characters, compare the text shifted by that many positions.

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer.special_tokens import SpecialTokenMatcher
    >>> m = SpecialTokenMatcher(["[CLS]", "[MASK]"])
    >>> cps = tf.strings.unicode_decode(["a [MASK]"], "UTF-8")
    >>> token, start = m(cps.flat_values, cps.value_rowids())
    >>> token.numpy().tolist(), start.numpy().tolist()
    ([-1, -1, 1, 1, 1, 1, 1, 1], [False, False, True, False, False, False, False, False])
"""

from __future__ import annotations

import tensorflow as tf


class SpecialTokenMatcher(tf.Module):
    """Marks every code point covered by a literal special token (index into ``tokens``, else -1)."""

    def __init__(self, tokens: list[str], name: str | None = None):
        super().__init__(name=name)
        self.tokens = [t for t in tokens if t]
        self._patterns = [[ord(c) for c in t] for t in self.tokens]

    def __call__(self, code_points: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(token_index, is_start)`` for flat ``code_points`` whose text index is ``row``."""
        n = tf.shape(code_points)[0]
        index = tf.range(n)
        token = tf.fill([n], -1)
        start = tf.zeros([n], tf.bool)
        for k, pattern in enumerate(self._patterns):
            matched = tf.ones([n], tf.bool)
            for j, cp in enumerate(pattern):
                at = tf.minimum(index + j, tf.maximum(n - 1, 0))
                matched &= (index + j < n) & tf.equal(tf.gather(code_points, at), cp) & tf.equal(tf.gather(row, at), row)
            matched &= ~start & tf.equal(token, -1)  # the first token listed wins where two would start here
            # Spread each match over its characters: +1 at the start, -1 just after the end.
            delta = tf.math.unsorted_segment_sum(tf.cast(matched, tf.int32), index, n + 1) - \
                tf.math.unsorted_segment_sum(tf.cast(matched, tf.int32), tf.minimum(index + len(pattern), n), n + 1)
            covered = tf.cumsum(delta)[:n] > 0
            covered &= tf.equal(token, -1)  # overlapping matches: the earlier one keeps its characters
            token = tf.where(covered, k, token)
            start |= matched & covered
        return token, start
