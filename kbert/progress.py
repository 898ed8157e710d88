"""Progress bars for long inference (``kbert predict --input``, ``kbert evaluate``): tqdm on a terminal,
nothing when stderr is piped or redirected.

A command turns bars on for what it runs with :func:`progress_bars`; loops wrap their batches in
:func:`progress`, which is the identity unless bars are on and stderr is a terminal.

Example:
    >>> from kbert.progress import progress, progress_bars
    >>> batches = [1, 2, 3]
    >>> progress(batches) is batches                  # bars off
    True
    >>> with progress_bars("predicting"):
    ...     progress(batches) is batches              # on, but stderr is not a terminal here
    True
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator

_DESCRIPTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("kbert_progress", default=None)


@contextlib.contextmanager
def progress_bars(description: str) -> Iterator[None]:
    """Show bars labelled ``description`` for the loops run inside the ``with`` block."""
    token = _DESCRIPTION.set(description)
    try:
        yield
    finally:
        _DESCRIPTION.reset(token)


def progress(iterable: Iterable, total: int | None = None, unit: str = "batch") -> Iterable:
    """``iterable`` with a tqdm bar on stderr when bars are on and stderr is a terminal, else unchanged."""
    description = _DESCRIPTION.get()
    if description is None or not _is_terminal(sys.stderr):
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
