"""The image providers behind a row's `source`: they serve thumbnails, never fetch.

Sources look like image://<provider>/<source id>/<W>x<H>/<fill>/<version>/<base64 url> (the
source id names the model, and through it the loader and the model's URL rules), where the
model picks the provider when QML reads the row:
- `imagegallery-memory` (MemoryThumbnailProvider) when the thumbnail is in memory: a plain,
  synchronous provider, so the Image shows it in the same turn, on the GUI thread, and a tile
  that scrolls back into view never flashes its placeholder. It only looks the image up; the
  loader keeps what it promised the view (`promise_thumbnail`) for the rare eviction between
  the model's answer and the Image's request.
- `imagegallery` (EvictedThumbnailProvider) otherwise: a Ready row whose thumbnail the
  byte-bounded cache evicted. It asks the row's loader, first in its queue, which restores it
  from the disk cache or the encoded bytes it still holds, off the GUI thread, or failing both
  fetches it again, first in line. QML never starts a download of its own, and never decodes.

Set these sources through the model's `source` role in QML, not from Python on an Image item:
Qt's pixmap reader thread cancels a pending response while it holds its own lock, and the
response's `cancel` needs the GIL, so a Python call that changes an Image's source while a miss
is pending (it takes that lock with the GIL held) can deadlock. Bindings in QML run without the
GIL; a reviewer's 5,600 cancellations through the model's roles all completed.

The same holds for anything Python does to the view that makes it load images, such as
`setProperty("contentY", ...)`: PyQt keeps the GIL through it, the view asks the reader thread
for a tile, and that thread holds its lock while it calls this provider's `imageType()`, which
needs the GIL (a hang, seen with a memory cache smaller than a screen). Hosts move the view with
a queued `QMetaObject.invokeMethod` instead (README, "From a Python host app").
"""
from __future__ import annotations

import threading
from typing import Callable, NamedTuple, Optional, Tuple

from PyQt5.QtCore import QMetaObject, QObject, QSize, Qt, pyqtSignal, pyqtSlot
from PyQt5.QtGui import QImage
from PyQt5.QtQuick import (QQuickAsyncImageProvider, QQuickImageProvider, QQuickImageResponse,
                           QQuickTextureFactory)

from .cache import CachedThumbnail, ThumbnailKey, shared_thumbnail_cache
from .decode import ThumbnailSpec
from .loader import URGENT
from .model import decode_source_url, loader_for_source


class ThumbnailRequest(NamedTuple):
    """What a source's image id names."""

    source_id: int
    url: str
    spec: ThumbnailSpec

    @property
    def key(self) -> ThumbnailKey:
        return ThumbnailKey.for_spec(self.url, self.spec)


def parse_image_id(image_id: str) -> Optional[ThumbnailRequest]:
    """<source id>/<W>x<H>/<fill>/<version>/<base64 url>, or None if it is not one."""
    try:
        source_text, size_text, fill_mode, _version, encoded = image_id.split("/", 4)
        width, height = (int(part) for part in size_text.split("x"))
        return ThumbnailRequest(int(source_text), decode_source_url(encoded),
                                ThumbnailSpec(width, height, fill_mode))
    except (ValueError, UnicodeDecodeError):
        return None


class _LoaderWait(NamedTuple):
    """Which loader waits for what on a response's behalf, and what it calls back."""

    source_id: int
    url: str
    callback: Callable[[Optional[CachedThumbnail], str], None]


class ThumbnailResponse(QQuickImageResponse):
    """One pending image for QML. Emits `finished` exactly once, also after `cancel()`, and only
    ever on the thread it lives in: Qt's pixmap reader thread, which connects to `finished`,
    checks whether it came already, and deletes the response once it has.

    Thread: created on Qt's pixmap reader thread; completed from the GUI thread, at once, or
    by cancel() on the reader thread. A completion only posts the emission to the reader
    thread: emitted there, `finished` cannot come between Qt's connect and its check of an
    early `finished` (which made Qt finish the response twice), and Qt never deletes the
    response while another thread is still inside its emission (PyQt gives the GIL up while it
    emits). After `complete` returns, the calling thread does not touch the C++ object again.
    """

    def __init__(self, relay: Optional["_GuiThreadRelay"] = None):
        super().__init__()
        self._image = QImage()
        self._error = ""
        self._done = False
        self._emitted = False  # `finished` emitted (or about to be): Qt may delete us after it
        self._lock = threading.Lock()
        self._relay = relay
        # Set on the GUI thread when the miss reaches a loader; cancel() hands it back so the
        # loader stops waiting for this Image.
        self.loader_wait: Optional[_LoaderWait] = None

    @property
    def done(self) -> bool:
        with self._lock:
            return self._done

    def complete(self, image: Optional[QImage], error: str = "") -> None:
        """Thread: any. The emission itself happens on the response's own thread, by its event
        loop (Qt's pixmap reader runs one; a response made on a thread without one, as in a
        test, finishes once that thread's events are processed)."""
        with self._lock:
            if self._done:
                return
            self._done = True
            self._image = image if image is not None else QImage()
            self._error = error
            # Posted under the lock: nothing emits `finished` (after which Qt deletes this
            # object) until the post is made.
            QMetaObject.invokeMethod(self, "_emit_finished", Qt.QueuedConnection)

    @pyqtSlot()
    def _emit_finished(self) -> None:
        """Thread: the reader thread (this object's own)."""
        with self._lock:
            if self._emitted:
                return
            self._emitted = True
        self.finished.emit()

    def textureFactory(self) -> QQuickTextureFactory:
        return QQuickTextureFactory.textureFactoryForImage(self._image)

    def errorString(self) -> str:
        return self._error

    def cancel(self) -> None:
        """QML no longer wants the image. Thread: the reader thread, which Qt calls this from."""
        if self._relay is not None:
            self._relay.gave_up.emit(self)  # the loader lives on the GUI thread
        self.complete(None, "cancelled")
        self._emit_finished()  # now, not on the next turn: Qt's docs want it after cancel


class _GuiThreadRelay(QObject):
    """Carries provider misses to the GUI thread, where the loaders live."""

    miss = pyqtSignal(int, str, object, object)  # source id, url, spec, response
    restore = pyqtSignal(int, str)  # source id, url: an evicted thumbnail to bring back
    gave_up = pyqtSignal(object)  # a response QML cancelled

    def __init__(self):
        super().__init__()
        self.miss.connect(self._on_miss)
        # Queued even from the GUI thread: a synchronous provider's miss is reported from
        # inside QML's loading of an Image, where the model must not change under it.
        self.restore.connect(self._on_restore, Qt.QueuedConnection)
        self.gave_up.connect(self._on_gave_up, Qt.QueuedConnection)

    def _on_miss(self, source_id: int, url: str, spec: ThumbnailSpec, response: ThumbnailResponse):
        if response.done:
            return  # cancelled on its way here: the tile scrolled past, nothing to fetch
        loader = loader_for_source(source_id)
        if loader is None:
            response.complete(None, "")  # its gallery is gone: nothing to show, no error
            return

        def deliver(thumbnail: Optional[CachedThumbnail], error: str) -> None:
            response.complete(thumbnail.image if thumbnail is not None else None, error)

        response.loader_wait = _LoaderWait(source_id, url, deliver)
        loader.load_for_provider(url, spec, deliver, loader.parse_url_for(source_id, url))

    def _on_gave_up(self, response: ThumbnailResponse):
        wait, response.loader_wait = response.loader_wait, None
        if wait is None:
            return  # it never reached a loader
        loader = loader_for_source(wait.source_id)
        if loader is not None:
            loader.forget_waiter(wait.url, wait.callback)

    def _on_restore(self, source_id: int, url: str):
        loader = loader_for_source(source_id)
        if loader is not None:
            # The loader emits thumbnailReady once it has the thumbnail back in memory; the
            # model then gives the row a new source, which the memory provider can answer.
            loader.load(url, URGENT, loader.parse_url_for(source_id, url))


class EvictedThumbnailProvider(QQuickAsyncImageProvider):
    """Registered as "imagegallery" by `install(engine)`, for thumbnails the memory cache
    evicted. Thread: Qt's pixmap reader thread."""

    def __init__(self):
        super().__init__()
        self.relay = _GuiThreadRelay()  # created on the GUI thread, with install()
        self._cache = shared_thumbnail_cache()

    def requestImageResponse(self, image_id: str, requested_size: QSize) -> QQuickImageResponse:
        # No set of responses is kept: the method is /Factory/ in PyQt's sip, so the response
        # returned is owned by C++ and sip holds a reference to its Python half until Qt's
        # delete of it. Never raises: an exception here returns a null response, which Qt 5.15
        # dereferences at once.
        response = ThumbnailResponse(self.relay)
        try:
            request = parse_image_id(image_id)
            if request is None:
                response.complete(None, f"bad image id '{image_id}'")
                return response
            cached = self._cache.get(request.key)
            if cached is not None:
                response.complete(cached.image)
            else:
                self.relay.miss.emit(request.source_id, request.url, request.spec, response)
        except Exception as exc:  # noqa: BLE001 - any error is this image's error, not a crash
            response.complete(None, f"provider error: {exc!r}")
        return response


class MemoryThumbnailProvider(QQuickImageProvider):
    """Registered as "imagegallery-memory" by `install(engine)`, for thumbnails in memory.

    Thread: the GUI thread (an Image with asynchronous: false; Qt's pixmap reader thread if
    true). Only looks up an image: no I/O, no decoding.
    """

    def __init__(self, relay: _GuiThreadRelay):
        super().__init__(QQuickImageProvider.Image)
        self._relay = relay

    def requestImage(self, image_id: str, requested_size: QSize) -> Tuple[QImage, QSize]:
        request = parse_image_id(image_id)
        loader = loader_for_source(request.source_id) if request is not None else None
        thumbnail = loader.promised_thumbnail(request.key) if loader is not None else None
        if thumbnail is not None:
            return thumbnail.image, thumbnail.image.size()
        if request is None or loader is None:
            # A null image: QML reports "Failed to get image from provider" and the Image's
            # status is Error, as for any other source that names nothing.
            return QImage(), QSize()
        # Neither in memory nor promised any more (hundreds of tiles were shown since the
        # model gave out this source). A null image would be an Error and a QML warning for a
        # thumbnail that exists, so the tile gets a transparent pixel for now and the loader
        # brings the thumbnail back, which gives the row a new source.
        self._relay.restore.emit(request.source_id, request.url)
        blank = QImage(1, 1, QImage.Format_ARGB32_Premultiplied)
        blank.fill(Qt.transparent)
        return blank, blank.size()
