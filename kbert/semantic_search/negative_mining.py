"""Mine hard negatives for retrieval training: the documents the current model ranks high that are not relevant.

What ``kbert mine-negatives`` runs, following sentence-transformers' ``util.mine_hard_negatives`` (its
``range_max``, ``absolute_margin``, ``relative_margin`` and ``num_negatives``, "top" sampling):

1. the corpus is every distinct positive of the rows (their hard negatives and an extra corpus file too, when
   given); queries and documents are embedded with the model (its query / document prompts) and the corpus goes
   into an exact FAISS index;
2. for each row, the ``range_max`` best documents for its query are the candidates; a candidate is skipped when
   it is the positive, another positive of the same query, the query's own text, or scores within the margin of
   the positive: above ``positive - margin`` or above ``positive * (1 - relative_margin)``. Near-duplicates of the
   positive (the same story reworded) score that close, so they are not used as negatives;
3. the first ``num_negatives`` left are the row's negatives. Every row of a training file needs the same number,
   so a row with fewer is left out (the summary counts them).

The output is JSON lines ``{"query", "positive", "negatives": [...]}`` that ``kbert train --task retrieval``
reads, and optionally a TSV of (query, document, label) rows -- the positive ``relevant``, each mined negative
``irrelevant`` -- for training a cross-encoder re-ranker with ``kbert train --task text-classification``.

Example:
    >>> from kbert.tasks.retrieval.pairs import RetrievalExample
    >>> rows = [RetrievalExample("oil prices", "Crude oil rose 2% on supply fears."),
    ...         RetrievalExample("world cup final", "The team won the final with a late goal."),
    ...         RetrievalExample("oil output", "OPEC agreed to cut crude oil output."),
    ...         RetrievalExample("new phone", "The company unveiled its new smartphone.")]
    >>> mined, summary = mine_hard_negatives("minilm", rows, num_negatives=1, relative_margin=0.0)
    >>> mined[0].negatives, summary["rows"], summary["left_out"]
    (('OPEC agreed to cut crude oil output.',), 4, 0)
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from kbert.errors import InputError
from kbert.vector_index import VectorIndex
from kbert.semantic_search.indexing import CHUNK_SIZE, Embedder, _with_bar
from kbert.tasks.retrieval.pairs import RetrievalExample

RELEVANT, IRRELEVANT = "relevant", "irrelevant"  # the labels of the cross-encoder pairs


def mine_hard_negatives(model, examples: Sequence[RetrievalExample], *, corpus: Sequence[str] = (),
                        num_negatives: int = 3, range_max: int = 50, margin: float | None = None,
                        relative_margin: float | None = 0.05, batch_size: int = 32,
                        max_seq_length: int | None = None) -> tuple[list[RetrievalExample], dict]:
    """``(rows with mined negatives, summary)``; see the module docstring. ``model`` is a folder, ``"minilm"`` or
    an :class:`~kbert.semantic_search.indexing.Embedder`; existing negatives of the rows are replaced."""
    _check(num_negatives, range_max, margin, relative_margin)
    embedder = model if isinstance(model, Embedder) else Embedder(model, batch_size=batch_size,
                                                                  max_seq_length=max_seq_length)
    documents = _distinct([t for e in examples for t in (e.positive, *e.negatives)] + list(corpus))
    positions = {text: i for i, text in enumerate(documents)}
    queries = _distinct([e.query for e in examples])
    index = VectorIndex(embedder.dimension, kind="exact", metric="cosine")
    try:
        chunks = list(_with_bar(embedder.encode_chunks(documents, "document"), len(documents), CHUNK_SIZE,
                                "embedding the corpus"))
        document_vectors = _unit(np.concatenate(chunks))  # kept: the positives' scores come from them
        index.add(document_vectors, [str(i) for i in range(len(documents))])
        query_vectors = _unit(np.concatenate(list(_with_bar(embedder.encode_chunks(queries, "query"), len(queries),
                                                            CHUNK_SIZE, "embedding the queries"))))
        found = index.search(query_vectors, k=min(range_max + 1, len(documents)))
    finally:
        index.close()
    query_row = {text: i for i, text in enumerate(queries)}
    positives_of: dict[str, set[int]] = {}
    for e in examples:
        positives_of.setdefault(e.query, set()).add(positions[e.positive])
    mined, positive_scores, negative_scores = [], [], []
    for example in examples:
        row = query_row[example.query]
        positive = positions[example.positive]
        positive_score = float(query_vectors[row] @ document_vectors[positive])  # cosine, as the index scores
        limit = _limit(positive_score, margin, relative_margin)
        negatives = []
        for doc, score in zip(found.ids[row], found.scores[row]):
            doc = int(doc)
            if doc in positives_of[example.query] or documents[doc] == example.query or score > limit:
                continue
            negatives.append((documents[doc], score))
            if len(negatives) == num_negatives:
                break
        if len(negatives) < num_negatives:
            continue
        mined.append(RetrievalExample(example.query, example.positive, tuple(t for t, _ in negatives), example.where))
        positive_scores.append(positive_score)
        negative_scores.extend(s for _, s in negatives)
    summary = {"rows": len(mined), "left_out": len(examples) - len(mined), "documents": len(documents),
               "queries": len(queries), "num_negatives": num_negatives, "range_max": range_max, "margin": margin,
               "relative_margin": relative_margin,
               "mean_positive_score": float(np.mean(positive_scores)) if positive_scores else None,
               "mean_negative_score": float(np.mean(negative_scores)) if negative_scores else None}
    return mined, summary


def write_mined(rows: Sequence[RetrievalExample], output: str | os.PathLike,
                pairs_output: str | os.PathLike | None = None) -> None:
    """``output``: JSON lines for ``kbert train --task retrieval``; ``pairs_output``: a (text, text_pair, label)
    TSV for a cross-encoder (one ``relevant`` row per positive, one ``irrelevant`` row per negative)."""
    from kbert.atomic_files import write_bytes

    write_bytes(output, "".join(json.dumps({"query": r.query, "positive": r.positive, "negatives": list(r.negatives)},
                                           ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    if pairs_output is not None:
        path = pathlib.Path(pairs_output)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["text", "text_pair", "label"])
            for r in rows:
                writer.writerow([_one_line(r.query), _one_line(r.positive), RELEVANT])
                writer.writerows([_one_line(r.query), _one_line(n), IRRELEVANT] for n in r.negatives)


def _one_line(text: str) -> str:
    return " ".join(text.split())  # a TSV field holds no tab or newline


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _limit(positive_score: float, margin: float | None, relative_margin: float | None) -> float:
    """The highest score a negative may have."""
    limit = float("inf")
    if margin is not None:
        limit = min(limit, positive_score - margin)
    if relative_margin is not None:
        limit = min(limit, positive_score * (1 - relative_margin))
    return limit


def _distinct(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _check(num_negatives, range_max, margin, relative_margin) -> None:
    for name, value in (("num_negatives", num_negatives), ("range_max", range_max)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if range_max < num_negatives:
        raise InputError(f"range_max ({range_max}) must be at least num_negatives ({num_negatives})")
    if margin is not None and not (isinstance(margin, (int, float)) and margin >= 0):
        raise InputError(f"margin must be a number >= 0, got {margin!r}")
    if relative_margin is not None and not (isinstance(relative_margin, (int, float)) and 0 <= relative_margin < 1):
        raise InputError(f"relative_margin must be in [0, 1), got {relative_margin!r}")
