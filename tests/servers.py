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
        self.server.owner._connection_opened(self.request)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.owner._connection_closed(self.request)

    def do_GET(self):
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        owner._enter(path, self.headers)
        try:
            if owner.latency:
                owner.stopping.wait(owner.latency)  # the server thread waits, not the test
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
        self.stopping = threading.Event()  # set by stop(): latency and handlers' waits end
        self._lock = threading.Lock()
        # Kept-alive connections and their threads, so stop() can end them: closing the
        # listening socket alone left them blocked in the next recv, into later tests.
        self._open_connections: Dict[socket.socket, threading.Thread] = {}
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

    def _connection_opened(self, sock: socket.socket):
        with self._lock:
            self.connections += 1
            self._open_connections[sock] = threading.current_thread()

    def _connection_closed(self, sock: socket.socket):
        with self._lock:
            self._open_connections.pop(sock, None)

    def _enter(self, path: str, headers):
        with self._lock:
            self.hits[path] += 1
            self.request_headers.setdefault(path, []).append(dict(headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self):
        with self._lock:
            self.in_flight -= 1

    def stop(self, join_timeout_s: float = 5.0):
        """Stop listening, end every open connection and wait (bounded) for their threads."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._open_connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a thread blocked in recv returns at once
            except OSError:
                pass
        deadline = time.monotonic() + join_timeout_s
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


def free_port_refusing_connections() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
