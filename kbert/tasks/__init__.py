"""Tasks (one module each) and the registry that pipeline, export and CLI look them up in."""

from kbert.tasks import (  # noqa: F401  (importing a task module registers it)
    feature_extraction, multi_label_classification, text_classification, text_regression, token_classification)
from kbert.tasks.base import Example, ExampleOutput, Task
from kbert.tasks.registry import get_task, register, task_names

__all__ = ["Example", "ExampleOutput", "Task", "get_task", "register", "task_names"]
