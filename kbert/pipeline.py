"""``kbert.pipeline(task, model=...)``: Hugging Face-style inference on Keras.

    inputs ─► task.parse_inputs ─► tokenizer (in-graph) ─► sort by length, batch, pad to a bucket
           ─► compiled forward pass (one trace for all shapes) ─► task.postprocess ─► task.package

Sorting by length and padding each batch only to its bucket (a multiple of 8) is where the speed
comes from: short sentences never pay for 128 or 512 positions. Results come back in input order.

Example:
    >>> import kbert
    >>> classifier = kbert.pipeline("text-classification", model="tests/fixtures/checkpoints/tiny-uncased-cls")
    >>> result = classifier("I love Paris")
    >>> sorted(result[0])
    ['label', 'score']
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

from kbert.checkpoint import load_checkpoint
from kbert.errors import InputError
from kbert.tasks import ExampleOutput, get_task
from kbert.tokenizer import Encoding

BUCKET_MULTIPLE = 8


def bucket_length(longest: int, max_length: int) -> int:
    """Padded length for a batch whose longest row has ``longest`` tokens."""
    return min(max_length, -(-longest // BUCKET_MULTIPLE) * BUCKET_MULTIPLE)


def pipeline(task: str, model: str | os.PathLike | None = None, *, batch_size: int = 32,
             max_length: int | None = None, xla: bool = False, **task_options) -> "Pipeline":
    """Build a pipeline for ``task`` (``"text-classification"``, ``"feature-extraction"``, ...).

    Args:
        task: a registered task name or alias (see ``kbert.tasks.task_names()``).
        model: a checkpoint folder, ``"minilm"`` / ``None`` for the embedded default, or ``hf://org/name``.
        batch_size: examples per forward pass (can be overridden per call).
        max_length: truncate inputs to this many tokens (default: the tokenizer's ``model_max_length``).
        xla: compile the forward pass with XLA (faster per batch, one compile per batch shape).
        task_options: passed to the task (e.g. ``id2label`` for text classification).
    """
    task_cls = get_task(task)
    return Pipeline(task_cls(load_checkpoint(model), **task_options), batch_size=batch_size,
                    max_length=max_length, xla=xla)


class Pipeline:
    """Batched, length-bucketed inference for one task; call it like a Hugging Face pipeline."""

    def __init__(self, task, *, batch_size: int = 32, max_length: int | None = None, xla: bool = False):
        self.task = task
        self.tokenizer = task.checkpoint.tokenizer
        self.batch_size = _check_batch_size(batch_size)
        self.max_length = min(max_length or self.tokenizer.model_max_length, self.tokenizer.model_max_length)
        self.model = task.build_model()
        spec = tf.TensorSpec([None, None], tf.int32)
        self._forward = tf.function(self._call_model, input_signature=[spec, spec, spec], jit_compile=xla)
        self._encoders: dict[tuple[bool, int | None], Any] = {}

    def _encoder(self, is_pair: bool, stride: int | None):
        """Tokenization traced once per (pair?, stride): eagerly its ~100 small ops cost ~0.1 s per call."""
        key = (is_pair, stride)
        if key not in self._encoders:
            texts = tf.TensorSpec([None], tf.string)
            if is_pair:
                self._encoders[key] = tf.function(lambda t, p: self._encode(t, p, stride), input_signature=[texts, texts])
            else:
                self._encoders[key] = tf.function(lambda t: self._encode(t, None, stride), input_signature=[texts])
        return self._encoders[key]

    def _encode(self, texts, text_pairs, stride):
        encoding = self.tokenizer.encode(texts, text_pairs, max_length=self.max_length, stride=stride,
                                         truncation="longest_first" if stride is None else "only_second")
        return {field.name: getattr(encoding, field.name) for field in dataclasses.fields(encoding)}

    def _call_model(self, token_ids, segment_ids, padding_mask):
        return self.model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
                          training=False)

    def __call__(self, inputs: Any, batch_size: int | None = None, **params) -> Any:
        params = self.task.check_parameters(params)
        examples = self.task.parse_inputs(inputs, params)
        windows = self.run_windows(examples, batch_size=batch_size, stride=self.task.window_stride(params))
        return self.task.package([self.task.postprocess_windows(w, **params) for w in windows], inputs, params)

    def run(self, examples, batch_size: int | None = None) -> list[ExampleOutput]:
        """Model outputs of every example, in input order, padding removed (long inputs truncated)."""
        return [windows[0] for windows in self.run_windows(examples, batch_size=batch_size)]

    def run_windows(self, examples, batch_size: int | None = None, stride: int | None = None) -> list[list[ExampleOutput]]:
        """Model outputs of every window of every example, in input order, padding removed.

        Without ``stride`` each example has one window (truncated to ``max_length``); with it, long
        inputs are split into windows overlapping by ``stride`` tokens, as Hugging Face's
        ``return_overflowing_tokens=True`` does.
        """
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        results: list[list[ExampleOutput]] = [[] for _ in examples]
        singles = [i for i, e in enumerate(examples) if e.text_pair is None]
        pairs = [i for i, e in enumerate(examples) if e.text_pair is not None]
        for group, is_pair in ((singles, False), (pairs, True)):
            if not group:
                continue
            texts = [tf.constant([examples[i].text for i in group])]
            if is_pair:
                texts.append(tf.constant([examples[i].text_pair for i in group]))
            encoding = Encoding(**self._encoder(is_pair, self._usable_stride(stride, texts, is_pair))(*texts))
            sample = encoding.sample_index.numpy()
            lengths = encoding.token_ids.row_lengths().numpy()
            order = np.argsort(-lengths, kind="stable")
            window_outputs: list[dict | None] = [None] * len(lengths)
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                for row, output in zip(rows, self._run_batch(encoding, rows, lengths)):
                    window_outputs[row] = output
            for row, output in enumerate(window_outputs):  # windows of one input are consecutive rows
                example = group[sample[row]]
                results[example].append(ExampleOutput(examples[example], **output))
        return results

    def _usable_stride(self, stride: int | None, texts, is_pair: bool) -> int | None:
        """``stride`` as the tokenizer can use it. A stride that leaves no room to advance is only an
        error when some text needs a second window (Hugging Face's tokenizer fails only then)."""
        if stride is None or is_pair or stride < self.max_length - 2:
            return stride
        longest = int(tf.reduce_max(self.tokenizer.tokenize(texts[0]).ids.row_lengths()))
        if longest > self.max_length - 2:
            raise InputError(f"stride={stride} must be less than the {self.max_length - 2} tokens a window holds "
                             f"(max_length {self.max_length} minus [CLS] and [SEP]); a text of {longest} tokens "
                             f"needs several windows")
        return None

    def _run_batch(self, encoding, rows: np.ndarray, lengths: np.ndarray):
        length = bucket_length(int(lengths[rows].max()), self.max_length)
        take = tf.constant(rows, tf.int32)
        ragged = {name: tf.gather(getattr(encoding, name), take)
                  for name in ("token_ids", "segment_ids", "starts", "ends", "sequence_ids")}
        ids = ragged["token_ids"].to_tensor(default_value=self.tokenizer.pad_id, shape=[None, length])
        segments = ragged["segment_ids"].to_tensor(shape=[None, length])
        mask = tf.ones_like(ragged["token_ids"]).to_tensor(shape=[None, length])
        outputs = {k: v.numpy() for k, v in self._forward(ids, segments, mask).items()}
        token_level = set(self.task.token_level_outputs)
        as_lists = {k: v.to_list() for k, v in ragged.items() if k != "token_ids"}
        ids_list = ragged["token_ids"].to_list()
        for b, row in enumerate(rows):
            n = int(lengths[row])
            yield {
                "outputs": {k: (v[b, :n] if k in token_level else v[b]) for k, v in outputs.items()},
                "token_ids": np.asarray(ids_list[b]),
                "starts": np.asarray(as_lists["starts"][b]),
                "ends": np.asarray(as_lists["ends"][b]),
                "sequence_ids": np.asarray(as_lists["sequence_ids"][b]),
            }


def _check_batch_size(batch_size) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size
