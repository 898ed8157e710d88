"""``tf.data`` input for fine-tuning: tokenize once up front, shuffle, bucket by length, prefetch.

    (texts, pairs) ─► tokenizer (eager, in chunks of 8,192) ─► ragged token ids ─┐
    labels ───────────────────────────────────────────────────────────────────────┴► from_tensor_slices
        ─► cache ─► shuffle(seed, every epoch) ─► bucket_by_sequence_length ─► prefetch

Tokenization happens once, before training, as Hugging Face's examples do it: called eagerly it costs
no trace (tracing the tokenizer inside ``map`` took ~3 s on a 2-core CPU, more than tokenizing 4,000
texts), and the ``tf.data`` graph holds no tokenizer, so creating its iterator every epoch is cheap.
The number of batches is counted from the token lengths, without a pass over the data. Every batch
is padded only to its own longest example, and examples of similar length share batches, so short
texts do not pay for long ones.

Example:
    >>> import numpy as np
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.batching.dataset import make_dataset
    >>> tok = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls").tokenizer
    >>> data = make_dataset(tok, ["good", "bad movie", "great"], None, np.array([1, 0, 1]), batch_size=2)
    >>> data.num_batches, sorted(next(iter(data.dataset))[0])
    (2, ['padding_mask', 'segment_ids', 'token_ids'])
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

TOKENIZE_CHUNK = 8192  # texts per eager tokenizer call (each call has a fixed cost of ~0.1-0.3 s)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    dataset: tf.data.Dataset  # ({"token_ids", "segment_ids", "padding_mask"}, labels) batches
    num_examples: int | None  # None: not counted (streamed input with steps_per_epoch given)
    num_batches: int  # per epoch
    repeats: bool = False  # the dataset never ends: fit runs num_batches steps per epoch (streamed input)
    source: str = ""  # how the batches are read, for the run's summary line (streamed input)


def bucket_boundaries(max_length: int, step: int = 16) -> list[int]:
    """Upper bounds (exclusive) of the length buckets: 17, 33, ... up to ``max_length``."""
    return list(range(step + 1, max_length + 1, step))


def tokenize_texts(tokenizer, texts: list[str], text_pairs: list[str] | None, *,
                   max_length: int) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Token ids and segment ids of every text (pair), ``(N, (T))`` int32, truncated to ``max_length``."""
    token_ids, segment_ids = [], []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        stop = start + TOKENIZE_CHUNK
        pairs = None if text_pairs is None else tf.constant(list(text_pairs[start:stop]), tf.string)
        encoding = tokenizer.encode(tf.constant(list(texts[start:stop]), tf.string), pairs, max_length=max_length)
        token_ids.append(tf.cast(encoding.token_ids, tf.int32))
        segment_ids.append(tf.cast(encoding.segment_ids, tf.int32))
    if not token_ids:
        empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
        return empty, empty
    if len(token_ids) == 1:
        return token_ids[0], segment_ids[0]
    return tf.concat(token_ids, axis=0), tf.concat(segment_ids, axis=0)


def make_dataset(tokenizer, texts: list[str], text_pairs: list[str] | None, labels: np.ndarray, *,
                 batch_size: int, max_length: int = 128, shuffle: bool = False, seed: int = 0,
                 bucket: bool = True) -> TrainingData:
    """Batches of model inputs and labels (see the module docstring); ``labels`` has one row per text."""
    token_ids, segment_ids = tokenize_texts(tokenizer, texts, text_pairs, max_length=max_length)
    source = tf.data.Dataset.from_tensor_slices(({"token_ids": token_ids, "segment_ids": segment_ids}, labels))
    dataset = source.map(model_features)
    padding = tf.constant(0, dtype=tf.as_dtype(labels.dtype))
    return batch_examples(dataset, len(texts), label_shape=list(labels.shape[1:]), label_padding=padding,
                          pad_id=tokenizer.pad_id, batch_size=batch_size, max_length=max_length, shuffle=shuffle,
                          seed=seed, bucket=bucket, lengths=token_ids.row_lengths().numpy())


def model_features(features, label):
    """One example's ``(features, label)`` with dense ids and its ``padding_mask`` (ones: no padding yet)."""
    features = {k: v.to_tensor() if isinstance(v, tf.RaggedTensor) else v for k, v in features.items()}
    return {**features, "padding_mask": tf.ones_like(features["token_ids"])}, label


def count_batches(lengths: np.ndarray, *, batch_size: int, max_length: int, bucket: bool = True) -> int:
    """The batches :func:`batch_examples` makes of examples with these token lengths (no pass over the data).

    ``bucket_by_sequence_length`` fills one batch per length bucket at a time and emits each bucket's
    partial batch at the end: ``ceil(n_b / batch_size)`` batches for a bucket of ``n_b`` examples.

    >>> count_batches(np.array([5, 6, 7, 40]), batch_size=2, max_length=64)  # buckets [5, 6, 7] and [40]
    3
    """
    lengths = np.asarray(lengths)
    if not bucket:
        return -(-len(lengths) // batch_size)
    buckets = np.searchsorted(bucket_boundaries(max_length), lengths, side="right")
    return int(sum(-(-int(n) // batch_size) for n in np.bincount(buckets) if n))


def batch_examples(dataset: tf.data.Dataset, num_examples: int, *, label_shape: list, label_padding: tf.Tensor,
                   pad_id: int, batch_size: int, max_length: int, shuffle: bool = False, seed: int = 0,
                   bucket: bool = True, lengths: np.ndarray | None = None) -> TrainingData:
    """Cache, shuffle, batch (by length buckets, or in order) and prefetch ``(features, label)`` examples.

    ``label_shape`` is the padded shape of one label (``[]`` for a class id, ``[None]`` for one label
    per token); labels are padded with ``label_padding``. ``lengths`` (every example's token count) gives
    the number of batches without a counting pass over the data (which runs every ``map`` before it).
    """
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
        if lengths is not None:
            # Draw (and drop) the first order, as the counting pass below does: a seed gives the same
            # batches, epoch by epoch, whether the batches were counted or not (and as kbert <= 0.1 gave).
            iter(dataset)
    dataset = pad_and_batch(dataset, label_shape=label_shape, label_padding=label_padding, pad_id=pad_id,
                            batch_size=batch_size, max_length=max_length, bucket=bucket)
    if lengths is not None:
        num_batches = count_batches(lengths, batch_size=batch_size, max_length=max_length, bucket=bucket)
    else:  # one pass to count batches; it also fills the cache, so what runs before it runs once
        num_batches = int(dataset.reduce(0, lambda count, _: count + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(tf.data.AUTOTUNE)
    return TrainingData(dataset, num_examples, num_batches)


def pad_and_batch(dataset: tf.data.Dataset, *, label_shape: list, label_padding: tf.Tensor, pad_id: int,
                  batch_size: int, max_length: int, bucket: bool = True) -> tf.data.Dataset:
    """Batches of ``(features, label)`` examples, each padded to its longest: by length buckets, or in order."""
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
    return dataset
