"""Read inference inputs from files, validating every line (errors name ``file:line``); a file name may end in a
row range, ``texts.txt[:100]`` (:func:`kbert.data.sources.split_row_range`: inputs, blank lines not counted).

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "in.jsonl"
    >>> _ = path.write_text('{"text": "a", "text_pair": "b"}\\n{"text": "c"}\\n')
    >>> read_inputs(path)
    [{'text': 'a', 'text_pair': 'b'}, {'text': 'c'}]
"""

from __future__ import annotations

import json
import os
import pathlib

from kbert.data.readers import _decode, _read_bytes
from kbert.data.sources import split_row_range
from kbert.errors import InputError


def read_inputs(path: str | os.PathLike, required: tuple[str, ...] = ("text",),
                optional: tuple[str, ...] = ("text_pair",), encoding: str = "utf-8") -> list[dict]:
    """Inputs from ``path``: JSON lines (``.jsonl``/``.json``) of objects with the string fields ``required``
    (and ``optional``), else one text per line (only when the one required field is ``text``).

    Blank lines are skipped in plain text files.
    """
    source, rows = split_row_range(os.fspath(path))
    path = pathlib.Path(source)
    text = _decode(_read_bytes(source), source, encoding)
    examples = []
    is_jsonl = path.suffix in (".jsonl", ".json")
    if not is_jsonl and required != ("text",):
        raise InputError(f"{path}: inputs with {', '.join(map(repr, required))} must be JSON lines (.jsonl)")
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            examples.append(_parse_json_line(line, path, number, required, optional) if is_jsonl else {"text": line})
    if not examples:
        raise InputError(f"{path}: no inputs (the file is empty)")
    if not examples[rows]:
        raise InputError(f"{path}: no inputs in rows {rows.start or ''}:{rows.stop or ''} (it has {len(examples)})")
    return examples[rows]


def _parse_json_line(text: str, path: pathlib.Path, number: int, required, optional) -> dict:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in required):
        names = " and ".join(f"a string {k!r}" for k in required)
        raise InputError(f"{path}:{number}: expected an object with {names}, got {text[:60]!r}")
    for key in optional:
        if item.get(key) is not None and not isinstance(item[key], str):
            raise InputError(f"{path}:{number}: {key!r} must be a string, got {type(item[key]).__name__}")
    return {k: item[k] for k in (*required, *optional) if item.get(k) is not None}
