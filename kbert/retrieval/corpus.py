"""Read a corpus to index, one document at a time: CSV / TSV with a header row, or JSON lines.

Each document has an ``id``, a ``text`` (the text columns joined by a space, e.g. ``title,description``) and
its other fields as ``metadata``. Defaults: the text is the ``text`` column, the id the ``id`` column when
there is one, else the 0-based row number. Columns are given by name or 0-based index (CSV/TSV). Problems are
:class:`~kbert.errors.DataError` naming the file and the line (for a CSV row over several lines, the line
where it starts): unknown columns, rows of the wrong width, non-string texts, repeated ids, an empty corpus.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "news.csv"
    >>> _ = path.write_text('label,title,description\\n3,"Oil up, stocks down",Crude rose 2%.\\n')
    >>> [(d.id, d.text, d.metadata) for d in read_corpus(path, text_columns=["title", "description"])]
    [('0', 'Oil up, stocks down Crude rose 2%.', {'label': '3'})]
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

from kbert.data.readers import json_lines, text_lines
from kbert.data.sources import split_row_range
from kbert.errors import DataError
from kbert.hints import hint

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclasses.dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]
    where: str  # file:line


def corpus_format(path: str | os.PathLike, format: str | None = None) -> str:
    """``csv``, ``tsv`` or ``jsonl``: ``format`` if given, else from the extension."""
    if format is not None:
        if format not in set(FORMATS.values()):
            raise DataError(f"{path}: format must be one of {sorted(set(FORMATS.values()))}, got {format!r}")
        return format
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: cannot tell the format from the extension {suffix!r}; use .csv, .tsv or .jsonl"
                        f"{hint(' (or give {})', 'format')}")
    return FORMATS[suffix]


def read_corpus(path: str | os.PathLike, *, text_columns: Sequence[str | int] | None = None,
                id_column: str | int | None = None, format: str | None = None,
                encoding: str = "utf-8") -> Iterator[Document]:
    """The documents of ``path`` in file order (a generator: the file is read as it is consumed).

    ``path`` may end in a row range, ``news.csv[:1000]`` (:func:`kbert.data.sources.split_row_range`); a
    document's default id is its row number in the file.
    """
    path, rows = split_row_range(os.fspath(path))
    path = pathlib.Path(path)
    seen: dict[str, str] = {}
    count = 0
    records = itertools.islice(read_records(path, format=format, encoding=encoding), rows.start, rows.stop)
    tabular = corpus_format(path, format) != "jsonl"
    for where, record, texts, doc_id in _pick(records, text_columns, id_column, path, tabular):
        doc_id = str(count + (rows.start or 0)) if doc_id is None else doc_id
        if doc_id in seen:
            raise DataError(f"{where}: id {doc_id!r} repeats the document of {seen[doc_id]}")
        seen[doc_id] = where
        count += 1
        yield Document(doc_id, " ".join(texts), record, where)
    if not count:
        where = "the corpus is empty" if rows == slice(None) else f"none in rows {rows.start or ''}:{rows.stop or ''}"
        raise DataError(f"{path}: no documents ({where})")


def read_records(path: str | os.PathLike, *, format: str | None = None,
                 encoding: str = "utf-8") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` of every row of ``path`` in file order: a CSV/TSV row as a header -> value dict
    (the first record also carries every header name, so a column index can be turned into its name), a JSON
    line as its object. Blank lines are skipped; ``where`` is ``file:line`` (the line a CSV row starts on).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = path.write_text("query\\tpositive\\noil prices\\tCrude rose 2%.\\n")
    >>> list(read_records(path))
    [('...pairs.tsv:2', {'query': 'oil prices', 'positive': 'Crude rose 2%.'})]
    """
    path = pathlib.Path(path)
    kind = corpus_format(path, format)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    lines = text_lines(path, encoding)
    return _json_rows(path, lines) if kind == "jsonl" else _csv_rows(path, lines, "\t" if kind == "tsv" else ",")


def _csv_rows(path: pathlib.Path, numbered, delimiter: str):
    state = {"line": 0}

    def lines():
        for number, line in numbered:
            state["line"] = number
            yield line

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
        if twice is not None:
            raise DataError(f"{path}:1: the header names the column {twice!r} twice ({header})")
        start = state["line"] + 1
        for row in reader:
            where = f"{path}:{start}"
            start = state["line"] + 1
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, but the header has {len(header)} ({header})")
            yield where, dict(zip(header, row))
    except csv.Error as err:
        raise DataError(f"{path}:{start}: not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({err})") from None


def column_name(column: str | int, header: Sequence[str], path) -> str:
    """The name of ``column`` (a name, or a 0-based index into ``header``), checked to exist."""
    header = list(header)
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit() and column not in header):
        index = int(column)
        if not 0 <= index < len(header):
            raise DataError(f"{path}:1: column {index} does not exist; the header has {len(header)} columns {header}")
        return header[index]
    if column not in header:
        raise DataError(f"{path}:1: no column {column!r}; the header has {header}")
    return column


def _json_rows(path: pathlib.Path, numbered):
    for where, _, item in json_lines((line for _, line in numbered), str(path)):
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}")
        yield where, item


def _pick(records, text_columns, id_column, path, tabular: bool):
    names = None  # the text columns as keys (CSV column indexes resolved on the first record)
    for where, item in records:
        if names is None:
            names = [_key(c, item, path, tabular) for c in (text_columns or ["text"])]
        missing = [k for k in names if k not in item]
        if missing:
            raise DataError(f"{where}: no key {missing[0]!r}; the object has {sorted(item)}")
        bad = next((k for k in names if not isinstance(item[k], str)), None)
        if bad is not None:
            raise DataError(f"{where}: {bad!r} must be a string, got {type(item[bad]).__name__}")
        id_key = _key(id_column, item, path, tabular) if id_column is not None else ("id" if "id" in item else None)
        if id_key is not None and id_key not in item:
            raise DataError(f"{where}: no id key {id_key!r}; the object has {sorted(item)}")
        doc_id = None if id_key is None else item[id_key]
        if id_key is not None and (not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool)):
            raise DataError(f"{where}: the id must be a string or an integer, got {doc_id!r:.40}")
        metadata = {k: v for k, v in item.items() if k not in names and k != id_key}
        yield where, metadata, [item[k] for k in names], None if doc_id is None else str(doc_id)


def _key(column: str | int, record: dict, path, tabular: bool) -> str:
    """A column as a record key: CSV/TSV columns by name or index, JSON keys as strings."""
    return column_name(column, list(record), path) if tabular else str(column)
