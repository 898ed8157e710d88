"""Mixed precision, for training (``--precision mixed_float16 | mixed_bfloat16``) and bfloat16 inference
(:mod:`kbert.precision`): Keras dtype policies, float32 outputs, float32 attention softmax.

Under a mixed policy the backbone and heads compute in float16 / bfloat16 while their variables stay float32
(Keras's ``mixed_*`` policies). :func:`float32_outputs` casts every output of the task model to float32 with a
float32 layer, so the loss, the softmax of metrics and pipelines, and the saved logits are float32 (as Keras'
mixed-precision guide asks for a model's last layer). Under ``mixed_float16`` Keras' ``compile`` wraps the
optimizer in a ``LossScaleOptimizer`` (dynamic loss scaling) by itself. ``float32`` changes nothing.

Example:
    >>> import keras
    >>> from kbert.modeling.mixed_precision import dtype_policy, float32_outputs
    >>> with dtype_policy("mixed_bfloat16"):
    ...     inputs = keras.Input((4,))
    ...     model = float32_outputs(keras.Model(inputs, {"logits": keras.layers.Dense(2)(inputs)}))
    >>> model.layers[1].compute_dtype, model.output["logits"].dtype, keras.config.dtype_policy().name
    ('bfloat16', 'float32', 'float32')
"""

from __future__ import annotations

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy(name: str):
    """Make layers with the Keras dtype policy ``name`` inside the block; the previous global policy after it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_outputs(model: keras.Model) -> keras.Model:
    """``model`` with each output cast to float32 (the same model when its outputs already are)."""
    outputs = model.output
    named = outputs if isinstance(outputs, dict) else {"output": outputs}
    if all(tensor.dtype == "float32" for tensor in named.values()):
        return model
    cast = {name: keras.layers.Activation("linear", dtype="float32", name=f"{name}_float32")(tensor)
            for name, tensor in named.items()}
    return keras.Model(model.input, cast if isinstance(outputs, dict) else cast["output"], name=model.name)


class Float32Softmax(keras.layers.Softmax):
    """A softmax computed in float32 whatever the layer's compute dtype, its result cast back to it."""

    def call(self, inputs, mask=None):
        return keras.ops.cast(super().call(keras.ops.cast(inputs, "float32"), mask), self.compute_dtype)


def float32_softmax(model: keras.Model) -> keras.Model:
    """``model`` with the attention softmax of each ``keras.layers.MultiHeadAttention`` in float32.

    Under a mixed policy Keras computes a ``MultiHeadAttention``'s softmax in float16 / bfloat16 whenever the
    layer has attention dropout (its fused ``dot_product_attention`` path, taken without dropout, already
    uses float32). Layer normalization needs nothing: ``ops.layer_normalization`` computes its statistics in
    float32 itself. The layers change in place; the model is returned for chaining.
    """
    for layer in model._flatten_layers(include_self=False):
        softmax = getattr(layer, "_softmax", None)
        if isinstance(layer, keras.layers.MultiHeadAttention) and type(softmax) is keras.layers.Softmax:
            locked, layer._tracker.locked = layer._tracker.locked, False  # a built layer refuses new sub-layers
            layer._softmax = Float32Softmax(axis=softmax.axis, dtype=softmax.dtype_policy, name=softmax.name)
            layer._tracker.locked = locked
    return model
