"""Read labelled (or unlabelled) text examples from CSV, TSV and JSON-lines files, or from lists.

Every problem is a :class:`~kbert.errors.DataError` naming the file and the 1-based line a text
editor shows (for a CSV row that spans lines, the line where the row starts).

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = path.write_text('sentence,label\\n"good, really",positive\\nbad,negative\\n')
    >>> [(ex.text, ex.label, ex.where[-11:]) for ex in read_examples(path)]
    [('good, really', 'positive', 'train.csv:2'), ('bad', 'negative', 'train.csv:3')]
    >>> examples_from_lists(["a man sings"], [3.5], text_pairs=["someone sings"], label_type="regression")
    [RawExample(text='a man sings', text_pair='someone sings', label=3.5, where='list[0]')]

Header auto-detection (``header=None``), decided on the first non-blank row:

* if any column is given *by name*, the first row is a header when it contains every name given
  (otherwise the names cannot be found and that is an error listing the first row);
* if no column is given by name, the first row is a header when one of its fields is a
  well-known column name (:data:`KNOWN_COLUMNS`, compared case-insensitively): ``text``,
  ``sentence``, ``sentence1``, ``question``, ``text_pair``, ``sentence2``, ``label``, ``score``,
  ``labels``. Pass ``header=True``/``False`` when a file does not fit this rule.

Default columns: with a header, text is the first of ``text, sentence, sentence1, question``
present, its pair the first of ``text_pair, sentence2`` (only when ``text_column`` is not given
either), the label the first of ``label, score, labels``. A headerless file with no columns given is
laid out by its width: 1 field → text; 2 → text, label; 3 or more → text, text_pair, label
(STS-B ``s1,s2,score``). In a headerless file with ``text_column`` given, nothing else is guessed.

TSV is read like CSV with a tab delimiter: a field may be quoted (``"..."`` with ``""`` for a quote,
as in the GLUE RTE file), and a field that starts with a quote but is not properly quoted is an
error rather than silently mangled.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
import numbers
import os
import pathlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kbert.data.examples import RawExample, RawLabel
from kbert.errors import DataError
from kbert.hints import hint

LABEL_TYPES = ("class", "multi_label", "regression", "none")
TEXT_NAMES = ("text", "sentence", "sentence1", "question")
PAIR_NAMES = ("text_pair", "sentence2")
LABEL_NAMES = ("label", "score", "labels")
KNOWN_COLUMNS = frozenset(TEXT_NAMES + PAIR_NAMES + LABEL_NAMES)
# A field of several labels in a CSV/TSV file is split on any of these: "sports;politics", "a|b", "a,b".
MULTI_LABEL_SEPARATORS = re.compile(r"[,;|]")


@dataclass(frozen=True)
class ReadOptions:
    """What every format reader gets besides the text: column choices and the label type."""

    text_column: str | int | None = None
    text_pair_column: str | int | None = None
    label_column: str | int | None = None
    header: bool | None = None
    label_type: str = "class"


Reader = Callable[[str, str, ReadOptions], "list[RawExample]"]


# --- entry points ------------------------------------------------------------------------------
def read_examples(path: str | os.PathLike, *, format: str | None = None, text_column: str | int | None = None,
                  text_pair_column: str | int | None = None, label_column: str | int | None = None,
                  header: bool | None = None, label_type: str = "class",
                  encoding: str = "utf-8") -> list[RawExample]:
    """Examples from a ``csv``/``tsv``/``jsonl`` file; ``format`` defaults to the one the extension names.

    Columns are header names or 0-based indexes (JSON lines: field names, default ``text``,
    ``text_pair``, ``label``). ``label_type`` is ``"class"`` (labels as strings; integers become their
    string form), ``"multi_label"`` (a JSON list, or a CSV field split on ``,`` ``;`` or ``|``),
    ``"regression"`` (a finite float) or ``"none"`` (labels are not read). A UTF-8 byte-order mark is
    accepted. An empty text is a valid text; a missing field is an error.
    """
    _check_label_type(label_type)
    source = os.fspath(path)
    name = format_of(source, format)
    text = _decode(_read_bytes(source), source, encoding)
    options = ReadOptions(text_column, text_pair_column, label_column, header, label_type)
    return READERS[name](text, source, options)


def examples_from_lists(texts: Sequence[str], labels: Sequence | None = None, text_pairs: Sequence[str] | None = None,
                        label_type: str = "class") -> list[RawExample]:
    """In-memory examples (``where="list[i]"``); labels are parsed as in a JSON-lines file.

    ``labels=None`` gives unlabelled examples.

    >>> examples_from_lists(["a", "b"], [["x", "y"], "y"], label_type="multi_label")[0].label
    ('x', 'y')
    """
    _check_label_type(label_type)
    texts = _as_list(texts, "texts")
    columns = {"labels": labels, "text_pairs": text_pairs}
    for name, values in columns.items():
        if values is not None:
            columns[name] = _as_list(values, name)
            if len(columns[name]) != len(texts):
                raise DataError(f"{name} has {len(columns[name])} items but texts has {len(texts)}")
    examples = []
    for i, text in enumerate(texts):
        where = f"list[{i}]"
        pair = None if text_pairs is None else columns["text_pairs"][i]
        label = None
        if labels is not None and label_type != "none":
            label = _parse_label(columns["labels"][i], label_type, where)
        examples.append(RawExample(_string(text, where, "text"), _string(pair, where, "text pair", optional=True),
                                   label, where))
    if not examples:
        raise DataError("texts is empty: no examples")
    return examples


# --- format dispatch ---------------------------------------------------------------------------
def format_of(source: str, format: str | None, formats=None, extensions=None, what: str = "data") -> str:
    """The format named, else the one the file extension says; ``formats``/``extensions`` default to this module's."""
    formats = sorted(READERS) if formats is None else formats
    extensions = EXTENSIONS if extensions is None else extensions
    accepted = ", ".join(formats)
    if format is not None:
        if format not in formats:
            raise DataError(f"unknown {what} format {format!r}; expected one of {accepted}")
        return format
    suffix = pathlib.PurePath(source).suffix.lower()
    if suffix in extensions:
        return extensions[suffix]
    give = hint(f"; give it with {{}} (one of {accepted})", "format")
    if suffix == ".txt":
        raise DataError(f"{source}: a .txt file could hold any format{give}")
    shown = f"extension {suffix!r}" if suffix else "no extension"
    raise DataError(f"{source}: cannot tell the format from {shown} (recognised extensions: {', '.join(extensions)})"
                    f"{give}")


def _read_bytes(source: str) -> bytes:
    try:
        return pathlib.Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a directory, not a data file") from None
    except OSError as err:
        raise DataError(f"{source}: cannot read ({err.strerror or err})") from None


def _decode(raw: bytes, source: str, encoding: str) -> str:
    codec = _codec(encoding)
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1)
        raise _not_decodable(source, line, column, encoding) from None


def text_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, line with its "\\n")`` of a text file read as it is consumed (for files larger than
    memory), decoded as :func:`read_examples` decodes a whole file: a decoding error names its line."""
    decoder = codecs.getincrementaldecoder(_codec(encoding))()
    number, pending = 0, ""
    with open(path, "rb") as f:
        for raw in itertools.chain(f, [None]):
            try:
                pending += decoder.decode(b"", final=True) if raw is None else decoder.decode(raw)
            except UnicodeDecodeError as err:
                raise _not_decodable(path, number + pending.count("\n") + 1, err.start, encoding) from None
            *complete, pending = pending.split("\n")
            for line in complete:
                number += 1
                yield number, line + "\n"
    if pending:
        yield number + 1, pending


def _codec(encoding: str) -> str:
    """The codec to decode ``encoding`` with; UTF-8 accepts a byte-order mark."""
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise DataError(f"unknown text encoding {encoding!r}") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _not_decodable(source, line: int, byte: int, encoding: str) -> DataError:
    shown = "UTF-8" if _codec(encoding) == "utf-8-sig" else encoding
    return DataError(f"{source}:{line}: not {shown} (byte {byte} of the line)"
                     f"{hint('; if the file has another encoding, give it with {}', 'encoding')}")


def _check_label_type(label_type: str) -> None:
    if label_type not in LABEL_TYPES:
        raise DataError(f"unknown label type {label_type!r}; expected one of {', '.join(LABEL_TYPES)}")


# --- CSV / TSV ---------------------------------------------------------------------------------
def _read_csv(text: str, source: str, options: ReadOptions, delimiter: str = ",") -> list[RawExample]:
    examples, columns, header_line = [], None, None
    for start, row in csv_rows(io.StringIO(text, newline=""), source, delimiter):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if columns is None:
            has_header = _has_header(row, options)
            columns = _columns(row, has_header, options, f"{source}:{start}")
            if has_header:
                header_line = start
                continue
        examples.append(_row_example(row, columns, options.label_type, f"{source}:{start}"))
    if not examples:
        raise DataError(f"{source}: no examples ({'only a header' if header_line else 'the file is empty'})")
    return examples


def csv_rows(lines: Iterable[str], source: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """``(line the row starts on, fields)`` of every CSV (TSV: ``delimiter="\\t"``) row of ``lines`` (each line
    with its newline; a blank line is ``[]``), read as they are consumed. A malformed row is a
    :class:`DataError` naming ``source`` and its line."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    end = 0
    while True:
        start = end + 1  # the row about to be read starts on the line after the previous row ended
        try:
            row = next(reader, None)
        except csv.Error as err:
            raise DataError(_csv_error(source, start, reader.line_num, err)) from None
        if row is None:
            return
        end = reader.line_num
        yield start, row


def _read_tsv(text: str, source: str, options: ReadOptions) -> list[RawExample]:
    return _read_csv(text, source, options, delimiter="\t")


def _csv_error(source: str, start: int, line: int, err: csv.Error) -> str:
    if "unexpected end of data" in str(err):
        return f"{source}:{start}: a quoted field starting on this row is never closed"
    return (f"{source}:{line}: malformed row ({err}); quote a field that contains quotes and double the quotes "
            f"inside it")


@dataclass(frozen=True)
class _Columns:
    text: int
    text_pair: int | None
    label: int | None

    def needed(self) -> int:
        return 1 + max(i for i in (self.text, self.text_pair, self.label) if i is not None)


def _named(options: ReadOptions) -> list[str]:
    given = [options.text_column, options.text_pair_column]
    if options.label_type != "none":
        given.append(options.label_column)
    return [c for c in given if isinstance(c, str)]


def _has_header(first: list[str], options: ReadOptions) -> bool:
    if options.header is not None:
        return options.header
    fields = [f.strip() for f in first]
    named = _named(options)
    if named:
        return all(name in fields for name in named)
    return any(f.lower() in KNOWN_COLUMNS for f in fields)


def _columns(first: list[str], has_header: bool, options: ReadOptions, where: str) -> _Columns:
    """Resolve the three columns against the header (or the first row's width when headerless)."""
    need_label = options.label_type != "none"
    text, pair = options.text_column, options.text_pair_column
    label = options.label_column if need_label else None
    if has_header:
        fields = [f.strip() for f in first]
        lowered = [f.lower() for f in fields]

        def find(spec, role, defaults, required):
            if spec is not None:
                return _index(spec, fields, role, where)
            for name in defaults:
                if name in lowered:
                    return lowered.index(name)
            if required:
                raise DataError(f"{where}: no {role} column in the header {fields}; expected one of "
                                f"{', '.join(defaults)}{hint(' (or give {})', role.replace(' ', '_') + '_column')}")
            return None

        guess_pair = text is None and pair is None
        return _Columns(find(text, "text", TEXT_NAMES, True),
                        find(pair, "text pair", PAIR_NAMES if guess_pair else (), False),
                        find(label, "label", LABEL_NAMES if need_label else (), need_label))
    for spec in (text, pair, label):
        if isinstance(spec, str) and options.header is False:
            raise DataError(f"column {spec!r} is a name, but header=False; name columns by 0-based index")
        if isinstance(spec, str):
            raise DataError(f"{where}: no column {spec!r} in the header {[f.strip() for f in first]}; "
                            f"name columns by 0-based index if the file has no header")
    if text is None and pair is None and label is None:
        width = len(first)
        if width == 1 and need_label:
            raise DataError(f"{where}: one field per row and no header, so no label column"
                            f"{hint('; pass {} for unlabelled text', 'label_type', 'none')}")
        return _Columns(0, 1 if width >= 3 else None, (2 if width >= 3 else 1) if need_label else None)
    if text is None:
        raise DataError(f"{where}: the file has no header{hint('; give {} too (a 0-based index)', 'text_column')}")
    if need_label and label is None:
        raise DataError(f"{where}: the file has no header{hint('; give {} too (a 0-based index)', 'label_column')}"
                        f"{hint(', or {} for unlabelled text', 'label_type', 'none')}")
    return _Columns(_index(text, [], "text", where), _index(pair, [], "text pair", where),
                    _index(label, [], "label", where))


def _index(spec, fields: list[str], role: str, where: str) -> int | None:
    if spec is None:
        return None
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise DataError(f"{role} column must be a header name or a 0-based index, got {spec!r}")
    if isinstance(spec, int):
        if spec < 0:
            raise DataError(f"{role} column must be a 0-based index >= 0, got {spec}")
        return spec
    if spec not in fields:
        raise DataError(f"{where}: no column {spec!r} in the header {fields}")
    return fields.index(spec)


def _row_example(row: list[str], columns: _Columns, label_type: str, where: str) -> RawExample:
    if len(row) < columns.needed():
        roles = [(name, i) for name, i in (("text", columns.text), ("text pair", columns.text_pair),
                                           ("label", columns.label)) if i is not None and i >= len(row)]
        missing = ", ".join(f"{name} is column {i}" for name, i in roles)
        raise DataError(f"{where}: expected at least {columns.needed()} fields ({missing}), "
                        f"found {len(row)}: {row!r:.80}")
    pair = None if columns.text_pair is None else row[columns.text_pair]
    label = None if columns.label is None else _parse_label(row[columns.label], label_type, where)
    return RawExample(row[columns.text], pair, label, where)


# --- JSON lines --------------------------------------------------------------------------------
def _read_jsonl(text: str, source: str, options: ReadOptions) -> list[RawExample]:
    keys = {}
    for role, spec, default in (("text", options.text_column, "text"),
                                ("text_pair", options.text_pair_column, "text_pair"),
                                ("label", options.label_column, "label")):
        if spec is not None and not isinstance(spec, str):
            raise DataError(f"{source}: JSON lines fields are named; the {role.replace('_', ' ')} column must be a "
                            f"name, got {spec!r}")
        keys[role] = spec or default
    examples = []
    for where, line, item in json_lines(text, source):
        if not isinstance(item, dict):
            tip = " (a JSON array of objects is not JSON lines: write one object per line)" if (
                not examples and isinstance(item, list) and item and isinstance(item[0], dict)) else ""
            raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}{tip}: {line.strip():.60}")
        examples.append(_json_example(item, keys, options, where))
    if not examples:
        raise DataError(f"{source}: no examples (the file is empty)")
    return examples


def json_lines(text, source: str):
    """``(where, line, value)`` for every non-blank line of a JSON lines text (``where`` is ``source:line``).

    ``text`` is a ``str`` or an iterable of its lines (a file read line by line, for corpora larger than
    memory). A line that is not JSON is a :class:`DataError` naming it; a first line opening a JSON array
    gets a hint that JSON lines means one object per line.
    """
    first = True
    for number, line in enumerate(text.split("\n") if isinstance(text, str) else text, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            tip = "; expected one JSON object per line (a JSON array is not JSON lines)" if (
                first and line.lstrip().startswith("[")) else "; expected one JSON object per line"
            raise DataError(f"{where}: not valid JSON ({err.msg} at column {err.colno}){tip}") from None
        first = False
        yield where, line, item


def _json_example(item: dict, keys: dict, options: ReadOptions, where: str) -> RawExample:
    if keys["text"] not in item:
        raise DataError(f"{where}: no {keys['text']!r} field (fields: {', '.join(item)})")
    text = _string(item[keys["text"]], where, f"{keys['text']!r}")
    pair_required = options.text_pair_column is not None
    if pair_required and keys["text_pair"] not in item:
        raise DataError(f"{where}: no {keys['text_pair']!r} field (fields: {', '.join(item)})")
    pair = _string(item.get(keys["text_pair"]), where, f"{keys['text_pair']!r}", optional=not pair_required)
    label = None
    if options.label_type != "none":
        if keys["label"] not in item:
            raise DataError(f"{where}: no {keys['label']!r} field (fields: {', '.join(item)})"
                            f"{hint('; pass {} for unlabelled text', 'label_type', 'none')}")
        label = _parse_label(item[keys["label"]], options.label_type, where)
    return RawExample(text, pair, label, where)


# --- values ------------------------------------------------------------------------------------
def _as_list(values, name: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not hasattr(values, "__getitem__"):
        raise DataError(f"{name} must be a list, got {type(values).__name__}")
    return list(values)


def _string(value, where: str, role: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: {role} must be a string, got {type(value).__name__} {value!r:.40}")
    return str(value)


def _parse_label(value, label_type: str, where: str) -> RawLabel:
    """One label, from a CSV field (a string) or a JSON / Python value, checked against ``label_type``."""
    if value is None:
        raise DataError(f"{where}: missing label")
    if label_type == "class":
        if isinstance(value, str):
            if not value.strip():
                raise DataError(f"{where}: empty label")
            return value.strip()
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return str(int(value))
        kind, what = {list: ("multi_label", " for lists"), tuple: ("multi_label", ""),
                      float: ("regression", " for scores")}.get(type(value), (None, ""))
        use = hint(" (use {}" + what + ")", "label_type", kind) if kind else ""
        raise DataError(f"{where}: a class label must be a string or an integer, got {value!r:.40}{use}")
    if label_type == "multi_label":
        if isinstance(value, str):  # "a;b" "a|b" "a,b"; "" is an example with no labels
            value = [part for part in MULTI_LABEL_SEPARATORS.split(value) if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{where}: a multi_label label must be a list or a string of names separated by "
                            f"',', ';' or '|', got {value!r:.40}")
        return tuple(dict.fromkeys(_parse_label(part, "class", where) for part in value))
    try:  # regression
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise DataError(f"{where}: label {value!r:.40} is not a number (a regression label)") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: label {value!r} is not a finite number")
    return number


# --- records: rows as header -> value dicts, read as they are consumed -------------------------
def read_records(path: str | os.PathLike, *, format: str | None = None,
                 encoding: str = "utf-8") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` of every row of a ``csv``/``tsv``/``jsonl`` file in file order, for files larger than
    memory: a CSV/TSV row (after its header row) as a header -> value dict, a JSON line as its object. Blank
    lines are skipped; ``where`` is ``file:line`` (the line a CSV row starts on). Unlike :func:`read_examples`
    nothing is guessed: the header row is required, and every row has its width.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = path.write_text("query\\tpositive\\noil prices\\tCrude rose 2%.\\n")
    >>> list(read_records(path))
    [('...pairs.tsv:2', {'query': 'oil prices', 'positive': 'Crude rose 2%.'})]
    """
    source = os.fspath(path)
    kind = format_of(source, format)
    if not pathlib.Path(source).is_file():
        raise DataError(f"{source}: no such file")
    lines = (line for _, line in text_lines(source, encoding))
    return _json_records(source, lines) if kind == "jsonl" else _csv_records(source, lines, DELIMITERS[kind])


def column_name(column: str | int, header: Sequence[str], source) -> str:
    """The name of ``column`` (a name, or a 0-based index into ``header``), checked to exist."""
    header = list(header)
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit() and column not in header):
        index = int(column)
        if not 0 <= index < len(header):
            raise DataError(f"{source}:1: column {index} does not exist; the header has {len(header)} columns "
                            f"{header}")
        return header[index]
    if column not in header:
        raise DataError(f"{source}:1: no column {column!r}; the header has {header}")
    return column


def _csv_records(source: str, lines, delimiter: str):
    header = None
    for start, row in csv_rows(lines, source, delimiter):
        if not row:
            continue  # a blank line
        if header is None:
            header = row
            twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
            if twice is not None:
                raise DataError(f"{source}:{start}: the header names the column {twice!r} twice ({header})")
            continue
        if len(row) != len(header):
            raise DataError(f"{source}:{start}: {len(row)} fields, but the header has {len(header)} ({header})")
        yield f"{source}:{start}", dict(zip(header, row))


def _json_records(source: str, lines):
    for where, _, item in json_lines(lines, source):
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}")
        yield where, item


# Format name → reader. A reader gets the decoded text, the path for messages and the options.
READERS: dict[str, Reader] = {"csv": _read_csv, "tsv": _read_tsv, "jsonl": _read_jsonl}
# Extension → format name, used when ``format`` is not given.
EXTENSIONS: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
DELIMITERS: dict[str, str] = {"csv": ",", "tsv": "\t"}
