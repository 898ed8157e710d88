"""The label vocabulary of a task: names ↔ ids, label encoding, and checks against a checkpoint's head.

Example:
    >>> from kbert.data.examples import RawExample
    >>> examples = [RawExample("fine", label="positive", where="train.csv:2"),
    ...             RawExample("awful", label="negative", where="train.csv:3")]
    >>> labels = LabelSet.infer(examples, "class")
    >>> labels.names, labels.problem_type
    (('negative', 'positive'), 'single_label_classification')
    >>> labels.encode(examples)
    array([1, 0], dtype=int32)
    >>> labels.encode([RawExample("meh", label="postive", where="train.csv:17")])
    Traceback (most recent call last):
    ...
    kbert.errors.DataError: train.csv:17: label 'postive' is not one of ['negative', 'positive']
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from kbert.data.examples import RawExample
from kbert.errors import DataError, DataWarning
from kbert.hints import hint

KINDS = ("class", "multi_label", "regression")
PROBLEM_TYPES = {"class": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}
REGRESSION_NAMES = ("LABEL_0",)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def sort_names(names: Iterable[str]) -> tuple[str, ...]:
    """Numeric-looking names first, by value ("2" before "10"), then the others in code-point order.

    >>> sort_names(["10", "b", "2", "a", "-1.5"])
    ('-1.5', '2', '10', 'a', 'b')
    """
    return tuple(sorted(set(names), key=lambda n: (0, float(n), n) if _NUMBER.fullmatch(n) else (1, 0.0, n)))


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """Label names in id order, and what kind of task they belong to (``class``, ``multi_label``, ``regression``)."""

    names: tuple[str, ...]
    kind: str = "class"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"unknown label kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        object.__setattr__(self, "names", tuple(self.names))
        if not self.names:
            raise DataError("a label set needs at least one label name")
        bad = [n for n in self.names if not isinstance(n, str)]
        if bad:
            raise DataError(f"label names must be strings, got {bad[0]!r}")
        if len(set(self.names)) != len(self.names):
            twice = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DataError(f"label names must be unique; {_show(twice)} appear more than once")
        if self.kind == "regression" and len(self.names) != 1:
            raise DataError(f"a regression label set has one output, got {len(self.names)} names {_show(self.names)}")

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def infer(cls, examples: Sequence[RawExample], kind: str) -> LabelSet:
        """The labels that occur in ``examples``, sorted (see :func:`sort_names`); regression → ``LABEL_0``."""
        if kind not in KINDS:
            raise DataError(f"unknown label kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not examples:
            raise DataError("no examples to infer the labels from")
        seen: set[str] = set()
        for i, example in enumerate(examples):
            where, label = _where(example, i), example.label
            if label is None:
                raise DataError(f"{where}: missing label")
            if kind == "regression":
                _number(label, where)
            elif kind == "multi_label":
                seen.update(_names_of(label, where))
            else:
                seen.add(_class_name(label, where))
        if kind == "regression":
            return cls(REGRESSION_NAMES, kind)
        if not seen:
            raise DataError(f"no label occurs in the {len(examples)} examples")
        if kind == "class" and len(seen) < 2:
            raise DataError(f"only one class label {next(iter(seen))!r} occurs in the {len(examples)} examples; "
                            f"a classifier needs at least two")
        return cls(sort_names(seen), kind)

    @classmethod
    def from_id2label(cls, id2label: Mapping, kind: str = "class") -> LabelSet:
        """From a ``config.json`` ``id2label`` (keys may be ints or their strings, as JSON stores them).

        >>> LabelSet.from_id2label({"1": "positive", "0": "negative"}).names
        ('negative', 'positive')
        """
        ids = {}
        for key, name in id2label.items():
            if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
                raise DataError(f"id2label keys must be label ids 0, 1, ..., got {key!r}")
            ids[int(key)] = name
        if sorted(ids) != list(range(len(ids))):
            raise DataError(f"id2label keys must be 0..{len(ids) - 1}, got {sorted(ids)}")
        return cls(tuple(ids[i] for i in range(len(ids))), kind)

    # --- views -----------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def problem_type(self) -> str:
        """The Hugging Face ``config.problem_type`` for this kind of label."""
        return PROBLEM_TYPES[self.kind]

    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    # --- encoding --------------------------------------------------------------------------------
    def encode(self, examples: Sequence[RawExample]) -> np.ndarray:
        """Targets for ``examples``: int32 ids ``(N,)``, float32 multi-hot ``(N, K)`` or float32 values ``(N,)``.

        Raises :class:`DataError` at the first example whose label is missing or not in the set.
        """
        if self.kind == "regression":
            values = [_number(_present(ex, i), _where(ex, i)) for i, ex in enumerate(examples)]
            return np.asarray(values, dtype=np.float32).reshape(len(examples))
        ids = self.label2id()

        def lookup(name: str, where: str) -> int:
            if name not in ids:
                raise DataError(f"{where}: label {name!r} is not one of {_show(self.names)}")
            return ids[name]

        if self.kind == "class":
            out = [lookup(_class_name(_present(ex, i), _where(ex, i)), _where(ex, i)) for i, ex in enumerate(examples)]
            return np.asarray(out, dtype=np.int32).reshape(len(examples))
        hot = np.zeros((len(examples), len(self.names)), dtype=np.float32)
        for i, example in enumerate(examples):
            where = _where(example, i)
            for name in _names_of(_present(example, i), where):
                hot[i, lookup(name, where)] = 1.0
        return hot

    # --- checkpoints -----------------------------------------------------------------------------
    def check_compatible(self, other_names: Iterable[str] | LabelSet, where: str) -> None:
        """Check that data labels ``other_names`` fit this (a checkpoint head's) label set.

        Every data label must be one of the head's names (a subset is fine: ids follow the head's
        order). ``where`` names the checkpoint. A :class:`LabelSet` may be passed to compare kinds too.

        >>> head = LabelSet(("negative", "positive"))
        >>> head.check_compatible(["positive"], "ckpt")
        >>> head.check_compatible(["neg", "positive"], "ckpt")
        Traceback (most recent call last):
        ...
        kbert.errors.DataError: ckpt: the checkpoint's head predicts ['negative', 'positive'], but the data has
        labels ['neg', 'positive']: 'neg' is not among the head's labels; train a new head to use other labels
        """
        if isinstance(other_names, LabelSet):
            other_kind, names = other_names.kind, other_names.names
            if other_kind != self.kind:
                raise DataError(f"{where}: the checkpoint's head is for {self.problem_type} "
                                f"({self.num_labels} outputs), but the data is for {other_names.problem_type}; "
                                f"train a new head for this task")
        else:
            names = sort_names(other_names)
        if self.kind == "regression":
            if len(names) != 1:
                raise DataError(f"{where}: the checkpoint's head is a regression head (1 output), but the data has "
                                f"{len(names)} labels {_show(names)}")
            return
        unknown = [n for n in names if n not in self.names]
        if unknown:
            generic = all(n == f"LABEL_{i}" for i, n in enumerate(self.names))
            note = (" (the head's names are the generic LABEL_i; its config has no real id2label)"
                    if generic else "")
            raise DataError(f"{where}: the checkpoint's head predicts {_show(self.names)}, but the data has labels "
                            f"{_show(names)}: {', '.join(map(repr, unknown[:5]))}"
                            f"{' and others' if len(unknown) > 5 else ''} "
                            f"{'is' if len(unknown) == 1 else 'are'} not among the head's labels{note}; "
                            f"train a new head to use other labels")


# --- label counts --------------------------------------------------------------------------------
def check_label_counts(occurrences: Iterable[tuple[str, str]], *, report: bool = True,
                       strict: bool = False) -> dict[str, int]:
    """How often each label occurs in ``(label, where)`` pairs, in :func:`sort_names` order.

    Meant for label sets inferred from the data: a label that occurs exactly once is most likely a typo
    (``postive``), so with ``report`` it is named with where it occurs, as a
    :class:`~kbert.errors.DataWarning`, or a :class:`DataError` when ``strict``.

    >>> check_label_counts([("0", "t.tsv:2"), ("1", "t.tsv:3"), ("0", "t.tsv:4"), ("1", "t.tsv:5")])
    {'0': 2, '1': 2}
    >>> check_label_counts([("0", "t.tsv:2"), ("0", "t.tsv:3"), ("postive", "t.tsv:4")], strict=True)
    Traceback (most recent call last):
    ...
    kbert.errors.DataError: t.tsv:4: label 'postive' occurs only once in the training data (labels: {'0': 2, 'postive': 1}); fix the row or give the label set with labels=
    """
    counts: Counter = Counter()
    first: dict[str, str] = {}
    for name, where in occurrences:
        counts[name] += 1
        first.setdefault(name, where)
    return check_counts(counts, first, report=report, strict=strict)


def check_counts(counts: Mapping[str, int], first: Mapping[str, str], *, report: bool = True,
                 strict: bool = False) -> dict[str, int]:
    """:func:`check_label_counts` of counts already made (``first``: where each label first occurs), as a
    streaming pass over data too large to hold keeps them."""
    ordered = {name: counts[name] for name in sort_names(counts)}
    for name, count in ordered.items():
        if report and count == 1 and len(ordered) > 1:
            message = (f"{first[name]}: label {name!r} occurs only once in the training data (labels: {ordered}); "
                       f"fix the row{hint(' or give the label set with {}', 'labels')}")
            if strict:
                raise DataError(message)
            warnings.warn(message, DataWarning, stacklevel=2)
    return ordered


def label_occurrences(examples: Sequence[RawExample], kind: str) -> list[tuple[str, str]]:
    """``(label, where)`` for every class label of ``examples`` (each name of a multi_label row); none for regression."""
    if kind == "regression":
        return []
    pairs = []
    for i, example in enumerate(examples):
        where = _where(example, i)
        label = _present(example, i)
        names = _names_of(label, where) if kind == "multi_label" else (_class_name(label, where),)
        pairs.extend((name, where) for name in names)
    return pairs


# --- helpers -------------------------------------------------------------------------------------
def rename_labels(examples: Sequence[RawExample], names: Mapping[str, str]) -> list[RawExample]:
    """Examples with their class labels replaced by ``names[label]`` (e.g. RTE's ``0`` → ``entailment``).

    Every label must have a name: a missing one is an error naming the example.

    >>> rename_labels([RawExample("a", label="0", where="rte.tsv:2")], {"0": "entailment", "1": "not_entailment"})
    [RawExample(text='a', text_pair=None, label='entailment', where='rte.tsv:2')]
    """
    def rename(label, where):
        if isinstance(label, tuple):
            return tuple(rename(one, where) for one in label)
        if label is None:
            return None
        if str(label) not in names:
            raise DataError(f"{where}: label {label!r} has no name in label_names {dict(names)}")
        return names[str(label)]

    return [dataclasses.replace(e, label=rename(e.label, _where(e, i))) for i, e in enumerate(examples)]


def _show(names: Sequence[str], limit: int = 20) -> str:
    """``['a', 'b']``; long lists are cut: ``['a', ..., 't'] (57 labels)``."""
    names = list(names)
    if len(names) <= limit:
        return repr(names)
    head = ", ".join(map(repr, names[:limit]))
    return f"[{head}, ...] ({len(names)} labels)"


def _where(example: RawExample, i: int) -> str:
    return example.where or f"example[{i}]"


def _present(example: RawExample, i: int):
    if example.label is None:
        raise DataError(f"{_where(example, i)}: missing label")
    return example.label


def _class_name(label, where: str) -> str:
    if not isinstance(label, str):
        raise DataError(f"{where}: a class label must be a string, got {type(label).__name__} {label!r:.40}")
    return label


def _names_of(label, where: str) -> tuple[str, ...]:
    if not isinstance(label, (tuple, list)):
        raise DataError(f"{where}: a multi_label label must be a tuple of names, got {type(label).__name__} "
                        f"{label!r:.40}")
    return tuple(_class_name(name, where) for name in label)


def _number(label, where: str) -> float:
    if isinstance(label, bool) or not isinstance(label, numbers.Real) or not math.isfinite(label):
        raise DataError(f"{where}: a regression label must be a finite number, got {label!r:.40}")
    return float(label)
