"""Local files (file:// URLs and CLI paths), read in a worker so the GUI thread never does disk I/O."""
from __future__ import annotations

import os
import stat
from typing import Set

from PyQt5.QtCore import QUrl

from ..workers import PriorityWorkerPool
from .base import ErrorKind, TransferError, TransferRequest, TransferResult, Transport, too_large_error


def _read_file(request: TransferRequest) -> TransferResult:
    path = QUrl(request.url).toLocalFile()
    try:
        # Non-blocking: opening a FIFO for reading waits for a writer, and this one thread reads
        # every local file of the gallery (a FIFO in a list stopped all the rows after it).
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                return _local_error(request, "is a folder, not a file")
            if not stat.S_ISREG(info.st_mode):  # a FIFO, a socket, /dev/zero
                return _local_error(request, "not a regular file")
            if info.st_size > request.max_response_bytes:
                return TransferResult(request.request_id, request.url,
                                      error=too_large_error(request.max_response_bytes, info.st_size))
            # Read one byte past the cap: a file that grew since fstat() is still caught.
            body = handle.read(request.max_response_bytes + 1)
    except FileNotFoundError:
        return _local_error(request, "file not found")
    except IsADirectoryError:
        return _local_error(request, "is a folder, not a file")
    except PermissionError:
        return _local_error(request, "permission denied")
    except OSError as exc:
        return _local_error(request, exc.strerror or "cannot read file")
    if len(body) > request.max_response_bytes:
        return TransferResult(request.request_id, request.url,
                              error=too_large_error(request.max_response_bytes))
    return TransferResult(request.request_id, request.url, body)


def _local_error(request: TransferRequest, message: str) -> TransferResult:
    return TransferResult(request.request_id, request.url,
                          error=TransferError(ErrorKind.LOCAL_FILE, message))


class LocalFileTransport(Transport):
    """Reads file:// URLs in its own worker thread. Thread: GUI thread."""

    def __init__(self, parent=None):
        super().__init__(parent)
        # Reading a file is fast; one thread keeps a slow network share from starving the disk
        # cache's own I/O thread.
        self._pool = PriorityWorkerPool(1, "file", self)
        self._pool.done.connect(self._on_done)
        self._live: Set[int] = set()

    def start(self, request: TransferRequest) -> None:
        self._live.add(request.request_id)
        self._pool.submit(0, request.request_id, _read_file, request)

    def abort(self, request_id: int) -> None:
        self._live.discard(request_id)
        self._pool.cancel(request_id)

    def in_flight(self) -> int:
        return len(self._live)

    def close(self) -> None:
        self._live.clear()
        self._pool.close()

    def _on_done(self, request_id, result) -> None:
        if request_id not in self._live:
            return
        self._live.discard(request_id)
        if isinstance(result, TransferResult):
            if result.ok:
                self.responseStarted.emit(request_id, 200, len(result.body))
                self.progress.emit(request_id, len(result.body), len(result.body))
            self.finished.emit(result)
        else:
            self.finished.emit(TransferResult(request_id, "", error=TransferError(
                ErrorKind.LOCAL_FILE, f"cannot read file ({result})")))
