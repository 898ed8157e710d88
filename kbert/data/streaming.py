"""Training rows streamed from files by ``tf.data``: nothing is read into Python before the first step.

    --train FILE | GLOB | A,B,C ─► shards (sorted paths; csv / tsv / jsonl / tfrecord of tf.train.Example)
      ─► [multiworker: each worker its own shards, AutoShardPolicy.FILE; DATA when shards < workers]
      ─► interleave(one reader per shard, each row with its shard and line) ─► shuffle(buffer) ─► repeat
      ─► batch(PARSE_BATCH) ─► parse + check (a bad row stops the run naming shard:line) ─► label ids
      ─► tokenize (the checkpoint's in-graph tokenizer) ─► unbatch ─► length buckets ─► prefetch

Memory holds the shuffle buffer and a few batches, whatever the size of the data. The dataset never ends:
``fit`` runs ``steps_per_epoch`` steps an epoch (given, or rows / batch size counted by :func:`count_rows`,
one streaming pass that keeps only the label counts and checks every row before training starts).

A CSV/TSV row is one line (a quoted field may hold the delimiter, not a line break); every shard of a csv/tsv
with a header repeats it (``kbert shard`` writes them so). Bad rows are :class:`~kbert.errors.DataError`s
naming shard and line, never skipped; in training they surface from ``fit`` and :func:`bad_row_error`
turns TensorFlow's error back into kbert's.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(2):
    ...     _ = (folder / f"part-{i}.tsv").write_text(f"sentence\\tlabel\\ngood {i}\\t1\\nbad {i}\\t0\\n")
    >>> source = stream_source(str(folder / "part-*.tsv"), label_kind="class")
    >>> source.format, len(source.shards), source.header
    ('tsv', 2, True)
    >>> counted = count_rows(source)
    >>> counted.rows, dict(counted.counts)
    (4, {'0': 2, '1': 2})
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import re
import sys
import time
from collections import Counter

import numpy as np
import tensorflow as tf

from kbert.data import readers
from kbert.data.readers import ReadOptions
from kbert.data.sources import shard_paths, split_row_range
from kbert.errors import DataError

FORMATS = ("csv", "tsv", "jsonl", "tfrecord")
STREAM_ABOVE_BYTES = 32 * 2**20  # default: a single file larger than this is streamed (see is_streamed)
PARSE_BATCH = 1024  # rows parsed and tokenized per map call
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}
SHUFFLE_BUFFER = 10_000  # rows; 0 turns shuffling off
BAD_ROW = "kbert-bad-row"  # marks kbert's assertion messages inside TensorFlow errors
_FIELD = '(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|)'  # a CSV field: quoted ("" for a quote) or without quotes


@dataclasses.dataclass(frozen=True)
class StreamSource:
    """Where and how rows are read: shards of one format, which fields hold text, pair and label."""

    shards: tuple[str, ...]
    format: str  # csv, tsv, jsonl, tfrecord
    label_kind: str  # class, regression
    header: bool = False  # csv/tsv: the first line of every shard is a header
    width: int = 0  # csv/tsv: fields per row
    text: int | str = "text"  # csv/tsv: 0-based index; jsonl/tfrecord: field name
    text_pair: int | str | None = None
    label: int | str = "label"
    label_dtype: tf.DType = tf.string  # tfrecord: the label feature's type (bytes, int64 or float)

    @property
    def has_pairs(self) -> bool:
        return self.text_pair is not None


def is_streamed(train, stream: bool | None) -> bool:
    """Whether ``train`` is read by :func:`training_dataset`: ``stream`` when given; by default (None) for
    several shards, a glob, a TFRecord file, or one file larger than :data:`STREAM_ABOVE_BYTES`. A small
    file keeps the in-memory path (exact epochs, a shuffle over all rows); ``tfds:`` names and in-memory
    examples are never streamed."""
    from kbert.data.tfds_sources import is_tfds_name

    if stream is False or is_tfds_name(train):
        return False
    if isinstance(train, (list, tuple)):
        return all(isinstance(p, (str, os.PathLike)) for p in train) and bool(train)
    if not isinstance(train, (str, os.PathLike)):
        return False
    text = os.fspath(train)
    if split_row_range(text)[1] != slice(None):
        if stream:
            raise DataError(f"{text}: a row range is not streamed; drop [start:stop] or the stream option")
        return False
    if stream:
        return True
    if "," in text or glob.has_magic(text):
        return True
    return text.endswith((".tfrecord", ".tfrecords")) or (
        os.path.isfile(text) and os.path.getsize(text) > STREAM_ABOVE_BYTES)


def stream_source(train, *, label_kind: str, format: str | None = None, text_column=None, text_pair_column=None,
                  label_column=None, encoding: str = "utf-8") -> StreamSource:
    """The :class:`StreamSource` of ``train``, its columns found from the first shard's first row (or record)."""
    if label_kind not in ("class", "regression"):
        raise DataError(f"streamed input trains single-label classification and regression, not {label_kind!r} "
                        f"labels; read the file into memory (stream off)")
    if readers._codec(encoding) != readers._codec("utf-8"):
        raise DataError(f"streamed input is read as UTF-8, got encoding {encoding!r}; convert the files or read "
                        f"them into memory (stream off)")
    shards = shard_paths(train)
    names = {readers.format_of(p, format, formats=FORMATS, extensions=EXTENSIONS) for p in shards}
    if len(names) > 1:
        raise DataError(f"{train}: shards of several formats {sorted(names)}; give shards of one format")
    fmt = names.pop()
    base = dict(shards=tuple(shards), format=fmt, label_kind=label_kind)
    if fmt == "jsonl":
        return StreamSource(**base, **_named_columns(shards[0], text_column, text_pair_column, label_column))
    if fmt == "tfrecord":
        columns = _named_columns(shards[0], text_column, text_pair_column, label_column)
        return StreamSource(**base, **columns, label_dtype=_tfrecord_label_dtype(shards[0], columns["label"]))
    options = ReadOptions(text_column, text_pair_column, label_column, None, label_kind)
    delimiter = "\t" if fmt == "tsv" else ","
    with open(shards[0], encoding="utf-8-sig", newline="") as f:
        first = next(csv.reader(io.StringIO(f.readline()), delimiter=delimiter), None)
    if not first:
        raise DataError(f"{shards[0]}:1: the first line is empty; a streamed shard starts with its header or a row")
    has_header = readers._has_header(first, options)
    columns = readers._columns(first, has_header, options, f"{shards[0]}:1")
    return StreamSource(**base, header=has_header, width=len(first), text=columns.text,
                        text_pair=columns.text_pair, label=columns.label)


def _named_columns(shard: str, text, pair, label) -> dict:
    for role, spec in (("text", text), ("text pair", pair), ("label", label)):
        if spec is not None and not isinstance(spec, str):
            raise DataError(f"{shard}: fields of JSON lines and TFRecord examples are named; the {role} column "
                            f"must be a name, got {spec!r}")
    return {"text": text or "text", "text_pair": pair, "label": label or "label"}


def _tfrecord_label_dtype(shard: str, label: str) -> tf.DType:
    for raw in tf.data.TFRecordDataset(shard).take(1):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature.get(label)
        if feature is None:
            raise DataError(f"{shard}: record 1: no {label!r} feature (features: {', '.join(example.features.feature)})")
        kind = feature.WhichOneof("kind")
        return {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}[kind]
    raise DataError(f"{shard}: no records")


# --- rows: (shard, line, raw) ------------------------------------------------------------------------------
def _rows(source: StreamSource, worker: int = 0, num_workers: int = 1) -> tf.data.Dataset:
    """``(shard, line, raw)`` of every row, shards interleaved (one row of each in turn), in a fixed order;
    with several workers and at least as many shards, only worker ``worker``'s shards (every num_workers-th)."""
    header = source.header

    def read(path):
        if source.format == "tfrecord":
            records = tf.data.TFRecordDataset(path)
        else:
            records = tf.data.TextLineDataset(path)
        # line numbers by scan, not enumerate: a RangeDataset source would stop AutoShardPolicy.FILE finding the files
        numbered = records.scan(tf.constant(0, tf.int64), lambda n, raw: (n + 1, (n + 1, raw)))
        if header:
            numbered = numbered.skip(1)
        if source.format != "tfrecord":  # blank lines are no rows (as the in-memory readers skip them)
            numbered = numbered.filter(lambda n, raw: tf.strings.length(tf.strings.strip(raw)) > 0)
        return numbered.map(lambda n, raw: (path, n, raw))

    shards = tf.data.Dataset.from_tensor_slices(list(source.shards))
    if num_workers > 1 and len(source.shards) >= num_workers:
        shards = shards.shard(num_workers, worker)
    return shards.interleave(read, cycle_length=min(len(source.shards), 16), block_length=1,
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _where(source: StreamSource, shard, line):
    unit = ": record " if source.format == "tfrecord" else ":"
    return tf.strings.join([shard, unit, tf.strings.as_string(line)])


def _check(ok, source: StreamSource, shards, lines, message):
    """Stop with ``shard:line: message`` (``message``: a (B,) string tensor) at the first row where ``ok`` fails."""
    first = tf.argmin(tf.cast(ok, tf.int32))
    text = tf.strings.join([BAD_ROW, "<<", _where(source, shards[first], lines[first]), ": ", message[first], ">>"])
    return tf.debugging.Assert(tf.reduce_all(ok), [text], summarize=1)


def _fields(source: StreamSource, shards, lines, raw):
    """``(text, text_pair or None, label string or value)`` of a (B,) batch of raw rows, every row checked."""
    if source.format in ("csv", "tsv"):
        d = "\t" if source.format == "tsv" else ","
        field = _FIELD.format(d=d)
        ok = tf.strings.regex_full_match(tf.strings.regex_replace(raw, "\r$", ""),
                                         f"{field}(?:{d}{field}){{{source.width - 1}}}")
        message = tf.fill(tf.shape(raw), f"expected {source.width} {source.format.upper()} fields (as in the first "
                                         f"row), or a field with an unmatched quote")
        with tf.control_dependencies([_check(ok, source, shards, lines, message)]):
            columns = tf.io.decode_csv(tf.strings.regex_replace(raw, "\r$", ""), [""] * source.width,
                                       field_delim=d, use_quote_delim=True)
        pair = columns[source.text_pair] if source.has_pairs else None
        return columns[source.text], pair, tf.strings.strip(columns[source.label])
    if source.format == "jsonl":
        out = tf.numpy_function(lambda *a: _json_rows(source, *a), [shards, lines, raw],
                                [tf.string, tf.string, tf.string, tf.string], stateful=False)
        text, pair, label, errors = (tf.ensure_shape(t, [None]) for t in out)
        with tf.control_dependencies([_check(tf.equal(errors, ""), source, shards, lines, errors)]):
            return tf.identity(text), (tf.identity(pair) if source.has_pairs else None), tf.identity(label)
    return _tfrecord_fields(source, shards, lines, raw)


def _json_rows(source: StreamSource, shards, lines, raw):
    options = ReadOptions(source.text, source.text_pair, source.label, None, source.label_kind)
    keys = {"text": source.text, "text_pair": source.text_pair or "text_pair", "label": source.label}
    out = [[], [], [], []]
    for shard, line, row in zip(shards, lines, raw):
        where = f"{shard.decode()}:{line}"
        try:
            item = json.loads(row)
            if not isinstance(item, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}")
            example = readers._json_example(item, keys, options, where)
            values = (example.text, example.text_pair or "", str(example.label), "")
        except ValueError as err:  # DataError and json.JSONDecodeError
            message = str(err).split(f"{where}: ", 1)[-1] if isinstance(err, DataError) else f"not valid JSON ({err})"
            values = ("", "", "", message)
        for column, value in zip(out, values):
            column.append(value.encode())
    return tuple(np.array(column, dtype=object) for column in out)


def _tfrecord_fields(source: StreamSource, shards, lines, raw):
    names = [source.text, source.label] + ([source.text_pair] if source.has_pairs else [])
    types = {source.text: tf.string, source.label: source.label_dtype, source.text_pair: tf.string}
    parsed = tf.io.parse_example(raw, {n: tf.io.VarLenFeature(types[n]) for n in names})
    values, checks = {}, []
    for name in names:
        sparse = parsed[name]
        count = tf.math.bincount(tf.cast(sparse.indices[:, 0], tf.int32), minlength=tf.shape(raw)[0])
        message = tf.fill(tf.shape(raw), f"feature {name!r} must hold one {types[name].name} value")
        checks.append(_check(tf.equal(count, 1), source, shards, lines, message))
        values[name] = sparse.values
    with tf.control_dependencies(checks):
        label = values[source.label]
        label = label if label.dtype == tf.string else tf.strings.as_string(label)
        pair = tf.identity(values[source.text_pair]) if source.has_pairs else None
        return tf.identity(values[source.text]), pair, tf.identity(label)


_NUMBER = r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*"


def _targets(source: StreamSource, label_ids, shards, lines, labels):
    """Class ids (via ``label_ids``, a lookup table) or float values of a batch of label strings, checked."""
    if source.label_kind == "regression":
        ok = tf.strings.regex_full_match(labels, _NUMBER)
        message = tf.strings.join(["label '", labels, "' is not a number"])
        with tf.control_dependencies([_check(ok, source, shards, lines, message)]):
            return tf.reshape(tf.strings.to_number(labels, tf.float32), [-1, 1])
    table, names = label_ids
    ids = table.lookup(labels)
    message = tf.strings.join(["label '", labels, f"' is not one of {list(names)}"])
    with tf.control_dependencies([_check(ids >= 0, source, shards, lines, message)]):
        return tf.identity(ids)


# --- the training dataset ----------------------------------------------------------------------------------
def training_dataset(source: StreamSource, tokenizer, label_names, *, batch_size: int, max_length: int,
                     renamed: dict | None = None, shuffle_buffer: int = SHUFFLE_BUFFER, seed: int = 0,
                     bucket: bool = True, num_workers: int = 1, worker: int = 0,
                     limit: int | None = None) -> tuple[tf.data.Dataset, str]:
    """Endless batches ``({"token_ids", "segment_ids", "padding_mask"}, labels)`` of ``source``'s rows, and how
    ``num_workers`` workers split them (for the summary line). ``label_names``: the class names in id order;
    ``renamed``: data label → name; ``limit``: the first rows only; ``worker``: this worker's index."""
    from kbert.batching.dataset import model_features, pad_and_batch

    label_ids = None
    if source.label_kind == "class":
        keys = list(label_names) + [raw for raw, name in (renamed or {}).items() if name in label_names]
        values = list(range(len(label_names))) + [list(label_names).index(name) for raw, name in
                                                  (renamed or {}).items() if name in label_names]
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, tf.constant(values, tf.int32)),
                                          default_value=-1)
        label_ids = (table, tuple(label_names))
    rows = _rows(source, worker, num_workers)
    rows = rows if limit is None else rows.take(limit)
    if shuffle_buffer:
        rows = rows.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def encode(shards, lines, raw):
        text, pair, labels = _fields(source, shards, lines, raw)
        targets = _targets(source, label_ids, shards, lines, labels)
        encoding = tokenizer.encode(text, pair, max_length=max_length)
        features = {"token_ids": tf.cast(encoding.token_ids, tf.int32),
                    "segment_ids": tf.cast(encoding.segment_ids, tf.int32)}
        return features, targets

    examples = (rows.repeat().batch(PARSE_BATCH).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
                .unbatch().map(model_features, num_parallel_calls=tf.data.AUTOTUNE))
    regression = source.label_kind == "regression"
    dataset = pad_and_batch(examples, label_shape=[1] if regression else [],
                            label_padding=tf.constant(0, tf.float32 if regression else tf.int32),
                            pad_id=tokenizer.pad_id, batch_size=batch_size, max_length=max_length, bucket=bucket)
    policy, split = sharding(len(source.shards), num_workers)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    dataset = dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
    return dataset, f"streamed from {len(source.shards)} {source.format} shard(s){split}"


def this_worker(strategy: str) -> tuple[int, int]:
    """``(index, workers)`` of this process among the processes that train: ``(0, 1)`` but under ``multiworker``,
    where ``TF_CONFIG`` (checked by kbert.training.strategy before data is read) says; the chief is worker 0."""
    if strategy != "multiworker":
        return 0, 1
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    index = 0 if resolver.task_type == "chief" else resolver.task_id + chiefs
    return index, chiefs + workers


def sharding(num_shards: int, num_workers: int):
    """How ``num_workers`` workers split ``num_shards`` shards, as the auto-shard policy the distributed dataset
    gets, and its words. Each worker reads its own shards when there are enough: FILE sharding, done here on the
    shard list (policy OFF) because TensorFlow's FILE rewrite cannot see through the length buckets
    (``group_by_window``); else every worker reads all and keeps its share of the batches (policy DATA)."""
    policy = tf.data.experimental.AutoShardPolicy
    if num_workers <= 1:
        return policy.OFF, ""
    if num_shards >= num_workers:
        return policy.OFF, (f", {num_workers} workers reading their own shards (FILE sharding, as "
                            f"AutoShardPolicy.FILE)")
    return policy.DATA, (f", {num_workers} workers each reading all {num_shards} shard(s) and keeping its share "
                         f"(AutoShardPolicy.DATA: fewer shards than workers; `kbert shard` writes more)")


# --- the counting pass -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Counted:
    """What one pass over a stream keeps: rows, rows per label (class labels), where each label first occurs."""

    rows: int = 0
    counts: Counter = dataclasses.field(default_factory=Counter)
    first: dict = dataclasses.field(default_factory=dict)


def count_rows(source: StreamSource, *, limit: int | None = None, progress=None, renamed: dict | None = None,
               every: float = 5.0) -> Counted:
    """One pass over every row: each parsed and checked as training parses it (a bad row is a DataError naming
    shard and line), rows counted, and labels counted. ``progress``: a stream for a line every ``every`` s."""
    counted, started, shown = Counted(), time.monotonic(), time.monotonic()

    def parse(shards, lines, raw):
        _, _, labels = _fields(source, shards, lines, raw)
        if source.label_kind == "regression":
            _targets(source, None, shards, lines, labels)
        return shards, lines, labels

    batches = _rows(source).batch(8192).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    with translated_errors():
        for shards, lines, labels in batches.as_numpy_iterator():
            if limit is not None:
                shards, lines, labels = shards[:limit - counted.rows], lines[:limit - counted.rows], labels[
                    :limit - counted.rows]
            counted.rows += len(labels)
            if source.label_kind == "class":
                names, index, counts = np.unique(labels, return_index=True, return_counts=True)
                for name, i, n in zip(names, index, counts):
                    label = name.decode()
                    label = (renamed or {}).get(label, label)
                    counted.counts[label] += int(n)
                    counted.first.setdefault(label, f"{shards[i].decode()}:{lines[i]}")
            if progress is not None and time.monotonic() - shown >= every:
                shown = time.monotonic()
                print(f"kbert: counting training rows: {counted.rows:,} so far ({shown - started:.0f} s)",
                      file=progress, flush=True)
            if limit is not None and counted.rows >= limit:
                break
    if not counted.rows:
        raise DataError(f"{', '.join(source.shards)}: no rows")
    if progress is not None:
        print(f"kbert: counted {counted.rows:,} training rows in {len(source.shards)} shard(s) "
              f"({time.monotonic() - started:.1f} s)", file=progress, flush=True)
    return counted


def bad_row_error(error: BaseException) -> DataError | None:
    """The :class:`DataError` a TensorFlow error carries when it is one of this module's row checks, else None."""
    match = re.search(re.escape(BAD_ROW) + r"<<(.*?)>>", str(error), re.S)
    return DataError(match.group(1).replace("\\'", "'")) if match else None  # Assert's repr escapes quotes


class translated_errors:
    """``with translated_errors(): ...``: a bad row found by TensorFlow is raised as kbert's DataError."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        found = bad_row_error(error) if isinstance(error, tf.errors.OpError) else None
        if found is not None:
            raise found from None
        return False


def progress_stream():
    """Where the counting pass reports (stderr)."""
    return sys.stderr
