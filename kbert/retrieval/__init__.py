"""Retrieval over sentence embeddings: ranking metrics (:mod:`~kbert.retrieval.metrics`, numpy only), a FAISS
vector index that saves to a folder (:mod:`~kbert.retrieval.index`), corpus files read row by row
(:mod:`~kbert.retrieval.corpus`), building / searching an index of a corpus with a sentence-embedding
model (:mod:`~kbert.retrieval.indexing`, behind ``kbert embed``, ``kbert index`` and ``kbert search``),
cross-encoder re-ranking (:mod:`~kbert.retrieval.rerank`) and the in-graph top-k ``search`` signature of
``kbert export --corpus-index`` (:mod:`~kbert.retrieval.search_graph`).

Importing this package imports neither TensorFlow nor FAISS.

Example:
    >>> from kbert.retrieval import retrieval_metrics
    >>> retrieval_metrics({"q": ["a", "b"]}, {"q": {"b"}}, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1],
    ...                   precision_recall_at_k=[1], map_at_k=[10])["mrr@10"]
    0.5
"""

from kbert.retrieval.metrics import retrieval_metrics

__all__ = ["retrieval_metrics"]
