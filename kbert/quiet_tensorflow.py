"""Start TensorFlow without its C++ start-up noise, for the ``kbert`` command line.

Measured with TF 2.21 on a machine without a GPU: ``TF_CPP_MIN_LOG_LEVEL=2`` does not silence what TF
prints through absl before ``absl::InitializeLog()`` (TF issue #100442): ``import tensorflow`` writes
"All log messages before absl::InitializeLog() ..." and "cudart_stub.cc ... Could not find cuda drivers"
twice, and the first op writes "failed call to cuInit". They go straight to file descriptor 2, so the
only place to catch them is there: :func:`start_quietly` points fd 2 at a temporary file while
TensorFlow imports and initialises its devices, then restores it and writes back every line that is
not one of those known start-up lines (so real errors, and anything Python printed, still show).

Nothing is hidden when the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves.

Example:
    >>> from kbert.quiet_tensorflow import is_startup_noise
    >>> is_startup_noise("I0000 00:00:1796 8670 cudart_stub.cc:31] Could not find cuda drivers on your machine")
    True
    >>> is_startup_noise("Traceback (most recent call last):")
    False
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable

STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc"
    r"|oneDNN custom operations are on"
    r"|To enable the following instructions:.*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT")


def is_startup_noise(line: str) -> bool:
    return bool(STARTUP_NOISE.search(line))


def start_quietly(configure: Callable[[], None] | None = None) -> None:
    """Import TensorFlow and initialise its devices with start-up noise removed (see the module docstring).

    ``configure`` runs between the import and the device initialisation (device settings such as
    logical CPU devices must be made before TensorFlow initialises them).
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        _start(configure)
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # TF's own C++ logging: warnings and info off
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            _start(configure)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not is_startup_noise(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def _start(configure) -> None:
    import tensorflow as tf

    if configure is not None:
        configure()
    tf.config.list_logical_devices()  # device initialisation (cuInit) happens here
