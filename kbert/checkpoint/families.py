"""The encoder families kbert loads (BERT, RoBERTa): what differs between their Hugging Face checkpoints.

Everything else (attention blocks, layer norms, task heads' names) is shared. A family says:

* ``weight_prefix``: the encoder's tensor prefix in ``*For*`` checkpoints (``bert.`` / ``roberta.``);
* ``class_prefix``: the start of its ``architectures`` names (``BertForQuestionAnswering`` ...);
* ``tokenizer``: where its tokenizer class lives (WordPiece / byte-level BPE);
* ``positions_from_padding``: RoBERTa numbers positions from ``pad_token_id + 1`` and gives padding
  the position ``pad_token_id`` (transformers' ``create_position_ids_from_input_ids``); BERT counts
  from 0;
* ``sequence_head``: the layout of its sequence-classification head: ``"pooler"`` (BERT: Dense on
  the pooled ``[CLS]``, ``classifier.*``) or ``"two_layer"`` (RoBERTa's ``RobertaClassificationHead``
  on ``<s>``: ``classifier.dense`` → tanh → ``classifier.out_proj``).

Example:
    >>> from kbert.checkpoint.families import family_of
    >>> roberta = family_of("roberta")
    >>> roberta.architecture("ForQuestionAnswering"), roberta.weight_prefix, roberta.position_offset(1)
    ('RobertaForQuestionAnswering', 'roberta.', 2)
"""

from __future__ import annotations

import dataclasses
import importlib

from kbert.errors import UnsupportedModelError


@dataclasses.dataclass(frozen=True)
class Family:
    model_type: str
    weight_prefix: str
    class_prefix: str
    tokenizer: str  # "module:Class"
    tokenizer_files: tuple[str, ...]
    positions_from_padding: bool
    sequence_head: str  # "pooler" or "two_layer"

    def architecture(self, head: str) -> str:
        """The ``architectures`` name of a head suffix (``"ForTokenClassification"``) in this family."""
        return self.class_prefix + head

    def position_offset(self, pad_token_id: int) -> int:
        """The position id of the first token (0 for BERT, ``pad_token_id + 1`` for RoBERTa)."""
        return pad_token_id + 1 if self.positions_from_padding else 0

    def tokenizer_class(self) -> type:
        module, name = self.tokenizer.split(":")
        return getattr(importlib.import_module(module), name)


_COMMON_TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")

FAMILIES = {
    "bert": Family("bert", "bert.", "Bert", "kbert.tokenizer.bert_tokenizer:BertTokenizer",
                   ("vocab.txt", *_COMMON_TOKENIZER_FILES), positions_from_padding=False, sequence_head="pooler"),
    "roberta": Family("roberta", "roberta.", "Roberta", "kbert.tokenizer:RobertaTokenizer",
                      ("vocab.json", "merges.txt", *_COMMON_TOKENIZER_FILES), positions_from_padding=True,
                      sequence_head="two_layer"),
}
WEIGHT_PREFIXES = tuple(f.weight_prefix for f in FAMILIES.values())


def family_of(model_type: str) -> Family:
    """The family of a ``config.json`` ``model_type``."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise UnsupportedModelError(f"model_type {model_type!r} is not supported; kbert loads {sorted(FAMILIES)}") from None
