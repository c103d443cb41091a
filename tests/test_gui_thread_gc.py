"""Cyclic garbage is collected on the GUI thread, never in the library's worker threads."""
import gc
import threading
import weakref

from PyQt5.QtCore import QObject

from imagegallery.gui_thread_gc import CHECK_INTERVAL_MS


class _InACycle(QObject):
    """A QObject Python owns, kept alive only by a reference to itself."""

    def __init__(self):
        super().__init__()
        self.itself = self


def test_a_cycle_holding_a_qt_object_is_freed_on_the_gui_thread_not_in_a_worker(qtbot, model):
    # `model` made a loader, which moved collection to the GUI thread. A worker thread that
    # allocates enough to cross the collector's thresholds collected, before, the cycles of
    # the whole process, this one among them: a QObject deleted outside its thread.
    freed_in = []
    doomed = _InACycle()
    watch = weakref.ref(doomed, lambda _: freed_in.append(threading.current_thread().name))
    del doomed

    made = []

    def allocate():  # as a decode or disk thread does, many times over
        made.extend([index] for index in range(20 * gc.get_threshold()[0]))

    worker = threading.Thread(target=allocate, name="a worker")
    worker.start()
    worker.join()
    assert freed_in == []  # left for the GUI thread
    qtbot.waitUntil(lambda: watch() is None, timeout=10 * CHECK_INTERVAL_MS)
    assert freed_in == [threading.main_thread().name]


def test_cyclic_garbage_goes_within_a_check_or_two_however_little_was_allocated(qtbot, model):
    # The count the collector reads is allocations less frees: checked against the threshold
    # alone, a cycle made among work that frees what it makes waited for ever.
    freed = []
    doomed = _InACycle()
    watch = weakref.ref(doomed, lambda _: freed.append(True))
    del doomed
    qtbot.waitUntil(lambda: watch() is None, timeout=4 * CHECK_INTERVAL_MS)
    assert freed == [True]
