"""Training input: tokenized once up front, batches counted from token lengths, same batches as a counting pass."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import CHECKPOINTS
from kbert.checkpoint import load_checkpoint
from kbert.batching.dataset import batch_examples, count_batches, make_dataset, tokenize_texts

WORDS = "the movie was good great bad boring and but story film actors were".split()


def random_texts(count, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 40))) for _ in range(count)]


def examples(lengths):
    rows = [np.full(n, 7, np.int32) for n in lengths]
    ids = tf.RaggedTensor.from_row_lengths(np.concatenate(rows), [len(r) for r in rows])
    return tf.data.Dataset.from_tensor_slices(({"token_ids": ids}, np.arange(len(rows)))).map(
        lambda f, y: ({"token_ids": f["token_ids"], "segment_ids": tf.zeros_like(f["token_ids"]),
                       "padding_mask": tf.ones_like(f["token_ids"])}, y))


def batches(data):
    return [(x["token_ids"].numpy().tolist(), y.numpy().tolist()) for x, y in data.dataset]


@pytest.mark.parametrize("bucket", [True, False])
def test_batches_counted_from_lengths_are_those_a_pass_counts(bucket):
    lengths = np.random.default_rng(0).integers(1, 65, size=301)
    options = dict(label_shape=[], label_padding=tf.constant(0, tf.int64), pad_id=0, batch_size=8, max_length=64,
                   shuffle=True, seed=3, bucket=bucket)
    counted = batch_examples(examples(lengths), len(lengths), **options)
    computed = batch_examples(examples(lengths), len(lengths), lengths=lengths, **options)
    assert computed.num_batches == counted.num_batches == count_batches(lengths, batch_size=8, max_length=64,
                                                                        bucket=bucket)
    # the same batches, epoch after epoch (the shuffle's first order is drawn either way)
    assert batches(computed) == batches(counted) and batches(computed) == batches(counted)
    assert computed.dataset.cardinality() == computed.num_batches


def test_tokens_are_the_tokenizers_in_chunks(monkeypatch):
    import kbert.batching.dataset as dataset

    tokenizer = load_checkpoint(str(CHECKPOINTS / "tiny-uncased-qa")).tokenizer
    texts, pairs = random_texts(23, 1), random_texts(23, 2)
    whole = tokenizer.encode(tf.constant(texts), tf.constant(pairs), max_length=24)
    monkeypatch.setattr(dataset, "TOKENIZE_CHUNK", 5)  # 5 calls, concatenated
    ids, segments = tokenize_texts(tokenizer, texts, pairs, max_length=24)
    assert ids.to_list() == whole.token_ids.to_list() and segments.to_list() == whole.segment_ids.to_list()
    data = make_dataset(tokenizer, texts, pairs, np.arange(23), batch_size=4, max_length=24)
    seen = sorted(y for _, labels in batches(data) for y in labels)
    assert seen == list(range(23)) and data.num_batches == len(batches(data))
