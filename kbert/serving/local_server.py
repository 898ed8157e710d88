"""A stand-in for TF Serving in this process: its gRPC and REST APIs over SavedModels loaded with TensorFlow.

For tests and benchmarks of clients where no ``tensorflow_model_server`` binary can be installed (it is
not on PyPI; only its protos and stubs are, as ``tensorflow-serving-api``). It is NOT TF Serving: one
version per model (the highest, or the version folder given), no batching, no warmup replay, no
version policy or reloading. What it does implement, with TF Serving's message shapes and error texts:

- gRPC, the official servicers of ``tensorflow_serving.apis``: ``PredictionService.Predict`` (with
  ``output_filter``) and ``GetModelMetadata`` (``signature_def``), ``ModelService.GetModelStatus``;
- REST: ``POST /v1/models/NAME[/versions/N]:predict`` (``instances`` rows -> ``predictions``, ``inputs``
  columns -> ``outputs``, ``{"b64": ...}`` strings), ``GET /v1/models/NAME[/versions/N]`` (status) and
  ``.../metadata``; errors as ``{"error": message}`` with an HTTP status.

Example:
    >>> import tempfile
    >>> from kbert.export import export_saved_model
    >>> from kbert.serving import Client
    >>> from kbert.serving.local_server import LocalModelServer
    >>> base = export_saved_model("tests/fixtures/checkpoints/tiny-uncased-cls", tempfile.mkdtemp() + "/tiny").parent
    >>> with LocalModelServer({"tiny": base}) as server:
    ...     print(Client(server.rest_url, "tiny").status())
    ...     print(Client(server.grpc_target, "tiny", protocol="grpc").predict(["I love Paris"])["label"])
    [{'version': 1, 'state': 'AVAILABLE', 'error_code': 'OK', 'error_message': ''}]
    ['neutral']
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from kbert.errors import ServingConfigError
from kbert.serving.server_config import model_versions

MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # hidden states of a large batch exceed gRPC's 4 MiB default


class Refused(Exception):
    """A request TF Serving would refuse: ``code`` is the gRPC status code name, ``message`` TF Serving's text."""

    HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404, "INTERNAL": 500}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class LoadedModel:
    """One SavedModel version loaded with ``tf.saved_model.load``, answering TF Serving's requests."""

    def __init__(self, name: str, path: str | os.PathLike):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the tokenizer's ops, as TF Serving links them)
        from tensorflow.core.protobuf import saved_model_pb2

        folder = pathlib.Path(path)
        if (folder / "saved_model.pb").is_file():
            self.version = int(folder.name) if folder.name.isdigit() else 1
        else:
            versions = model_versions(folder)
            if not versions:
                raise ServingConfigError(f"{path}: neither a SavedModel nor a base folder of numbered versions")
            self.version, folder = versions[-1], folder / str(versions[-1])
        self.name, self.folder = name, folder
        self._module = tf.saved_model.load(str(folder))
        self.signatures = dict(self._module.signatures)
        saved = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
        self.signature_defs = {k: v for k, v in saved.meta_graphs[0].signature_def.items() if not k.startswith("__")}

    def check_version(self, version: int | None) -> None:
        if version is not None and version != self.version:
            raise Refused("NOT_FOUND", f"Servable not found for request: Specific({self.name}, {version})")

    def predict(self, signature_name: str, inputs: Mapping[str, object],
                output_filter=()) -> dict[str, np.ndarray]:
        """Run signature ``signature_name`` (empty: ``serving_default``) on ``inputs`` (arrays or nested lists)."""
        import tensorflow as tf

        signature_name = signature_name or "serving_default"
        function = self.signatures.get(signature_name)
        if function is None:
            raise Refused("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
        specs = function.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise Refused("INVALID_ARGUMENT",
                          f"input size does not match signature: {len(inputs)}!={len(specs)} "
                          f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(specs))}}}). "
                          f"Sent extra: {{{','.join(sorted(set(inputs) - set(specs)))}}}. "
                          f"Missing but required: {{{','.join(sorted(set(specs) - set(inputs)))}}}.")
        try:
            tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
            outputs = function(**tensors)
        except (tf.errors.OpError, TypeError, ValueError) as err:
            raise Refused("INVALID_ARGUMENT", getattr(err, "message", None) or str(err)) from None
        unknown = set(output_filter) - set(outputs)
        if unknown:
            raise Refused("INVALID_ARGUMENT", f"output tensor alias not found in signature: {sorted(unknown)[0]} "
                                              f"Outputs expected to be in the set {{{','.join(sorted(outputs))}}}.")
        return {k: v.numpy() for k, v in outputs.items() if not output_filter or k in output_filter}


class LocalModelServer:
    """TF Serving's gRPC and REST APIs on free localhost ports for ``models`` (name -> base or version folder).

    Use as a context manager (or :meth:`start` / :meth:`stop`); ``grpc_target`` and ``rest_url`` say where.
    """

    def __init__(self, models: Mapping[str, str | os.PathLike], *, grpc: bool = True, rest: bool = True,
                 max_workers: int = 8):
        self._paths = dict(models)
        self._want_grpc, self._want_rest, self._max_workers = grpc, rest, max_workers
        self.models: dict[str, LoadedModel] = {}
        self.grpc_target: str | None = None
        self.rest_url: str | None = None
        self._grpc_server = self._http = self._http_thread = None

    def model(self, name: str, version: int | None = None) -> LoadedModel:
        model = self.models.get(name)
        if model is None:
            raise Refused("NOT_FOUND", f"Servable not found for request: "
                                       f"{'Latest' if version is None else 'Specific'}({name}"
                                       f"{'' if version is None else f', {version}'})")
        model.check_version(version)
        return model

    def start(self) -> LocalModelServer:
        self.models = {name: LoadedModel(name, path) for name, path in self._paths.items()}
        try:
            if self._want_grpc:
                self._start_grpc()
            if self._want_rest:
                self._start_rest()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait()
            self._grpc_server = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http_thread.join()
            self._http = self._http_thread = None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- gRPC ----------------------------------------------------------------------------------
    def _start_grpc(self) -> None:
        from concurrent import futures

        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._max_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionServicer(self), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelServicer(self), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc_server, self.grpc_target = server, f"127.0.0.1:{port}"

    # --- REST ----------------------------------------------------------------------------------
    def _start_rest(self) -> None:
        server = self

        class Handler(_RestHandler):
            models = server

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="kbert-rest", daemon=True)
        self._http_thread.start()
        self.rest_url = f"http://127.0.0.1:{self._http.server_address[1]}"


def _servicers():
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer


def _abort(context, refused: Refused):
    import grpc

    context.abort(getattr(grpc.StatusCode, refused.code), refused.message)


class _PredictionServicer(_servicers()[0]):
    def __init__(self, server: LocalModelServer):
        self.server = server

    def Predict(self, request, context):  # noqa: N802 (the proto's name)
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        try:
            spec = request.model_spec
            model = self.server.model(spec.name, spec.version.value if spec.HasField("version") else None)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = model.predict(spec.signature_name, inputs, output_filter=list(request.output_filter))
        except Refused as refused:
            return _abort(context, refused)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = spec.signature_name or "serving_default"
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_metadata_pb2

        try:
            spec = request.model_spec
            model = self.server.model(spec.name, spec.version.value if spec.HasField("version") else None)
            if list(request.metadata_field) != ["signature_def"]:
                raise Refused("INVALID_ARGUMENT", "Metadata field must be signature_def")
        except Refused as refused:
            return _abort(context, refused)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(_signature_def_map(model))
        return response


class _ModelServicer(_servicers()[1]):
    def __init__(self, server: LocalModelServer):
        self.server = server

    def GetModelStatus(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_status_pb2

        try:
            spec = request.model_spec
            model = self.server.model(spec.name, spec.version.value if spec.HasField("version") else None)
        except Refused as refused:
            return _abort(context, refused)
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.add(version=model.version,
                                          state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        return response


def _signature_def_map(model: LoadedModel):
    from tensorflow_serving.apis import get_model_metadata_pb2

    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in model.signature_defs.items():
        signatures.signature_def[key].CopyFrom(value)
    return signatures


_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<what>/metadata|:predict)?$")


class _RestHandler(BaseHTTPRequestHandler):
    models: LocalModelServer  # set by a subclass per server
    protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's

    def log_message(self, format, *args):  # no access log on stderr
        pass

    def do_GET(self):  # noqa: N802
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")

    def _answer(self, method: str) -> None:
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            match = _PATH.match(self.path)
            if match is None or (method == "POST") != (match["what"] == ":predict"):
                raise Refused("NOT_FOUND", f"Malformed request: {method} {self.path}")
            version = int(match["version"]) if match["version"] else None
            model = self.models.model(match["name"], version)
            if match["what"] == ":predict":
                reply = _rest_predict(model, body)
            elif match["what"] == "/metadata":
                from google.protobuf import json_format

                reply = {"model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                         "metadata": {"signature_def": json_format.MessageToDict(
                             _signature_def_map(model), preserving_proto_field_name=True)}}
            else:
                reply = {"model_version_status": [{"version": str(model.version), "state": "AVAILABLE",
                                                   "status": {"error_code": "OK", "error_message": ""}}]}
            status = 200
        except Refused as refused:
            reply, status = {"error": refused.message}, Refused.HTTP_STATUS.get(refused.code, 500)
        data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _rest_predict(model: LoadedModel, body: bytes) -> dict:
    """TF Serving's REST predict: ``instances`` (rows) or ``inputs`` (columns) of JSON values."""
    try:
        request = json.loads(body)
    except ValueError as err:
        raise Refused("INVALID_ARGUMENT", f"JSON Parse error: {err}") from None
    if not isinstance(request, dict):
        raise Refused("INVALID_ARGUMENT", "JSON Value: the request must be an object")
    if ("instances" in request) == ("inputs" in request):
        raise Refused("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key" if "inputs" not in request
                      else "Not formatted correctly expecting only one of 'inputs' or 'instances' keys")
    signature_name = request.get("signature_name") or "serving_default"
    function = model.signatures.get(signature_name)
    if function is None:
        raise Refused("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
    input_names = sorted(function.structured_input_signature[1])
    rows = "instances" in request
    given = request["instances"] if rows else request["inputs"]
    if rows:
        if not isinstance(given, list):
            raise Refused("INVALID_ARGUMENT", "Expecting 'instances' to be an list/array")
        if given and all(isinstance(r, dict) and not _is_b64(r) for r in given):
            keys = set(given[0])
            if any(set(r) != keys for r in given):
                raise Refused("INVALID_ARGUMENT", "Failed to process element: 1 key: ... of 'instances' list. "
                                                  "Error: INVALID_ARGUMENT: all objects must have the same keys")
            columns = {k: [r[k] for r in given] for k in keys}
        else:
            columns = None if len(input_names) != 1 else {input_names[0]: given}
    else:
        columns = given if isinstance(given, dict) else None if len(input_names) != 1 else {input_names[0]: given}
    if columns is None:
        raise Refused("INVALID_ARGUMENT", f"Unnamed inputs for a signature of {len(input_names)} inputs "
                                          f"{input_names}: name them")
    outputs = model.predict(signature_name, {k: _from_json(v) for k, v in columns.items()})
    values = {k: _to_json(v, k) for k, v in outputs.items()}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {len(v) if isinstance(v, list) else None for v in values.values()}
    if len(sizes) != 1 or None in sizes:
        raise Refused("INVALID_ARGUMENT", "Tensor name: ... has inconsistent batch size with other tensors: "
                                          "use the 'inputs' (columnar) format")
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(sizes.pop())]}


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _from_json(value):
    if _is_b64(value):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _to_json(array: np.ndarray, name: str):
    def plain(x):
        if isinstance(x, list):
            return [plain(i) for i in x]
        if isinstance(x, bytes):
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(x).decode("ascii")}
            return x.decode("utf-8", errors="replace")
        return x

    return plain(array.tolist())
