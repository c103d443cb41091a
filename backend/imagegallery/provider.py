"""The image provider behind `image://imagegallery/...`: it serves thumbnails, never fetches.

Sources look like image://imagegallery/<loader>/<W>x<H>/<fill>/<version>/<base64 url>. A hit in
the memory cache answers at once. A miss (a Ready row whose thumbnail the byte-bounded cache
evicted, scrolled back into view) asks the row's loader, first in its queue, which restores it
from the disk cache or the encoded bytes it still holds; QML never triggers a download of its own
and never decodes a full image.

Set these sources through the model's `source` role in QML, not from Python on an Image item:
Qt's pixmap reader thread cancels a pending response while it holds its own lock, and the
response's `cancel` needs the GIL, so a Python call that changes an Image's source while a miss
is pending (it takes that lock with the GIL held) can deadlock. Bindings in QML run without the
GIL; a reviewer's 5,600 cancellations through the model's roles all completed.
"""
from __future__ import annotations

import threading
from typing import Optional

from PyQt5.QtCore import QObject, QSize, pyqtSignal
from PyQt5.QtGui import QImage
from PyQt5.QtQuick import QQuickAsyncImageProvider, QQuickImageResponse, QQuickTextureFactory

from .cache import CachedThumbnail, ThumbnailKey, shared_thumbnail_cache
from .decode import ThumbnailSpec
from .model import decode_source_url, loader_for_id


class ThumbnailResponse(QQuickImageResponse):
    """One pending image for QML. Emits `finished` exactly once, also after `cancel()`.

    Thread: created on Qt's pixmap reader thread; completed from the GUI thread or at once.
    """

    def __init__(self):
        super().__init__()
        self._image = QImage()
        self._error = ""
        self._done = False
        self._lock = threading.Lock()

    def complete(self, image: Optional[QImage], error: str = "") -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self._image = image if image is not None else QImage()
            self._error = error
        self.finished.emit()

    def textureFactory(self) -> QQuickTextureFactory:
        return QQuickTextureFactory.textureFactoryForImage(self._image)

    def errorString(self) -> str:
        return self._error

    def cancel(self) -> None:
        self.complete(None, "cancelled")


class _GuiThreadRelay(QObject):
    """Carries provider misses to the GUI thread, where the loaders live."""

    miss = pyqtSignal(int, str, object, object)  # loader id, url, spec, response

    def __init__(self):
        super().__init__()
        self.miss.connect(self._on_miss)

    def _on_miss(self, loader_id: int, url: str, spec: ThumbnailSpec, response: ThumbnailResponse):
        loader = loader_for_id(loader_id)
        if loader is None:
            response.complete(None, "gallery closed")
            return

        def deliver(thumbnail: Optional[CachedThumbnail], error: str) -> None:
            response.complete(thumbnail.image if thumbnail is not None else None, error)

        loader.load_for_provider(url, spec, deliver)


class ThumbnailImageProvider(QQuickAsyncImageProvider):
    """Registered as "imagegallery" by `install(engine)`. Thread: Qt's pixmap reader thread."""

    def __init__(self):
        super().__init__()
        self._relay = _GuiThreadRelay()  # created on the GUI thread, with install()
        self._cache = shared_thumbnail_cache()
        # QML owns each response once returned, but PyQt must keep the Python half alive until it
        # has finished; finished responses are dropped from here.
        self._responses = set()

    def requestImageResponse(self, image_id: str, requested_size: QSize) -> QQuickImageResponse:
        response = ThumbnailResponse()
        self._responses.add(response)
        response.finished.connect(lambda r=response: self._responses.discard(r))
        try:
            loader_text, size_text, fill_mode, _version, encoded = image_id.split("/", 4)
            width, height = (int(part) for part in size_text.split("x"))
            url = decode_source_url(encoded)
            loader_id = int(loader_text)
        except (ValueError, UnicodeDecodeError):
            response.complete(None, f"bad image id '{image_id}'")
            return response
        cached = self._cache.get(ThumbnailKey(url, width, height, fill_mode))
        if cached is not None:
            response.complete(cached.image)
        else:
            self._relay.miss.emit(loader_id, url, ThumbnailSpec(width, height, fill_mode), response)
        return response
