"""sentence-transformers' ``MultipleNegativesRankingLoss`` on embeddings, plus masking of duplicate texts.

The definition is ``MultipleNegativesRankingLoss.compute_loss_from_embeddings`` (sentence-transformers 5.7,
without ``gather_across_devices`` and hardness weighting): for queries ``q`` (B, D) and documents ``d``
((1 + n) * B, D) laid out ``[positives; negatives_1; ...; negatives_n]``,

* ``query_to_doc``: ``scale * cos(q_i, d_j)`` for every document j, the positive of query i at column i;
* ``doc_to_query`` (the symmetric term): ``scale * cos(q_j, d_i)`` over the queries j, the positive at j = i;
* ``query_to_query``: ``scale * cos(q_i, q_j)`` over the other queries (j = i is -inf);
* ``doc_to_doc``: ``scale * cos(d_i, d_j)`` over the documents that do not belong to query i;

``partition_mode="joint"`` takes one log-sum-exp over all chosen terms, ``"per_direction"`` the mean of one per
term; the loss is ``-mean_i(scale * cos(q_i, d_i) - logZ_i)``. ``symmetric=True`` in kbert means
``directions=("query_to_doc", "doc_to_query")``, ``partition_mode="per_direction"``
(sentence-transformers' documented symmetric InfoNCE).

Duplicate masking (kbert's; sentence-transformers avoids duplicates with its ``NO_DUPLICATES`` batch sampler
instead): every text has an integer id (equal texts, equal ids). A candidate whose text equals the row's positive
(or, in the query terms, the row's query) but is not the positive itself gets ``-inf``, so the same article seen
twice in a batch, or a hard negative that repeats the positive, never counts as a negative. With ``text ids``
all different, the loss equals sentence-transformers' (``tests/test_retrieval_training.py`` checks it on values
recorded from sentence-transformers).

Example:
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    >>> d = np.array([[1.0, 0.1], [0.1, 1.0]], "float32")
    >>> loss = RankingLoss(scale=20.0)
    >>> float(loss(q, d)) < 1e-6               # each query's positive is by far its best document
    True
    >>> round(float(loss(q, d[::-1])), 2)     # positives swapped: a large loss
    17.91
    >>> float(loss(q, d[::-1], query_ids=[0, 1], document_ids=[5, 5])) == 0   # one text twice: no negative left
    True
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
PARTITION_MODES = ("joint", "per_direction")


@dataclasses.dataclass(frozen=True)
class RankingLoss:
    """In-batch negatives ranking loss (see the module docstring); called on embeddings, returns a scalar."""

    scale: float = 20.0
    directions: tuple[str, ...] = ("query_to_doc",)
    partition_mode: str = "joint"

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale!r}")
        unknown = set(self.directions) - set(DIRECTIONS)
        if unknown or "query_to_doc" not in self.directions:
            raise ValueError(f"directions must include 'query_to_doc' and come from {list(DIRECTIONS)}, "
                             f"got {list(self.directions)}")
        if self.partition_mode not in PARTITION_MODES:
            raise ValueError(f"partition_mode must be one of {list(PARTITION_MODES)}, got {self.partition_mode!r}")
        if self.partition_mode == "per_direction" and set(self.directions) & {"query_to_query", "doc_to_doc"}:
            raise ValueError("partition_mode 'per_direction' takes only query_to_doc and doc_to_query (the other "
                             "terms hold no positive)")

    @classmethod
    def from_options(cls, scale: float = 20.0, symmetric: bool = False) -> "RankingLoss":
        """``symmetric``: the query→document and document→query terms, one softmax each (symmetric InfoNCE)."""
        if symmetric:
            return cls(scale, ("query_to_doc", "doc_to_query"), "per_direction")
        return cls(scale)

    def __call__(self, queries, documents, query_ids=None, document_ids=None):
        """``queries`` (B, D), ``documents`` ((1 + n) * B, D); ids (B,) and ((1 + n) * B,) or ``None`` (no masking)."""
        queries = _unit(queries)
        documents = _unit(documents)
        batch = tf.shape(queries)[0]
        rows = tf.range(batch)
        positives = documents[:batch]  # (B, D)
        eye = tf.eye(batch, dtype=tf.bool)  # (B, B)
        own_documents = tf.tile(eye, [1, tf.shape(documents)[0] // batch])  # (B, (1 + n) B): row i's own columns
        masked = {}  # direction -> (B, candidates) bool: not a negative
        sims = {"query_to_doc": tf.matmul(queries, documents, transpose_b=True)}
        masked["query_to_doc"] = tf.zeros_like(own_documents)
        if "query_to_query" in self.directions:
            sims["query_to_query"] = tf.matmul(queries, queries, transpose_b=True)
            masked["query_to_query"] = eye
        if "doc_to_query" in self.directions:
            sims["doc_to_query"] = tf.matmul(positives, queries, transpose_b=True)
            masked["doc_to_query"] = tf.zeros_like(eye)
        if "doc_to_doc" in self.directions:
            sims["doc_to_doc"] = tf.matmul(positives, documents, transpose_b=True)
            masked["doc_to_doc"] = own_documents
        if query_ids is not None and document_ids is not None:
            masked = self._mask_duplicates(masked, tf.convert_to_tensor(query_ids), tf.convert_to_tensor(document_ids),
                                           batch, own_documents)
        scores = {k: tf.where(masked[k], tf.constant(float("-inf"), v.dtype), v * self.scale) for k, v in sims.items()}
        positive = tf.gather(sims["query_to_doc"], rows, axis=1, batch_dims=1) * self.scale  # (B,)
        if self.partition_mode == "joint":
            log_z = tf.reduce_logsumexp(tf.concat([scores[k] for k in self.directions], axis=1), axis=1)
        else:
            log_z = tf.add_n([tf.reduce_logsumexp(scores[k], axis=1) for k in self.directions]) / len(self.directions)
        return -tf.reduce_mean(positive - log_z)

    def _mask_duplicates(self, masked, query_ids, document_ids, batch, own_documents):
        """Also mask candidates with the text of the row's positive (documents) or query (queries)."""
        positive_ids = document_ids[:batch]  # (B,)
        eye = tf.eye(batch, dtype=tf.bool)
        same_as_positive = tf.equal(positive_ids[:, None], document_ids[None, :])  # (B, (1 + n) B)
        not_the_positive = tf.logical_not(tf.pad(eye, [[0, 0], [0, tf.shape(document_ids)[0] - batch]]))
        out = dict(masked)
        out["query_to_doc"] = masked["query_to_doc"] | (same_as_positive & not_the_positive)
        if "query_to_query" in out:
            out["query_to_query"] = masked["query_to_query"] | tf.equal(query_ids[:, None], query_ids[None, :])
        if "doc_to_query" in out:  # document i against query j: query j is a copy of query i
            out["doc_to_query"] = masked["doc_to_query"] | (tf.equal(query_ids[:, None], query_ids[None, :])
                                                            & tf.logical_not(eye))
        if "doc_to_doc" in out:
            out["doc_to_doc"] = masked["doc_to_doc"] | same_as_positive
        return out


def _unit(x):
    """Rows scaled to unit length as ``util.cos_sim`` does (``F.normalize``: divided by max(norm, 1e-12))."""
    x = tf.convert_to_tensor(x, tf.float32)
    return x / tf.maximum(tf.norm(x, axis=-1, keepdims=True), 1e-12)
