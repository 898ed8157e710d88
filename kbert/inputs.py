"""Read inference inputs from files, validating every line (errors name ``file:line``).

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "in.jsonl"
    >>> _ = path.write_text('{"text": "a", "text_pair": "b"}\\n{"text": "c"}\\n')
    >>> read_examples(path)
    [{'text': 'a', 'text_pair': 'b'}, {'text': 'c'}]
"""

from __future__ import annotations

import json
import os
import pathlib

from kbert.errors import InputError


def read_examples(path: str | os.PathLike, required: tuple[str, ...] = ("text",),
                  optional: tuple[str, ...] = ("text_pair",)) -> list[dict]:
    """Inputs from ``path``: JSON lines (``.jsonl``/``.json``) of objects with the string fields ``required``
    (and ``optional``), else one text per line (only when the one required field is ``text``).

    Blank lines are skipped in plain text files.
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    examples = []
    is_jsonl = path.suffix in (".jsonl", ".json")
    if not is_jsonl and required != ("text",):
        raise InputError(f"{path}: inputs with {', '.join(map(repr, required))} must be JSON lines (.jsonl)")
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}:{number}: not UTF-8 (byte {err.start} of the line)") from None
        if not text.strip():
            continue
        examples.append(_parse_json_line(text, path, number, required, optional) if is_jsonl else {"text": text})
    if not examples:
        raise InputError(f"{path}: no inputs (the file is empty)")
    return examples


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
