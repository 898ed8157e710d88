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


def read_examples(path: str | os.PathLike) -> list[dict]:
    """Texts from ``path``: JSON lines (``.jsonl``/``.json``) of ``{"text", "text_pair"?}``, else one text per line.

    Blank lines are skipped in plain text files.
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    examples = []
    is_jsonl = path.suffix in (".jsonl", ".json")
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}:{number}: not UTF-8 (byte {err.start} of the line)") from None
        if not text.strip():
            continue
        examples.append(_parse_json_line(text, path, number) if is_jsonl else {"text": text})
    if not examples:
        raise InputError(f"{path}: no inputs (the file is empty)")
    return examples


def _parse_json_line(text: str, path: pathlib.Path, number: int) -> dict:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise InputError(f"{path}:{number}: expected an object with a string 'text', got {text[:60]!r}")
    pair = item.get("text_pair")
    if pair is not None and not isinstance(pair, str):
        raise InputError(f"{path}:{number}: 'text_pair' must be a string, got {type(pair).__name__}")
    return {"text": item["text"], **({"text_pair": pair} if pair is not None else {})}
