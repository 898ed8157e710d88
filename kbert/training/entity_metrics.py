"""Sequence-labelling metrics: entity-level P/R/F1 exactly as ``seqeval`` 1.2.2 computes them, and tag accuracy.

Token classification (NER, POS) is scored on tag strings, one list of tags per sentence. For entities,
kbert reproduces ``seqeval``'s *default* mode (``seqeval.metrics.f1_score(y_true, y_pred)``, no
``mode="strict"``), which is the CoNLL ``conlleval`` chunking, without depending on seqeval:

* A tag is read as prefix + type: the prefix is its first character and the type everything after
  the first ``"-"`` (``"B-creative-work"`` → ``B`` / ``creative-work``). A tag with no type (``"O"``,
  ``"B"``) gets the type ``"_"``. With ``suffix=True`` the prefix is the last character and the type
  everything before the last ``"-"`` (``"PER-B"``). Tags are taken as they are, never rejected:
  ``"PER"`` reads as prefix ``P``, type ``ER``, just as seqeval reads it.
* A chunk ends before a tag when the previous tag was ``E``/``S``, when ``B``/``I`` is followed by
  ``B``/``S``/``O``, or when the type changes after anything but ``O`` or ``"."``. A chunk starts at
  ``B``/``S``, at ``I``/``E`` after ``O``, ``E`` or ``S``, and at any tag but ``O`` or ``"."`` whose
  type differs from the previous tag's. So IOB1, IOB2, IOE and IOBES all work, and an ``I-`` that
  follows ``O`` or another type opens a chunk.
* Sentences are joined with one ``"O"`` between them and chunked as one sequence, as seqeval does;
  entity positions are offsets into that joined sequence.
* A predicted entity is correct when its type, start and end all equal a true entity's. Precision
  is ``correct / predicted``, recall ``correct / true``, F1 ``2·P·R / (P + R)``; a ratio with a zero
  denominator is 0.0, seqeval's ``zero_division="warn"`` value (seqeval also warns; kbert stays
  silent). Micro scores pool the counts of all types; macro scores are the unweighted mean over the
  types found in ``y_true`` or ``y_pred`` (``nan`` when there are none, as in seqeval); weighted
  scores weight each type by its support (all 0.0 when there is no true entity).

Sentence counts and per-sentence lengths must agree, else :class:`kbert.errors.InputError` (a
``ValueError``) names the first sentence that differs.

Example:
    >>> from kbert.training.entity_metrics import entity_scores, get_entities
    >>> get_entities(["B-PER", "I-PER", "O", "I-LOC", "B-creative-work"])
    [('PER', 0, 1), ('LOC', 3, 3), ('creative-work', 4, 4)]
    >>> y_true = [["O", "B-MISC", "I-MISC", "B-MISC", "O"], ["B-PER", "I-PER", "O"]]
    >>> y_pred = [["O", "B-MISC", "I-MISC", "B-MISC", "I-MISC"], ["B-PER", "I-PER", "O"]]
    >>> scores = entity_scores(y_true, y_pred)
    >>> round(scores["f1"], 6), scores["macro_f1"], scores["true_entities"], scores["predicted_entities"]
    (0.666667, 0.75, 3, 3)
    >>> scores["per_type"]["MISC"]
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2}
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kbert.errors import InputError
from kbert.training.metrics import macro_f1

__all__ = ["entity_scores", "get_entities", "tagging_metrics", "token_accuracy"]

KINDS = ("entities", "tags")


# --- input checks --------------------------------------------------------------------------------
def _sentence(tags, name: str, index: int) -> list[str]:
    if isinstance(tags, (str, bytes)):
        raise InputError(f"{name}[{index}]: expected a sequence of tag strings, got the string {tags!r}")
    tags = list(tags)
    for position, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag:
            raise InputError(f"{name}[{index}][{position}]: a tag must be a non-empty string, got {tag!r}")
    return tags


def _check_pair(y_true, y_pred) -> tuple[list[list[str]], list[list[str]]]:
    """Both inputs as lists of tag lists, with equal sentence counts and lengths."""
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        if isinstance(value, (str, bytes)):
            raise InputError(f"{name}: expected a sequence of sentences (lists of tags), got a string")
    true = [_sentence(tags, "y_true", i) for i, tags in enumerate(y_true)]
    pred = [_sentence(tags, "y_pred", i) for i, tags in enumerate(y_pred)]
    if len(true) != len(pred):
        raise InputError(f"y_true has {len(true)} sentences but y_pred has {len(pred)}")
    for i, (t, p) in enumerate(zip(true, pred)):
        if len(t) != len(p):
            raise InputError(f"sentence {i}: y_true has {len(t)} tags but y_pred has {len(p)}")
    return true, pred


# --- chunking ------------------------------------------------------------------------------------
def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk ended between the previous tag and this one (seqeval's ``end_of_chunk``)."""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk starts at this tag (seqeval's ``start_of_chunk``)."""
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def _split(tag: str, suffix: bool) -> tuple[str, str]:
    if suffix:
        return tag[-1], tag[:-1].rsplit("-", maxsplit=1)[0] or "_"
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]], *, suffix: bool = False
                 ) -> list[tuple[str, int, int]]:
    """The chunks of a tag sequence as ``(type, start, end)`` with ``end`` inclusive, in order.

    A list of sentences is joined with one ``"O"`` between sentences first, so offsets count that
    separator (what ``seqeval.metrics.sequence_labeling.get_entities`` does with nested lists).
    ``suffix=True`` reads tags like ``"PER-B"``.

    >>> get_entities(["B-PER", "I-PER", "I-LOC", "O", "S-ORG", "E-ORG"])
    [('PER', 0, 1), ('LOC', 2, 2), ('ORG', 4, 4), ('ORG', 5, 5)]
    >>> get_entities([["B-PER"], ["I-PER", "O"]])        # an "O" joins the two sentences
    [('PER', 0, 0), ('PER', 2, 2)]
    >>> get_entities(["PER-B", "PER-I", "O"], suffix=True)
    [('PER', 0, 1)]
    """
    if isinstance(tags, (str, bytes)):
        raise InputError(f"expected a sequence of tag strings, got the string {tags!r}")
    tags = list(tags)
    if any(not isinstance(tag, str) for tag in tags):
        flat: list[str] = []
        for i, sentence in enumerate(tags):
            flat.extend(_sentence(sentence, "tags", i))
            flat.append("O")
        tags = flat
    else:
        tags = _sentence(tags, "tags", 0) if tags else []
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate(tags + ["O"]):
        tag, type_ = _split(chunk, suffix)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


# --- scores --------------------------------------------------------------------------------------
def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` elementwise, 0.0 where the denominator is 0 (seqeval's default)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def _prf(tp: np.ndarray, pred: np.ndarray, true: np.ndarray):
    precision, recall = _divide(tp, pred), _divide(tp, true)
    denom = precision + recall
    f1 = np.divide(2.0 * precision * recall, denom, out=np.zeros_like(denom), where=denom != 0)
    return precision, recall, f1


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], *,
                  suffix: bool = False) -> dict:
    """Entity-level scores of predicted tags against true tags, as seqeval's default mode.

    Returns micro ``precision`` / ``recall`` / ``f1`` (seqeval's ``precision_score``, ``recall_score``,
    ``f1_score``), the ``macro_*`` and ``weighted_*`` averages of ``classification_report``, the
    counts ``true_entities``, ``predicted_entities`` and ``correct_entities``, and ``per_type``:
    ``{type: {"precision", "recall", "f1", "support"}}`` for every type seen in either input, sorted
    by name; ``support`` counts the true entities of the type.

    >>> scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    >>> scores["precision"], scores["recall"], round(scores["f1"], 6), scores["macro_f1"]
    (1.0, 0.5, 0.666667, 0.5)
    >>> scores["per_type"]["LOC"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 1}
    """
    true, pred = _check_pair(y_true, y_pred)
    true_sets: dict[str, set] = {}
    pred_sets: dict[str, set] = {}
    for type_, start, end in get_entities(true, suffix=suffix):
        true_sets.setdefault(type_, set()).add((start, end))
    for type_, start, end in get_entities(pred, suffix=suffix):
        pred_sets.setdefault(type_, set()).add((start, end))
    names = sorted(set(true_sets) | set(pred_sets))
    empty: set = set()
    tp = np.array([len(true_sets.get(n, empty) & pred_sets.get(n, empty)) for n in names], dtype=np.int64)
    n_pred = np.array([len(pred_sets.get(n, empty)) for n in names], dtype=np.int64)
    n_true = np.array([len(true_sets.get(n, empty)) for n in names], dtype=np.int64)

    precision, recall, f1 = _prf(tp, n_pred, n_true)
    micro = _prf(tp.sum(keepdims=True), n_pred.sum(keepdims=True), n_true.sum(keepdims=True))
    if names:
        macro = [float(np.mean(v)) for v in (precision, recall, f1)]
    else:
        macro = [float("nan")] * 3
    if n_true.sum() > 0:
        weighted = [float((v * n_true).sum() / n_true.sum()) for v in (precision, recall, f1)]
    else:
        weighted = [0.0] * 3
    return {
        "precision": float(micro[0][0]),
        "recall": float(micro[1][0]),
        "f1": float(micro[2][0]),
        "macro_precision": macro[0],
        "macro_recall": macro[1],
        "macro_f1": macro[2],
        "weighted_precision": weighted[0],
        "weighted_recall": weighted[1],
        "weighted_f1": weighted[2],
        "true_entities": int(n_true.sum()),
        "predicted_entities": int(n_pred.sum()),
        "correct_entities": int(tp.sum()),
        "per_type": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(n_true[i])}
            for i, name in enumerate(names)
        },
    }


def token_accuracy(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose predicted tag equals the true one (seqeval's ``accuracy_score``).

    Raises :class:`kbert.errors.InputError` when there is no token at all.

    >>> token_accuracy([["B-PER", "I-PER", "O"], ["O"]], [["B-PER", "O", "O"], ["O"]])
    0.75
    """
    true, pred = _check_pair(y_true, y_pred)
    total = sum(len(t) for t in true)
    if total == 0:
        raise InputError("y_true: no tokens; accuracy needs at least one tagged token")
    correct = sum(a == b for t, p in zip(true, pred) for a, b in zip(t, p))
    return correct / total


def tagging_metrics(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], *,
                    kind: str = "entities") -> dict:
    """The headline metrics of a token-classification evaluation (what ``kbert evaluate`` prints).

    * ``kind="entities"`` (NER): ``{"entity_f1", "precision", "recall", "token_accuracy", "per_type"}``,
      the micro entity scores of :func:`entity_scores` plus tag accuracy.
    * ``kind="tags"`` (POS): ``{"accuracy", "macro_f1"}`` over the flattened tags, every distinct tag a
      class; ``macro_f1`` averages over the tags present in ``y_true`` or ``y_pred``, like
      scikit-learn's ``f1_score(average="macro")``.

    >>> tagging_metrics([["DET", "NOUN", "VERB"]], [["DET", "VERB", "VERB"]], kind="tags")
    {'accuracy': 0.6666666666666666, 'macro_f1': 0.5555555555555555}
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "entities":
        scores = entity_scores(y_true, y_pred)
        return {"entity_f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
                "token_accuracy": token_accuracy(y_true, y_pred), "per_type": scores["per_type"]}
    true, pred = _check_pair(y_true, y_pred)
    flat_true = [tag for tags in true for tag in tags]
    flat_pred = [tag for tags in pred for tag in tags]
    if not flat_true:
        raise InputError("y_true: no tokens; tag metrics need at least one tagged token")
    ids = {tag: i for i, tag in enumerate(sorted(set(flat_true) | set(flat_pred)))}
    t = np.array([ids[tag] for tag in flat_true], dtype=np.int64)
    p = np.array([ids[tag] for tag in flat_pred], dtype=np.int64)
    return {"accuracy": float(np.mean(t == p)), "macro_f1": macro_f1(t, p, num_labels=len(ids))}
