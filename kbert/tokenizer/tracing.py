"""When a tokenizer runs op by op and when it runs as one traced graph.

A tokenizer is ~1,500 TensorFlow ops. Traced, a call is fast (10,000 sentences through RoBERTa's BPE:
0.09-0.12 s), but the first traced call pays for building the graph and instantiating it (0.29 s of tracing
plus ~0.35 s of graph set-up for the BPE tokenizer; ~2 s for a pipeline's WordPiece encoder with its
windows). Op by op, the same 10,000 sentences take 0.25-0.41 s and nothing is paid up front (measured on
the 2-core CPU, 2026-12-06, ``benchmarks/bench_bpe_tokenizer.py``'s texts). Which is cheaper depends on how
many calls follow, which nobody knows at the first call, so :class:`EagerThenTraced` does what ski rental
does: it runs eagerly until its eager calls have spent about as long as a trace costs, then traces once.
A process that tokenizes once never traces; a long job traces after at most ~1 s of eager calls.

In a graph (``tf.function``, ``tf.data``, a SavedModel) both classes call their one ``tf.function``, so
every trace of an outer function reuses the same inner trace.

Example:
    >>> import tensorflow as tf
    >>> upper = EagerThenTraced(tf.strings.upper, [tf.TensorSpec([None], tf.string)], budget_seconds=0.0)
    >>> upper(tf.constant(["a"])).numpy().tolist(), upper.traced
    ([b'A'], False)
    >>> upper(tf.constant(["b"])).numpy().tolist(), upper.traced
    ([b'B'], True)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import tensorflow as tf

EAGER_SECONDS = 1.0  # eager time an EagerThenTraced spends before it traces (about what one trace costs)
STRINGS = (tf.TensorSpec([None], tf.string),)


def own_function(fn: Callable, **options):
    """``tf.function(fn, **options)``, whose traces TensorFlow's retracing warning counts apart from others'.

    TensorFlow counts traces per Python code object (``fn.__code__``), not per ``tf.function``: every pipeline
    makes a new ``tf.function`` of ``Pipeline._call_model`` that traces once, for its own model, and the fifth
    pipeline of a process printed "5 out of the last 9 calls to <bound method Pipeline._call_model ...>
    triggered tf.function retracing" although no function had traced twice. A :func:`functools.partial` has no
    ``__code__``, so TensorFlow counts it by itself: only a real retrace of this function warns.
    """
    return tf.function(functools.partial(fn), **options)


class TracedOnFirstUse:
    """``tf.function(fn, input_signature=[strings (None,)])``, made on its first call.

    A plain object, not a tracked part of a ``tf.Module``: a SavedModel holds the function only where an
    exported function calls it. Every call in a graph reuses the one trace.

    Example:
        >>> import tensorflow as tf
        >>> TracedOnFirstUse(tf.strings.length)(tf.constant(["abc"])).numpy().tolist()
        [3]
    """

    def __init__(self, fn: Callable, input_signature: Sequence[tf.TensorSpec] = STRINGS):
        self._fn, self._signature, self._function = fn, list(input_signature), None

    @property
    def traced(self) -> bool:
        """Whether the ``tf.function`` exists: it is made by the first call that needs it, which traces it."""
        return self._function is not None

    def __call__(self, *args):
        return self.function(*args)

    @property
    def function(self):
        if self._function is None:
            self._function = own_function(self._fn, input_signature=self._signature, autograph=False,
                                          experimental_attributes={"_noinline": True})
        return self._function


class EagerThenTraced(TracedOnFirstUse):
    """``fn`` op by op until its eager calls have spent more than ``budget_seconds``, then one ``tf.function`` of it.

    Args:
        fn: the computation; it must give the same results eagerly and traced (no Python branches on
            tensor values).
        input_signature: the ``tf.function``'s signature (default: one ``(None,)`` string tensor).
        budget_seconds: eager time to spend before tracing (:data:`EAGER_SECONDS`).
        max_eager_rows: calls whose first argument has more rows go to the traced function at once
            (None: any size runs eagerly while the budget lasts).

    Example: see the module docstring.
    """

    def __init__(self, fn: Callable, input_signature: Sequence[tf.TensorSpec] = STRINGS, *,
                 budget_seconds: float = EAGER_SECONDS, max_eager_rows: int | None = None):
        super().__init__(fn, input_signature)
        self.budget_seconds, self.max_eager_rows = budget_seconds, max_eager_rows
        self.eager_seconds = 0.0

    def __call__(self, *args):
        if self.traced or not tf.executing_eagerly() or self.eager_seconds > self.budget_seconds or (
                self.max_eager_rows is not None and int(args[0].shape[0]) > self.max_eager_rows):
            return self.function(*args)
        start = time.perf_counter()
        result = self._fn(*args)
        self.eager_seconds += time.perf_counter() - start
        return result
