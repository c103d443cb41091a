"""A misbehaving HTTP server on 127.0.0.1, written on raw sockets so it can break the protocol.

Each path names a fault; the server counts hits per path and what it managed to send, so tests
assert on real traffic. Faults that stall (never answering, dripping) wait on a stop event, so
`stop()` ends them at once instead of leaving threads behind.
"""
from __future__ import annotations

import gzip
import socket
import socketserver
import struct
import threading
import time
import zlib
from collections import Counter, defaultdict
from typing import Dict, List

GZIP_BOMB_INFLATED = 256 * 1024 * 1024  # five times the default byte cap


def gzip_bomb(inflated: int = GZIP_BOMB_INFLATED) -> bytes:
    """A gzip stream of `inflated` zero bytes (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self):
        owner = self.server.owner
        sock = self.request
        sock.settimeout(10)
        try:
            while not owner.stopping.is_set():
                request = self._read_request(sock)
                if request is None:
                    return
                path = request.split(b" ")[1].decode("latin-1").split("?", 1)[0]
                owner.record(path)
                keep_open = owner.dispatch(path, sock)
                if not keep_open:
                    return
        except OSError:
            pass

    @staticmethod
    def _read_request(sock) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
            if len(data) > 65536:
                return None
        return data.split(b"\r\n", 1)[0]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class FaultServer:
    """Serves good images under /img/<name> and a fault for every other known path."""

    def __init__(self):
        self.images: Dict[str, bytes] = {}
        self.hits: Counter = Counter()
        self.hit_times: Dict[str, List[float]] = defaultdict(list)
        self.sent: Counter = Counter()  # body bytes the server managed to send, per path
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._gzip_bomb = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add_image(self, name: str, body: bytes) -> str:
        self.images[name] = body
        return self.url(f"/img/{name}")

    def record(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1
            self.hit_times[path].append(time.monotonic())

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # -- faults ------------------------------------------------------------------------------
    def dispatch(self, path: str, sock) -> bool:
        """Answer one request; return whether the connection stays usable."""
        if path.startswith("/img/"):
            body = self.images.get(path[5:])
            if body is None:
                return self._respond(sock, 404, b"missing", "text/plain")
            return self._respond(sock, 200, body, "image/png")
        kind = path.strip("/").split("/", 1)[0]
        handler = getattr(self, "_fault_" + kind.replace("-", "_"), None)
        if handler is None:
            return self._respond(sock, 404, b"no such fault", "text/plain")
        return handler(path, sock)

    def _respond(self, sock, status: int, body: bytes, content_type: str, headers=(),
                 reason: str = "") -> bool:
        from http import HTTPStatus

        reason = reason or HTTPStatus(status).phrase
        head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}", *headers, "", ""]
        sock.sendall("\r\n".join(head).encode("latin-1") + body)
        return True

    def _good_body(self) -> bytes:
        return next(iter(self.images.values()))

    def _fault_status404(self, path, sock):
        return self._respond(sock, 404, b"<h1>gone</h1>", "text/html")

    def _fault_flaky500(self, path, sock):
        """500 on the first request, the image afterwards."""
        if self.hits[path] == 1:
            return self._respond(sock, 500, b"oops", "text/plain")
        return self._respond(sock, 200, self._good_body(), "image/png")

    def _fault_retry_after(self, path, sock):
        """503 with Retry-After: 1 on the first request, the image afterwards."""
        if self.hits[path] == 1:
            return self._respond(sock, 503, b"busy", "text/plain", ["Retry-After: 1"])
        return self._respond(sock, 200, self._good_body(), "image/png")

    def _fault_reset(self, path, sock):
        """Promise 100 KB, send 1 KB, then reset the connection (RST, not FIN)."""
        head = ("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 102400\r\n\r\n")
        sock.sendall(head.encode() + self._good_body()[:1024])
        self.sent[path] += 1024
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        return False

    def _fault_cut_headers(self, path, sock):
        """An error status whose headers end with the connection (FIN), no blank line."""
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n")
        return False

    def _fault_drip(self, path, sock):
        """Four bytes a second of a 100 KB body, until the client gives up.

        A byte every 0.25 s stays well inside the tests' 1 s idle timeout, so only the
        too-slow rule can end it; at one a second the two timeouts raced (seen once in CI)."""
        body = self._good_body()
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}"
                     "\r\n\r\n".encode())
        for index in range(len(body)):
            sock.sendall(body[index:index + 1])
            self.sent[path] += 1
            if self.stopping.wait(0.25):
                break
        return False

    def _fault_half(self, path, sock):
        """Send the first half of a 100 KB body, then hold the connection until stopped."""
        body = bytes(102400)
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}"
                     "\r\n\r\n".encode() + body[:len(body) // 2])
        self.sent[path] += len(body) // 2
        self.stopping.wait(60)
        return False

    def _fault_silent(self, path, sock):
        """Accept and read the request, then never answer."""
        self.stopping.wait(60)
        return False

    def _fault_loop(self, path, sock):
        return self._respond(sock, 302, b"", "text/plain", [f"Location: {path}"])

    def _fault_hop(self, path, sock):
        """/hop/N redirects to /hop/N-1 ... /hop/0 serves the image."""
        remaining = int(path.rsplit("/", 1)[1])
        if remaining <= 0:
            return self._respond(sock, 200, self._good_body(), "image/png")
        return self._respond(sock, 302, b"", "text/plain", [f"Location: /hop/{remaining - 1}"])

    def _fault_huge(self, path, sock):
        """Declare 10 GB and keep sending zeros while the client reads."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 10737418240\r\n\r\n")
        return self._stream(path, sock, bytes(64 * 1024), 64 * 1024, until=10737418240)

    def _fault_endless_chunked(self, path, sock):
        """A chunked body of 64 KB chunks that never ends (no length to refuse it by)."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        return self._stream(path, sock, b"%x\r\n" % 65536 + bytes(65536) + b"\r\n", 65536)

    def _stream(self, path, sock, piece: bytes, body_bytes: int, until: float = float("inf")):
        """Send `piece` (`body_bytes` of body each) while the client reads, until stopped."""
        sock.settimeout(5)
        while not self.stopping.is_set() and self.sent[path] < until:
            try:
                sock.sendall(piece)
            except OSError:
                break
            self.sent[path] += body_bytes
        return False

    def _fault_early_hints(self, path, sock):
        """A 103 Early Hints, as CDNs send ahead of the answer, then the image."""
        body = self._good_body()
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return True

    def _fault_early_hints_slow(self, path, sock):
        """A 103 Early Hints, then the answer 0.3 s later: the slow origin a CDN sends hints for.
        /early-hints-slow/<name> answers with the image registered under that name."""
        body = self.images[path.rsplit("/", 1)[1]]
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        if self.stopping.wait(0.3):
            return False
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return True

    def _fault_late_redirect(self, path, sock):
        """A redirect to `self.late_redirect_target`, sent 0.1 s after the request."""
        if self.stopping.wait(0.1):
            return False
        return self._respond(sock, 302, b"", "text/plain", [f"Location: {self.late_redirect_target}"])

    def _fault_twice_located(self, path, sock):
        """A redirect that sends the same Location twice, as misconfigured servers do."""
        target = self.url("/img/" + next(iter(self.images)))
        return self._respond(sock, 302, b"", "text/plain", [f"Location: {target}"] * 2)

    def _fault_busy_with_long_page(self, path, sock):
        """503 with a 60 MB page promised, 64 KB of it sent, then the connection held."""
        sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 62914560\r\n\r\n" + bytes(65536))
        self.stopping.wait(60)
        return False

    def _fault_overlong_length(self, path, sock):
        """A Content-Length past 64 bits, then the image and the end of the connection."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 99999999999999999999999\r\nConnection: close\r\n\r\n"
                     + self._good_body())
        return False

    def _fault_redirect_endless(self, path, sock):
        """A redirect to the image whose own body never ends."""
        sock.sendall(f"HTTP/1.1 302 Found\r\nLocation: {self.url('/img/' + next(iter(self.images)))}"
                     "\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        return self._stream(path, sock, b"%x\r\n" % 65536 + bytes(65536) + b"\r\n", 65536)

    def _fault_bad_location(self, path, sock):
        """A redirect to a URL that cannot be parsed (an IPv6 host left open)."""
        return self._respond(sock, 302, b"", "text/plain", ["Location: http://[::1/x.png"])

    def _fault_to_https(self, path, sock):
        """A redirect to the same image over https (nothing listens there for TLS)."""
        return self._respond(sock, 302, b"", "text/plain",
                             [f"Location: https://127.0.0.1:{self.port}/img/{next(iter(self.images))}"])

    def _fault_gzip_bomb(self, path, sock):
        if self._gzip_bomb is None:
            self._gzip_bomb = gzip_bomb()
        return self._respond(sock, 200, self._gzip_bomb, "image/png", ["Content-Encoding: gzip"])

    def _fault_utf8_reason(self, path, sock):
        sock.sendall("HTTP/1.1 404 Nicht gefunden \u2013 gelöscht\r\nContent-Length: 0\r\n\r\n"
                     .encode("utf-8"))
        return True

    def _fault_two_encodings(self, path, sock):
        """A gzip body whose Content-Encoding is sent twice: gzip, then identity."""
        return self._respond(sock, 200, gzip.compress(self._good_body()), "image/png",
                             ["Content-Encoding: gzip", "Content-Encoding: identity"])

    def _fault_html(self, path, sock):
        return self._respond(sock, 200, b"<!DOCTYPE html><html><body>Sign in</body></html>",
                             "text/html; charset=utf-8")
