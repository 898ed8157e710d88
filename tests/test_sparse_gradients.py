"""Embedding gradients with a repeated token: the Keras problem, and kbert's AdamW matching the dense update."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbert.training.optimizer import build_optimizer
from kbert.sparse_gradients import dense_gradients
from keras.src.optimizers.base_optimizer import global_norm

# Row 0 looked up twice (as [CLS] in two sentences), row 2 once: what tf.gather's gradient looks like.
REPEATED = tf.IndexedSlices(values=tf.constant([[1.0, -2.0], [3.0, 0.5], [0.25, 1.0]]),
                            indices=tf.constant([0, 0, 2]), dense_shape=tf.constant([3, 2]))
SUMMED = np.array([[4.0, -1.5], [0.0, 0.0], [0.25, 1.0]], "float32")


def _two_steps(optimizer, gradient):
    variable = keras.Variable(np.ones((3, 2), "float32"))
    optimizer.apply_gradients([(gradient, variable)])
    optimizer.apply_gradients([(gradient, variable)])
    return variable.numpy()


def test_the_keras_problem_repeated_rows_are_squared_one_by_one():
    # If these start to agree, Keras has fixed it and kbert.sparse_gradients can go.
    assert float(global_norm([REPEATED])) == pytest.approx(np.sqrt((REPEATED.values.numpy() ** 2).sum()))
    assert float(global_norm([REPEATED])) != pytest.approx(np.linalg.norm(SUMMED))
    sparse = _two_steps(keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.0), REPEATED)
    dense = _two_steps(keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.0), tf.constant(SUMMED))
    assert np.abs(sparse - dense).max() > 1e-2


def test_dense_gradients_sums_repeated_rows_and_leaves_the_rest():
    other = tf.constant([1.0, 2.0])
    summed, same, none = dense_gradients([REPEATED, other, None])
    np.testing.assert_array_equal(summed.numpy(), SUMMED)
    assert same is other and none is None


@pytest.mark.parametrize("clip_norm", [None, 1.0])
def test_kbert_adamw_gives_the_dense_update_for_slices(clip_norm):
    def optimizer():
        return build_optimizer(learning_rate=0.1, warmup=0, total_steps=10, weight_decay=0.01, clip_norm=clip_norm,
                               no_decay_variables=[])

    np.testing.assert_allclose(_two_steps(optimizer(), REPEATED), _two_steps(optimizer(), tf.constant(SUMMED)),
                               rtol=1e-6, atol=1e-7)


class _OneHotEmbedding(keras.layers.Embedding):
    """The same table, looked up by a one-hot product: its gradient is a dense tensor."""

    def call(self, inputs):
        return keras.ops.matmul(keras.ops.one_hot(inputs, self.input_dim), self.embeddings)


def test_fit_through_an_embedding_lookup_equals_the_one_hot_product():
    # The same model twice: a gather (sparse gradient) and a one-hot product (dense gradient) into one table.
    vocabulary, width = 7, 4
    table = np.random.default_rng(0).normal(size=(vocabulary, width)).astype("float32")
    ids = np.array([[0, 3, 3, 1], [0, 3, 5, 5], [0, 2, 3, 6]] * 2)  # 0 and 3 repeat within every batch
    targets = np.array([0, 1, 1, 0, 1, 0])

    def trained(embedding_class, optimizer):
        embedding = embedding_class(vocabulary, width, embeddings_initializer=keras.initializers.Constant(table))
        tokens = keras.Input((4,), dtype="int32")
        logits = keras.layers.Dense(2, kernel_initializer="ones")(keras.ops.mean(embedding(tokens), axis=1))
        model = keras.Model(tokens, logits)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(ids, targets, batch_size=2, epochs=1, shuffle=False, verbose=0)
        return embedding.embeddings.numpy()

    def kbert_adamw():
        return build_optimizer(learning_rate=0.05, warmup=0, total_steps=3, weight_decay=0.01, clip_norm=0.1,
                               no_decay_variables=[])

    gathered = trained(keras.layers.Embedding, kbert_adamw())
    multiplied = trained(_OneHotEmbedding, kbert_adamw())
    assert np.abs(multiplied - table).max() > 1e-2  # it trained
    np.testing.assert_allclose(gathered, multiplied, rtol=1e-5, atol=1e-6)
    # and plain Keras AdamW does not give the dense result
    assert np.abs(trained(keras.layers.Embedding, keras.optimizers.AdamW(0.05))
                  - trained(_OneHotEmbedding, keras.optimizers.AdamW(0.05))).max() > 1e-3
