"""Multi-label classification: every label an independent yes/no (sigmoid + binary cross-entropy).

Same head and checkpoint layout as text classification, ``problem_type="multi_label_classification"``;
training labels are lists of names, encoded multi-hot.

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("multi-label-classification").implementation
    'kbert.tasks.multi_label_classification.task:MultiLabelClassification'
"""

from kbert.tasks.spec import TaskSpec
from kbert.tasks.text_classification import TOP_K

SPEC = TaskSpec("multi-label-classification", "kbert.tasks.multi_label_classification.task:MultiLabelClassification",
                options=(TOP_K,), data_help="csv/tsv/jsonl rows whose label is several names")
