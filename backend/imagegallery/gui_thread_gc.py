"""Python's cyclic garbage collector, run on the GUI thread only: for the `imagegallery` app and
the test suite, and for host applications that choose it.

Python collects cycles in whichever thread happens to allocate when a threshold is crossed. This
library's decode, disk, sandbox and curl threads allocate all the time, and so does Qt's pixmap
reader thread inside the asynchronous image provider: in one run of tests/test_qml_gallery.py the
collector ran 40 times outside the GUI thread and freed cycles there 10 times. A cycle that holds
a QObject Python owns (a QEventLoop, a QObject subclass) then deletes that object in the wrong
thread, which Qt does not allow: a crash, or a Qt object gone under the code using it.

So automatic collection is turned off and the GUI thread collects instead, every
CHECK_INTERVAL_MS (the pattern PyQt applications such as calibre and qutebrowser use): the
youngest generation at every check where anything was allocated since the last, the middle one
by its threshold, the oldest by CPython's own rule (its threshold, and only once the objects
that reached it since the last full collection are a quarter of those it holds: full
collections cost 8-11 ms here, more with a larger heap). Reference counting frees everything
not in a cycle at once, as before.

Not done by install(): it is the whole process's setting, and cyclic garbage made by a host's
own threads would wait for the GUI thread's event loop, without bound while that is blocked. A
host that wants it calls `collect_garbage_on_gui_thread()` after making its application. A
process that had turned collection off keeps it off: nothing is done.
"""
from __future__ import annotations

import gc
from typing import Optional

from PyQt5.QtCore import QCoreApplication, QObject, QThread, QTimer

CHECK_INTERVAL_MS = 500

_collector: Optional["_GuiThreadCollector"] = None


class _GuiThreadCollector(QObject):
    def __init__(self, application: QCoreApplication):
        super().__init__(application)  # lives as long as the application
        # CPython's bookkeeping for the oldest generation (gc_collect_generations, 3.11).
        self._long_lived_total = len(gc.get_objects(2))
        self._long_lived_pending = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due_generations)
        self._timer.start(CHECK_INTERVAL_MS)

    def collect_due_generations(self) -> None:
        """The youngest generation if anything was allocated since its last collection; the
        older ones as CPython would have collected them."""
        count0, count1, count2 = gc.get_count()
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if threshold0 == 0 or count0 == 0:  # a threshold of 0 turns collection off
            return
        if count1 <= threshold1:
            gc.collect(0)
            return
        if count2 > threshold2 and self._long_lived_pending >= self._long_lived_total // 4:
            gc.collect(2)
            self._long_lived_total = len(gc.get_objects(2))
            self._long_lived_pending = 0
            return
        young = len(gc.get_objects(0)) + len(gc.get_objects(1))
        collected = gc.collect(1)
        self._long_lived_pending += max(0, young - collected)  # the survivors, now in gen2


def collect_garbage_on_gui_thread() -> None:
    """Turn automatic collection off and collect on the GUI thread instead (see the module's
    docstring). Once per application; call it on the GUI thread, after making the
    application. Does nothing without an application, from another thread, or where
    collection is off already."""
    global _collector
    application = QCoreApplication.instance()
    if (_collector is not None or application is None or not gc.isenabled()
            or QThread.currentThread() is not application.thread()):
        return
    _collector = _GuiThreadCollector(application)
    gc.disable()
    application.destroyed.connect(_forget_collector)


def _forget_collector() -> None:
    """The application is gone, and the timer with it: collection is automatic again, as it was
    before (a new application made later, as a test session may, starts its own collector)."""
    global _collector
    _collector = None
    gc.enable()
