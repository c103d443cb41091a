"""The curl transport: libcurl (through pycurl) driven from one worker thread.

PyQt5's Qt 5.15 is built for OpenSSL 1.1 and cannot load OpenSSL 3, so on current Linux QNAM has
no TLS at all. pycurl's wheels carry libcurl with its own OpenSSL 3 and nghttp2, so TLS, HTTP/2
(by ALPN, or h2c with prior knowledge) and connection reuse all run in C, outside the GIL. It
replaced httpx: for 200 photos over https (HTTP/2, 100 ms latency, no decoding) httpx's
pure-Python HTTP/2 took 0.85 s of CPU and 0.95 s, holding the GIL the GUI thread needs (GUI stalls
of 40-70 ms in a gallery); libcurl took 0.21 s of CPU and 0.35 s.

One thread drives one multi handle through libcurl's socket API: libcurl says which sockets to
watch and when its next timeout falls, and the thread waits for them in a selector, together with
a socketpair the GUI thread writes a byte to when it hands over work. The multi handle, the easy
handles and their connections are touched only on that thread.

Events cross to the GUI thread by queued signals of a small object apart from the transport
(`_WorkerSignals`, which can outlive it: close() does not wait for the worker to end); the
transport re-emits them as the public `Transport` signals there. That hop is what lets `abort`
promise that nothing more arrives for an id: a result already queued when the GUI thread aborts
is dropped on arrival.
"""
from __future__ import annotations

import atexit
import collections
import os
import re
import selectors
import socket
import ssl
import threading
import time
from typing import Deque, Dict, Optional, Set, Tuple
from urllib.parse import urlsplit

import pycurl
from PyQt5.QtCore import QObject, QUrl, pyqtSignal

from ..units import format_bytes, quote_server_words
from .base import (INSECURE_REDIRECT_MESSAGE, TOO_MANY_REDIRECTS_MESSAGE,
                   ErrorKind, TransferError, TransferRequest, TransferResult, Transport, TransportOptions,
                   TurnBudget, followable_redirect, http_status_error, kept_cache_control, kept_header,
                   redirect_without_location_error, too_large_error, unfollowed_redirect_error)
from .proxy import environment_proxies, proxy_for_url

# A fast download delivers a chunk every few microseconds, and each progress event costs the GUI
# thread a chain of slot calls. At most one per transfer per 50 ms (plus the final count) keeps a
# bar moving smoothly, as the Qt transport's 50 ms poll does. A size step as well (one per
# 64 KiB) was five events per photo: over HTTP/2, 64 streams' worth arriving together.
PROGRESS_MIN_INTERVAL_S = 0.05
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SHUTDOWN_WAIT_S = 2.0  # how long the interpreter's exit waits for workers still ending
_CLOSE_WAIT_S = 0.1  # how long close() waits for its worker on the GUI thread
# CURLOPT_SUPPRESS_CONNECT_HEADERS (libcurl 7.54): without it a proxy's "200 Connection
# established" reaches the header callback as if it were the image's response. pycurl has no
# name for it.
_SUPPRESS_CONNECT_HEADERS = getattr(pycurl, "SUPPRESS_CONNECT_HEADERS", 265)
# libcurl's wording around OpenSSL's verify message, which is the part a person needs: "SSL
# certificate problem: self-signed certificate" (older) or "SSL certificate OpenSSL verify result:
# self-signed certificate (18)" (8.x).
_CERTIFICATE_PROBLEM = re.compile(
    r"^SSL certificate (?:problem|OpenSSL verify result): (?P<detail>.*?)(?: \(\d+\))?$")


class _Abandoned(Exception):
    """Raised on the worker thread to end a transfer with a prepared TransferError."""

    def __init__(self, error: TransferError):
        super().__init__(error.message)
        self.error = error


class _Transfer:
    """One request on the worker thread: the easy handle of its current hop and what arrived."""

    def __init__(self, request: TransferRequest, transport: "CurlTransport"):
        self.request = request
        self.transport = transport
        self.url = request.url
        self.redirects = 0
        self.handle: Optional[pycurl.Curl] = None
        self.new_hop()

    def new_hop(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: Dict[str, str] = {}
        self.headers_complete = False  # the final answer's blank line came
        self.redirect_to = ""
        self.redirect_body_bytes = 0
        self.total = -1
        # One growing buffer, not a list of libcurl's pieces: a server sending its body a byte
        # at a time made each piece a Python object of its own (+402 MB for a 50 MB cap).
        self.body = bytearray()
        self.received = self.reported = 0
        self.reported_at = time.monotonic()
        # Set when a callback ends the transfer on purpose (an error status, the byte cap);
        # libcurl then reports a write error, and this is the reason that counts.
        self.error: Optional[TransferError] = None

    # -- libcurl callbacks (worker thread) --------------------------------------------------
    def on_header(self, line: bytes):
        if line.startswith(b"HTTP/"):
            # A new response begins: an interim 1xx, a redirect hop's, or the final one.
            parts = line.decode("latin-1").split(None, 2)
            code = parts[1] if len(parts) > 1 else ""
            self.status = int(code) if code.isascii() and code.isdigit() else 0
            self.reason = parts[2].strip() if len(parts) > 2 else ""
            self.headers = {}
            return None
        if line in (b"\r\n", b"\n"):
            if self.status >= 200:
                self.headers_complete = True
                return self._on_headers_complete()
            return None
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        earlier = self.headers.get(name)
        if earlier is not None and name in _LIST_FIELDS:
            # One list sent in parts (RFC 9110 5.3): a second Cache-Control line must not hide a
            # no-store in the first. A single-value field sent twice (a doubled Location) keeps
            # its last value: joined, it was a URL no server has.
            value = f"{earlier}, {value}"
        self.headers[name] = value
        return None

    def _on_headers_complete(self):
        request = self.request
        location = self.headers.get("location", "")
        if self.status in _REDIRECT_STATUSES and location:
            self.redirect_to = location  # followed when this hop ends; its body is dropped
            return None
        self.total = _content_length(self.headers.get("content-length", ""))
        self.transport.worker_signals.started.emit(request.request_id, self.status, self.total)
        if self.status in _REDIRECT_STATUSES:  # and no Location: as the Qt transport says it
            self.error = redirect_without_location_error(self.status)
            return 0
        if self.status >= 300 and self.status != 304:
            self.error = http_status_error(self.status, self.reason,
                                           self.headers.get("retry-after", ""))
            return 0  # any count but the line's length ends the transfer
        if self.total > request.max_response_bytes:
            self.error = too_large_error(request.max_response_bytes, self.total)
            return 0
        return None

    def on_body(self, chunk: bytes):
        if self.redirect_to:
            # Dropped, but counted: a redirect with an endless body was read at full speed
            # until the loader's timeout, the byte cap never seeing it.
            self.redirect_body_bytes += len(chunk)
            if self.redirect_body_bytes > self.request.max_response_bytes:
                self.error = TransferError(ErrorKind.TOO_LARGE, "redirect too large (over "
                                           f"{format_bytes(self.request.max_response_bytes)})")
                return 0
            return None
        self.received += len(chunk)
        if self.received > self.request.max_response_bytes:
            self.error = too_large_error(self.request.max_response_bytes)
            return 0
        self.body += chunk
        now = time.monotonic()
        if now - self.reported_at >= PROGRESS_MIN_INTERVAL_S:
            self.transport.worker_signals.progress.emit(self.request.request_id, self.received,
                                                    self.total)
            self.reported, self.reported_at = self.received, now
        return None

    # -- the end of a hop (worker thread) ---------------------------------------------------
    def next_hop_url(self) -> str:
        """Where the redirect just received leads, by the rules of Qt's NoLessSafeRedirectPolicy
        with setMaximumRedirectsAllowed: exactly max_redirects hops are followed, one more fails."""
        if self.redirects >= self.request.max_redirects:
            raise _Abandoned(TransferError(ErrorKind.BROKEN_REDIRECT, TOO_MANY_REDIRECTS_MESSAGE))
        # Percent-encoded (and the host in ACE) the way the loader hands over every first URL:
        # libcurl takes ASCII only, and a Location header may carry raw UTF-8.
        location = self.redirect_to.encode("latin-1")
        try:
            location_text = location.decode("utf-8")
        except UnicodeDecodeError:
            location_text = self.redirect_to
        resolved = QUrl(self.url).resolved(QUrl(location_text))
        target = resolved.toString(QUrl.FullyEncoded)
        scheme = urlsplit(target).scheme.lower()
        if not followable_redirect(resolved, scheme):
            raise _Abandoned(unfollowed_redirect_error(resolved, scheme))
        if self.url.lower().startswith("https:") and scheme == "http":
            raise _Abandoned(TransferError(ErrorKind.REDIRECT, INSECURE_REDIRECT_MESSAGE))
        return target

    def result(self) -> TransferResult:
        request = self.request
        if self.received != self.reported or self.received == 0:
            # The last count always arrives, so the loader and the tile see the full size.
            self.transport.worker_signals.progress.emit(request.request_id, self.received, self.total)
        headers = self.headers
        http_version = self.handle.getinfo(pycurl.INFO_HTTP_VERSION)
        return TransferResult(
            request.request_id, request.url, bytes(self.body), self.status,
            content_type=kept_header(headers.get("content-type", "")),
            content_encoding=kept_header(headers.get("content-encoding", "")),
            etag=kept_header(headers.get("etag", "")),
            last_modified=kept_header(headers.get("last-modified", "")),
            cache_control=kept_cache_control(headers.get("cache-control", "")),
            http2_used=http_version == pycurl.CURL_HTTP_VERSION_2_0,
            final_url=self.url if self.url != request.url else "",
            not_modified=self.status == 304)

    def failure(self, error: TransferError) -> TransferResult:
        return TransferResult(self.request.request_id, self.request.url,
                              http_status=error.http_status or self.status, error=error)


class _WorkerSignals(QObject):
    """What the worker thread tells the GUI thread (queued, since the worker emits them).

    An object apart from the transport, which the worker keeps until it ends: close() does not
    wait for the worker (libcurl's DNS thread can hold it for seconds), so the transport may be
    deleted first, and Qt drops a deleted receiver's connections, so a late word goes nowhere.
    """

    started = pyqtSignal(int, int, "qlonglong")
    progress = pyqtSignal(int, "qlonglong", "qlonglong")
    finished = pyqtSignal(object)


# Workers still running, and their transports, for the exit hook: the interpreter must not tear
# PyQt down under one.
_running_workers: Dict[threading.Thread, "CurlTransport"] = {}


@atexit.register
def _let_workers_end_at_exit() -> None:
    # Registered after PyQt's own exit hook, so it runs first. A transport nobody closed (a
    # script that ends without quitting an application) is told to close here: its worker
    # would otherwise wait for commands, and exit for the whole wait.
    deadline = time.monotonic() + _SHUTDOWN_WAIT_S
    running = list(_running_workers.items())
    for _, transport in running:
        transport._send("close", None)
    for thread, _ in running:
        if thread.is_alive():  # (listed before it started: one that never did has nothing to end)
            thread.join(max(0.0, deadline - time.monotonic()))


class CurlTransport(Transport):
    """libcurl transport for https and h2c in `auto` (and for anything when forced).

    Thread: created on and called from the GUI thread; transfers run on the transport's own
    thread, started on the first `start`; signals arrive on the GUI thread.
    """

    def __init__(self, options: TransportOptions = TransportOptions(),
                 parent: Optional[QObject] = None):
        super().__init__(parent)
        self._options = options
        self._live: Set[int] = set()  # GUI thread only
        self._closed = False
        # Read once, when the transport is made, as Qt reads its proxy settings.
        self.proxies = environment_proxies()
        self._thread: Optional[threading.Thread] = None
        # GUI thread -> worker: ("start", request) / ("abort", id) / ("close", None), and a byte
        # on the socketpair to wake the worker's selector.
        self._commands: Deque[Tuple[str, object]] = collections.deque()
        self._wake_reader: Optional[socket.socket] = None
        self._wake_writer: Optional[socket.socket] = None
        # Over HTTP/2 dozens of transfers finish together; handing them all over in one go
        # (each starting the next request) stopped the GUI for 30-40 ms.
        self._finished_results = TurnBudget(self._hand_over, self)
        # No parent, so deleting the transport does not delete it; the worker reaches it
        # through its reference to this object's Python side.
        self.worker_signals = _WorkerSignals()
        self.worker_signals.started.connect(self._relay_started)
        self.worker_signals.progress.connect(self._relay_progress)
        self.worker_signals.finished.connect(self._finished_results.offer)

    # -- Transport interface (GUI thread) --------------------------------------------------
    def start(self, request: TransferRequest) -> None:
        if self._closed:
            raise RuntimeError("CurlTransport used after close()")
        self._ensure_thread()
        self._live.add(request.request_id)
        self._send("start", request)

    def abort(self, request_id: int) -> None:
        if request_id not in self._live:
            return
        self._live.discard(request_id)
        self._send("abort", request_id)

    def in_flight(self) -> int:
        return len(self._live)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._live.clear()
        self._finished_results.clear()
        if self._thread is None:
            return
        # Waited for briefly (it ends in a few ms, its connections closed), not until it ends:
        # in libcurl's cleanup it waits for its DNS lookups, and a slow one held the GUI thread
        # for 2 s at every transport change and at quit. Left running, it ends on its own and
        # closes its wake-up pipe; the exit hook above waits for it, bounded.
        self._send("close", None)
        self._thread.join(_CLOSE_WAIT_S)

    @property
    def worker_thread(self) -> Optional[threading.Thread]:
        return self._thread

    def _send(self, command: str, argument) -> None:
        self._commands.append((command, argument))
        try:
            self._wake_writer.send(b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already; the worker drains every command
        except OSError:
            pass  # the worker has ended (it closed the pipe): nothing is listening

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._thread = threading.Thread(target=self._run_worker, name="imagegallery-curl",
                                        daemon=True)
        # Listed before it starts, on this thread: listed by itself, a worker started just
        # before exit could be missed by the exit hook, and PyQt torn down under it.
        _running_workers[self._thread] = self
        self._thread.start()

    def _run_worker(self) -> None:
        # Made on its own thread: the multi handle is never touched anywhere else.
        try:
            _Worker(self).run()
        finally:
            self._wake_reader.close()
            self._wake_writer.close()
            _running_workers.pop(threading.current_thread(), None)

    # -- relays (GUI thread) ---------------------------------------------------------------
    def _relay_started(self, request_id: int, status: int, total: int) -> None:
        if request_id in self._live:
            self.responseStarted.emit(request_id, status, total)

    def _relay_progress(self, request_id: int, received: int, total: int) -> None:
        if request_id in self._live:
            self.progress.emit(request_id, received, total)

    def _hand_over(self, result: TransferResult) -> None:
        if result.request_id in self._live:  # else aborted before or while it waited
            self._live.discard(result.request_id)
            self.finished.emit(result)


class _Worker:
    """The worker thread's side: one multi handle, its sockets and timer, and the transfers."""

    def __init__(self, transport: CurlTransport):
        self.transport = transport
        self.options = transport._options
        self.transfers: Dict[int, _Transfer] = {}
        self.by_handle: Dict[pycurl.Curl, _Transfer] = {}
        self.selector = selectors.DefaultSelector()
        self.timer_deadline: Optional[float] = None
        self.trust: Optional[Dict[int, object]] = None  # CA options, read at the first https hop
        self.trust_error: Optional[TransferError] = None
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        # The loader caps requests in flight per host already; this keeps libcurl from opening
        # more connections than that cap while HTTP/2 is still being negotiated. Through a
        # proxy libcurl counts the proxy as the host, and every origin would share its six:
        # there, no cap of libcurl's (0), the loader's per origin only.
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS,
                          0 if transport.proxies else max(1, self.options.max_connections_per_host))
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)

    def run(self) -> None:
        wake = self.transport._wake_reader
        self.selector.register(wake, selectors.EVENT_READ, None)
        try:
            while self._take_commands(wake):
                try:
                    self._wait_and_drive(wake)
                except pycurl.error as failure:
                    # libcurl itself failed (out of memory, say): end what was running with the
                    # reason and keep the thread, or every later https tile would wait for its
                    # timeout.
                    for transfer in list(self.transfers.values()):
                        self._finish(transfer, transfer.failure(
                            TransferError(ErrorKind.OTHER, f"network error ({failure})")))
                self._collect_finished()
        finally:
            for transfer in list(self.transfers.values()):
                self._remove(transfer)
            self.multi.close()
            self.selector.close()

    def _wait_and_drive(self, wake: socket.socket) -> None:
        """Wait for a socket libcurl watches, its timer or a wake-up; let libcurl act on it."""
        timeout = None
        if self.timer_deadline is not None:
            timeout = max(0.0, self.timer_deadline - time.monotonic())
        for key, mask in self.selector.select(timeout):
            if key.fileobj is wake:
                continue
            flags = ((pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0)
                     | (pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0))
            self.multi.socket_action(key.fd, flags)
        if self.timer_deadline is not None and time.monotonic() >= self.timer_deadline:
            self.timer_deadline = None
            self.multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)

    # -- libcurl's socket and timer callbacks ------------------------------------------------
    def _on_socket(self, event: int, fd: int, multi, socket_data) -> None:
        if event == pycurl.POLL_REMOVE:
            try:
                self.selector.unregister(fd)
            except KeyError:
                pass
            return
        mask = ((selectors.EVENT_READ if event & pycurl.POLL_IN else 0)
                | (selectors.EVENT_WRITE if event & pycurl.POLL_OUT else 0))
        try:
            self.selector.modify(fd, mask)
        except KeyError:
            self.selector.register(fd, mask)

    def _on_timer(self, timeout_ms: int) -> None:
        self.timer_deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    # -- commands from the GUI thread -------------------------------------------------------
    def _take_commands(self, wake: socket.socket) -> bool:
        """Run what the GUI thread asked for; False once it asked to close."""
        try:
            while wake.recv(4096):
                pass
        except BlockingIOError:
            pass
        commands = self.transport._commands
        while commands:
            command, argument = commands.popleft()
            if command == "start":
                self._start(_Transfer(argument, self.transport))
            elif command == "abort":
                transfer = self.transfers.get(argument)
                if transfer is not None:
                    self._remove(transfer)
            else:
                return False
        return True

    def _start(self, transfer: _Transfer) -> None:
        self.transfers[transfer.request.request_id] = transfer
        try:
            transfer.handle = self._handle_for(transfer)
            self.by_handle[transfer.handle] = transfer
            self.multi.add_handle(transfer.handle)
        except _Abandoned as abandoned:
            self._finish(transfer, transfer.failure(abandoned.error))
        except (pycurl.error, UnicodeError, ValueError) as refused:
            # An option libcurl rejects must cost this tile, not the thread every transfer runs on.
            self._finish(transfer, transfer.failure(TransferError(
                ErrorKind.PROTOCOL,
                f"invalid URL ({quote_server_words(str(refused), MAX_LIBCURL_TEXT_CHARS)})")))

    def _handle_for(self, transfer: _Transfer) -> pycurl.Curl:
        request, url = transfer.request, transfer.url
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        # Images are compressed already; asking for identity (and not setting libcurl's
        # ACCEPT_ENCODING, which would inflate without a bound) leaves a compressed body to the
        # decode stage, which inflates it under the byte cap.
        headers = ["Accept-Encoding: identity", "Accept: image/*,*/*;q=0.5",
                   f"Priority: {request.urgency.priority_header}"]
        if request.if_none_match:
            headers.append(f"If-None-Match: {request.if_none_match}")
        if request.if_modified_since:
            headers.append(f"If-Modified-Since: {request.if_modified_since}")
        # As bytes: a validator may hold Latin-1 bytes 0x80-0xFF (RFC 9110 obs-text), sent back
        # as the server wrote them; pycurl refuses a str that is not ASCII.
        handle.setopt(pycurl.HTTPHEADER, [header.encode("latin-1") for header in headers])
        https = url.lower().startswith("https:")
        if https:
            version = pycurl.CURL_HTTP_VERSION_2TLS  # HTTP/2 where ALPN agrees, else HTTP/1.1
            for option, value in self._trust().items():
                handle.setopt(option, value)
        elif request.http2_cleartext:
            version = pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
        else:
            version = pycurl.CURL_HTTP_VERSION_1_1
        handle.setopt(pycurl.HTTP_VERSION, version)
        # New requests wait for a connection that is still negotiating HTTP/2 instead of each
        # opening its own: one connection per host carries them all.
        handle.setopt(pycurl.PIPEWAIT, 1)
        # The same proxy rules as the Qt transport (proxy.py); "" means straight to the host.
        proxy = proxy_for_url(url, self.transport.proxies)
        handle.setopt(pycurl.PROXY, proxy or "")
        if proxy:
            # proxy.py has applied NO_PROXY already; libcurl would apply it again by its own
            # rules (it reads CIDR blocks, urllib does not) and send a URL the other way.
            handle.setopt(pycurl.NOPROXY, "")
        handle.setopt(_SUPPRESS_CONNECT_HEADERS, 1)
        handle.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        handle.setopt(pycurl.WRITEFUNCTION, transfer.on_body)
        return handle

    def _trust(self) -> Dict[int, object]:
        """The CA options for https: the system store, SSL_CERT_FILE, plus options.ca_file."""
        if self.trust_error is not None:
            raise _Abandoned(self.trust_error)
        if self.trust is None:
            try:
                self.trust = ca_options(self.options.ca_file)
            except OSError as exc:
                self.trust_error = TransferError(
                    ErrorKind.TLS, "certificate verify failed: cannot read CA file "
                    f"({quote_server_words(str(exc), MAX_LIBCURL_TEXT_CHARS)})")
                raise _Abandoned(self.trust_error) from exc
        return self.trust

    # -- finished transfers -----------------------------------------------------------------
    def _collect_finished(self) -> None:
        while True:
            queued, succeeded, failed = self.multi.info_read()
            for handle in succeeded:
                self._hop_ended(handle, 0, "")
            for handle, code, message in failed:
                self._hop_ended(handle, code, message)
            if not queued:
                return

    def _hop_ended(self, handle: pycurl.Curl, code: int, message: str) -> None:
        transfer = self.by_handle.get(handle)
        if transfer is None:
            return
        if transfer.error is not None:
            self._finish(transfer, transfer.failure(transfer.error))
        elif code != 0:
            via_proxy = proxy_for_url(transfer.url, self.transport.proxies) is not None
            self._finish(transfer, transfer.failure(curl_error(code, message, via_proxy)))
        elif not transfer.headers_complete:
            # libcurl reports success when the server closes inside the headers; it was read
            # as an empty answer, never retried, where Qt says what happened and retries.
            self._finish(transfer, transfer.failure(
                TransferError(ErrorKind.CONNECTION_RESET, "connection closed by server")))
        elif transfer.redirect_to:
            try:
                target = transfer.next_hop_url()
            except _Abandoned as abandoned:
                self._finish(transfer, transfer.failure(abandoned.error))
                return
            self._remove_handle(transfer)
            transfer.url, transfer.redirects = target, transfer.redirects + 1
            transfer.new_hop()
            self._start(transfer)
        else:
            self._finish(transfer, transfer.result())

    def _finish(self, transfer: _Transfer, result: TransferResult) -> None:
        self._remove(transfer)
        self.transport.worker_signals.finished.emit(result)

    def _remove(self, transfer: _Transfer) -> None:
        self.transfers.pop(transfer.request.request_id, None)
        self._remove_handle(transfer)

    def _remove_handle(self, transfer: _Transfer) -> None:
        handle, transfer.handle = transfer.handle, None
        if handle is None:
            return
        self.by_handle.pop(handle, None)
        self.multi.remove_handle(handle)
        handle.close()  # also drops the callbacks, which hold the transfer


def ca_options(ca_file: str = "") -> Dict[int, object]:
    """libcurl's CA options for the system store (SSL_CERT_FILE / SSL_CERT_DIR as OpenSSL reads
    them) plus `ca_file`. libcurl's own default bundle is the path of the machine that built the
    wheel, so the store is always named. Raises OSError when a named file cannot be read."""
    paths = ssl.get_default_verify_paths()
    options: Dict[int, object] = {}
    if paths.capath and os.path.isdir(paths.capath):
        options[pycurl.CAPATH] = paths.capath
    # A missing or unreadable SSL_CERT_FILE is an error the user sees, not a silent fallback.
    system_file = os.environ.get("SSL_CERT_FILE", "") or paths.cafile or ""
    if not ca_file:
        if system_file:
            with open(system_file, "rb"):
                pass
            # By path, not as a blob: libcurl then parses the bundle once and caches it.
            options[pycurl.CAINFO] = system_file
        return options
    bundles = []
    for path in (system_file, ca_file):
        if path:
            with open(path, "rb") as handle:
                bundles.append(handle.read())
    options[pycurl.CAINFO_BLOB] = b"\n".join(bundles)
    return options


# libcurl's codes, turned into the kinds and messages the Qt transport gives for the same faults.
_SIMPLE_ERRORS = {
    pycurl.E_COULDNT_RESOLVE_PROXY: (ErrorKind.PROXY, "proxy not found"),
    pycurl.E_COULDNT_RESOLVE_HOST: (ErrorKind.HOST_NOT_FOUND, "host not found"),
    pycurl.E_OPERATION_TIMEDOUT: (ErrorKind.TIMEOUT, "connection timed out"),
    pycurl.E_GOT_NOTHING: (ErrorKind.CONNECTION_RESET, "connection closed by server"),
    pycurl.E_PARTIAL_FILE: (ErrorKind.CONNECTION_RESET, "connection closed by server"),
    pycurl.E_SEND_ERROR: (ErrorKind.CONNECTION_RESET, "connection reset"),
    pycurl.E_UNSUPPORTED_PROTOCOL: (ErrorKind.PROTOCOL, "unsupported protocol"),
    pycurl.E_HTTP2: (ErrorKind.PROTOCOL, "protocol error"),
    8: (ErrorKind.PROTOCOL, "protocol error"),  # CURLE_WEIRD_SERVER_REPLY
    92: (ErrorKind.PROTOCOL, "protocol error"),  # CURLE_HTTP2_STREAM
    100: (ErrorKind.TOO_LARGE, "response headers too large"),  # CURLE_TOO_LARGE
}


# The response fields read here whose values are lists.
_LIST_FIELDS = frozenset({"cache-control", "content-encoding"})


def _content_length(text: str) -> int:
    """The header's byte count, or -1 for none or one that is not a plain count (int() also
    takes "1_000" and "+5"); a count past 64 bits could not even be signalled."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return -1
    return int(text)


# libcurl's own error text (up to 256 bytes) can carry a server's words (a certificate's
# subject, a proxy's CONNECT answer) or a long path with line breaks in it. Longer than a
# server's quoted words, since libcurl's own part ("SSL certificate problem: ...") takes room,
# but still a line or two on a tile.
MAX_LIBCURL_TEXT_CHARS = 120


def curl_error(code: int, message: str, via_proxy: bool) -> TransferError:
    message = quote_server_words(message, MAX_LIBCURL_TEXT_CHARS)
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        match = _CERTIFICATE_PROBLEM.match(message)
        detail = match.group("detail") if match else message
        return TransferError(ErrorKind.TLS, f"certificate verify failed: {detail}")
    if code == pycurl.E_SSL_CACERT_BADFILE:
        return TransferError(ErrorKind.TLS,
                             f"certificate verify failed: cannot read CA file ({message})")
    if code in (pycurl.E_SSL_CONNECT_ERROR, pycurl.E_SSL_CERTPROBLEM):
        return TransferError(ErrorKind.TLS, f"TLS handshake failed: {message}")
    if code == pycurl.E_COULDNT_CONNECT:
        if via_proxy:
            return TransferError(ErrorKind.PROXY, "proxy refused the connection")
        return TransferError(ErrorKind.CONNECTION_REFUSED, "connection refused")
    if code == pycurl.E_RECV_ERROR:
        if via_proxy and "CONNECT" in message:
            return TransferError(ErrorKind.PROXY, f"proxy error: {message}")
        # A reset in the middle of a body is a receive error or a short body to libcurl, by
        # timing; Qt reports both as the remote host closing, and a tile's reason should not
        # depend on the transport.
        return TransferError(ErrorKind.CONNECTION_RESET, "connection closed by server")
    if code == pycurl.E_URL_MALFORMAT:
        return TransferError(ErrorKind.PROTOCOL, f"invalid URL ({message})")
    if code in _SIMPLE_ERRORS:
        kind, text = _SIMPLE_ERRORS[code]
        return TransferError(kind, text)
    return TransferError(ErrorKind.OTHER, message or f"network error (curl {code})")
