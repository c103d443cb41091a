"""Byte-bounded caches: thumbnails in memory, encoded originals in memory, thumbnails on disk.

Budgets are in bytes, not entries, because a 64x64 icon and a 480x280 tile differ 30-fold.
"""
from __future__ import annotations

import errno
import hashlib
import heapq
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from stat import S_ISREG
from typing import Callable, Dict, Generic, Hashable, Optional, Tuple, TypeVar

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QSize, QUrl
from PyQt5.QtGui import QImage, QImageReader

from .decode import (HANDLER_CREATION_LOCK, JPEG_START, DecodeRefused, ThumbnailSpec,
                     read_jpeg_header, walk_png_chunks)
from .limits import MEGABYTE
from .qt_messages import decoding_an_image
from .transport.base import MAX_KEPT_HEADER_CHARS

_log = logging.getLogger("imagegallery.cache")


V = TypeVar("V")

# About 1,000 tiles of 240x140 ARGB: several screens of a large window, far below the memory a
# list of 10,000 URLs would need if every thumbnail stayed resident.
DEFAULT_THUMBNAIL_BUDGET = 128 * MEGABYTE
# Encoded originals kept so a change of thumbnail size re-decodes without downloading again;
# 64 MB holds about 200 typical 300 KB photos.
DEFAULT_ENCODED_BUDGET = 64 * MEGABYTE
# Thumbnails on disk are small (JPEG, or PNG where they have alpha; tens of KB each): 256 MB
# holds several thousand.
DEFAULT_DISK_BUDGET = 256 * MEGABYTE
DEFAULT_DISK_MAX_AGE_S = 30 * 24 * 3600


class ByteBoundedLRU(Generic[V]):
    """A least-recently-used map bounded by the summed size of its values.

    Thread: any; one lock guards it because the image provider reads from Qt's pixmap thread.
    """

    def __init__(self, budget_bytes: int, size_of: Callable[[V], int]):
        self._budget = budget_bytes
        self._size_of = size_of
        self._entries: "OrderedDict[Hashable, Tuple[V, int]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def budget_bytes(self) -> int:
        return self._budget

    def set_budget(self, budget_bytes: int) -> None:
        with self._lock:
            self._budget = max(0, int(budget_bytes))
            self._evict_locked()

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable) -> Optional[V]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V) -> None:
        size = self._size_of(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self._budget:
                return  # would evict everything else and still not fit
            self._entries[key] = (value, size)
            self._bytes += size
            self._evict_locked()

    def discard(self, key: Hashable) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _evict_locked(self) -> None:
        while self._bytes > self._budget and self._entries:
            _, (_, size) = self._entries.popitem(last=False)
            self._bytes -= size


class ThumbnailKey(tuple):
    """(url, width, height, fill mode): what a thumbnail is cached under, in memory and on disk."""

    def __new__(cls, url: str, width: int, height: int, fill_mode: str):
        return tuple.__new__(cls, (url, int(width), int(height), fill_mode))

    @classmethod
    def for_spec(cls, url: str, spec: ThumbnailSpec) -> "ThumbnailKey":
        return cls(url, spec.width, spec.height, spec.fill_mode)

    def disk_name(self) -> str:
        """The hash the entry's file is named after (`DiskThumbnailCache._path` adds the shard
        folder and the suffix). Hashing runs in the I/O worker, never on the GUI thread."""
        digest = hashlib.sha256(f"{self[0]}\n{self[1]}x{self[2]}\n{self[3]}".encode()).hexdigest()
        return digest


class CachedThumbnail:
    """A decoded thumbnail with what the model shows about its original."""

    __slots__ = ("image", "original_size", "etag", "last_modified")

    def __init__(self, image: QImage, original_size: QSize, etag: str = "", last_modified: str = ""):
        self.image = image
        self.original_size = original_size
        self.etag = etag
        self.last_modified = last_modified


def new_thumbnail_cache(budget_bytes: int = DEFAULT_THUMBNAIL_BUDGET) -> ByteBoundedLRU[CachedThumbnail]:
    # The validators count too: a server chooses their length.
    return ByteBoundedLRU(budget_bytes, lambda entry: entry.image.sizeInBytes() + 256
                          + len(entry.etag) + len(entry.last_modified))


def new_encoded_cache(budget_bytes: int = DEFAULT_ENCODED_BUDGET) -> ByteBoundedLRU:
    """Downloaded responses by URL (a transport's TransferResult: the body as sent, and the
    headers a decode needs again, its content type and encoding, and its validators)."""
    return ByteBoundedLRU(budget_bytes, _encoded_entry_bytes)


def _encoded_entry_bytes(response) -> int:
    """The body and the header texts kept with it, whose length a server chooses."""
    return (len(response.body) + 256 + len(response.content_type) + len(response.content_encoding)
            + len(response.etag) + len(response.last_modified) + len(response.cache_control)
            + len(response.final_url))


_shared_thumbnail_cache: Optional[ByteBoundedLRU[CachedThumbnail]] = None


def shared_thumbnail_cache() -> ByteBoundedLRU[CachedThumbnail]:
    """The process-wide thumbnail cache the image provider reads: one budget for all galleries."""
    global _shared_thumbnail_cache
    if _shared_thumbnail_cache is None:
        _shared_thumbnail_cache = new_thumbnail_cache()
    return _shared_thumbnail_cache


def default_disk_cache_dir() -> str:
    """IMAGEGALLERY_CACHE_DIR if set, else the user's cache folder."""
    configured = os.environ.get("IMAGEGALLERY_CACHE_DIR", "").strip()
    if configured:
        return disk_cache_folder(configured)
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("imagegallery"), "thumbnails")


_URL_WITH_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def disk_cache_folder(configured: "str | os.PathLike") -> str:
    """The absolute folder a configured cache directory names: a path (`~` expanded) or, as
    QML hands folders around, a file: URL. "" (no disk cache) for an empty one, or for a URL of
    another scheme ("scheme://..."); a relative name with a colon ("thumbs:v2") is a path."""
    configured = os.fspath(configured)
    if not configured:
        return ""
    if configured[:5].lower() == "file:":
        folder = QUrl(configured).toLocalFile()
        if not folder:  # "file:" or "file://" names no folder; abspath would make it the cwd
            _log.warning("cache directory %r names no folder: no disk cache", configured)
            return ""
        return os.path.abspath(folder)
    if _URL_WITH_AUTHORITY.match(configured):
        _log.warning("cache directory %r is not a folder: no disk cache", configured)
        return ""
    return os.path.abspath(os.path.expanduser(configured))


# What this cache writes, and all trim() may ever delete: a folder it is pointed at may hold
# the user's own files. A shard folder of two hex digits, an entry named for its key's hash,
# or the temporary name an entry is written under.
_SHARD_NAME = re.compile(r"[0-9a-f]{2}")
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}\.thumb(\.\d+\.\d+\.tmp)?")
_PNG_START = b"\x89PNG\r\n\x1a\n"
# The most bytes an entry's file may have: raw pixels of the largest thumbnail plus slack, far
# more than JPEG or PNG need. A larger file at an entry's name is not ours; it is not read.
_ENTRY_SLACK_BYTES = 1024 * 1024
# Chunks in a PNG this cache writes: a few, and the image data in pieces of 8 KB, so at least
# this many are allowed, and more in a larger file. libpng reads every chunk: a planted file of
# 98,000 empty ones took 70 ms.
_MAX_ENTRY_PNG_CHUNKS = 10_000
# The longest text chunk this cache writes, whole: a validator (at most
# transport.base.MAX_KEPT_HEADER_CHARS) with its key and the chunk's own bytes.
_MAX_TEXT_CHUNK_BYTES = 2048


class DiskThumbnailCache:
    """Thumbnails on disk (not originals), keyed by URL and size, bounded in bytes and age.

    Files are JPEG (opaque thumbnails) or PNG (with alpha), with the original's size and
    validators in comments or text chunks, so one read restores
    everything the model shows. Writes go to a temporary name and are renamed into place, so a
    crash never leaves a half file under a real name.
    Thread: the loader's I/O worker only; never the GUI thread.
    """

    ORIGINAL_SIZE = "imagegallery-original-size"
    ETAG = "imagegallery-etag"
    LAST_MODIFIED = "imagegallery-last-modified"
    # The hash its file is named after (ThumbnailKey.disk_name): a valid entry copied to another
    # key's name is a miss there, not that key's picture. (Entries written before it was kept
    # have none, and are read as before.)
    KEY = "imagegallery-key"
    _TEXTS = (ORIGINAL_SIZE, ETAG, LAST_MODIFIED, KEY)
    # Trimming scans the folder, so it runs once per this many writes, not per write.
    TRIM_EVERY_WRITES = 64

    def __init__(self, directory: str, budget_bytes: int = DEFAULT_DISK_BUDGET,
                 max_age_s: float = DEFAULT_DISK_MAX_AGE_S):
        self.directory = directory
        self.budget_bytes = budget_bytes
        self.max_age_s = max_age_s
        self._writes_since_trim = self.TRIM_EVERY_WRITES  # trim at the first write
        self._write_failure_reported = False
        self._room_made = False  # trim() made room for a write that then failed (store)
        self._writing = True  # until stop_writing()
        # Only the loader's one disk thread stores today, but `loader.disk` is public: the lock
        # keeps the trim counter right if two threads ever store into one cache.
        self._lock = threading.Lock()

    def _path(self, key: ThumbnailKey) -> str:
        name = key.disk_name()
        return os.path.join(self.directory, name[:2], name + ".thumb")

    def load(self, key: ThumbnailKey) -> Optional[CachedThumbnail]:
        path = self._path(key)
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not S_ISREG(stat.st_mode):
            return None  # not a file this cache wrote: reading a FIFO would block the disk thread
        now = time.time()
        future = _from_the_future(stat, now)
        if future:
            # Written while the clock was ahead: it would never expire. Aged from now.
            self._set_times(path, now, now)
        elif now - stat.st_mtime > self.max_age_s:
            self._remove(path)
            return None
        try:
            thumbnail = self._read_file(path, stat.st_size, QSize(key[1], key[2]), key.disk_name())
        except OSError:
            return None
        if thumbnail is None:
            self._remove(path)  # damaged: fetch again rather than fail
        else:
            self._mark_used(path, stat, now)
        return thumbnail

    @staticmethod
    def _mark_used(path: str, stat: os.stat_result, now: float) -> None:
        """Record a hit in the file's access time, which trim() evicts by, leaving its
        modification time, the age the age limit counts from. Set here, not left to the
        kernel: a `noatime` or `relatime` mount would keep a thumbnail read every day as old
        as the day it was written, and evict it before ones never read again."""
        if now - stat.st_atime < 60:
            return  # read within the last minute: its place in the order is already right
        try:
            # Only if the file is still the one read: another process's new entry stored (or
            # revalidated) meanwhile must keep its own modification time, not get this one's.
            current = os.stat(path)
            if (current.st_ino, current.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns):
                os.utime(path, ns=(int(now * 1e9), stat.st_mtime_ns))
        except OSError:
            pass  # a read-only cache still serves; it only evicts in write order

    def _read_file(self, path: str, file_size: int, box: QSize,
                   name: str) -> Optional[CachedThumbnail]:
        """The thumbnail in `path`, or None for a damaged or foreign file. Only what this cache
        writes is read, JPEG or PNG, and only at a size within `box`, the most a thumbnail for
        its key can be: a file put at an entry's name (a 213 KB PNG of 15000x15000 pixels, an
        SVG, a JPEG bomb) must not be decoded by whatever Qt plugin recognises it."""
        most = box.width() * box.height() * 4 + _ENTRY_SLACK_BYTES
        if file_size > most:
            return None
        with open(path, "rb") as handle:
            data = handle.read(most + 1)  # the file may have grown since it was measured
        if len(data) > most:
            return None
        if data[:2] == JPEG_START:
            header = read_jpeg_header(data, with_comments=True)
            stored = header.stored
            if stored is None or stored.isEmpty() or stored.width() > box.width() \
                    or stored.height() > box.height() or header.progressive or header.arithmetic:
                return None  # not one this cache wrote; a damaged size must not allocate gigabytes
            jpeg_turbo = _jpeg_turbo_if_loaded()
            if jpeg_turbo is not None and jpeg_turbo.available():
                # Damaged if libjpeg-turbo refuses or warns about it.
                image = jpeg_turbo.decode_jpeg_scaled(data, stored)
                return None if image is None else self._thumbnail(image, header.comments, name)
            image_format = b"jpeg"
        elif data[:8] == _PNG_START:
            if not self._whole_and_texts_as_written_here(data):
                return None
            image_format = b"png"
        else:
            return None
        # No libjpeg-turbo yet, or a PNG (with alpha). Qt reads the file itself: a QBuffer made
        # in Python here deadlocked against the decode threads (see decode.HANDLER_CREATION_LOCK).
        reader = QImageReader(path, image_format)
        reader.setAutoDetectImageFormat(False)
        with decoding_an_image(path):  # a damaged entry's complaints: it is fetched again
            with HANDLER_CREATION_LOCK:  # size() makes the handler, holding the GIL
                size = reader.size()
            if not size.isValid() or size.width() > box.width() or size.height() > box.height():
                return None
            image = reader.read()
        if image.isNull():
            return None
        # The image's texts, not the reader's: after read() a PNG reader has none left to give
        # (it printed "libpng error: Read Error" and the entry lost its size and validators).
        return self._thumbnail(image, {text: image.text(text) for text in self._TEXTS}, name)

    def _whole_and_texts_as_written_here(self, png: bytes) -> bool:
        """Whether the PNG is whole and its text chunks could be this cache's: at most one per
        text it stores, each short. libpng inflates every compressed text as Qt reads the
        header, with the GIL held: a planted file of 140 zTXt chunks of 8 MB each froze the GUI
        for 3 s. A file cut short is dropped here, not by Qt, where libpng printed "libpng error:
        Read Error" on stderr (decode.walk_png_chunks)."""
        try:
            # Qt writes the image data in 8 KB chunks: a large entry has more of them.
            chunks = walk_png_chunks(png, max(_MAX_ENTRY_PNG_CHUNKS, len(png) // 8192 + 64))
        except DecodeRefused:
            return False
        if chunks.cut_short:
            return False
        spans = chunks.text_spans
        return len(spans) <= len(self._TEXTS) and all(
            end - start <= _MAX_TEXT_CHUNK_BYTES for start, end in spans)

    def _thumbnail(self, image: QImage, texts: Dict[str, str],
                   name: str) -> Optional[CachedThumbnail]:
        if texts.get(self.KEY) and texts[self.KEY] != name:
            return None  # another key's entry (one written before keys were kept has none)
        wanted = QImage.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else QImage.Format_RGB32
        if image.format() != wanted:
            image = image.convertToFormat(wanted)  # what the scene graph uploads as is
        width, _, height = texts.get(self.ORIGINAL_SIZE, "").partition("x")
        original = QSize(int(width), int(height)) if _is_number(width) and _is_number(height) \
            else image.size()
        return CachedThumbnail(image, original, _header_value_or_empty(texts.get(self.ETAG, "")),
                               _header_value_or_empty(texts.get(self.LAST_MODIFIED, "")))

    def stop_writing(self) -> None:
        """Writes still queued for this folder are dropped (the loader's cache was turned off or
        moved); one under way finishes. Any thread."""
        self._writing = False

    def store(self, key: ThumbnailKey, thumbnail: CachedThumbnail) -> None:
        if not self._writing:
            return
        path = self._path(key)
        data = self._encode_file(thumbnail, key.disk_name())
        if data is None:
            return
        error = self._write_making_room(path, data)
        if error is not None:
            # A full or read-only disk costs the cache, never the image; said once per cache,
            # so a folder that cannot be written is not a silent cold start every time.
            if not self._write_failure_reported:
                self._write_failure_reported = True
                _log.warning("disk cache %s cannot be written (%s): thumbnails are kept in memory "
                             "only", self.directory, error.strerror or error)
            return
        with self._lock:
            self._writes_since_trim += 1
            due = self._writes_since_trim >= self.TRIM_EVERY_WRITES
            if due:
                self._writes_since_trim = 0
        if due:
            self.trim()

    def _write_making_room(self, path: str, data: bytes) -> Optional[OSError]:
        """None once `data` is at `path`, else why not. A full disk (or quota) gets one try
        more after trim() has made room: its budget is no promise of free space, and a disk
        full of this cache's own files never had a thumbnail written again."""
        try:
            self._write(path, data)
            self._room_made = False
            return None
        except OSError as error:
            # Room is made once until a write succeeds: a disk that other programs filled would
            # otherwise lose a tenth of the cache, and a scan of the folder, at every thumbnail.
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or self._room_made:
                return error
        self._room_made = True
        self.trim(free_bytes=len(data))
        try:
            self._write(path, data)
            self._room_made = False
            return None
        except OSError as error:
            return error

    def _write(self, path: str, data: bytes) -> None:
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except OSError:
            self._remove(temporary)  # a part written to a full disk would wait an hour for trim()
            raise

    def _encode_file(self, thumbnail: CachedThumbnail, name: str) -> Optional[bytes]:
        from . import jpeg_turbo

        original = thumbnail.original_size
        texts = {self.ORIGINAL_SIZE: f"{original.width()}x{original.height()}", self.KEY: name}
        if thumbnail.etag:
            texts[self.ETAG] = thumbnail.etag
        if thumbnail.last_modified:
            texts[self.LAST_MODIFIED] = thumbnail.last_modified
        image = thumbnail.image
        # Opaque thumbnails as JPEG at quality 90: a fifth of PNG's bytes, invisible loss at
        # thumbnail size, and through libjpeg-turbo's SIMD 0.16 ms to encode a 187x140 tile
        # (Qt's writer 0.8 ms, PNG 4.4 ms). PNG only where there is alpha to keep.
        if not image.hasAlphaChannel():
            encoded = jpeg_turbo.encode_rgb32(image, _JPEG_QUALITY)
            if encoded is not None:
                return _with_jpeg_comments(encoded, texts)
        image = QImage(image)
        for name, value in texts.items():
            image.setText(name, value)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.WriteOnly)
        if image.hasAlphaChannel():
            saved = image.save(buffer, b"png", 80)
        else:
            saved = image.save(buffer, b"jpeg", _JPEG_QUALITY)
        return bytes(data) if saved else None

    def discard(self, key: ThumbnailKey) -> None:
        self._remove(self._path(key))

    def touch(self, key: ThumbnailKey) -> None:
        """Mark a revalidated entry fresh again."""
        try:
            os.utime(self._path(key))
        except OSError:
            pass

    def trim(self, free_bytes: int = 0) -> None:
        """Drop expired files (by the time they were written or revalidated), then the least
        recently used (by the time they were last read or written) until the folder fits the
        budget. Only this cache's own files (_ENTRY_NAME in a _SHARD_NAME folder) are counted
        or deleted, by the space they take on disk; symbolic links are not followed.
        With `free_bytes` (the disk is full), a tenth of the files' space goes too, or at least
        that much: room for the next writes, not only this one."""
        entries = []
        now = time.time()
        for path, stat in self._entries():
            if path.endswith(".tmp") and now - stat.st_mtime > 3600:
                self._remove(path)
            elif _from_the_future(stat, now):
                # Dated while the clock was ahead, it sorted as the most recently used, pushing
                # out every entry written since, and never expired. Its last use is unknown: first
                # to go, and aged from now.
                self._set_times(path, 0, now)
                entries.append((0, _bytes_on_disk(stat), path))
            elif now - stat.st_mtime > self.max_age_s:
                self._remove(path)
            else:
                last_used = max(stat.st_atime, stat.st_mtime)
                entries.append((last_used, _bytes_on_disk(stat), path))
        total = sum(size for _, size, _ in entries)
        target = self.budget_bytes
        if free_bytes:
            target = max(0, min(target, total - max(free_bytes, total // 10)))
        if total <= target:
            return
        # Sorted in pieces and merged lazily: one sort of a large folder holds the GIL, which the
        # GUI thread then waits for (60,000 entries: 34-45 ms).
        pieces = [sorted(entries[start:start + _TRIM_SORT_PIECE])
                  for start in range(0, len(entries), _TRIM_SORT_PIECE)]
        for _, size, path in heapq.merge(*pieces):
            if total <= target:
                break
            self._remove(path)
            total -= size

    def size_on_disk(self) -> int:
        """The space this cache's files take (as trim() counts it)."""
        return sum(_bytes_on_disk(stat) for _, stat in self._entries())

    def _entries(self):
        """(path, stat) of each file this cache wrote: its own names only, no link followed."""
        try:
            shards = [entry for entry in os.scandir(self.directory)
                      if _SHARD_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for shard in shards:
            try:
                files = list(os.scandir(shard.path))
            except OSError:
                continue
            for entry in files:
                try:
                    if _ENTRY_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                        yield entry.path, entry.stat(follow_symlinks=False)
                except OSError:
                    continue

    @staticmethod
    def _set_times(path: str, accessed: float, modified: float) -> None:
        try:
            os.utime(path, (accessed, modified))
        except OSError:
            pass  # a read-only cache: left as it is

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.remove(path)
        except OSError:
            pass


# Metadata travels in JPEG comment segments, one "key: value" each, the form Qt's writer gives a
# QImage's texts: Qt reads the files written here, and a cache Qt's writer made reads here.
_JPEG_COMMENT = 0xFE
_JPEG_QUALITY = 90
_MAX_SEGMENT_PAYLOAD = 65533


def _jpeg_turbo_if_loaded():
    """`jpeg_turbo` once a thread has imported it whole, else None. The warm-up thread install()
    starts (loader.warm_up_in_background) imports it before the first list (numpy: about 70
    ms); a warm start's first disk hits, read by Qt meanwhile, came at 32-61 ms instead of
    107-153 ms (50 thumbnails, four runs)."""
    module = sys.modules.get(f"{__package__}.jpeg_turbo")
    return module if getattr(module, "LOADED", False) else None


# Entries trim() sorts at once, holding the GIL: about a millisecond's worth.
_TRIM_SORT_PIECE = 2000
# How far ahead of the clock a file's times may be (another machine's clock, on a shared folder)
# before they are taken as written while this clock was ahead.
_CLOCK_SLACK_S = 600


def _from_the_future(stat: os.stat_result, now: float) -> bool:
    return max(stat.st_mtime, stat.st_atime) > now + _CLOCK_SLACK_S


def _bytes_on_disk(stat: os.stat_result) -> int:
    """The space a file takes, in whole blocks: 399 small entries took 4.2 MB for 2.5 MB of
    content."""
    return max(stat.st_size, getattr(stat, "st_blocks", 0) * 512)


def _is_number(text: str) -> bool:
    # ASCII: isdigit alone also takes "²", which int refuses. Nine digits at most: a QSize side
    # is a 32-bit int, and a longer run is damage, not a size.
    return text.isascii() and text.isdigit() and len(text) <= 9


def _header_value_or_empty(text: str) -> str:
    """`text` if it can go back to the server as a header value and is no longer than the
    transports keep one, else "" (no validator).

    A server's validators arrive as Latin-1 header text and are stored as such; one a damaged
    file changed into a control character (a header break) or into text outside Latin-1 (a
    byte that is not UTF-8 reads as U+FFFD) would make the revalidating request fail to encode.
    """
    if len(text) <= MAX_KEPT_HEADER_CHARS \
            and all(" " <= char <= "~" or "\x80" <= char <= "\xff" for char in text):
        return text
    return ""


def _with_jpeg_comments(jpeg: bytes, texts: Dict[str, str]) -> bytes:
    """`jpeg` with a comment segment per text, after its JFIF header (which must come first)."""
    position = 2
    if jpeg[2:4] == b"\xff\xe0":
        position += 2 + int.from_bytes(jpeg[4:6], "big")
    segments = []
    for name, value in texts.items():
        payload = f"{name}: {value}".encode()
        if len(payload) <= _MAX_SEGMENT_PAYLOAD:  # else left out: a validator that long is junk
            segments.append(bytes((0xFF, _JPEG_COMMENT)) + (len(payload) + 2).to_bytes(2, "big")
                            + payload)
    return jpeg[:position] + b"".join(segments) + jpeg[position:]
