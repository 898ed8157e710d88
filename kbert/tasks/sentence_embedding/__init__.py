"""Sentence embeddings exactly as sentence-transformers computes them (pooling, normalisation, truncation and
prompts read from the model folder); no head, nothing to train.

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("sentence-embeddings").name
    'sentence-embedding'
"""

from kbert.errors import InputError
from kbert.tasks.spec import UNSET, Option, TaskSpec


def _positive(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 3:
        raise InputError(f"max_seq_length must be an integer of at least 3, got {value!r}")
    return value


SPEC = TaskSpec(
    "sentence-embedding", "kbert.tasks.sentence_embedding.task:SentenceEmbedding", aliases=("sentence-embeddings",),
    trainable=False,
    options=(
        Option("normalize", UNSET, "L2-normalise vectors (sentence-embedding: default as the model says)",
               commands=("predict",), flag=True),
        Option("max_seq_length", UNSET, "tokens per text (default: the model's max_seq_length)",
               commands=("predict",), parse=int, check=_positive),
        Option("prompt_name", UNSET, "a prompt of the model's config_sentence_transformers.json",
               commands=("predict",)),
    ))
