"""TF Serving's REST API from the standard library (``urllib``): predict, model status, model metadata.

``POST /v1/models/NAME[/versions/N]:predict`` in either of TF Serving's JSON formats: ``inputs`` (columns:
``{"inputs": {"text": [...]}}`` -> ``{"outputs": {...}}``) or ``instances`` (rows:
``{"instances": [{"text": ...}, ...]}`` -> ``{"predictions": [...]}``). A signature with a single output
comes back unnamed in both; its name is then read once from ``GET .../metadata``. ``GET
/v1/models/NAME[/versions/N]`` is the model's status. Strings are JSON strings (``{"b64": ...}`` values are
decoded to bytes); numbers come back as JSON numbers, so float outputs arrive as float64 arrays.

Example:
    >>> from kbert.serving.rest import RestTransport
    >>> RestTransport("http://127.0.0.1:9", "sentiment").model_url
    'http://127.0.0.1:9/v1/models/sentiment'
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from kbert.errors import InputError, ServingConnectionError, ServingResponseError

FORMATS = ("inputs", "instances")


class RestTransport:
    """Requests to one model of a TF Serving REST endpoint (``url``: ``http://host:8501``)."""

    def __init__(self, url: str, model_name: str, *, version: int | None = None, timeout: float = 30.0,
                 format: str = "inputs"):
        if format not in FORMATS:
            raise InputError(f"rest_format must be one of {list(FORMATS)}, got {format!r}")
        if "://" not in url:
            url = "http://" + url
        self.url, self.model_name, self.timeout, self.format = url.rstrip("/"), model_name, timeout, format
        self.model_url = f"{self.url}/v1/models/{urllib.parse.quote(model_name, safe='')}" + (
            f"/versions/{version}" if version is not None else "")
        self._output_names: dict[str, list[str]] = {}

    def predict(self, inputs: dict[str, list], signature_name: str) -> dict[str, np.ndarray]:
        """The outputs of ``signature_name`` for ``inputs`` (input name -> list of values, one per example)."""
        if self.format == "inputs":
            body = {"signature_name": signature_name, "inputs": inputs}
        else:
            size = len(next(iter(inputs.values())))
            body = {"signature_name": signature_name,
                    "instances": [{k: v[i] for k, v in inputs.items()} for i in range(size)]}
        reply = self._request(f"{self.model_url}:predict", body)
        key = "outputs" if self.format == "inputs" else "predictions"
        if key not in reply:
            raise ServingResponseError(f"{self.model_url}:predict: the answer has no {key!r} "
                                       f"(keys {sorted(reply)})")
        values = reply[key]
        if self.format == "inputs":
            named = values if isinstance(values, dict) and not _is_b64(values) else None
        else:
            named = ({k: [row[k] for row in values] for k in values[0]}
                     if values and all(isinstance(r, dict) and not _is_b64(r) for r in values) else None)
        if named is None:  # a single output, unnamed: its name is in the signature
            names = self.output_names(signature_name)
            if len(names) != 1:
                raise ServingResponseError(f"{self.model_url}:predict: unnamed outputs for signature "
                                           f"{signature_name!r}, which has outputs {names}")
            named = {names[0]: values}
        return {k: _array(v) for k, v in named.items()}

    def output_names(self, signature_name: str) -> list[str]:
        """The output names of ``signature_name`` from the model's metadata (asked once)."""
        if signature_name not in self._output_names:
            signatures = self.metadata().get("signature_def", {}).get("signature_def", {})
            if signature_name not in signatures:
                raise ServingResponseError(f"{self.model_url}/metadata: no signature {signature_name!r} "
                                           f"(the model has {sorted(signatures)})")
            self._output_names[signature_name] = sorted(signatures[signature_name].get("outputs", {}))
        return self._output_names[signature_name]

    def metadata(self) -> dict:
        """``GET .../metadata``'s ``metadata`` (``{"signature_def": {"signature_def": {...}}}``)."""
        return self._request(f"{self.model_url}/metadata").get("metadata", {})

    def status(self) -> list[dict]:
        """``[{version, state, error_code, error_message}]`` of ``GET /v1/models/NAME``."""
        reply = self._request(self.model_url)
        return [{"version": int(s.get("version", 0)), "state": s.get("state", ""),
                 "error_code": s.get("status", {}).get("error_code", "OK"),
                 "error_message": s.get("status", {}).get("error_message", "")}
                for s in reply.get("model_version_status", [])]

    def _request(self, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as err:
            raise ServingResponseError(f"{url}: HTTP {err.code}: {_error_message(err)}", status=err.code) from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise ServingConnectionError(f"{url}: no answer within {self.timeout} s") from None
            raise ServingConnectionError(f"{url}: cannot reach the model server ({reason})") from None
        except (socket.timeout, TimeoutError):
            raise ServingConnectionError(f"{url}: no answer within {self.timeout} s") from None
        except (ConnectionError, OSError) as err:  # reset or closed mid-answer
            raise ServingConnectionError(f"{url}: connection failed ({err})") from None
        try:
            reply = json.loads(text)
        except ValueError:
            raise ServingResponseError(f"{url}: the answer is not JSON: {text[:200]!r}") from None
        if not isinstance(reply, dict):
            raise ServingResponseError(f"{url}: the answer is not a JSON object: {text[:200]!r}")
        return reply


def _error_message(err: urllib.error.HTTPError) -> str:
    """TF Serving's ``{"error": message}``, else the body's start, else the HTTP reason."""
    try:
        body = err.read()
    except OSError:
        body = b""
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        message = None
    return message or body[:300].decode("utf-8", errors="replace").strip() or str(err.reason)


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _array(value) -> np.ndarray:
    """A JSON value as an array: numbers as numpy picks, strings as an object array of ``str`` (b64: bytes)."""
    def plain(x):
        if _is_b64(x):
            return base64.b64decode(x["b64"])
        return [plain(i) for i in x] if isinstance(x, list) else x

    value = plain(value)
    array = np.asarray(value)
    if array.dtype.kind in "US":  # keep str / bytes objects, as gRPC gives them
        array = np.asarray(value, dtype=object)
    return array
