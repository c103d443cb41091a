"""A small priority thread pool whose results come back to the GUI thread ahead of other events.

Used by the loader for decoding (one thread per core: libjpeg-turbo's decode and
QImageReader.read run without the GIL, so two threads decode about twice as fast as one; PyQt5
5.15 keeps the GIL in QImage.scaled, copy and convertToFormat, measured in bench/README.md), for
the sandbox (one thread per child process, so a hanging child never holds a thread the other
decodes need) and for the disk cache (one thread), and by the local-file transport (one thread of
its own, so a slow share never holds up the disk cache). Priority matters because a burst of
finished downloads would otherwise be decoded in arrival order, not visible-first.

Every pool thread runs 10 nicer than the thread that made it (WORKER_NICENESS; Linux only): on few
cores, full-speed workers otherwise take the CPU from the GUI thread and frames wait.
"""
from __future__ import annotations

import atexit
import heapq
import itertools
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Set, Tuple

from PyQt5.QtCore import QCoreApplication, QEvent, QObject, Qt, pyqtSignal


def usable_cores() -> int:
    """The cores this process may run on: a container or `taskset` can allow fewer than the
    machine has, and decoders beyond them only take turns with the GUI thread."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_decode_threads() -> int:
    # One per core, at most four: past that the GIL-bound Python glue between decodes dominates.
    return min(4, usable_cores())


# How much nicer than the thread that made them workers run. Android's image loaders run theirs
# at THREAD_PRIORITY_BACKGROUND for the same reason: on a machine with few cores, full-speed
# decoders otherwise take the CPU from the GUI thread, and frames wait behind decodes. (A/B on
# 2 cores, W2 and W3 twice each: nice 0 finished 1-3% sooner but stalled the GUI 15-27 ms;
# nice 10 stalled it 12-17 ms.)
WORKER_NICENESS = 10


def _lower_this_thread_priority() -> None:
    # On Linux a thread has its own nice value, set through its thread id (it starts with its
    # creator's); elsewhere setpriority would change the whole process, so leave it.
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread,
                       min(19, os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS))
    except OSError:
        pass


def _name_this_thread(name: str) -> None:
    # Python names its threads only for itself; the kernel's name is what top -H, perf and
    # /proc show, so a profile tells decoders from the disk thread. Linux keeps 15 bytes.
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_NAME = 15
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


class _WorkerResult(QEvent):
    """One finished job, posted from a worker to its pool on the GUI thread."""

    TYPE = QEvent.Type(QEvent.registerEventType())

    def __init__(self, token, result):
        super().__init__(self.TYPE)
        self.token = token
        self.result = result


# Every live pool, for the exit hook below.
_live_pools: "weakref.WeakSet[PriorityWorkerPool]" = weakref.WeakSet()
# How long the interpreter's exit waits for jobs already running.
EXIT_WAIT_S = 2.0
# How long close() waits for a worker posting a result.
POST_WAIT_S = 1.0


@atexit.register
def _stop_pools_at_exit() -> None:
    # At exit PyQt deletes the C++ objects Python owns, a decode's QBuffer among them, while
    # daemon workers may still be inside Qt with them: a script that set a list and ended
    # segfaulted about one exit in three. Registered after PyQt's own exit hook, so it runs first.
    pools = list(_live_pools)
    for pool in pools:
        pool.close()
    for pool in pools:
        pool.wait_until_idle(EXIT_WAIT_S)


class PriorityWorkerPool(QObject):
    """Runs `fn(*args)` in worker threads, lowest priority value first.

    `done(token, result)` is emitted on the pool's (GUI) thread. Results are posted at high
    event priority, ahead of the events already waiting there: a finished decode is a picture
    to show and a disk-cache miss is a request to send, and as queued signals they waited
    behind everything before them. A new list's first disk lookups came back after the view
    had built its tiles, so its first requests left 20 ms late (W1 trace).
    Thread: submit/cancel/close from the GUI thread.
    """

    done = pyqtSignal(object, object)

    def __init__(self, threads: int, name: str, parent=None):
        super().__init__(parent)
        self._heap: List[Tuple[Any, int, object, Callable, tuple]] = []
        # A token's entries still in the heap, by sequence number, and the entries cancelled:
        # by entry, not by token, so a token submitted again after a cancel runs once, the
        # cancelled entry not at all.
        self._queued: Dict[object, List[int]] = {}
        self._queued_count = 0
        self._cancelled: Set[int] = set()
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._closed = False
        self._running = 0
        self._posting = 0
        # Started at the first submit, not here: a model is often made as its list arrives,
        # and five thread starts were a millisecond of that turn; the sandbox's two threads
        # are never needed by most galleries.
        self._threads = [threading.Thread(target=self._work, args=(f"ig-{name}-{i}",),
                                          name=f"imagegallery-{name}-{i}", daemon=True)
                         for i in range(threads)]
        self._started = False
        _live_pools.add(self)

    def submit(self, priority, token, fn: Callable, *args) -> None:
        with self._condition:
            if self._closed:
                return
            sequence = next(self._counter)
            self._queued.setdefault(token, []).append(sequence)
            self._queued_count += 1
            heapq.heappush(self._heap, (priority, sequence, token, fn, args))
            self._condition.notify()
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()

    def cancel(self, token) -> None:
        """Drop a job that has not started; a running one finishes and its result is ignored."""
        with self._condition:
            sequences = self._queued.pop(token, ())
            self._cancelled.update(sequences)
            self._queued_count -= len(sequences)

    def pending(self) -> int:
        """Jobs queued or running (the soak test checks nothing outlives its row)."""
        with self._condition:
            return self._queued_count + self._running

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Block until every queued and running job is done, at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def close(self, finish_queued: bool = False) -> None:
        """After it returns nothing more is emitted. Running jobs finish; queued ones are
        dropped, or with `finish_queued` still run (nothing is emitted for them either), for
        work that must not be lost, like thumbnails on their way to the disk."""
        with self._condition:
            self._closed = True
            if not finish_queued:
                self._heap.clear()
                self._queued.clear()
                self._queued_count = 0
                self._cancelled.clear()
            self._condition.notify_all()
            # A worker that saw the pool open may be posting its result, which takes microseconds;
            # bounded all the same, since close() runs on the GUI thread.
            deadline = time.monotonic() + POST_WAIT_S
            while self._posting and time.monotonic() < deadline:
                self._condition.wait(POST_WAIT_S)

    def event(self, event: QEvent) -> bool:
        if event.type() != _WorkerResult.TYPE:
            return super().event(event)
        if not self._closed:  # nothing is delivered once close() has returned
            self.done.emit(event.token, event.result)
        return True

    def _work(self, system_name: str) -> None:
        _name_this_thread(system_name)
        _lower_this_thread_priority()
        while True:
            with self._condition:
                while not self._heap and not self._closed:
                    self._condition.wait()
                if not self._heap:  # closed, and nothing left to finish
                    return
                _, sequence, token, fn, args = heapq.heappop(self._heap)
                if sequence in self._cancelled:
                    self._cancelled.discard(sequence)
                    if not self._heap and not self._running:
                        self._condition.notify_all()  # wait_until_idle() waits on this
                    continue
                sequences = self._queued[token]
                sequences.remove(sequence)
                if not sequences:
                    del self._queued[token]
                self._queued_count -= 1
                self._running += 1
            try:
                result = fn(*args)
            except Exception as exc:  # the job functions catch their own; this is a last guard
                result = exc
            # Counted as posting (and running) until posted: once close() or wait_until_idle()
            # returns, no worker is still posting. A worker posting while the quitting
            # application destroyed its objects crashed the process at exit (a segfault after the
            # last thumbnail was written). The post itself runs outside the lock: it needs the
            # GIL, and a nice-10 worker that held the lock while it waited for the GIL made the
            # GUI thread's next submit() wait until the scheduler ran that worker again (13 ms
            # in a W7 trace).
            with self._condition:
                posting = not self._closed
                self._posting += posting
            if posting:
                try:
                    QCoreApplication.postEvent(self, _WorkerResult(token, result),
                                               Qt.HighEventPriority)
                except RuntimeError:  # the pool's QObject was deleted at shutdown
                    with self._condition:
                        self._closed = True
            with self._condition:
                self._posting -= posting
                self._running -= 1
                self._condition.notify_all()  # wakes close() and wait_until_idle()
