"""``tf.distribute`` strategies for ``--strategy``: one device, or mirrored over local GPUs / logical CPUs.

On a machine without GPUs, ``mirrored`` needs the CPU split into logical devices *before* TensorFlow
starts: set ``KBERT_CPU_DEVICES=2`` (the CLI applies it at start-up) or call
:func:`split_cpu` first thing. That is how multi-replica training is tested on CI.

Example:
    >>> from kbert.training.strategy import make_strategy
    >>> make_strategy("default").num_replicas_in_sync
    1
"""

from __future__ import annotations

import os

import tensorflow as tf

from kbert.errors import TrainingError

CPU_DEVICES_ENV = "KBERT_CPU_DEVICES"


def split_cpu(count: int) -> None:
    """Expose the CPU as ``count`` logical devices (must run before TensorFlow initialises its runtime)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise TrainingError(f"{CPU_DEVICES_ENV}={count} came too late: TensorFlow had already started") from None


def split_cpu_from_env() -> None:
    value = os.environ.get(CPU_DEVICES_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise TrainingError(f"{CPU_DEVICES_ENV} must be a positive integer, got {value!r}")
        split_cpu(int(value))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default``: the current (single-device) strategy; ``mirrored``: synchronous data parallelism."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name != "mirrored":
        raise TrainingError(f"unknown strategy {name!r}; use 'default' or 'mirrored'")
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        raise TrainingError(f"strategy 'mirrored' found no GPU and one CPU device; set {CPU_DEVICES_ENV}=2 "
                            "before starting to mirror over logical CPU devices")
    return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
