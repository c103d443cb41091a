"""Cyclic garbage collected on the GUI thread (the app's and the tests' setting), never in a
worker thread; and a process that had collection off keeps it off."""
import gc
import threading
import weakref

from PyQt5.QtCore import QObject

from imagegallery import gui_thread_gc
from imagegallery.gui_thread_gc import CHECK_INTERVAL_MS


class _InACycle(QObject):
    """A QObject Python owns, kept alive only by a reference to itself."""

    def __init__(self):
        super().__init__()
        self.itself = self


def test_a_cycle_holding_a_qt_object_is_freed_on_the_gui_thread_not_in_a_worker(qtbot):
    # conftest turned the GUI thread's collection on, as the app does. A worker thread that
    # allocates enough to cross the collector's thresholds collected, before, the cycles of
    # the whole process, this one among them: a QObject deleted outside its thread.
    assert gui_thread_gc._collector is not None and not gc.isenabled()
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


def test_cyclic_garbage_goes_within_a_check_or_two_however_little_was_allocated(qtbot):
    # The count the collector reads is allocations less frees: checked against the threshold
    # alone, a cycle made among work that frees what it makes waited for ever.
    freed = []
    doomed = _InACycle()
    watch = weakref.ref(doomed, lambda _: freed.append(True))
    del doomed
    qtbot.waitUntil(lambda: watch() is None, timeout=4 * CHECK_INTERVAL_MS)
    assert freed == [True]


def test_the_oldest_generation_is_collected_only_as_cpython_would(qtbot, monkeypatch):
    # Every tenth collection of the middle generation made a full one, about every minute in
    # an idle app: 8-11 ms on the GUI thread, 79 ms with a host's million objects. CPython
    # waits until a quarter of the oldest generation is new since the last full collection.
    collector = gui_thread_gc._collector
    full = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda generation=2: (
        full.append(generation) if generation == 2 else None, real_collect(generation))[1])
    monkeypatch.setattr(gc, "get_count", lambda: (1, 11, 11))  # every threshold passed
    monkeypatch.setattr(collector, "_long_lived_pending", 0)
    collector.collect_due_generations()
    assert full == []  # nothing new in the oldest generation: the middle one instead
    monkeypatch.setattr(collector, "_long_lived_pending", collector._long_lived_total)
    collector.collect_due_generations()
    assert full == [2]


def test_a_process_that_had_collection_off_keeps_it_off(qtbot, monkeypatch):
    monkeypatch.setattr(gui_thread_gc, "_collector", None)
    gc.disable()
    gui_thread_gc.collect_garbage_on_gui_thread()
    assert gui_thread_gc._collector is None  # nothing started: the host's choice stands
