"""Keras models: the BERT backbone and the task heads put on it."""
