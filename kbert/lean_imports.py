"""A ``kbert`` command without the packages Keras and keras-hub import for features kbert never uses.

``import tensorflow`` imports Keras, and Keras imports scikit-learn (for ``keras.wrappers``' scikit-learn
estimators; scipy.stats comes along) and matplotlib (for ``keras.visualization``) whenever they are
installed; keras-hub imports kagglehub (for ``from_preset("kaggle://...")``; kbert reads checkpoints
itself). Each is a ``try: import ... except ImportError``. Measured 2026-12-07 (2-core CPU shared with
other jobs, fastest of 3): ``import tensorflow`` 4.35 s with scikit-learn and matplotlib, 3.16 s without;
``import keras_hub`` 0.49-0.58 s with kagglehub, 0.37-0.39 s without. Then still imported at start-up and
unused by every command there: scipy (by TF's legacy ``tensorflow.python.keras`` for ``scipy.sparse`` inputs
to TF 1 Keras models; ~0.07 s with its array-API helpers) and PIL (by ``keras.utils.image_utils``; ~0.02 s).

:func:`hidden` makes packages unimportable while its block runs, so those features stay off in this
process (they raise ImportError if called). The command line hides :data:`KERAS_EXTRAS` only while
TensorFlow starts (a command that needs scikit-learn, matplotlib or scipy later, through Keras Tuner,
seqeval, kbert's correlation metrics or ``evaluate --plots``, imports it as usual) and :data:`NEVER_USED`
for the whole command. ``import kbert`` hides nothing: a user's Keras and keras-hub stay whole.

Example:
    >>> with hidden(("no_such_kbert_module",)):
    ...     try:
    ...         import no_such_kbert_module
    ...     except ImportError as err:
    ...         print(err)
    no_such_kbert_module is not imported by a kbert command (kbert.lean_imports)
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator

# imported at start-up by Keras for keras.wrappers / keras.visualization (sklearn, matplotlib) and its image
# utilities (PIL), and by TensorFlow's legacy tf.keras for scipy.sparse inputs (scipy)
KERAS_EXTRAS = ("sklearn", "matplotlib", "scipy", "PIL")
NEVER_USED = ("kagglehub",)  # imported by keras-hub for Kaggle presets


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name} is not imported by a kbert command (kbert.lean_imports)", name=name)
        return None


@contextlib.contextmanager
def hidden(names: tuple[str, ...] = KERAS_EXTRAS) -> Iterator[None]:
    """Run the block with the packages ``names`` unimportable (those already imported stay as they are)."""
    finder = _Hide(tuple(n for n in names if n not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
