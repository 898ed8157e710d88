"""Token classification (NER, part of speech): a label per token, entities grouped as Hugging Face does.

    tagged_files.py         CoNLL / CoNLL-U / JSONL readers -> TaggedSentence (words, tags), errors at file:line
    features.py             word pieces, labels on first pieces, windows for long sentences, tf.data batches
    training_data.py        tagged files -> validated label ids -> windows -> training / evaluation batches
    loss.py                 cross-entropy over labelled tokens, weighted alike under length buckets
    entity_metrics.py       seqeval's entity precision / recall / F1
    scoring.py              window logits -> one label per word -> entity F1 or tag accuracy, plots
    task.py                 the head (BertForTokenClassification), pipeline outputs, serving outputs
    aggregation.py          Hugging Face's aggregation strategies, as pure numpy
    entity_groups_graph.py  the "simple" entity groups as TF ops, for the SavedModel

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> sorted(o.name for o in get_spec("ner").options_for("train"))
    ['label_all_pieces', 'stride', 'tag_column']
"""

from kbert.errors import InputError
from kbert.tasks.spec import UNSET, Option, TaskSpec

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")


def parse_tag_column(value: str):
    """``--tag-column``: a CoNLL column index (negative counts from the end) or a CoNLL-U field name."""
    return int(value) if value.lstrip("-").isdigit() else value


def check_stride(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"stride must be a non-negative integer, got {value!r}")
    return value


SPEC = TaskSpec(
    "token-classification", "kbert.tasks.token_classification.task:TokenClassification", aliases=("ner",),
    data_help="conll/conllu/jsonl tagged sentences",
    options=(
        Option("tag_column", None, "CoNLL tag column index (default: the last), CoNLL-U 'upos' (default) or 'xpos'",
               commands=("train", "evaluate"), parse=parse_tag_column),
        Option("label_all_pieces", False, "label every word piece (default: the first of each word)", flag=True),
        Option("stride", 32, "pieces shared by the windows of a sentence longer than --max-length (default 32)",
               parse=int, check=check_stride),
        Option("aggregation_strategy", "simple", "how tokens are grouped into entities (default simple)",
               commands=("predict",), choices=AGGREGATION_STRATEGIES),
        Option("stride", UNSET, "split long texts into windows sharing this many tokens", commands=("predict",),
               parse=int),
    ))
