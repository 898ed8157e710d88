"""Hugging Face checkpoint folders: config, weights files (safetensors / torch zip), name mapping.

``resolve_model`` loads without TensorFlow (the command line checks a model path before starting it); the
rest is imported when first used.
"""

import importlib

from kbert.checkpoint.resolve import resolve_model

_LAZY = {"EncoderConfig": "kbert.checkpoint.config", "Checkpoint": "kbert.checkpoint.loader",
         "load_checkpoint": "kbert.checkpoint.loader"}

__all__ = ["EncoderConfig", "Checkpoint", "load_checkpoint", "resolve_model"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
