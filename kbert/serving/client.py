"""A client of a model served by TF Serving: raw outputs, model status, and the pipeline's answers.

``Client(url_or_target, model_name, protocol="rest"|"grpc")`` talks to TF Serving's REST API
(:mod:`kbert.serving.rest`, standard library only; ``rest_format="inputs"`` columns or ``"instances"``
rows) or its gRPC API (:mod:`kbert.serving.grpc_client`). :meth:`Client.predict` returns the signature's
outputs as numpy arrays (strings as ``str``), the same for both protocols except that REST numbers
arrive through JSON as float64 / int64 (holding the float32 values exactly). Calling the client
(``client("I love Paris")``, ``client(question=..., context=...)``, ``client(texts, top_k=2)``) gives what the
task's pipeline returns for that call, the same keys, order, nesting and full precision
(``Task.pipeline_outputs_from_serving``);
:meth:`Client.answers` the readable answers ``kbert run`` recipes print (the inputs included). Both need the
export's ``assets.extra/kbert.json``, which TF Serving does not serve: pass the SavedModel's folder as
``saved_model=`` (a version folder, or the base folder: its highest version, or ``version``). It also gives
the input names (``question``/``context`` for question answering).

Errors are kbert errors naming the server: :class:`~kbert.errors.ServingConnectionError` (refused,
timed out), :class:`~kbert.errors.ServingResponseError` (the server's message and HTTP status or gRPC code),
:class:`~kbert.errors.InputError` (bad texts), :class:`~kbert.errors.ServingConfigError` (no metadata).

Example (nothing listens on port 9):
    >>> from kbert.serving import Client
    >>> from kbert.errors import ServingConnectionError
    >>> try:
    ...     Client("http://127.0.0.1:9", "sentiment").predict(["I love Paris"])
    ... except ServingConnectionError as err:
    ...     print(str(err)[:70])
    http://127.0.0.1:9/v1/models/sentiment:predict: cannot reach the model
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from kbert.errors import InputError, ServingConfigError

PROTOCOLS = ("rest", "grpc")
METADATA = pathlib.Path("assets.extra") / "kbert.json"  # as kbert.export writes it


class Client:
    """One model of a TF Serving server.

    Args:
        url_or_target: REST: ``http://host:8501`` (``http://`` may be left out); gRPC: ``host:8500``.
        model_name: the model's name in the server (``models.config``'s ``name``, or ``MODEL_NAME``).
        protocol: ``"rest"`` or ``"grpc"``.
        signature_name: the SavedModel signature to call (``search`` for an export with a corpus).
        timeout: seconds to wait for each answer.
        version: ask this version (default: the server's choice, its highest).
        saved_model: the exported folder, for :meth:`answers` and the input names (see the module doc).
        rest_format: ``"inputs"`` (columnar, default) or ``"instances"`` (rows) requests over REST.
    """

    def __init__(self, url_or_target: str, model_name: str, *, protocol: str = "rest",
                 signature_name: str = "serving_default", timeout: float = 30.0, version: int | None = None,
                 saved_model: str | os.PathLike | None = None, rest_format: str = "inputs"):
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
        if not isinstance(model_name, str) or not model_name:
            raise InputError(f"model_name must be a non-empty str, got {model_name!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.protocol, self.model_name, self.signature_name = protocol, model_name, signature_name
        self.metadata = None if saved_model is None else read_export_metadata(saved_model, version)
        if protocol == "rest":
            from kbert.serving.rest import RestTransport

            self._transport = RestTransport(url_or_target, model_name, version=version, timeout=timeout,
                                            format=rest_format)
        else:
            from kbert.serving.grpc_client import GrpcTransport

            self._transport = GrpcTransport(url_or_target, model_name, version=version, timeout=timeout)

    @property
    def input_names(self) -> list[str]:
        """The signature's text inputs: from the export's metadata, else ``text`` (and ``text_pair``)."""
        if self.metadata is None:
            return ["text", "text_pair"]
        if self.metadata.get("inputs"):
            return list(self.metadata["inputs"])
        return ["text", "text_pair"] if self.metadata.get("text_pair") else ["text"]

    def request_inputs(self, texts, text_pairs=None) -> dict[str, list[str]]:
        """The named inputs of a request: ``texts`` (and ``text_pairs``) checked, or a dict of named lists."""
        if isinstance(texts, Mapping):
            if text_pairs is not None:
                raise InputError("give text_pairs inside the dict of named inputs, not beside it")
            inputs = {name: _strings(values, f"inputs[{name!r}]") for name, values in texts.items()}
            if not inputs:
                raise InputError("the dict of named inputs is empty")
        else:
            names = self.input_names
            inputs = {names[0]: _strings(texts, "texts")}
            if text_pairs is not None:
                if len(names) < 2:
                    raise InputError(f"{self._export()} takes no text pairs (its inputs: {names})")
                inputs[names[1]] = _strings(text_pairs, "text_pairs")
            elif self.metadata is not None and len(names) > 1:
                raise InputError(f"{self._export()} takes {names}: give text_pairs for {names[1]!r}")
        sizes = {name: len(v) for name, v in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise InputError(f"inputs of different lengths: {sizes}")
        if not next(iter(sizes.values())):
            raise InputError("no texts given (an empty list)")
        return inputs

    def predict(self, texts, text_pairs=None) -> dict[str, np.ndarray]:
        """The signature's raw outputs for ``texts`` (a list of str; or a dict of input name -> list)."""
        return self._transport.predict(self.request_inputs(texts, text_pairs), self.signature_name)

    def __call__(self, *inputs, **params):
        """What ``kbert.pipeline(task)(*inputs, **params)`` returns for the export's task (needs ``saved_model=``).

        The pipeline's call forms (a str, a list, ``{"text", "text_pair"}`` dicts, ``question=``/``context=``
        keywords or ``{"question", "context"}`` dicts...) nested as the pipeline nests them, and the call
        parameters the export's outputs can honour (``Task.serving_call_parameters``: ``top_k``,
        ``function_to_apply``, ``aggregation_strategy``, ``ignore_labels``, ``pooling``...); the others (windows,
        prompts) were fixed by the export and raise :class:`~kbert.errors.InputError`.
        """
        task = self._task()
        given = inputs[0] if len(inputs) == 1 else (inputs or None)
        params = task.check_serving_parameters(params, self.metadata)
        examples = task.parse_call(given, params)
        outputs = self._outputs(self._example_inputs(examples))
        return task.package(task.pipeline_outputs_from_serving(examples, outputs, self.metadata, params), given, params)

    def answers(self, texts, text_pairs=None) -> list[dict]:
        """The export's task answers for ``texts``, shaped as ``kbert run`` recipes give them
        (``Task.answers_from_serving``; needs ``saved_model=``)."""
        task = self._task()
        inputs = self.request_inputs(texts, text_pairs)
        outputs = self._outputs(inputs)
        names = list(inputs)
        if len(names) == 1:
            records = list(inputs[names[0]])
        elif names == ["text", "text_pair"]:
            records = list(zip(inputs["text"], inputs["text_pair"]))
        else:
            records = [dict(zip(names, row)) for row in zip(*inputs.values())]
        return task.answers_from_serving(records, outputs, self.metadata)

    def _task(self):
        if self.metadata is None:
            raise ServingConfigError("reading the answers needs the export's assets.extra/kbert.json: create the "
                                     "Client with saved_model=FOLDER (TF Serving does not serve it)")
        from kbert.tasks import get_task

        return get_task(self.metadata["task"])

    def _example_inputs(self, examples) -> dict[str, list[str]]:
        """The named inputs of a request for the pipeline's examples (texts, and pairs for a pair signature)."""
        names = self.input_names
        paired = [e.text_pair is not None for e in examples]
        if len(names) == 1 and any(paired):
            raise InputError(f"input {paired.index(True)}: {self._export()} takes no text pairs (its inputs: {names})")
        if len(names) > 1 and not all(paired):
            raise InputError(f"input {paired.index(False)}: {self._export()} takes {names}: give "
                             f"{{{names[0]!r}: ..., {names[1]!r}: ...}}")
        columns = {names[0]: [e.text for e in examples]}
        if len(names) > 1:
            columns[names[1]] = [e.text_pair for e in examples]
        return self.request_inputs(columns)

    def _outputs(self, inputs: dict[str, list[str]]) -> dict[str, list]:
        """The signature's outputs for ``inputs`` as plain lists (the same on both protocols)."""
        return {name: value.tolist() for name, value in self._transport.predict(inputs, self.signature_name).items()}

    def status(self) -> list[dict]:
        """The model's versions: ``[{'version': 1, 'state': 'AVAILABLE', 'error_code': 'OK', 'error_message': ''}]``."""
        return self._transport.status()

    def close(self) -> None:
        close = getattr(self._transport, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _export(self) -> str:
        return f"model {self.model_name!r} ({self.metadata.get('task')} export)" if self.metadata else \
            f"model {self.model_name!r}"


def read_export_metadata(saved_model: str | os.PathLike, version: int | None = None) -> dict:
    """``assets.extra/kbert.json`` of a version folder, or of a base folder's ``version`` (default: highest)."""
    from kbert.serving.server_config import model_versions

    folder = pathlib.Path(saved_model)
    if not (folder / "saved_model.pb").is_file():
        versions = model_versions(folder)
        if not versions:
            raise ServingConfigError(f"saved_model={saved_model}: neither a SavedModel folder nor a base folder "
                                     "of numbered versions")
        if version is not None and version not in versions:
            raise ServingConfigError(f"saved_model={saved_model}: no version {version} (has {list(versions)})")
        folder = folder / str(versions[-1] if version is None else version)
    path = folder / METADATA
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServingConfigError(f"{path}: not found; is {folder} a kbert export?") from None
    except ValueError as err:
        raise ServingConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(metadata, dict) or "task" not in metadata:
        raise ServingConfigError(f"{path}: has no 'task'")
    return metadata


def _strings(values, where: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"{where} must be a list of str, got {type(values).__name__} {values!r:.60}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InputError(f"{where}[{i}] must be a str, got {type(value).__name__} {value!r:.60}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise InputError(f"{where}[{i}]: not valid Unicode (lone surrogate at index {err.start})") from None
    return list(values)
