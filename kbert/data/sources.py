"""One entry point for training/evaluation data: a file, a ``tfds:`` name, or in-memory examples.

Example:
    >>> from kbert.data.sources import load_examples
    >>> examples, names = load_examples("kbert/data/demo/sentiment_test.tsv", label_type="class")
    >>> names is None, examples[0].where
    (True, 'kbert/data/demo/sentiment_test.tsv:2')
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Sequence

from kbert.data.examples import RawExample
from kbert.data.readers import read_examples
from kbert.data.tfds_sources import is_tfds_name, read_tfds
from kbert.errors import DataError


def load_examples(source: Any, *, label_type: str, format: str | None = None, text_column=None,
                  text_pair_column=None, label_column=None, limit: int | None = None,
                  download: bool = False, encoding: str = "utf-8") -> tuple[list[RawExample], list[str] | None]:
    """Examples from ``source`` plus the label names the source itself declares (TFDS), else ``None``."""
    names = None
    if isinstance(source, (list, tuple)) and all(isinstance(e, RawExample) for e in source):
        examples = list(source)
    elif is_tfds_name(source):
        examples, names = read_tfds(source, download=download, limit=limit)
    elif isinstance(source, (str, os.PathLike)):
        path, rows = split_row_range(os.fspath(source))
        examples = read_examples(path, format=format, text_column=text_column, text_pair_column=text_pair_column,
                                 label_column=label_column, label_type=label_type, encoding=encoding)[rows]
    else:
        raise DataError(f"data must be a file path, a 'tfds:NAME' or a list of RawExample, got {type(source).__name__}")
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise DataError(f"{source}: no examples")
    return examples, names


_ROW_RANGE = re.compile(r"^(?P<path>.+)\[(?P<start>\d*):(?P<stop>\d*)\]$")


def split_row_range(source: str) -> tuple[str, slice]:
    """``"train.tsv[60000:]"`` → ``("train.tsv", slice(60000, None))``: a file's examples ``start:stop``.

    Lets a recipe hold out part of a single file (SST-2, RTE and STS-B ship one labelled file here).
    A file whose real name ends like that is read whole.

    >>> split_row_range("data/train.tsv[:4000]")
    ('data/train.tsv', slice(None, 4000, None))
    """
    match = _ROW_RANGE.match(source)
    if not match or os.path.exists(source):
        return source, slice(None)
    start, stop = (int(v) if v else None for v in (match["start"], match["stop"]))
    return match["path"], slice(start, stop)


def pair_columns(examples: Sequence[RawExample], what: str) -> tuple[list[str], list[str] | None]:
    """Texts and (if every example has one) second texts; a mix of pairs and single texts is an error."""
    with_pair = [e.text_pair is not None for e in examples]
    if any(with_pair) and not all(with_pair):
        first = examples[with_pair.index(not with_pair[0])]
        raise DataError(f"{first.where}: {what} mixes text pairs and single texts; every example needs a text_pair "
                        f"or none does")
    return [e.text for e in examples], ([e.text_pair for e in examples] if all(with_pair) else None)


def shard_paths(train) -> list[str]:
    """The files of ``train``: a path, a glob, comma-separated paths/globs or a list of them, sorted per pattern."""
    if isinstance(train, (str, os.PathLike)) and os.path.isfile(train):
        return [os.fspath(train)]
    parts = list(train) if isinstance(train, (list, tuple)) else str(train).split(",")
    paths = []
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        found = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        if not found:
            raise DataError(f"{part}: no file matches")
        for path in found:
            if not os.path.isfile(path):
                raise DataError(f"{path}: no such file")
        paths += found
    if not paths:
        raise DataError(f"{train!r}: no training files given")
    return paths
