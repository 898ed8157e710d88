"""Feature extraction: the encoder's last hidden states, or one pooled embedding per text (no head, no training).

Example:
    >>> from kbert.tasks.registry import get_spec
    >>> get_spec("embeddings").name
    'feature-extraction'
"""

from kbert.tasks.spec import Option, TaskSpec

SPEC = TaskSpec(
    "feature-extraction", "kbert.tasks.feature_extraction.task:FeatureExtraction", aliases=("embeddings",),
    trainable=False,
    options=(
        Option("pooling", "mean", "one vector per text (default mean) or 'none' for all tokens", commands=("predict",),
               choices=("mean", "cls", "pooled", "none"), parse=lambda v: v, check=lambda v: None if v == "none" else v),
        Option("normalize", False, "L2-normalise vectors", commands=("predict",), flag=True),
    ))
