"""Retrieval training data: (query, relevant document[, hard negatives...]) rows from CSV, TSV or JSON lines.

Columns (CSV/TSV need a header row; JSON lines objects use the same names):

* the query: ``query`` or ``anchor`` (or the column given as ``query_column``, e.g. ``title``);
* the relevant document: ``positive`` (or ``positive_column``, e.g. ``description``);
* hard negatives: a JSON list ``negatives``, or columns ``negative``, ``negative_1``, ``negative_2``, ... in that
  order (what ``kbert mine-negatives`` writes, and sentence-transformers' (anchor, positive, negative_1, ...)
  layout). Every row must have the same number of negatives; other columns are ignored.

A file name may end in a row range, ``pairs.tsv[:5000]`` (see :func:`kbert.data.sources.split_row_range`).
Problems are :class:`~kbert.errors.DataError` naming the file and line: a missing column, an empty query or
document, a row with a different number of negatives.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
    >>> _ = path.write_text('{"query": "oil prices", "positive": "Crude rose 2%.", "negatives": ["Team wins"]}\\n')
    >>> read_pairs(path)
    [RetrievalExample(query='oil prices', positive='Crude rose 2%.', negatives=('Team wins',), where='...pairs.jsonl:1')]
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any

from kbert.data.readers import column_name, format_of, read_records
from kbert.data.sources import split_row_range
from kbert.errors import DataError

QUERY_COLUMNS = ("query", "anchor")
NEGATIVE_COLUMN = re.compile(r"^negative(?:_(\d+))?$")


@dataclasses.dataclass(frozen=True)
class RetrievalExample:
    """A query, the document relevant to it, and documents that are not (hard negatives)."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    where: str = ""


def read_pairs(source: Any, *, format: str | None = None, query_column: str | int | None = None,
               positive_column: str | int | None = None, limit: int | None = None,
               encoding: str = "utf-8") -> list[RetrievalExample]:
    """The rows of ``source`` (a file, optionally with a row range, or a list of :class:`RetrievalExample`)."""
    if isinstance(source, (list, tuple)) and all(isinstance(e, RetrievalExample) for e in source):
        examples = list(source)
        what = "the examples"
    elif isinstance(source, (str, os.PathLike)):
        path, rows = split_row_range(os.fspath(source))
        tabular = format_of(str(path), format) != "jsonl"
        examples = [_example(where, record, path, tabular, query_column, positive_column)
                    for where, record in read_records(path, format=format, encoding=encoding)][rows]
        what = path
    else:
        raise DataError(f"retrieval data must be a csv/tsv/jsonl file or a list of RetrievalExample, "
                        f"got {type(source).__name__}")
    examples = examples[:limit] if limit is not None else examples
    if not examples:
        raise DataError(f"{what}: no (query, document) rows")
    _check_same_negatives(examples)
    return examples


def _example(where, record, path, tabular, query_column, positive_column) -> RetrievalExample:
    def key(column, defaults, role):
        if column is not None:
            name = column_name(column, list(record), path) if tabular else str(column)
            if name not in record:
                raise DataError(f"{where}: no {role} key {name!r}; the object has {sorted(record)}")
            return name
        found = next((name for name in defaults if name in record), None)
        if found is None:
            raise DataError(f"{where}: no {role} column: expected {' or '.join(map(repr, defaults))} (or name it "
                            f"with --{role}-column); the row has {sorted(record)}")
        return found

    query = _text(record[key(query_column, QUERY_COLUMNS, "query")], where, "the query")
    positive = _text(record[key(positive_column, ("positive",), "positive")], where, "the positive document")
    return RetrievalExample(query, positive, _negatives(record, where), where)


def _negatives(record: dict, where: str) -> tuple[str, ...]:
    if "negatives" in record:
        values = record["negatives"]
        if not isinstance(values, list):
            raise DataError(f"{where}: 'negatives' must be a list of strings, got {type(values).__name__}")
        return tuple(_text(v, where, f"negative {i}") for i, v in enumerate(values))
    columns = sorted((int(m[1] or 0), name) for name in record if (m := NEGATIVE_COLUMN.match(name)))
    return tuple(_text(record[name], where, f"the column {name!r}") for _, name in columns)


def _text(value, where: str, role: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {role} must be a string, got {type(value).__name__} {value!r:.40}")
    if not value.strip():
        raise DataError(f"{where}: {role} is empty")
    return value


def _check_same_negatives(examples: Sequence[RetrievalExample]) -> None:
    count = len(examples[0].negatives)
    odd = next((e for e in examples if len(e.negatives) != count), None)
    if odd is not None:
        raise DataError(f"{odd.where}: {len(odd.negatives)} hard negatives, but {examples[0].where} has {count}; "
                        f"every row needs the same number (each batch holds the same columns)")
