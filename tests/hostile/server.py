"""A hostile prediction API on 127.0.0.1: drips its answers, redirects, asks to wait, lies in its JSON.

Each ``Hostile`` says how the server answers every request; ``seen`` records what reached it (method,
path, headers), so a test can prove what a client did or did not send.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP_LIMIT_SECONDS = 30.0
"""A dripping answer stops by itself after this long (the test process must end even if a client hangs)."""


@dataclass
class Hostile:
    mode: str = "json"
    """json (``body``), drip-status, drip-body, retry-after, redirect (``/old…`` to ``location``, the rest
    answered with ``body``)."""
    body: Any = None
    status: int = 200
    interval: float = 0.2
    location: str = ""
    retry_after: str = "60"
    redirect_status: int = 302
    metadata: Any = None
    """The GET answer (OIP model metadata); None: 404."""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class HostileServer:
    def __init__(self, hostile: Hostile) -> None:
        self.hostile = hostile

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with hostile.lock:
                    hostile.seen.append((self.command, self.path, dict(self.headers.items())))

            def _drip(self, data: bytes) -> None:
                ends = time.monotonic() + DRIP_LIMIT_SECONDS
                try:
                    for byte in data:
                        if time.monotonic() > ends:
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(hostile.interval)
                except OSError:  # the client hung up: what a deadline should do
                    return

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._record()
                if hostile.metadata is None:
                    self._json(404, {"error": "not found"})
                else:
                    self._json(200, hostile.metadata)

            def do_POST(self) -> None:
                self._record()
                mode = hostile.mode
                if mode == "drip-status":
                    self._drip(b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * 10_000 + b"\r\n\r\n")
                elif mode == "drip-body":
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.flush()
                    self._drip(b"[" * 100_000)
                elif mode == "retry-after":
                    self._json(503, {"error": "busy"}, {"Retry-After": hostile.retry_after})
                elif mode == "redirect" and self.path.startswith("/old"):
                    self._json(hostile.redirect_status, {}, {"Location": hostile.location})
                else:
                    self._json(hostile.status, hostile.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
