"""The loader: one queue with priorities, the limits on work in flight, timeouts and retries.

Per URL the pipeline is
    memory cache -> disk cache (I/O thread) -> encoded bytes cache -> network (transport)
    -> decode (worker pool) -> memory + disk cache -> `thumbnailReady`
and every stage after the first runs off the GUI thread or inside Qt's own event loop. The loader
is keyed by URL, so rows that share a URL share one download. Consumers only say what they want
(the model: `load`, `refetch`, `set_priority`, `cancel`; the image provider: `load_for_provider`,
`forget_waiter`); the loader decides what to
start, hands a transport only what may run now (so timeouts measure real transfers, not time spent
waiting in a queue), and keeps its own reasons for every abort.

Thread: everything here runs on the GUI thread; the worker pools' results come back as posted
events, the transports' as signals.
"""
from __future__ import annotations

import atexit
import enum
import heapq
import itertools
import logging
import random
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from PyQt5 import sip
from PyQt5.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, pyqtSignal, pyqtSlot

from .cache import (CachedThumbnail, DiskThumbnailCache, ThumbnailKey, default_disk_cache_dir,
                    disk_cache_folder, new_encoded_cache, shared_thumbnail_cache)
from .decode import FIT, DecodedThumbnail, ThumbnailSpec, decode_thumbnail, warm_up_decoders
from .limits import LoadLimits
from .remedy import Remedy
from .sandbox_decode import SANDBOX_PROCESSES
from .transport.base import (ErrorKind, TransferError, TransferRequest, TransferResult, Transport,
                             TransportOptions, Urgency)
from .transport.qt import qt_has_tls
from .transport.proxy import environment_proxies
from .transport.select import TransportSet, preload_curl_transport, transport_name_for
from .units import format_bytes, format_seconds
from .url_policy import ParsedImageUrl, parse_image_url
from .workers import PriorityWorkerPool, default_decode_threads

# Priorities are tuples compared in order: (band, position). Visible rows come first, then the
# prefetch margin, then everything else in list order.
VISIBLE = 0
NEAR_VISIBLE = 1
BACKGROUND = 2
# A provider miss (a row on screen whose thumbnail was evicted) outranks everything.
URGENT = (-1, 0)

# How often timeouts are checked while anything is in flight: a quarter of the shortest timeout,
# never busier than every 50 ms.
_MIN_WATCHDOG_MS = 50

# Originals kept for re-decoding at a new size: typical photos (200-500 KB), not the 3-10 MB
# camera originals that would take the whole budget for a handful of images.
ENCODED_ENTRY_MAX_BYTES = 1024 * 1024
# How many times one job is sent again, at once and uncounted, after an answer that never came
# (ErrorKind.NOT_ANSWERED); past that it is an ordinary transient failure, with backoff. An HTTP/2
# server that answers N streams a connection leaves the rest of the 64 sent at once unanswered:
# the last of them wait through 64 / N connections.
MAX_SENT_AGAIN = 10
# file:// reads handed to the local transport at once. It reads on one thread (more parallel reads
# only thrash a disk); the second waits there, so the thread never idles for the GUI thread's next
# turn, and only one read's time counts against the other's timeout.
LOCAL_FILE_READS_IN_FLIGHT = 2
# The request id a decode of an encoded-cache body carries: real requests count from 1.
_FROM_ENCODED_CACHE = 0
# The hint ending what the Qt transport could not finish and libcurl could (a redirect to https
# without TLS, a 103 interim answer): the person reading it most likely chose that transport.
_ANOTHER_TRANSPORT_MAY = "(IMAGEGALLERY_TRANSPORT=qt?)"
# The LoadLimits fields a refusal by limit depends on (Remedy.LOOSER_LIMITS): loosening any may
# let such a row load.
_LIMITS_THAT_REFUSE = ("max_response_bytes", "max_pixels", "max_side", "max_jpeg_scans",
                       "max_jpeg_scan_megapixels", "decoder_memory_bytes")
# Downloaded bodies waiting for a decode thread. Loopback or a fast LAN downloads large JPEGs
# faster than two cores decode them; without this bound every body of a 60-image gallery of
# 3 MB originals waited in memory at once (+190 MB). 32 MB keeps the decoders fed.
DECODE_BACKLOG_BYTES = 32 * 1024 * 1024
# Bodies in memory: still being received (held by the transports) and waiting for a decoder. No
# new transfer starts while those being received add up to the budget, and past the ceiling
# (both kinds counted: a finished body waits for a decoder in the same memory) a transfer is
# ended and queued again. Each body is capped (max_response_bytes), but 64 transfers in flight
# of up to 50 MB each took 2.5 GB from eleven hostile hosts. A host that allows larger bodies
# gets a ceiling of two of them.
DOWNLOADING_BYTES_BUDGET = 256 * 1024 * 1024
DOWNLOADING_BYTES_CEILING = 2 * DOWNLOADING_BYTES_BUDGET
# How many times one job is ended that way and queued again, uncounted as an attempt (it did
# nothing wrong), before it fails: against hosts whose bodies push past the ceiling every time.
MAX_CROWDED_OUT = 10
# A thumbnail write takes about a millisecond; two seconds covers hundreds still queued at quit.
DISK_FLUSH_ON_QUIT_S = 2.0
# Thumbnails wait for the disk until the loader has nothing in progress. They are the memory
# cache's own images (shared, not copied), so holding them costs memory only once the cache has
# evicted them. Once the held images it evicted add up to this many bytes, those go to the disk
# at once and the rest stay held: this is not a cap on the bytes held in all. It is looked at
# each time the bytes held have grown by this much since the last look, not at every write. A
# 1,000-image list at 0 ms latency holds 105 MB of thumbnails; writing them while it loads took
# 0.2 s of CPU from the decoders.
EVICTED_HELD_WRITES_RELEASE_BYTES = 32 * 1024 * 1024
# ...and at most this long, so a list that never settles still fills its disk cache.
HELD_DISK_WRITES_MAX_S = 5.0
# Thumbnails handed to the disk thread and not yet written. While decoders run at full speed the
# disk thread gets little CPU: a 5,000-image list at 0 ms latency left 2,500 writes queued, 260 MB
# of thumbnails the memory cache had already let go. Past this bound only rows on screen or near
# it start downloads; the rest wait for the disk, so memory is bounded by budgets, not list length.
QUEUED_DISK_WRITES_BYTES = 64 * 1024 * 1024
# Thumbnails whose in-memory source the loader last gave a view (see `promise_thumbnail`), held
# so that the memory cache evicting one between the view's asking and its Image's loading
# cannot leave the Image without a picture. Only what the cache evicted costs memory here: at
# most this many thumbnails (256 tiles of 240x140 are 33 MB; of 800x800, 640 MB) and a quarter
# of the memory cache's budget, and only while the cache thrashes. An Image that finds its
# promise gone gets a blank pixel and its thumbnail back through the loader (provider.py).
PROMISED_THUMBNAILS = 256
PROMISED_SHARE_OF_CACHE = 0.25
# How long the loader remembers that a URL was fetched again on purpose (refetch(): the model's
# retry() and reload()), so that older work for it still running cannot put back the older
# picture: far longer than any decode or disk read takes. Forgotten after that, so a long
# session's retries do not accumulate.
REFETCH_MEMORY_S = 120.0


class _Stage(enum.IntEnum):
    """Where a job is; named, so a debugger shows more than a number."""
    DISK_LOOKUP = 0
    QUEUED = 1
    FETCHING = 2
    BACKOFF = 3
    DECODING = 4


_DISK_LOOKUP, _QUEUED, _FETCHING, _BACKOFF, _DECODING = _Stage
# The disk thread's order: a lookup first (a row waits on it), then a touch (a revalidated
# thumbnail's age), then a write.
_IO_LOOKUP, _IO_TOUCH, _IO_STORE = 0, 1, 2
_SCHEDULE_EVENT = QEvent.Type(QEvent.registerEventType())


def _names_a_network_image(text: str) -> bool:
    """Whether a list entry is an http(s) URL, as parse_image_url reads its scheme
    (case-insensitively, after leading blanks), without parsing it again on the GUI thread.
    Only these go to the disk cache: a local file is its own cache, and looking one up there
    would always miss."""
    return text.lstrip()[:6].lower().startswith(("http:", "https:"))


def _urgency_of(priority: Tuple[int, int]) -> Urgency:
    band = priority[0]
    if band <= VISIBLE:  # a provider miss (URGENT) is on screen too
        return Urgency.ON_SCREEN
    return Urgency.NEAR_SCREEN if band == NEAR_VISIBLE else Urgency.LATER


# Over HTTP/2 a stream is judged by its host's connections as a whole, but never waits more than
# this many times `connect_timeout_s` for a response or `idle_timeout_s` for its next byte: a
# request a server leaves hanging must end even while the other streams keep the link busy.
STREAM_PATIENCE = 4


@dataclass
class _Arrivals:
    """Bytes arriving, as the watchdog judges them: for one transfer, or for all the HTTP/2
    streams to one host together. Streams take turns on a connection, so one waiting its turn is
    not idle, and each gets a share of the link: on a 50 KB/s link 64 streams average 0.8 KB/s
    each, and judged one by one every stream of a gallery a browser would load failed as too
    slow."""

    last_byte_at: float
    window_start: float
    received: int = 0
    window_bytes: int = 0

    def arrived(self, now: float, count: int) -> None:
        self.last_byte_at = now
        self.received += count

    def timeout_reason(self, now: float, limits: LoadLimits) -> Optional[str]:
        """Why these arrivals break the limits, or None; a new rate window starts once one has
        passed."""
        if now - self.last_byte_at > limits.idle_timeout_s:
            # A fresh window: were the link to recover, minutes of silence must not count.
            self.window_start, self.window_bytes = now, self.received
            return f"timed out after {format_seconds(limits.idle_timeout_s)} (no data)"
        if now - self.window_start < limits.slow_window_s:
            return None
        rate = (self.received - self.window_bytes) / (now - self.window_start)
        self.window_start, self.window_bytes = now, self.received
        if rate < limits.min_bytes_per_second:
            return (f"timed out: too slow ({format_bytes(int(rate))}/s over "
                    f"{format_seconds(limits.slow_window_s)})")
        return None


@dataclass
class _Job:
    """What the loader knows about one URL it is working on."""

    url: str
    parsed: ParsedImageUrl
    priority: Tuple[int, int]
    spec: ThumbnailSpec
    stage: int = _DISK_LOOKUP
    token: int = 0  # changes whenever the job restarts, so late results are recognised
    attempt: int = 0
    request_id: int = 0
    transport: Optional[Transport] = None
    started_at: float = 0.0
    responded: bool = False
    received: int = 0
    arrivals: Optional[_Arrivals] = None  # set when a transfer starts
    link: Optional[_Arrivals] = None  # the host's, when the transfer is an HTTP/2 stream
    etag: str = ""
    last_modified: str = ""
    revalidating: Optional[CachedThumbnail] = None
    bypass_disk: bool = False
    waiters: List[Callable[[Optional[CachedThumbnail], str], None]] = field(default_factory=list)
    # The models (their claim numbers) that asked for it: with a loader shared by several
    # models, one model's cancel must not drop what another still shows as Loading.
    claimants: Set[int] = field(default_factory=set)
    # Fetched through libcurl instead of the scheme's own transport, which could not finish it:
    # Qt without TLS met a redirect to https, or an interim (1xx) answer it cannot read past.
    # A flag, not the transport: transports are replaced when their settings change.
    via_curl: bool = False
    # Times sent again after an answer that never came (ErrorKind.NOT_ANSWERED).
    sent_again: int = 0
    # ImageLoader._settings_changes when its transfer or decode began.
    settings_seen: Dict[Remedy, int] = field(default_factory=dict)
    # Times ended to keep the bodies being received under the ceiling (ErrorKind.CROWDED).
    crowded_out: int = 0
    # The URL's generation (ImageLoader._refetches) when this job began: a decode or disk read
    # of an earlier generation never refills the caches.
    generation: int = 0
    # Made because a view's Image asked (an evicted thumbnail), and asked for since only by
    # other views' Images: once no Image waits for it (its tile scrolled away), nobody wants it.
    wanted_by_views_only: bool = False
    # The priority its models last asked for. While a view's Image waits, the job runs at URGENT
    # instead (see set_priority), and returns to this when none does.
    model_priority: Tuple[int, int] = (BACKGROUND, 0)
    # The downloaded body while it is decoded: a new thumbnail size decodes it again instead of
    # downloading it again.
    body: Optional[TransferResult] = None


class _StreamCap:
    """A multiplexed host's learned stream cap (see ImageLoader._adapt_stream_cap).

    Grows as TCP's window does after a loss: one stream per success up to `threshold` (doubling
    each round), then one per round of successes.
    """

    __slots__ = ("streams", "threshold", "successes", "streams_before_losses", "losing")

    def __init__(self, streams: int):
        self.streams = self.threshold = self.streams_before_losses = streams
        self.successes = 0  # since the cap last grew
        self.losing = False  # resets with no success between them are one loss

    def reset(self, still_running: int) -> None:
        if not self.losing:
            self.streams_before_losses = self.streams
            self.losing = True
        self.streams = max(1, min(self.streams, still_running))
        self.successes = 0
        if still_running:
            # Some streams lived on: the host takes about that many. Grow slowly past it.
            self.threshold = self.streams
        else:
            # Every stream went down together, so the connection was lost. That says nothing
            # about how many streams the host takes. Grow fast back to half the old cap.
            self.threshold = max(1, self.streams_before_losses // 2)

    def succeeded(self) -> None:
        self.losing = False
        if self.streams < self.threshold:
            self.streams += 1
            return
        self.successes += 1
        if self.successes >= self.streams:
            self.streams += 1
            self.successes = 0


class _DiskWrite(NamedTuple):
    """The disk thread's token for one thumbnail write: unique, and it carries the bytes the
    write holds until it is done."""
    sequence: int
    size: int


class _DiskDiscard(NamedTuple):
    """The disk thread's token for removing one thumbnail the server said is gone."""
    sequence: int
    entry: Tuple[str, ThumbnailKey]  # (the cache's folder, the key)


class _DiskLookup(NamedTuple):
    """What the disk thread hands back for one lookup: the thumbnail, or None on a miss."""
    url: str
    key: ThumbnailKey
    thumbnail: Optional[CachedThumbnail]
    generation: int  # its job's (see _refetches): a lookup begun before a refetch is ignored


class _DecodeOutcome(NamedTuple):
    """What a decode worker hands back: the thumbnail, or None and the reason it failed."""
    url: str
    spec: ThumbnailSpec
    result: TransferResult  # the download, kept for the caches (validators, the encoded bytes)
    thumbnail: Optional[CachedThumbnail]
    error: str
    remedy: Remedy  # what may undo `error`
    generation: int  # its job's, as the disk lookup carries it


class _ForTheSandbox(NamedTuple):
    """A decode thread's answer for bytes the sandbox must decode: what the sandbox thread needs."""
    url: str
    spec: ThumbnailSpec
    result: TransferResult
    decode: Callable[[], DecodedThumbnail]
    generation: int  # its job's, as _decode_outcome hands it back


_warm_up_thread: Optional[threading.Thread] = None
# The warm-up takes 0.1-0.2 s; 5 s covers a loaded machine, and bounds a quit that comes first.
WARM_UP_JOIN_TIMEOUT_S = 5.0


def warm_up_in_background() -> None:
    """Load what the first images need, once per process, in a thread of its own: libjpeg-turbo
    and numpy (about 70 ms), Qt's image-format plugins (tens of ms at the first decode), Qt's
    answer to whether it has TLS (3-5 ms: it tries to load OpenSSL; the Qt transport asks at
    every request), libcurl with its OpenSSL (20-35 ms, for https and h2c; loaded
    whatever the transport mode, which install() cannot know) and, where a *_proxy variable is
    set, urllib.request for reading them (15-50 ms; the first transport reads them).

    install() starts it, so this runs while the app compiles its QML; a loader made without
    install() starts it itself. Started by the first loader, it ran when the first list arrived
    (when QML declares the model with its urls, the model is made as the list arrives), and its
    imports, which hold the GIL, delayed W3's first thumbnail from about 50 to 160 ms and
    stalled the GUI thread for 26-30 ms."""
    global _warm_up_thread
    if _warm_up_thread is None:
        thread = threading.Thread(target=_warm_up, name="ig-warm-up", daemon=True)
        thread.start()
        _warm_up_thread = thread
        # An app that quits at once, or a script that ends, must not tear Qt down under a
        # plugin still loading (a segfault at exit). At exit: registered after PyQt's own exit
        # hook, so it runs first.
        atexit.register(thread.join, WARM_UP_JOIN_TIMEOUT_S)
        application = QCoreApplication.instance()
        if application is not None:
            application.aboutToQuit.connect(lambda: thread.join(WARM_UP_JOIN_TIMEOUT_S))


def _import_platformdirs() -> None:
    # The first loader asks it for the user's cache folder: 16-19 ms of imports, which a host
    # that makes its first model mid-session paid on the GUI thread.
    import platformdirs  # noqa: F401


def _warm_up() -> None:
    for step in (warm_up_decoders, qt_has_tls, preload_curl_transport, environment_proxies,
                 _import_platformdirs):
        try:
            step()
        except Exception:  # pycurl missing, say: the transports say so when a URL needs it
            logging.getLogger("imagegallery.loader").debug("warm-up step %s failed", step.__name__,
                                                           exc_info=True)


# Every loader not yet collected, so that a 404 one of them meets reaches the others' caches.
_LIVE_LOADERS: "weakref.WeakSet[ImageLoader]" = weakref.WeakSet()
# (folder, key) -> removals of a gone image's thumbnail queued on any loader's disk thread and not
# yet done. By folder, not by loader: loaders share one by default, and one's removal may be done
# while another's queued write still puts the file back. GUI thread only.
_DISCARDS_QUEUED: Dict[Tuple[str, ThumbnailKey], int] = {}


def _count_discards(entry: Tuple[str, ThumbnailKey], change: int) -> None:
    left = _DISCARDS_QUEUED.get(entry, 0) + change
    if left > 0:
        _DISCARDS_QUEUED[entry] = left
    else:
        _DISCARDS_QUEUED.pop(entry, None)


class ImageLoader(QObject):
    """Downloads, decodes and caches thumbnails for URLs; see the module docstring.

    Thread: GUI thread only. Signals are emitted on the GUI thread.
    """

    thumbnailReady = pyqtSignal(str, object)  # url, CachedThumbnail
    # url, reason a person understands, what may undo it (a Remedy: RETRY unless this client's
    # own rules, limits or transport decided it, and the same settings get the same answer).
    loadFailed = pyqtSignal(str, str, int)
    # The settings a Remedy waits for changed (the limits loosened: LOOSER_LIMITS; the transport
    # changed: OTHER_TRANSPORT): failures with that remedy may go otherwise, and a model loads
    # such rows again.
    remedyAvailable = pyqtSignal(int)
    loadStarted = pyqtSignal(str)  # url: a transfer began (the row shows Loading)
    loadProgress = pyqtSignal(str, "qlonglong", "qlonglong")  # url, received, total or -1
    # A job left the loader (loaded, failed, cancelled, or a revalidation that kept the disk's
    # thumbnail and so said nothing): a model feeding a long list waits for room on this. It is
    # emitted from inside the loader's bookkeeping (refetch() emits it between dropping the old
    # job and making the new one), so a slot should schedule work, as the model's does, rather
    # than call back into the loader.
    jobEnded = pyqtSignal()

    def __init__(self, limits: LoadLimits = LoadLimits(), transport: str = "auto",
                 transport_options: Optional[TransportOptions] = None,
                 disk_cache_dir: Optional[str] = None, http2_cleartext: bool = False,
                 revalidate: bool = False, parent=None):
        super().__init__(parent)
        self._limits = limits
        self._spec = ThumbnailSpec(240, 140, FIT)
        self._transport_options = self._with_connection_cap(transport_options or TransportOptions())
        self.http2_cleartext = http2_cleartext
        self._transports = self._new_transport_set(transport)
        self.revalidate = revalidate
        # source id -> how that model judges a URL (its allowed schemes, the CLI's plain paths):
        # an image provider's miss names only the source, and a shared loader serves models
        # with different rules.
        self._url_rules: Dict[int, Callable[[str], ParsedImageUrl]] = {}
        # The process-wide thumbnail cache, the one the image providers read.
        self.thumbnails = shared_thumbnail_cache()
        self._promised: "OrderedDict[ThumbnailKey, CachedThumbnail]" = OrderedDict()
        self._promised_bytes = 0
        self._promised_lock = threading.Lock()  # an Image with asynchronous: true reads off-thread
        self.encoded = new_encoded_cache()
        self.disk: Optional[DiskThumbnailCache] = None  # set below, with the held writes

        self._jobs: Dict[str, _Job] = {}
        self._by_request: Dict[int, _Job] = {}
        # One heap of (priority, sequence, url, token) per host: picking the best startable job
        # is O(hosts), not O(queued), even with 10,000 URLs queued behind a saturated host.
        self._host_queues: Dict[str, List[tuple]] = {}
        self._host_in_flight: Dict[str, int] = {}
        self._http2_hosts: set = set()  # hosts that answered over HTTP/2: their cap is streams
        # Hosts that sent Qt an interim (1xx) answer: from then on all their transfers go through
        # libcurl (_on_transfer_error).
        self._hosts_via_curl: Set[str] = set()
        # Multiplexed hosts whose connection was reset with streams on it: how many streams they
        # get now (see _adapt_stream_cap). Absent: the configured number.
        self._stream_caps: Dict[str, _StreamCap] = {}
        # Per multiplexed host with transfers in flight: what arrives on its connection.
        self._link_arrivals: Dict[str, _Arrivals] = {}
        self._sequence = itertools.count()
        self._tokens = itertools.count(1)
        self._request_ids = itertools.count(1)

        self._decode_backlog: Dict[int, int] = {}  # decode token -> body bytes waiting
        # url -> the generation of its last refetch() (the model's reload() and retry() both
        # call it). Generations come from one counter, so they only grow, also for a URL forgotten
        # after REFETCH_MEMORY_S and fetched again; a URL never fetched again is generation 0.
        self._refetches: Dict[str, int] = {}
        self._generation_counter = itertools.count(1)
        # How many times the settings each remedy waits for changed (_remedy_available): a job
        # notes them as its transfer or decode begins, so one refused by settings that changed
        # since is judged again under the new ones (_fail).
        self._settings_changes = {Remedy.LOOSER_LIMITS: 0, Remedy.OTHER_TRANSPORT: 0}
        self._refetched_at: "OrderedDict[str, float]" = OrderedDict()  # url -> last refetch(), oldest first
        self._decode_backlog_bytes = 0
        self._downloading_bytes = 0  # the bodies of the transfers in flight, as last reported
        self._decoder = PriorityWorkerPool(default_decode_threads(), "decode", self)
        self._decoder.done.connect(self._on_decoded)
        warm_up_in_background()  # install() has normally started it already
        # Bytes for the sandbox are decoded from threads of their own, one per child process: a
        # child can hang until its time limit, and it must not hold a thread the other decodes need.
        self._sandboxed = PriorityWorkerPool(SANDBOX_PROCESSES, "sandbox", self)
        self._sandboxed.done.connect(self._on_decoded)
        self._io = PriorityWorkerPool(1, "disk", self)
        self._held_disk_writes: List[tuple] = []  # (disk, key, thumbnail) while jobs run
        self._held_disk_write_bytes = 0
        self._next_eviction_check_bytes = 0
        self._held_disk_writes_deadline = QTimer(self)
        self._held_disk_writes_deadline.setSingleShot(True)
        self._held_disk_writes_deadline.timeout.connect(self._release_disk_writes)
        self.set_disk_cache_dir(default_disk_cache_dir() if disk_cache_dir is None else disk_cache_dir)
        self._queued_disk_write_bytes = 0
        # This loader's share of _DISCARDS_QUEUED, taken back if it closes with them queued.
        self._discards_queued: Dict[Tuple[str, ThumbnailKey], int] = {}
        self._io.done.connect(self._on_io_done)
        application = QCoreApplication.instance()
        if application is not None:
            application.aboutToQuit.connect(self._on_application_quit)

        self._schedule_pending = False
        self._answers: List[Callable[[], None]] = []
        self._answer_timer = QTimer(self)
        self._answer_timer.setSingleShot(True)
        self._answer_timer.setInterval(0)
        self._answer_timer.timeout.connect(self._give_answers)
        self._retry_timers: Set[QTimer] = set()  # the backoffs waiting (_schedule_retry)
        self._watchdog = QTimer(self)
        self._watchdog.timeout.connect(self._check_timeouts)
        self._closed = False
        _LIVE_LOADERS.add(self)
        self._retired = False  # see retire()
        # Counters the tests and the benchmark read.
        self.stats = {"network_requests": 0, "disk_hits": 0, "memory_hits": 0,
                      "encoded_hits": 0, "retries": 0, "http2_responses": 0}

    # -- configuration ---------------------------------------------------------------------
    @property
    def limits(self) -> LoadLimits:
        return self._limits

    def set_limits(self, limits: LoadLimits) -> None:
        """New limits apply at once: the timeouts to transfers already running too (the
        watchdog reads them at every check); a new connection cap restarts the transports, and
        with them the transfers in flight. Byte caps hold for transfers started from now on."""
        reconnect = limits.max_connections_per_host != self._limits.max_connections_per_host
        # Only a loosened limit may let a refused row load; a tightened one refuses nothing
        # that already loaded.
        refusals_loosened = any(getattr(limits, name) > getattr(self._limits, name)
                                for name in _LIMITS_THAT_REFUSE)
        self._limits = limits
        if reconnect:
            self._transport_options = self._with_connection_cap(self._transport_options)
            self._replace_transports(self._transports.mode)
        if self._watchdog.isActive():  # checked as often as the new shortest timeout needs
            self._watchdog.stop()
            self._arm_watchdog()
        self._request_schedule()
        if refusals_loosened:
            self._remedy_available(Remedy.LOOSER_LIMITS)

    @property
    def transport_options(self) -> TransportOptions:
        return self._transport_options

    @property
    def transport_mode(self) -> str:
        return self._transports.mode

    def _remedy_available(self, remedy: Remedy) -> None:
        """Limits loosened or another transport: what they refused before may load now."""
        self._settings_changes[remedy] += 1
        self.remedyAvailable.emit(remedy)

    def set_transport_mode(self, mode: str) -> None:
        if mode != self._transports.mode:
            self._replace_transports(mode)
            self._remedy_available(Remedy.OTHER_TRANSPORT)  # it may speak TLS, or read a 103

    def set_transport_options(self, options: TransportOptions) -> None:
        options = self._with_connection_cap(options)
        if options == self._transport_options:
            return  # the same settings: transfers in flight need not start again
        self._transport_options = options
        self._replace_transports(self._transports.mode)

    def _with_connection_cap(self, options: TransportOptions) -> TransportOptions:
        # The limits decide how many transfers go to a host at once; a transport is sized to
        # carry that many (QNAMs, libcurl's per-host cap), whatever the options passed in said.
        return replace(options, max_connections_per_host=self._limits.max_connections_per_host)

    def _replace_transports(self, mode: str) -> None:
        """Swap transports; transfers in flight start again on the new ones."""
        restarting = [job for job in self._jobs.values() if job.stage == _FETCHING]
        for job in restarting:
            self._abort_transfer(job)
            job.stage = _QUEUED
            self._enqueue(job)
        old = self._transports
        self._transports = self._new_transport_set(mode)
        old.close()
        old.deleteLater()
        self._request_schedule()

    def _new_transport_set(self, mode: str) -> TransportSet:
        transports = TransportSet(mode, self._transport_options, self)
        transports.created.connect(self._connect_transport)
        if transport_name_for("http", mode, self.http2_cleartext) == "qt":
            # Made now rather than at the first request: a QNAM and its proxy settings take
            # about 3 ms, which would land in the turn where a new list's first tiles are built.
            transports.for_scheme("http")
        return transports

    @property
    def spec(self) -> ThumbnailSpec:
        return self._spec

    def set_spec(self, spec: ThumbnailSpec) -> None:
        """New thumbnail size or fill mode: work in progress continues toward the new spec."""
        if spec == self._spec:
            return
        self._spec = spec
        for job in list(self._jobs.values()):
            job.spec = spec
            if job.revalidating is not None:
                # What it delivered has the old size, and a "not modified" brings no bytes to
                # decode at the new one: start over as a plain load.
                job.revalidating, job.etag, job.last_modified = None, "", ""
                self._restart(job)
            elif job.stage == _DECODING and job.body is not None:
                body = job.body
                self._stop(job)
                self._decode(job, body)  # the bytes are here: decoded again, not downloaded again
            elif job.stage in (_DISK_LOOKUP, _DECODING):
                self._restart(job)

    def set_disk_cache_dir(self, directory: str) -> None:
        """A folder's path or file: URL (see cache.disk_cache_folder); empty: no disk cache."""
        folder = disk_cache_folder(directory)
        if self.disk is not None and folder == self.disk.directory:
            return
        if self.disk is not None:
            # Nothing more for the folder given up, held or queued: a host that turns the cache
            # off (privacy, a read-only medium) had the thumbnails loaded until then written
            # there afterwards.
            self.disk.stop_writing()
        self.disk = DiskThumbnailCache(folder) if folder else None
        if self._held_disk_writes:
            self._held_disk_writes_deadline.stop()
            self._held_disk_writes = []
            self._held_disk_write_bytes = 0
            self._next_eviction_check_bytes = 0

    def key_for(self, url: str, spec: Optional[ThumbnailSpec] = None) -> ThumbnailKey:
        return ThumbnailKey.for_spec(url, spec or self._spec)

    def cached(self, url: str) -> Optional[CachedThumbnail]:
        """The thumbnail for `url` at the current spec if it is in memory (no I/O)."""
        return self.thumbnails.get(self.key_for(url))

    def promise_thumbnail(self, url: str) -> Optional[CachedThumbnail]:
        """The thumbnail for `url` if it is in memory, promised to the view that asks: until
        PROMISED_THUMBNAILS later promises, `promised_thumbnail` finds it even if the memory
        cache has let it go. The model asks this for a row's source, which it points at the
        synchronous image provider when the answer is a thumbnail."""
        key = self.key_for(url)
        thumbnail = self.thumbnails.get(key)
        if thumbnail is not None:
            with self._promised_lock:
                earlier = self._promised.pop(key, None)  # the same key may hold a newer picture
                if earlier is not None:
                    self._promised_bytes -= earlier.image.sizeInBytes()
                self._promised[key] = thumbnail
                self._promised_bytes += thumbnail.image.sizeInBytes()
                byte_cap = self.thumbnails.budget_bytes * PROMISED_SHARE_OF_CACHE
                # The byte cap keeps the newest, whatever its size: the view is asking for it.
                while (len(self._promised) > PROMISED_THUMBNAILS
                       or len(self._promised) > 1 and self._promised_bytes > byte_cap):
                    self._promised_bytes -= self._promised.popitem(last=False)[1].image.sizeInBytes()
        return thumbnail

    def promised_thumbnail(self, key: ThumbnailKey) -> Optional[CachedThumbnail]:
        """The thumbnail under `key` from the memory cache, or from what was promised. Thread: any."""
        thumbnail = self.thumbnails.get(key)
        if thumbnail is not None:
            return thumbnail
        with self._promised_lock:
            return self._promised.get(key)

    # -- what consumers ask for ------------------------------------------------------------
    def set_url_rules(self, source_id: int, parse: Callable[[str], ParsedImageUrl]) -> None:
        """How URLs from the model with `source_id` are parsed when asked for by source."""
        self._url_rules[source_id] = parse

    def forget_url_rules(self, source_id: int) -> None:
        self._url_rules.pop(source_id, None)

    def parse_url_for(self, source_id: int, url: str) -> ParsedImageUrl:
        """`url` judged by the rules of the model whose source named it (the defaults for a
        model gone or unknown)."""
        return self._url_rules.get(source_id, parse_image_url)(url)

    def load(self, url: str, priority: Tuple[int, int] = (BACKGROUND, 0),
             parsed: Optional[ParsedImageUrl] = None, claimant: Optional[int] = None) -> None:
        """Make the thumbnail for `url` available; emits thumbnailReady or loadFailed (with
        `revalidate`, thumbnailReady for the disk's copy, then again if the server's differs).

        `claimant` names the consumer (a model's claim number) for `cancel`."""
        if self._closed:
            return
        job = self._jobs.get(url)
        if job is not None:
            if claimant is not None:
                job.claimants.add(claimant)
            # A model (or another caller of load()) wants it too; load_for_provider restores the
            # flag after its own call.
            job.wanted_by_views_only = False
            self.set_priority(url, priority)
            if job.revalidating is not None:
                # Delivered already; the server is only being asked whether it changed. A newcomer
                # gets the thumbnail now instead of waiting on an answer that may change nothing.
                self._answer_soon(self._picture_answer(url, job.revalidating))
            return
        cached = self.cached(url)
        if cached is not None and not self.revalidate:
            self.stats["memory_hits"] += 1
            # Deliver on the next event-loop turn so callers see the same order of signals
            # whether or not the image was cached.
            self._answer_soon(self._picture_answer(url, cached))
            return
        parsed = parsed or parse_image_url(url)
        if not parsed.ok:
            self._answer_soon(lambda: self.loadFailed.emit(url, parsed.error, Remedy.NONE))
            return
        job = _Job(url, parsed, priority, self._spec, generation=self._generation_of(url))
        if claimant is not None:
            job.claimants.add(claimant)
        self._jobs[url] = job
        self._start_pipeline(job)

    def load_for_provider(self, url: str, spec: ThumbnailSpec,
                          callback: Callable[[Optional[CachedThumbnail], str], None],
                          parsed: Optional[ParsedImageUrl] = None) -> None:
        """An on-screen thumbnail was evicted from memory: get it back first of all (`parsed`
        by the rules of the model that listed it; `parse_url_for`).

        callback(thumbnail, "") or callback(None, reason) is called exactly once, perhaps before
        this returns; forget_waiter(url, callback) withdraws it. callback(None, "") means nothing
        is to be shown, and no error either: the thumbnail is no longer wanted at this size or
        from this loader (the view's Image then shows nothing, instead of an error face and a
        QML warning, until its row gives it a new source)."""
        cached = self.thumbnails.get(self.key_for(url, spec))
        if cached is not None:
            callback(cached, "")
            return
        if spec != self._spec:
            callback(None, "")  # the rows get sources of the new size
            return
        earlier = self._jobs.get(url)
        views_only = earlier is None or earlier.wanted_by_views_only
        parsed = parsed or parse_image_url(url)
        self.load(url, URGENT, parsed)
        job = self._jobs.get(url)
        if job is None:  # failed at once or was delivered from memory in between
            cached = self.thumbnails.get(self.key_for(url, spec))
            if cached is not None:
                callback(cached, "")
            else:  # the reason load() gives the models, not a vaguer one
                callback(None, "" if self._closed else parsed.error or "not available")
            return
        job.wanted_by_views_only = views_only
        job.waiters.append(callback)

    def forget_waiter(self, url: str, callback) -> None:
        """A view's Image no longer waits for `url` (its tile was destroyed or shows another
        row): the job loses the first place that Image gave it, and a job only that view
        wanted ends. Left URGENT, a fast scroll's passed tiles were served before the screen."""
        job = self._jobs.get(url)
        if job is None or callback not in job.waiters:
            return
        job.waiters.remove(callback)
        if job.waiters:
            return
        if job.wanted_by_views_only:
            self.cancel(url)
        elif job.priority == URGENT:
            self.set_priority(url, job.model_priority)

    def _picture_answer(self, url: str, thumbnail: CachedThumbnail) -> Callable[[], None]:
        """An answer with a picture at hand, given next turn unless `url` is fetched again on
        purpose (refetch()) in between: the older picture would then reach the rows
        that wait for the new one."""
        generation = self._generation_of(url)

        def answer() -> None:
            if not self._refetched_since(url, generation):
                self.thumbnailReady.emit(url, thumbnail)

        return answer

    def _generation_of(self, url: str) -> int:
        """The generation of `url`'s last refetch(); 0 if never, or forgotten since."""
        return self._refetches.get(url, 0)

    def _refetched_since(self, url: str, generation: int) -> bool:
        """Whether `url` was fetched again on purpose after work of `generation` began: that
        work's picture is the one being replaced. (A forgotten refetch reads as 0, never newer.)"""
        return generation < self._generation_of(url)

    def _answer_soon(self, answer: Callable[[], None]) -> None:
        """Run `answer` on the next event-loop turn, so callers see the same order of signals
        whether a result was at hand or not. Through a timer the loader owns: a single shot
        with a lambda fired into a deleted loader and aborted the process."""
        self._answers.append(answer)
        self._answer_timer.start()

    def _give_answers(self) -> None:
        answers, self._answers = self._answers, []
        for answer in answers:
            if not self._closed:
                answer()

    def set_priority(self, url: str, priority: Tuple[int, int]) -> None:
        """Re-rank url's job. While a view's Image waits for it (load_for_provider) the job
        stays URGENT, and a lower priority asked meanwhile is kept in job.model_priority for when
        the last Image gives up (forget_waiter)."""
        job = self._jobs.get(url)
        if job is None or job.priority == priority:
            return
        if job.priority == URGENT and priority > URGENT and job.waiters:
            job.model_priority = priority
            return  # a view's Image is waiting; keep it first
        if priority == URGENT:
            job.model_priority = job.priority
        job.priority = priority
        if job.stage == _QUEUED:
            self._enqueue(job)  # the old heap entry goes stale and is skipped

    def cancel(self, url: str, claimant: Optional[int] = None) -> None:
        """`claimant` (or, without one, everyone) no longer needs `url`: once no claimant is
        left, and no view's Image waits for it, drop it from the queue and abort its transfer or
        decode. Dropped with everyone (`claimant` None), its waiting Images hear that there is
        nothing to show (no error)."""
        job = self._jobs.get(url)
        if job is None:
            return
        if claimant is not None:
            job.claimants.discard(claimant)
            if job.claimants:
                return
            if job.waiters:
                # A tile still shows this URL (another model's row on a shared loader, or a row
                # being reloaded): the job goes on for it, and ends with its last Image. A row
                # owed a reload does not take its picture (model._on_thumbnail_ready).
                job.wanted_by_views_only = True
                return
        del self._jobs[url]
        self._stop(job)
        for waiter in job.waiters:
            waiter(None, "")  # no longer wanted: nothing to show, and no error to show
        self._job_ended()

    def refetch(self, url: str, priority: Tuple[int, int] = (VISIBLE, 0),
                parsed: Optional[ParsedImageUrl] = None, claimant: Optional[int] = None) -> None:
        """Load again, from the network, a URL that failed or should be refreshed. The new job
        serves everyone the old one did: its models, and the views' Images waiting for it."""
        old = self._jobs.get(url)
        claimants = set(old.claimants) if old is not None else set()
        if claimant is not None:
            claimants.add(claimant)
        waiters, views_only = [], False
        if old is not None:
            # Handed on: what they wait for is the picture the new job brings.
            waiters, old.waiters = old.waiters, []
            views_only = old.wanted_by_views_only and claimant is None
        self.cancel(url)
        self.encoded.discard(url)
        parsed = parsed or parse_image_url(url)
        if not parsed.ok:
            for waiter in waiters:
                waiter(None, parsed.error)
            self._answer_soon(lambda: self.loadFailed.emit(url, parsed.error, Remedy.NONE))
            return
        self._remember_refetch(url)
        model_priority = priority
        if waiters:  # an Image waits: first of all, as load_for_provider made the old job
            priority = URGENT
        job = _Job(url, parsed, priority, self._spec, bypass_disk=True, claimants=claimants,
                   generation=self._refetches[url], waiters=waiters,
                   wanted_by_views_only=views_only, model_priority=model_priority)
        self._jobs[url] = job
        self._start_pipeline(job)

    def _remember_refetch(self, url: str) -> None:
        """Give `url` a new generation, and forget the re-fetches older than REFETCH_MEMORY_S
        whose URL has no job (one with a job is re-timed: its late work still needs the guard)."""
        now = time.monotonic()
        for _ in range(len(self._refetched_at)):  # the oldest first
            oldest, at = next(iter(self._refetched_at.items()))
            if now - at < REFETCH_MEMORY_S:
                break
            del self._refetched_at[oldest]
            if oldest in self._jobs:
                self._refetched_at[oldest] = now  # re-timed, at the end
            else:
                del self._refetches[oldest]
        self._refetches[url] = next(self._generation_counter)
        self._refetched_at[url] = now
        self._refetched_at.move_to_end(url)

    def is_claimed_by(self, url: str, claimant: int) -> bool:
        """Whether `url` has a job that `claimant` asked for and has not cancelled."""
        job = self._jobs.get(url)
        return job is not None and claimant in job.claimants

    def has_job(self, url: str) -> bool:
        """Whether `url` has a job in any stage: queued, a disk lookup, waiting out a backoff,
        transferring or decoding."""
        return url in self._jobs

    def active_jobs(self) -> int:
        return len(self._jobs)

    def started_transfers(self) -> int:
        """The transfers this loader started on a transport and has not yet seen end."""
        return len(self._by_request)

    def transport_transfers(self) -> int:
        """The transfers the transports themselves still hold, by their own count (the soak
        test checks it drains to zero)."""
        return sum(transport.in_flight() for transport in self._transports.active())

    def pending_worker_jobs(self) -> int:
        return (self._decoder.pending() + self._sandboxed.pending() + self._io.pending()
                + len(self._held_disk_writes))

    def _on_application_quit(self) -> None:
        """Let the last thumbnails reach the disk (bounded: a stuck disk never holds up quit),
        then stop: no worker or transport thread may still deliver a result while the
        application destroys the objects it would be delivered to."""
        if not self._closed:
            self._release_disk_writes()
            self._io.wait_until_idle(DISK_FLUSH_ON_QUIT_S)
            self.close()

    @pyqtSlot()
    def retire(self) -> None:
        """Close this model-owned loader once its model is gone, and delete it on the next
        event-loop turn: a finalizer may run inside any slot, even one of this loader's
        transports, and deleting the loader there would pull its replies out from under Qt.
        Called twice (the C++ model's `destroyed` and its wrapper's finalizer, in either
        order): the first call counts."""
        if self._retired or sip.isdeleted(self):
            return
        self._retired = True
        self.close(finish_disk_writes=True)
        application = QCoreApplication.instance()
        if application is not None:
            # A Qt child of the application until then, so its Python side lives as long as it
            # does: with C++ owning it alone, an event still queued for it (posted before the
            # close) found no Python side to deliver to and crashed.
            self.setParent(application)
            self.deleteLater()

    def close(self, finish_disk_writes: bool = False) -> None:
        """Stop everything; the loader is not used again. With `finish_disk_writes` the
        thumbnails held for the disk still reach it: the disk thread writes them in the
        background, then ends."""
        if self._closed:
            return
        if finish_disk_writes:
            self._release_disk_writes()
        self._closed = True
        for url in list(self._jobs):
            self.cancel(url)  # a waiting Image hears the end (nothing to show), not nothing
        self._watchdog.stop()
        self._answer_timer.stop()
        self._answers.clear()  # given to no one once closed (_give_answers), and they hold self
        # Deleted on the GUI thread's next turn, their callbacks' references to this loader with
        # them: one still running when a host dropped a closed loader kept it alive, and Python
        # then freed it from whichever thread collected, where Qt cannot stop a timer.
        for timer in self._retry_timers:
            timer.stop()
            timer.deleteLater()
        self._retry_timers.clear()
        self._transports.close()
        self._held_disk_writes_deadline.stop()
        self._held_disk_writes.clear()
        self._held_disk_write_bytes = 0
        with self._promised_lock:
            self._promised.clear()
            self._promised_bytes = 0
        self._decoder.close()
        self._sandboxed.close()
        self._io.close(finish_queued=finish_disk_writes)
        for entry, count in self._discards_queued.items():  # their `done` may never come now
            _count_discards(entry, -count)
        self._discards_queued.clear()

    # -- pipeline --------------------------------------------------------------------------
    def _start_pipeline(self, job: _Job) -> None:
        job.token = next(self._tokens)
        if self.disk is not None and not job.bypass_disk and _names_a_network_image(job.url):
            job.stage = _DISK_LOOKUP
            self._io.submit((_IO_LOOKUP, job.priority), job.token, self._lookup_disk, job.url,
                            self.key_for(job.url, job.spec), self.disk, job.generation)
        else:
            self._after_disk_miss(job)

    @staticmethod
    def _lookup_disk(url: str, key: ThumbnailKey, disk: DiskThumbnailCache,
                     generation: int) -> _DiskLookup:
        return _DiskLookup(url, key, disk.load(key), generation)

    def _on_io_done(self, token, result) -> None:
        if isinstance(token, _DiskWrite):
            self._disk_write_done(token)
        elif isinstance(token, _DiskDiscard):
            mine = self._discards_queued.get(token.entry, 0)
            if mine:  # (none after close(), which took its share back)
                if mine > 1:
                    self._discards_queued[token.entry] = mine - 1
                else:
                    del self._discards_queued[token.entry]
                _count_discards(token.entry, -1)
        elif isinstance(result, _DiskLookup):
            self._on_disk_lookup(token, result)
        elif isinstance(result, Exception):  # a lookup that raised: go on as if it missed
            job = self._job_with_token(token)
            if job is not None and job.stage == _DISK_LOOKUP:
                self._after_disk_miss(job)

    def _on_disk_lookup(self, token, result: _DiskLookup) -> None:
        url, key, thumbnail, generation = result
        if thumbnail is not None and self._refetched_since(url, generation):
            return  # begun before a reload(): the disk's copy is the picture being replaced
        if self.disk is not None and (self.disk.directory, key) in _DISCARDS_QUEUED:
            # The server said it is gone, and its removal waits behind writes queued before it
            # (here or in another loader on the same folder): a lookup, which goes ahead of
            # writes, found it still there.
            thumbnail = None
        if thumbnail is not None:
            self.thumbnails.put(key, thumbnail)
        job = self._jobs.get(url)
        if job is None or job.token != token:
            return
        if thumbnail is not None:
            self.stats["disk_hits"] += 1
            if self.revalidate and job.parsed.scheme in ("http", "https"):
                # Show the cached thumbnail now; ask the server whether it is still current.
                self._finish(job, thumbnail, keep_job=True)
                job.revalidating = thumbnail
                job.etag, job.last_modified = thumbnail.etag, thumbnail.last_modified
                self._after_disk_miss(job, use_encoded=False)
                return
            self._finish(job, thumbnail)
            return
        self._after_disk_miss(job)
        if job.priority[0] != BACKGROUND and job.stage == _QUEUED:
            # A row on screen or near it: its request leaves now, not after the frame being
            # prepared (a new list's first screen of tiles took 9-15 ms to build in front of it).
            # Before the view has reported its range, a new list's first rows are near-visible.
            self._schedule()

    def _after_disk_miss(self, job: _Job, use_encoded: bool = True) -> None:
        response = self.encoded.get(job.url) if use_encoded else None
        if response is not None:
            self.stats["encoded_hits"] += 1
            self._decode(job, replace(response, request_id=_FROM_ENCODED_CACHE))
            return
        job.stage = _QUEUED
        self._enqueue(job)

    def _enqueue(self, job: _Job) -> None:
        queue = self._host_queues.setdefault(job.parsed.host_key, [])
        heapq.heappush(queue, (job.priority, next(self._sequence), job.url, job.token))
        if len(queue) > 64 and len(queue) > 4 * max(1, len(self._jobs)):
            self._compact(job.parsed.host_key)
        self._request_schedule()

    def _compact(self, host: str) -> None:
        live = [entry for entry in self._host_queues[host] if self._entry_is_live(entry)]
        heapq.heapify(live)
        self._host_queues[host] = live

    def _entry_is_live(self, entry) -> bool:
        priority, _, url, token = entry
        job = self._jobs.get(url)
        return job is not None and job.token == token and job.stage == _QUEUED and job.priority == priority

    def _request_schedule(self) -> None:
        # Many calls in one event-loop turn (a list of 5,000 URLs) schedule once. Posted ahead of
        # the events already waiting, as worker results are: a burst of disk-cache misses for a
        # new list's first screen otherwise sent its requests after the view built its tiles.
        if not self._schedule_pending and not self._closed:
            self._schedule_pending = True
            QCoreApplication.postEvent(self, QEvent(_SCHEDULE_EVENT), Qt.HighEventPriority)

    def event(self, event: QEvent) -> bool:
        if event.type() != _SCHEDULE_EVENT:
            return super().event(event)
        if self._schedule_pending and not self._closed:  # else dispatch_now() ran it already
            self._schedule()
        return True

    def dispatch_now(self) -> None:
        """Start what the queue allows now rather than at the next event-loop turn. For the end
        of a batch of load() calls whose priorities are all set: a view builds its delegates
        before that next turn, and the requests need not wait for it."""
        self._schedule()

    def _schedule(self) -> None:
        self._schedule_pending = False
        while (len(self._by_request) < self._limits.max_in_flight
               and self._decode_backlog_bytes < DECODE_BACKLOG_BYTES
               and self._downloading_bytes < max(DOWNLOADING_BYTES_BUDGET,
                                                 self._limits.max_response_bytes)):
            best_host, best_entry = None, None
            for host, queue in self._host_queues.items():
                if self._host_in_flight.get(host, 0) >= self._host_cap(host):
                    continue
                while queue and not self._entry_is_live(queue[0]):
                    heapq.heappop(queue)
                if queue and (best_entry is None or queue[0] < best_entry):
                    best_host, best_entry = host, queue[0]
            if best_host is None or (best_entry[0][0] >= BACKGROUND and self._disk_is_behind()):
                break
            heapq.heappop(self._host_queues[best_host])
            self._start_transfer(self._jobs[best_entry[2]])
        for host in [h for h, q in self._host_queues.items() if not q]:
            del self._host_queues[host]

    def _host_cap(self, host: str) -> int:
        if host.startswith("file"):
            return LOCAL_FILE_READS_IN_FLIGHT
        if self._is_multiplexed(host):
            learned = self._stream_caps.get(host)
            configured = self._configured_stream_cap()
            return min(learned.streams, configured) if learned is not None else configured
        return self._limits.max_connections_per_host

    def _configured_stream_cap(self) -> int:
        return max(self._limits.max_http2_streams_per_host, self._limits.max_connections_per_host)

    def _adapt_stream_cap(self, host: str, result: TransferResult) -> None:
        """Fewer streams for a multiplexed host that resets them; one more per round of successes.

        A server announces how many streams a connection may carry, but a client may send more
        before that announcement arrives: libcurl does on each new connection it opens once the
        first is full. Some servers (hypercorn, through the `h2` library) then reset the whole
        connection, and retries at the same rate meet the same end. So a reset or protocol error
        leaves the host as many streams as it still carries (at least one), and the cap grows
        back by one per `cap` successes: a new connection then gets one stream at a time, never
        a burst. A connection lost with every stream on it grows back faster (_StreamCap).
        """
        if not self._is_multiplexed(host):
            return
        learned = self._stream_caps.get(host)
        if result.ok:
            if learned is None:
                return
            learned.succeeded()
            if learned.streams >= self._configured_stream_cap():
                del self._stream_caps[host]
        elif result.error.kind in (ErrorKind.CONNECTION_RESET, ErrorKind.PROTOCOL):
            if learned is None:
                learned = self._stream_caps[host] = _StreamCap(self._configured_stream_cap())
            learned.reset(still_running=self._host_in_flight.get(host, 0))

    def _is_multiplexed(self, host: str) -> bool:
        """The host's transfers are streams of one HTTP/2 connection."""
        return host in self._http2_hosts or (self.http2_cleartext and host.startswith("http:"))

    def _start_transfer(self, job: _Job) -> None:
        transport = self._transports.for_scheme(job.parsed.scheme, self.http2_cleartext)
        if job.via_curl or job.parsed.host_key in self._hosts_via_curl:
            transport = self._transports.fallback_from(transport) or transport
        job.request_id = next(self._request_ids)
        job.transport = transport
        job.stage = _FETCHING
        job.settings_seen = dict(self._settings_changes)  # the byte cap and transport it has
        now = time.monotonic()
        job.started_at = now
        job.responded = False
        job.received = 0
        job.arrivals = _Arrivals(now, now)
        host = job.parsed.host_key
        job.link = (self._link_arrivals.setdefault(host, _Arrivals(now, now))
                    if self._is_multiplexed(host) else None)
        self._by_request[job.request_id] = job
        self._host_in_flight[host] = self._host_in_flight.get(host, 0) + 1
        self.stats["network_requests"] += 1
        revalidating = job.revalidating is not None
        request = TransferRequest(
            job.request_id, job.parsed.url, self._limits.max_response_bytes, self._limits.max_redirects,
            http2_cleartext=self.http2_cleartext,
            if_none_match=job.etag if revalidating else "",
            if_modified_since=job.last_modified if revalidating else "",
            urgency=_urgency_of(job.priority))
        self._arm_watchdog()
        transport.start(request)
        if not revalidating:
            # After start(), which answers only later: a slot that changes the transport or
            # cancels the job (a host's) then finds it started, where before start() it closed
            # the transport the request was still to go to ("used after close()": an abort).
            self.loadStarted.emit(job.url)

    def _connect_transport(self, transport: Transport) -> None:
        transport.responseStarted.connect(self._on_response_started)
        transport.progress.connect(self._on_progress)
        transport.finished.connect(self._on_transfer_finished)

    def _on_response_started(self, request_id: int, status: int, total: int) -> None:
        job = self._by_request.get(request_id)
        if job is not None:
            self._responded(job)
            self._arrived(job, 0)

    def _responded(self, job: _Job) -> None:
        if not job.responded:
            job.responded = True
            # The rate rule judges the body from here: the wait for the answer is the no-response
            # rule's, and counted as slow body it failed a server that answered late, then fast.
            job.arrivals.window_start = time.monotonic()
            job.arrivals.window_bytes = job.arrivals.received

    def _on_progress(self, request_id: int, received: int, total: int) -> None:
        job = self._by_request.get(request_id)
        if job is None:
            return
        self._responded(job)
        self._arrived(job, max(0, received - job.received))  # a redirect's next hop counts anew
        self._downloading_bytes += received - job.received
        job.received = received
        # One transfer alone is bounded by max_response_bytes; it is never ended for this.
        while (self._downloading_bytes + self._decode_backlog_bytes > self._bodies_ceiling()
               and len(self._by_request) > 1 and self._crowd_out_a_download()):
            pass
        if job.revalidating is None and self._by_request.get(request_id) is job:
            self.loadProgress.emit(job.url, received, total)

    def _crowd_out_a_download(self) -> bool:
        """Past the ceiling: one transfer ends and waits in the queue until the others have
        made room (no new transfer starts above the budget). The least urgent of those holding
        anything goes first, the screen's last. False if none holds a byte."""
        holding = [job for job in self._by_request.values() if job.received > 0]
        if not holding:
            return False
        victim = max(holding, key=lambda job: (job.priority, job.received))
        self._abort_transfer(victim)
        self._on_transfer_error(victim, TransferError(
            ErrorKind.CROWDED, f"over {format_bytes(self._bodies_ceiling())} of images in memory "
                               "at once"))
        return True

    def _bodies_ceiling(self) -> int:
        return max(DOWNLOADING_BYTES_CEILING, 2 * self._limits.max_response_bytes)

    def _arrived(self, job: _Job, count: int) -> None:
        now = time.monotonic()
        job.arrivals.arrived(now, count)
        if job.link is not None:
            job.link.arrived(now, count)

    def _on_transfer_finished(self, result: TransferResult) -> None:
        job = self._by_request.get(result.request_id)
        if job is None:
            return  # aborted or superseded
        transport = job.transport  # the slot's release forgets it
        self._release_slot(job)
        # What the connection told of the host only counts if the host answered: an HTTP/1.1
        # origin redirecting to an HTTP/2 CDN was given 64 streams, and its six connections
        # held the other 58 requests until they timed out.
        answered_by_host = (not result.final_url
                            or parse_image_url(result.final_url).host_key == job.parsed.host_key)
        if answered_by_host:
            self._adapt_stream_cap(job.parsed.host_key, result)
        # Refill the freed connection now, not at the next event-loop turn: by then the other
        # replies' data events are queued ahead, and a connection idling a few ms per request
        # adds up over a gallery (34 rounds of six on W1).
        self.dispatch_now()
        if result.http2_used:
            self.stats["http2_responses"] += 1
        if result.http2_used and answered_by_host:
            if job.parsed.host_key not in self._http2_hosts:
                self._http2_hosts.add(job.parsed.host_key)
                self._request_schedule()
        if result.ok and result.not_modified and job.revalidating is not None:
            if not result.may_be_stored:
                self._forget_on_disk(job.url, job.spec)
            elif self.disk is not None:
                self._io.submit((_IO_TOUCH, job.priority), ("touch", job.url), self.disk.touch,
                                self.key_for(job.url, job.spec))
            self._end_revalidation(job)
            return
        if not result.ok:
            self._on_transfer_error(job, result.error, transport)
            return
        if result.http_status in (204, 304) and not result.body:
            # An answer that has no body by definition: its status says more than "empty".
            self._fail(job, f"HTTP {result.http_status} "
                            f"{'No Content' if result.http_status == 204 else 'Not Modified'} "
                            "(no image in the answer)")
            return
        job.etag, job.last_modified = result.etag, result.last_modified
        self._decode(job, result)

    def _on_transfer_error(self, job: _Job, error: TransferError,
                           transport: Optional[Transport] = None) -> None:
        if error.kind is ErrorKind.NOT_ANSWERED and job.sent_again < MAX_SENT_AGAIN:
            # Sent again at once and not counted as an attempt: the URL did not fail. Bounded,
            # against a server that goes away before every answer.
            job.sent_again += 1
            self._fetch_again(job)
            return
        if error.kind is ErrorKind.CROWDED and job.crowded_out < MAX_CROWDED_OUT:
            job.crowded_out += 1  # queued again, not an attempt; it starts once there is room
            self._fetch_again(job)
            return
        if error.kind in (ErrorKind.REDIRECT_NEEDS_TLS, ErrorKind.UNSUPPORTED_BY_TRANSPORT):
            fallback = self._transports.fallback_from(transport) if transport is not None else None
            if fallback is not None and not job.via_curl:
                if error.kind is ErrorKind.UNSUPPORTED_BY_TRANSPORT:
                    # The rest of its transfers too: each 1xx costs Qt a manager (its transport
                    # retires the one that met it) and the URL a second request. Not so for a
                    # redirect to https: that is one URL's, and libcurl ignores the proxy a host
                    # application may have given Qt, so the host's other URLs stay with Qt.
                    self._hosts_via_curl.add(job.parsed.host_key)
                # From the start again through libcurl, which follows the redirect, or reads
                # past the interim answer, itself; a revalidation too, with its validators.
                job.via_curl = True
                self._fetch_again(job)
                return
            if job.revalidating is not None:
                self._end_revalidation(job)
            elif error.kind is ErrorKind.REDIRECT_NEEDS_TLS:
                self._fail(job, f"{error.message}, and this transport has no TLS "
                                + _ANOTHER_TRANSPORT_MAY, error.remedy)
            else:
                self._fail(job, f"{error.message} {_ANOTHER_TRANSPORT_MAY}", error.remedy)
            return
        if error.says_gone:
            # Else a Reload that met a 404 left the thumbnail on disk, shown as loaded at the
            # next start, and a revalidation kept showing it.
            self._forget_thumbnail(job.url, job.spec)
        elif job.revalidating is not None:
            self._end_revalidation(job)  # the server may be back: its thumbnail stays shown
            return
        if error.transient and job.attempt < self._limits.max_retries:
            self._schedule_retry(job, error)
            return
        # The last attempt's reason alone ("timed out after 30 s") undersells a row that took
        # four attempts and their backoff to give up.
        self._fail(job, error.message if job.attempt == 0
                   else f"{error.message}, after {job.attempt + 1} attempts",
                   error.remedy)

    def _fetch_again(self, job: _Job) -> None:
        """Back in the queue at once, a new token making any late result of the old transfer
        stale."""
        job.stage = _QUEUED
        job.token = next(self._tokens)
        self._enqueue(job)

    def _schedule_retry(self, job: _Job, error: TransferError) -> None:
        job.attempt += 1
        self.stats["retries"] += 1
        ceiling = self._limits.retry_base_delay_s * (2 ** (job.attempt - 1))
        # Equal jitter: at least half the backoff, so a burst of failures does not come back as
        # a burst; the random half spreads them out.
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if error.retry_after_s is not None:
            delay = max(delay, error.retry_after_s)
        delay = min(delay, self._limits.retry_max_delay_s)
        job.stage = _BACKOFF
        job.token = next(self._tokens)
        token = job.token
        timer = QTimer(self)  # owned, so it dies with the loader instead of firing into it
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self._retry_due(job.url, token, timer))
        self._retry_timers.add(timer)
        timer.start(int(delay * 1000))

    def _retry_due(self, url: str, token: int, timer: QTimer) -> None:
        self._retry_timers.discard(timer)
        timer.deleteLater()
        job = self._jobs.get(url)
        if job is None or job.token != token or job.stage != _BACKOFF:
            return
        job.stage = _QUEUED
        self._enqueue(job)

    def _decode(self, job: _Job, result: TransferResult) -> None:
        job.stage = _DECODING
        job.settings_seen = dict(self._settings_changes)  # the limits it is handed below
        job.body = result
        job.token = next(self._tokens)
        size = len(result.body)
        self._decode_backlog[job.token] = size
        self._decode_backlog_bytes += size
        # Decodes run in the order of their priority, as downloads do: the screen's rows first.
        self._decoder.submit(job.priority, job.token, self._decode_job, job.url, job.spec,
                             self._limits, result, job.generation)

    @staticmethod
    def _decode_job(url: str, spec: ThumbnailSpec, limits: LoadLimits, result: TransferResult,
                    generation: int):
        decoded = decode_thumbnail(result.body, spec, limits, url, result.content_type,
                                   result.content_encoding, defer_sandbox=True)
        if decoded.decode_in_sandbox is not None:
            return _ForTheSandbox(url, spec, result, decoded.decode_in_sandbox, generation)
        return ImageLoader._decode_outcome(url, spec, result, decoded, generation)

    @staticmethod
    def _sandbox_job(handed_over: _ForTheSandbox):
        return ImageLoader._decode_outcome(handed_over.url, handed_over.spec, handed_over.result,
                                           handed_over.decode(), handed_over.generation)

    @staticmethod
    def _decode_outcome(url: str, spec: ThumbnailSpec, result: TransferResult,
                        decoded: DecodedThumbnail, generation: int) -> _DecodeOutcome:
        thumbnail = None
        if decoded.ok:
            thumbnail = CachedThumbnail(decoded.image, decoded.original_size, result.etag,
                                        result.last_modified)
        return _DecodeOutcome(url, spec, result, thumbnail, decoded.error, decoded.remedy,
                              generation)

    def _store_on_disk(self, url: str, spec: ThumbnailSpec, thumbnail: CachedThumbnail) -> None:
        """Write behind, on the I/O thread after every pending lookup, once the loader has
        nothing in progress (or the limits above say so): on two cores each write's encode and
        file creation took CPU from the downloads and decodes still running (over HTTP/2,
        0.10-0.16 s of a 0.85 s load)."""
        if self.disk is None or not _names_a_network_image(url):
            return
        self._held_disk_writes.append((self.disk, self.key_for(url, spec), thumbnail))
        self._held_disk_write_bytes += thumbnail.image.sizeInBytes()
        if not self._held_disk_writes_deadline.isActive():
            self._held_disk_writes_deadline.start(int(HELD_DISK_WRITES_MAX_S * 1000))
        if self._held_disk_write_bytes >= self._next_eviction_check_bytes:
            # Not per write: this is a dict lookup for each write held. Only what the memory
            # cache let go is written now: the rest costs no memory held.
            evicted = [held for held in self._held_disk_writes if held[1] not in self.thumbnails]
            release_at = EVICTED_HELD_WRITES_RELEASE_BYTES
            if sum(held[2].image.sizeInBytes() for held in evicted) >= release_at:
                self._release_disk_writes(evicted)
            self._next_eviction_check_bytes = self._held_disk_write_bytes + release_at

    def _forget_thumbnail(self, url: str, spec: ThumbnailSpec) -> None:
        """The server says the image is gone: its thumbnail at `spec` and its original are
        dropped from memory and from disk (other sizes age out, as after a no-store), by every
        loader: another model's loader, re-decoding its own copy of the original for a tile
        made again, wrote the thumbnail back to disk."""
        self.thumbnails.discard(self.key_for(url, spec))
        for loader in list(_LIVE_LOADERS):
            if not loader._closed:
                loader.encoded.discard(url)
                loader._forget_on_disk(url, spec)

    def _forget_on_disk(self, url: str, spec: ThumbnailSpec) -> None:
        """The server now says no-store: its thumbnail held for writing, or written from an
        earlier answer, is not kept either. After the writes queued before it, in order."""
        if self.disk is None:
            return
        key = self.key_for(url, spec)
        held = [write for write in self._held_disk_writes if write[1] == key]
        if held:
            self._held_disk_writes = [write for write in self._held_disk_writes if write[1] != key]
            self._held_disk_write_bytes -= sum(write[2].image.sizeInBytes() for write in held)
        entry = (self.disk.directory, key)
        self._discards_queued[entry] = self._discards_queued.get(entry, 0) + 1
        _count_discards(entry, +1)
        self._io.submit((_IO_STORE, 0), _DiskDiscard(next(self._tokens), entry), self.disk.discard,
                        key)

    def _release_disk_writes_if_idle(self) -> None:
        # Not while close() cancels the jobs: it decides itself whether held writes still go.
        if self._held_disk_writes and not self._jobs and not self._closed:
            self._release_disk_writes()

    def _release_disk_writes(self, writes: Optional[List[tuple]] = None) -> None:
        """Hand held writes to the disk thread: `writes` of them, or all."""
        if writes is None or len(writes) == len(self._held_disk_writes):
            self._held_disk_writes_deadline.stop()
            writes, self._held_disk_writes = self._held_disk_writes, []
            self._next_eviction_check_bytes = 0
        else:
            released = set(map(id, writes))
            self._held_disk_writes = [held for held in self._held_disk_writes
                                      if id(held) not in released]
        for disk, key, thumbnail in writes:
            write = _DiskWrite(next(self._tokens), thumbnail.image.sizeInBytes())
            self._held_disk_write_bytes -= write.size
            self._queued_disk_write_bytes += write.size
            self._io.submit((_IO_STORE, 0), write, disk.store, key, thumbnail)

    def _disk_is_behind(self) -> bool:
        return self._queued_disk_write_bytes >= QUEUED_DISK_WRITES_BYTES

    def _disk_write_done(self, write: "_DiskWrite") -> None:
        was_behind = self._disk_is_behind()
        self._queued_disk_write_bytes -= write.size
        if was_behind and not self._disk_is_behind():
            self._request_schedule()

    def _job_with_token(self, token) -> Optional[_Job]:
        """The job a worker's token belongs to (a scan: only for jobs that raised)."""
        return next((job for job in self._jobs.values() if job.token == token), None)

    def _on_decoded(self, token, outcome) -> None:
        self._release_disk_writes_if_idle()  # also after a late or ignored result
        if isinstance(outcome, Exception):  # decode_thumbnail reports its own errors; a last guard
            self._release_backlog(token)
            job = self._job_with_token(token)
            if job is not None:
                self._fail(job, f"could not decode: {outcome}")
            return
        if isinstance(outcome, _ForTheSandbox):
            job = self._jobs.get(outcome.url)
            if job is None or job.token != token:
                self._release_backlog(token)
            else:  # same token: the job is still decoding, and cancelled as one
                self._sandboxed.submit(job.priority, token, self._sandbox_job, outcome)
            return
        url, spec, result, thumbnail, error, remedy, generation = outcome
        self._release_backlog(token)
        job = self._jobs.get(url)
        current = job is not None and job.token == token
        # A result nobody waits for any more (its row went away, it was restarted) still fills
        # the caches, unless the URL was fetched again on purpose since it began
        # (refetch()): finishing last, this older picture would replace the newer one.
        if thumbnail is not None and not self._refetched_since(url, generation):
            self.thumbnails.put(self.key_for(url, spec), thumbnail)
            if result.may_be_stored:
                self._store_on_disk(url, spec, thumbnail)
            else:
                self._forget_on_disk(url, spec)
            downloaded = result.request_id != _FROM_ENCODED_CACHE
            if downloaded and 0 < len(result.body) <= ENCODED_ENTRY_MAX_BYTES:
                self.encoded.put(url, result)
        if not current:
            self._release_disk_writes_if_idle()  # the write just held, when nothing else runs
            return
        job.body = None
        if thumbnail is None:
            self._fail(job, error, remedy)
        else:
            self._finish(job, thumbnail)

    def _finish(self, job: _Job, thumbnail: CachedThumbnail, keep_job: bool = False) -> None:
        if not keep_job:
            self._jobs.pop(job.url, None)
        waiters, job.waiters = job.waiters, []
        self.thumbnailReady.emit(job.url, thumbnail)
        for waiter in waiters:
            waiter(thumbnail, "")
        if not keep_job:
            self._job_ended()

    def _end_revalidation(self, job: _Job) -> None:
        """The thumbnail delivered from disk stands: the screen keeps it, and only those who
        began to wait on the job since (the provider) are answered."""
        self._jobs.pop(job.url, None)
        waiters, job.waiters = job.waiters, []
        for waiter in waiters:
            waiter(job.revalidating, "")
        self._job_ended()

    def _fail(self, job: _Job, reason: str, remedy: Remedy = Remedy.RETRY) -> None:
        seen = job.settings_seen.get(remedy)
        if seen is not None and seen != self._settings_changes[remedy] \
                and self._jobs.get(job.url) is job:
            # Refused by the settings its transfer or decode began under, since loosened or
            # replaced (a transfer keeps the byte cap and transport it started with, a decode
            # the limits it was handed): judged again under the new ones, as the rows refused
            # before the change are. Else its tile, with no Retry, stayed refused for good.
            if job.revalidating is not None:
                # Its validators now name the refused answer: a 304 to them would keep the
                # old picture and never judge the new one.
                job.etag, job.last_modified = job.revalidating.etag, job.revalidating.last_modified
            self._fetch_again(job)
            return
        self._jobs.pop(job.url, None)
        waiters, job.waiters = job.waiters, []
        self.loadFailed.emit(job.url, reason, remedy)
        for waiter in waiters:
            waiter(None, reason)
        self._job_ended()

    def _job_ended(self) -> None:
        self.jobEnded.emit()
        self._release_disk_writes_if_idle()

    def _restart(self, job: _Job) -> None:
        self._stop(job)
        self._start_pipeline(job)

    def _stop(self, job: _Job) -> None:
        if job.stage == _FETCHING:
            self._abort_transfer(job)
        elif job.stage == _DECODING:
            self._decoder.cancel(job.token)
            self._sandboxed.cancel(job.token)
            self._release_backlog(job.token)
            job.body = None
        elif job.stage == _DISK_LOOKUP:
            self._io.cancel(job.token)
        job.token = next(self._tokens)  # late results and stale heap entries are now ignored

    def _release_backlog(self, token: int) -> None:
        size = self._decode_backlog.pop(token, None)
        if size is not None:
            was_full = self._decode_backlog_bytes >= DECODE_BACKLOG_BYTES
            self._decode_backlog_bytes -= size
            if was_full and self._decode_backlog_bytes < DECODE_BACKLOG_BYTES:
                self._request_schedule()

    def _abort_transfer(self, job: _Job) -> None:
        if job.transport is not None and job.request_id in self._by_request:
            job.transport.abort(job.request_id)
            self._release_slot(job)

    def _release_slot(self, job: _Job) -> None:
        if self._by_request.pop(job.request_id, None) is None:
            return
        self._downloading_bytes -= job.received
        host = job.parsed.host_key
        self._host_in_flight[host] -= 1
        if not self._host_in_flight[host]:
            del self._host_in_flight[host]
            self._link_arrivals.pop(host, None)  # the next transfer starts a fresh record
        job.transport = None
        self._request_schedule()

    # -- timeouts --------------------------------------------------------------------------
    def _arm_watchdog(self) -> None:
        if self._watchdog.isActive():
            return
        limits = self._limits
        shortest = min(limits.connect_timeout_s, limits.idle_timeout_s, limits.slow_window_s)
        self._watchdog.start(max(_MIN_WATCHDOG_MS, int(shortest * 1000 / 4)))

    def _own_timeout(self, job: _Job, now: float) -> Optional[str]:
        limits = self._limits
        if not job.responded:
            if now - job.started_at > limits.connect_timeout_s:
                return f"timed out after {format_seconds(limits.connect_timeout_s)} (no response)"
            return None
        return job.arrivals.timeout_reason(now, limits)

    def _stream_timeout(self, job: _Job, now: float, link_reason: Optional[str]) -> Optional[str]:
        limits = self._limits
        if not job.responded:
            # It may wait for a free stream (the server allows so many) while the link is busy:
            # given up once the link, too, has been quiet that long.
            waited = now - job.started_at
            ceiling = limits.connect_timeout_s * STREAM_PATIENCE
            if waited > ceiling:
                return f"timed out after {format_seconds(ceiling)} (no response)"
            if min(waited, now - job.link.last_byte_at) > limits.connect_timeout_s:
                return f"timed out after {format_seconds(limits.connect_timeout_s)} (no response)"
            return None
        if link_reason is not None:
            return link_reason
        ceiling = limits.idle_timeout_s * STREAM_PATIENCE
        if now - job.arrivals.last_byte_at > ceiling:
            return f"timed out after {format_seconds(ceiling)} (no data)"
        return None

    def _check_timeouts(self) -> None:
        if not self._by_request:
            self._watchdog.stop()
            return
        now = time.monotonic()
        limits = self._limits
        # Judged once per tick: the verdict on a link holds for every stream on it.
        link_reasons = {id(link): link.timeout_reason(now, limits)
                        for link in self._link_arrivals.values()}
        for request_id, job in list(self._by_request.items()):
            if self._by_request.get(request_id) is not job:
                continue  # ended while this pass ran: a failure's signal handler may cancel others
            if job.link is None:
                error = self._own_timeout(job, now)
            else:
                error = self._stream_timeout(job, now, link_reasons.get(id(job.link)))
            if error is not None:
                self._abort_transfer(job)
                self._on_transfer_error(job, TransferError(ErrorKind.TIMEOUT, error))
