"""AdamW with Hugging Face Trainer's defaults: linear warm-up then linear decay, no decay on biases/LayerNorm.

Example:
    >>> from kbert.training.optimizer import WarmupLinearDecay
    >>> schedule = WarmupLinearDecay(peak_learning_rate=1e-3, warmup_steps=10, total_steps=110)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 60, 110)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0]
"""

from __future__ import annotations

import math
import re
import weakref

import keras
import tensorflow as tf
from keras import ops

from kbert.training.replica_clipping import clip_summed_gradient
from kbert.sparse_gradients import dense_gradients


@keras.saving.register_keras_serializable(package="kbert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``transformers.get_linear_schedule_with_warmup``: 0 → peak over ``warmup_steps``, then → 0 at ``total_steps``."""

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        decay = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        rising = step / warmup
        falling = ops.maximum(0.0, (self.total_steps - step) / decay)
        return self.peak_learning_rate * ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="kbert")
class TorchAdamW(keras.optimizers.AdamW):
    """Keras AdamW with PyTorch's update: ``eps`` is added to ``sqrt(v_hat)``, not to ``sqrt(v)``.

    Keras computes ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, which is torch's
    ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``eps`` scaled by ``1 / sqrt(1 - b2^t)`` (30x in the first
    step). Hugging Face's Trainer uses torch's form; fine-tuning with "the same hyperparameters" needs it too.
    Weight decay is decoupled (``var -= lr * wd * var`` before the update), as torch's AdamW; the update is
    TensorFlow's fused Adam kernel with ``eps`` rescaled to torch's form (see :meth:`update_step`).
    Embedding gradients are made dense first (``kbert.sparse_gradients``): Keras would square a
    repeated token's rows one by one, in Adam's second moment and in the clipping norm. Under
    ``tf.distribute``, ``global_clipnorm`` clips the sum over replicas (``kbert.training.replica_clipping``),
    not each replica's part as Keras does. :meth:`scale_learning_rates` gives variables their own factor of
    the learning rate (layer-wise learning-rate decay, :func:`layer_learning_rate_scales`); their weight
    decay is scaled with it, as torch's AdamW does for a parameter group with a smaller ``lr``.
    """

    def scale_learning_rates(self, scales) -> None:
        """``[(variable, factor), ...]``: each listed variable's updates use ``factor`` x the scheduled rate."""
        self.__dict__["_kbert_lr_scales"] = {self._var_key(v): float(f) for v, f in scales if f != 1.0}

    def apply(self, grads, trainable_variables=None):
        grads = dense_gradients(grads)
        if self.global_clipnorm:
            grads = clip_summed_gradient(grads, self.global_clipnorm)
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        # One fused kernel per variable (TensorFlow's ResourceApplyAdam) instead of ~20 small ops. It computes
        # var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps'), so eps' = eps * sqrt(1 - b2^t) gives
        # torch's lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). MiniLM's traced training step has half
        # the ops (9,100 -> 4,800: the first step ~40 % shorter, tracing and Grappler), and every step reads and
        # writes var, m and v once (2-core CPU: ~12 % faster steps at batch 32, ~30 % at the demo's batch 16).
        dtype = variable.dtype
        scalars = self._step_scalars(learning_rate, dtype, variable.device)
        index = self._get_variable_index(variable)
        scale = self.__dict__.get("_kbert_lr_scales", {}).get(self._var_key(variable))
        lr, decay = (scalars["lr"], scalars["decay"]) if scale is None else (
            scalars["lr"] * scale, scalars["decay"] * scale)  # torch: a parameter group with lr * scale
        if self.weight_decay and self._use_weight_decay(variable):  # decoupled, before the update (torch's AdamW)
            variable.assign_sub(variable * decay)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=scalars["beta_1_power"], beta2_power=scalars["beta_2_power"], lr=lr,
            beta1=scalars["beta_1"], beta2=scalars["beta_2"], epsilon=scalars["epsilon"],
            grad=tf.cast(gradient, dtype))

    def _step_scalars(self, learning_rate, dtype, device) -> dict:
        """This step's learning rate, beta powers, eps' and decay factor: built once per traced step, not per variable."""
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        per_graph = None if graph is None else self._scalars_cache.setdefault(graph, {})
        key = (id(learning_rate), dtype, device)
        if per_graph is not None and key in per_graph:
            return per_graph[key][1]
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations.value + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        beta_2_power = tf.pow(beta_2, step)
        scalars = {"lr": lr, "beta_1": beta_1, "beta_2": beta_2, "beta_1_power": tf.pow(beta_1, step),
                   "beta_2_power": beta_2_power, "epsilon": self.epsilon * tf.sqrt(1 - beta_2_power),
                   "decay": lr * tf.constant(self.weight_decay or 0.0, dtype)}
        if per_graph is not None:
            per_graph[key] = (learning_rate, scalars)  # holding learning_rate keeps its id unique in this graph
        return scalars

    @property
    def _scalars_cache(self) -> weakref.WeakKeyDictionary:
        cache = self.__dict__.get("_kbert_scalars")
        if cache is None:
            cache = self.__dict__["_kbert_scalars"] = weakref.WeakKeyDictionary()
        return cache

    def _apply_weight_decay(self, variables):
        """Weight decay happens in :meth:`update_step`, just before each variable's Adam update."""


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (inside ``Strategy.update``: this device's copy)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def warmup_steps(warmup: float, total_steps: int) -> int:
    """``warmup`` below 1 is a fraction of the training steps (HF ``warmup_ratio``: rounded up), else a step count.

    >>> warmup_steps(0.1, 125), warmup_steps(20, 125)
    (13, 20)
    """
    return math.ceil(warmup * total_steps) if warmup < 1 else int(warmup)


# transformers' Trainer (4.57, ``get_decay_parameter_names``): no weight decay for parameters whose name matches
# one of these (lower-cased), whatever the family: biases, every LayerNorm/RMSNorm spelling ("LayerNorm",
# DistilBERT's "sa_layer_norm", ModernBERT's "norm"), and MPNet's "relative_attention_bias" table.
_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")


def decays(hf_name: str) -> bool:
    """Whether AdamW decays the weight of this Hugging Face name, by transformers' Trainer rule.

    >>> [decays(n) for n in ("encoder.layer.0.output.dense.weight", "transformer.layer.0.sa_layer_norm.weight",
    ...                      "classifier.bias", "encoder.relative_attention_bias.weight")]
    [True, False, False, False]
    """
    return _NO_DECAY.search(hf_name.lower()) is None


def layer_learning_rate_scales(slots, decay: float | None, num_layers: int, family) -> list:
    """Layer-wise learning-rate decay (ELECTRA, "How to fine-tune BERT"): ``[(variable, decay ** depth)]`` where
    the head (and pooler) has depth 0, encoder layer ``i`` of ``num_layers`` depth ``num_layers - i`` and the
    embeddings depth ``num_layers + 1`` (the family says which weight sits where:
    :meth:`~kbert.models.family.Family.layer_depth`). ``slots`` are ``WeightSlot`` s (canonical HF names);
    ``decay`` None or 1 gives ``[]``; heads and the pooler are left out (factor 1).

    >>> from types import SimpleNamespace as S
    >>> from kbert.models import family_of
    >>> slots = [S(hf_name=n, variable=n) for n in ("embeddings.word_embeddings.weight",
    ...          "encoder.layer.0.output.dense.weight", "encoder.layer.1.output.dense.weight", "classifier.weight")]
    >>> layer_learning_rate_scales(slots, 0.5, num_layers=2, family=family_of("bert"))
    [('embeddings.word_embeddings.weight', 0.125), ('encoder.layer.0.output.dense.weight', 0.25), ('encoder.layer.1.output.dense.weight', 0.5)]
    """
    if decay is None or decay == 1.0:
        return []
    scales = []
    for slot in slots:
        depth = family.layer_depth(slot.hf_name, num_layers)
        if depth is not None:  # pooler and task heads train at the full rate
            scales.append((slot.variable, decay ** depth))
    return scales


def build_optimizer(*, learning_rate: float, warmup: int, total_steps: int, weight_decay: float,
                    clip_norm: float | None, no_decay_variables, learning_rate_scales=None) -> TorchAdamW:
    """AdamW as torch / HF Trainer (eps 1e-8) whose weight decay skips ``no_decay_variables`` (biases, LayerNorm);
    ``learning_rate_scales`` (``[(variable, factor)]``) gives variables a fraction of the rate."""
    if not 0 <= warmup <= total_steps:
        warmup = min(max(warmup, 0), total_steps)
    optimizer = TorchAdamW(
        learning_rate=WarmupLinearDecay(learning_rate, warmup, total_steps), weight_decay=weight_decay,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, global_clipnorm=clip_norm or None)
    optimizer.exclude_from_weight_decay(var_list=list(no_decay_variables))
    if learning_rate_scales:
        optimizer.scale_learning_rates(learning_rate_scales)
    return optimizer
