"""The priority worker pool: order, cancellation, and waiting for queued work at quit."""
import threading

from imagegallery.workers import PriorityWorkerPool


def test_jobs_run_in_priority_order_and_cancelled_ones_never_run(qtbot):
    pool = PriorityWorkerPool(1, "test")
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
    pool.close()


def test_wait_until_idle_returns_once_queued_work_is_done():
    pool = PriorityWorkerPool(1, "test")
    gate = threading.Event()
    written = []
    pool.submit(0, "slow", gate.wait, 5)
    for number in range(20):
        pool.submit(1, number, written.append, number)
    assert not pool.wait_until_idle(0.05)  # the gate still holds the thread
    gate.set()
    assert pool.wait_until_idle(5)
    assert written == list(range(20))
    pool.close()
