"""HTTP servers the tests start on 127.0.0.1: real sockets, keep-alive, settable latency.

`ImageServer` serves registered bodies and custom handlers, and counts what it saw (hits per path,
connections, most requests at once) so tests assert on real traffic, not on mocks.
"""
from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real image host
    server: "_Server"

    def log_message(self, *args):  # keep pytest output readable
        pass

    def setup(self):
        super().setup()
        self.server.owner._count_connection()

    def do_GET(self):
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        owner._enter(path, self.headers)
        try:
            if owner.latency:
                time.sleep(owner.latency)  # the server thread sleeps, not the test
            handler = owner.handlers.get(path)
            if handler is not None:
                handler(self)
                return
            route = owner.routes.get(path)
            if route is None:
                self._send(404, b"not found", "text/plain")
                return
            status, body, content_type, headers = route
            self._send(status, body, content_type, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            owner._leave()

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict] = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ImageServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with a free port."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.routes: Dict[str, Tuple[int, bytes, str, dict]] = {}
        self.handlers: Dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.hits: Counter = Counter()
        self.request_headers: Dict[str, list] = {}
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        # shutdown() waits up to one poll interval; the default 0.5 s adds up over a test run.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, content_type: str = "image/png", status: int = 200,
            headers: Optional[dict] = None) -> str:
        self.routes[path] = (status, body, content_type, headers or {})
        return self.url(path)

    def add_handler(self, path: str, handler: Callable[[BaseHTTPRequestHandler], None]) -> str:
        self.handlers[path] = handler
        return self.url(path)

    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def _count_connection(self):
        with self._lock:
            self.connections += 1

    def _enter(self, path: str, headers):
        with self._lock:
            self.hits[path] += 1
            self.request_headers.setdefault(path, []).append(dict(headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self):
        with self._lock:
            self.in_flight -= 1

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


def free_port_refusing_connections() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
