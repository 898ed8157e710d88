"""Start TensorFlow without its C++ start-up noise, for the ``kbert`` command line and for ``import kbert``.

Measured with TF 2.21 on machines without a GPU: ``TF_CPP_MIN_LOG_LEVEL`` does not silence what TF prints
through absl before ``absl::InitializeLog()`` (TF issue #100442): ``import tensorflow`` writes "All log
messages before absl::InitializeLog() ..." and "cudart_stub.cc ... Could not find cuda drivers" twice at any
level (and "oneDNN custom operations are on" twice where oneDNN is on); listing the devices writes "failed
call to cuInit"; where oneDNN is on and the CPU lacks AVX-512, the first int64 op with a oneDNN kernel
(a ``Transpose``) writes "oneDNN supports DT_INT64 only on platforms with AVX-512" once per process. They go
straight to file descriptor 2, so the only place to catch them is there: :func:`quietly` points fd 2 at a
temporary file while TensorFlow imports (and here starts), then restores it and writes back every line that
is not start-up noise (so real errors, and anything Python printed, still show).

What is noise follows ``TF_CPP_MIN_LOG_LEVEL`` (0 all, 1 no INFO, 2 no WARNING, 3 no ERROR). When the user set
it, only the lines TF printed below that level despite it are removed (with 0, nothing is). When they did
not, kbert sets 2 and also removes the known harmless ERROR lines above (cuInit, oneDNN's int64).

Two ways in: the command line calls :func:`start_quietly`, which also initialises the devices (and spends
oneDNN's once-per-process int64 line) inside the capture; ``import kbert`` calls :func:`quiet_tensorflow_import`,
which imports TensorFlow the same way the first time anything imports it, and lists the physical devices
(where cuInit speaks) but leaves the logical devices uninitialised, so a user can still configure them.

Example:
    >>> from kbert.quiet_tensorflow import is_startup_noise, keep_line
    >>> is_startup_noise("I0000 00:00:1796 8670 cudart_stub.cc:31] Could not find cuda drivers on your machine")
    True
    >>> is_startup_noise("Traceback (most recent call last):")
    False
    >>> keep_line("E0000 00:00:1796.43 8025 util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512.",
    ...           level=2, user_level=False), keep_line("W0000 00:00:1796.43 8025 x.cc:1] w", level=2, user_level=True)
    (False, False)
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc"
    r"|oneDNN custom operations are on"
    r"|oneDNN supports DT_\w+ only on platforms with AVX-512"
    r"|To enable the following instructions:.*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT")
_ABSL_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\]")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# absl's own lines without its prefix: its pre-InitializeLog warning, and cpu_feature_guard's second (INFO) line
_UNPREFIXED = ((re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\)"), 1),
               (re.compile(r"^To enable the following instructions:.*rebuild TensorFlow"), 0))


def is_startup_noise(line: str) -> bool:
    return bool(STARTUP_NOISE.search(line))


def severity(line: str) -> int | None:
    """0-3 for an absl log line (INFO, WARNING, ERROR, FATAL), None for anything else."""
    match = _ABSL_LINE.match(line)
    if match:
        return _SEVERITY[match.group(1)]
    return next((level for pattern, level in _UNPREFIXED if pattern.match(line)), None)


def keep_line(line: str, level: int, user_level: bool) -> bool:
    """Whether a line TF wrote to fd 2 is shown: not below ``level``, nor known noise unless the user chose it."""
    found = severity(line)
    if found is not None and found < level:
        return False
    return user_level or not is_startup_noise(line)


def log_level() -> tuple[int, bool]:
    """``TF_CPP_MIN_LOG_LEVEL`` (set to 2 when unset, as kbert's default) and whether the user set it."""
    value = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if value is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # TF's own C++ logging: warnings and info off
        return 2, False
    try:
        return int(value), True
    except ValueError:  # TF reads a value it cannot parse as 0
        return 0, True


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Run the block with fd 2 captured, then write back the lines :func:`keep_line` keeps."""
    level, user_level = log_level()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if keep_line(line, level, user_level)))
            sys.stderr.flush()


def start_quietly(configure: Callable[[], None] | None = None) -> None:
    """Import TensorFlow and initialise its devices with start-up noise removed (see the module docstring).

    ``configure`` runs between the import and the device initialisation (device settings such as
    logical CPU devices must be made before TensorFlow initialises them).
    """
    _remove_import_hook()
    if "tensorflow" in sys.modules:
        _start(configure)
        return
    with quietly():
        _start(configure)


def _start(configure) -> None:
    import tensorflow as tf

    if configure is not None:
        configure()
    tf.config.list_logical_devices()  # device initialisation (cuInit) happens here
    # oneDNN's "supports DT_INT64 only on platforms with AVX-512" is written once per process, at the first
    # int64 op with a oneDNN kernel: spend it here, inside the capture (a no-op where oneDNN is off).
    tf.transpose(tf.zeros((1, 1), tf.int64))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the first time it is imported and has it executed inside :func:`quietly`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _remove_import_hook()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the real loader, for importlib.resources
        with quietly():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # CUDA's start (cuInit) speaks here; logical devices wait


def quiet_tensorflow_import() -> None:
    """Have TensorFlow imported quietly the first time anything imports it (``import kbert`` calls this)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def _remove_import_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImport)]
