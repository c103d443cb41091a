"""The Python transport: httpx on one asyncio loop in one worker thread.

PyQt5's Qt 5.15 is built for OpenSSL 1.1 and cannot load OpenSSL 3, so on current Linux QNAM has
no TLS at all. Python's `ssl` module has, and httpx (HTTP/2 through h2) sits on it. One event loop
in one thread carries every transfer: HTTP/2 multiplexes a host's images over one connection, and
HTTP/1.1 transfers are only sockets waiting, so threads would buy nothing but contention.

Events cross to the GUI thread by queued signals into this object, which re-emits the public
`Transport` signals there. The hop costs one slot call per event, and it is what lets `abort`
promise that nothing more arrives for an id: a result already queued when the GUI thread aborts is
dropped on arrival instead of reaching the loader.
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from typing import Dict, Optional, Set
from urllib.parse import urljoin, urlsplit

import httpx
from PyQt5.QtCore import QObject, pyqtSignal

from .base import (INSECURE_REDIRECT_MESSAGE, TOO_MANY_REDIRECTS_MESSAGE, ErrorKind,
                   TransferError, TransferRequest, TransferResult, Transport, TransportOptions,
                   http_status_error, too_large_error)
from .proxy import proxy_for_url

# A fast local download delivers a chunk every few microseconds; one GUI-thread slot call per
# chunk would keep the GUI thread busy for nothing a person can see. One progress event per
# 64 KiB or per 50 ms, whichever comes first, keeps a bar moving smoothly.
PROGRESS_MIN_BYTES = 64 * 1024
PROGRESS_MIN_INTERVAL_S = 0.05
# Idle connections kept per client. httpx has no per-host cap; the loader already holds requests
# in flight per host at max_connections_per_host, and an HTTP/1.1 connection carries one request
# at a time, so the pool never opens more per host than that. This only bounds idle sockets.
MIN_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_S = 30.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SHUTDOWN_WAIT_S = 2.0


def make_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """The system store (SSL_CERT_FILE / SSL_CERT_DIR as OpenSSL reads them) plus `ca_file`.

    Raises OSError or ssl.SSLError when a named CA file cannot be read.
    """
    context = ssl.create_default_context()
    # OpenSSL reads SSL_CERT_FILE itself when loading the default paths; loading it again by name
    # makes a missing or unreadable file an error the user sees instead of a silent fallback.
    environment_file = os.environ.get("SSL_CERT_FILE", "")
    if environment_file:
        context.load_verify_locations(cafile=environment_file)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class _Abandoned(Exception):
    """Raised inside a transfer to end it with a prepared TransferError."""

    def __init__(self, error: TransferError, status: int = 0):
        super().__init__(error.message)
        self.error = error
        self.status = status


class PythonTransport(Transport):
    """httpx transport for https where Qt has no TLS (and for anything when forced).

    Thread: created on and called from the GUI thread; transfers run on the transport's own
    asyncio thread, started on the first `start`; signals arrive on the GUI thread.
    """

    name = "python"

    # Worker -> GUI thread (queued, since the emitter is the worker thread).
    _startedFromWorker = pyqtSignal(int, int, "qlonglong")
    _progressFromWorker = pyqtSignal(int, "qlonglong", "qlonglong")
    _finishedFromWorker = pyqtSignal(object)

    def __init__(self, options: TransportOptions = TransportOptions(), parent: Optional[QObject] = None):
        super().__init__(parent)
        self._options = options
        self._live: Set[int] = set()  # GUI thread only
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        # Worker-thread state: only touched by coroutines and callbacks on self._loop.
        self._tasks: Dict[int, asyncio.Task] = {}
        self._clients: Dict[str, httpx.AsyncClient] = {}
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._ssl_error: Optional[TransferError] = None
        self._startedFromWorker.connect(self._relay_started)
        self._progressFromWorker.connect(self._relay_progress)
        self._finishedFromWorker.connect(self._relay_finished)

    # -- Transport interface (GUI thread) --------------------------------------------------
    def start(self, request: TransferRequest) -> None:
        if self._closed:
            raise RuntimeError("PythonTransport used after close()")
        self._ensure_loop()
        self._live.add(request.request_id)
        self._loop.call_soon_threadsafe(self._spawn, request)

    def abort(self, request_id: int) -> None:
        if request_id not in self._live:
            return
        self._live.discard(request_id)
        self._loop.call_soon_threadsafe(self._cancel, request_id)

    def in_flight(self) -> int:
        return len(self._live)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._live.clear()
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(_SHUTDOWN_WAIT_S)
        except Exception:  # a stuck close must not hang the app's exit; the thread is a daemon
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_SHUTDOWN_WAIT_S)

    @property
    def worker_thread(self) -> Optional[threading.Thread]:
        return self._thread

    # -- relays (GUI thread) ---------------------------------------------------------------
    def _relay_started(self, request_id: int, status: int, total: int) -> None:
        if request_id in self._live:
            self.responseStarted.emit(request_id, status, total)

    def _relay_progress(self, request_id: int, received: int, total: int) -> None:
        if request_id in self._live:
            self.progress.emit(request_id, received, total)

    def _relay_finished(self, result: TransferResult) -> None:
        if result.request_id in self._live:
            self._live.discard(result.request_id)
            self.finished.emit(result)

    # -- the worker thread -----------------------------------------------------------------
    def _ensure_loop(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="imagegallery-httpx", daemon=True)
        self._thread.start()
        ready.wait()

    def _spawn(self, request: TransferRequest) -> None:
        task = self._loop.create_task(self._run(request))
        self._tasks[request.request_id] = task
        task.add_done_callback(lambda _t, rid=request.request_id: self._tasks.pop(rid, None))

    def _cancel(self, request_id: int) -> None:
        task = self._tasks.pop(request_id, None)
        if task is not None:
            task.cancel()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.aclose()
            except Exception:
                pass

    def _client_for(self, url: str, prior_knowledge_h2: bool) -> httpx.AsyncClient:
        key = "h2c" if prior_knowledge_h2 else "default"
        client = self._clients.get(key)
        if client is not None:
            return client
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self._options.ca_file)
        per_host = max(1, self._options.max_connections_per_host)
        limits = httpx.Limits(max_connections=None,
                              max_keepalive_connections=max(MIN_KEEPALIVE_CONNECTIONS, 4 * per_host),
                              keepalive_expiry=KEEPALIVE_EXPIRY_S)
        client = httpx.AsyncClient(
            # http1=False on cleartext means HTTP/2 with prior knowledge (h2c); on https the
            # default client offers h2 and http/1.1 by ALPN and the server picks.
            http1=not prior_knowledge_h2, http2=True,
            verify=self._ssl_context, limits=limits,
            # The loader owns every timeout (it aborts); httpx's own would race with them.
            timeout=httpx.Timeout(None),
            follow_redirects=False, trust_env=True)
        self._clients[key] = client
        return client

    async def _run(self, request: TransferRequest) -> None:
        try:
            result = await self._transfer(request)
        except asyncio.CancelledError:
            return  # aborted: the GUI thread has forgotten this id already
        except _Abandoned as abandoned:
            result = TransferResult(request.request_id, request.url, http_status=abandoned.status,
                                    error=abandoned.error)
        except Exception as exc:  # httpx, ssl and socket errors of every kind
            result = TransferResult(request.request_id, request.url,
                                    error=_error_for_exception(exc, request.url))
        self._finishedFromWorker.emit(result)

    async def _transfer(self, request: TransferRequest) -> TransferResult:
        try:
            if self._ssl_context is None:
                self._ssl_context = make_ssl_context(self._options.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise _Abandoned(TransferError(
                ErrorKind.TLS, f"certificate verify failed: cannot read CA file ({exc})")) from exc
        headers = {"Accept-Encoding": "identity", "Accept": "image/*,*/*;q=0.5"}
        if request.if_none_match:
            headers["If-None-Match"] = request.if_none_match
        if request.if_modified_since:
            headers["If-Modified-Since"] = request.if_modified_since
        url = request.url
        redirects = 0
        while True:
            cleartext_h2 = request.http2_cleartext and url.startswith("http:")
            client = self._client_for(url, cleartext_h2)
            response = await client.send(client.build_request("GET", url, headers=headers),
                                         stream=True)
            try:
                status = response.status_code
                location = response.headers.get("location", "")
                if status in _REDIRECT_STATUSES and location:
                    url = self._next_hop(request, url, location, redirects, status)
                    redirects += 1
                    continue
                return await self._read_response(request, url, response)
            finally:
                await response.aclose()

    @staticmethod
    def _next_hop(request: TransferRequest, url: str, location: str, redirects: int,
                  status: int) -> str:
        # Same rules as Qt's NoLessSafeRedirectPolicy with setMaximumRedirectsAllowed: exactly
        # max_redirects hops are followed, one more fails.
        if redirects >= request.max_redirects:
            raise _Abandoned(TransferError(ErrorKind.REDIRECT, TOO_MANY_REDIRECTS_MESSAGE), status)
        target = urljoin(url, location)
        scheme = urlsplit(target).scheme.lower()
        if url.lower().startswith("https:") and scheme == "http":
            raise _Abandoned(TransferError(ErrorKind.REDIRECT, INSECURE_REDIRECT_MESSAGE), status)
        if scheme not in ("http", "https"):
            raise _Abandoned(TransferError(ErrorKind.REDIRECT, f"redirect to {scheme}: refused"),
                             status)
        return target

    async def _read_response(self, request: TransferRequest, url: str,
                             response: httpx.Response) -> TransferResult:
        rid = request.request_id
        status = response.status_code
        cap = request.max_response_bytes
        try:
            total = int(response.headers.get("content-length", "-1"))
        except ValueError:
            total = -1
        self._startedFromWorker.emit(rid, status, total)
        if status >= 300 and status != 304:
            reason = response.extensions.get("reason_phrase", b"")
            reason = reason.decode("latin-1") if isinstance(reason, bytes) else str(reason or "")
            raise _Abandoned(http_status_error(status, reason, response.headers.get("retry-after", "")),
                             status)
        if total > cap:
            raise _Abandoned(too_large_error(cap, total), status)
        chunks = []
        received = reported = 0
        reported_at = time.monotonic()
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > cap:
                raise _Abandoned(too_large_error(cap), status)
            chunks.append(chunk)
            now = time.monotonic()
            if received - reported >= PROGRESS_MIN_BYTES or now - reported_at >= PROGRESS_MIN_INTERVAL_S:
                self._progressFromWorker.emit(rid, received, total)
                reported, reported_at = received, now
        if received != reported or received == 0:
            # The last count always arrives, so the loader and the tile see the full size.
            self._progressFromWorker.emit(rid, received, total)
        return TransferResult(
            rid, request.url, b"".join(chunks), status,
            content_type=response.headers.get("content-type", ""),
            content_encoding=response.headers.get("content-encoding", ""),
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
            http2_used=response.http_version == "HTTP/2",
            not_modified=status == 304)


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _error_for_exception(exc: BaseException, url: str) -> TransferError:
    """The same kinds and messages the Qt transport gives for the same failures."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or str(cause)
            return TransferError(ErrorKind.TLS, f"certificate verify failed: {detail}")
        if isinstance(cause, ssl.SSLError):
            detail = cause.reason or str(cause)
            return TransferError(ErrorKind.TLS, f"TLS handshake failed: {detail}")
    via_proxy = proxy_for_url(url) is not None
    if isinstance(exc, httpx.ProxyError):
        return TransferError(ErrorKind.PROXY, f"proxy error: {exc}" if str(exc) else "proxy error")
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            if via_proxy:
                return TransferError(ErrorKind.PROXY, "proxy refused the connection")
            return TransferError(ErrorKind.CONNECTION_REFUSED, "connection refused")
        if isinstance(cause, socket.gaierror):
            if via_proxy:
                return TransferError(ErrorKind.PROXY, "proxy not found")
            return TransferError(ErrorKind.HOST_NOT_FOUND, "host not found")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return TransferError(ErrorKind.PROTOCOL, "unsupported protocol")
    if isinstance(exc, httpx.RemoteProtocolError):
        if "disconnected" in str(exc).lower():
            return TransferError(ErrorKind.CONNECTION_RESET, "connection closed by server")
        return TransferError(ErrorKind.PROTOCOL, "protocol error")
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.ConnectError)):
        return TransferError(ErrorKind.CONNECTION_RESET, "connection reset")
    if isinstance(exc, httpx.TimeoutException):
        return TransferError(ErrorKind.TIMEOUT, "connection timed out")
    if isinstance(exc, httpx.InvalidURL):
        return TransferError(ErrorKind.PROTOCOL, f"invalid URL ({exc})")
    return TransferError(ErrorKind.OTHER, str(exc) or type(exc).__name__)
