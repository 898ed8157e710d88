"""The hyperparameters a search tries: each a ``TrainConfig`` field with a Keras Tuner range or choice.

A space maps field names to a :class:`Range` (``hp.Float`` / ``hp.Int``) or a :class:`Choice`
(``hp.Choice`` / ``hp.Boolean``). Recipes write it as the ``[tune.space]`` table::

    [tune.space]
    learning_rate = { min = 1e-5, max = 1e-4, sampling = "log" }
    warmup = [0.0, 0.1]
    batch_size = [16, 32]
    dropout = { min = 0.0, max = 0.3, step = 0.1 }
    freeze_backbone = [false, true]
    layer_lr_decay = [1.0, 0.9, 0.8]

Tunable fields: :data:`TUNABLE`. ``epochs`` is tuned by the search itself under Hyperband (its
``max_epochs``), and is refused in the space there.

Example:
    >>> import keras_tuner
    >>> from kbert.tuning.search_space import SearchSpace
    >>> space = SearchSpace.from_table({"learning_rate": {"min": 1e-5, "max": 1e-4, "sampling": "log"},
    ...                                 "batch_size": [16, 32]})
    >>> space.declare(keras_tuner.HyperParameters())
    {'learning_rate': 1e-05, 'batch_size': 16}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kbert.errors import TuningError

TUNABLE = {  # TrainConfig field -> the kind of its values
    "learning_rate": float, "warmup": float, "weight_decay": float, "dropout": float, "layer_lr_decay": float,
    "batch_size": int, "epochs": int, "freeze_backbone": bool,
}
SAMPLINGS = ("linear", "log", "reverse_log")


@dataclasses.dataclass(frozen=True)
class Range:
    """Values from ``min`` to ``max`` (``step`` apart if given), sampled ``linear``/``log``/``reverse_log``."""

    min: float
    max: float
    step: float | None = None
    sampling: str = "linear"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values`` (in this order for GridSearch)."""

    values: tuple


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Field name -> :class:`Range` or :class:`Choice`, in declaration order."""

    params: Mapping[str, Range | Choice]

    def __post_init__(self):
        if not self.params:
            raise TuningError("the search space is empty: give at least one hyperparameter "
                              f"(one of {sorted(TUNABLE)})")
        for name, param in self.params.items():
            kind = TUNABLE.get(name)
            if kind is None:
                raise TuningError(f"{name!r} cannot be tuned; tunable: {sorted(TUNABLE)}")
            if isinstance(param, Choice):
                if not param.values:
                    raise TuningError(f"{name}: an empty list of choices")
                for value in param.values:
                    if not _is_kind(value, kind):
                        raise TuningError(f"{name}: choice {value!r} is not {kind.__name__}")
                if len(set(param.values)) != len(param.values):
                    raise TuningError(f"{name}: choices repeat: {list(param.values)}")
            elif isinstance(param, Range):
                if kind is bool:
                    raise TuningError(f"{name}: a boolean takes a list of choices ([false, true]), not a range")
                if not (_is_kind(param.min, kind) and _is_kind(param.max, kind)) or param.min >= param.max:
                    raise TuningError(f"{name}: range needs {kind.__name__} min < max, got {param.min!r}..{param.max!r}")
                if param.sampling not in SAMPLINGS:
                    raise TuningError(f"{name}: sampling must be one of {list(SAMPLINGS)}, got {param.sampling!r}")
                if param.sampling != "linear" and param.min <= 0:
                    raise TuningError(f"{name}: {param.sampling} sampling needs min > 0, got {param.min!r}")
                if param.step is not None and not (_is_kind(param.step, kind) and param.step > 0):
                    raise TuningError(f"{name}: step must be a positive {kind.__name__}, got {param.step!r}")
            else:
                raise TuningError(f"{name}: expected a Range or a Choice, got {param!r}")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> SearchSpace:
        """From TOML: a list is a :class:`Choice`; a table ``{min, max[, step][, sampling]}`` a :class:`Range`."""
        if not isinstance(table, Mapping):
            raise TuningError(f"[tune.space] must be a table, got {table!r}")
        params = {}
        for name, value in table.items():
            if isinstance(value, list):
                params[name] = Choice(tuple(value))
            elif isinstance(value, Mapping):
                unknown = sorted(set(value) - {"min", "max", "step", "sampling"})
                if unknown or not {"min", "max"} <= set(value):
                    raise TuningError(f"{name}: a range is {{min, max[, step][, sampling]}}, got keys {sorted(value)}")
                params[name] = Range(value["min"], value["max"], value.get("step"), value.get("sampling", "linear"))
            else:
                raise TuningError(f"{name}: give a list of choices or a {{min, max}} range, got {value!r}")
        return cls(params)

    def declare(self, hp) -> dict[str, Any]:
        """Register every parameter with ``hp`` (``keras_tuner.HyperParameters``) and return their values."""
        values = {}
        for name, param in self.params.items():
            kind = TUNABLE[name]
            if isinstance(param, Choice):
                values[name] = (hp.Boolean(name) if kind is bool and sorted(param.values) == [False, True]
                                else hp.Choice(name, list(param.values)))
            elif kind is int:
                values[name] = hp.Int(name, param.min, param.max, step=param.step, sampling=param.sampling)
            else:
                values[name] = hp.Float(name, param.min, param.max, step=param.step, sampling=param.sampling)
        return values


def _is_kind(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


DEFAULT_SPACE = SearchSpace({  # the usual BERT fine-tuning grid (Devlin et al. 2019, appendix A.3), narrowed
    "learning_rate": Range(1e-5, 1e-4, sampling="log"),
    "warmup": Choice((0.0, 0.1)),
    "weight_decay": Choice((0.0, 0.01)),
    "batch_size": Choice((16, 32)),
})
