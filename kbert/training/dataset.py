"""``tf.data`` input for fine-tuning: tokenize in ``map``, cache, shuffle, bucket by length, prefetch.

    (texts, pairs, labels) ─► batch(1024) ─► map(tokenizer, parallel) ─► unbatch ─► cache
                           ─► shuffle(seed, every epoch) ─► bucket_by_sequence_length ─► prefetch

Tokenization happens once (the first epoch fills the cache); every batch is padded only to its own
longest example, and examples of similar length share batches, so short texts do not pay for long ones.

Example:
    >>> import numpy as np
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.training.dataset import make_dataset
    >>> tok = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls").tokenizer
    >>> data = make_dataset(tok, ["good", "bad movie", "great"], None, np.array([1, 0, 1]), batch_size=2)
    >>> data.num_batches, sorted(next(iter(data.dataset))[0])
    (2, ['padding_mask', 'segment_ids', 'token_ids'])
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

TOKENIZE_CHUNK = 1024  # texts tokenized per map call


@dataclasses.dataclass(frozen=True)
class TrainingData:
    dataset: tf.data.Dataset  # ({"token_ids", "segment_ids", "padding_mask"}, labels) batches
    num_examples: int
    num_batches: int


def _dense_example(features, label):
    return {k: v.to_tensor() if isinstance(v, tf.RaggedTensor) else v for k, v in features.items()}, label


def bucket_boundaries(max_length: int, step: int = 16) -> list[int]:
    """Upper bounds (exclusive) of the length buckets: 17, 33, ... up to ``max_length``."""
    return list(range(step + 1, max_length + 1, step))


def make_dataset(tokenizer, texts: list[str], text_pairs: list[str] | None, labels: np.ndarray, *,
                 batch_size: int, max_length: int = 128, shuffle: bool = False, seed: int = 0,
                 bucket: bool = True) -> TrainingData:
    """Batches of model inputs and labels (see the module docstring); ``labels`` has one row per text."""
    num_examples = len(texts)
    columns = (texts, text_pairs, labels) if text_pairs is not None else (texts, labels)
    source = tf.data.Dataset.from_tensor_slices(columns)

    def tokenize(*batch):
        pairs = batch[1] if text_pairs is not None else None
        encoding = tokenizer.encode(batch[0], pairs, max_length=max_length)
        features = {"token_ids": encoding.token_ids, "segment_ids": encoding.segment_ids,
                    "padding_mask": tf.ones_like(encoding.token_ids)}
        return features, batch[-1]

    dataset = (source.batch(TOKENIZE_CHUNK)
               .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .unbatch()
               .map(_dense_example))  # unbatched ragged rows are 1-D: make their spec dense for padding
    padding = tf.constant(0, dtype=tf.as_dtype(labels.dtype))
    return batch_examples(dataset, num_examples, label_shape=list(labels.shape[1:]), label_padding=padding,
                          pad_id=tokenizer.pad_id, batch_size=batch_size, max_length=max_length, shuffle=shuffle,
                          seed=seed, bucket=bucket)


def batch_examples(dataset: tf.data.Dataset, num_examples: int, *, label_shape: list, label_padding: tf.Tensor,
                   pad_id: int, batch_size: int, max_length: int, shuffle: bool = False, seed: int = 0,
                   bucket: bool = True) -> TrainingData:
    """Cache, shuffle, batch (by length buckets, or in order) and prefetch ``(features, label)`` examples.

    ``label_shape`` is the padded shape of one label (``[]`` for a class id, ``[None]`` for one label
    per token); labels are padded with ``label_padding``.
    """
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    padded_shapes = ({"token_ids": [None], "segment_ids": [None], "padding_mask": [None]}, label_shape)
    padding_values = ({"token_ids": pad_id, "segment_ids": 0, "padding_mask": 0}, label_padding)
    if bucket:
        boundaries = bucket_boundaries(max_length)
        dataset = dataset.bucket_by_sequence_length(
            lambda features, label: tf.shape(features["token_ids"])[0], bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1), padded_shapes=padded_shapes,
            padding_values=padding_values)
    else:  # batches in dataset order, each padded to its longest (what a PyTorch collator does)
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes, padding_values=padding_values)
    # One pass to count batches; it also fills the cache, so tokenization still happens once.
    num_batches = int(dataset.reduce(0, lambda count, _: count + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(tf.data.AUTOTUNE)
    return TrainingData(dataset, num_examples, num_batches)
