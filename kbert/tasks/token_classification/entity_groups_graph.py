"""Hugging Face's ``aggregation_strategy="simple"`` as TensorFlow ops, for the exported SavedModel.

Same rules as :mod:`kbert.tasks.token_classification.aggregation` (and transformers' ``group_entities``), on padded
batches: special tokens are skipped; a token starts a new group when it is the first real token,
when its label is ``B-…``, or when its tag differs from the previous token's (``get_tag``: ``B-X``
and ``I-X`` have tag ``X``, any other label is its own tag). A group is named after its first
token's label with the part before the first ``-`` removed, scores are averaged, ``word`` joins the
token strings as BERT's ``convert_tokens_to_string`` does (``[UNK]`` tokens show the original text) or,
given ``join_tokens``, as that tokenizer's own decoder does (RoBERTa's byte-level ``" San Francisco"``),
and groups named in ``ignore_labels`` are dropped. Results are padded to ``max_entities`` per text.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> groups = simple_entity_groups(
    ...     texts=tf.constant(["Ann lives in New York"]),
    ...     token_strings=tf.constant([["[CLS]", "ann", "lives", "in", "new", "york", "[SEP]"]]),
    ...     token_ids=tf.constant([[2, 10, 11, 12, 13, 14, 3]]), unk_id=1,
    ...     labels=tf.constant([[0, 1, 0, 0, 3, 4, 0]]), scores=tf.constant([[1.0, 0.9, 1.0, 1.0, 0.8, 0.6, 1.0]]),
    ...     starts=tf.constant([[0, 0, 4, 10, 13, 17, 0]]), ends=tf.constant([[0, 3, 9, 12, 16, 21, 0]]),
    ...     real=tf.constant([[False, True, True, True, True, True, False]]),
    ...     id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}, max_entities=4, cleanup=True)
    >>> [g.decode() for g in groups["entity_group"].numpy()[0]], groups["entity_count"].numpy().tolist()
    (['PER', 'LOC', '', ''], [2])
    >>> groups["entity_word"].numpy()[0, 1].decode(), groups["entity_start"].numpy()[0].tolist()
    ('new york', [0, 13, -1, -1])
"""

from __future__ import annotations

import re

import tensorflow as tf

from kbert.tasks.token_classification.aggregation import DECODER_CLEANUP, get_tag


def group_name(label: str) -> str:
    """The ``entity_group`` a group whose first token has ``label`` gets (text after the first ``-``)."""
    return label.split("-", 1)[-1]


def simple_entity_groups(*, texts: tf.Tensor, token_strings: tf.Tensor, token_ids: tf.Tensor, unk_id: int,
                         labels: tf.Tensor, scores: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, real: tf.Tensor,
                         id2label: dict[int, str], ignore_labels=("O",), max_entities: int = 64,
                         cleanup: bool = True, subword_prefix: str = "##", join_tokens=None) -> dict[str, tf.Tensor]:
    """Grouped entities of a padded batch ``(B, T)``: each output is ``(B, max_entities)`` plus ``entity_count (B,)``.

    ``real`` marks the tokens that take part (not special, not padding); ``labels``/``scores`` are the
    per-token argmax label ids and their probabilities. ``join_tokens(token_ids, group, num_groups)``
    (a byte-level or SentencePiece tokenizer's in-graph decoder; unknown tokens read their text) replaces the
    WordPiece joining of the words.
    """
    names = [id2label[i] for i in range(len(id2label))]
    tags = sorted({get_tag(n)[1] for n in names})
    is_b = tf.constant([get_tag(n)[0] == "B" for n in names])
    tag_id = tf.constant([tags.index(get_tag(n)[1]) for n in names], tf.int32)
    group_names = tf.constant([group_name(n) for n in names])
    ignored = tf.constant([group_name(n) in set(ignore_labels or ()) for n in names])

    batch = tf.shape(labels)[0]
    # Real tokens of every row, in order: ragged (B, (n)).
    row_labels = tf.ragged.boolean_mask(labels, real)
    flat_labels = row_labels.flat_values
    rows = tf.cast(row_labels.value_rowids(), tf.int32)
    first_in_row = tf.cast(tf.range(tf.size(flat_labels)), tf.int64) == tf.gather(row_labels.row_starts(), rows)
    previous_tag = tf.gather(tag_id, tf.concat([[0], flat_labels], axis=0)[:-1])
    starts_group = first_in_row | tf.gather(is_b, flat_labels) | (tf.gather(tag_id, flat_labels) != previous_tag)
    group = tf.cumsum(tf.cast(starts_group, tf.int32)) - 1  # (N,) group of every real token
    num_groups = tf.reduce_sum(tf.cast(starts_group, tf.int32))

    # Token strings as transformers builds them: [UNK] shows the text it stands for.
    text_of_token = tf.gather(texts, rows)
    flat_starts = tf.ragged.boolean_mask(starts, real).flat_values
    flat_ends = tf.ragged.boolean_mask(ends, real).flat_values
    flat_ids = tf.ragged.boolean_mask(token_ids, real).flat_values
    original = tf.strings.substr(text_of_token, flat_starts, flat_ends - flat_starts, unit="UTF8_CHAR")
    strings = tf.where(flat_ids == unk_id, original, tf.ragged.boolean_mask(token_strings, real).flat_values)
    if join_tokens is not None:
        words = join_tokens(flat_ids, group, num_groups, unk_texts=original)
    else:
        words = _wordpiece_words(strings, group, num_groups, subword_prefix, cleanup)
    first_token = tf.math.unsorted_segment_min(tf.range(tf.size(flat_labels)), group, num_groups)
    group_label = tf.gather(flat_labels, first_token)
    group_row = tf.gather(rows, first_token)
    flat_scores = tf.ragged.boolean_mask(scores, real).flat_values
    mean_score = tf.math.unsorted_segment_mean(flat_scores, group, num_groups)
    last_token = tf.math.unsorted_segment_max(tf.range(tf.size(flat_labels)), group, num_groups)
    group_start = tf.gather(flat_starts, first_token)
    group_end = tf.gather(flat_ends, last_token)

    keep = tf.logical_not(tf.gather(ignored, group_label))
    kept_rows = tf.boolean_mask(group_row, keep)

    def padded(values, default):
        ragged = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(values, keep), tf.cast(kept_rows, tf.int64),
                                                   nrows=tf.cast(batch, tf.int64))
        return ragged.to_tensor(default_value=default, shape=[None, max_entities])

    count = tf.math.bincount(kept_rows, minlength=batch, maxlength=batch, dtype=tf.int32)
    return {
        "entity_group": padded(tf.gather(group_names, group_label), ""),
        "entity_score": padded(mean_score, 0.0),
        "entity_word": padded(words, ""),
        "entity_start": padded(group_start, -1),
        "entity_end": padded(group_end, -1),
        "entity_count": tf.minimum(count, max_entities),
    }


def _wordpiece_words(strings, group, num_groups, subword_prefix: str, cleanup: bool):
    """The WordPiece decoder over groups of token strings: the prefix is dropped from later subwords, other
    later tokens get a space; then its clean-up runs on each token; the pieces are concatenated."""
    first_of_group = tf.concat([[True], group[1:] != group[:-1]], axis=0)
    prefix = "^" + re.escape(subword_prefix)
    is_subword = tf.strings.regex_full_match(strings, prefix + "(?s:.*)")
    joined = tf.where(first_of_group, strings,
                      tf.where(is_subword, tf.strings.regex_replace(strings, prefix, "", replace_global=False),
                               tf.strings.join([" ", strings])))
    if cleanup:
        for dirty, clean in DECODER_CLEANUP:
            joined = tf.strings.regex_replace(joined, re.escape(dirty), clean)
    return tf.strings.unsorted_segment_join(joined, group, num_groups, separator="")
