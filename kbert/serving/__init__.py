"""Serving exported models with TF Serving: warmup requests, its configuration files, and a client.

- :mod:`kbert.serving.warmup`: ``assets.extra/tf_serving_warmup_requests`` of every export;
- :mod:`kbert.serving.server_config`: ``models.config`` and ``batching_parameters.txt`` (``kbert serving-config``);
- :mod:`kbert.serving.client` (:class:`Client`) over :mod:`kbert.serving.rest` and :mod:`kbert.serving.grpc_client`;
- :mod:`kbert.serving.local_server`: TF Serving's gRPC and REST APIs in this process, for tests and benchmarks.

Importing this package is cheap (no TensorFlow until a client or server is used).

Example:
    >>> from kbert.serving import Client
    >>> Client("localhost:8501", "sentiment").input_names
    ['text', 'text_pair']
"""

import importlib

_LAZY = {"Client": "kbert.serving.client", "LocalModelServer": "kbert.serving.local_server"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kbert.serving' has no attribute {name!r}")
