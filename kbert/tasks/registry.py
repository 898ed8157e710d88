"""The one registry of tasks: pipeline, training, evaluation, export, recipes and CLI find a task here.

Adding a task = one package under ``kbert/tasks/`` (a ``TaskSpec`` named ``SPEC`` in its
``__init__.py``, the :class:`~kbert.tasks.base.Task` subclass it names, its tests) + one line in
:data:`TASK_PACKAGES`. Importing this module does not import TensorFlow.

Example:
    >>> from kbert.tasks.registry import get_spec, task_names
    >>> get_spec("sentiment-analysis").name
    'text-classification'
    >>> "ner" in task_names()
    True
"""

from __future__ import annotations

import functools
import importlib

from kbert.errors import UnknownTaskError
from kbert.tasks.spec import TaskSpec

DEFAULT_TRAIN_TASK = "text-classification"  # what `kbert train` fine-tunes when no task is named

TASK_PACKAGES = (
    "kbert.tasks.text_classification",
    "kbert.tasks.multi_label_classification",
    "kbert.tasks.text_regression",
    "kbert.tasks.token_classification",
    "kbert.tasks.question_answering",
    "kbert.tasks.feature_extraction",
    "kbert.tasks.sentence_embedding",
    "kbert.tasks.retrieval",
)


@functools.cache
def specs() -> tuple[TaskSpec, ...]:
    """Every task's spec, in registry order (names and aliases checked to be unique)."""
    found, seen = [], set()
    for package in TASK_PACKAGES:
        spec = importlib.import_module(package).SPEC
        for key in (spec.name, *spec.aliases):
            if key in seen:
                raise ValueError(f"task name {key!r} is registered twice")
            seen.add(key)
        found.append(spec)
    return tuple(found)


def get_spec(name: str) -> TaskSpec:
    """The spec registered under ``name`` (a name or an alias)."""
    if not isinstance(name, str):
        raise UnknownTaskError(f"task must be a string, got {type(name).__name__} {name!r}")
    for spec in specs():
        if name == spec.name or name in spec.aliases:
            return spec
    raise UnknownTaskError(f"unknown task {name!r}; known tasks: {task_names()}")


def get_task(name: str) -> type:
    """The Task class registered under ``name`` (imports TensorFlow)."""
    return get_spec(name).load()


def task_names() -> list[str]:
    """Every accepted task name, aliases included, sorted."""
    return sorted(key for spec in specs() for key in (spec.name, *spec.aliases))


def default_task(checkpoint) -> str:
    """The task a kbert-trained checkpoint names (``config.json``'s ``kbert.task``), else the task whose trained
    head the checkpoint carries (its ``architectures``), else the first that needs no head (feature extraction)."""
    trained = checkpoint.config.extra.get("kbert", {}).get("task")
    if isinstance(trained, str) and trained in task_names():
        return get_spec(trained).name
    tasks = [get_task(spec.name) for spec in specs()]
    for task in tasks:
        if task.has_head_for(checkpoint):
            return task.name
    return next(task.name for task in tasks if task.hf_head is None)
