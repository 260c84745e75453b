"""A remote prediction API as a suspect: label-only access over HTTP (stdlib only, no torch).

Two wire formats:

* **Open Inference Protocol** (KServe v2; served by Triton, KServe, MLServer):
  ``POST {base}/v2/models/{name}/infer`` with ``{"inputs": [{"name", "shape", "datatype", "data"}]}``;
  the answer's ``outputs`` hold labels (INT64/INT32/BYTES, shape [n] or [n, 1]) or scores ([n, C]).
  Input name, datatype and shape come from ``GET {base}/v2/models/{name}`` when the server offers it.
* **Simple JSON** (KServe v1 / TensorFlow Serving style): ``POST URL`` with ``{"instances": [...]}``,
  answered by ``{"predictions": [...]}``, each prediction a label (number or string) or a list of scores.

A fingerprint of several inputs (``packing``) sends each point's inputs by name: one OIP input per model
input (matched to the served names by name, else by position), or one JSON object per instance.

Points go in batches; a failed batch is retried with exponential backoff on timeouts, connection
errors, HTTP 429 and 5xx. What still fails is *skipped with its reason*, never counted as a match or a
mismatch. ``max_queries`` caps the number of points sent (the rest are skipped, "query budget").
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from ..deadlines import DeadlinePassed, call_bounded, check_seconds
from ..errors import UnsupportedModelError, UsageError
from ..text import shown
from ..types import MAX_SAMPLE_VALUES, Answers, FloatArray, InputSpec, Packing, guess_layout
from .base import Classifier, from_labels, from_scores, unanswered


class WireProtocol(StrEnum):
    """How requests and answers are encoded: the Open Inference Protocol, simple JSON, or chosen from the URL."""

    auto = "auto"
    oip = "oip"
    simple = "simple"


MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_OIP_DATATYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16"}
_OIP_TENSOR_TYPES = {
    **_OIP_DATATYPES,
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
}
_OIP_LABEL_TYPES = {"INT64", "INT32", "INT16", "INT8", "UINT8", "BYTES"}
_RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0
"""The longest wait a server's Retry-After gets; every wait also counts against ``--deadline``."""
DEFAULT_DEADLINE = 300.0
"""Seconds an audit of one remote API may take in all (requests, retries, waits) by default."""
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
    return None if seconds is None or not seconds >= 0 else min(seconds, MAX_RETRY_AFTER)  # NaN: backoff


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
        except (json.JSONDecodeError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise UsageError(f'{HEADERS_VARIABLE} must be a JSON object of strings, e.g. {{"X-Api-Key": "..."}}')
        headers.update(parsed)
    for name, value in headers.items():  # a line break would smuggle a header or a request into the stream
        if not name or not name.isprintable() or ":" in name or " " in name or not value.isprintable():
            raise UsageError(
                f"the HTTP header {shown(name)[:40]!r} from {TOKEN_VARIABLE}/{HEADERS_VARIABLE} holds control "
                "characters or is not a valid header name"
            )
    return headers


class _Sockets:
    """The sockets one request opened, so that a deadline can shut them and free the blocked read."""

    def __init__(self) -> None:
        self.open: list[socket.socket] = []

    def shut_down(self) -> None:
        for sock in self.open:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _http_client_error() -> type[Exception]:
    """http.client's base error (a malformed status line or headers): a failed connection, not a crash."""
    import http.client

    return http.client.HTTPException


MAX_REDIRECTS = 5


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _handlers(sockets: _Sockets) -> list[Any]:
    """urllib handlers that record each connection's socket (``_Sockets``) and follow only safe redirects:
    to the same origin, and never turning a POST into a GET. urllib's own handler sends ``Authorization``
    and every extra header to whatever host a 302 names, and re-sends a POST as a GET without its body;
    a prediction API that redirects elsewhere is asked nothing more (its points are skipped, with why)."""
    import http.client
    import urllib.request
    from urllib.parse import urljoin

    def recorded(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Connection(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                super().connect()
                sockets.open.append(self.sock)

        return Connection

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(recorded(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(recorded(http.client.HTTPSConnection), req, context=self._context)  # type: ignore[attr-defined]

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def redirect_request(
            self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> urllib.request.Request | None:
            target = urljoin(req.full_url, newurl)
            if _origin(target) != _origin(req.full_url):
                raise _Skip(
                    f"HTTP {code} redirect to another origin ({shown(_origin(target)[1])[:60]}) refused: "
                    "credentials are never sent there; audit that URL directly",
                    retry=False,
                )
            method = req.get_method()
            if method != "GET" and code not in (307, 308):
                raise _Skip(f"HTTP {code} redirect would turn the {method} into a GET; refused", retry=False)
            return urllib.request.Request(target, data=req.data, headers=dict(req.header_items()), method=method)

    return [Http(), Https(), Redirects()]


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
        deadline: float = DEFAULT_DEADLINE,
        packing: Packing | None = None,
    ) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - a port that is no number raises here, not at the first request
        except ValueError:  # an invalid IPv6 literal, a port out of range
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.netloc or not url.isprintable() or " " in url:
            raise UsageError(
                f"--endpoint must be an http(s) URL without spaces or control characters, got {shown(url)!r}"
            )
        if batch_size < 1 or retries < 0 or (max_queries is not None and max_queries < 0):
            raise UsageError("--batch-size must be positive, --retries and --max-queries ≥ 0")
        check_seconds(timeout, "--timeout")
        check_seconds(deadline, "--deadline")
        if not 0 <= backoff < float("inf"):
            raise UsageError(f"the retry backoff must be a finite number of seconds ≥ 0, got {backoff!r}")
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
        self.deadline = deadline
        self.deadline_at = time.monotonic() + deadline
        """When this suspect's audit must end: every request, retry and wait counts against it."""
        self._deadline_reason = f"the {deadline:g} s deadline of auditing this API (--deadline) passed"
        self._input_name = input_name
        self.packing = packing
        """The fingerprint's inputs, for a model of several: each point is sent as one tensor per input."""
        self._feed_names: dict[str, str] = {}
        self.inputs_fed = "by name" if packing is not None else ""
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
        if self.packing is not None and isinstance(inputs, list):
            self._match_served(inputs, self.packing)
            return
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            return
        first = inputs[0]
        self._input_name = self._input_name or str(first.get("name", "")) or None
        self._datatype = str(first.get("datatype", "")) or None
        shape = first.get("shape")
        if (
            isinstance(shape, list)
            and len(shape) >= 2
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:])
        ):
            sample = tuple(int(d) for d in shape[1:])
            if math.prod(sample) > MAX_SAMPLE_VALUES:  # capped like an ONNX input: no 335 GiB of points
                raise UnsupportedModelError(
                    f"{shown(self.url)} declares an input of {math.prod(sample):,} values per point (shape "
                    f"{list(sample)[:8]}), more than the {MAX_SAMPLE_VALUES:,} ipguard-onnx accepts"
                )
            dtype = {v: k for k, v in _OIP_DATATYPES.items()}.get(self._datatype or "", "float32")
            self.input_spec = InputSpec(self._input_name or "input", sample, dtype, guess_layout(sample), None)

    def _match_served(self, inputs: list[Any], packing: Packing) -> None:
        """The served inputs (OIP metadata) for the fingerprint's: by name, else by position; refused when
        the counts differ (the API is not a model of the fingerprint's inputs)."""
        served = [str(i.get("name", "")) for i in inputs if isinstance(i, dict)]
        wanted = [value.name for value in packing.inputs]
        if len(served) != len(wanted) or len(served) != len(inputs):
            names = ", ".join(repr(shown(name)[:40]) for name in served[:8])
            raise UnsupportedModelError(
                f"{shown(self.url)} serves {len(inputs)} inputs ({names}); "
                f"the fingerprint feeds {len(wanted)} ({', '.join(map(repr, wanted))})"
            )
        if sorted(served) == sorted(wanted):
            return
        self._feed_names = dict(zip(wanted, served, strict=True))
        how = ", ".join(f"{ours!r} → {shown(theirs)[:40]!r}" for ours, theirs in self._feed_names.items())
        self.inputs_fed = f"by position ({how})"

    def _request(self, method: str, url: str, payload: object | None) -> Any:
        """One request within ``--timeout`` in total (connect, send, every byte of the answer) and within
        what is left of ``--deadline``; a server that drips its answer is cut off, not waited for."""
        remaining = self.deadline_at - time.monotonic()
        if remaining <= 0:
            raise _Skip(self._deadline_reason, retry=False)
        limit = min(self.timeout, remaining)
        sockets = _Sockets()
        self.requests_sent += 1
        try:
            raw = call_bounded(
                lambda: self._exchange(method, url, payload, limit, sockets), timeout=limit, stop=sockets.shut_down
            )
        except DeadlinePassed:
            raise _Skip(f"timeout after {limit:g} s", retry=True) from None
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Skip("malformed response: not JSON", retry=False) from None
        except ValueError:  # an integer of more than 4,300 digits
            raise _Skip("malformed response: a number too long to read", retry=False) from None
        except RecursionError:
            raise _Skip("malformed response: JSON nested too deeply", retry=False) from None

    def _exchange(self, method: str, url: str, payload: object | None, limit: float, sockets: _Sockets) -> bytes:
        import socket  # here, not at module level: an audit of a file never pays for urllib.request
        import urllib.error
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        opener = urllib.request.build_opener(*_handlers(sockets))
        try:
            with opener.open(request, timeout=limit) as response:
                chunks, size = [], 0
                while chunk := response.read1(65536):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _Skip(f"response larger than {MAX_RESPONSE_BYTES >> 20} MiB", retry=False)
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as error:
            try:
                snippet = shown(" ".join(error.read(200).decode(errors="replace").split()))
            except (OSError, ValueError):
                snippet = ""
            raise _Skip(
                f"HTTP {error.code}" + (f": {snippet[:80]}" if snippet else ""),
                retry=error.code in _RETRY_STATUS,
                wait=_retry_after(error.headers.get("Retry-After")) if error.code in (429, 503) else None,
            ) from None
        except TimeoutError:
            raise _Skip(f"timeout after {limit:g} s", retry=True) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Skip(f"timeout after {limit:g} s", retry=True) from None
            raise _Skip(f"connection failed: {shown(reason)}", retry=True) from None
        except (ConnectionError, OSError, ValueError, _http_client_error()) as error:
            raise _Skip(f"connection failed: {type(error).__name__}", retry=True) from None

    def _with_retries(self, chunk: FloatArray) -> Answers:
        attempt = 0
        while True:
            try:
                body = self._request("POST", self.infer_url, self._payload(chunk))
                try:
                    return self._parse(body, len(chunk))
                except (ValueError, TypeError, OverflowError, KeyError, AttributeError, RecursionError):
                    raise _Skip("malformed response: outputs of the wrong types or shapes", retry=False) from None
            except _Skip as skip:
                if not skip.retry or attempt >= self.retries:
                    raise
                wait = skip.wait if skip.wait is not None else self.backoff * 2**attempt
                if time.monotonic() + wait >= self.deadline_at:  # waiting would spend the whole deadline
                    raise _Skip(f"{skip.reason}; no retry: {self._deadline_reason}", retry=False) from None
                time.sleep(wait)
                attempt += 1

    def _payload(self, chunk: FloatArray) -> dict[str, Any]:
        if self.packing is not None:
            return self._packed_payload(self.packing.feeds(chunk, self._feed_names), len(chunk))
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

    def _packed_payload(self, feeds: dict[str, Any], count: int) -> dict[str, Any]:
        """One tensor per input (OIP), or one object of named values per point (simple JSON); a held
        input without a batch axis (a sample rate) goes whole with every point."""
        if self.protocol == "oip":
            return {
                "inputs": [
                    {
                        "name": name,
                        "shape": list(tensor.shape),
                        "datatype": _OIP_TENSOR_TYPES.get(str(tensor.dtype), "FP32"),
                        "data": tensor.reshape(-1).tolist(),
                    }
                    for name, tensor in feeds.items()
                ]
            }
        axes = (
            {self._feed_names.get(value.name, value.name): value.batch_axis for value in self.packing.inputs}
            if self.packing is not None
            else {}
        )
        instances = [
            {
                name: (tensor if axes.get(name) is None else np.take(tensor, row, axis=axes[name])).tolist()
                for name, tensor in feeds.items()
            }
            for row in range(count)
        ]
        return {"instances": instances}

    def _parse(self, body: Any, count: int) -> Answers:
        if self.protocol == "simple":
            predictions = body.get("predictions") if isinstance(body, dict) else None
            if not isinstance(predictions, list) or len(predictions) != count:
                raise _Skip(f"malformed response: expected 'predictions' with {count} entries", retry=False)
            if all(isinstance(p, list) and len(p) >= 2 for p in predictions):
                return self._scored(predictions, count)
            if all(isinstance(p, (int, float, str)) and not isinstance(p, bool) for p in predictions):
                return from_labels(predictions)
            raise _Skip("malformed response: predictions must be labels or score lists", retry=False)
        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
            raise _Skip("malformed response: no 'outputs'", retry=False)
        chosen = self._choose_output(outputs, count)
        data, shape, datatype = chosen.get("data"), chosen.get("shape"), str(chosen.get("datatype", ""))
        if not isinstance(data, list) or not isinstance(shape, list):
            raise _Skip("malformed response: output without data or shape", retry=False)
        if datatype in _OIP_LABEL_TYPES:
            if len(data) != count or not all(isinstance(v, (int, float, str)) for v in data):
                raise _Skip(f"malformed response: {len(data)} labels for {count} points", retry=False)
            return from_labels(data)
        if len(shape) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise _Skip(f"malformed response: output shape {shown(shape)[:60]} is not [points, classes]", retry=False)
        if shape[0] != count or shape[1] < 2 or len(data) != count * shape[1]:
            raise _Skip(f"malformed response: output shape {shape} for {count} points", retry=False)
        width = shape[1]
        return self._scored([data[i * width : (i + 1) * width] for i in range(count)], count)

    def _choose_output(self, outputs: list[dict[str, Any]], count: int) -> dict[str, Any]:
        if self.output_name is not None:
            for output in outputs:
                if output.get("name") == self.output_name:
                    return output
            raise _Skip(f"malformed response: no output named {shown(self.output_name)!r}", retry=False)
        labels = [o for o in outputs if str(o.get("datatype")) in _OIP_LABEL_TYPES]
        return labels[0] if labels else outputs[0]

    @staticmethod
    def _scored(rows: list[Any], count: int) -> Answers:
        """Score rows as answers: each row's argmax; a row with a NaN or infinite score is unanswered."""
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in rows for v in row):
            raise _Skip("malformed response: scores are not numbers", retry=False)
        try:
            scores = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise _Skip("malformed response: scores are not numbers", retry=False) from None
        if scores.ndim != 2 or len(scores) != count:
            raise _Skip("malformed response: scores are not an N×C table", retry=False)
        return from_scores(scores)

    def answer_batch(self, batch: FloatArray) -> Answers:
        """One request for the batch, within the query budget (points past it are skipped, with why)."""
        if time.monotonic() >= self.deadline_at:
            return unanswered(len(batch), self._deadline_reason)
        allowed = (
            len(batch) if self.max_queries is None else max(0, min(len(batch), self.max_queries - self.queries_sent))
        )
        budget = f"query budget (--max-queries {self.max_queries}) exhausted"
        if allowed == 0:
            return unanswered(len(batch), budget)
        self.queries_sent += allowed
        try:
            answered = self._with_retries(np.ascontiguousarray(batch[:allowed], dtype=np.float32))
        except _Skip as skip:
            answered = unanswered(allowed, skip.reason)
        if allowed == len(batch):
            return answered
        return Answers.concatenate([answered, unanswered(len(batch) - allowed, budget)], answered.kind)

    def describe(self) -> dict[str, str]:
        facts = {
            "endpoint": self.url,
            "protocol": "Open Inference Protocol (v2)" if self.protocol == "oip" else "simple JSON",
            "requests": str(self.requests_sent),
        }
        if self.packing is not None:
            facts["inputs"] = f"{self.packing.describe()}; sent {self.inputs_fed}"
        return facts
