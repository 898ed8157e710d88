"""Scores of question answering: window logits ─► one answer per question ─► official SQuAD EM / F1.

Answers are chosen as transformers' ``examples/pytorch/question-answering/utils_qa.py``
(``postprocess_qa_predictions``, what ``run_qa.py`` reports) chooses them, so that kbert's numbers
and Trainer's are comparable: per window the ``n_best_size`` best starts and ends, spans inside the
context of at most ``max_answer_len`` tokens scored by start + end logit, pooled over the windows of
a question; with SQuAD v2.0 the null answer's score is the smallest ``start[CLS] + end[CLS]`` of the
windows, and the question gets no answer when that beats the best span by more than
``null_score_diff_threshold``. (The pipeline's answers differ on purpose: it takes a softmax per
window first, as transformers' pipeline does; see :mod:`~kbert.tasks.question_answering.postprocess`.)

Example:
    >>> import numpy as np
    >>> context = "Sinan lives in California."
    >>> window = dict(start_logits=np.array([0, 0, 0, 0, 5, 0], np.float32),
    ...               end_logits=np.array([0, 0, 0, 0, 5, 0], np.float32),
    ...               starts=np.array([0, 0, 6, 12, 15, 25]), ends=np.array([0, 5, 11, 14, 25, 26]),
    ...               sequence_ids=np.array([-1, 1, 1, 1, 1, 1]))
    >>> best_answer([window], context, version_2=False)
    ('California', 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kbert.tasks.base import EvaluationReport
from kbert.tokenizer.subword import SECOND

N_BEST_SIZE = 20  # run_qa.py's default


def best_answer(windows: Sequence[dict], context: str, *, version_2: bool, n_best_size: int = N_BEST_SIZE,
                max_answer_len: int = 30, null_score_diff_threshold: float = 0.0) -> tuple[str, float]:
    """The answer text of one question and its null-score difference (0.0 without ``version_2``).

    Each window is a dict of ``start_logits``, ``end_logits``, ``starts``, ``ends`` (character
    offsets into the context), ``sequence_ids`` (``1`` for context tokens), all ``(T,)``.
    """
    scores, begins, stops, start_logit, end_logit = [], [], [], [], []
    null = None  # (score, start logit, end logit) of the window with the smallest null score
    for w in windows:
        start, end = np.asarray(w["start_logits"]), np.asarray(w["end_logits"])
        context_token = np.asarray(w["sequence_ids"]) == SECOND
        feature_null = start[0] + end[0]
        if null is None or null[0] > feature_null:
            null = (feature_null, start[0], end[0])
        best_starts = np.argsort(start)[-1:-n_best_size - 1:-1]
        best_ends = np.argsort(end)[-1:-n_best_size - 1:-1]
        s, e = np.meshgrid(best_starts, best_ends, indexing="ij")  # utils_qa's loops: starts outer, ends inner
        s, e = s.ravel(), e.ravel()
        keep = context_token[s] & context_token[e] & (e >= s) & (e - s + 1 <= max_answer_len)
        s, e = s[keep], e[keep]
        scores.append(start[s] + end[e])
        start_logit.append(start[s])
        end_logit.append(end[e])
        begins.append(np.asarray(w["starts"])[s])
        stops.append(np.asarray(w["ends"])[e])
    scores, begins, stops = np.concatenate(scores), np.concatenate(begins), np.concatenate(stops)
    start_logit, end_logit = np.concatenate(start_logit), np.concatenate(end_logit)
    candidates = [(float(scores[i]), context[begins[i]:stops[i]], float(start_logit[i]), float(end_logit[i]), False)
                  for i in range(len(scores))]
    if version_2 and null is not None:
        candidates.append((float(null[0]), "", float(null[1]), float(null[2]), True))
    # sorted() is stable: equal scores keep the order utils_qa appends them in
    ranked = sorted(candidates, key=lambda c: c[0], reverse=True)[:n_best_size]
    if not version_2:
        return (ranked[0][1] if ranked else "empty"), 0.0
    if not any(c[4] for c in ranked):
        ranked.append((float(null[0]), "", float(null[1]), float(null[2]), True))
    if len(ranked) == 1 and ranked[0][1] == "":
        ranked.insert(0, (0.0, "empty", 0.0, 0.0, False))  # utils_qa's placeholder when nothing else is left
    best = next(c for c in ranked if c[1] != "")
    score_diff = float(null[0]) - best[2] - best[3]
    return ("" if score_diff > null_score_diff_threshold else best[1]), score_diff


def window_logits(model, dataset, lengths: Sequence[int]) -> list[np.ndarray]:
    """``(T, 2)`` logits of every window of ``dataset`` (in order, unshuffled), padding cut off."""
    from kbert.batching.inference import predict_rows

    batches, _ = predict_rows(model, dataset)
    rows = [row for batch in batches for row in batch]
    return [row[:n] for row, n in zip(rows, lengths)]


def score_squad(model, windows, examples, *, version_2: bool, max_answer_len: int = 30,
                null_score_diff_threshold: float = 0.0, n_best_size: int = N_BEST_SIZE) -> EvaluationReport:
    """Official SQuAD metrics of ``model`` on evaluation windows (:func:`training_data.evaluation_windows`).

    ``metrics``: ``exact_match`` and ``f1`` (and with v2.0 the HasAns / NoAns split and the best
    null-score threshold, from the null-score differences), ``loss`` (the span loss of the windows) and
    ``examples``. ``details`` keeps the predictions and null-score differences by question id.
    """
    from kbert.tasks.question_answering.squad_metrics import qa_metrics

    features = windows.windows
    logits = window_logits(model, windows.data.dataset, features.lengths)
    by_example: list[list[dict]] = [[] for _ in examples]
    for k, row in enumerate(logits):
        by_example[features.example_index[k]].append(
            {"start_logits": row[:, 0], "end_logits": row[:, 1], "starts": features.starts[k],
             "ends": features.ends[k], "sequence_ids": features.sequence_ids[k]})
    predictions, null_diffs = {}, {}
    for example, example_windows in zip(examples, by_example):
        text, diff = best_answer(example_windows, example.context, version_2=version_2, n_best_size=n_best_size,
                                 max_answer_len=max_answer_len, null_score_diff_threshold=null_score_diff_threshold)
        predictions[example.id], null_diffs[example.id] = text, diff
    metrics = qa_metrics(examples, predictions, null_scores=null_diffs if version_2 else None, version_2=version_2)
    metrics["loss"] = span_loss(logits, features.start_positions, features.end_positions)
    metrics["examples"] = len(examples)
    return EvaluationReport(metrics, {"predictions": predictions, "null_score_diffs": null_diffs})


def span_loss(logits: Sequence[np.ndarray], start_positions, end_positions) -> float:
    """Mean over windows of (start + end cross-entropy) / 2, each window over its own tokens."""
    total = 0.0
    for row, s, e in zip(logits, start_positions, end_positions):
        x = np.asarray(row, np.float64)
        log_p = x - x.max(axis=0) - np.log(np.exp(x - x.max(axis=0)).sum(axis=0))
        total -= (log_p[int(s), 0] + log_p[int(e), 1]) / 2
    return total / max(len(logits), 1)
