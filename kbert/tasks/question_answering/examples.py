"""One SQuAD-style example: a question about a context, with its gold answers (none when impossible).

Readers (:mod:`~kbert.tasks.question_answering.squad_files`) produce these; training features, metrics
and the pipeline consume them.

Example:
    >>> e = QAExample("q1", "Where does Sinan live?", "Sinan lives in California.", ("California",), (15,))
    >>> e.context[e.answer_starts[0]:][:len(e.answers[0])]
    'California'
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class QAExample:
    id: str  # the question id (SQuAD "id"), named in errors and keys of prediction files
    question: str
    context: str
    answers: tuple[str, ...] = ()  # every gold answer text (SQuAD dev sets have several annotators)
    answer_starts: tuple[int, ...] = ()  # character offset of each answer in the context
    is_impossible: bool = False  # SQuAD v2.0: no answer in the context (answers are then empty)
    title: str = ""  # the article's title (SQuAD JSON), for splitting by article
