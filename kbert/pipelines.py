"""``kbert.pipeline(task, model=...)``: Hugging Face-style inference on Keras.

    inputs ─► task.parse_inputs ─► tokenizer (in-graph) ─► sort by length, batch, pad to a bucket
           ─► compiled forward pass (one trace for all shapes) ─► task.postprocess ─► task.package

Sorting by length and padding each batch only to its longest row is where the speed comes from:
short sentences never pay for 128 or 512 positions. Results come back in input order. A new batch
shape costs nothing on TensorFlow's CPU kernels (measured: benchmarks/bench_cold_inference.py), so
lengths are not rounded up; with ``xla=True`` every shape is a compile, so they are rounded up to a
multiple of 8 there.

Example:
    >>> import kbert
    >>> classifier = kbert.pipeline("text-classification", model="tests/fixtures/checkpoints/tiny-uncased-cls")
    >>> result = classifier("I love Paris")
    >>> sorted(result[0])
    ['label', 'score']
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any

import numpy as np
import tensorflow as tf

from kbert.checkpoint import load_checkpoint
from kbert.errors import InputError
from kbert.precision import check_precision, inference_model
from kbert.progress import progress
from kbert.tasks import ExampleOutput, get_task
from kbert.tokenizer import Encoding
from kbert.tokenizer.tracing import EagerThenTraced, own_function

BUCKET_MULTIPLE = 8  # with XLA: padded lengths are multiples of this (one compile per batch shape)
RAGGED_FIELDS = ("token_ids", "segment_ids", "starts", "ends", "sequence_ids")
OUTPUT_FIELDS = ("token_ids", "starts", "ends", "sequence_ids")  # the token fields of an ExampleOutput
EAGER_TOKENIZER_TEXTS = 1024  # calls with more texts always use the traced tokenizer


def bucket_length(longest: int, max_length: int, multiple: int = BUCKET_MULTIPLE) -> int:
    """Padded length for a batch whose longest row has ``longest`` tokens."""
    return min(max_length, -(-longest // multiple) * multiple)


def pipeline(task: str, model: str | os.PathLike | None = None, *, batch_size: int = 32,
             max_length: int | None = None, xla: bool = False, precision: str = "float32", **options) -> "Pipeline":
    """Build a pipeline for ``task`` (``"text-classification"``, ``"feature-extraction"``, ...).

    Args:
        task: a registered task name or alias (see ``kbert.tasks.task_names()``).
        model: a checkpoint folder, ``"minilm"`` / ``None`` for the embedded default, or ``hf://org/name``.
        batch_size: examples per forward pass (can be overridden per call).
        max_length: truncate inputs to this many tokens (default: the tokenizer's ``model_max_length``).
        xla: compile the forward pass with XLA (faster per batch, one compile per batch shape).
        precision: ``"float32"`` or ``"bfloat16"`` (bfloat16 matmuls, float32 softmax, layer-norm statistics and
            outputs; refused where the CPU lacks avx512_bf16 / AMX and there is no GPU: :mod:`kbert.precision`).
        options: call parameters of the task (``top_k``, ``aggregation_strategy``, ``stride``, ...), as
            transformers accepts them at construction: they become the defaults of every call, and a
            call's own arguments override them. Anything else goes to the task (e.g. ``id2label``).

    Example:
        >>> ner = pipeline("ner", model="tests/fixtures/checkpoints/tiny-cased-token-cls", aggregation_strategy="first")
        >>> sorted(ner("Sinan lives in Paris")[0])
        ['end', 'entity_group', 'score', 'start', 'word']
        >>> sorted(ner("Sinan lives in Paris", aggregation_strategy="none")[0])
        ['end', 'entity', 'index', 'score', 'start', 'word']
    """
    task_cls = get_task(task)
    call_defaults = {k: options.pop(k) for k in list(options) if k in task_cls.call_parameters}
    constructor = [p for p in inspect.signature(task_cls.__init__).parameters if p not in ("self", "checkpoint")]
    unknown = sorted(set(options) - set(constructor))
    if unknown:
        raise InputError(f"{task_cls.name}: unknown argument(s) {unknown}; accepted: "
                         f"{[*task_cls.call_parameters, *constructor]}")
    return Pipeline(task_cls(load_checkpoint(model), **options), batch_size=batch_size,
                    max_length=max_length, xla=xla, precision=precision, **call_defaults)


class Pipeline:
    """Batched, length-bucketed inference for one task; call it like a Hugging Face pipeline.

    Keyword arguments beyond the listed ones are the task's call parameters, used as defaults of every call.
    """

    def __init__(self, task, *, batch_size: int = 32, max_length: int | None = None, xla: bool = False,
                 precision: str = "float32", **call_defaults):
        self.task = task
        self.precision = check_precision(precision)
        task.check_parameters(dict(call_defaults))  # unknown or invalid defaults fail here, not at the first call
        self.call_defaults = call_defaults
        self.tokenizer = task.checkpoint.tokenizer
        self.batch_size = _check_batch_size(batch_size)
        self.max_length = min(max_length or self.tokenizer.model_max_length, self.tokenizer.model_max_length)
        self.model = inference_model(task, self.precision)
        spec = tf.TensorSpec([None, None], tf.int32)
        # autograph=False here and for the tokenizer: nothing in them branches on tensors, and converting
        # their code was most of the first call's tracing time (tokenizer 5.3 s -> 1.6 s of CPU measured).
        self._forward = own_function(self._call_model, input_signature=[spec, spec, spec], jit_compile=xla,
                                     autograph=False)
        self._bucket_multiple = BUCKET_MULTIPLE if xla else 1
        self._encoders: dict[tuple[bool, int | None, int], EagerThenTraced] = {}

    def _tokenize(self, texts: list[tf.Tensor], is_pair: bool, stride: int | None, max_length: int) -> Encoding:
        """The encoding of one call's texts (and pairs), eagerly or by the traced tokenizer.

        Tracing the tokenizer costs ~2 s (building ~1,650 ops, then instantiating them) and makes a call
        cost ~10-40 ms; eagerly a call of up to 1,024 texts costs ~0.1-0.2 s (measured, 2-core CPU). So
        the calls of one kind run eagerly until they have spent about a second, then the traced function
        takes over (:class:`~kbert.tokenizer.tracing.EagerThenTraced`); a call of more than
        EAGER_TOKENIZER_TEXTS texts uses it at once. A pipeline called once or twice never traces; a long
        job traces once. Both give the same encodings.
        """
        return Encoding(**self._encoder(is_pair, stride, max_length)(*texts))

    def _encoder(self, is_pair: bool, stride: int | None, max_length: int) -> EagerThenTraced:
        """Tokenization of one kind (pair?, stride, window length), eager first, then traced once."""
        key = (is_pair, stride, max_length)
        if key not in self._encoders:
            texts = tf.TensorSpec([None], tf.string)
            if is_pair:
                encode, signature = (lambda t, p: self._encode(t, p, stride, max_length)), [texts, texts]
            else:
                encode, signature = (lambda t: self._encode(t, None, stride, max_length)), [texts]
            self._encoders[key] = EagerThenTraced(encode, signature, max_eager_rows=EAGER_TOKENIZER_TEXTS)
        return self._encoders[key]

    def _encode(self, texts, text_pairs, stride, max_length):
        encoding = self.tokenizer.encode(texts, text_pairs, max_length=max_length, stride=stride,
                                         truncation="longest_first" if stride is None else "only_second")
        return {field.name: getattr(encoding, field.name) for field in dataclasses.fields(encoding)}

    def _call_model(self, token_ids, segment_ids, padding_mask):
        return self.model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
                          training=False)

    def __call__(self, *inputs: Any, batch_size: int | None = None, **params) -> Any:
        """Results of ``inputs`` (one argument as transformers takes it; several positional arguments reach
        the task as a tuple, e.g. ``(question, context)``; none: the task reads keyword inputs such as
        ``question=, context=``)."""
        given = inputs[0] if len(inputs) == 1 else (inputs or None)
        results, params = self._results(given, batch_size, params)
        return self.task.package(results, given, params)

    def each(self, inputs: Any, batch_size: int | None = None, **params) -> list:
        """One result per input of the list ``inputs``, each shaped as in a call with a list (``kbert predict``)."""
        results, params = self._results(inputs, batch_size, params)
        return [self.task.package_one(r, params) for r in results]

    def _results(self, inputs, batch_size, params) -> tuple[list, dict]:
        params = self.task.check_parameters({**self.call_defaults, **params})
        examples = self.task.parse_inputs(inputs, params)
        windows = self.run_windows(examples, batch_size=batch_size, stride=self.task.window_stride(params),
                                   max_length=self.task.window_length(params))
        return [self.task.postprocess_windows(w, **params) for w in windows], params

    def run(self, examples, batch_size: int | None = None) -> list[ExampleOutput]:
        """Model outputs of every example, in input order, padding removed (long inputs truncated)."""
        return [windows[0] for windows in self.run_windows(examples, batch_size=batch_size)]

    def run_windows(self, examples, batch_size: int | None = None, stride: int | None = None,
                    max_length: int | None = None) -> list[list[ExampleOutput]]:
        """Model outputs of every window of every example, in input order, padding removed.

        Without ``stride`` each example has one window (truncated to ``max_length``, default the
        pipeline's); with it, long inputs are split into windows overlapping by ``stride`` tokens, as
        Hugging Face's ``return_overflowing_tokens=True`` does.
        """
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        max_length = self.max_length if max_length is None else max_length
        results: list[list[ExampleOutput]] = [[] for _ in examples]
        singles = [i for i, e in enumerate(examples) if e.text_pair is None]
        pairs = [i for i, e in enumerate(examples) if e.text_pair is not None]
        for group, is_pair in ((singles, False), (pairs, True)):
            if not group:
                continue
            texts = [tf.constant([examples[i].text for i in group])]
            if is_pair:
                texts.append(tf.constant([examples[i].text_pair for i in group]))
            encoding = self._tokenize(texts, is_pair, self._usable_stride(stride, texts, is_pair, max_length),
                                      max_length)
            sample = encoding.sample_index.numpy()
            host = _HostEncoding.of(encoding)
            too_long = np.flatnonzero(host.lengths > max_length)
            if too_long.size:  # the traced tokenizer skips the eager check of a first text too long for windows
                raise InputError(f"input {group[sample[too_long[0]]]}: its first text leaves no room for the second "
                                 f"in windows of {max_length} tokens with stride={stride} (a window came out "
                                 f"{host.lengths[too_long[0]]} tokens long); shorten it or raise the window length")
            order = np.argsort(-host.lengths, kind="stable")
            window_outputs: list[dict | None] = [None] * len(host.lengths)
            batches = range(0, len(order), batch_size)
            for start in progress(batches, total=len(batches)):  # a bar only inside progress_bars(), on a terminal
                rows = order[start:start + batch_size]
                for row, output in zip(rows, self._run_batch(host, rows, max_length)):
                    window_outputs[row] = output
            for row, output in enumerate(window_outputs):  # windows of one input are consecutive rows
                example = group[sample[row]]
                results[example].append(ExampleOutput(examples[example], **output))
        return results

    def _usable_stride(self, stride: int | None, texts, is_pair: bool, max_length: int) -> int | None:
        """``stride`` as the tokenizer can use it. A stride that leaves no room to advance is only an
        error when some text needs a second window (Hugging Face's tokenizer fails only then)."""
        if stride is None or is_pair or stride < max_length - 2:
            return stride
        longest = int(tf.reduce_max(self.tokenizer.tokenize(texts[0]).ids.row_lengths()))
        if longest > max_length - 2:
            raise InputError(f"stride={stride} must be less than the {max_length - 2} tokens a window holds "
                             f"(max_length {max_length} minus [CLS] and [SEP]); a text of {longest} tokens "
                             f"needs several windows")
        return None

    def _run_batch(self, host: "_HostEncoding", rows: np.ndarray, max_length: int):
        """Outputs of the windows ``rows``, padded together to the longest (dense inputs built in numpy)."""
        lengths = host.lengths[rows]
        length = bucket_length(int(lengths.max()), max_length, self._bucket_multiple)
        real = np.arange(length) < lengths[:, None]  # (B, L)
        flat = np.where(real, host.splits[rows, None] + np.arange(length), 0)  # positions in the flat values
        ids = np.where(real, host.values["token_ids"][flat], self.tokenizer.pad_id).astype(np.int32)
        segments = np.where(real, host.values["segment_ids"][flat], 0).astype(np.int32)
        outputs = {k: v.numpy() for k, v in self._forward(ids, segments, real.astype(np.int32)).items()}
        token_level = set(self.task.token_level_outputs)
        for b, row in enumerate(rows):
            n = int(lengths[b])
            begin = host.splits[row]
            yield {
                "outputs": {k: (v[b, :n] if k in token_level else v[b]) for k, v in outputs.items()},
                **{name: host.values[name][begin:begin + n].copy() for name in OUTPUT_FIELDS},
            }


@dataclasses.dataclass(frozen=True)
class _HostEncoding:
    """An :class:`Encoding`'s ragged fields as numpy: flat int64 values, row starts and lengths.

    Fetched once per call, so that batching is numpy indexing (no TF ops or ``to_list()`` per batch).
    All fields share the rows of ``token_ids`` (the tokenizer cuts them from one ragged tensor).
    """

    values: dict[str, np.ndarray]
    splits: np.ndarray  # (N + 1,) row starts in the flat values
    lengths: np.ndarray  # (N,)

    @classmethod
    def of(cls, encoding: Encoding) -> "_HostEncoding":
        splits = encoding.token_ids.row_splits.numpy()
        values = {name: getattr(encoding, name).flat_values.numpy().astype(np.int64) for name in RAGGED_FIELDS}
        return cls(values, splits, np.diff(splits))


def _check_batch_size(batch_size) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size
