"""The one interface every transport implements, and the records that cross it.

The loader owns the queue, the limits on requests in flight, timeouts and retries; a transport
only runs the transfers it is handed, right away. That split keeps "what to fetch next" in one
place and lets the Qt (QNAM) and curl (libcurl) transports behave the same: same progress
signals, same byte cap, same redirect policy, same error kinds and strings.
"""
from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional, Union

from PyQt5.QtCore import QByteArray, QObject, QTimer, QUrl, pyqtSignal

from ..remedy import Remedy
from ..units import format_bytes, quote_server_words

# A response body: bytes, or the Qt transport's QByteArray (kept, not copied; see TransferResult).
Body = Union[bytes, QByteArray]

# GUI-thread time finished transfers may take per event-loop turn before the rest wait for the
# next turn. With 32 connections or HTTP/2, dozens finish together, and handling them back to
# back (reading each body, starting the next request) stopped the GUI for 30-70 ms.
FINISHED_RESULTS_BUDGET_S = 0.004


class ErrorKind(enum.Enum):
    """Why a transfer failed, as the retry policy needs to know it."""

    CONNECTION_REFUSED = "connection refused"
    HOST_NOT_FOUND = "host not found"
    CONNECTION_RESET = "connection reset"
    TIMEOUT = "timed out"
    TLS = "TLS error"
    # This transport cannot speak TLS at all (Qt 5.15 without the OpenSSL it was built for).
    TLS_UNAVAILABLE = "TLS not available"
    HTTP_STATUS = "HTTP error"
    TOO_LARGE = "too large"
    # A redirect this client's policy will not follow: https to http, or to another scheme.
    REDIRECT = "redirect refused"
    # A redirect that leads nowhere: too many hops, no usable Location, an invalid target.
    BROKEN_REDIRECT = "broken redirect"
    # Redirected to https, which this transport cannot speak: the loader hands the URL to one
    # that can (Qt without OpenSSL 3 meets an http URL that moved to https).
    REDIRECT_NEEDS_TLS = "redirect needs TLS"
    # An answer this transport cannot read (Qt and a 103 Early Hints): the loader hands the URL
    # to libcurl, which can.
    UNSUPPORTED_BY_TRANSPORT = "not supported by this transport"
    # Never answered, and safe to send again at once: an HTTP/2 server going away gracefully
    # before the stream began, or a transfer the transport ended because its connection could
    # no longer be trusted. Not a failure of the URL.
    NOT_ANSWERED = "not answered"
    PROXY = "proxy error"
    PROTOCOL = "protocol error"
    LOCAL_FILE = "file error"
    # Ended by the loader to keep the bodies being received within its memory ceiling; the
    # URL itself did nothing wrong (loader.DOWNLOADING_BYTES_CEILING).
    CROWDED = "too much downloading at once"
    OTHER = "network error"


# Kinds worth another try after a pause; the rest will fail the same way again.
TRANSIENT_KINDS = frozenset({
    ErrorKind.CONNECTION_REFUSED, ErrorKind.CONNECTION_RESET, ErrorKind.TIMEOUT,
    ErrorKind.PROTOCOL, ErrorKind.OTHER, ErrorKind.PROXY, ErrorKind.NOT_ANSWERED,
    ErrorKind.CROWDED,
})
# 408 Request Timeout, 425 Too Early, 429 Too Many Requests and the 5xx a proxy or overloaded
# server sends; a 501 or 505 will not change on retry.
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# 404 Not Found and 410 Gone: the server says the image is not there any more, so a thumbnail
# kept from an earlier answer is not shown for it again (the loader forgets it).
GONE_HTTP_STATUSES = frozenset({404, 410})
# Kinds this client's own settings and build decide, whatever the server does next: a limit, the
# redirect policy, what the transport can speak. The same request fails the same way until those
# change, so the model offers no Retry for them (its `retryable` role) and loads them again when
# the limits or the transport change. Every other kind is the server's or the network's to change.
_REMEDY_BY_KIND = {
    ErrorKind.TOO_LARGE: Remedy.LOOSER_LIMITS,  # max_response_bytes
    ErrorKind.REDIRECT: Remedy.NONE,  # the redirect policy: https to http, or a refused scheme
    ErrorKind.TLS_UNAVAILABLE: Remedy.OTHER_TRANSPORT,
    ErrorKind.REDIRECT_NEEDS_TLS: Remedy.OTHER_TRANSPORT,
    ErrorKind.UNSUPPORTED_BY_TRANSPORT: Remedy.OTHER_TRANSPORT,
}


class Urgency(enum.IntEnum):
    """How soon a tile needs its bytes: the loader's priority band, told to the server.

    With dozens of streams on one HTTP/2 connection a server that shares its link evenly finishes
    the first screen's images about when it finishes all of them; told which streams are urgent,
    it can send those first. Qt sends it as the stream's weight (RFC 7540: 256, 128, 1), and both
    transports as an RFC 9218 `priority` header, without `i`: an image is useful only whole, so
    a server should send same-urgency responses one after another rather than interleaved.
    libcurl 8 sends no weights.
    """

    ON_SCREEN = 0
    NEAR_SCREEN = 1
    LATER = 2

    @property
    def priority_header(self) -> str:
        return f"u={1 + 2 * int(self)}"  # u=1, 3 (the default), 5


@dataclass(frozen=True)
class TransferRequest:
    """One transfer to run now. Built by the loader on the GUI thread."""

    request_id: int
    url: str
    max_response_bytes: int
    max_redirects: int
    # Speak HTTP/2 with prior knowledge on cleartext URLs (h2c); opt-in because an HTTP/1.1-only
    # server then hangs until a timeout.
    http2_cleartext: bool = False
    # Conditional request headers for revalidating a cached thumbnail.
    if_none_match: str = ""
    if_modified_since: str = ""
    urgency: Urgency = Urgency.NEAR_SCREEN


@dataclass(frozen=True)
class TransferError:
    kind: ErrorKind
    message: str  # what a person reads on the tile: "HTTP 404 Not Found", "connection refused"
    http_status: int = 0
    retry_after_s: Optional[float] = None

    @property
    def transient(self) -> bool:
        if self.kind is ErrorKind.HTTP_STATUS:
            return self.http_status in TRANSIENT_HTTP_STATUSES
        return self.kind in TRANSIENT_KINDS

    @property
    def says_gone(self) -> bool:
        return self.kind is ErrorKind.HTTP_STATUS and self.http_status in GONE_HTTP_STATUSES

    @property
    def remedy(self) -> Remedy:
        """What may make the same request go otherwise: RETRY unless this client decided it."""
        return _REMEDY_BY_KIND.get(self.kind, Remedy.RETRY)


@dataclass(frozen=True)
class TransferResult:
    """A finished transfer: the body as sent (still content-encoded) or an error.

    `body` is bytes, or a QByteArray from the Qt transport (kept in C++ until a decode worker
    reads it, so the GUI thread never copies it into Python).
    """

    request_id: int
    url: str
    body: Body = b""
    http_status: int = 0
    content_type: str = ""
    # Transports ask for identity; a server that compresses anyway is decoded later, in a worker,
    # with the same byte cap (a gzip bomb must not fill memory).
    content_encoding: str = ""
    etag: str = ""
    last_modified: str = ""
    cache_control: str = ""
    http2_used: bool = False
    # Where the answer came from after redirects ("": the URL asked for). A CDN's HTTP/2 says
    # nothing of the origin that redirected there.
    final_url: str = ""
    not_modified: bool = False  # 304 to a conditional request
    error: Optional[TransferError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def may_be_stored(self) -> bool:
        """False when the server said `Cache-Control: no-store`: nothing made from the response
        may be written to disk (RFC 9111 5.2.2.5); keeping it in memory while in use is allowed."""
        directives = (part.split("=", 1)[0].strip().lower() for part in self.cache_control.split(","))
        return "no-store" not in directives


class Transport(QObject):
    """Runs HTTP(S) transfers it is handed, at once, and reports them by signal.

    Thread: created on and called from the GUI thread; its signals arrive on the GUI thread.
    Contract: every started request ends in exactly one `finished`, except after `abort`, after
    which nothing more is emitted for that id. The byte cap, the redirect limit and the refusal of
    https-to-http redirects are the transport's to enforce; timeouts are the loader's (it aborts).
    """

    # request_id, http status, Content-Length or -1: the server answered (first byte arrived).
    responseStarted = pyqtSignal(int, int, "qlonglong")
    # request_id, bytes received so far, total or -1
    progress = pyqtSignal(int, "qlonglong", "qlonglong")
    # TransferResult
    finished = pyqtSignal(object)

    def start(self, request: TransferRequest) -> None:
        raise NotImplementedError

    def abort(self, request_id: int) -> None:
        raise NotImplementedError

    def in_flight(self) -> int:
        """Transfers started and not yet finished or aborted (the soak test counts these)."""
        raise NotImplementedError

    def close(self) -> None:
        """Abort everything and free resources; the transport is not used again."""
        raise NotImplementedError


class TurnBudget(QObject):
    """Hands finished transfers to `hand_over` on the GUI thread, at most
    FINISHED_RESULTS_BUDGET_S of it per event-loop turn (at least one a turn); the rest wait,
    oldest first, for the next turn. `hand_over` looks each item up again, so one aborted while
    it waited is simply not there any more."""

    def __init__(self, hand_over: Callable[[object], None], parent: Optional[QObject] = None):
        super().__init__(parent)
        self._hand_over = hand_over
        self._waiting: deque = deque()
        self._spent_s = 0.0
        # A timer object, not QTimer.singleShot(0): Qt runs a zero-delay single shot as a posted
        # event, inside the same pass over posted events as the transfers' own, so "the next
        # turn" came before any paint or timer and the budget bounded nothing (W2: three 3 MB
        # replies back to back, an 18 ms stall). A zero-interval timer waits for the next
        # loop iteration.
        self._turn_timer = QTimer(self)
        self._turn_timer.setSingleShot(True)
        self._turn_timer.setInterval(0)
        self._turn_timer.timeout.connect(self._on_turn_end)

    def offer(self, item) -> None:
        if not self._turn_timer.isActive():
            self._turn_timer.start()
        if self._waiting or self._spent_s >= FINISHED_RESULTS_BUDGET_S:
            self._waiting.append(item)
            return
        self._run(item)

    def clear(self) -> None:
        self._waiting.clear()

    def _run(self, item) -> None:
        started = time.perf_counter()
        self._hand_over(item)
        self._spent_s += time.perf_counter() - started

    def _on_turn_end(self) -> None:
        """A new turn, a new budget: hand over what waited, oldest first."""
        self._spent_s = 0.0
        while self._waiting:  # at least one a turn, whatever the budget
            self._run(self._waiting.popleft())
            if self._spent_s >= FINISHED_RESULTS_BUDGET_S:
                break
        if self._waiting:
            self._turn_timer.start()


@dataclass(frozen=True)
class TransportOptions:
    """How a transport connects: shared by both implementations."""

    # Connections a transport opens to one host. A loader sets it from its own limits, which
    # decide how many transfers it hands a host at once; only a transport made alone uses this.
    max_connections_per_host: int = 6
    # Extra PEM bundle trusted in addition to the system store (private CAs, the tests' CA).
    # Empty: SSL_CERT_FILE is honoured if set.
    ca_file: str = ""


# A header value kept with a cache entry (validators, type, encoding, caching rules) that is
# longer than this is dropped, as if not sent: no real server sends one, and a hostile one sent
# 256 KB ETags, which the caches kept per entry beyond their byte budgets (300 MB for 1,000).
MAX_KEPT_HEADER_CHARS = 1024


def kept_header(value: str) -> str:
    return value if len(value) <= MAX_KEPT_HEADER_CHARS else ""


def kept_cache_control(value: str) -> str:
    """Cache-Control as kept_header keeps it, except that one too long to keep forbids storing:
    dropped whole, a no-store inside it was lost and the thumbnail went to disk."""
    return value if len(value) <= MAX_KEPT_HEADER_CHARS else "no-store"


# -- error records both transports build the same way ------------------------------------------

def http_status_error(status: int, reason: str = "", retry_after: str = "") -> TransferError:
    """"HTTP 404 Not Found", with the server's Retry-After kept for the retry policy. `reason`
    as both transports read it, byte for byte (Latin-1)."""
    try:
        # HTTP gives the reason no charset; a server that sends one in UTF-8 means that.
        reason = reason.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    reason = quote_server_words(reason)
    if not reason:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return TransferError(ErrorKind.HTTP_STATUS, f"HTTP {status} {reason}".strip(), status,
                         parse_retry_after(retry_after))


def too_large_error(limit: int, declared: int = -1) -> TransferError:
    if declared >= 0:
        return TransferError(ErrorKind.TOO_LARGE,
                             f"too large ({format_bytes(declared)}, limit {format_bytes(limit)})")
    return TransferError(ErrorKind.TOO_LARGE, f"too large (over {format_bytes(limit)})")


INSECURE_REDIRECT_MESSAGE = "redirect from https to http refused"
TOO_MANY_REDIRECTS_MESSAGE = "too many redirects"
INVALID_REDIRECT_MESSAGE = "redirect to an invalid URL"


def redirect_without_location_error(status: int) -> TransferError:
    return TransferError(ErrorKind.BROKEN_REDIRECT,
                         f"HTTP {status} redirect without a usable Location")


def followable_redirect(target: QUrl, scheme: str) -> bool:
    """A valid http or https URL with a host: the only redirect targets either transport
    follows. `scheme` is the target's, in lower case. (The caller refuses https to http.)"""
    return target.isValid() and scheme in ("http", "https") and bool(target.host())


def unfollowed_redirect_error(target: QUrl, scheme: str) -> TransferError:
    """Why a redirect to `target` (`scheme`: its scheme, in lower case) is not followed, as both
    transports say it: an invalid URL, or an http(s) one without a host, is a broken redirect;
    any other is refused for its scheme."""
    if not target.isValid() or (scheme in ("http", "https") and not target.host()):
        return TransferError(ErrorKind.BROKEN_REDIRECT, INVALID_REDIRECT_MESSAGE)
    return TransferError(ErrorKind.REDIRECT, f"redirect to {quote_server_words(scheme)}: refused")


def parse_retry_after(value: str) -> Optional[float]:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # str.isdigit alone also takes "²", which float refuses
        return float(value)
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # an overlong day or year overflows
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
