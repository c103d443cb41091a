"""ImageGalleryModel: the list of URLs QML (or Python) shows, with each row's load state.

The model drives the delegates: rows carry a status, a reason and an `image://` source that
changes whenever the thumbnail does, so a delegate binds to roles and never fetches anything.
Changes are batched: a burst of 200 results becomes a few `dataChanged` ranges on the next event
loop turn, not 200 repaints.
"""
from __future__ import annotations

import base64
import enum
import functools
import itertools
import logging
import math
import time
import weakref
from collections import defaultdict, deque
from dataclasses import replace
from typing import Dict, Iterable, List, Optional, Set, Tuple

from PyQt5 import sip
from PyQt5.QtCore import (Q_ENUM, QAbstractListModel, QByteArray, QModelIndex,
                          QObject, QSize, Qt, QTimer, pyqtProperty, pyqtSignal, pyqtSlot)

from .cache import CachedThumbnail, disk_cache_folder
from .decode import CROP, FIT, ThumbnailSpec
from .limits import LoadLimits
from .loader import BACKGROUND, ImageLoader
from .remedy import Remedy
from .screen_rows import ScreenRows
from .transport.select import TRANSPORT_MODES, transport_mode_from_environment
from .url_policy import DEFAULT_ALLOWED_SCHEMES, ParsedImageUrl, parse_image_url

# Rows whose thumbnail the memory cache evicted: an asynchronous provider, which asks the
# loader to bring the thumbnail back.
EVICTED_PROVIDER_NAME = "imagegallery"
# Rows whose thumbnail is in memory point here instead: a synchronous provider, so an Image
# shows the picture in the turn its source is set, not after a round trip through Qt's pixmap
# reader thread and the GUI thread's queue (9-24 ms while a new list builds its tiles).
MEMORY_PROVIDER_NAME = "imagegallery-memory"

# Rows off screen reach the loader in slices of at most this much GUI-thread time per event-loop
# turn, so a list of 5,000 URLs costs a millisecond or two a turn instead of one long stall, and
# the loader holds at most this many jobs (visible rows are requested at once, whatever this
# says). A slice of 100 rows took 4-5 ms while a new list's first replies and tiles competed
# for the cores, in front of the tiles' first frame.
FEED_SECONDS_PER_TURN = 0.002
MAX_LOADER_JOBS = 600
# Download progress repaints tiles; a few updates a second read as smooth and cost little.
PROGRESS_INTERVAL_MS = 100
# A thumbnail that arrives this long after the last flush is published at once; one that comes
# sooner waits for the batched flush, queued behind whatever else the turn holds. Always
# deferred, the first thumbnail of a new list waited behind a frame being drawn (10 ms on W3).
IMMEDIATE_FLUSH_AFTER_S = 0.008

# source id -> loader, for the image providers to find the loader behind a row's source. Each
# model has its own source id, also when it shares a loader: the id names whose URL rules a
# miss is judged by (ImageLoader.parse_url_for).
_loaders_by_source: "weakref.WeakValueDictionary[int, ImageLoader]" = weakref.WeakValueDictionary()
_source_ids = itertools.count(1)


def loader_for_source(source_id: int) -> Optional[ImageLoader]:
    return _loaders_by_source.get(source_id)


def encode_source_url(url: str) -> str:
    """URL-safe, so Qt hands the provider the same characters back whatever the URL holds."""
    return base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def decode_source_url(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _row_numbers(values) -> List[int]:
    """Row numbers from QML (a JavaScript array's numbers arrive as floats); anything else,
    and a row a proxy could not map (-1), is left out."""
    return [int(value) for value in values or ()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value < math.inf]


def _ranges(sorted_numbers: List[int]):
    """[1, 2, 3, 7, 8] -> (1, 3), (7, 8): one dataChanged per contiguous run."""
    start = previous = None
    for number in sorted_numbers:
        if start is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            yield start, previous
        start = previous = number
    if start is not None:
        yield start, previous


_log = logging.getLogger("imagegallery.model")
_MODEL_CLAIMS = itertools.count(1)  # each model's claim number in its loader
# Source versions, unique in the process: a row made again for a URL must never reuse a source
# string QML's pixmap cache may still hold for an older picture of that URL.
_SOURCE_VERSIONS = itertools.count(1)


class _Row:
    __slots__ = ("url", "parsed", "status", "error", "remedy", "received", "total",
                 "image_size", "version", "reload_owed", "in_feed", "__weakref__")

    def __init__(self, url: str):
        self.url = url
        self.parsed: Optional[ParsedImageUrl] = None  # parsed when first requested
        self.status = ImageGalleryModel.Status.Null
        self.error = ""
        # What may undo an Error: RETRY, unless this client's own rules, limits or transport
        # decided it; then a retry gets the same answer, and only a change of those may not.
        self.remedy = Remedy.RETRY
        self.received = 0
        self.total = -1
        # Made once Ready, not up front: a QSize per row cost 5,000 Qt allocations when a long
        # list was set.
        self.image_size: Optional[QSize] = None
        # A new source string for each new thumbnail (unique in the process), so QML reloads
        # instead of reusing a pixmap it cached for an older picture of the URL.
        self.version = 0
        # A reload's life, per row: reload(), retry() or retryFailed() sets `reload_owed` (the row
        # is Null, and no cache may answer it); the row's next request is then a refetch, its URL
        # goes into the model's `_reloads_in_flight` and the flag is cleared; the refetch's
        # thumbnail (or failure) takes the URL out again.
        self.reload_owed = False
        self.in_feed = False  # in the model's feed queue: queued once, however often asked


class ImageGalleryModel(QAbstractListModel):
    """A list of image URLs and their thumbnails, for a QML GridView or any Python code.

    Thread: GUI thread only. Usable without QML: read `data()` and wait on `finished`.
    A model makes its own loader, closed when the model goes. One given to several models (the
    `loader` argument) stays its owner's to close, and its settings are theirs in common:
    thumbnail size, fill mode, transport, caFile, cacheDirectory, revalidate, http2Cleartext and
    the limits (the last model to set one sets it for all). Each model keeps its own list, load
    policy, prefetch margin and URL rules (allowedSchemes).
    """

    class Status(enum.IntEnum):
        """The same names and values as Qt Quick's Image.status."""

        Null = 0
        Ready = 1
        Loading = 2
        Error = 3

    Q_ENUM(Status)

    class FillMode(enum.IntEnum):
        """The same values as Image.PreserveAspectFit and Image.PreserveAspectCrop."""

        PreserveAspectFit = 1
        PreserveAspectCrop = 2

    Q_ENUM(FillMode)

    class LoadPolicy(enum.IntEnum):
        LoadAll = 0  # every row loads, visible ones first; `finished` fires when all settled
        LoadVisible = 1  # only rows on screen and a prefetch margin (very long lists)

    Q_ENUM(LoadPolicy)

    UrlRole = Qt.UserRole + 1
    StatusRole = Qt.UserRole + 2
    SourceRole = Qt.UserRole + 3
    ErrorStringRole = Qt.UserRole + 4
    BytesReceivedRole = Qt.UserRole + 5
    BytesTotalRole = Qt.UserRole + 6
    ImageSizeRole = Qt.UserRole + 7
    ProgressRole = Qt.UserRole + 8
    RetryableRole = Qt.UserRole + 9

    _ROLE_NAMES = {
        UrlRole: b"url", StatusRole: b"status", SourceRole: b"source",
        ErrorStringRole: b"errorString", BytesReceivedRole: b"bytesReceived",
        BytesTotalRole: b"bytesTotal", ImageSizeRole: b"imageSize", ProgressRole: b"progress",
        RetryableRole: b"retryable",
    }

    # What a load-state change can touch: everything but the URL, so delegates do not re-run
    # their URL-derived bindings (file name, tooltip, accessible name) on every result.
    _STATE_ROLES = [StatusRole, SourceRole, ErrorStringRole, BytesReceivedRole, BytesTotalRole,
                    ImageSizeRole, ProgressRole, RetryableRole, Qt.ToolTipRole]

    urlsChanged = pyqtSignal()
    countChanged = pyqtSignal()
    # loadedCount, failedCount, retryableFailedCount, pendingCount, progress, busy
    countsChanged = pyqtSignal()
    thumbnailSizeChanged = pyqtSignal()
    fillModeChanged = pyqtSignal()
    devicePixelRatioChanged = pyqtSignal()
    loadPolicyChanged = pyqtSignal()
    settingsChanged = pyqtSignal()  # transport, limits, cache folder, allowed schemes
    # Nothing is loading any more: with LoadAll every row has settled (Ready or Error); with
    # LoadVisible the rows on screen and in the prefetch margin have.
    finished = pyqtSignal()

    def __init__(self, parent: Optional[QObject] = None, loader: Optional[ImageLoader] = None):
        super().__init__(parent)
        # A loader given (shared by several models, say) keeps its limits: `limits` and the
        # properties built on it always read the loader's, so they report what it really uses.
        self._loader = loader or ImageLoader(LoadLimits(), transport_mode_from_environment())
        # This model's name in the loader's claims: with a shared loader, the URLs this model
        # drops stay loading while another model still wants them.
        self._claim = next(_MODEL_CLAIMS)
        if loader is None:
            # The model's own loader ends with it (a page QML unloads takes its model along), or
            # its threads went on and the thumbnails held for the disk were lost. Whichever
            # comes first: the wrapper's finalizer, or the C++ model's `destroyed` (a host that
            # keeps `galleryModel` keeps the wrapper alive). The slot is the loader's, which
            # outlives the model: a slot of the model's own was run by PyQt after freeing it,
            # once the model's Python side had gone first (a segfault).
            retirement = weakref.finalize(self, self._loader.retire)
            retirement.atexit = False  # at exit the application quits first and closes loaders
            self.destroyed.connect(self._loader.retire)
        self._source_id = next(_source_ids)
        _loaders_by_source[self._source_id] = self._loader
        weakref.finalize(self, self._loader.forget_url_rules, self._source_id).atexit = False
        self._loader.thumbnailReady.connect(self._on_thumbnail_ready)
        self._loader.loadFailed.connect(self._on_load_failed)
        self._loader.remedyAvailable.connect(self._reload_rows_awaiting)
        self._loader.loadStarted.connect(self._on_load_started)
        self._loader.loadProgress.connect(self._on_load_progress)
        self._loader.jobEnded.connect(self._schedule_feed)

        self._rows: List[_Row] = []
        self._rows_by_url: Dict[str, List[_Row]] = defaultdict(list)
        self._index_of: Optional[Dict[int, int]] = None  # id(row) -> row number, rebuilt lazily
        # url -> the numbers of its rows, ascending, only for URLs listed more than once (see
        # _url_priority); None: rebuilt when next needed.
        self._row_numbers_of_repeated_url: Optional[Dict[str, List[int]]] = None
        self._thumbnail_size = QSize(240, 140)
        self._fill_mode = self.FillMode.PreserveAspectFit
        self._device_pixel_ratio = 1.0
        self._load_policy = self.LoadPolicy.LoadAll
        self._allowed_schemes = list(DEFAULT_ALLOWED_SCHEMES)
        self._allow_plain_paths = False
        self._set_url_rules()
        self._screens = ScreenRows()  # what each view shows: the rows that load first
        # url -> its priority, while one _rescore runs (the screens cannot change meanwhile): a
        # URL in 5,000 rows was otherwise scored again for each of its rows in reach.
        self._url_priorities_this_rescore: Optional[Dict[str, tuple]] = None
        self._watched_views: Set[int] = set()  # views whose destruction ends their report
        self._prefetch_rows = 24

        self._counts = {status: 0 for status in self.Status}
        self._retryable_failures = 0  # rows in Error whose remedy is RETRY
        self._fraction: Dict[str, float] = {}  # url -> fraction received, for rows Loading
        # The sum of fraction x rows over _fraction, kept as fractions change; None after the
        # rows change, until `progress` sums it again. Summed at every flush it cost O(URLs
        # downloaded but not yet decoded) each time: 0.1 s of the GUI thread on W8, where
        # hundreds wait for a decoder.
        self._partial_progress: Optional[float] = 0.0
        # URLs whose reload() or retry() has not delivered yet: cancelled on scrolling away, they
        # must come from the network again when back, not from the memory cache's older picture.
        self._reloads_in_flight: Set[str] = set()
        self._feed_queue: deque = deque()  # rows waiting for their turn to reach the loader
        # A zero-interval timer, not QTimer.singleShot(0): Qt runs a zero-delay single shot as a
        # posted event within the current pass over posted events, so slices fed that way ran
        # back to back with no paint or input between them.
        self._feed_timer = QTimer(self)
        self._feed_timer.setSingleShot(True)
        self._feed_timer.setInterval(0)
        self._feed_timer.timeout.connect(self._feed)
        self._progress_dirty: Dict[int, _Row] = {}
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self._flush_progress)
        self._dirty: Dict[int, _Row] = {}
        self._counts_dirty = False
        self._flush_pending = False
        self._last_flush_at = 0.0
        self._finished_owed = False  # a `finished` is owed once the rows settle
        self._published = (0, 0, 0, 0.0, False)
        self._apply_spec()

    # -- Qt model interface ----------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def roleNames(self) -> Dict[int, QByteArray]:
        return {role: QByteArray(name) for role, name in self._ROLE_NAMES.items()}

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role in (self.UrlRole, Qt.DisplayRole):
            return row.url
        if role == self.StatusRole:
            return int(row.status)
        if role == self.SourceRole:
            return self._source_for(row)
        if role == self.ErrorStringRole:
            return row.error
        if role == self.BytesReceivedRole:
            return row.received
        if role == self.BytesTotalRole:
            return row.total
        if role == self.ImageSizeRole:
            return row.image_size if row.image_size is not None else QSize()
        if role == self.ProgressRole:
            return self._row_progress(row)
        if role == self.RetryableRole:
            return self._retryable(row)
        if role == Qt.ToolTipRole:
            return row.url if not row.error else f"{row.url}\n{row.error}"
        return None

    def _is_retryable_failure(self, status: "ImageGalleryModel.Status", remedy: Remedy) -> int:
        """1 for a failure `retryable` calls worth a retry, else 0. (A URL refused when parsed
        always has Remedy.NONE, so the remedy alone decides, as in _retryable.)"""
        return int(status == self.Status.Error and remedy is Remedy.RETRY)

    @staticmethod
    def _retryable(row: _Row) -> bool:
        """Whether retry() can change the row. Not where this client's own rules or build
        decided the failure, which comes back the same every time until a setting changes: a URL
        refused before any request (malformed, or a scheme not allowed), an SVG, a response or
        image over the limits, a redirect the policy refuses, https on a transport without TLS.
        A change of `allowedSchemes`, the limits or `transport` loads such rows again by itself.
        Any other failure can change: servers fix statuses and replace bodies, networks recover."""
        return row.remedy is Remedy.RETRY and (row.parsed is None or row.parsed.ok)

    def _source_for(self, row: _Row, promise: bool = True) -> str:
        """The row's image source. A view asks for it to show it, so the thumbnail is promised
        to the memory provider; `get()` only reports it (a promise per row of a long list, for
        a selection through a proxy, pushed out those of the tiles on screen)."""
        if row.status != self.Status.Ready:
            return ""
        spec = self._loader.spec
        if promise:
            in_memory = self._loader.promise_thumbnail(row.url) is not None
        else:
            in_memory = self._loader.key_for(row.url) in self._loader.thumbnails
        provider = MEMORY_PROVIDER_NAME if in_memory else EVICTED_PROVIDER_NAME
        return (f"image://{provider}/{self._source_id}/{spec.width}x{spec.height}/"
                f"{spec.fill_mode}/{row.version}/{encode_source_url(row.url)}")

    def _row_progress(self, row: _Row) -> float:
        if row.status in (self.Status.Ready, self.Status.Error):
            return 1.0
        if row.status == self.Status.Loading:
            return self._fraction.get(row.url, 0.0)
        return 0.0

    # -- the URL list ----------------------------------------------------------------------
    def _get_urls(self) -> List[str]:
        return [row.url for row in self._rows]

    def _set_urls(self, urls: Iterable[str]) -> None:
        urls = [u if isinstance(u, str) else "" for u in (urls or [])]
        if urls == self._get_urls():
            return
        self._replace_rows(urls)
        # A new list owes a `finished` once it has settled, also one of rows that had settled
        # already (reordered, some removed, or none left): "set urls, wait for finished()" must
        # never wait for ever. Edits (append, remove) owe one only if they started loads.
        self._finished_owed = True
        self.urlsChanged.emit()

    urls = pyqtProperty("QStringList", _get_urls, _set_urls, notify=urlsChanged)

    def _replace_rows(self, urls: List[str]) -> None:
        """Keep rows whose URL stays (state, image, download), remove the rest, insert the new."""
        available = defaultdict(deque)
        for row in self._rows:
            available[row.url].append(row)
        target: List[Optional[_Row]] = []
        kept = set()
        for url in urls:
            pool = available.get(url)
            if pool:
                row = pool.popleft()
                kept.add(id(row))
                target.append(row)
            else:
                target.append(None)

        # Remove the rows not kept, in contiguous ranges from the end (so the numbers of those
        # still to remove stay right).
        dropped = [number for number, row in enumerate(self._rows) if id(row) not in kept]
        for first, last in reversed(list(_ranges(dropped))):
            self._remove_range(first, last)

        kept_order = [row for row in target if row is not None]
        if kept_order != self._rows:
            # The kept rows were reordered: one reset, still without losing any state.
            self.beginResetModel()
            fresh = iter(self._new_rows([url for row, url in zip(target, urls) if row is None]))
            self._rows = [row if row is not None else next(fresh) for row in target]
            self._forget_row_numbers()
            self.endResetModel()
            self._request_or_queue((number, row) for number, row in enumerate(self._rows)
                                   if row.status == self.Status.Null)
            self._schedule_feed()
        else:
            # Insert the new rows in contiguous ranges from the start: each lands at its number
            # in the new list, the rows before it being in place already.
            added = [number for number, row in enumerate(target) if row is None]
            for first, last in _ranges(added):
                self._insert_rows(first, urls[first:last + 1])
        self._after_structure_change()

    def _new_rows(self, urls: List[str]) -> List[_Row]:
        """Rows for `urls`, registered by URL and counted, in bulk: a list of 5,000 URLs is set
        in one GUI-thread turn, and per-row calls were most of its cost (12 -> 4 ms)."""
        rows = [_Row(url) for url in urls]
        by_url = self._rows_by_url
        for row in rows:
            by_url[row.url].append(row)
        self._counts[self.Status.Null] += len(rows)
        self._partial_progress = None
        return rows

    def _insert_rows(self, first: int, urls: List[str]) -> None:
        last = first + len(urls) - 1
        self._screens.rows_inserted(first, len(urls), len(self._rows))
        self.beginInsertRows(QModelIndex(), first, last)
        new_rows = self._new_rows(urls)
        self._rows[first:first] = new_rows
        self._forget_row_numbers()
        self.endInsertRows()
        # By their numbers now: a slot on rowsInserted may have removed or moved rows (a host's
        # "keep the last N"), and a removed row requested by its old number counted as Loading
        # for ever.
        self._request_or_queue((number, row) for number, row in
                               ((self._number_of(row), row) for row in new_rows) if number >= 0)
        if self._load_policy == self.LoadPolicy.LoadAll:
            self._schedule_feed()

    def _remove_range(self, first: int, last: int) -> None:
        self._screens.rows_removed(first, last, len(self._rows))
        self.beginRemoveRows(QModelIndex(), first, last)
        removed = self._rows[first:last + 1]
        del self._rows[first:last + 1]
        self._forget_row_numbers()
        self._partial_progress = None
        # The counts, the URL index and the loader's jobs follow before endRemoveRows: a slot on
        # rowsRemoved (a host refilling an emptied gallery) found them still counting the rows.
        for row in removed:
            self._counts[row.status] -= 1
            self._retryable_failures -= self._is_retryable_failure(row.status, row.remedy)
            self._dirty.pop(id(row), None)
            siblings = self._rows_by_url.get(row.url)
            if siblings is not None:
                siblings.remove(row)
                if not siblings:
                    del self._rows_by_url[row.url]
                    self._fraction.pop(row.url, None)
                    self._reloads_in_flight.discard(row.url)
                    self._loader.cancel(row.url, self._claim)
        self.endRemoveRows()

    def _after_structure_change(self) -> None:
        # Rows a removal or an insertion moved onto the screen or into the margin: the view
        # reports the same range as before, so nothing else would request or promote them.
        self._rescore(self._rows_in_reach())
        # The new rows' requests are queued with their priorities: send them before the view
        # spends this turn building delegates for the rows.
        self._loader.dispatch_now()
        self.countChanged.emit()
        self._counts_dirty = True
        # Rows that settled during this change (URLs refused when parsed) owe a `finished`: a
        # list of nothing but junk must not leave a waiter hanging. A debt already owed stays
        # owed, even once a removal has settled every row left.
        self._finished_owed = self._finished_owed or not self._settled() or bool(self._dirty)
        # The feed waits for results once the loader is full; the jobs of removed rows were
        # cancelled and will send none.
        self._schedule_feed()
        self._schedule_flush()

    @pyqtSlot("QStringList")
    @pyqtSlot(str)
    def append(self, urls) -> None:
        """Add URLs at the end (a string or a list of strings)."""
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            return
        self._insert_rows(len(self._rows), [u if isinstance(u, str) else "" for u in urls])
        self._after_structure_change()
        self.urlsChanged.emit()

    @pyqtSlot(int)
    def remove(self, row: int) -> None:
        if 0 <= row < len(self._rows):
            self._remove_range(row, row)
            self._after_structure_change()
            self.urlsChanged.emit()

    @pyqtSlot(int)
    def retry(self, row: int) -> None:
        """Load row `row` again from the network, whatever its state. A row whose URL is
        refused (malformed, or a scheme not allowed) stays as it is, and one whose reload is on
        its way is left to it. Any other row is fetched again, also a failure the `retryable`
        role calls final (over the limits, say), which comes back the same."""
        if 0 <= row < len(self._rows):
            self._reload([self._rows[row].url])

    @pyqtSlot()
    def retryFailed(self) -> None:
        """Load again every failed row a retry can change (`retryable`, retryableFailedCount);
        retry(row) fetches any row."""
        self._reload({row.url for row in self._rows
                      if row.status == self.Status.Error and self._retryable(row)})

    @pyqtSlot()
    def reload(self) -> None:
        """Fetch every row again from the network (the disk cache is bypassed)."""
        self._reload(list(self._rows_by_url))

    def _reload(self, urls) -> None:
        """Back to Null, then requested like a new list: the screen first, the rest through
        the feed (or, with LoadVisible, once they scroll into view), each from the network. A
        URL whose reload is still on its way is left to it: a double click on Retry sent two."""
        for url in urls:
            rows = self._rows_by_url.get(url, [])
            if not rows or not self._parsed(rows[0]).ok or url in self._reloads_in_flight \
                    or any(row.reload_owed for row in rows):
                continue
            self._unload(url, reload_owed=True)
        self._request_or_queue((number, row) for number, row in enumerate(self._rows)
                               if row.reload_owed and row.status == self.Status.Null)
        self._schedule_feed()
        self._loader.dispatch_now()

    @pyqtSlot(int, result="QVariantMap")
    def get(self, row: int) -> dict:
        """One row's roles as a map (for QML code outside delegates)."""
        if not 0 <= row < len(self._rows):
            return {}
        index = self.index(row)
        roles = {name.decode(): self.data(index, role) for role, name in self._ROLE_NAMES.items()
                 if role != self.SourceRole}
        roles["source"] = self._source_for(self._rows[row], promise=False)
        return roles

    @pyqtSlot(str, result=bool)
    def failed(self, url: str) -> bool:
        """Whether `url` is listed and every row of it failed (Error): nothing of it can be
        shown. A picker leaves such URLs out of what it returns."""
        rows = self._rows_by_url.get(url)
        return bool(rows) and all(row.status == self.Status.Error for row in rows)

    @pyqtSlot(str, result=bool)
    def loaded(self, url: str) -> bool:
        """Whether some row of `url` is Ready: its thumbnail can be shown."""
        return any(row.status == self.Status.Ready for row in self._rows_by_url.get(url, ()))

    @pyqtSlot(str, result=bool)
    def pending(self, url: str) -> bool:
        """Whether `url` is listed, no row of it is Ready and some row is not settled yet (Null
        or Loading), as `pendingCount` counts them: it may yet load or fail. A picker waits for
        such URLs before it returns."""
        pending = (self.Status.Null, self.Status.Loading)
        return not self.loaded(url) and any(row.status in pending
                                            for row in self._rows_by_url.get(url, ()))

    # -- loading ---------------------------------------------------------------------------
    def _priority_for(self, number: int):
        return self._screens.priority(number, self._prefetch_rows)

    def _rows_in_reach(self, margin: Optional[int] = None) -> Set[int]:
        """The rows on any view's screen or in its prefetch margin."""
        margin = self._prefetch_rows if margin is None else margin
        return self._screens.rows_in_reach(margin, len(self._rows))

    def _url_priority(self, url: str, number: int):
        """The priority of row `number`'s URL: the best of its rows' (one job serves them all),
        so a URL on screen and again far below is not sent to the back when the far row is
        asked for. O(log copies): a placeholder URL listed 5,000 times made every scroll step
        walk all its rows (330 ms)."""
        if len(self._rows_by_url.get(url, ())) <= 1:
            return self._priority_for(number)
        memo = self._url_priorities_this_rescore
        if memo is not None and url in memo:
            return memo[url]
        if self._row_numbers_of_repeated_url is None:
            numbers_of_url = defaultdict(list)
            for row_number, row in enumerate(self._rows):
                if len(self._rows_by_url[row.url]) > 1:
                    numbers_of_url[row.url].append(row_number)
            self._row_numbers_of_repeated_url = numbers_of_url
        priority = self._screens.best_of(self._row_numbers_of_repeated_url[url], self._prefetch_rows)
        if memo is not None:
            memo[url] = priority
        return priority

    def _forget_row_numbers(self) -> None:
        """Row numbers changed (insert, remove, reorder): drop the indexes built from them."""
        self._index_of = None
        self._row_numbers_of_repeated_url = None

    def _wanted(self, number: int) -> bool:
        if self._load_policy == self.LoadPolicy.LoadAll:
            return True
        # Under LoadVisible the top rows' default is a guess: with no view yet nothing is on
        # screen, and a view behind a filter would have fetched rows it hides (its first
        # report comes a turn after a list declared with the model).
        return self._screens.reported and self._priority_for(number)[0] != BACKGROUND

    def _parsed(self, row: _Row) -> ParsedImageUrl:
        if row.parsed is None:
            row.parsed = parse_image_url(row.url, self._allowed_schemes, self._allow_plain_paths)
        return row.parsed

    def _set_url_rules(self) -> None:
        # The loader parses by them too, when the image provider asks again for an evicted
        # thumbnail by its row's text: a plain path failed there as "no scheme".
        self._loader.set_url_rules(self._source_id, functools.partial(
            parse_image_url, allowed_schemes=tuple(self._allowed_schemes),
            allow_plain_paths=self._allow_plain_paths))

    def _request_or_queue(self, numbered_rows: Iterable[Tuple[int, _Row]]) -> None:
        """Visible and near rows at once, nearest the screen first; the rest, in order, through
        the feed queue (which is also where their URLs get parsed: 5,000 parses at once would
        stall the GUI thread for 70 ms). The caller schedules the feed once, after.

        Nearest first because the loader starts a transfer as soon as a near row's disk lookup
        misses: requested in row order, the margin above the screen took connections before the
        screen's own rows were even queued."""
        in_reach = self._rows_in_reach()  # the rows whose priority is not BACKGROUND
        near = []
        later = []
        for number, row in numbered_rows:
            if number in in_reach:
                near.append((self._request_order(number), row))
            else:
                later.append(row)
        if self._load_policy == self.LoadPolicy.LoadAll:
            self._add_to_feed(later)
        near.sort(key=lambda entry: entry[0])
        for (_, number), row in near:
            self._request(row, number)

    def _request_order(self, number: int):
        """Sort key for asking: the screen first, then the margin by distance, above first."""
        return self._priority_for(number), number

    def _add_to_feed(self, rows: List[_Row]) -> None:
        # A row still queued stays where it is: each reload() or reorder while the loader was
        # full queued every waiting row again.
        for row in rows:
            if not row.in_feed:
                row.in_feed = True
                self._feed_queue.append(row)

    def _schedule_feed(self) -> None:
        if self._feed_queue and not self._feed_timer.isActive():
            self._feed_timer.start()

    def _feed(self) -> None:
        deadline = time.perf_counter() + FEED_SECONDS_PER_TURN
        out_of_time = False
        while self._feed_queue and self._loader.active_jobs() < MAX_LOADER_JOBS:
            if time.perf_counter() >= deadline:
                out_of_time = True
                break
            row = self._feed_queue.popleft()
            row.in_feed = False
            number = self._number_of(row)
            if number < 0 or row.status != self.Status.Null:
                continue  # removed, or requested since (it scrolled into view)
            self._request(row, number)
        if out_of_time:
            self._schedule_feed()
        # Otherwise the loader is full: its jobEnded calls _schedule_feed as room frees.

    def _request(self, row: _Row, number: Optional[int] = None) -> None:
        parsed = self._parsed(row)
        if not parsed.ok:
            self._set_status(row, self.Status.Error, parsed.error, Remedy.NONE)
            return
        if number is None:
            number = self._number_of(row)
        if not self._wanted(number):
            return
        if row.status == self.Status.Null:
            self._set_status(row, self.Status.Loading, "")
            self._finished_owed = True
        siblings = self._rows_by_url[row.url]
        # Any row of the URL owed a reload makes this request the reload: a row of it added
        # since (a paste, an append) was asked for plainly, and the owed row, kept out of that
        # plain result, then waited for ever.
        if any(sibling.reload_owed for sibling in siblings):
            for sibling in siblings:
                sibling.reload_owed = False
            self._reloads_in_flight.add(row.url)
            self._loader.refetch(row.url, self._url_priority(row.url, number), parsed, self._claim)
        else:
            self._loader.load(row.url, self._url_priority(row.url, number), parsed, self._claim)

    def _number_of(self, row: _Row) -> int:
        if self._index_of is None:
            self._index_of = {id(r): i for i, r in enumerate(self._rows)}
        return self._index_of.get(id(row), -1)

    @pyqtSlot(int, int)
    def setVisibleRange(self, first: int, last: int) -> None:
        """The one view on this model shows rows first..last; they load first, then the
        prefetch margin around them. A model shown by several views: see setVisibleRangeOf."""
        self._change_screens(lambda: self._screens.set_range(None, max(0, first), last))

    @pyqtSlot(QObject, int, int)
    def setVisibleRangeOf(self, view: QObject, first: int, last: int) -> None:
        """`view` shows rows first..last (none if last < first). Each view's report replaces
        only its own, so every view's screen loads first. A view forgotten when destroyed."""
        if self._no_view_given(view, "setVisibleRangeOf"):
            return
        key = self._view_key(view)
        self._change_screens(lambda: self._screens.set_range(key, max(0, first), last))

    @pyqtSlot(QObject, "QVariantList", "QVariantList")
    def setVisibleRowsOf(self, view: QObject, shown, near) -> None:
        """`view`, through a proxy that filters or sorts, shows the rows `shown` (top first)
        and prefetches `near` (nearest its screen first): this model's row numbers, which need
        not be contiguous. No margin is added around them; rows between them that the proxy
        hides do not load under LoadVisible."""
        if self._no_view_given(view, "setVisibleRowsOf"):
            return
        key = self._view_key(view)
        shown, near = _row_numbers(shown), _row_numbers(near)
        self._change_screens(lambda: self._screens.set_rows(key, shown, near))

    @pyqtSlot(QObject)
    def forgetView(self, view: QObject) -> None:
        """`view` no longer shows this model (it shows another one, say): its rows stop
        counting as on screen."""
        if self._no_view_given(view, "forgetView"):
            return
        key = sip.unwrapinstance(view)
        self._change_screens(lambda: self._screens.forget(key))

    @staticmethod
    def _no_view_given(view: Optional[QObject], method: str) -> bool:
        # A QML caller's view may still be null (a property not yet set); an exception from a
        # slot called from QML aborts the process under PyQt5.
        if view is None:
            _log.warning("ImageGalleryModel.%s: the view is null: ignored", method)
        return view is None

    def _view_key(self, view: QObject) -> int:
        """The key of `view`'s report: its C++ address, stable while it lives (a QML item's
        Python wrapper may be a new one at each call). Its report goes when it is destroyed."""
        key = sip.unwrapinstance(view)
        if key not in self._watched_views:
            self._watched_views.add(key)
            view.destroyed.connect(self._view_destroyed)
        return key

    @pyqtSlot(QObject)
    def _view_destroyed(self, view: QObject) -> None:
        key = sip.unwrapinstance(view)
        self._watched_views.discard(key)
        self._change_screens(lambda: self._screens.forget(key))

    def _change_screens(self, change) -> None:
        """Apply `change` (True if it changed the screens) and rescore what it moved: only the
        rows around the old and the new screens, so a jump from the top to the end of 10,000
        rows does not walk every row in between on the GUI thread."""
        before = self._rows_in_reach()
        if change():
            self._rescore(before | self._rows_in_reach())

    def _rescore(self, numbers) -> None:
        """Request the rows in `numbers` now wanted (nearest the screen first, as
        _request_or_queue does), re-prioritise the rest, and under LoadVisible cancel those that
        left the screen and its margin."""
        self._url_priorities_this_rescore = {}
        try:
            self._rescore_rows(numbers)
        finally:
            self._url_priorities_this_rescore = None

    def _rescore_rows(self, numbers) -> None:
        for number in sorted(numbers, key=self._request_order):
            row = self._rows[number]
            if not self._parsed(row).ok:
                continue
            if self._wanted(number):
                if row.status == self.Status.Null:
                    self._request(row, number)
                else:
                    self._loader.set_priority(row.url, self._url_priority(row.url, number))
            elif row.status == self.Status.Loading and self._load_policy == self.LoadPolicy.LoadVisible:
                if self._url_priority(row.url, number)[0] == BACKGROUND:  # no row of it wanted
                    # A reload cancelled mid-way is still owed: back on screen, it refetches.
                    self._unload(row.url, reload_owed=row.url in self._reloads_in_flight)
            else:
                self._loader.set_priority(row.url, self._url_priority(row.url, number))

    def _unload(self, url: str, reload_owed: bool) -> None:
        """Stop loading `url` for this model and put its rows back to Null, to be requested
        again; `reload_owed`: that request skips the caches (a reload not yet delivered)."""
        self._loader.cancel(url, self._claim)
        self._drop_fraction(url)
        for row in self._rows_by_url[url]:
            self._set_status(row, self.Status.Null, "")
            row.received, row.total = 0, -1
            row.reload_owed = row.reload_owed or reload_owed

    def _admitted_rows(self, url: str) -> List[_Row]:
        """The rows for `url` this model's URL rules allow: a result that was on its way (a
        memory hit answered next turn, another model's job on a shared loader) must not show
        a row the rules now refuse."""
        return [row for row in self._rows_by_url.get(url, ()) if self._parsed(row).ok]

    def _rows_settled_by(self, url: str) -> List[_Row]:
        """The rows a result for `url` settles: not those owed a reload that has not left yet
        (`reload_owed`), whose picture that result may be (a job kept going for a view's
        Image while the reload waits for the row to come back on screen)."""
        return [row for row in self._admitted_rows(url) if not row.reload_owed]

    def _on_load_started(self, url: str) -> None:
        # Only a transfer this model asked for: on a shared loader another model's job may end
        # at that model's cancel without a word, and a row shown Loading on its behalf would
        # never be requested again (it is no longer Null).
        if not self._loader.is_claimed_by(url, self._claim):
            return
        for row in self._rows_settled_by(url):  # a row owed a reload waits for that, still Null
            if row.status != self.Status.Ready:
                self._set_status(row, self.Status.Loading, "")

    def _on_load_progress(self, url: str, received: int, total: int) -> None:
        if not self._loader.is_claimed_by(url, self._claim):
            return  # another model's transfer; its rows are not Loading here (_on_load_started)
        # Not Ready rows: one whose thumbnail is downloaded again for a new size has settled,
        # and its fraction would count it twice in `progress`.
        rows = [row for row in self._admitted_rows(url) if row.status != self.Status.Ready]
        if not rows:
            return  # a refused row's fraction would count in `progress` for ever
        self._set_fraction(url, received / total if total > 0 else 0.0)
        for row in rows:
            row.received, row.total = received, total
            self._progress_dirty[id(row)] = row
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _flush_progress(self) -> None:
        """Progress-only changes, at most every PROGRESS_INTERVAL_MS, naming the roles changed
        so delegates re-evaluate only their progress bindings."""
        rows, self._progress_dirty = self._progress_dirty, {}
        numbers = [self._number_of(row) for row in rows.values() if id(row) not in self._dirty]
        roles = [self.BytesReceivedRole, self.BytesTotalRole, self.ProgressRole]
        for first, last in _ranges(sorted(n for n in numbers if n >= 0)):
            self.dataChanged.emit(self.index(first), self.index(last), roles)
            if sip.isdeleted(self):
                return
        self._counts_dirty = True
        self._schedule_flush()

    def _on_thumbnail_ready(self, url: str, thumbnail: CachedThumbnail) -> None:
        self._drop_fraction(url)
        self._reloads_in_flight.discard(url)
        rows = self._rows_settled_by(url)
        if not rows:
            return  # the row went away (or is refused now) while the work finished
        # A new version is a new source URL: QML reloads instead of showing a stale pixmap. A
        # Ready row's tile shows this URL already, so it asks again (for a picture that may have
        # changed) only if the provider can answer from memory: a thumbnail larger than the
        # memory cache's whole budget is never kept there, the provider would load it again,
        # it would come back here, and so on (833 reloads in 3 s with a 20 KB budget).
        ask_again = self._loader.key_for(url) in self._loader.thumbnails
        for row in rows:
            row.image_size = QSize(thumbnail.original_size)
            if ask_again or row.status != self.Status.Ready:
                row.version = next(_SOURCE_VERSIONS)
            if row.total <= 0:
                row.total = row.received = max(row.received, 0)
            self._set_status(row, self.Status.Ready, "")
            self._mark_dirty(row)
        if time.monotonic() - self._last_flush_at >= IMMEDIATE_FLUSH_AFTER_S:
            self._flush()

    def _on_load_failed(self, url: str, reason: str, remedy: int = Remedy.RETRY) -> None:
        self._drop_fraction(url)
        self._reloads_in_flight.discard(url)
        rows = self._rows_settled_by(url)
        if not rows:
            return
        for row in rows:
            self._set_status(row, self.Status.Error, reason, Remedy(remedy))

    def _reload_rows_awaiting(self, remedy: int) -> None:
        """The loader's limits loosened or its transport changed (`remedy` says which): the rows
        they refused may load now. Their tiles offer no Retry, so they are asked for again here,
        as `allowedSchemes` readmits the rows it refused (_readmit_rows). Not those a fixed rule
        refused (an SVG, a lossless JPEG): a slider bound to a limit fetched every SVG again at
        each step."""
        refused = {row.url for row in self._rows
                   if row.status == self.Status.Error and row.remedy == remedy}
        if refused:
            self._reload(refused)

    def _set_status(self, row: _Row, status: "ImageGalleryModel.Status", error: str,
                    remedy: Remedy = Remedy.RETRY) -> None:
        if row.status == status and row.error == error and row.remedy is remedy:
            return
        self._counts[row.status] -= 1
        self._counts[status] += 1
        self._retryable_failures -= self._is_retryable_failure(row.status, row.remedy)
        self._retryable_failures += self._is_retryable_failure(status, remedy)
        row.status, row.error, row.remedy = status, error, remedy
        self._counts_dirty = True
        self._mark_dirty(row)

    def _mark_dirty(self, row: _Row) -> None:
        self._dirty[id(row)] = row
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            # singleShot(0), not the transports' zero-interval QTimer: this flush belongs in the
            # same pass over posted events as the results queued before it (architecture.md, 11).
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        """Emit the batched changes: contiguous dataChanged ranges, counts, then `finished`."""
        self._flush_pending = False
        self._last_flush_at = time.monotonic()
        if self._dirty:
            numbers = sorted(n for n in (self._number_of(r) for r in self._dirty.values()) if n >= 0)
            self._dirty.clear()
            for first, last in _ranges(numbers):
                self.dataChanged.emit(self.index(first), self.index(last), self._STATE_ROLES)
                if sip.isdeleted(self):  # deleted by a slot (Qt warns against it)
                    return
        if self._counts_dirty:
            self._counts_dirty = False
            published = (self.loadedCount, self.failedCount, self.retryableFailedCount,
                         self.pendingCount, self.progress, self.busy)
            if published != self._published:
                self._published = published
                self.countsChanged.emit()
        if self._finished_owed and self._settled():
            self._finished_owed = False
            self.finished.emit()

    def _settled(self) -> bool:
        """Nothing left to load: every row (LoadAll), or every row requested (LoadVisible)."""
        return self.pendingCount == 0 or (self._load_policy == self.LoadPolicy.LoadVisible
                                          and self._counts[self.Status.Loading] == 0)

    # -- counts ----------------------------------------------------------------------------
    @pyqtProperty(int, notify=countChanged)
    def count(self) -> int:
        return len(self._rows)

    @pyqtProperty(int, notify=countsChanged)
    def loadedCount(self) -> int:
        return self._counts[self.Status.Ready]

    @pyqtProperty(int, notify=countsChanged)
    def failedCount(self) -> int:
        return self._counts[self.Status.Error]

    @pyqtProperty(int, notify=countsChanged)
    def retryableFailedCount(self) -> int:
        """Failed rows a retry can change (their `retryable` role is true): what retryFailed()
        loads again."""
        return self._retryable_failures

    @pyqtProperty(int, notify=countsChanged)
    def pendingCount(self) -> int:
        """Rows not settled yet: Null (not started) and Loading."""
        return self._counts[self.Status.Null] + self._counts[self.Status.Loading]

    @pyqtProperty(float, notify=countsChanged)
    def progress(self) -> float:
        """0 to 1: settled rows, plus the received share of rows loading (by bytes when known)."""
        if not self._rows:
            return 1.0
        if self._partial_progress is None:
            self._partial_progress = sum(fraction * len(self._rows_by_url.get(url, ()))
                                         for url, fraction in self._fraction.items())
        settled = self.loadedCount + self.failedCount
        return min(1.0, (settled + max(0.0, self._partial_progress)) / len(self._rows))

    def _set_fraction(self, url: str, fraction: float) -> None:
        if self._partial_progress is not None:
            rows = len(self._rows_by_url.get(url, ()))
            self._partial_progress += (fraction - self._fraction.get(url, 0.0)) * rows
        self._fraction[url] = fraction

    def _drop_fraction(self, url: str) -> None:
        fraction = self._fraction.pop(url, None)
        if fraction is not None and self._partial_progress is not None:
            self._partial_progress -= fraction * len(self._rows_by_url.get(url, ()))

    @pyqtProperty(bool, notify=countsChanged)
    def busy(self) -> bool:
        return self._counts[self.Status.Loading] > 0

    # -- thumbnail geometry ----------------------------------------------------------------
    def _get_thumbnail_size(self) -> QSize:
        return QSize(self._thumbnail_size)

    def _set_thumbnail_size(self, size: QSize) -> None:
        size = QSize(max(1, size.width()), max(1, size.height()))
        if size != self._thumbnail_size:
            self._thumbnail_size = size
            self._apply_spec()
            self.thumbnailSizeChanged.emit()

    thumbnailSize = pyqtProperty(QSize, _get_thumbnail_size, _set_thumbnail_size,
                                 notify=thumbnailSizeChanged)

    def _get_fill_mode(self) -> int:
        return int(self._fill_mode)

    def _set_fill_mode(self, mode: int) -> None:
        mode = self.FillMode(mode) if mode in (1, 2) else self.FillMode.PreserveAspectFit
        if mode != self._fill_mode:
            self._fill_mode = mode
            self._apply_spec()
            self.fillModeChanged.emit()

    fillMode = pyqtProperty(int, _get_fill_mode, _set_fill_mode, notify=fillModeChanged)

    def _get_device_pixel_ratio(self) -> float:
        return self._device_pixel_ratio

    def _set_device_pixel_ratio(self, ratio: float) -> None:
        if not math.isfinite(ratio):  # NaN passed the clamp below as 8: 64 times the pixels
            _log.warning("ImageGalleryModel.devicePixelRatio must be a number, not %r: kept at %r",
                         ratio, self._device_pixel_ratio)
            return
        ratio = max(0.5, min(8.0, float(ratio)))
        if ratio != self._device_pixel_ratio:
            self._device_pixel_ratio = ratio
            self._apply_spec()
            self.devicePixelRatioChanged.emit()

    devicePixelRatio = pyqtProperty(float, _get_device_pixel_ratio, _set_device_pixel_ratio,
                                    notify=devicePixelRatioChanged)

    def _apply_spec(self) -> None:
        """Thumbnails are made in device pixels; a new size re-decodes, from cached bytes if held."""
        ratio = self._device_pixel_ratio
        spec = ThumbnailSpec(round(self._thumbnail_size.width() * ratio),
                             round(self._thumbnail_size.height() * ratio),
                             CROP if self._fill_mode == self.FillMode.PreserveAspectCrop else FIT)
        if spec == self._loader.spec:
            return
        self._loader.set_spec(spec)
        # Rows on and near the screen re-decode now and stay Ready meanwhile; the rest come back
        # on demand, when the view asks the provider for their new source.
        for number in sorted(self._rows_in_reach()):
            row = self._rows[number]
            if row.status == self.Status.Ready:
                self._loader.load(row.url, self._url_priority(row.url, number), self._parsed(row),
                                  self._claim)
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), [self.SourceRole])

    # -- policy and settings ---------------------------------------------------------------
    def _get_load_policy(self) -> int:
        return int(self._load_policy)

    def _set_load_policy(self, policy: int) -> None:
        policy = self.LoadPolicy(policy) if policy in (0, 1) else self.LoadPolicy.LoadAll
        if policy != self._load_policy:
            self._load_policy = policy
            self.loadPolicyChanged.emit()
            if policy == self.LoadPolicy.LoadAll:
                self._request_or_queue((number, row) for number, row in enumerate(self._rows)
                                       if row.status == self.Status.Null)
                self._schedule_feed()

    loadPolicy = pyqtProperty(int, _get_load_policy, _set_load_policy, notify=loadPolicyChanged)

    def _get_prefetch_rows(self) -> int:
        """The prefetch margin on each side of the screen, in model rows: items, not the grid's
        lines of them."""
        return self._prefetch_rows

    def _set_prefetch_rows(self, rows: int) -> None:
        rows = max(0, int(rows))
        if rows != self._prefetch_rows:
            widest = max(rows, self._prefetch_rows)
            self._prefetch_rows = rows
            self._rescore(self._rows_in_reach(widest))
            self._loader.dispatch_now()
            self.settingsChanged.emit()

    prefetchRows = pyqtProperty(int, _get_prefetch_rows, _set_prefetch_rows, notify=settingsChanged)

    def _get_transport(self) -> str:
        return self._loader.transport_mode

    def _set_transport(self, mode: str) -> None:
        mode = mode.strip().lower()
        if mode not in TRANSPORT_MODES:
            # A warning, not an exception: see _limit_property.
            _log.warning("ImageGalleryModel.transport must be one of %s, not %r: kept at %r",
                         ", ".join(TRANSPORT_MODES), mode, self._loader.transport_mode)
            return
        if mode != self._loader.transport_mode:
            self._loader.set_transport_mode(mode)
            self.settingsChanged.emit()

    transport = pyqtProperty(str, _get_transport, _set_transport, notify=settingsChanged)

    def _get_max_connections(self) -> int:
        return self.limits.max_connections_per_host

    def _set_max_connections(self, count: int) -> None:
        count = max(1, min(256, int(count)))
        if count != self.limits.max_connections_per_host:
            self._set_limits(max_connections_per_host=count,
                             max_in_flight=max(self.limits.max_in_flight, count))

    maxConnectionsPerHost = pyqtProperty(int, _get_max_connections, _set_max_connections,
                                         notify=settingsChanged)

    def _loader_switch(name: str, notify):
        """A bool property that mirrors the loader attribute `name`."""

        def getter(self) -> bool:
            return getattr(self._loader, name)

        def setter(self, enabled: bool) -> None:
            if bool(enabled) != getattr(self._loader, name):
                setattr(self._loader, name, bool(enabled))
                self.settingsChanged.emit()

        return pyqtProperty(bool, getter, setter, notify=notify)

    # Speak HTTP/2 with prior knowledge to cleartext servers (h2c); opt-in, see TransferRequest.
    http2Cleartext = _loader_switch("http2_cleartext", settingsChanged)
    # Show a disk-cached thumbnail at once, then ask the server (ETag / Last-Modified) if it
    # changed.
    revalidate = _loader_switch("revalidate", settingsChanged)
    del _loader_switch

    def _get_ca_file(self) -> str:
        return self._loader.transport_options.ca_file

    def _set_ca_file(self, path: str) -> None:
        if path != self._loader.transport_options.ca_file:
            self._loader.set_transport_options(replace(self._loader.transport_options, ca_file=path))
            self.settingsChanged.emit()

    caFile = pyqtProperty(str, _get_ca_file, _set_ca_file, notify=settingsChanged)

    def _get_cache_directory(self) -> str:
        return self._loader.disk.directory if self._loader.disk is not None else ""

    def _set_cache_directory(self, directory: str) -> None:
        folder = disk_cache_folder(directory)  # resolved (and any warning said) once
        if folder != self._get_cache_directory():
            self._loader.set_disk_cache_dir(folder)
            self.settingsChanged.emit()

    cacheDirectory = pyqtProperty(str, _get_cache_directory, _set_cache_directory,
                                  notify=settingsChanged)


    def _get_allowed_schemes(self) -> List[str]:
        return list(self._allowed_schemes)

    def _set_allowed_schemes(self, schemes: List[str]) -> None:
        schemes = [s.lower().rstrip(":") for s in schemes]
        if schemes != self._allowed_schemes:
            self._allowed_schemes = schemes
            self._set_url_rules()
            self._readmit_rows()
            self.settingsChanged.emit()

    def _readmit_rows(self) -> None:
        """Judge the rows already parsed by the new URL rules (the rest are parsed when they are
        requested). QML sets `urls` and `allowedSchemes` in either order, and the first screen is
        requested as soon as the list arrives: a host that narrows the schemes must not see a
        row it now refuses load, or stay shown."""
        admitted = []
        for url, rows in self._rows_by_url.items():
            for row in rows:
                if row.parsed is None:
                    continue
                was_allowed = row.parsed.ok
                row.parsed = None
                parsed = self._parsed(row)
                if was_allowed and not parsed.ok:
                    self._loader.cancel(url, self._claim)
                    self._drop_fraction(url)
                    self._reloads_in_flight.discard(url)
                    self._set_status(row, self.Status.Error, parsed.error, Remedy.NONE)
                elif parsed.ok and not was_allowed:
                    self._set_status(row, self.Status.Null, "")
                    admitted.append((self._number_of(row), row))
        self._request_or_queue(admitted)
        self._schedule_feed()
        self._loader.dispatch_now()

    allowedSchemes = pyqtProperty("QStringList", _get_allowed_schemes, _set_allowed_schemes,
                                  notify=settingsChanged)

    def _limit_property(qml_name: str, name: str, kind, scale, least, notify):
        def getter(self):
            return kind(getattr(self.limits, name) * scale)

        def setter(self, value):
            # Refused with a warning, not an exception: one raised in a property write from QML
            # aborts the whole process (PyQt5's default for exceptions Qt cannot pass on).
            if not math.isfinite(value) or value < least:
                _log.warning("ImageGalleryModel.%s must be a number of at least %s, not %r: "
                             "kept at %s", qml_name, least, value, getter(self))
                return
            value = type(getattr(self.limits, name))(value / scale)
            if value != getattr(self.limits, name):
                self._set_limits(**{name: value})

        return pyqtProperty(kind, getter, setter, notify=notify)

    maxRetries = _limit_property("maxRetries", "max_retries", int, 1, 0, settingsChanged)
    maxImagePixels = _limit_property("maxImagePixels", "max_pixels", float, 1, 1,
                                     settingsChanged)
    maxResponseBytes = _limit_property("maxResponseBytes", "max_response_bytes", float, 1, 1,
                                       settingsChanged)
    # Until the response's headers, not only the TCP connect: a server that accepts and stays
    # silent is the case it is for (LoadLimits.connect_timeout_s).
    connectTimeout = _limit_property("connectTimeout", "connect_timeout_s", int, 1000, 1,
                                     settingsChanged)  # ms
    idleTimeout = _limit_property("idleTimeout", "idle_timeout_s", int, 1000, 1,
                                  settingsChanged)  # ms
    del _limit_property

    @property
    def limits(self) -> LoadLimits:
        return self._loader.limits

    def set_limits(self, limits: LoadLimits) -> None:
        """Python hosts and tests replace the whole record at once."""
        self._loader.set_limits(limits)
        self.settingsChanged.emit()

    def _set_limits(self, **changes) -> None:
        self.set_limits(replace(self.limits, **changes))

    def set_allow_plain_paths(self, allowed: bool) -> None:
        """The CLI accepts local paths (a Python-side switch, off by default)."""
        if allowed != self._allow_plain_paths:
            self._allow_plain_paths = allowed
            self._set_url_rules()
            self._readmit_rows()

    @property
    def loader(self) -> ImageLoader:
        return self._loader

    # -- for Python hosts and tests --------------------------------------------------------
    def status_of(self, row: int) -> "ImageGalleryModel.Status":
        return self._rows[row].status

    def thumbnail(self, row: int):
        """The row's thumbnail QImage if it is in memory (None otherwise)."""
        cached = self._loader.cached(self._rows[row].url)
        return cached.image if cached is not None else None
