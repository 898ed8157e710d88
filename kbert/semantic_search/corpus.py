"""Read a corpus to index, one document at a time: CSV / TSV with a header row, or JSON lines.

Each document has an ``id``, a ``text`` (the text columns joined by a space, e.g. ``title,description``) and
its other fields as ``metadata``. Defaults: the text is the ``text`` column, the id the ``id`` column when
there is one, else the 0-based row number. Columns are given by name or 0-based index (CSV/TSV). Problems are
:class:`~kbert.errors.DataError` naming the file and the line (for a CSV row over several lines, the line
where it starts): unknown columns, rows of the wrong width, non-string texts, repeated ids, an empty corpus.
The rows come from :func:`kbert.data.readers.read_records`, the reader of every csv / tsv / jsonl file.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "news.csv"
    >>> _ = path.write_text('label,title,description\\n3,"Oil up, stocks down",Crude rose 2%.\\n')
    >>> [(d.id, d.text, d.metadata) for d in read_corpus(path, text_columns=["title", "description"])]
    [('0', 'Oil up, stocks down Crude rose 2%.', {'label': '3'})]
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

from kbert.data.readers import column_name, format_of, read_records
from kbert.data.sources import split_row_range
from kbert.errors import DataError


@dataclasses.dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]
    where: str  # file:line


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
    tabular = format_of(str(path), format) != "jsonl"
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
