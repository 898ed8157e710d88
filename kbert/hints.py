"""How an error message names a parameter the user can set: ``label_column=`` in Python (and in a recipe's
TOML), ``--label-column`` under the ``kbert`` command, which says so with :func:`command_line_flags`.

A hint names only what exists: under a command without a flag for the parameter, :func:`hint` gives
nothing, so ``kbert`` never tells anyone to pass ``labelled=False`` and Python never to pass ``--encoding``;
:func:`parameter` names a parameter in a statement (``--tag-column picks a column``).

Example:
    >>> hint("; give it with {}", "format")
    '; give it with format='
    >>> with command_line_flags({"format": "--format"}):
    ...     hint("; give it with {}", "format"), hint("; pass {} for unlabelled text", "label_type", "none")
    ('; give it with --format', '')
    >>> option("label_type", "none")
    "label_type='none'"
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping

_FLAGS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("kbert_flags", default=None)
_UNSET = object()


@contextlib.contextmanager
def command_line_flags(flags: Mapping[str, str] | None) -> Iterator[None]:
    """Within this block, messages name parameters by these flags (Python keyword -> ``--flag``); ``None``: by
    their Python keywords."""
    token = _FLAGS.set(None if flags is None else dict(flags))
    try:
        yield
    finally:
        _FLAGS.reset(token)


def option(keyword: str, value=_UNSET) -> str | None:
    """``keyword=`` / ``keyword='value'`` in Python, ``--flag`` / ``--flag value`` under the command line;
    ``None`` when the running command has no flag for ``keyword``."""
    flags = _FLAGS.get()
    if flags is None:
        return f"{keyword}=" if value is _UNSET else f"{keyword}={value!r}"
    flag = flags.get(keyword)
    if flag is None:
        return None
    return flag if value is _UNSET else f"{flag} {value}"


def parameter(keyword: str) -> str:
    """The parameter's name in a statement (``tag_column picks a column``): ``keyword`` in Python, its flag
    under the command line (``keyword`` itself where the command has none)."""
    flags = _FLAGS.get()
    return keyword if flags is None else flags.get(keyword, keyword)


def hint(template: str, keyword: str, value=_UNSET) -> str:
    """``template`` with its ``{}`` filled by :func:`option`, or ``""`` when there is no such option here."""
    shown = option(keyword, value)
    return "" if shown is None else template.format(shown)
