"""Inference precision (``precision="float32" | "bfloat16"``): the check that this machine runs bfloat16 natively,
and the model built for it.

bfloat16 inference computes the matmuls in bfloat16 under Keras' ``mixed_bfloat16`` policy (variables stay
float32), with the attention softmax and the layer-norm statistics in float32 and float32 outputs
(:mod:`kbert.modeling.mixed_precision`). It pays only where the hardware multiplies bfloat16 itself: CPUs with
AVX512-BF16 or AMX (``avx512_bf16`` / ``amx_bf16`` in ``/proc/cpuinfo``) or a GPU. Elsewhere TensorFlow converts
each bfloat16 operand to float32 and back, slower than float32, so it is refused with
:class:`~kbert.errors.UnsupportedPrecisionError`, unless ``KBERT_ALLOW_EMULATED_BFLOAT16=1`` asks for the emulation
anyway (to check the numbers on such a machine, not for speed).

Example:
    >>> from kbert.precision import check_precision
    >>> check_precision("float32")
    'float32'
"""

from __future__ import annotations

import os
import pathlib

from kbert.errors import InputError, UnsupportedPrecisionError

PRECISIONS = ("float32", "bfloat16")
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
ALLOW_EMULATED_ENV = "KBERT_ALLOW_EMULATED_BFLOAT16"
CPUINFO = pathlib.Path("/proc/cpuinfo")


def native_bfloat16() -> str | None:
    """What multiplies bfloat16 natively here (``"CPU flag avx512_bf16"``, ``"GPU"``), or ``None``."""
    try:
        words = set(CPUINFO.read_text(errors="replace").split())
    except OSError:  # not Linux: no flags to read
        words = set()
    flag = next((f for f in BFLOAT16_CPU_FLAGS if f in words), None)
    if flag is not None:
        return f"CPU flag {flag}"
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else None


def check_precision(precision: str, where: str = "precision") -> str:
    """``precision`` when this machine can run it; otherwise an error naming what it looked for and what to do.

    ``where`` names the argument in the message (``"--precision"`` for the CLI).
    """
    if precision not in PRECISIONS:
        raise InputError(f"{where} must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "bfloat16" and os.environ.get(ALLOW_EMULATED_ENV) != "1" and native_bfloat16() is None:
        raise UnsupportedPrecisionError(
            f"{where}='bfloat16' needs native bfloat16 arithmetic, and this machine has none: the CPU flags "
            f"{' / '.join(BFLOAT16_CPU_FLAGS)} are not in {CPUINFO} and TensorFlow sees no GPU. Emulated, bfloat16 "
            f"is slower than float32: use precision 'float32' here, or set {ALLOW_EMULATED_ENV}=1 to run it "
            f"emulated anyway (to check its outputs, not for speed)")
    return precision


def inference_model(task, precision: str = "float32"):
    """``task.build_model()`` for inference in ``precision`` (checked by :func:`check_precision` first).

    bfloat16: built under ``mixed_bfloat16``, attention softmax in float32, every output float32.
    """
    if precision == "float32":
        return task.build_model()
    from kbert.modeling.mixed_precision import dtype_policy, float32_outputs, float32_softmax

    with dtype_policy("mixed_bfloat16"):
        return float32_outputs(float32_softmax(task.build_model()))
