"""Hyperparameter search with Keras Tuner over kbert training runs.

- :mod:`kbert.tuning.search_space`: which ``TrainConfig`` fields are searched, and over what;
- :mod:`kbert.tuning.hypermodel`: a kbert training run as a ``keras_tuner.HyperModel``;
- :mod:`kbert.tuning.search`: :func:`tune` (``kbert tune``): the tuners, results table, best checkpoint;
- :mod:`kbert.tuning.plots`: ``trials.png``.
"""

from kbert.tuning.search import TUNERS, TuneResult, tune

__all__ = ["TUNERS", "TuneResult", "tune"]
