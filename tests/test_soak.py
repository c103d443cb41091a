"""A soak: 2,000 URLs, good and bad, the list replaced 20 times (often mid-flight).

Afterwards nothing outlives its row (loader jobs, transfers, QNetworkReplys, worker jobs), memory
stops growing after the first round, and late results never land on another row.
"""
import gc
import threading
import time

import pytest
from PyQt5.QtNetwork import QNetworkReply

from imagegallery.limits import LoadLimits
from imagegallery.model import ImageGalleryModel
from imagegallery.sandbox_decode import SandboxDecoder
from imaging import center_color, close_to, solid_image_bytes
from process_memory import status_bytes

Status = ImageGalleryModel.Status
URLS_PER_ROUND = 2000
ROUNDS = 20


def live_replies(loader) -> int:
    replies = 0
    for transport in loader._transports.active():
        for manager in getattr(transport, "_managers", ()):
            replies += len(manager.findChildren(QNetworkReply))
    return replies


def drained(loader) -> bool:
    return (loader.active_jobs() == 0 and loader.transport_transfers() == 0
            and loader.pending_worker_jobs() == 0 and loader.started_transfers() == 0
            and live_replies(loader) == 0)


@pytest.fixture
def model(qtbot):
    gallery = ImageGalleryModel()
    # Time-outs short enough that a stray stalled request cannot stretch the soak.
    gallery.set_limits(LoadLimits(connect_timeout_s=3, idle_timeout_s=3, retry_base_delay_s=0.05,
                                  max_retries=1))
    yield gallery
    gallery.loader.close()


def round_urls(server, round_number):
    """Each round shares half its URLs with the one before, so kept rows and new rows mix."""
    urls = []
    for index in range(URLS_PER_ROUND):
        key = (index + round_number * URLS_PER_ROUND // 2) % (URLS_PER_ROUND * 3)
        kind = key % 10
        if kind == 7:
            urls.append(server.url(f"/missing/{key}.png"))  # 404
        elif kind == 8:
            urls.append(server.url("/page.html") + f"?{key}")  # not an image
        elif kind == 9:
            urls.append(f"javascript:void({key})")  # refused before any request
        else:
            urls.append(server.url(f"/img/{key % 40}.png") + f"?{key}")
    return urls


@pytest.mark.slow
def test_soak_replacing_the_list_leaks_nothing(qtbot, model, image_server):
    colors = [f"#{(i * 2654435761) % 0xffffff:06x}" for i in range(40)]
    for index, color in enumerate(colors):
        image_server.add(f"/img/{index}.png", solid_image_bytes(color, 48, 32))
    image_server.add("/page.html", b"<!doctype html><p>hi</p>", "text/html")
    # Caches grow to their byte budgets by design (128 MB of thumbnails by default); small
    # budgets that the first round already fills make any further growth a leak.
    thumbnails, encoded = model.loader.thumbnails, model.loader.encoded
    budgets = thumbnails.budget_bytes, encoded.budget_bytes
    thumbnails.set_budget(2 * 1024 * 1024)
    encoded.set_budget(256 * 1024)
    try:
        soak(qtbot, model, image_server, colors)
    finally:
        thumbnails.set_budget(budgets[0])
        encoded.set_budget(budgets[1])


def soak(qtbot, model, image_server, colors):
    started = time.monotonic()

    with qtbot.waitSignal(model.finished, timeout=60000):
        model.urls = round_urls(image_server, 0)
    assert model.pendingCount == 0
    image_server.request_headers.clear()
    gc.collect()
    baseline = status_bytes("VmRSS")

    for round_number in range(1, ROUNDS):
        # The test server keeps every request's headers; that is the harness's memory, not ours.
        image_server.request_headers.clear()
        model.urls = round_urls(image_server, round_number)
        assert model.loadedCount + model.failedCount + model.pendingCount == model.count
        if round_number % 4 == 0:
            qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=60000)
        else:
            # Replace mid-flight: transfers and decodes in progress must be dropped cleanly.
            progress = model.loadedCount + model.failedCount
            qtbot.waitUntil(lambda: model.loadedCount + model.failedCount > progress + 50,
                            timeout=30000)
    qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=60000)
    # Drained includes the disk thread's queue, 1,400-2,400 thumbnails still to write when the
    # last row settled, on a nice-10 thread: beside four busy processes on two cores they took
    # 34 s, and once more than 10 s (the wait before).
    qtbot.waitUntil(lambda: drained(model.loader), timeout=120000)

    expected = round_urls(image_server, ROUNDS - 1)
    assert model.urls == expected
    checked = 0
    for row in range(URLS_PER_ROUND):  # each row shows its own URL's outcome
        url = expected[row]
        status = model.status_of(row)
        if "/img/" in url:
            assert status == Status.Ready, (url, model.get(row))
            thumbnail = model.thumbnail(row)  # None once evicted from the small cache
            if thumbnail is not None:
                index = int(url.split("/img/")[1].split(".")[0])
                assert close_to(center_color(thumbnail), colors[index]), url
                checked += 1
        else:
            assert status == Status.Error and model.get(row)["errorString"], url
    assert checked > 100
    image_server.request_headers.clear()
    gc.collect()
    growth = (status_bytes("VmRSS") - baseline) / baseline
    elapsed = time.monotonic() - started
    print(f"soak: baseline RSS {baseline / 2**20:.0f} MB, growth {growth:.1%}, {elapsed:.1f} s")
    assert growth < 0.10, f"RSS grew {growth:.1%} after the first round"


def test_a_late_result_never_touches_another_row(qtbot, model, image_server):
    release = threading.Event()

    def stalled(handler):
        release.wait(10)
        body = solid_image_bytes("#ff0000")
        try:
            handler._send(200, body, "image/png")
        except OSError:
            pass  # the client gave up on it, as it should

    slow = image_server.add_handler("/slow.png", stalled)
    green = image_server.add("/green.png", solid_image_bytes("#00ff00"))
    blue = image_server.add("/blue.png", solid_image_bytes("#0000ff"))
    model.urls = [slow, green]
    qtbot.waitUntil(lambda: image_server.hits["/slow.png"] == 1, timeout=5000)
    changes = []
    model.dataChanged.connect(lambda first, last, roles: changes.extend(
        (row, model.status_of(row)) for row in range(first.row(), last.row() + 1)))
    # The slow row goes away (the green one moves up) while its transfer is in flight.
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [green, blue]
    release.set()
    qtbot.waitUntil(lambda: drained(model.loader), timeout=10000)
    assert [model.status_of(r) for r in range(2)] == [Status.Ready, Status.Ready]
    assert close_to(center_color(model.thumbnail(0)), "#00ff00")
    assert close_to(center_color(model.thumbnail(1)), "#0000ff")
    assert all(status != Status.Error for _, status in changes)


def test_a_late_decode_never_touches_another_row(qtbot, monkeypatch, image_server):
    # A decode that runs on after its row is gone: the sandbox child hangs until its time limit.
    monkeypatch.setenv("IMAGEGALLERY_SANDBOX_TEST_FAULTS", "1")
    from imagegallery import sandbox_decode

    monkeypatch.setattr(sandbox_decode, "_shared", SandboxDecoder(processes=1))
    model = ImageGalleryModel()
    model.set_limits(LoadLimits(decode_timeout_s=1.0))
    try:
        hang = image_server.add("/hang.tif", b"IMAGEGALLERY-TEST-HANG", "image/tiff")
        green = image_server.add("/green.png", solid_image_bytes("#00ff00"))
        model.urls = [hang]
        qtbot.waitUntil(lambda: sandbox_decode._shared.spawned == 1 and
                        model.loader.pending_worker_jobs() == 1, timeout=10000)
        with qtbot.waitSignal(model.finished, timeout=10000):
            model.urls = [green]
        qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=10000)
        assert sandbox_decode._shared.timeouts == 1  # the decode did finish, late
        qtbot.waitUntil(lambda: drained(model.loader), timeout=5000)
        assert model.count == 1 and model.status_of(0) == Status.Ready
        assert model.get(0)["errorString"] == ""
        assert close_to(center_color(model.thumbnail(0)), "#00ff00")
    finally:
        model.loader.close()
        sandbox_decode._shared.close()


def test_decoders_stuck_in_the_sandbox_hold_back_no_other_thumbnail(qtbot, monkeypatch,
                                                                  image_server):
    """On one decode thread (one core), two files whose sandboxed decodes hang, one in each
    child, while the in-process formats load: every one of those is Ready long before the
    hanging decodes' limit."""
    monkeypatch.setenv("IMAGEGALLERY_SANDBOX_TEST_FAULTS", "1")
    from imagegallery import loader as loader_module
    from imagegallery import sandbox_decode

    monkeypatch.setattr(loader_module, "default_decode_threads", lambda: 1)
    monkeypatch.setattr(sandbox_decode, "_shared", SandboxDecoder(processes=2))
    model = ImageGalleryModel()
    model.set_limits(LoadLimits(decode_timeout_s=60.0))  # far past the test's own timeouts
    try:
        assert len(model.loader._decoder._threads) == 1
        hanging = [image_server.add(f"/hang{i}.tif", b"IMAGEGALLERY-TEST-HANG", "image/tiff")
                   for i in range(2)]
        colors = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]
        shown = [image_server.add(f"/{i}.png", solid_image_bytes(color), "image/png")
                 for i, color in enumerate(colors)]
        model.urls = hanging + shown
        qtbot.waitUntil(lambda: sandbox_decode._shared.spawned == 2 and all(
            model.status_of(row) == Status.Ready for row in range(2, 6)), timeout=10000)
        assert [model.status_of(row) for row in range(2)] == [Status.Loading] * 2
        for row, color in enumerate(colors, start=2):
            assert close_to(center_color(model.thumbnail(row)), color)
    finally:
        model.loader.close()
        sandbox_decode._shared.close()
