"""Text classification of single texts or pairs (sentiment, NLI): ``BertForSequenceClassification``.

    task.py           the head on the pooled [CLS] output, HF pipeline outputs, serving outputs
    training_data.py  rows (csv/tsv/jsonl/tfds) -> validated labels -> tokenized batches
    scoring.py        logits -> accuracy / macro-F1 (or micro-F1, Pearson) + loss, confusion matrix

The same code serves classification with several labels per text and regression (their own packages,
same head), which differ only in ``problem_type``.

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("sentiment-analysis").name
    'text-classification'
"""

from kbert.errors import InputError
from kbert.tasks.spec import UNSET, Option, TaskSpec


def parse_top_k(value: str):
    """``--top-k``: a positive number of labels, or ``all`` (checked when options resolve, so the error is kbert's)."""
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--top-k must be a positive integer or 'all', got {value!r}")
    return int(value)


TOP_K = Option("top_k", UNSET, "labels per input: a number, or 'all' (default: the best)", commands=("predict",),
               check=parse_top_k)

SPEC = TaskSpec("text-classification", "kbert.tasks.text_classification.task:TextClassification",
                aliases=("sentiment-analysis",), options=(TOP_K,),
                data_help="csv/tsv/jsonl rows (text[, text_pair], label) or tfds:NAME[split]")
