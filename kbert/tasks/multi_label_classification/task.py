"""Multi-label classification: every label is an independent yes/no (sigmoid + binary cross-entropy).

Same head and checkpoint layout as text classification (``BertForSequenceClassification`` with
``problem_type="multi_label_classification"``); labels are lists of names, encoded multi-hot.

Example:
    >>> from kbert.tasks import get_task
    >>> get_task("multi-label-classification").name
    'multi-label-classification'
"""

from __future__ import annotations

from kbert.tasks.registry import register
from kbert.tasks.text_classification import TextClassification


@register
class MultiLabelClassification(TextClassification):
    name = "multi-label-classification"
    aliases = ()

    def __init__(self, checkpoint, id2label=None, problem_type=None):
        super().__init__(checkpoint, id2label=id2label, problem_type="multi_label_classification")
