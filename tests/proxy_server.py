"""A small HTTP forward proxy on 127.0.0.1 that records everything it forwards.

Absolute-form requests (`GET http://host:port/path HTTP/1.1`, how clients send plain http through
a proxy) are fetched upstream and answered with a Content-Length, so the client's keep-alive
connection stays usable. `CONNECT host:port` (https through a proxy) opens a blind tunnel.
"""
from __future__ import annotations

import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Tuple
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
               "te", "trailers", "transfer-encoding", "upgrade"}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):
        pass

    def do_GET(self):
        owner = self.server.owner
        parts = urlsplit(self.path)
        if not parts.scheme or not parts.hostname:
            self._reply(400, b"absolute-form URL expected")
            return
        owner._record("GET", self.path)
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            upstream.request("GET", target, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            self._reply(502, f"upstream failed: {exc}".encode())
        finally:
            upstream.close()

    def do_CONNECT(self):
        owner = self.server.owner
        host, _, port = self.path.rpartition(":")
        owner._record("CONNECT", self.path)
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            self._reply(502, b"cannot reach upstream")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self._tunnel(self.connection, upstream)

    @staticmethod
    def _tunnel(client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while True:
                readable, _, failed = select.select(sockets, [], sockets, 10)
                if failed or not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ForwardProxy:
    """Threaded forward proxy on a free port of 127.0.0.1; `forwarded` lists (method, target)."""

    def __init__(self):
        self.forwarded: List[Tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _ProxyHandler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name=f"proxy-{self.port}")
        self._thread.start()

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self.forwarded.append((method, target))

    def count(self, method: str) -> int:
        with self._lock:
            return sum(1 for m, _ in self.forwarded if m == method)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
