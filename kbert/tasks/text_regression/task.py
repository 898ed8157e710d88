"""The regression task class: text classification that always has ``problem_type="regression"`` (one output).

Example:
    >>> from kbert.tasks import get_task
    >>> get_task("regression").fixed_problem_type
    'regression'
"""

from kbert.tasks.text_classification.task import TextClassification


class TextRegression(TextClassification):
    name = "text-regression"
    fixed_problem_type = "regression"
