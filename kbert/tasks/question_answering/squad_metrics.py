"""The official SQuAD v1.1 and v2.0 metrics: exact match and token F1, HasAns / NoAns, the best no-answer threshold.

Every number is the one the official evaluation scripts print (``evaluate-v1.1.py``,
``evaluate-v2.0.py``), summed in the same order, so they agree to the last bit:

* an answer is normalised by lower-casing, dropping ASCII punctuation, the articles *a/an/the*
  and extra whitespace; exact match compares normalised strings, F1 their whitespace tokens;
  a question scores the best over its gold answers; percentages are ``100 * mean``.
* v1.1: a question without a prediction scores 0 (and still counts in the total); a question
  without a gold answer cannot be scored (the script fails on it).
* v2.0: gold answers that normalise to ``""`` are dropped and ``[""]`` is used when none are left
  (so an impossible question is right when the prediction normalises to ``""``); F1 of an empty
  answer is 1 when both are empty, else 0 (v1.1 gives 0 to empty-vs-empty); with no-answer
  probabilities a question whose probability is above ``na_prob_thresh`` counts as answered
  ``""``, and ``best_*`` is the best score over thresholds as ``find_best_thresh`` walks them.

Why kbert's own code: no library among kbert's dependencies ships these definitions; Hugging Face's
``evaluate`` fetches the scripts over the network at run time, and transformers' copy differs:
where transformers' ``data/metrics/squad_metrics.py`` (``squad_evaluate``) differs, kbert follows
the official scripts: transformers scores v1.1 data with the v2.0 rules (gold answers normalising
to ``""`` dropped, a missing prediction left out of the total instead of scoring 0) and always
adds ``best_*`` keys (threshold 0.0 from all-zero probabilities) when no probabilities are given.

Example:
    >>> from kbert.tasks.question_answering.examples import QAExample
    >>> normalize_answer("The  Eiffel-Tower!"), f1("the Eiffel Tower in Paris", "Eiffel Tower")
    ('eiffeltower', 0.6666666666666666)
    >>> gold = [QAExample("q1", "Where?", "In Paris.", ("Paris",), (3,)), QAExample("q2", "Who?", "Nobody.")]
    >>> scores = qa_metrics(gold, {"q1": "in Paris", "q2": ""}, version_2=True)
    >>> scores["exact_match"], round(scores["f1"], 2), scores["HasAns_f1"], scores["NoAns_exact"]
    (50.0, 83.33, 66.66666666666666, 100.0)
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Mapping, Sequence

from kbert.errors import InputError
from kbert.tasks.question_answering.examples import QAExample

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)

#: The official v2.0 script's keys ─► kbert's names (``qa_metrics``).
# kbert evaluate's keys: the official v2.0 script's, except its headline "exact" (exact_match, as v1.1 names it)
# and the counts ("total": examples, as every kbert task counts them).
KBERT_NAMES = {"exact": "exact_match", "f1": "f1", "total": "examples",
               "HasAns_exact": "HasAns_exact", "HasAns_f1": "HasAns_f1", "HasAns_total": "HasAns_examples",
               "NoAns_exact": "NoAns_exact", "NoAns_f1": "NoAns_f1", "NoAns_total": "NoAns_examples",
               "best_exact": "best_exact", "best_exact_thresh": "best_exact_thresh",
               "best_f1": "best_f1", "best_f1_thresh": "best_f1_thresh"}


# --- one answer ------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, then the articles a/an/the, then collapse whitespace (the official order).

    >>> normalize_answer("  An Apple, a day... "), normalize_answer("theatre"), normalize_answer("The!")
    ('apple day', 'theatre', '')
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> int:
    """1 when both normalise to the same string, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str, *, version_2: bool = True) -> float:
    """Token F1 of the normalised answers; with ``version_2`` an empty one scores 1 against an empty one.

    >>> f1("", ""), f1("", "", version_2=False), f1("a cat", "the dog")
    (1, 0, 0)
    """
    predicted, reference = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if version_2 and (not predicted or not reference):
        return int(predicted == reference)
    same = sum((collections.Counter(predicted) & collections.Counter(reference)).values())
    if same == 0:
        return 0
    precision, recall = 1.0 * same / len(predicted), 1.0 * same / len(reference)
    return (2 * precision * recall) / (precision + recall)


# --- a data set ------------------------------------------------------------------------------------
def squad_v1_scores(examples: Sequence[QAExample], predictions: Mapping[str, str]) -> dict:
    """``evaluate-v1.1.py``'s ``{"exact_match", "f1"}`` (percentages) plus ``"examples"`` (questions scored).

    A question missing from ``predictions`` scores 0; extra predictions are ignored.
    """
    _check_predictions(examples, predictions, every=False)
    exact = total_f1 = 0
    for example in examples:
        if not example.answers:
            raise InputError(f"question {example.id!r} has no gold answer: SQuAD v1.1 scores need one "
                             f"(score SQuAD v2.0 data with version_2=True)")
        if example.id not in predictions:
            continue
        prediction = predictions[example.id]
        exact += max(exact_match(prediction, gold) for gold in example.answers)
        total_f1 += max(f1(prediction, gold, version_2=False) for gold in example.answers)
    total = len(examples)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * total_f1 / total, "examples": total}


def squad_v2_scores(examples: Sequence[QAExample], predictions: Mapping[str, str],
                    na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict:
    """``evaluate-v2.0.py``'s output dict: ``exact, f1, total``, ``HasAns_*`` / ``NoAns_*`` when there are such
    questions, and with ``na_probs`` (question id ─► probability of no answer) ``best_exact(_thresh)``,
    ``best_f1(_thresh)``.

    Every question needs a prediction (the official script fails without one), and with ``na_probs`` a
    probability; ``""`` predicts no answer. ``best_*`` walks ``na_probs`` in ascending order (ties in
    the mapping's order) as the script does.
    """
    _check_predictions(examples, predictions, every=True)
    probs = dict.fromkeys(predictions, 0.0) if na_probs is None else na_probs
    missing = [e.id for e in examples if e.id not in probs]
    if missing:
        raise InputError(f"{len(missing)} questions have no no-answer probability (first: id {missing[0]!r})")
    has_answer = {e.id: bool(e.answers) for e in examples}
    exact_raw, f1_raw = {}, {}
    for example in examples:
        golds = [a for a in example.answers if normalize_answer(a)] or [""]
        prediction = predictions[example.id]
        exact_raw[example.id] = max(exact_match(prediction, gold) for gold in golds)
        f1_raw[example.id] = max(f1(prediction, gold) for gold in golds)
    exact_thresh = _apply_threshold(exact_raw, probs, has_answer, na_prob_thresh)
    f1_thresh = _apply_threshold(f1_raw, probs, has_answer, na_prob_thresh)
    scores = _summary(exact_thresh, f1_thresh, list(exact_thresh))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == wanted]
        if ids:
            scores.update({f"{prefix}_{k}": v for k, v in _summary(exact_thresh, f1_thresh, ids).items()})
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            scores[f"best_{name}"], scores[f"best_{name}_thresh"] = _best_threshold(predictions, raw, probs,
                                                                                    has_answer)
    return scores


def qa_metrics(examples: Sequence[QAExample], predictions: Mapping[str, str],
               null_scores: Mapping[str, float] | None = None, version_2: bool = False) -> dict:
    """The official scores under kbert's names: ``exact_match``, ``f1``, ``examples``; with ``version_2`` also
    ``HasAns_*`` / ``NoAns_*`` (``exact``, ``f1``, ``examples``) and, given ``null_scores``,
    ``best_exact(_thresh)`` / ``best_f1(_thresh)`` (the official script's names).

    ``predictions`` already hold the no-answer decisions (``""``), so ``null_scores`` (question id ─►
    a score that grows with "no answer", e.g. the null-score difference of :mod:`.scoring`) only
    feed the threshold search: ``best_f1_thresh`` is the ``null_score_diff_threshold`` under
    which answering exactly the questions whose score is at most it scores ``best_f1``.
    """
    if not version_2:
        return squad_v1_scores(examples, predictions)
    official = squad_v2_scores(examples, predictions, null_scores, na_prob_thresh=math.inf)
    return {KBERT_NAMES[key]: value for key, value in official.items()}


# --- helpers ---------------------------------------------------------------------------------------
def _check_predictions(examples: Sequence[QAExample], predictions: Mapping[str, str], every: bool) -> None:
    if not examples:
        raise InputError("no questions to score")
    if not isinstance(predictions, Mapping):
        raise InputError(f"predictions must map question ids to answer texts, got {type(predictions).__name__}")
    for example in examples:
        if example.id not in predictions:
            if every:
                count = sum(1 for e in examples if e.id not in predictions)
                raise InputError(f"{count} questions have no prediction (first: id {example.id!r}); SQuAD v2.0 "
                                 f"scores every question (predict \"\" for no answer)")
        elif not isinstance(predictions[example.id], str):
            value = predictions[example.id]
            raise InputError(f"question {example.id!r}: the prediction must be a str, got "
                             f"{type(value).__name__} {value!r:.60}")


def _apply_threshold(scores: dict, na_probs: Mapping[str, float], has_answer: dict, thresh: float) -> dict:
    """A question whose no-answer probability is above ``thresh`` is answered "": right iff it has no answer."""
    return {qid: float(not has_answer[qid]) if na_probs[qid] > thresh else s for qid, s in scores.items()}


def _summary(exact_scores: dict, f1_scores: dict, ids: list) -> dict:
    total = len(ids)
    return {"exact": 100.0 * sum(exact_scores[k] for k in ids) / total,
            "f1": 100.0 * sum(f1_scores[k] for k in ids) / total, "total": total}


def _best_threshold(predictions: Mapping[str, str], scores: dict, na_probs: Mapping[str, float],
                    has_answer: dict) -> tuple[float, float]:
    """``find_best_thresh``: start with every question answered "", then answer them by rising probability.

    Answering a question with an answer adds its score; answering one without costs 1 if the
    prediction is a non-empty string (even one that normalises to "", as the script has it).
    """
    score = best = sum(1 for has in has_answer.values() if not has)
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        score += scores[qid] if has_answer[qid] else (-1 if predictions[qid] else 0)
        if score > best:
            best, best_thresh = score, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh
