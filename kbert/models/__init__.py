"""Encoder families, one package each (``kbert.models.<family>``): everything specific to a Hugging Face family."""
