"""In-graph tokenizers with Hugging Face parity (ids, offsets, pairs, windows): WordPiece and byte-level BPE."""

from kbert.tokenizer.bert_tokenizer import BertTokenizer
from kbert.tokenizer.normalizer import BertNormalizer
from kbert.tokenizer.roberta_tokenizer import RobertaTokenizer
from kbert.tokenizer.subword import Encoding, SubwordTokenizer

__all__ = ["BertTokenizer", "BertNormalizer", "Encoding", "RobertaTokenizer", "SubwordTokenizer"]
