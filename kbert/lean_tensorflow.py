"""Start TensorFlow for a ``kbert`` command without the packages Keras imports for features kbert never uses.

``import tensorflow`` imports Keras, and Keras imports scikit-learn (for ``keras.wrappers``' scikit-learn
estimators; it brings scipy.stats along) and matplotlib (for ``keras.visualization``) whenever they are
installed, each inside ``try: import ... except ImportError``. Measured 2026-12-07 (2-core CPU shared with
other jobs, fastest of 3): ``import tensorflow`` 4.5 s with them, 3.4 s without. :func:`hidden` makes them
unimportable while its block runs, so Keras leaves those two features off in this process (they raise
ImportError if called), and removes itself after: a command that needs scikit-learn later (Keras Tuner,
seqeval) imports it as usual. Only the command line uses it; ``import kbert`` leaves a user's Keras whole.

Example:
    >>> with hidden(("no_such_kbert_module",)):
    ...     try:
    ...         import no_such_kbert_module
    ...     except ImportError as err:
    ...         print(err)
    no_such_kbert_module is not imported while TensorFlow starts for a kbert command
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator

KERAS_EXTRAS = ("sklearn", "matplotlib")  # imported by Keras at start-up only for keras.wrappers / visualization


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name} is not imported while TensorFlow starts for a kbert command", name=name)
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
