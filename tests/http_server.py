"""A real prediction server on 127.0.0.1 for the remote-API tests: onnxruntime behind HTTP.

Speaks the Open Inference Protocol (``/v2/models/{name}`` metadata, ``/v2/models/{name}/infer``)
and the simple JSON form (``POST /predict`` with ``{"instances": ...}``), and can misbehave on
purpose: fail every k-th request with a 500, answer slower than the client waits, return non-JSON,
or demand a bearer token.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort


@dataclass
class Behaviour:
    fail_every: int = 0  # every k-th inference request answers HTTP 500
    fail_status: int = 500
    delay: float = 0.0  # seconds before answering an inference request
    not_json: bool = False
    token: str | None = None
    answer: str = "scores"  # scores, labels, or alternate (scores, then labels, then scores, ...)
    rate_limit: float = 0.0  # inference requests per second; faster ones get 429 with Retry-After
    requests: int = 0
    answered_points: int = 0  # points in the inference requests that were answered
    rejected: int = 0  # requests refused with 429
    next_allowed: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_ORT_TYPES = {
    "tensor(float)": (np.float32, "FP32"),
    "tensor(int64)": (np.int64, "INT64"),
    "tensor(int32)": (np.int32, "INT32"),
    "tensor(bool)": (np.bool_, "BOOL"),
}


class PredictionServer:
    """``served_names`` renames the model's inputs as the server publishes them (a re-deployment that names its
    inputs otherwise); a model of several inputs takes named instances (simple JSON) or one OIP input each."""

    def __init__(
        self,
        model: Path,
        behaviour: Behaviour | None = None,
        name: str = "digits",
        served_names: dict[str, str] | None = None,
    ) -> None:
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.inputs = self.session.get_inputs()
        self.served = {value.name: (served_names or {}).get(value.name, value.name) for value in self.inputs}
        self.behaviour = behaviour or Behaviour()
        self.name = name
        self.fed: list[dict[str, tuple[str, list[int]]]] = []  # per request: served name -> (dtype, shape) received
        server = self

        def feeds(named: dict[str, Any]) -> dict[str, np.ndarray]:
            """The model's feeds from values named as served, each cast to the model input's type."""
            by_served = {served: model_name for model_name, served in server.served.items()}
            return {
                by_served[key]: np.asarray(
                    value, dtype=_ORT_TYPES[next(v.type for v in server.inputs if v.name == by_served[key])][0]
                )
                for key, value in named.items()
            }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == f"/v2/models/{server.name}":
                    meta = {
                        "name": server.name,
                        "inputs": [
                            {
                                "name": server.served[value.name],
                                "datatype": _ORT_TYPES[value.type][1],
                                "shape": [-1, *(d if isinstance(d, int) else -1 for d in value.shape[1:])],
                            }
                            for value in server.inputs
                        ],
                    }
                    self._send(200, json.dumps(meta).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                behaviour = server.behaviour
                self.path = self.path.split("?", 1)[0]  # ?copy=N names the same model as another suspect
                if behaviour.token and self.headers.get("Authorization") != f"Bearer {behaviour.token}":
                    self._send(401, b'{"error": "unauthorized"}')
                    return
                with behaviour.lock:
                    behaviour.requests += 1
                    count = behaviour.requests
                    now = time.monotonic()
                    limited = bool(behaviour.rate_limit) and now < behaviour.next_allowed
                    if limited:
                        behaviour.rejected += 1
                    elif behaviour.rate_limit:
                        behaviour.next_allowed = now + 1.0 / behaviour.rate_limit
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if limited:
                    wait = f"{max(behaviour.next_allowed - time.monotonic(), 0.0):.3f}"
                    self.send_response(429)
                    self.send_header("Retry-After", wait)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                if behaviour.fail_every and count % behaviour.fail_every == 0:
                    self._send(behaviour.fail_status, b'{"error": "injected failure"}')
                    return
                if behaviour.not_json:
                    self._send(200, b"<html>oops</html>", "text/html")
                    return
                if self.path == "/predict":
                    instances = body["instances"]
                    if len(server.inputs) > 1:  # named instances, one object per point
                        fed = feeds({key: [instance[key] for instance in instances] for key in instances[0]})
                    else:
                        fed = {server.input.name: np.asarray(instances, dtype=np.float32)}
                    with behaviour.lock:
                        behaviour.answered_points += len(instances)
                    scores = server.session.run(None, fed)[0]
                    labels = behaviour.answer == "labels" or (behaviour.answer == "alternate" and count % 2 == 0)
                    predictions = scores.argmax(1).tolist() if labels else scores.tolist()
                    self._send(200, json.dumps({"predictions": predictions}).encode())
                elif self.path == f"/v2/models/{server.name}/infer":
                    tensors = {t["name"]: np.asarray(t["data"]).reshape(t["shape"]) for t in body["inputs"]}
                    server.fed.append({t["name"]: (t["datatype"], t["shape"]) for t in body["inputs"]})
                    fed = (
                        feeds(tensors)
                        if len(server.inputs) > 1
                        else {server.input.name: next(iter(tensors.values())).astype(np.float32)}
                    )
                    with behaviour.lock:
                        behaviour.answered_points += len(next(iter(tensors.values())))
                    scores = server.session.run(None, fed)[0]
                    outputs = [
                        {
                            "name": "logits",
                            "datatype": "FP32",
                            "shape": list(scores.shape),
                            "data": scores.reshape(-1).tolist(),
                        }
                    ]
                    if behaviour.answer == "labels":
                        labels = scores.argmax(1)
                        outputs.append(
                            {"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": labels.tolist()}
                        )
                    self._send(200, json.dumps({"model_name": server.name, "outputs": outputs}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> PredictionServer:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
