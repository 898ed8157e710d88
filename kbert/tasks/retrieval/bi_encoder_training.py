"""The Keras model ``fit`` trains for retrieval: one shared encoder for queries and documents, a ranking loss
over the batch, and gradient caching for batches larger than memory allows.

Batches are ``{"query": inputs (B, Tq), "documents": inputs ((1 + n) B, Td), "query_ids", "document_ids"}``
(see :mod:`kbert.tasks.retrieval.training_data`). The loss is :class:`~kbert.tasks.retrieval.ranking_loss.RankingLoss`.

``mini_batch_size`` turns on GradCache (Gao et al. 2021), as sentence-transformers'
``CachedMultipleNegativesRankingLoss``: (1) embed the whole batch in mini-batches without gradients, (2) compute the
loss on all embeddings and its gradient with respect to them, (3) embed each mini-batch again with gradients and
back-propagate the cached embedding gradients through it, summing the weight gradients. Memory is that of one
mini-batch, the step's gradient that of the whole batch. Dropout masks of (3) are those of (1): the dropout
layers' seed-generator states are saved before (1) and restored before (3), and the mini-batches run in the same
order (sentence-transformers replays torch's RNG state for the same reason). Mini-batches run in a
``tf.while_loop``, so the traced step has one copy of the encoder whatever the batch size.

Example:
    >>> import numpy as np, keras
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.tasks.retrieval.ranking_loss import RankingLoss
    >>> from kbert.tasks.sentence_embedding.task import SentenceEmbedding
    >>> encoder = SentenceEmbedding(load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls")).build_model()
    >>> model = BiEncoderTraining(encoder, RankingLoss(), mini_batch_size=2)
    >>> ids = np.array([[2, 37, 3], [2, 204, 3], [2, 291, 3]], "int32")
    >>> inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    >>> batch = {"query": inputs, "documents": inputs, "query_ids": np.arange(3), "document_ids": np.arange(3)}
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1))
    >>> sorted(model.train_on_batch(batch, return_dict=True))
    ['loss']
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kbert.tasks.retrieval.ranking_loss import RankingLoss
from kbert.sparse_gradients import dense_gradients


class BiEncoderTraining(keras.Model):
    """Trains ``encoder`` (inputs -> ``{"sentence_embedding": (B, D)}``) with ``loss`` on in-batch negatives.

    Args:
        encoder: the sentence-embedding model (its weights are what training changes).
        loss: the ranking loss on (query, document) embeddings.
        mini_batch_size: texts per forward pass with gradient caching; ``None``: the whole batch at once.
        mask_duplicates: pass the text ids to the loss, so copies of a positive are never negatives.
    """

    def __init__(self, encoder: keras.Model, loss: RankingLoss, *, mini_batch_size: int | None = None,
                 mask_duplicates: bool = True, **kwargs):
        super().__init__(name=kwargs.pop("name", "bi_encoder_training"), **kwargs)
        if mini_batch_size is not None and (not isinstance(mini_batch_size, int) or mini_batch_size < 1):
            raise ValueError(f"mini_batch_size must be a positive integer or None, got {mini_batch_size!r}")
        self.encoder = encoder
        self.ranking_loss = loss
        self.mini_batch_size = mini_batch_size
        self.mask_duplicates = mask_duplicates
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the encoder is built; saving weights needs no first call

    @property
    def metrics(self):
        return [self.loss_tracker]

    def embed(self, features: dict, training: bool = False):
        return self.encoder(features, training=training)["sentence_embedding"]

    def call(self, inputs, training=False):
        return self.embed(inputs["query"], training), self.embed(inputs["documents"], training)

    def batch_loss(self, queries, documents, inputs):
        """The ranking loss of this replica's batch, from its embeddings."""
        if self.mask_duplicates:
            return self.ranking_loss(queries, documents, inputs["query_ids"], inputs["document_ids"])
        return self.ranking_loss(queries, documents)

    def train_step(self, data):
        inputs = data[0] if isinstance(data, tuple) else data
        variables = self.trainable_variables
        # Keras sums the replicas' gradients: each replica's loss counts 1 / replicas (as Keras's compute_loss).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if self.mini_batch_size:
            loss, gradients = self.cached_gradients(inputs, variables, 1.0 / replicas)
        else:
            with tf.GradientTape() as tape:
                loss = self.batch_loss(*self(inputs, training=True), inputs)
                weighted = loss / replicas
            gradients = tape.gradient(weighted, variables)
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        inputs = data[0] if isinstance(data, tuple) else data
        self.loss_tracker.update_state(self.batch_loss(*self(inputs, training=False), inputs))
        return {"loss": self.loss_tracker.result()}

    # --- GradCache ----------------------------------------------------------------------------
    def cached_gradients(self, inputs: dict, variables: list, weight: float = 1.0):
        """``(loss, gradients of weight * loss)`` computed mini-batch by mini-batch (see the module docstring)."""
        seeds = self._seed_states()
        saved = [tf.identity(state.value) for state in seeds]
        with tf.control_dependencies(saved):
            queries = self._embed_in_chunks(inputs["query"])
            documents = self._embed_in_chunks(inputs["documents"])
        with tf.GradientTape() as tape:
            tape.watch([queries, documents])
            loss = self.batch_loss(queries, documents, inputs)
            weighted = loss * weight
        query_grads, document_grads = tape.gradient(weighted, [queries, documents])
        with tf.control_dependencies([query_grads, document_grads]):
            restore = [state.assign(value) for state, value in zip(seeds, saved)]
        with tf.control_dependencies(restore):
            gradients = [tf.zeros_like(v) for v in variables]
        gradients = self._backprop_in_chunks(inputs["query"], query_grads, variables, gradients)
        gradients = self._backprop_in_chunks(inputs["documents"], document_grads, variables, gradients)
        return loss, gradients

    def _seed_states(self) -> list:
        """The state variables of every seed generator in the encoder (dropout draws its masks from them)."""
        states = []
        for layer in self.encoder._flatten_layers(include_self=True):
            states.extend(generator.state for generator in getattr(layer, "_seed_generators", ()))
        return states

    def _chunks(self, features: dict):
        rows = tf.shape(features["token_ids"])[0]
        size = self.mini_batch_size
        return (rows + size - 1) // size, lambda i: {k: v[i * size:(i + 1) * size] for k, v in features.items()}

    def _embed_in_chunks(self, features: dict):
        count, chunk = self._chunks(features)
        width = self.encoder.output["sentence_embedding"].shape[-1]
        parts = tf.TensorArray(tf.float32, size=count, infer_shape=False, element_shape=tf.TensorShape([None, width]))

        def body(i, parts):
            return i + 1, parts.write(i, tf.stop_gradient(tf.cast(self.embed(chunk(i), training=True), tf.float32)))

        _, parts = tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), parts))
        return parts.concat()

    def _backprop_in_chunks(self, features: dict, upstream, variables: list, gradients: list) -> list:
        count, chunk = self._chunks(features)
        size = self.mini_batch_size

        def body(i, gradients):
            with tf.GradientTape() as tape:
                embeddings = tf.cast(self.embed(chunk(i), training=True), tf.float32)
                surrogate = tf.reduce_sum(embeddings * upstream[i * size:(i + 1) * size])
            parts = dense_gradients(tape.gradient(surrogate, variables))
            return i + 1, [g if p is None else g + p for g, p in zip(gradients, parts)]

        _, gradients = tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), gradients))
        return gradients
