"""The one registry of tasks: pipeline, CLI and export find a task here by name or alias.

Adding a task = one module with a :class:`~kbert.tasks.base.Task` subclass decorated with
:func:`register`, imported in ``kbert/tasks/__init__.py``.

Example:
    >>> from kbert.tasks import get_task
    >>> get_task("sentiment-analysis").name
    'text-classification'
"""

from __future__ import annotations

from kbert.errors import UnknownTaskError

_TASKS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}


def register(cls):
    """Class decorator: make a Task subclass available under ``cls.name`` and ``cls.aliases``."""
    for key in (cls.name, *cls.aliases):
        if key in _TASKS or key in _ALIASES:
            raise ValueError(f"task name {key!r} is registered twice")
    _TASKS[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def get_task(name: str) -> type:
    """The Task class registered under ``name`` (a name or an alias)."""
    if not isinstance(name, str):
        raise UnknownTaskError(f"task must be a string, got {type(name).__name__} {name!r}")
    key = _ALIASES.get(name, name)
    if key not in _TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {task_names()}")
    return _TASKS[key]


def task_names() -> list[str]:
    """Every accepted task name, aliases included, sorted."""
    return sorted([*_TASKS, *_ALIASES])
