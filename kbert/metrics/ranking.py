"""Ranking metrics exactly as sentence-transformers' ``InformationRetrievalEvaluator`` computes them (numpy only).

Input: each query's ranking (document ids, best first, or any order with ``scores`` to sort them by) and each
query's set of relevant document ids. Per query, with ``hits[i]`` = 1 when the document at rank ``i`` (0-based)
is relevant and ``R`` = the number of relevant documents (those missing from the corpus included):

* ``accuracy@k``: 1 if a relevant document is in the top k;
* ``precision@k``: relevant documents in the top k / k (k, even when fewer than k documents were ranked);
* ``recall@k``: relevant documents in the top k / R;
* ``mrr@k``: 1 / (rank of the first relevant document + 1) within the top k, else 0;
* ``ndcg@k``: binary relevance, DCG = sum(hits[i] / log2(i + 2)) over the top k, divided by the DCG of R
  relevant documents ranked first (at most k of them);
* ``map@k``: the sum, over the relevant documents in the top k, of the precision at their rank, divided by
  min(k, R).

Every metric is the mean over the queries that have at least one relevant document; the others are left out
(the evaluator drops them too), and so are relevance judgements of queries that were not ranked. Rankings
with scores are sorted by score, ties keeping the given order (as the evaluator's stable ``sorted``).

Example:
    >>> rankings = {"q1": ["d3", "d1", "d2"], "q2": ["d2", "d1", "d3"], "q3": ["d1"]}
    >>> relevant = {"q1": {"d1"}, "q2": {"d2", "d3"}, "q3": set()}        # q3 has none: left out
    >>> metrics = retrieval_metrics(rankings, relevant, mrr_at_k=[3], ndcg_at_k=[3], accuracy_at_k=[1],
    ...                             precision_recall_at_k=[2], map_at_k=[3])
    >>> {name: round(value, 4) for name, value in metrics.items()}
    {'accuracy@1': 0.5, 'precision@2': 0.5, 'recall@2': 0.75, 'ndcg@3': 0.7753, 'mrr@3': 0.75, 'map@3': 0.6667}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from kbert.errors import InputError

METRIC_NAMES = ("accuracy", "precision", "recall", "ndcg", "mrr", "map")  # the evaluator's order


def retrieval_metrics(rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]], *,
                      scores: Mapping[str, Sequence[float]] | None = None, mrr_at_k: Iterable[int] = (10,),
                      ndcg_at_k: Iterable[int] = (10,), accuracy_at_k: Iterable[int] = (1, 3, 5, 10),
                      precision_recall_at_k: Iterable[int] = (1, 3, 5, 10),
                      map_at_k: Iterable[int] = (100,)) -> dict[str, float]:
    """``{"accuracy@1": ..., "precision@1": ..., "recall@1": ..., "ndcg@10": ..., "mrr@10": ..., "map@100": ...}``.

    Args:
        rankings: query id -> document ids, best first (or sorted by ``scores`` when given).
        relevant: query id -> the ids of its relevant documents.
        scores: query id -> one score per ranked document (higher is better).
        mrr_at_k, ndcg_at_k, accuracy_at_k, precision_recall_at_k, map_at_k: the cut-offs, as the evaluator's
            arguments of the same names (and the same defaults).
    """
    cutoffs = {name: _cutoffs(values, arg) for name, values, arg in (
        ("accuracy", accuracy_at_k, "accuracy_at_k"), ("precision", precision_recall_at_k, "precision_recall_at_k"),
        ("ndcg", ndcg_at_k, "ndcg_at_k"), ("mrr", mrr_at_k, "mrr_at_k"), ("map", map_at_k, "map_at_k"))}
    cutoffs["recall"] = cutoffs["precision"]
    depth = max(k for ks in cutoffs.values() for k in ks)
    hits, relevant_counts = relevance_matrix(rankings, relevant, depth, scores)  # (Q, depth), (Q,)
    found = np.cumsum(hits, axis=1)  # (Q, depth): relevant documents within the first i + 1
    ranks = np.arange(1, depth + 1)  # (depth,)
    discounts = 1.0 / np.log2(ranks + 1.0)  # 1 / log2(i + 2) for the 0-based rank i
    results: dict[str, float] = {}
    for name in METRIC_NAMES:
        for k in cutoffs[name]:
            top = hits[:, :k]
            if name == "accuracy":
                per_query = top.any(axis=1).astype(float)
            elif name == "precision":
                per_query = found[:, k - 1] / k
            elif name == "recall":
                per_query = found[:, k - 1] / relevant_counts
            elif name == "ndcg":
                ideal = np.cumsum(discounts[:k])[np.minimum(relevant_counts, k) - 1]
                per_query = (top * discounts[:k]).sum(axis=1) / ideal
            elif name == "mrr":
                first = np.argmax(top, axis=1)
                per_query = np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)
            else:  # map
                precision_at_hits = np.where(top, found[:, :k] / ranks[:k], 0.0)
                per_query = precision_at_hits.sum(axis=1) / np.minimum(k, relevant_counts)
            results[f"{name}@{k}"] = float(np.mean(per_query))
    return results


def relevance_matrix(rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]], depth: int,
                     scores: Mapping[str, Sequence[float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(hits, relevant_counts)`` of the ranked queries with relevant documents, in ``rankings`` order: ``hits``
    is ``(Q, depth)`` bool (False past the end of a short ranking), ``relevant_counts`` ``(Q,)``."""
    if not isinstance(rankings, Mapping) or not isinstance(relevant, Mapping):
        raise InputError(f"rankings and relevant must map query ids to documents, got {type(rankings).__name__} "
                         f"and {type(relevant).__name__}")
    queries = [q for q in rankings if relevant.get(q)]
    if not queries:
        raise InputError(f"no ranked query has a relevant document ({len(rankings)} rankings, "
                         f"{len(relevant)} relevance entries)")
    hits = np.zeros((len(queries), depth), dtype=bool)
    for row, query in enumerate(queries):
        ranked = list(rankings[query])
        if scores is not None:
            if query not in scores or len(scores[query]) != len(ranked):
                raise InputError(f"query {query!r}: {len(ranked)} ranked documents but "
                                 f"{len(scores.get(query, ()))} scores")
            order = np.argsort(-np.asarray(scores[query], dtype=float), kind="stable")
            ranked = [ranked[i] for i in order]
        if len(set(ranked)) != len(ranked):
            twice = next(d for i, d in enumerate(ranked) if d in ranked[:i])
            raise InputError(f"query {query!r}: document {twice!r} is ranked twice")
        wanted = relevant[query]
        top = ranked[:depth]
        hits[row, :len(top)] = [doc in wanted for doc in top]
    counts = np.array([len(set(relevant[q])) for q in queries])
    return hits, counts


def _cutoffs(values: Iterable[int], name: str) -> list[int]:
    values = list(values)
    if not values or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k > 0 for k in values):
        raise InputError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    return [int(k) for k in values]
