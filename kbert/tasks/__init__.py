"""Tasks (one module each) and the registry that pipeline, export and CLI look them up in."""

from kbert.tasks import feature_extraction, text_classification  # noqa: F401  (registers the tasks)
from kbert.tasks.base import Example, ExampleOutput, Task
from kbert.tasks.registry import get_task, register, task_names

__all__ = ["Example", "ExampleOutput", "Task", "get_task", "register", "task_names"]
