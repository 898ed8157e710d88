"""Exact top-k search inside a SavedModel: the ``search`` signature that ``kbert export --corpus-index DIR`` adds.

The vectors of an exact index written by ``kbert index`` are stored in the SavedModel as variables, with their
ids. ``search(text)`` embeds the queries as ``kbert search`` does (lower-casing and the model's ``query``
prompt, else its default one), L2-normalises them for a cosine index and returns ``tf.math.top_k`` of
query · corpusᵀ: ``ids`` (``tf.string``, ``[B, k]``) and ``scores`` (float32, ``[B, k]``), best first, with ``k``
fixed at export time and clipped to the corpus size. Only TensorFlow ops, so TF Serving answers it.

Scoring every document per query suits small corpora only: at most :data:`MAX_VECTORS` (200,000 MiniLM vectors
are 307 MB in the SavedModel, and a batch of B queries makes a ``(B, N)`` score matrix). Larger corpora, and
approximate (HNSW, IVF) indexes, belong in a vector index served beside the model (``kbert search``).

Example:
    >>> import numpy as np, tensorflow as tf
    >>> corpus = SearchCorpus(np.eye(3, dtype="float32"), ["x", "y", "z"], metric="cosine", top_k=2)
    >>> search = corpus.search_function(lambda text: {"embedding": 5.0 * tf.one_hot(tf.strings.length(text), 3)})
    >>> found = search(tf.constant(["", "ab"]))    # one-hot on the text's length: "" -> x, "ab" -> z
    >>> found["ids"].numpy().tolist(), found["scores"].numpy().tolist()
    ([[b'x', b'y'], [b'z', b'x']], [[1.0, 0.0], [1.0, 0.0]])
"""

from __future__ import annotations

import os
import pathlib
import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kbert.errors import DataWarning, ExportError
from kbert.vector_index import VectorIndex, check_positive
from kbert.tasks.sentence_embedding.task import NORM_EPSILON

MAX_VECTORS = 200_000
DEFAULT_TOP_K = 10


class SearchCorpus(tf.Module):
    """A corpus's vectors and ids as SavedModel variables, and the in-graph exact top-k search over them."""

    def __init__(self, vectors: np.ndarray, ids: Sequence[str], *, metric: str, top_k: int = DEFAULT_TOP_K):
        super().__init__(name="search_corpus")
        check_positive(top_k, "top_k")
        self.vectors = tf.Variable(np.asarray(vectors, np.float32), trainable=False, name="vectors")  # (N, D)
        self.ids = tf.Variable(tf.constant(list(ids), tf.string), trainable=False, name="ids")  # (N,)
        self.metric, self.top_k = metric, min(top_k, len(ids))
        self.source: dict = {"documents": len(ids), "dimension": int(self.vectors.shape[1]), "metric": metric,
                             "top_k": self.top_k}  # recorded in assets.extra/kbert.json

    @classmethod
    def from_index(cls, folder: str | os.PathLike, top_k: int, *, dimension: int, model: str) -> "SearchCorpus":
        """The vectors of the exact index ``folder``, checked to fit ``model`` (its name as indexes record it)."""
        index = VectorIndex.load(folder)
        try:
            if index.kind != "exact":
                raise ExportError(f"{folder}: a {index.kind} index; the search signature scores every vector, so "
                                  f"give an exact index (kbert index without --approximate)")
            if not 1 <= len(index) <= MAX_VECTORS:
                raise ExportError(f"{folder}: {len(index):,} vectors; the search signature holds 1 to "
                                  f"{MAX_VECTORS:,} (serve larger corpora from the index with kbert search)")
            built_with = index.model.get("model")
            if index.dimension != dimension:
                raise ExportError(f"{folder}: {index.dimension}-dimensional vectors (made by {built_with}) but "
                                  f"{model} gives {dimension}-dimensional ones")
            if built_with is not None and built_with != model:
                warnings.warn(f"{folder} was built with {built_with}, the exported queries are embedded with "
                              f"{model}", DataWarning, stacklevel=3)
            corpus = cls(index.vectors(), index.ids, metric=index.metric, top_k=top_k)
        finally:
            index.close()
        corpus.source.update(index=str(pathlib.Path(folder).resolve()), model=built_with,
                             corpus=index.model.get("corpus"))
        return corpus

    def signature(self, task, keras_model, *, max_length: int):
        """``(function, input_signature)`` of the ``search`` endpoint: the queries embedded by the
        sentence-embedding ``task`` with its query prompt, then :meth:`search_function`."""
        embed, input_signature = task.embedding_signature(keras_model, max_length=max_length,
                                                          prompt=task.query_prompt())
        return self.search_function(embed), input_signature

    def search_function(self, embed):
        """``text`` -> ``{"ids", "scores"}`` of the ``top_k`` best documents, ``embed`` giving ``{"embedding"}``."""

        def search(text):
            query = embed(text)["embedding"]  # (B, D)
            if self.metric == "cosine":
                query = tf.math.l2_normalize(query, axis=-1, epsilon=NORM_EPSILON ** 2)
            scores = tf.matmul(query, self.vectors, transpose_b=True)  # (B, N)
            best = tf.math.top_k(scores, k=self.top_k)  # (B, k) each
            return {"ids": tf.gather(self.ids, best.indices), "scores": best.values}

        return search
