"""kbert: fine-tune and serve BERT-family encoders with Keras 3 on TensorFlow, with Hugging Face parity.

Importing ``kbert`` is cheap: TensorFlow is imported the first time one of the names below is used
(so ``kbert --help`` answers at once), and without its C++ start-up lines (``kbert.quiet_tensorflow``).

Example:
    >>> import kbert
    >>> embed = kbert.pipeline("feature-extraction")  # the embedded all-MiniLM-L6-v2
    >>> len(embed("I love Paris")[0])  # tokens, [CLS] and [SEP] included
    5
"""

import importlib

from kbert.quiet_tensorflow import quiet_tensorflow_import

__version__ = "0.1.0"

_LAZY = {  # public name -> module that defines it
    "EncoderConfig": "kbert.checkpoint", "Checkpoint": "kbert.checkpoint", "load_checkpoint": "kbert.checkpoint",
    "Pipeline": "kbert.pipelines", "pipeline": "kbert.pipelines",
    "BertTokenizer": "kbert.tokenizer", "RobertaTokenizer": "kbert.tokenizer",
    "TrainConfig": "kbert.training.config", "train": "kbert.training.trainer", "evaluate": "kbert.training.evaluation",
    "tune": "kbert.tuning.search",
}

__all__ = sorted([*_LAZY, "errors", "tasks", "__version__"])

quiet_tensorflow_import()


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("errors", "tasks", "checkpoint", "export", "tokenizer", "training", "data", "pipelines"):
        return importlib.import_module(f"kbert.{name}")
    raise AttributeError(f"module 'kbert' has no attribute {name!r}")
