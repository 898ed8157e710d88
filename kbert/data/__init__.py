"""Training data: readers (files, TFDS, lists) → validated examples → label encoding → tf.data."""
