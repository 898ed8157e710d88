"""``kbert shard``: one big csv/tsv/jsonl file ─► N shards that ``kbert train --train 'DIR/*.tsv'`` streams.

Rows are dealt in turn (row i to shard i mod N), so shards are the same size within one row and each holds
a share of every part of the file; a csv/tsv header line is repeated at the top of every shard. The file is
read line by line (memory stays flat); a row is one line, as streaming reads it (:mod:`kbert.data.streaming`).

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "big.tsv").write_text("sentence\\tlabel\\n" + "".join(f"row {i}\\t{i % 2}\\n" for i in range(5)))
    >>> written = write_shards(folder / "big.tsv", folder / "shards", 2)
    >>> [p.name for p in written.shards], written.rows
    (['part-00000-of-00002.tsv', 'part-00001-of-00002.tsv'], 5)
    >>> (folder / "shards" / "part-00001-of-00002.tsv").read_text()
    'sentence\\tlabel\\nrow 1\\t1\\nrow 3\\t1\\n'
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import pathlib

from kbert.data import readers
from kbert.errors import DataError


@dataclasses.dataclass(frozen=True)
class Shards:
    shards: tuple[pathlib.Path, ...]
    rows: int  # rows written (header and blank lines not counted)


def write_shards(source, output, num_shards: int, *, format: str | None = None, header: bool | None = None) -> Shards:
    """Deal the rows of ``source`` into ``num_shards`` files ``output/part-0000i-of-0000N.<ext>``."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise DataError(f"the number of shards must be a positive integer, got {num_shards!r}")
    source = os.fspath(source)
    if not os.path.isfile(source):
        raise DataError(f"{source}: no such file")
    fmt = readers.format_of(source, format, formats=("csv", "tsv", "jsonl"))
    output = pathlib.Path(output)
    if output.exists() and any(output.glob("part-*")):
        raise DataError(f"{output}: already holds shards (part-*); give an empty or new folder")
    output.mkdir(parents=True, exist_ok=True)
    paths = tuple(output / f"part-{i:05d}-of-{num_shards:05d}.{fmt}" for i in range(num_shards))
    rows = 0
    with open(source, encoding="utf-8-sig", newline="") as f, contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(p, "w", encoding="utf-8", newline="")) for p in paths]
        first = f.readline()
        if fmt != "jsonl" and _is_header(first, fmt, header):
            for out in files:
                out.write(first if first.endswith("\n") else first + "\n")
            first = ""
        for line in _lines(first, f):
            if not line.strip():
                continue
            files[rows % num_shards].write(line if line.endswith("\n") else line + "\n")
            rows += 1
    if rows == 0:
        raise DataError(f"{source}: no rows to shard")
    return Shards(paths, rows)


def _lines(first: str, rest):
    if first:
        yield first
    yield from rest


def _is_header(line: str, fmt: str, header: bool | None) -> bool:
    """Whether the first line is a header, decided as the readers decide it (a well-known column name)."""
    if header is not None:
        return header
    fields = next(csv.reader(io.StringIO(line), delimiter="\t" if fmt == "tsv" else ","), [])
    return readers._has_header(fields, readers.ReadOptions())
