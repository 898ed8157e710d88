"""Tasks, one package each, and the registry that every generic layer finds them in (no TensorFlow import)."""

from kbert.tasks.base import EvaluationReport, Example, ExampleOutput, PreparedTraining, Task, TrainingPlan
from kbert.tasks.registry import default_task, get_spec, get_task, task_names

__all__ = ["EvaluationReport", "Example", "ExampleOutput", "PreparedTraining", "Task", "TrainingPlan",
           "default_task", "get_spec", "get_task", "task_names"]
