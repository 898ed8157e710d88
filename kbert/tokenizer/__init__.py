"""In-graph BERT tokenization with Hugging Face parity (ids, offsets, pairs, windows)."""

from kbert.tokenizer.bert_tokenizer import BertTokenizer, Encoding
from kbert.tokenizer.normalizer import BertNormalizer

__all__ = ["BertTokenizer", "BertNormalizer", "Encoding"]
