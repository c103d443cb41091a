"""Python's cyclic garbage collector, run on the GUI thread only.

Python collects cycles in whichever thread happens to allocate when a threshold is crossed. This
library's decode, disk, sandbox and curl threads allocate all the time, and so does Qt's pixmap
reader thread inside the asynchronous image provider: in one run of tests/test_qml_gallery.py the
collector ran 40 times outside the GUI thread and freed cycles there 10 times. A cycle that holds
a QObject Python owns (the app's, a test's, a QEventLoop) then deletes that object in the wrong
thread, which Qt does not allow: a crash, or a Qt object gone under the code using it.

So automatic collection is turned off and the GUI thread collects instead, every
CHECK_INTERVAL_MS (the pattern PyQt applications such as calibre and qutebrowser use): the
youngest generation at every check where anything was allocated since the last, the older ones
as their thresholds say. Reference counting frees everything that is not in a cycle at once, as
before; cyclic garbage waits at most about that long while the GUI thread runs its event loop. (A
check of the threshold alone would have let it wait for ever: the count it reads is allocations
less frees, and a burst of work that frees what it made leaves it low.)
An application that wants automatic collection back calls `gc.enable()` after `install()`: the
timer then only finds less to do.
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
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due_generations)
        self._timer.start(CHECK_INTERVAL_MS)

    def collect_due_generations(self) -> None:
        """The youngest generation if anything was allocated since the last collection, and
        each older one once its count (collections of the one below) passes its threshold."""
        count0, count1, count2 = gc.get_count()
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if threshold0 == 0 or count0 == 0:  # a threshold of 0 turns collection off
            return
        generation = 0
        if count1 > threshold1:
            generation = 2 if count2 > threshold2 else 1
        gc.collect(generation)


def collect_garbage_on_gui_thread() -> None:
    """Turn automatic collection off and collect on the GUI thread instead (see the module's
    docstring). Once per process; called by install() and by every ImageLoader, on the GUI
    thread. Without an application yet, or from another thread, it does nothing."""
    global _collector
    application = QCoreApplication.instance()
    if _collector is not None or application is None or QThread.currentThread() is not application.thread():
        return
    _collector = _GuiThreadCollector(application)
    gc.disable()
    application.destroyed.connect(_forget_collector)


def _forget_collector() -> None:
    """The application is gone, and the timer with it: collection is automatic again (a new
    application made later, as a test session may, starts its own collector)."""
    global _collector
    _collector = None
    gc.enable()
