"""Evaluation metrics over numpy arrays (no TensorFlow), returning plain Python numbers for JSON:
:mod:`~kbert.metrics.classification` (classification, multi_label and regression, by scikit-learn and SciPy) and
:mod:`~kbert.metrics.ranking` (retrieval rankings, as sentence-transformers' ``InformationRetrievalEvaluator``)."""
