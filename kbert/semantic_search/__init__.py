"""Semantic search over a corpus with a sentence-embedding model, the layer above the tasks: corpus files read
row by row (:mod:`~kbert.semantic_search.corpus`), building / searching a :mod:`kbert.vector_index` of a corpus
(:mod:`~kbert.semantic_search.indexing`, behind ``kbert embed``, ``kbert index`` and ``kbert search``),
cross-encoder re-ranking (:mod:`~kbert.semantic_search.rerank`), hard-negative mining for the ``retrieval`` task
(:mod:`~kbert.semantic_search.negative_mining`, ``kbert mine-negatives``) and the in-graph top-k ``search``
signature of ``kbert export --corpus-index`` (:mod:`~kbert.semantic_search.search_graph`). Ranking metrics are
:mod:`kbert.metrics.ranking`; the training task is :mod:`kbert.tasks.retrieval`, which imports nothing from here.

Importing this package imports neither TensorFlow nor FAISS.
"""
