"""TF Serving's gRPC API through the official stubs of ``tensorflow_serving.apis``: predict and model status.

``PredictionService.Predict`` takes the inputs as ``TensorProto``s (``tf.make_tensor_proto``) and gives the
outputs back with their exact dtypes (``tf.make_ndarray``; strings decoded from UTF-8 to ``str``);
``ModelService.GetModelStatus`` gives the versions' states. A failed call becomes
:class:`~kbert.errors.ServingConnectionError` (``UNAVAILABLE``: nothing listens there; ``DEADLINE_EXCEEDED``:
no answer within ``timeout``) or :class:`~kbert.errors.ServingResponseError` (any other code, with the
server's message).

Example:
    >>> from kbert.serving.grpc_client import GrpcTransport
    >>> from kbert.errors import ServingConnectionError
    >>> try:
    ...     GrpcTransport("127.0.0.1:9", "sentiment", timeout=5).status()
    ... except ServingConnectionError as err:
    ...     print(str(err).split(":")[:3])
    ['127.0.0.1', '9', ' UNAVAILABLE']
"""

from __future__ import annotations

import numpy as np

from kbert.errors import ServingConnectionError, ServingResponseError

MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # hidden states of a large batch exceed gRPC's 4 MiB default


class GrpcTransport:
    """Calls to one model of a TF Serving gRPC endpoint (``target``: ``host:8500``)."""

    def __init__(self, target: str, model_name: str, *, version: int | None = None, timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target = target.split("://", 1)[-1]
        self.model_name, self.version, self.timeout = model_name, version, timeout
        self._channel = grpc.insecure_channel(self.target, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, spec, signature_name: str | None = None) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict(self, inputs: dict[str, list], signature_name: str) -> dict[str, np.ndarray]:
        """The outputs of ``signature_name`` for ``inputs`` (input name -> list of strings, one per example)."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        for name, values in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
        response = self._call(self._predict.Predict, request, "Predict")
        return {name: _decoded(tf.make_ndarray(proto)) for name, proto in response.outputs.items()}

    def status(self) -> list[dict]:
        """``[{version, state, error_code, error_message}]`` of ``GetModelStatus``."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request, "GetModelStatus")
        state = get_model_status_pb2.ModelVersionStatus.State
        code = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type \
            .fields_by_name["error_code"].enum_type
        return [{"version": s.version, "state": state.Name(s.state),
                 "error_code": code.values_by_number[s.status.error_code].name,
                 "error_message": s.status.error_message} for s in response.model_version_status]

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request, what: str):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            details = (err.details() if hasattr(err, "details") else None) or str(err)
            message = f"{self.target}: {name}: {what} of model {self.model_name!r}: {details}"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingConnectionError(message) from None
            raise ServingResponseError(message, status=name) from None


def _decoded(array: np.ndarray) -> np.ndarray:
    """String tensors as object arrays of ``str`` (UTF-8), other dtypes unchanged."""
    if array.dtype != object:
        return array
    out = np.empty(array.shape, dtype=object)
    for index, value in np.ndenumerate(array):
        out[index] = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    return out
