"""What a task declares without importing TensorFlow: its names and its own options.

Each task package's ``__init__.py`` holds one :class:`TaskSpec`. The CLI builds its flags from them
(so ``kbert --help`` answers without TensorFlow), recipes and :class:`~kbert.training.config.TrainConfig`
validate task keys with them, and :func:`TaskSpec.load` imports the implementation only when needed.

An :class:`Option` is one task-specific setting: the keyword of ``kbert.train(...)`` / ``evaluate(...)``,
the key of a recipe's ``[train]`` table and the CLI flag ``--name-with-dashes``, for the commands
it lists. ``parse`` turns a CLI string into the value; ``check`` validates a value from Python or
TOML (both raise :class:`~kbert.errors.InputError` naming the option).

Example:
    >>> spec = TaskSpec("tagging", "kbert.tasks.token_classification.task:TokenClassification",
    ...                 options=(Option("stride", 32, "tokens shared by windows", parse=int),
    ...                          Option("top_k", UNSET, "labels per input", commands=("predict",))))
    >>> spec.resolve("train", {}), spec.resolve("predict", {})
    ({'stride': 32}, {})
    >>> spec.resolve("predict", {"topk": 3})
    Traceback (most recent call last):
    ...
    kbert.errors.InputError: tagging has no option 'topk' for predict; its options: ['top_k']
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from kbert.errors import InputError

COMMANDS = ("train", "evaluate", "predict")


class _Unset:
    def __repr__(self):
        return "UNSET"


UNSET = _Unset()  # an Option default meaning "not passed on unless given" (the callee's own default applies)


@dataclasses.dataclass(frozen=True)
class Option:
    name: str  # Python keyword and recipe key; the CLI flag is --name-with-dashes
    default: Any
    help: str
    commands: tuple[str, ...] = ("train",)  # which of COMMANDS take it
    parse: Callable[[str], Any] | None = None  # CLI string -> value (default: the string itself)
    check: Callable[[Any], Any] | None = None  # value -> validated value (raise InputError with a message)
    choices: tuple | None = None  # CLI choices (strings)
    flag: bool = False  # a CLI switch (store_true) instead of a valued flag

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> Any:
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        return self.check(value) if self.check is not None else value


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A task's name, aliases, where its :class:`~kbert.tasks.base.Task` class lives, and its options."""

    name: str
    implementation: str  # "package.module:ClassName", imported by load()
    aliases: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    trainable: bool = True  # kbert train / evaluate accept it
    data_help: str = ""  # the training data it reads, for --help

    def options_for(self, command: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if command in o.commands)

    def resolve(self, command: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option of ``command``: the validated ``given`` values, defaults for the rest."""
        known = {o.name: o for o in self.options_for(command)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"{self.name} has no option {unknown[0]!r} for {command}; its options: {sorted(known)}")
        values = {name: given.get(name, option.default) for name, option in known.items()}
        return {name: known[name].validate(value) for name, value in values.items() if value is not UNSET}

    def load(self) -> type:
        """The Task class (imports TensorFlow)."""
        module, _, cls = self.implementation.partition(":")
        return getattr(importlib.import_module(module), cls)
