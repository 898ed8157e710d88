"""``tf.distribute`` strategies for ``--strategy``: one device, mirrored over local devices, several machines
(``multiworker``) or a TPU.

* ``default``: the current (single-device) strategy.
* ``mirrored``: synchronous data parallelism over local GPUs. On a machine without GPUs it needs the CPU
  split into logical devices *before* TensorFlow starts: set ``KBERT_CPU_DEVICES=2`` (the CLI applies it at
  start-up) or call :func:`split_cpu` first thing. That is how multi-replica training is tested on CI.
* ``multiworker``: ``MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG`` (checked by
  :func:`read_tf_config`, errors naming the field). Every worker runs the same command; the chief (task
  ``chief``, else ``worker`` 0) writes the run folder, the other workers keep their backups in the run's
  state folder (:func:`worker_role`). It must be made before TensorFlow initialises its devices (collective
  ops are configured at program start-up), so ``kbert.train`` makes the strategy first, and the ``kbert``
  command line makes it while TensorFlow starts (:func:`make_at_startup`).
* ``tpu``: ``TPUStrategy`` on the TPU named by ``tpu`` (``--tpu``; a name, ``grpc://host:port``, or
  ``local``), else found by ``TPUClusterResolver`` from the environment (``TPU_NAME``, a Cloud TPU VM).
  Untested on hardware here: the tests stop where a TPU is needed.

Example:
    >>> from kbert.training.strategy import make_strategy, read_tf_config
    >>> make_strategy("default").num_replicas_in_sync
    1
    >>> read_tf_config('{"cluster": {"worker": ["localhost:12345", "localhost:23456"]}, '
    ...                '"task": {"type": "worker", "index": 1}}').is_chief
    False
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from kbert.errors import TrainingError
from kbert.training.config import STRATEGIES

CPU_DEVICES_ENV = "KBERT_CPU_DEVICES"
ROLES = ("chief", "worker", "evaluator")  # MultiWorkerMirroredStrategy's task types (no parameter servers)
_MADE: dict[tuple, tf.distribute.Strategy] = {}  # a multi-worker or TPU strategy is made once per process
AT_STARTUP = ("multiworker", "tpu")  # the strategies made before TensorFlow initialises its devices


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


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker cluster (a single process is the chief of a cluster of one)."""

    task_type: str = "chief"
    index: int = 0
    num_workers: int = 1  # chief + workers (the processes that train)
    cluster_has_chief: bool = True  # False: worker 0 is the chief

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.index == 0
                                             and not self.cluster_has_chief)

    @property
    def name(self) -> str:
        return f"{self.task_type}-{self.index}"


def read_tf_config(text: str | None = None) -> WorkerRole:
    """Check ``TF_CONFIG`` (``text``, default the environment's) and return this process's role.

    The cluster maps roles (``chief``, ``worker``, ``evaluator``) to lists of ``host:port``; ``task`` names
    this process's ``type`` and ``index``. Every error names the field.
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text:
        raise TrainingError("strategy 'multiworker' needs TF_CONFIG: {\"cluster\": {\"worker\": [\"host:port\", "
                            "...]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
    try:
        config = json.loads(text)
    except ValueError as err:
        raise TrainingError(f"TF_CONFIG is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise TrainingError(f"TF_CONFIG must be a JSON object, got {text[:80]!r}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise TrainingError(f"TF_CONFIG: 'cluster' must map roles to address lists, got {cluster!r}")
    for role, addresses in cluster.items():
        if role == "ps":
            raise TrainingError("TF_CONFIG: cluster.ps: parameter servers are not supported (use chief/worker "
                                "with MultiWorkerMirroredStrategy)")
        if role not in ROLES:
            raise TrainingError(f"TF_CONFIG: cluster.{role}: unknown role; roles are {list(ROLES)}")
        if not isinstance(addresses, list) or not addresses:
            raise TrainingError(f"TF_CONFIG: cluster.{role} must be a non-empty list of 'host:port', got {addresses!r}")
        for i, address in enumerate(addresses):
            host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise TrainingError(f"TF_CONFIG: cluster.{role}[{i}] must be 'host:port', got {address!r}")
    if "chief" in cluster and len(cluster["chief"]) != 1:
        raise TrainingError(f"TF_CONFIG: cluster.chief must have exactly one address, got {cluster['chief']!r}")
    if not isinstance(task, dict):
        raise TrainingError(f"TF_CONFIG: 'task' must be {{\"type\": ..., \"index\": ...}}, got {task!r}")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise TrainingError(f"TF_CONFIG: task.type {task_type!r} is not a role of the cluster {sorted(cluster)}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise TrainingError(f"TF_CONFIG: task.index {index!r} is out of range: cluster.{task_type} has "
                            f"{len(cluster[task_type])} address(es)")
    if task_type == "evaluator":
        raise TrainingError("TF_CONFIG: task.type 'evaluator': kbert's workers evaluate every epoch themselves; "
                            "run this process as a worker or not at all")
    trainers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return WorkerRole(task_type, index, trainers, cluster_has_chief="chief" in cluster)


def worker_role(strategy_name: str) -> WorkerRole:
    """This process's role: from ``TF_CONFIG`` under ``multiworker``, else the chief of one."""
    return read_tf_config() if strategy_name == "multiworker" else WorkerRole()


def make_at_startup(name: str, tpu: str | None = None) -> None:
    """Make the strategy ``name`` now if it is one of :data:`AT_STARTUP`, to be called between TensorFlow's import
    and its device initialisation: ``MultiWorkerMirroredStrategy`` configures collective ops, which TensorFlow
    accepts only then; a TPU system is initialised before anything runs. :func:`make_strategy` later returns
    the strategy made here (``_MADE``)."""
    if name in AT_STARTUP:
        make_strategy(name, tpu)


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The strategy ``name`` (one of :data:`STRATEGIES`; see the module docstring)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(cpus) < 2:
            raise TrainingError(f"strategy 'mirrored' found no GPU and one CPU device; set {CPU_DEVICES_ENV}=2 "
                                "before starting to mirror over logical CPU devices")
        return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multiworker":
        read_tf_config()  # a clear error before TensorFlow's own
        key = ("multiworker", os.environ["TF_CONFIG"])
        if key not in _MADE:
            try:
                _MADE[key] = tf.distribute.MultiWorkerMirroredStrategy()
            except (RuntimeError, ValueError) as err:
                raise TrainingError(f"strategy 'multiworker': {err} (it must be made before TensorFlow runs "
                                    "anything in this process)") from None
        return _MADE[key]
    if name == "tpu":
        key = ("tpu", tpu)
        if key not in _MADE:
            _MADE[key] = _tpu_strategy(tpu)
        return _MADE[key]
    raise TrainingError(f"unknown strategy {name!r}; use one of {list(STRATEGIES)}")


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    """``TPUStrategy`` after connecting to and initialising the TPU system (each step a clear error)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except (ValueError, RuntimeError) as err:
        where = f"--tpu {tpu!r}" if tpu else "the environment (TPU_NAME, a Cloud TPU VM)"
        raise TrainingError(f"strategy 'tpu': no TPU found from {where}: {err}") from None
    try:
        if tpu not in (None, "", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        raise TrainingError(f"strategy 'tpu': cannot initialise the TPU system ({err})") from None
    return tf.distribute.TPUStrategy(resolver)
