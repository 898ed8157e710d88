"""Text (pair) regression, STS-B style: one output, mean squared error, ``problem_type="regression"``.

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("regression").name
    'text-regression'
"""

from kbert.tasks.spec import TaskSpec
from kbert.tasks.text_classification import TOP_K

SPEC = TaskSpec("text-regression", "kbert.tasks.text_regression.task:TextRegression", aliases=("regression",),
                options=(TOP_K,), data_help="csv/tsv/jsonl rows with a number as label")
