"""Write files so that a reader (TF Serving, a resumed run, a user) never sees half of one.

Each write goes to a fresh hidden temporary file in the same folder, is flushed to disk, then renamed
over the target (atomic on one filesystem); on any error the temporary file is removed.

Example:
    >>> import pathlib, tempfile
    >>> from kbert.atomic_files import write_json
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.json"
    >>> write_json(path, {"accuracy": 0.9})
    >>> path.read_text()
    '{\\n  "accuracy": 0.9\\n}\\n'
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any, Callable, BinaryIO


def write_with(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Atomically create or replace ``path`` with what ``write(file)`` writes."""
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    while True:  # a fresh name opened with O_EXCL; mode 0o666 so the umask applies as for open()
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    write_with(path, lambda f: f.write(data))


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    write_bytes(path, (json.dumps(data, indent=indent, ensure_ascii=False) + "\n").encode("utf-8"))
