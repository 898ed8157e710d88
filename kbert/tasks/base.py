"""What every task provides: its Keras model, its input parsing and its Hugging Face-shaped outputs.

A task sees a loaded :class:`~kbert.checkpoint.Checkpoint`. The generic machinery (batching,
the compiled forward pass, export, CLI) lives elsewhere and calls these hooks:

    check_parameters ─► parse_inputs ─► [tokenizer + model, batched by kbert.pipeline]
                     ─► postprocess (postprocess_windows for tasks that split long texts) ─► package
    build_model  ─► serving_outputs (kbert.export)

``postprocess`` works on plain numpy arrays of ONE example so that it is testable without a model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from kbert.errors import InputError


@dataclasses.dataclass(frozen=True)
class Example:
    """One input as the pipeline sees it: a text and an optional second text.

    Pre-split input (``is_split_into_words``) keeps its ``words`` and where each starts in ``text``.
    """

    text: str
    text_pair: str | None = None
    words: tuple[str, ...] | None = None
    word_starts: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class ExampleOutput:
    """Model outputs of one example, padding removed.

    ``outputs`` holds the task model's outputs (token-level ones cut to ``len(token_ids)``);
    ``token_ids``/``starts``/``ends``/``sequence_ids`` describe the tokens (offsets are character
    offsets; special tokens have sequence id -1).
    """

    example: Example
    outputs: dict[str, np.ndarray]
    token_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    sequence_ids: np.ndarray


class Task:
    """Base class of kbert tasks; subclasses register themselves with ``@register``."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    token_level_outputs: ClassVar[tuple[str, ...]] = ()  # outputs shaped (B, T, ...)
    accepts_pairs: ClassVar[bool] = True
    call_parameters: ClassVar[tuple[str, ...]] = ()  # keyword arguments of pipeline calls

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self.config = checkpoint.config

    # --- model ---------------------------------------------------------------------------------
    def build_model(self):
        """A functional Keras model: backbone inputs → dict of named output tensors."""
        raise NotImplementedError

    # --- pipeline ------------------------------------------------------------------------------
    def parse_inputs(self, inputs: Any, params: dict[str, Any] | None = None) -> list[Example]:
        """Validate pipeline inputs and return them as examples (``params``: the checked call parameters).

        Accepts a ``str``, a ``{"text": ..., "text_pair": ...}`` dict, or a list of either.
        """
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else inputs
        if not isinstance(items, (list, tuple)):
            raise InputError(f"{self.name}: inputs must be a str, a dict with 'text' (and 'text_pair') or a list "
                             f"of them; got {type(inputs).__name__}")
        if not items:
            raise InputError(f"{self.name}: got an empty list of inputs")
        return [self._parse_one(item, i) for i, item in enumerate(items)]

    def _parse_one(self, item: Any, index: int) -> Example:
        where = f"{self.name}: input {index}"
        if isinstance(item, str):
            return Example(_check_encodable(item, where))
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if unknown or "text" not in item:
                raise InputError(f"{where}: a dict input needs the key 'text' and may have 'text_pair'; "
                                 f"got keys {sorted(item)}")
            if "text_pair" in item and not self.accepts_pairs:
                raise InputError(f"{where}: {self.name} does not take text pairs")
            text, pair = item["text"], item.get("text_pair")
            for key, value in (("text", text), ("text_pair", pair)):
                if value is not None and not isinstance(value, str):
                    raise InputError(f"{where}: {key!r} must be a str, got {type(value).__name__} {value!r:.60}")
            return Example(_check_encodable(text, where), pair if pair is None else _check_encodable(pair, where))
        raise InputError(f"{where} is {type(item).__name__} {item!r:.60}; expected a str"
                         + (" or a dict with 'text' and 'text_pair'" if self.accepts_pairs else ""))

    def check_parameters(self, params: dict[str, Any]) -> dict[str, Any]:
        """Reject keyword arguments the task does not know (never drop them silently)."""
        unknown = sorted(set(params) - set(self.call_parameters))
        if unknown:
            raise InputError(f"{self.name}: unknown argument(s) {unknown}; accepted: {list(self.call_parameters)}")
        return params

    def postprocess(self, output: ExampleOutput, **params) -> Any:
        """The Hugging Face-shaped result of one example."""
        raise NotImplementedError

    def window_stride(self, params: dict[str, Any]) -> int | None:
        """Overlap of the windows long inputs are split into; ``None``: inputs are truncated (one window each)."""
        return None

    def postprocess_windows(self, windows: list[ExampleOutput], **params) -> Any:
        """The result of one example from all its windows (one unless :meth:`window_stride` gives a stride)."""
        return self.postprocess(windows[0], **params)

    def package(self, results: list[Any], inputs: Any, params: dict[str, Any]) -> Any:
        """Nest per-example results as Hugging Face's pipeline returns them (``inputs`` as given)."""
        return results[0] if isinstance(inputs, (str, dict)) else results

    def classifier_head(self, features, dropout: float | None = None, name: str = "classifier"):
        """Hugging Face's ``BertFor*Classification`` head on ``features``: dropout, then Dense to the labels.

        ``dropout`` defaults as transformers picks it: ``classifier_dropout`` when the config sets it
        (0.0 included), else ``hidden_dropout_prob``. A new Dense is drawn from normal(0,
        ``initializer_range``) with zero bias, as ``_init_weights``; a trained head in the checkpoint is
        loaded instead (:meth:`load_head`). Returns the logits, ``features.shape[:-1] + (num_labels,)``.
        """
        import keras

        from kbert.modeling.backbone import hf_initializer

        if dropout is None:
            dropout = self.config.extra.get("classifier_dropout")
            dropout = self.config.hidden_dropout_prob if dropout is None else dropout
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(features)
        head = keras.layers.Dense(len(self.id2label), name=name,
                                  kernel_initializer=hf_initializer(self.config.extra.get("initializer_range", 0.02)))
        logits = head(x)
        self.load_head(head, name)
        return logits

    def load_head(self, head, prefix: str = "classifier") -> None:
        """Copy the checkpoint's trained head ``<prefix>.weight/.bias`` into the Dense layer ``head``.

        Only a head saved by this task's Hugging Face architecture is used (a sequence head never
        fills a token head); its size must match ``self.id2label``. Without one, ``head`` stays new.
        """
        from kbert.checkpoint.hf_names import dense_slots
        from kbert.checkpoint.loader import assign
        from kbert.errors import CorruptCheckpointError

        tensors = self.checkpoint.task_head(prefix, self.hf_architecture)
        if tensors is None:
            return
        rows = tensors.get("weight", np.zeros((0,))).shape[0]
        names = [self.id2label[i] for i in range(len(self.id2label))]
        if rows != len(names):
            raise CorruptCheckpointError(
                f"{self.checkpoint.path}: the {prefix} head has {rows} outputs but {len(names)} labels are "
                f"configured {names}")
        assign(dense_slots(prefix, head), {f"{prefix}.{k}": v for k, v in tensors.items()},
               source=str(self.checkpoint.path))

    # --- export --------------------------------------------------------------------------------
    def serving_outputs(self, outputs: dict, inputs: dict) -> dict:
        """Graph-only (TF ops) outputs of the serving signature, from the model outputs."""
        raise NotImplementedError


def _check_encodable(text: str, where: str) -> str:
    """Reject strings that cannot be UTF-8 encoded (lone surrogates), which TensorFlow cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"{where}: not valid Unicode (lone surrogate {text[err.start]!r} at index {err.start})") from None
    return text


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
