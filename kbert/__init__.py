"""kbert: fine-tune and serve BERT-family encoders with Keras 3 on TensorFlow, with Hugging Face parity.

Example:
    >>> import kbert
    >>> embed = kbert.pipeline("feature-extraction")  # the embedded all-MiniLM-L6-v2
    >>> len(embed("I love Paris")[0])  # tokens, [CLS] and [SEP] included
    5
"""

__version__ = "0.1.0"

from kbert import errors  # noqa: E402
from kbert.checkpoint import BertConfig, Checkpoint, load_checkpoint  # noqa: E402
from kbert.pipeline import Pipeline, pipeline  # noqa: E402
from kbert.tokenizer import BertTokenizer  # noqa: E402
from kbert.training.config import TrainConfig  # noqa: E402
from kbert.training.trainer import train  # noqa: E402

__all__ = ["BertConfig", "BertTokenizer", "Checkpoint", "Pipeline", "TrainConfig", "errors", "load_checkpoint",
           "pipeline", "train", "__version__"]
