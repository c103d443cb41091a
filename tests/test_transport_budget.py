"""Both network transports hand finished transfers over within a GUI-thread budget per turn."""
import time

import pytest
from PyQt5.QtCore import QTimer

from imagegallery.transport import base
from imagegallery.transport.base import TransferRequest, TransportOptions
from imagegallery.transport.curl import CurlTransport
from imagegallery.transport.qt import QtTransport
from imaging import solid_image_bytes


@pytest.fixture(params=[QtTransport, CurlTransport], ids=["qt", "curl"])
def make_transport(request):
    made = []

    def make(**options):
        transport = request.param(TransportOptions(**options))
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def turns():
    """A count of event-loop turns: a zero-interval timer runs once in each."""
    count = [0]
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: count.__setitem__(0, count[0] + 1))
    ticker.start()
    yield lambda: count[0]
    ticker.stop()


def test_items_within_the_budget_are_handed_over_at_once(qtbot):
    handed = []
    budget = base.TurnBudget(handed.append)
    for item in range(5):
        budget.offer(item)
    assert handed == [0, 1, 2, 3, 4]


def test_items_over_the_budget_wait_and_go_one_a_turn_oldest_first(qtbot, turns):
    handed = []

    def slow_hand_over(item):
        handed.append((item, turns()))
        spin_until = time.perf_counter() + 2 * base.FINISHED_RESULTS_BUDGET_S
        while time.perf_counter() < spin_until:  # a hand-over over the whole budget
            pass

    budget = base.TurnBudget(slow_hand_over)
    for item in range(4):
        budget.offer(item)
    assert [item for item, _ in handed] == [0]  # the first spent this turn's budget
    qtbot.waitUntil(lambda: len(handed) == 4, timeout=5000)
    assert [item for item, _ in handed] == [0, 1, 2, 3]
    seen = [turn for _, turn in handed]
    assert all(earlier < later for earlier, later in zip(seen, seen[1:])), seen


def test_an_item_cleared_while_it_waits_is_never_handed_over(qtbot, turns, monkeypatch):
    monkeypatch.setattr(base, "FINISHED_RESULTS_BUDGET_S", 0.0)
    handed = []
    budget = base.TurnBudget(handed.append)
    budget.offer("waiting")
    assert handed == []  # a zero budget: even the first waits for the next turn
    budget.clear()
    budget.offer("later")
    qtbot.waitUntil(lambda: handed == ["later"], timeout=5000)


def start_all(transport, urls):
    for request_id, url in enumerate(urls, 1):
        transport.start(TransferRequest(request_id, url, 10_000_000, 5))


def test_results_over_the_turn_budget_wait_for_the_next_turn_and_all_arrive(
        qtbot, image_server, make_transport, monkeypatch):
    # With a zero budget every result takes the waiting path, one handed over a turn.
    monkeypatch.setattr(base, "FINISHED_RESULTS_BUDGET_S", 0.0)
    bodies = [solid_image_bytes(color) for color in ("#ff0000", "#00ff00", "#0000ff")] * 4
    urls = [image_server.add(f"/{i}.png", body) for i, body in enumerate(bodies)]
    transport = make_transport(max_connections_per_host=12)
    results = {}
    transport.finished.connect(lambda result: results.setdefault(result.request_id, result))
    start_all(transport, urls)
    qtbot.waitUntil(lambda: len(results) == len(urls), timeout=10000)
    assert [results[i].ok for i in range(1, 13)] == [True] * 12
    assert [bytes(results[i].body) for i in range(1, 13)] == bodies
    assert transport.in_flight() == 0


def test_a_result_aborted_while_it_waits_is_never_handed_over(qtbot, image_server, make_transport,
                                                               monkeypatch):
    monkeypatch.setattr(base, "FINISHED_RESULTS_BUDGET_S", 0.0)
    image_server.latency = 0.05  # all twelve finish within a few turns of each other
    urls = [image_server.add(f"/{i}.png", solid_image_bytes("#808080")) for i in range(12)]
    transport = make_transport(max_connections_per_host=12)
    delivered = []

    def on_finished(result):
        delivered.append(result.request_id)
        if len(delivered) == 1:
            for request_id in range(1, 13):  # the rest, waiting or still running
                if request_id != result.request_id:
                    transport.abort(request_id)

    transport.finished.connect(on_finished)
    start_all(transport, urls)
    qtbot.waitUntil(lambda: len(delivered) == 1, timeout=10000)
    assert transport.in_flight() == 0
    # Transfers that finished together with the first were waiting for a turn when aborted. Turns
    # go in order, so once a later transfer is handed over, theirs have come and gone.
    transport.start(TransferRequest(13, urls[0], 10_000_000, 5))
    qtbot.waitUntil(lambda: len(delivered) == 2, timeout=10000)
    assert delivered[1] == 13


def test_a_transfer_aborted_as_its_response_starts_is_never_reported(qtbot, image_server,
                                                                     make_transport):
    # Over Qt a body past the cap was then failed as well: a `finished` after `abort`, and its
    # manager's count of transfers went below zero.
    large = image_server.add("/large.png", bytes(4096))
    small = image_server.add("/small.png", solid_image_bytes("#ff0000"))
    transport = make_transport()
    finished = []
    transport.finished.connect(lambda result: finished.append(result.request_id))
    transport.responseStarted.connect(
        lambda request_id, status, total: request_id == 1 and transport.abort(1))
    transport.start(TransferRequest(1, large, 1024, 5))
    qtbot.waitUntil(lambda: transport.in_flight() == 0, timeout=5000)
    transport.start(TransferRequest(2, small, 10_000_000, 5))
    qtbot.waitUntil(lambda: bool(finished), timeout=5000)
    assert finished == [2] and transport.in_flight() == 0
