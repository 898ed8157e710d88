"""Question-answering postprocessing: start/end logits of each window → Hugging Face answer dicts (pure numpy).

This is ``transformers.pipelines.question_answering`` (v4.57: ``postprocess``, ``select_starts_ends``,
``decode_spans``, ``get_indices``, ``get_answer``) for a fast tokenizer whose padding side is right (BERT),
rewritten as functions of what kbert's tokenizer and model give per window. The steps and their quirks are
HF's, kept on purpose:

* per window, every token that is neither in the context nor ``[CLS]`` gets the logit -10000, then each of
  start and end is softmaxed in float32 (``exp(x - max) / sum``);
* the null score of a window is ``p_start[CLS] * p_end[CLS]``; an example's is the minimum over its windows,
  offered (``handle_impossible_answer``) as ``{"start": 0, "end": 0, "answer": ""}`` after every span;
  then ``[CLS]``'s probabilities are set to 0;
* a span's score is ``p_start[s] * p_end[e]`` on the full ``T x T`` matrix with ``e < s`` and
  ``e - s >= max_answer_len`` zeroed (``np.triu``/``np.tril``); the best ``top_k * 2 + 10`` of the window
  (``top_k`` with ``align_to_words=False``) are taken with ``argmax`` / ``argpartition`` / ``argsort`` exactly
  as HF calls them, so that ties -- the zeroed spans -- come out in HF's order;
* of those, a span is kept when its start and end are context tokens, ``[CLS]`` *or index 0* (HF checks
  membership in ``undesired_tokens.nonzero()``, a tuple whose row indices are all 0). When there are fewer
  non-zero spans than candidates, zero-score spans therefore come back: spans that end before they start
  (``answer`` ``""`` or a slice with ``start > end``), too long, or from/to ``[CLS]``;
* with ``align_to_words`` the span is widened to whole words: ``start`` of the start token's word's first
  token, ``end`` of the end token's word's last token, both *within the window* (``word_to_chars``). When
  either token has no word (``[CLS]``), both ends fall back to the tokens' own offsets (HF's ``except``);
* an answer whose text equals an earlier one case-insensitively (``str.lower``), in any window, is merged
  into it: scores added (Python floats), the earlier ``start``/``end`` kept;
* answers are sorted by score, descending and stable, and cut to ``top_k``.

One deviation: when a window's ``T * T`` equals the number of candidates (e.g. 6 tokens and ``top_k=13``),
HF's ``argpartition`` raises ``ValueError: kth out of bounds``; here all spans are sorted instead.

Unlike HF, which returns a dict when there is exactly one answer, :func:`answer_question` always returns a
list (possibly shorter than ``top_k``, and empty only when every span was filtered out); the caller unwraps.

Example:
    >>> import numpy as np
    >>> context = "Sinan lives in Istanbul"
    >>> # [CLS] where ? [SEP] sinan lives in istan ##bul [SEP]
    >>> window = QAWindow(
    ...     start_logits=np.array([0, 0, 0, 0, 1, 0, 0, 3, 0, 0], dtype=np.float32),
    ...     end_logits=np.array([0, 0, 0, 0, 0, 1, 0, 3, 0, 0], dtype=np.float32),
    ...     starts=np.array([0, 0, 5, 0, 0, 6, 12, 15, 20, 0]), ends=np.array([0, 5, 6, 0, 5, 11, 14, 20, 23, 0]),
    ...     sequence_ids=np.array([-1, 0, 0, -1, 1, 1, 1, 1, 1, -1]),
    ...     word_ids=np.array([-1, -1, -1, -1, 0, 1, 2, 3, 3, -1]))
    >>> for a in answer_question([window], context, top_k=2):
    ...     print(a["answer"], a["start"], a["end"], round(a["score"], 4))
    Istanbul 15 23 0.5895
    Sinan lives in Istanbul 0 23 0.0798
    >>> answer_question([window], context, align_to_words=False)[0]["answer"]
    'Istan'
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kbert.errors import InputError

MASKED_LOGIT = -10000.0  # HF's logit for tokens outside the context
NO_NULL_SCORE = 1000000  # HF's starting "minimum null score" (large and positive)


@dataclasses.dataclass(frozen=True)
class QAWindow:
    """One window of one question + context, as the tokenizer and the model produced it.

    ``starts``/``ends`` are character offsets into the context for context tokens (anything elsewhere; the
    ``[CLS]`` token's, usually 0, are used when a span starts or ends there). Padding positions may be
    included: their ``sequence_ids`` are -1.
    """

    start_logits: np.ndarray  # (T,) float32
    end_logits: np.ndarray  # (T,) float32
    starts: np.ndarray  # (T,) int, character offsets in the context
    ends: np.ndarray  # (T,) int
    sequence_ids: np.ndarray  # (T,) int: -1 special tokens and padding, 0 question, 1 context
    word_ids: np.ndarray  # (T,) int: pre-tokenizer word of each context token, -1 for the others
    cls_index: int = 0  # where [CLS] is (HF also uses index 0 itself, so for BERT this must be 0)

    def __post_init__(self):
        n = np.shape(self.start_logits)[:1]
        shapes = {name: np.shape(getattr(self, name)) for name in
                  ("start_logits", "end_logits", "starts", "ends", "sequence_ids", "word_ids")}
        bad = {k: s for k, s in shapes.items() if s != n or len(s) != 1}
        if bad or not n[0]:
            raise InputError(f"QAWindow: {n[0] if n else '?'} start logits but shapes {bad}")
        if not 0 <= self.cls_index < n[0]:
            raise InputError(f"QAWindow: cls_index {self.cls_index} is outside the {n[0]} tokens")

    @property
    def allowed(self) -> np.ndarray:
        """(T,) bool: tokens an answer may start or end at, the context tokens and ``[CLS]`` (HF's ``1 - p_mask``)."""
        allowed = np.asarray(self.sequence_ids) == 1
        allowed[self.cls_index] = True
        return allowed


# --- arguments -----------------------------------------------------------------------------------
def check_top_k(value) -> int:
    """``top_k`` as HF's ``_sanitize_parameters`` accepts it (an int >= 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"top_k parameter should be an int >= 1 (got {value!r})")
    return int(value)


def check_max_answer_len(value) -> int:
    """``max_answer_len`` as HF's ``_sanitize_parameters`` accepts it (an int >= 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"max_answer_len parameter should be an int >= 1 (got {value!r})")
    return int(value)


# --- the steps of HF's postprocess ---------------------------------------------------------------
def span_probabilities(window: QAWindow) -> tuple[np.ndarray, np.ndarray, float]:
    """HF's float32 start and end probabilities, shape (1, T), with ``[CLS]`` zeroed, and the window's null score.

    The null score, ``p_start[CLS] * p_end[CLS]``, is taken before ``[CLS]`` is zeroed.
    """
    masked = ~window.allowed[None]
    probs = []
    for logits in (window.start_logits, window.end_logits):
        x = np.where(masked, MASKED_LOGIT, np.asarray(logits, dtype=np.float32)[None])
        x = np.exp(x - x.max(axis=-1, keepdims=True))
        probs.append(x / x.sum())
    start, end = probs
    cls = window.cls_index
    null_score = (start[0, cls] * end[0, cls]).item()
    start[0, cls] = end[0, cls] = 0.0
    return start, end, null_score


def best_spans(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int,
               max_answer_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HF's ``decode_spans``: the ``top_k`` best (start, end) token pairs, best first, and their float32 scores.

    ``start``/``end`` are (1, T) probabilities. Pairs are picked on the whole matrix (zeroed pairs included,
    in numpy's order for ties), then those whose start or end is neither ``allowed`` nor index 0 are dropped.
    """
    outer = np.matmul(start[..., None], end[:, None, :])  # (1, T, T)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(scores_flat)])
    elif len(scores_flat) <= top_k:  # HF: `<`, so that T * T == top_k raises in argpartition (kth out of bounds)
        order = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, top_k)[0:top_k]
        order = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    ok = allowed.copy()
    ok[0] = True  # HF's quirk: np.isin(..., mask.nonzero()) also matches the row indices, all 0 (BERT: [CLS])
    keep = ok[starts] & ok[ends]
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def word_char_spans(word_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per token, the character span of its whole word within this window (``Encoding.word_to_chars``).

    A word's span runs from its first token's start to its last token's end, among the window's tokens
    (a word cut by the window's edge is cut too). Tokens with ``word_ids`` -1 get -1.

    >>> word_char_spans(np.array([-1, 0, 0, 1, -1]), np.array([0, 0, 3, 6, 0]), np.array([0, 3, 5, 9, 0]))
    (array([-1,  0,  0,  6, -1]), array([-1,  5,  5,  9, -1]))
    """
    word_ids, starts, ends = np.asarray(word_ids), np.asarray(starts), np.asarray(ends)
    word_starts = np.full(word_ids.shape, -1, dtype=np.int64)
    word_ends = np.full(word_ids.shape, -1, dtype=np.int64)
    positions = np.flatnonzero(word_ids >= 0)
    if positions.size:
        ids = word_ids[positions]
        unique, first = np.unique(ids, return_index=True)
        last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]
        which = np.searchsorted(unique, ids)
        word_starts[positions] = starts[positions[first[which]]]
        word_ends[positions] = ends[positions[last[which]]]
    return word_starts, word_ends


def span_chars(window: QAWindow, s: np.ndarray, e: np.ndarray, align_to_words: bool,
               words: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Character ``start``/``end`` of token spans (HF's ``get_indices``); ``words`` is :func:`word_char_spans`."""
    starts, ends = np.asarray(window.starts)[s], np.asarray(window.ends)[e]
    if not align_to_words:
        return starts, ends
    word_starts, word_ends = words if words is not None else word_char_spans(window.word_ids, window.starts,
                                                                            window.ends)
    in_words = (word_starts[s] >= 0) & (word_ends[e] >= 0)  # else HF's except: the tokens' own offsets
    return np.where(in_words, word_starts[s], starts), np.where(in_words, word_ends[e], ends)


def answer_question(windows: list[QAWindow], context: str, *, top_k: int = 1, max_answer_len: int = 15,
                    handle_impossible_answer: bool = False, align_to_words: bool = True) -> list[dict]:
    """HF's answers ``{"score", "start", "end", "answer"}`` for one question over its windows, best first.

    ``answer`` is ``context[start:end]``. Returns a list of at most ``top_k`` answers (HF returns the dict
    itself when there is one).
    """
    top_k, max_answer_len = check_top_k(top_k), check_max_answer_len(max_answer_len)
    if not windows:
        raise InputError("answer_question: no windows (the tokenizer gives at least one per question)")
    candidates = top_k * 2 + 10 if align_to_words else top_k  # HF: some may merge when aligned to words
    min_null_score = NO_NULL_SCORE
    answers: list[dict] = []
    by_text: dict[str, dict] = {}  # HF's get_answer: the first answer with the same lower-cased text
    for window in windows:
        start, end, null_score = span_probabilities(window)
        if handle_impossible_answer:
            min_null_score = min(min_null_score, null_score)
        s, e, scores = best_spans(start, end, window.allowed, candidates, max_answer_len)
        char_starts, char_ends = span_chars(window, s, e, align_to_words)
        for a, b, score in zip(char_starts.tolist(), char_ends.tolist(), scores.tolist()):
            text = context[a:b]
            known = by_text.get(text.lower())
            if known is not None:
                known["score"] += score
            else:
                answer = {"score": score, "start": a, "end": b, "answer": text}
                answers.append(answer)
                by_text[text.lower()] = answer
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
