"""Score a bi-encoder on (query, relevant document) rows: embed, rank the documents, retrieval metrics.

The queries are the rows' distinct queries; the corpus is every distinct document of the rows (positives and
hard negatives), plus the ``extra`` documents given (distractors); a query's relevant documents are the
positives of its rows. Documents are ranked by cosine similarity with an exact FAISS index, and the metrics are
sentence-transformers' ``InformationRetrievalEvaluator`` definitions (:mod:`kbert.metrics.ranking`): MRR@10,
nDCG@10, accuracy@1/10, recall@1/10/100 and MAP@100.

Example:
    >>> from kbert.tasks.retrieval.pairs import RetrievalExample
    >>> data = RetrievalSet.from_examples([RetrievalExample("q1", "doc a"), RetrievalExample("q2", "doc b"),
    ...                                    RetrievalExample("q1", "doc c")])
    >>> data.queries, data.documents, {query: sorted(ids) for query, ids in data.relevant.items()}
    (['q1', 'q2'], ['doc a', 'doc b', 'doc c'], {'0': ['0', '2'], '1': ['1']})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kbert.tasks.base import EvaluationReport

RANKING_DEPTH = 100  # documents ranked per query (the deepest cut-off)
CUTOFFS = {"mrr_at_k": [10], "ndcg_at_k": [10], "accuracy_at_k": [1, 10], "precision_recall_at_k": [1, 10, 100],
           "map_at_k": [100]}


@dataclasses.dataclass(frozen=True)
class RetrievalSet:
    """Distinct queries and documents, and which documents are relevant to which query (ids are positions)."""

    queries: list[str]
    documents: list[str]
    relevant: dict[str, set[str]]

    @classmethod
    def from_examples(cls, examples: Sequence, extra: Sequence[str] = ()) -> "RetrievalSet":
        queries: dict[str, int] = {}
        documents: dict[str, int] = {}
        relevant: dict[str, set[str]] = {}
        for example in examples:
            query = queries.setdefault(example.query, len(queries))
            for text in (example.positive, *example.negatives):
                documents.setdefault(text, len(documents))
            relevant.setdefault(str(query), set()).add(str(documents[example.positive]))
        for text in extra:
            documents.setdefault(text, len(documents))
        return cls(list(queries), list(documents), relevant)

    def with_texts(self, text_for_model) -> "RetrievalSet":
        """The same set with every text mapped by ``text_for_model`` (what the tokenizer gets)."""
        return RetrievalSet([text_for_model(t) for t in self.queries], [text_for_model(t) for t in self.documents],
                            self.relevant)


def embed_texts(encoder, tokenizer, texts: Sequence[str], *, batch_size: int, max_length: int) -> np.ndarray:
    """``(N, D)`` float32 sentence embeddings of ``texts`` from the Keras ``encoder`` (in inference mode),
    in the order given (batched by length, with a progress bar on a terminal)."""
    from kbert.batching.dataset import make_dataset
    from kbert.batching.inference import predict

    data = make_dataset(tokenizer, list(texts), None, np.arange(len(texts)), batch_size=batch_size,
                        max_length=max_length)
    vectors, order = predict(encoder, data.dataset, output="sentence_embedding")
    out = np.empty_like(vectors)
    out[order] = vectors
    return out


def rank(query_vectors: np.ndarray, document_vectors: np.ndarray, depth: int = RANKING_DEPTH):
    """Per query, the ``depth`` best documents by cosine similarity: ``(ids, scores)`` (ids are positions as str)."""
    from kbert.vector_index import VectorIndex

    index = VectorIndex(document_vectors.shape[1], kind="exact", metric="cosine")
    try:
        index.add(document_vectors, [str(i) for i in range(len(document_vectors))])
        found = index.search(query_vectors, k=min(depth, len(document_vectors)))
    finally:
        index.close()
    return found.ids, found.scores


def score(encoder, data: RetrievalSet, tokenizer, *, batch_size: int, max_length: int) -> EvaluationReport:
    """Retrieval metrics of ``encoder`` on ``data`` (see the module docstring)."""
    from kbert.metrics.ranking import retrieval_metrics

    queries = embed_texts(encoder, tokenizer, data.queries, batch_size=batch_size, max_length=max_length)
    documents = embed_texts(encoder, tokenizer, data.documents, batch_size=batch_size, max_length=max_length)
    ids, scores = rank(queries, documents)
    rankings = {str(q): ranked for q, ranked in enumerate(ids)}
    metrics = retrieval_metrics(rankings, data.relevant, scores={q: scores[int(q)] for q in rankings}, **CUTOFFS)
    metrics = {k: v for k, v in metrics.items() if not k.startswith("precision@")}
    return EvaluationReport({**metrics, "queries": len(data.queries), "documents": len(data.documents)})
