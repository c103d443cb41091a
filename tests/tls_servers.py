"""HTTP/2-capable servers the tests start on 127.0.0.1: hypercorn with a test CA made at test time.

`AsgiImageServer` serves registered bodies over https (HTTP/2 and HTTP/1.1 by ALPN, or HTTP/1.1
only) or cleartext (HTTP/1.1, h2c upgrade and h2c prior knowledge, as hypercorn accepts them),
and records what it saw: hits per path, the HTTP version of each request, and each distinct
client connection (an HTTP/2 connection carries many requests from one client port).
"""
from __future__ import annotations

import asyncio
import datetime
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config


@dataclass
class CertificateFiles:
    """A CA file the client may trust and a server certificate for 127.0.0.1 issued by it."""

    ca_file: str
    cert_file: str
    key_file: str


def make_test_ca(directory: Path) -> CertificateFiles:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertificateFiles(str(directory / "ca.pem"), str(directory / "server.pem"),
                             str(directory / "server.key"))
    ca.cert_pem.write_to_path(paths.ca_file)
    server.cert_chain_pems[0].write_to_path(paths.cert_file)
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(paths.cert_file, append=True)
    server.private_key_pem.write_to_path(paths.key_file)
    return paths


def make_self_signed(directory: Path) -> CertificateFiles:
    """A certificate for 127.0.0.1 signed by its own key: no CA file vouches for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegallery self-signed test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "self-signed.pem", directory / "self-signed.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return CertificateFiles("", str(cert_file), str(key_file))


class AsgiImageServer:
    """hypercorn in its own thread and asyncio loop, on a free port of 127.0.0.1.

    tls: None for cleartext; alpn: what the server offers on https ("h2", "http/1.1").
    link_bytes_per_second: paces each connection like a slow link, in LINK_PIECE_BYTES pieces;
    the streams of one HTTP/2 connection take turns on it, as they would on a real one.
    max_streams: the HTTP/2 streams a connection may have open at once (the server's setting).
    """

    LINK_PIECE_BYTES = 4096

    def __init__(self, tls: Optional[CertificateFiles] = None,
                 alpn: Sequence[str] = ("h2", "http/1.1"), latency: float = 0.0,
                 link_bytes_per_second: float = 0.0, max_streams: int = 100):
        self.tls = tls
        self.latency = latency
        self.link_bytes_per_second = link_bytes_per_second
        self._link_free_at: Dict[tuple, float] = {}  # connection -> when its link is next free
        self._stalled: set = set()
        self.routes: Dict[str, Tuple[int, bytes, str, dict]] = {}
        self.hits: Counter = Counter()
        self.http_versions: Counter = Counter()
        self.clients: set = set()
        self._lock = threading.Lock()

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        # Listening before hypercorn adopts the socket: a client that connects before the server
        # thread is up waits in the backlog instead of being refused.
        listener.listen(128)
        self.port = listener.getsockname()[1]
        config = Config()
        # hypercorn adopts the descriptor; ours is closed once it has its own copy.
        config.bind = [f"fd://{os.dup(listener.fileno())}"]
        listener.close()
        config.accesslog = None
        config.errorlog = None  # rejected handshakes are the point of some tests
        config.graceful_timeout = 0.2
        config.h2_max_concurrent_streams = max_streams
        if tls is not None:
            config.certfile, config.keyfile = tls.cert_file, tls.key_file
            config.alpn_protocols = list(alpn)
        self._config = config

        self._loop = asyncio.new_event_loop()
        self._stop: Optional[asyncio.Event] = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True,
                                        name=f"hypercorn-{self.port}")
        self._thread.start()
        started.wait(5)

    # -- what tests use --------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, content_type: str = "image/png", status: int = 200,
            headers: Optional[dict] = None) -> str:
        self.routes[path] = (status, body, content_type, headers or {})
        return self.url(path)

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, b"", "text/plain", status, {"location": location})

    def add_stalled(self, path: str, body: bytes, content_type: str = "image/jpeg") -> str:
        """A route that sends its headers and half its body, then nothing until the server stops."""
        self._stalled.add(path)
        return self.add(path, body, content_type)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.clients)

    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def stop(self) -> None:
        """Stop serving. Close clients first: hypercorn waits on a TLS connection a client keeps
        open (asyncio's close_notify wait); after a second the daemon thread is left to exit with
        the process rather than hold the test up."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(1.0)

    # -- the server thread -----------------------------------------------------------------
    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._loop.call_soon(started.set)
        try:
            self._loop.run_until_complete(serve(self._app, self._config,
                                                shutdown_trigger=self._stop.wait))
        finally:
            self._loop.close()

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        client = tuple(scope.get("client") or ())
        with self._lock:
            self.hits[path] += 1
            self.http_versions[scope["http_version"]] += 1
            self.clients.add(client)
        if self.latency:
            await asyncio.sleep(self.latency)  # the server's loop waits, not the test
        status, body, content_type, headers = self.routes.get(
            path, (404, b"not found", "text/plain", {}))
        response_headers: List[Tuple[bytes, bytes]] = [
            (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        response_headers += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        if path in self._stalled:
            await send({"type": "http.response.body", "body": body[:len(body) // 2],
                        "more_body": True})
            await self._stop.wait()
            return
        if not self.link_bytes_per_second:
            await send({"type": "http.response.body", "body": body})
            return
        for offset in range(0, len(body), self.LINK_PIECE_BYTES):
            piece = body[offset:offset + self.LINK_PIECE_BYTES]
            now = time.monotonic()
            start = max(now, self._link_free_at.get(client, now))
            self._link_free_at[client] = start + len(piece) / self.link_bytes_per_second
            await asyncio.sleep(self._link_free_at[client] - now)
            await send({"type": "http.response.body", "body": piece,
                        "more_body": offset + len(piece) < len(body)})


# -- fixtures (test modules import the ones they use) ----------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> CertificateFiles:
    return make_test_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def self_signed_certificate(tmp_path_factory) -> CertificateFiles:
    return make_self_signed(tmp_path_factory.mktemp("self-signed"))


@pytest.fixture
def https_server(test_ca):
    """HTTP/2 and HTTP/1.1 by ALPN, certificate from `test_ca`."""
    server = AsgiImageServer(tls=test_ca)
    yield server
    server.stop()


@pytest.fixture
def h2c_server():
    """Cleartext hypercorn: HTTP/1.1, and HTTP/2 with prior knowledge."""
    server = AsgiImageServer()
    yield server
    server.stop()
