"""Bi-encoder retrieval: fine-tune a sentence-embedding model on (query, relevant document) pairs with in-batch
negatives, and score it with ranking metrics.

    pairs.py                 (query, positive[, negatives...]) rows from csv / tsv / jsonl
    training_data.py         distinct texts tokenized once -> random batches of queries and documents
    ranking_loss.py          sentence-transformers' MultipleNegativesRankingLoss + duplicate masking
    bi_encoder_training.py   the Keras model fit() trains: shared encoder, loss, GradCache mini-batches
    scoring.py               embed, rank with FAISS, MRR@10 / nDCG@10 / recall@k / MAP@100
    task.py                  the task: sentence-embedding pipeline and export, plus training and evaluation

The trained folder is a sentence-transformers model (HF weights + modules.json + pooling config), so it loads
in ``SentenceTransformer(folder)``, in ``kbert.pipeline("sentence-embedding", model=folder)`` and in
``kbert index``.

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("bi-encoder").name, get_spec("retrieval").resolve("train", {})
    ('retrieval', {'scale': 20.0, 'symmetric': False, 'keep_duplicates': False})
"""

from kbert.errors import InputError
from kbert.tasks.spec import UNSET, Option, TaskSpec


def _positive_number(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise InputError(f"scale must be a positive number, got {value!r}")
    return float(value)


def _mini_batch(value):
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InputError(f"mini_batch_size must be a positive integer, got {value!r}")
    return value


SPEC = TaskSpec(
    "retrieval", "kbert.tasks.retrieval.task:Retrieval", aliases=("bi-encoder",),
    options=(
        Option("scale", 20.0, "similarity scale of the ranking loss (1 / temperature; default 20)",
               parse=float, check=_positive_number),
        Option("symmetric", False, "add the document-to-query direction (symmetric InfoNCE)", flag=True),
        Option("keep_duplicates", False, "let copies of a positive in a batch count as negatives "
               "(default: masked)", flag=True),
        Option("mini_batch_size", UNSET, "texts per forward pass with gradient caching (GradCache, "
               "as CachedMultipleNegativesRankingLoss), for batches larger than memory", parse=int,
               check=_mini_batch),
    ),
    data_help="csv/tsv/jsonl rows (query, positive[, negative, negative_1...]); --text-column / "
              "--text-pair-column name the query and positive columns")
