"""Hugging Face checkpoint folders: config, weights files (safetensors / torch zip), name mapping."""

from kbert.checkpoint.config import BertConfig
from kbert.checkpoint.loader import Checkpoint, load_checkpoint
from kbert.checkpoint.resolve import resolve_model

__all__ = ["BertConfig", "Checkpoint", "load_checkpoint", "resolve_model"]
