"""Batches of tokenized text for a task model: ``tf.data`` input (tokenize once, bucket by length) and one traced
pass of a model over such batches. Tasks build on it; it imports no task."""
