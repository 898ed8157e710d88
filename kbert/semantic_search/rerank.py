"""Re-rank retrieved documents with a cross-encoder: a text-classification checkpoint that reads (query, document).

A bi-encoder embeds query and document apart, so a search over millions is fast; a cross-encoder reads the two
together (``[CLS] query [SEP] document [SEP]``), which is slower and usually more accurate, so it re-scores only
the bi-encoder's best few (``search_index(..., rerank=...)``). Scores come from kbert's ``text-classification``
pipeline on ``{"text": query, "text_pair": document}``:

* one label (``num_labels=1``, e.g. the ms-marco cross-encoders): the sigmoid of the logit, as
  sentence-transformers' ``CrossEncoder`` and Hugging Face's pipeline give it;
* several labels: the probability (the pipeline's softmax, or sigmoid for checkpoints with several labels per text) of the
  relevant label: ``relevant_label`` if given, else the first of :data:`RELEVANT_LABELS` in ``id2label``.

Example:
    >>> reranker = Reranker("tests/fixtures/checkpoints/tiny-uncased-cls", relevant_label="positive")
    >>> scores = reranker.score("paris", ["i love paris", "stocks fell"])
    >>> len(scores), all(0.0 < s < 1.0 for s in scores)
    (2, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kbert.errors import InputError
from kbert.hints import hint

RELEVANT_LABELS = ("relevant", "1", "LABEL_1", "positive")  # tried in this order when no relevant_label is given


def relevant_label_of(id2label: dict[int, str], relevant_label: str | None, where: str) -> str:
    """The label whose probability is the relevance score (the only one of a one-label checkpoint)."""
    labels = [id2label[i] for i in sorted(id2label)]
    if relevant_label is not None:
        if relevant_label not in labels:
            raise InputError(f"{where}: relevant_label {relevant_label!r} is not one of its labels {labels}")
        return relevant_label
    if len(labels) == 1:
        return labels[0]
    found = next((label for label in RELEVANT_LABELS if label in labels), None)
    if found is None:
        raise InputError(f"{where}: cannot tell which of its labels {labels} means relevant (none of "
                         f"{list(RELEVANT_LABELS)}){hint('; give it with {}', 'relevant_label')}")
    return found


class Reranker:
    """Relevance scores of (query, document) pairs by a cross-encoder checkpoint.

    Args:
        model: a text-classification checkpoint folder or ``hf://org/name``.
        batch_size: pairs per forward pass.
        relevant_label: the label meaning "relevant" (default: see :func:`relevant_label_of`).
        max_length: tokens per pair, both texts together (default: the tokenizer's maximum).
    """

    def __init__(self, model: str | os.PathLike, *, batch_size: int = 32, relevant_label: str | None = None,
                 max_length: int | None = None):
        from kbert.checkpoint import load_checkpoint
        from kbert.pipelines import Pipeline
        from kbert.tasks.text_classification.task import TextClassification

        task = TextClassification(load_checkpoint(model))  # a cross-encoder is a classifier of text pairs
        self.pipeline = Pipeline(task, batch_size=batch_size, max_length=max_length)
        self.name = str(task.checkpoint.path)
        self.label = relevant_label_of(task.id2label, relevant_label, f"re-ranker {self.name}")
        self.function = "sigmoid" if task.num_labels == 1 else None  # None: the pipeline's own choice

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """The relevance of each of ``documents`` to ``query``."""
        return self.score_pairs([(query, document) for document in documents])

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The relevance of each ``(query, document)`` pair (one pipeline call: batched by length)."""
        if not pairs:
            return []
        inputs = [{"text": query, "text_pair": document} for query, document in pairs]
        options = {"function_to_apply": self.function} if self.function else {}
        ranked = self.pipeline(inputs, top_k=None, **options)  # per pair: every label's {"label", "score"}
        return [next(d["score"] for d in labels if d["label"] == self.label) for labels in ranked]
