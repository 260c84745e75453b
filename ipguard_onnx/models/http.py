"""A remote prediction API as a suspect: label-only access over HTTP (stdlib only, no torch).

Two wire formats:

* **Open Inference Protocol** (KServe v2; served by Triton, KServe, MLServer):
  ``POST {base}/v2/models/{name}/infer`` with ``{"inputs": [{"name", "shape", "datatype", "data"}]}``;
  the answer's ``outputs`` hold labels (INT64/INT32/BYTES, shape [n] or [n, 1]) or scores ([n, C]).
  Input name, datatype and shape come from ``GET {base}/v2/models/{name}`` when the server offers it.
* **Simple JSON** (KServe v1 / TensorFlow Serving style): ``POST URL`` with ``{"instances": [...]}``,
  answered by ``{"predictions": [...]}``, each prediction a label (number or string) or a list of scores.

Points go in batches; a failed batch is retried with exponential backoff on timeouts, connection
errors, HTTP 429 and 5xx. What still fails is *skipped with its reason*, never counted as a match or a
mismatch. ``max_queries`` caps the number of points sent (the rest are skipped, "query budget").
"""

from __future__ import annotations

import json
import os
import time
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from ..errors import UsageError
from ..types import Answers, FloatArray, InputSpec, LabelKind, guess_layout
from .base import Classifier, unanswered


class WireProtocol(StrEnum):
    """How requests and answers are encoded: the Open Inference Protocol, simple JSON, or chosen from the URL."""

    auto = "auto"
    oip = "oip"
    simple = "simple"


MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_OIP_DATATYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16"}
_OIP_LABEL_TYPES = {"INT64", "INT32", "INT16", "INT8", "UINT8", "BYTES"}
_RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 60.0
TOKEN_VARIABLE = "IPGUARD_ONNX_AUTH_TOKEN"
HEADERS_VARIABLE = "IPGUARD_ONNX_HTTP_HEADERS"


class _Skip(Exception):
    """A batch that could not be answered; the message is the reason shown in reports."""

    def __init__(self, reason: str, *, retry: bool, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.wait = wait
        """The server's Retry-After in seconds (429, 503), waited instead of the backoff."""


def _retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (HTTP dates are not honoured: the backoff applies), capped."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, MAX_RETRY_AFTER)


def headers_from_environment() -> dict[str, str]:
    """Auth headers: ``IPGUARD_ONNX_AUTH_TOKEN`` (a bearer token) and ``IPGUARD_ONNX_HTTP_HEADERS`` (JSON)."""
    headers: dict[str, str] = {}
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    extra = os.environ.get(HEADERS_VARIABLE)
    if extra:
        try:
            parsed = json.loads(extra)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise UsageError(f'{HEADERS_VARIABLE} must be a JSON object of strings, e.g. {{"X-Api-Key": "..."}}')
        headers.update(parsed)
    return headers


class HttpClassifier(Classifier):
    """A model behind an HTTP prediction API (Open Inference Protocol or simple JSON)."""

    def __init__(
        self,
        url: str,
        *,
        protocol: WireProtocol | str = WireProtocol.auto,
        input_name: str | None = None,
        output_name: str | None = None,
        batch_size: int = 32,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_queries: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--endpoint must be an http(s) URL, got {url!r}")
        if batch_size < 1 or retries < 0 or timeout <= 0 or (max_queries is not None and max_queries < 0):
            raise UsageError("--batch-size and --timeout must be positive, --retries and --max-queries ≥ 0")
        if protocol not in tuple(WireProtocol):
            raise UsageError(f"--protocol must be one of {', '.join(WireProtocol)}, got {protocol!r}")
        chosen = WireProtocol(protocol)
        if chosen is WireProtocol.auto:
            chosen = WireProtocol.oip if "/v2/models/" in parts.path else WireProtocol.simple
        self.protocol: Literal["oip", "simple"] = "oip" if chosen is WireProtocol.oip else "simple"
        self.name = url
        self.url = url
        self.output_name = output_name
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_queries = max_queries
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        self.queries_sent = 0
        self.requests_sent = 0
        self._input_name = input_name
        self._datatype: str | None = None
        self.input_spec: InputSpec | None = None
        if self.protocol == "oip":
            model_url = parts.path.removesuffix("/").removesuffix("/infer")
            base = f"{parts.scheme}://{parts.netloc}"
            self.infer_url = f"{base}{model_url}/infer"
            self.metadata_url = f"{base}{model_url}"
            self._read_metadata()
        else:
            self.infer_url = url

    def _read_metadata(self) -> None:
        """OIP model metadata: input name, datatype, per-sample shape (optional; used when served)."""
        try:
            body = self._request("GET", self.metadata_url, None)
        except _Skip:
            return
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            return
        first = inputs[0]
        self._input_name = self._input_name or str(first.get("name", "")) or None
        self._datatype = str(first.get("datatype", "")) or None
        shape = first.get("shape")
        if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(d, int) and d > 0 for d in shape[1:]):
            sample = tuple(int(d) for d in shape[1:])
            dtype = {v: k for k, v in _OIP_DATATYPES.items()}.get(self._datatype or "", "float32")
            self.input_spec = InputSpec(self._input_name or "input", sample, dtype, guess_layout(sample), None)

    def _request(self, method: str, url: str, payload: object | None) -> Any:
        import socket  # here, not at module level: an audit of a file never pays for urllib.request
        import urllib.error
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        deadline = time.monotonic() + self.timeout
        self.requests_sent += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                chunks, size = [], 0
                while chunk := response.read(65536):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _Skip(f"response larger than {MAX_RESPONSE_BYTES >> 20} MiB", retry=False)
                    if time.monotonic() > deadline:
                        raise _Skip(f"timeout after {self.timeout:g} s", retry=True)
                    chunks.append(chunk)
                raw = b"".join(chunks)
        except urllib.error.HTTPError as error:
            snippet = error.read(200).decode(errors="replace").strip().replace("\n", " ")
            raise _Skip(
                f"HTTP {error.code}" + (f": {snippet[:80]}" if snippet else ""),
                retry=error.code in _RETRY_STATUS,
                wait=_retry_after(error.headers.get("Retry-After")) if error.code in (429, 503) else None,
            ) from None
        except TimeoutError:
            raise _Skip(f"timeout after {self.timeout:g} s", retry=True) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Skip(f"timeout after {self.timeout:g} s", retry=True) from None
            raise _Skip(f"connection failed: {reason}", retry=True) from None
        except (ConnectionError, OSError) as error:
            raise _Skip(f"connection failed: {type(error).__name__}", retry=True) from None
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Skip("malformed response: not JSON", retry=False) from None

    def _with_retries(self, chunk: FloatArray) -> tuple[np.ndarray, LabelKind]:
        attempt = 0
        while True:
            try:
                body = self._request("POST", self.infer_url, self._payload(chunk))
                return self._parse(body, len(chunk))
            except _Skip as skip:
                if not skip.retry or attempt >= self.retries:
                    raise
                time.sleep(skip.wait if skip.wait is not None else self.backoff * 2**attempt)
                attempt += 1

    def _payload(self, chunk: FloatArray) -> dict[str, Any]:
        if self.protocol == "simple":
            return {"instances": chunk.tolist()}
        datatype = self._datatype or _OIP_DATATYPES.get(str(chunk.dtype), "FP32")
        return {
            "inputs": [
                {
                    "name": self._input_name or "input",
                    "shape": list(chunk.shape),
                    "datatype": datatype,
                    "data": chunk.reshape(-1).tolist(),
                }
            ]
        }

    def _parse(self, body: Any, count: int) -> tuple[np.ndarray, LabelKind]:
        if self.protocol == "simple":
            predictions = body.get("predictions") if isinstance(body, dict) else None
            if not isinstance(predictions, list) or len(predictions) != count:
                raise _Skip(f"malformed response: expected 'predictions' with {count} entries", retry=False)
            if all(isinstance(p, list) and len(p) >= 2 for p in predictions):
                return self._argmax(predictions, count), "index"
            if all(isinstance(p, (int, float, str)) and not isinstance(p, bool) for p in predictions):
                return np.asarray(predictions, dtype=object), "class-label"
            raise _Skip("malformed response: predictions must be labels or score lists", retry=False)
        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
            raise _Skip("malformed response: no 'outputs'", retry=False)
        chosen = self._choose_output(outputs, count)
        data, shape, datatype = chosen.get("data"), chosen.get("shape"), str(chosen.get("datatype", ""))
        if not isinstance(data, list) or not isinstance(shape, list):
            raise _Skip("malformed response: output without data or shape", retry=False)
        if datatype in _OIP_LABEL_TYPES:
            if len(data) != count:
                raise _Skip(f"malformed response: {len(data)} labels for {count} points", retry=False)
            return np.asarray(data, dtype=object), "class-label"
        if len(shape) != 2 or shape[0] != count or len(data) != count * int(shape[1]):
            raise _Skip(f"malformed response: output shape {shape} for {count} points", retry=False)
        width = int(shape[1])
        return self._argmax([data[i * width : (i + 1) * width] for i in range(count)], count), "index"

    def _choose_output(self, outputs: list[dict[str, Any]], count: int) -> dict[str, Any]:
        if self.output_name is not None:
            for output in outputs:
                if output.get("name") == self.output_name:
                    return output
            raise _Skip(f"malformed response: no output named {self.output_name!r}", retry=False)
        labels = [o for o in outputs if str(o.get("datatype")) in _OIP_LABEL_TYPES]
        return labels[0] if labels else outputs[0]

    @staticmethod
    def _argmax(rows: list[Any], count: int) -> np.ndarray:
        try:
            scores = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            raise _Skip("malformed response: scores are not numbers", retry=False) from None
        if scores.ndim != 2 or len(scores) != count or not np.isfinite(scores).all():
            raise _Skip("malformed response: scores are not a finite N×C table", retry=False)
        labels: np.ndarray = scores.argmax(axis=1).astype(np.int64)
        return labels

    def answer_batch(self, batch: FloatArray) -> Answers:
        """One request for the batch, within the query budget (points past it are skipped, with why)."""
        allowed = (
            len(batch) if self.max_queries is None else max(0, min(len(batch), self.max_queries - self.queries_sent))
        )
        budget = f"query budget (--max-queries {self.max_queries}) exhausted"
        if allowed == 0:
            return unanswered(len(batch), budget)
        self.queries_sent += allowed
        try:
            labels, kind = self._with_retries(np.ascontiguousarray(batch[:allowed], dtype=np.float32))
        except _Skip as skip:
            answered = unanswered(allowed, skip.reason)
        else:
            answered = Answers(labels, kind, np.ones(allowed, np.bool_))
        if allowed == len(batch):
            return answered
        return Answers.concatenate([answered, unanswered(len(batch) - allowed, budget)], answered.kind)

    def describe(self) -> dict[str, str]:
        return {
            "endpoint": self.url,
            "protocol": "Open Inference Protocol (v2)" if self.protocol == "oip" else "simple JSON",
            "requests": str(self.requests_sent),
        }
