"""Text (pair) regression, STS-B style: one output, mean squared error, ``problem_type="regression"``.

Example:
    >>> from kbert.tasks import get_task
    >>> get_task("regression").name
    'text-regression'
"""

from __future__ import annotations

from kbert.tasks.registry import register
from kbert.tasks.text_classification import TextClassification


@register
class TextRegression(TextClassification):
    name = "text-regression"
    aliases = ("regression",)

    def __init__(self, checkpoint, id2label=None, problem_type=None):
        super().__init__(checkpoint, id2label=id2label or checkpoint.config.id2label or {0: "LABEL_0"},
                         problem_type="regression")
