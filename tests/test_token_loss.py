"""The token loss for length buckets: per-token weights as in random batches, exact under tf.distribute."""

import keras
import numpy as np
import pytest

from conftest import CHECKPOINTS, run_on_two_cpu_replicas
from kbert.checkpoint import load_checkpoint
from kbert.tasks.token_classification.tagged_files import tagged_from_lists
from kbert.tasks.token_classification.training_data import tag_label_set, tagged_dataset
from kbert.tasks.token_classification.features import IGNORE_INDEX
from kbert.tasks.token_classification.loss import TokenCrossEntropy


def _batch(rng, sizes, length=7, labels=5):
    """Labels (B, T) with ``sizes[i]`` labelled positions in row i, and random logits (B, T, L)."""
    y = np.full((len(sizes), length), IGNORE_INDEX, "int64")
    for row, size in enumerate(sizes):
        y[row, 1:1 + size] = rng.integers(0, labels, size)
    return y, rng.normal(size=(len(sizes), length, labels)).astype("float32")


def _token_nll(y, logits):
    keep = y != IGNORE_INDEX
    x = logits.astype(np.float64)[keep]
    log_p = x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
    return -log_p[np.arange(len(x)), y[keep]]


def test_with_the_batch_count_it_is_the_hugging_face_batch_mean():
    y, logits = _batch(np.random.default_rng(0), [5, 1, 3])
    hf_mean = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_INDEX)(y, logits)
    ours = TokenCrossEntropy(labelled_tokens_per_batch=9)(y, logits)
    np.testing.assert_allclose(float(ours), float(hf_mean), rtol=1e-6)
    np.testing.assert_allclose(float(ours), _token_nll(y, logits).mean(), rtol=1e-5)


def test_over_an_epoch_of_uneven_batches_every_token_weighs_the_same():
    rng = np.random.default_rng(1)
    batches = [_batch(rng, [1, 1, 2]), _batch(rng, [5, 6, 6]), _batch(rng, [3, 2, 4])]  # short / long / middle buckets
    per_batch = 30 / 3  # labelled tokens per batch over the epoch (4 + 17 + 9)
    epoch = np.mean([float(TokenCrossEntropy(per_batch)(y, x)) for y, x in batches])
    all_tokens = np.concatenate([_token_nll(y, x) for y, x in batches])
    np.testing.assert_allclose(epoch, all_tokens.mean(), rtol=1e-5)
    batch_means = np.mean([_token_nll(y, x).mean() for y, x in batches])  # what a per-batch mean optimises
    assert abs(batch_means - all_tokens.mean()) > 1e-3  # ...which is a different objective on these batches


def test_it_round_trips_through_keras_config():
    loss = keras.losses.deserialize(keras.losses.serialize(TokenCrossEntropy(12.5)))
    assert isinstance(loss, TokenCrossEntropy) and loss.labelled_tokens_per_batch == 12.5
    with pytest.raises(ValueError, match="must be positive, got 0"):
        TokenCrossEntropy(0)


def test_training_with_buckets_uses_the_epoch_count(monkeypatch, tmp_path):
    from kbert.training import trainer

    words = [["Ann", "went", "to", "Paris"], ["Bob"], ["Eve", "met", "Mary", "in", "London", "today", "."]] * 4
    tags = [["B-PER", "O", "O", "B-LOC"], ["B-PER"], ["B-PER", "O", "B-PER", "O", "B-LOC", "O", "O"]] * 4
    sentences = tagged_from_lists(words, tags)
    checkpoint = load_checkpoint(CHECKPOINTS / "tiny-cased-token-cls")
    seen = []
    real = trainer.compile_for_training
    monkeypatch.setattr(trainer, "compile_for_training", lambda model, opt, loss, *a: (seen.append(loss), real(model, opt, loss, *a)))
    for bucket in (True, False):
        trainer.train(task="token-classification", model=str(CHECKPOINTS / "tiny-cased-token-cls"), train=sentences,
                      output=str(tmp_path / str(bucket)), epochs=1, batch_size=5, bucket_by_length=bucket, verbose=0)
    data = tagged_dataset(checkpoint.tokenizer, sentences, tag_label_set(sentences), batch_size=5, max_length=512,
                          training=True)
    assert data.windows.labelled_tokens() == 48  # one label per word
    assert isinstance(seen[0], TokenCrossEntropy)
    assert seen[0].labelled_tokens_per_batch == pytest.approx(48 / data.data.num_batches)
    assert not isinstance(seen[1], TokenCrossEntropy)  # random batches: Hugging Face's per-batch mean


MIRRORED_STEP = r"""
from kbert.tasks.token_classification.loss import TokenCrossEntropy
y = np.full((4, 6), -100, "int64"); y[0, 1:6] = [0, 1, 2, 0, 1]; y[1, 1:5] = [2, 2, 1, 0]; y[2, 1] = 1; y[3, 1:3] = [0, 2]
x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
def step(strategy, loss):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6, 3)), keras.layers.Dense(3)])
        model.set_weights([np.eye(3, dtype="float32") * 0.5, np.zeros(3, "float32")])
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, verbose=0)
    return model.get_weights()[0]
hf = step(make_strategy("default"), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100))
single = step(make_strategy("default"), TokenCrossEntropy(12))
mirrored = step(make_strategy("mirrored"), TokenCrossEntropy(12))
assert np.abs(hf - 0.5 * np.eye(3)).max() > 1e-2
np.testing.assert_allclose(single, hf, atol=1e-6)
np.testing.assert_allclose(mirrored, hf, atol=1e-6)
print("ok")
"""


def test_one_step_is_the_same_on_one_device_and_mirrored_over_two():
    # 2 replicas see 9 and 3 labelled tokens: a per-replica mean would weigh them unevenly.
    run_on_two_cpu_replicas(MIRRORED_STEP)


def test_training_data_without_any_labelled_piece_is_a_clear_error(tmp_path):
    import kbert
    from kbert.errors import TrainingError

    # a lone zero-width space has no word piece (the normalizer drops it): nothing would carry a label
    sentences = tagged_from_lists([["\u200b"], ["\u200b", "\u200b"]], [["B-PER"], ["O", "O"]])
    with pytest.raises(TrainingError, match="no word of the training data has a word piece"):
        kbert.train(task="token-classification", model=str(CHECKPOINTS / "tiny-cased-token-cls"), train=sentences,
                    output=str(tmp_path / "o"), epochs=1, verbose=0)
