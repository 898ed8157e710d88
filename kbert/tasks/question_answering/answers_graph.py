"""Question-answering answer decoding as TensorFlow ops, for the exported raw-string SavedModel.

The same rules as :mod:`kbert.tasks.question_answering.postprocess` (transformers 4.57's
``QuestionAnsweringPipeline.postprocess``), on a padded batch of windows ``(W, T)`` whose example is
``sample_index`` ``(W,)``:

* per window, tokens that are neither context (``sequence_ids == 1``) nor index 0 (``[CLS]``) get the logit
  -10000, start and end are softmaxed in float32; the null score is ``p_start[0] * p_end[0]``, an example's
  is the minimum over its windows, and ``[CLS]``'s probabilities are then zeroed;
* span scores are ``p_start[s] * p_end[e]`` for ``0 <= e - s < max_answer_len``; each window offers its best
  ``top_k * 2 + 10`` spans (``top_k`` when ``align_to_words`` is off) whose ends are both allowed;
* with ``align_to_words`` a span is widened to its words' characters within the window (``word_to_chars``);
  ``answer`` is the context's slice in characters (code points, as kbert's and HF's offsets are);
* answers of one example whose texts are equal after lower-casing are merged (scores added, float64; the
  first one seen, by window then rank, keeps its ``start``/``end``); the null answer (``"", 0, 0``) is
  appended last when ``handle_impossible_answer``; answers are sorted by score (stable) and cut to ``top_k``.

The candidates per window grow with ``top_k``, so ``top_k=3``'s answers are not the first three of ``top_k=5``'s
(an answer merges more spans, and more answers compete): :func:`answers_for_every_top_k` gives each ``k``'s.

What differs from :func:`~kbert.tasks.question_answering.postprocess.answer_question`:

* only spans with a score > 0 are returned (plus the null answer). HF, when a window has fewer positive
  spans than candidates, fills the rest with zero-score spans picked in numpy's ``argpartition`` tie order
  (spans ending before they start, too long, from ``[CLS]``); those are left out here, so ``count`` can be
  smaller than HF's list. A zero-score span of an earlier window that HF merges with a later positive answer
  of the same text would give HF's answer that span's ``start``/``end``; here the positive one's are kept;
* ties between *positive* scores (e.g. all-equal logits) are broken by position (lower start, then end)
  where HF follows ``argpartition``/``argsort`` (quicksort) order, so such answers may differ or be ordered
  differently;
* lower-casing is ``tf.strings.lower(encoding="utf-8")`` (ICU): the same as Python 3.11's ``str.lower``
  (final sigma and ``İ`` included) for every code point except 40 capitals added in Unicode 14 (U+2C2F,
  U+A7C0, U+A7D0, U+A7D6, U+A7D8 and Vithkuqi U+10570..U+10595), which stay upper-case: answers differing only
  in those letters' case are not merged. (``tensorflow_text.case_fold_utf8`` is further away: it applies NFKC
  and full case folding, e.g. ``ß`` → ``ss``, ``²`` → ``2``.) Invalid UTF-8 is not an issue: contexts are text.

Example:
    >>> import tensorflow as tf
    >>> # [CLS] where ? [SEP] sinan lives in istan ##bul [SEP]
    >>> answers = answer_spans_graph(
    ...     start_logits=tf.constant([[0, 0, 0, 0, 1, 0, 0, 3, 0, 0]], tf.float32),
    ...     end_logits=tf.constant([[0, 0, 0, 0, 0, 1, 0, 3, 0, 0]], tf.float32),
    ...     sequence_ids=tf.constant([[-1, 0, 0, -1, 1, 1, 1, 1, 1, -1]]),
    ...     starts=tf.constant([[0, 0, 5, 0, 0, 6, 12, 15, 20, 0]]),
    ...     ends=tf.constant([[0, 5, 6, 0, 5, 11, 14, 20, 23, 0]]),
    ...     word_ids=tf.constant([[-1, -1, -1, -1, 0, 1, 2, 3, 3, -1]]), sample_index=tf.constant([0]),
    ...     num_examples=1, contexts=tf.constant(["Sinan lives in Istanbul"]), top_k=2)
    >>> [a.decode() for a in answers["answer"].numpy()[0]], answers["start"].numpy()[0].tolist()
    (['Istanbul', 'Sinan lives in Istanbul'], [15, 0])
    >>> [round(float(x), 4) for x in answers["score"].numpy()[0]], answers["count"].numpy().tolist()
    ([0.5895, 0.0798], [2])
"""

from __future__ import annotations

import tensorflow as tf

from kbert.tasks.question_answering.postprocess import MASKED_LOGIT, check_max_answer_len, check_top_k


def answer_spans_graph(start_logits, end_logits, sequence_ids, starts, ends, word_ids, sample_index, num_examples,
                       contexts, *, top_k: int = 1, max_answer_len: int = 15, handle_impossible_answer: bool = False,
                       align_to_words: bool = True) -> dict[str, tf.Tensor]:
    """Best answers per example: ``answer`` (string), ``start``/``end`` (int32), ``score`` (float32), ``(B, top_k)``.

    Window tensors are ``(W, T)``: logits, ``sequence_ids`` (-1 special tokens and padding, 0 question,
    1 context), character ``starts``/``ends`` into the example's context and ``word_ids`` (the context word
    of each token; only context tokens' are read). ``sample_index`` ``(W,)`` is each window's example in
    ``contexts`` ``(B,)`` (``B = num_examples``); ``[CLS]`` must be at index 0. ``count`` ``(B,)`` int32 is
    the number of answers; rows are padded with ``""``, -1, -1, 0. ``top_k`` and the rest are fixed when traced.
    """
    top_k = check_top_k(top_k)
    spans = _candidate_spans(start_logits, end_logits, sequence_ids, starts, ends, word_ids, sample_index,
                             num_examples, contexts, candidates=_candidates(top_k, align_to_words),
                             max_answer_len=max_answer_len, handle_impossible_answer=handle_impossible_answer,
                             align_to_words=align_to_words)
    return _ranked(spans, _candidates(top_k, align_to_words), top_k)


def answers_for_every_top_k(start_logits, end_logits, sequence_ids, starts, ends, word_ids, sample_index,
                            num_examples, contexts, *, top_k: int = 5, max_answer_len: int = 15,
                            handle_impossible_answer: bool = False,
                            align_to_words: bool = True) -> dict[str, tf.Tensor]:
    """:func:`answer_spans_graph`'s answers for each ``k`` from 1 to ``top_k`` at once, ``(B, top_k, top_k)``.

    Row ``k - 1`` of ``answer``/``start``/``end``/``score`` holds ``top_k=k``'s answers (padded to ``top_k``
    columns) and ``count`` ``(B, top_k)`` their number. They are not the first ``k`` of ``top_k``'s: HF draws
    ``2 * k + 10`` candidates per window, so with a larger ``k`` more spans merge into an answer (its score
    grows) and more answers compete. The windows' spans are scored once; each ``k`` merges a prefix of them.
    """
    top_k = check_top_k(top_k)
    spans = _candidate_spans(start_logits, end_logits, sequence_ids, starts, ends, word_ids, sample_index,
                             num_examples, contexts, candidates=_candidates(top_k, align_to_words),
                             max_answer_len=max_answer_len, handle_impossible_answer=handle_impossible_answer,
                             align_to_words=align_to_words)
    every = [_ranked(spans, _candidates(k, align_to_words), k) for k in range(1, top_k + 1)]
    padding = {"answer": "", "start": -1, "end": -1, "score": 0.0}
    ranked = {key: tf.stack([tf.pad(answers[key], [[0, 0], [0, top_k - k]], constant_values=default)
                             for k, answers in enumerate(every, 1)], axis=1) for key, default in padding.items()}
    return {**ranked, "count": tf.stack([answers["count"] for answers in every], axis=1)}


def _candidates(top_k: int, align_to_words: bool) -> int:
    """Spans HF draws per window for ``top_k`` answers: some may merge when aligned to words."""
    return top_k * 2 + 10 if align_to_words else top_k


def _candidate_spans(start_logits, end_logits, sequence_ids, starts, ends, word_ids, sample_index, num_examples,
                     contexts, *, candidates: int, max_answer_len: int, handle_impossible_answer: bool,
                     align_to_words: bool) -> dict:
    """Each window's best ``candidates`` spans that HF keeps, flattened window by window, best first: their
    ``example``, ``rank`` in the window, ``score`` (float64), ``text``, ``start``/``end``; ``num_examples``
    and, with ``handle_impossible_answer``, the null answers."""
    max_answer_len = check_max_answer_len(max_answer_len)
    start_logits = tf.convert_to_tensor(start_logits, tf.float32)
    end_logits = tf.convert_to_tensor(end_logits, tf.float32)
    sequence_ids, starts, ends, word_ids = (tf.cast(x, tf.int32) for x in (sequence_ids, starts, ends, word_ids))
    sample_index = tf.cast(sample_index, tf.int32)
    num_examples = tf.cast(num_examples, tf.int32)
    windows, length = tf.shape(start_logits)[0], tf.shape(start_logits)[1]

    # Probabilities (HF's float32 softmax of the masked logits), null scores, [CLS] zeroed.
    position = tf.range(length)
    allowed = tf.equal(sequence_ids, 1) | tf.equal(position, 0)[None]

    def probabilities(logits):
        x = tf.where(allowed, logits, MASKED_LOGIT)
        x = tf.exp(x - tf.reduce_max(x, axis=1, keepdims=True))
        return x / tf.reduce_sum(x, axis=1, keepdims=True)

    p_start, p_end = probabilities(start_logits), probabilities(end_logits)
    null_scores = p_start[:, 0] * p_end[:, 0]  # (W,)
    not_cls = tf.cast(position != 0, tf.float32)[None]
    p_start, p_end = p_start * not_cls, p_end * not_cls

    # Span scores on the band 0 <= e - s < band of every window: (W, T, band), flat in (s, e) order like HF's.
    band = tf.minimum(max_answer_len, length)
    span_end = position[:, None] + tf.range(band)[None]  # (T, band)
    inside = span_end < length
    span_end = tf.minimum(span_end, length - 1)
    scores = p_start[:, :, None] * tf.gather(p_end, span_end, axis=1) * tf.cast(inside, tf.float32)[None]
    best, flat = tf.math.top_k(tf.reshape(scores, [windows, -1]), k=tf.minimum(candidates, length * band))
    # top_k also returns zero-score cells when a window has fewer positive spans than candidates, among them
    # cells past the window's last column (s + offset >= T when every window is short): clip those ends.
    s, e = flat // band, tf.minimum(flat // band + flat % band, length - 1)  # (W, K)
    keep = (best > 0) & tf.gather(allowed, s, batch_dims=1) & tf.gather(allowed, e, batch_dims=1)

    # Character offsets, widened to whole words within the window.
    char_start, char_end = tf.gather(starts, s, batch_dims=1), tf.gather(ends, e, batch_dims=1)
    if align_to_words:
        word_start, word_end = _word_char_spans(sequence_ids, word_ids, starts, ends)
        word_start, word_end = tf.gather(word_start, s, batch_dims=1), tf.gather(word_end, e, batch_dims=1)
        in_words = (word_start >= 0) & (word_end >= 0)  # else HF's except: the tokens' own offsets
        char_start = tf.where(in_words, word_start, char_start)
        char_end = tf.where(in_words, word_end, char_end)
    # The kept spans flattened in HF's order: window by window, best first; ``rank`` is the place in its window.
    example = tf.broadcast_to(sample_index[:, None], tf.shape(s))
    rank = tf.broadcast_to(tf.range(tf.shape(s)[1]), tf.shape(s))
    spans = {k: tf.boolean_mask(v, keep) for k, v in (("example", example), ("rank", rank), ("start", char_start),
                                                      ("end", char_end), ("score", tf.cast(best, tf.float64)))}
    spans["text"] = tf.strings.substr(tf.gather(contexts, spans["example"]), spans["start"],
                                      tf.maximum(spans["end"] - spans["start"], 0), unit="UTF8_CHAR")
    # HF's get_answer merges the answers of an example whose lower-cased texts are equal.
    spans["key"] = tf.strings.join([tf.strings.as_string(spans["example"]),
                                    tf.strings.lower(spans["text"], encoding="utf-8")], separator="|")
    spans["num_examples"] = num_examples
    if handle_impossible_answer:  # the example's lowest null score over its windows
        has_windows = tf.math.bincount(sample_index, minlength=num_examples, maxlength=num_examples) > 0
        examples = tf.boolean_mask(tf.range(num_examples), has_windows)
        zeros = tf.zeros_like(examples)
        null = tf.boolean_mask(tf.math.unsorted_segment_min(tf.cast(null_scores, tf.float64), sample_index,
                                                            num_examples), has_windows)
        spans["nulls"] = {"example": examples, "score": null, "start": zeros, "end": zeros,
                          "answer": tf.fill(tf.shape(examples), "")}
    return spans


def _ranked(spans: dict, candidates: int, top_k: int) -> dict[str, tf.Tensor]:
    """The answers of each example's best ``candidates`` spans per window, merged, sorted and cut to ``top_k``."""
    drawn = spans["rank"] < candidates
    example, char_start, char_end, text, span_scores, key = (
        tf.boolean_mask(spans[k], drawn) for k in ("example", "start", "end", "text", "score", "key"))
    num_examples = spans["num_examples"]

    # HF's get_answer: same example and same lower-cased text → one answer, the first one's offsets.
    # tf.unique numbers the groups in order of their first span.
    texts, group = tf.unique(key)
    num_groups = tf.size(texts)
    first = tf.math.unsorted_segment_min(tf.range(tf.size(group)), group, num_groups)
    answers = {
        "example": tf.gather(example, first),
        "score": tf.math.unsorted_segment_sum(span_scores, group, num_groups),
        "start": tf.gather(char_start, first),
        "end": tf.gather(char_end, first),
        "answer": tf.gather(text, first),
    }
    if "nulls" in spans:  # after every span of the example: it comes last among equal scores
        answers = {k: tf.concat([answers[k], spans["nulls"][k]], axis=0) for k in answers}

    # Per example, by score descending; stable sorts keep the order answers were first seen.
    order = tf.argsort(answers["score"], direction="DESCENDING", stable=True)
    order = tf.gather(order, tf.argsort(tf.gather(answers["example"], order), stable=True))
    answers = {k: tf.gather(v, order) for k, v in answers.items()}
    rows = tf.cast(answers.pop("example"), tf.int64)

    def padded(values, default):
        ragged = tf.RaggedTensor.from_value_rowids(values, rows, nrows=tf.cast(num_examples, tf.int64))
        return ragged.to_tensor(default_value=default, shape=[None, top_k])

    count = tf.math.bincount(tf.cast(rows, tf.int32), minlength=num_examples, maxlength=num_examples,
                             dtype=tf.int32)
    return {
        "answer": padded(answers["answer"], ""),
        "start": padded(answers["start"], -1),
        "end": padded(answers["end"], -1),
        "score": padded(tf.cast(answers["score"], tf.float32), 0.0),
        "count": tf.minimum(count, top_k),
    }


def _word_char_spans(sequence_ids, word_ids, starts, ends):
    """Per token ``(W, T)``, its context word's character span within the window (-1 for non-context tokens).

    The graph twin of :func:`~kbert.tasks.question_answering.postprocess.word_char_spans`: a word runs from
    its first token's start to its last token's end among the window's tokens.
    """
    in_word = tf.equal(sequence_ids, 1) & (word_ids >= 0)
    token = tf.cast(tf.where(in_word), tf.int32)  # (N, 2): window, position
    window, position = token[:, 0], token[:, 1]
    key = tf.cast(window, tf.int64) * (2 ** 32) + tf.cast(tf.gather_nd(word_ids, token), tf.int64)
    words, word = tf.unique(key)
    num_words = tf.size(words)
    first = tf.gather(tf.math.unsorted_segment_min(position, word, num_words), word)
    last = tf.gather(tf.math.unsorted_segment_max(position, word, num_words), word)
    word_start = tf.gather_nd(starts, tf.stack([window, first], axis=1))
    word_end = tf.gather_nd(ends, tf.stack([window, last], axis=1))
    unknown = tf.fill(tf.shape(word_ids), -1)
    return (tf.tensor_scatter_nd_update(unknown, token, word_start),
            tf.tensor_scatter_nd_update(unknown, token, word_end))
