"""``config.json`` of a Hugging Face encoder checkpoint, validated into one normalised, frozen dataclass.

Each family names its fields its own way (DistilBERT's ``dim``, ``n_layers`` ...); the family's package
(:mod:`kbert.models`) renames them to the fields below on reading and back on saving, so the rest of kbert
reads one config whatever the family.

Example:
    >>> from kbert.checkpoint.config import EncoderConfig
    >>> config = EncoderConfig.from_dict({"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
    ...     "id2label": {"0": "neg", "1": "pos"}})
    >>> config.num_labels, config.id2label[1], config.hidden_act
    (2, 'pos', 'gelu')
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from kbert.errors import CheckpointNotFoundError, NotAnEncoderCheckpointError, UnsupportedModelError
from kbert.modeling.activations import ACTIVATIONS
from kbert.models import family_of
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The fields of an encoder's ``config.json`` that change what the model computes (BERT's names)."""

    vocab_size: int
    model_type: str  # a key of kbert.models.FAMILY_PACKAGES
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # "gelu" is exact (erf); "gelu_new"/"gelu_pytorch_tanh" are tanh approximations
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # number of segment (token type) ids; 0: the family has none (DistilBERT, MPNet)
    embedding_size: int | None = None  # width of the embeddings when smaller than hidden_size (ELECTRA)
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    id2label: dict[int, str] | None = None  # None: no labels declared (a bare encoder)
    problem_type: str | None = None  # None: decided from the number of labels, as Hugging Face does
    architectures: tuple[str, ...] = ()
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 0

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in (self.id2label or {}).items()}

    @property
    def family(self):
        """The :class:`~kbert.models.family.Family` that reads and builds this checkpoint."""
        return family_of(self.model_type)

    @property
    def position_offset(self) -> int:
        """Position id of the first token: 0 (BERT) or ``pad_token_id + 1`` (RoBERTa)."""
        return self.family.position_offset(self)

    @property
    def max_tokens(self) -> int:
        """The longest input the position table allows (RoBERTa's 514 rows hold 512 tokens)."""
        return self.max_position_embeddings - self.position_offset

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> "EncoderConfig":
        """Validate a parsed ``config.json``; ``source`` names it in error messages."""
        if not isinstance(raw, dict):
            raise NotAnEncoderCheckpointError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        model_type = raw.get("model_type")
        if model_type is None:
            raise NotAnEncoderCheckpointError(f"{source}: no 'model_type'; this is not a Hugging Face model config")
        raw = family_of(model_type, source).normalised(raw, source)
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise UnsupportedModelError(
                f"{source}: position_embedding_type {raw['position_embedding_type']!r} is not supported (only 'absolute')")
        if raw.get("is_decoder") or raw.get("add_cross_attention"):
            raise UnsupportedModelError(f"{source}: decoder / cross-attention BERT configs are not supported")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "id2label", "architectures"}
        values = {k: raw[k] for k in known if k in raw}
        if "vocab_size" not in values:
            raise NotAnEncoderCheckpointError(f"{source}: no 'vocab_size'")
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "type_vocab_size", "embedding_size"):
            value = values.get(key, 1)
            least = 0 if key == "type_vocab_size" else 1
            if key == "embedding_size" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                kind = "a non-negative" if least == 0 else "a positive"
                raise NotAnEncoderCheckpointError(f"{source}: {key} must be {kind} integer, got {value!r}")
        config = cls(**values, id2label=_labels(raw, source), architectures=tuple(raw.get("architectures") or ()),
                     extra={k: v for k, v in raw.items() if k not in known})
        if config.hidden_size % config.num_attention_heads:
            raise NotAnEncoderCheckpointError(f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                                          f"num_attention_heads {config.num_attention_heads}")
        if config.max_tokens < 2:
            raise NotAnEncoderCheckpointError(f"{source}: max_position_embeddings {config.max_position_embeddings} leaves "
                                          f"no room for tokens (positions start at {config.position_offset})")
        if config.hidden_act not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"{source}: hidden_act {config.hidden_act!r} is not supported; kbert knows {sorted(ACTIVATIONS)}")
        if config.problem_type is not None and config.problem_type not in PROBLEM_TYPES:
            raise UnsupportedModelError(f"{source}: problem_type {config.problem_type!r} is not one of {list(PROBLEM_TYPES)}")
        return config

    @classmethod
    def from_folder(cls, folder: str | pathlib.Path) -> "EncoderConfig":
        path = pathlib.Path(folder) / "config.json"
        if not path.is_file():
            raise CheckpointNotFoundError(f"{folder}: no config.json; not a Hugging Face checkpoint folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise NotAnEncoderCheckpointError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content in the family's own keys, Hugging Face style (string keys in ``id2label``)."""
        out = {k: v for k, v in self.extra.items() if k not in ("id2label", "label2id")}  # from the fields below
        for field in dataclasses.fields(self):
            if field.name not in ("extra", "id2label", "architectures"):
                out[field.name] = getattr(self, field.name)
        if self.architectures:
            out["architectures"] = list(self.architectures)
        if self.id2label:
            out["id2label"] = {str(i): label for i, label in self.id2label.items()}
            out["label2id"] = self.label2id
        if self.problem_type is None:
            out.pop("problem_type", None)
        if self.embedding_size is None:
            out.pop("embedding_size", None)
        return self.family.hf_config(out)

    def replace(self, **changes) -> "EncoderConfig":
        return dataclasses.replace(self, **changes)


def _labels(raw: dict, source: str) -> dict[int, str] | None:
    id2label = raw.get("id2label")
    if id2label is None:
        num = raw.get("num_labels")
        return {i: f"LABEL_{i}" for i in range(num)} if isinstance(num, int) and num > 0 else None
    if not isinstance(id2label, dict) or not id2label:
        raise NotAnEncoderCheckpointError(f"{source}: id2label must be a non-empty object, got {id2label!r}")
    try:
        labels = {int(k): str(v) for k, v in id2label.items()}
    except ValueError:
        raise NotAnEncoderCheckpointError(f"{source}: id2label keys must be integers, got {sorted(id2label)}") from None
    if sorted(labels) != list(range(len(labels))):
        raise NotAnEncoderCheckpointError(f"{source}: id2label ids must be 0..{len(labels) - 1}, got {sorted(labels)}")
    return labels
