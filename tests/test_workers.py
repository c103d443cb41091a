"""The priority worker pool: order, cancellation, and waiting for queued work at quit."""
import os
import sys
import threading
import time

import pytest

from imagegallery.workers import WORKER_NICENESS, PriorityWorkerPool, default_decode_threads


@pytest.fixture
def make_pool():
    """Pools closed at teardown, also when an assertion fails first."""
    made = []

    def make(threads, name="test"):
        made.append(PriorityWorkerPool(threads, name))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


def test_jobs_run_in_priority_order_and_cancelled_ones_never_run(qtbot, make_pool):
    pool = make_pool(1)
    gate = threading.Event()
    ran = []
    pool.submit(0, "gate", gate.wait, 5)  # holds the only thread while the rest queue up
    for priority, token in ((3, "c"), (1, "a"), (2, "b"), (0, "cancelled")):
        pool.submit(priority, token, ran.append, token)
    pool.cancel("cancelled")
    done = []
    pool.done.connect(lambda token, result: done.append(token))
    gate.set()
    qtbot.waitUntil(lambda: len(done) == 4, timeout=5000)
    assert ran == ["a", "b", "c"]
    assert pool.pending() == 0


def test_a_token_submitted_again_after_its_cancel_runs_once_and_the_cancelled_job_never(
        qtbot, make_pool):
    pool = make_pool(1)
    gate = threading.Event()
    ran = []
    pool.submit(0, "gate", gate.wait, 5)
    pool.submit(1, "job", ran.append, "cancelled one")
    pool.cancel("job")
    pool.submit(1, "job", ran.append, "new one")
    done = []
    pool.done.connect(lambda token, result: done.append(token))
    gate.set()
    qtbot.waitUntil(lambda: done == ["gate", "job"], timeout=5000)
    assert pool.wait_until_idle(5)
    assert ran == ["new one"]
    assert pool.pending() == 0


def test_wait_until_idle_returns_once_queued_work_is_done(make_pool):
    pool = make_pool(1)
    gate = threading.Event()
    written = []
    pool.submit(0, "slow", gate.wait, 5)
    for number in range(20):
        pool.submit(1, number, written.append, number)
    assert not pool.wait_until_idle(0.05)  # the gate still holds the thread
    gate.set()
    assert pool.wait_until_idle(5)
    assert written == list(range(20))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_workers_run_at_a_lower_cpu_priority_than_the_thread_that_made_them(qtbot, make_pool):
    def own_niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    pool = make_pool(1)
    results = []
    pool.done.connect(lambda token, result: results.append(result))
    pool.submit(0, "niceness", own_niceness)
    qtbot.waitUntil(lambda: len(results) == 1, timeout=5000)
    assert results == [min(19, own_niceness() + WORKER_NICENESS)]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_decode_threads_follow_the_cores_this_process_may_use_not_the_machines():
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # what `taskset -c N` or a cpuset leaves
        assert default_decode_threads() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert default_decode_threads() == min(4, len(allowed))


def test_wait_until_idle_returns_when_only_cancelled_entries_were_left(qtbot):
    pool = PriorityWorkerPool(1, "idle-after-cancel")
    release = threading.Event()
    try:
        pool.submit(0, "running", release.wait, 5)
        qtbot.waitUntil(lambda: pool.pending() == 1 and not pool._heap, timeout=2000)
        for index in range(2000):  # e.g. the disk lookups of rows removed from a long list
            pool.submit(1, f"queued-{index}", lambda: None)
            pool.cancel(f"queued-{index}")
        threading.Timer(0.1, release.set).start()
        started = time.monotonic()
        assert pool.wait_until_idle(3.0)
        # Idle about 0.1 s in; the waiter was not told and slept to its deadline.
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        pool.close()
