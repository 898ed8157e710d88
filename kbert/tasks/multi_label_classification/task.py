"""The multi-label task class: text classification that always has ``problem_type="multi_label_classification"``.

Example:
    >>> from kbert.tasks import get_task
    >>> get_task("multi-label-classification").fixed_problem_type
    'multi_label_classification'
"""

from kbert.tasks.text_classification.task import TextClassification


class MultiLabelClassification(TextClassification):
    name = "multi-label-classification"
    fixed_problem_type = "multi_label_classification"
