"""Load a Hugging Face encoder checkpoint folder: config, tokenizer, backbone weights and head tensors.

What differs between families (names, layers, tokenizer) is asked of the checkpoint's
:class:`~kbert.models.family.Family`; this module names none.

Example:
    >>> from kbert.checkpoint import load_checkpoint
    >>> ckpt = load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls")
    >>> ckpt.config.id2label[2], ckpt.has_pooler, sorted(ckpt.head_tensors("classifier"))
    ('positive', True, ['bias', 'weight'])
    >>> backbone = ckpt.build_backbone()
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pathlib

import numpy as np

from kbert.checkpoint.config import EncoderConfig
from kbert.checkpoint.resolve import resolve_model
from kbert.checkpoint.weights_files import load_state_dict
from kbert.errors import CorruptCheckpointError
from kbert.models.weights import WeightSlot

logger = logging.getLogger(__name__)

# Buffers Hugging Face saves with the weights.
_IGNORED = ("embeddings.position_ids", "embeddings.token_type_ids")


@dataclasses.dataclass(frozen=True, eq=False)
class Checkpoint:
    """A resolved checkpoint folder with its validated config and all tensors (canonical names)."""

    path: pathlib.Path
    config: EncoderConfig
    state_dict: dict[str, np.ndarray] = dataclasses.field(repr=False)

    @property
    def family(self):
        """The :class:`~kbert.models.family.Family` of this checkpoint."""
        return self.config.family

    @property
    def has_pooler(self) -> bool:
        return "pooler.dense.weight" in self.state_dict

    @functools.cached_property
    def tokenizer(self):
        """The family's tokenizer (:class:`kbert.tokenizer.protocol.Tokenizer`) from the folder's tokenizer files."""
        return self.family.tokenizer(self.path, self.config)

    def head_tensors(self, prefix: str) -> dict[str, np.ndarray] | None:
        """Tensors saved under ``<prefix>.`` (``classifier``, ``qa_outputs``), names without it (``weight``, ``bias``;
        a two-layer sequence head: ``dense.weight``, ``out_proj.weight`` ...)."""
        found = {name[len(prefix) + 1:]: t for name, t in self.state_dict.items() if name.startswith(prefix + ".")}
        return found or None

    def architecture(self, head: str) -> str:
        """The ``architectures`` name of a head suffix in this checkpoint's family (``RobertaForQuestionAnswering``)."""
        return self.family.architecture(head)

    def trained_head(self, head: str) -> dict[str, np.ndarray] | None:
        """The tensors of the family's ``*<head>`` head (``head``: the suffix, e.g. ``"ForTokenClassification"``),
        canonical names (``classifier.weight`` ...), only when ``config.architectures`` names that architecture.

        ``classifier.*`` means a sequence head in ``BertForSequenceClassification`` and a per-token
        head in ``BertForTokenClassification``; a task must not load the other one's head.
        """
        if self.architecture(head) not in self.config.architectures:
            return None
        prefixes = tuple(p + "." for p in self.family.head_layout(head, self.config).prefixes)
        found = {name: t for name, t in self.state_dict.items() if name.startswith(prefixes)}
        return found or None

    def head_outputs(self, head: str) -> int | None:
        """How many outputs (labels) the trained ``*<head>`` head has; ``None`` without one."""
        tensors = self.trained_head(head)
        weight = None if tensors is None else tensors.get(self.family.head_layout(head, self.config).output + ".weight")
        return None if weight is None else int(weight.shape[0])

    def build_backbone(self, *, use_pooler: bool | None = None, dtype=None):
        """The family's backbone holding this checkpoint's weights.

        ``use_pooler`` defaults to whether the checkpoint has pooler weights; asking for a pooler
        the checkpoint lacks initialises it randomly (as Hugging Face does, with a warning).
        """
        use_pooler = self.has_pooler if use_pooler is None else use_pooler
        backbone = self.family.build_backbone(self.config, use_pooler=use_pooler, dtype=dtype, random_init=False)
        all_slots = self.family.backbone_slots(backbone)
        slots = all_slots
        if use_pooler and not self.has_pooler:
            logger.warning("%s has no pooler weights; the pooler is randomly initialised", self.path)
            slots = [s for s in slots if not s.hf_name.startswith("pooler.")]
        assign(slots, self.state_dict, source=str(self.path))
        unused = sorted(set(self.state_dict) - {s.hf_name for s in all_slots} - set(_IGNORED))
        unused = [n for n in unused if not self.family.is_head_tensor(n)]
        if unused:
            logger.info("%s: %d tensors not used by the backbone, e.g. %s", self.path, len(unused), unused[:3])
        return backbone


def load_checkpoint(model: str | os.PathLike | None = None) -> Checkpoint:
    """Resolve ``model`` (see :func:`kbert.checkpoint.resolve.resolve_model`) and read its files."""
    path = resolve_model(model)
    config = EncoderConfig.from_folder(path)
    family = config.family
    state = {}
    for name, tensor in load_state_dict(path).items():
        state[family.canonical_name(name)] = tensor
    _check_vocab_size(path, config, state)
    return Checkpoint(path=path, config=config, state_dict=state)


def assign(slots: list[WeightSlot], state_dict: dict[str, np.ndarray], source: str) -> None:
    """Copy tensors into Keras variables, checking that every slot is present with the right shape."""
    missing = [s.hf_name for s in slots if s.hf_name not in state_dict]
    if missing:
        raise CorruptCheckpointError(
            f"{source}: {len(missing)} weights the config needs are missing, e.g. {missing[:4]}")
    for slot in slots:
        tensor = state_dict[slot.hf_name]
        try:
            value = slot.to_keras(np.asarray(tensor, dtype=np.float32))
        except ValueError:
            value = None
        expected = tuple(slot.variable.shape)
        if value is None or tuple(value.shape) != expected:
            raise CorruptCheckpointError(
                f"{source}: tensor {slot.hf_name!r} has shape {list(tensor.shape)}, which does not fit the "
                f"config (a variable of shape {list(expected)})")
        slot.variable.assign(value.astype(slot.variable.dtype))


def _check_vocab_size(path, config: EncoderConfig, state: dict) -> None:
    emb = state.get("embeddings.word_embeddings.weight")
    if emb is not None and emb.shape[0] != config.vocab_size:
        raise CorruptCheckpointError(
            f"{path}: word embeddings have {emb.shape[0]} rows but config.json says vocab_size={config.vocab_size}")
