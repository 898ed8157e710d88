"""Retrieval over sentence embeddings: a FAISS vector index that saves to a folder (:mod:`~kbert.vector_index`),
corpus files read row by row (:mod:`~kbert.retrieval.corpus`), building / searching an index of a corpus with a
sentence-embedding model (:mod:`~kbert.retrieval.indexing`, behind ``kbert embed``, ``kbert index`` and ``kbert
search``), cross-encoder re-ranking (:mod:`~kbert.retrieval.rerank`) and the in-graph top-k ``search`` signature of
``kbert export --corpus-index`` (:mod:`~kbert.retrieval.search_graph`). Ranking metrics are
:mod:`kbert.metrics.ranking`.

Importing this package imports neither TensorFlow nor FAISS.
"""
