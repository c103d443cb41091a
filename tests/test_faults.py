"""Broken and hostile servers: every fault ends in the exact reason on its tile, bounded in time and
memory, and the good images around it still load. Over both network transports: Qt's (http) and
libcurl (what https uses where Qt has no TLS), since a tile's reason must not depend on which.

Timeouts are shortened through LoadLimits so each case takes a few seconds at most; the logic under
test is the same as with the defaults.
"""
import time
from dataclasses import replace

import pytest

from fault_server import FaultServer, gzip_bomb
from imagegallery.limits import LoadLimits
from imagegallery.model import ImageGalleryModel
from imagegallery.remedy import Remedy
from imagegallery.transport import base
from imagegallery.transport.qt import qt_has_tls
from imaging import solid_image_bytes
from process_memory import status_bytes

Status = ImageGalleryModel.Status

FAST = LoadLimits(connect_timeout_s=1.0, idle_timeout_s=1.0, slow_window_s=1.5,
                  min_bytes_per_second=1024, retry_base_delay_s=0.05, retry_max_delay_s=3.0,
                  max_retries=1)


@pytest.fixture(scope="module")
def bomb():
    return gzip_bomb()


@pytest.fixture
def faults(bomb):
    server = FaultServer()
    server._gzip_bomb = bomb  # made once per module: compressing 256 MB of zeros takes a second
    yield server
    server.stop()


@pytest.fixture(params=["qt", "curl"])
def model(qtbot, request):
    gallery = ImageGalleryModel()
    gallery.transport = request.param
    gallery.set_limits(FAST)
    yield gallery
    gallery.loader.close()


def good_urls(server, count=3):
    colors = ["#ff0000", "#00ff00", "#0000ff", "#ffffff"]
    return [server.add_image(f"good{i}.png", solid_image_bytes(colors[i])) for i in range(count)]


def load_with_good_neighbours(qtbot, model, server, fault_path, timeout_ms=15000):
    """Load [good, fault, good, good]; return (fault row's status, reason, seconds taken)."""
    goods = good_urls(server)
    urls = [goods[0], server.url(fault_path), goods[1], goods[2]]
    started = time.monotonic()
    with qtbot.waitSignal(model.finished, timeout=timeout_ms):
        model.urls = urls
    elapsed = time.monotonic() - started
    for row in (0, 2, 3):
        assert model.status_of(row) == Status.Ready, model.get(row)
    assert model.loadedCount + model.failedCount + model.pendingCount == model.count
    return model.status_of(1), model.get(1)["errorString"], elapsed


# path, exact reason (or prefix ending in "..."), requests the server should see, and whether
# the row offers a manual retry (`retryable`: false where this client's own limits or rules
# decided, so asking again gets the same answer)
CASES = [
    ("/status404", "HTTP 404 Not Found", 1, True),  # permanent: never retried by itself
    ("/html", "not an image (a web page)", 1, True),
    # Read as Latin-1 by both transports: "Nicht gefunden â\x80\x93 gelÃ¶scht".
    ("/utf8-reason", "HTTP 404 Nicht gefunden \u2013 gelöscht", 1, True),
    # Bounded by max_redirects, not Qt's 50; Qt resends a hop that met a keep-alive connection
    # the server was closing, so a hop may count twice (seen: 8 hits for 5 redirects, in CI).
    ("/loop", base.TOO_MANY_REDIRECTS_MESSAGE, (FAST.max_redirects + 1, 2 * (FAST.max_redirects + 1)),
     True),
    # Browsers accept a Location sent twice; libcurl was sent to both joined by ", ". Qt may
    # send the redirect again, as for /loop.
    ("/twice-located", "", (1, 2), None),
    # Qt joined them and refused "gzip, identity"; libcurl kept the last and decoded gzip.
    ("/two-encodings", "", 1, None),
    # Not "redirect to http: refused" (Qt) or "redirect to : refused" (libcurl).
    ("/bad-location", base.INVALID_REDIRECT_MESSAGE, 1, True),
    ("/huge", "too large (10 GB, limit 50 MB)", 1, False),
    ("/gzip-bomb", "too large after decompression (over 50 MB)", 1, False),
    # Refused once past the cap while it streams: Qt stopped reading at exactly the cap once.
    ("/endless-chunked", "too large (over 50 MB)", 1, False),
    # Transient: retried, and the reason counts the attempts.
    ("/silent", f"timed out after 1 s (no response), after {1 + FAST.max_retries} attempts",
     1 + FAST.max_retries, True),
    ("/drip", "timed out: too slow ...", 1 + FAST.max_retries, True),
    ("/reset", f"connection closed by server, after {1 + FAST.max_retries} attempts",
     1 + FAST.max_retries, True),
    # libcurl read it as an empty answer: "empty response (0 bytes)", not retried. Qt itself
    # sends a request again, up to three times, when its connection closes before an answer.
    ("/cut-headers", f"connection closed by server, after {1 + FAST.max_retries} attempts",
     (1 + FAST.max_retries, 4 * (1 + FAST.max_retries)), True),
    # An error status says more than its page's size: Qt called it "too large", never retried.
    ("/busy-with-long-page", f"HTTP 503 Service Unavailable, after {1 + FAST.max_retries} attempts",
     1 + FAST.max_retries, True),
]


@pytest.mark.parametrize("path,reason,requests,retryable", CASES,
                         ids=[c[0].strip("/") for c in CASES])
def test_fault_gives_its_reason_and_spares_the_rest(qtbot, model, faults, path, reason, requests,
                                                    retryable):
    if path == "/gzip-bomb":
        # The high-water mark is the whole process's so far; start it afresh (Linux: "5" resets it).
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    hwm_before = status_bytes("VmHWM")
    status, shown, _ = load_with_good_neighbours(qtbot, model, faults, path)
    if not reason:  # a fault the transports read past
        assert (status, shown) == (Status.Ready, "")
    else:
        assert status == Status.Error
        if reason.endswith("..."):
            assert shown.startswith(reason[:-3]), shown
        else:
            assert shown == reason
        assert model.get(1)["retryable"] is retryable
    if isinstance(requests, tuple):
        assert requests[0] <= faults.hits[path] <= requests[1]
    else:
        assert faults.hits[path] == requests
    if path == "/huge":
        # Refused from Content-Length when the headers arrived (the reason says so), not after
        # reading the body up to the cap.
        assert faults.sent[path] < FAST.max_response_bytes
    if path == "/gzip-bomb":
        # Inflating stops at the byte cap: the high-water mark grows by far less than the bomb.
        assert status_bytes("VmHWM") - hwm_before < 160 * 1024 * 1024


def test_500_then_success_is_retried(qtbot, model, faults):
    status, shown, _ = load_with_good_neighbours(qtbot, model, faults, "/flaky500")
    assert (status, shown) == (Status.Ready, "")
    assert faults.hits["/flaky500"] == 2
    assert model.loader.stats["retries"] >= 1


def test_503_retry_after_is_honoured(qtbot, model, faults):
    status, shown, _ = load_with_good_neighbours(qtbot, model, faults, "/retry-after")
    assert (status, shown) == (Status.Ready, "")
    first, second = faults.hit_times["/retry-after"]
    # The backoff alone would be about 50 ms; the server asked for one second.
    assert second - first >= 0.95


def test_transient_failures_give_up_after_the_retry_budget(qtbot, model, faults):
    model.set_limits(FAST.__class__(**{**FAST.__dict__, "max_retries": 3}))
    status, shown, _ = load_with_good_neighbours(qtbot, model, faults, "/reset")
    assert status == Status.Error and shown.endswith(", after 4 attempts"), shown
    assert faults.hits["/reset"] == 4


def test_redirects_within_the_limit_are_followed(qtbot, model, faults):
    status, shown, _ = load_with_good_neighbours(qtbot, model, faults,
                                                 f"/hop/{FAST.max_redirects}")
    assert (status, shown) == (Status.Ready, "")


def test_qt_maps_an_insecure_redirect_to_the_shared_reason_and_never_retries_it():
    # Qt here has no TLS (it cannot load OpenSSL 3), so no https server is reachable through it;
    # the curl transport's TLS tests cover a real downgrade. This pins Qt's side of the mapping.
    from imagegallery.transport import qt

    assert base.INSECURE_REDIRECT_MESSAGE == "redirect from https to http refused"
    assert qt._ERROR_KINDS[qt.QNetworkReply.InsecureRedirectError] == (
        base.ErrorKind.REDIRECT, base.INSECURE_REDIRECT_MESSAGE)
    refused = base.TransferError(base.ErrorKind.REDIRECT, base.INSECURE_REDIRECT_MESSAGE)
    assert not refused.transient and refused.remedy is Remedy.NONE


def test_retry_on_demand_after_a_failure(qtbot, model, faults):
    status, _, _ = load_with_good_neighbours(qtbot, model, faults, "/status404")
    assert status == Status.Error
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.retry(1)
    assert model.status_of(1) == Status.Error
    assert faults.hits["/status404"] == 2


def test_a_content_length_past_64_bits_is_read_as_no_length(qtbot, model, faults):
    # libcurl passes it on; its count could not be signalled, and the transfer failed as
    # "Failure writing output to destination", three times.
    status, reason, _ = load_with_good_neighbours(qtbot, model, faults, "/overlong-length")
    assert (status, reason) == (Status.Ready, "")
    # Once. Through Qt, twice was seen once in a full CI run on a busy machine, the row loaded;
    # the cause is not known: Qt sends a request again that met a connection the server was
    # closing, or FAST's one retry after its 1 s timeout. The failure this guards against
    # failed the row.
    assert faults.hits["/overlong-length"] in ((1, 2) if model.transport == "qt" else (1,))


@pytest.mark.parametrize("transport,expected", [
    ("auto", (Status.Ready, "")),  # Qt's attempt, then libcurl's
    ("curl", (Status.Ready, "")),
    ("qt", (Status.Error, "HTTP 103 interim response, which Qt cannot read past "
                          "(IMAGEGALLERY_TRANSPORT=qt?)")),
])
def test_an_early_hints_answer_is_read_past(qtbot, faults, transport, expected):
    gallery = ImageGalleryModel()
    gallery.transport = transport
    gallery.set_limits(FAST)
    try:
        status, reason, _ = load_with_good_neighbours(qtbot, gallery, faults, "/early-hints")
    finally:
        gallery.loader.close()
    assert (status, reason) == expected
    assert faults.hits["/early-hints"] == (2 if transport == "auto" else 1)


def test_a_redirect_whose_body_never_ends_is_cut_at_the_byte_cap_over_libcurl(qtbot, faults):
    # libcurl drops a redirect's body; it was read at full speed, uncounted, until the
    # loader's timeout, then again on each retry.
    gallery = ImageGalleryModel()
    gallery.transport = "curl"
    gallery.set_limits(replace(FAST, max_response_bytes=1024 * 1024))
    try:
        status, reason, _ = load_with_good_neighbours(qtbot, gallery, faults, "/redirect-endless")
    finally:
        gallery.loader.close()
    assert (status, reason) == (Status.Error, "redirect too large (over 1 MB)")
    assert faults.hits["/redirect-endless"] == 1
    assert faults.sent["/redirect-endless"] < 16 * 1024 * 1024


@pytest.mark.skipif(qt_has_tls(), reason="this Qt follows a redirect to https itself")
def test_a_redirect_to_https_over_qt_alone_fails_at_once_with_the_reason(qtbot, faults):
    gallery = ImageGalleryModel()
    gallery.transport = "qt"  # the user's choice: no libcurl to hand the URL to
    gallery.set_limits(FAST)
    try:
        status, reason, _ = load_with_good_neighbours(qtbot, gallery, faults, "/to-https")
    finally:
        gallery.loader.close()
    assert status == Status.Error
    assert reason.startswith("redirected to https://") and reason.endswith(
        ", and this transport has no TLS (IMAGEGALLERY_TRANSPORT=qt?)"), reason
    assert faults.hits["/to-https"] == 1  # was 2: asked again of the same transport first


@pytest.mark.parametrize("transport", ["auto", "qt"])
def test_a_late_answer_after_early_hints_never_lands_on_another_url(qtbot, faults, transport):
    # Qt took the 103 for the whole answer and sent the next request on the same connection,
    # which then read the 103's late 200: a blue URL showed red, and was cached so. With Qt
    # alone the 103's own row fails, and the others must still be right.
    from imaging import center_color, close_to

    colors = {"red": "#ff0000", "green": "#00ff00", "blue": "#0000ff", "white": "#ffffff"}
    for name, color in colors.items():
        faults.add_image(name, solid_image_bytes(color))
    urls = [faults.url("/early-hints-slow/red")] + [faults.url(f"/img/{name}")
                                                    for name in ("green", "blue", "white")]
    gallery = ImageGalleryModel()
    gallery.transport = transport  # auto: http through Qt, the 103's URL then through libcurl
    gallery.set_limits(FAST)
    gallery.maxConnectionsPerHost = 1  # every request on the one connection, in turn
    try:
        with qtbot.waitSignal(gallery.finished, timeout=15000):
            gallery.urls = urls
        first = 0 if transport == "auto" else 1
        if first:
            assert gallery.get(0)["errorString"] == (
                "HTTP 103 interim response, which Qt cannot read past (IMAGEGALLERY_TRANSPORT=qt?)")
        shown = [center_color(gallery.thumbnail(row)) for row in range(first, len(urls))]
    finally:
        gallery.loader.close()
    expected = ["#ff0000", "#00ff00", "#0000ff", "#ffffff"][first:]
    assert all(close_to(color, want) for color, want in zip(shown, expected)), [c.name() for c in shown]


@pytest.fixture
def qt_transport(faults):
    """A Qt transport on its own and its results by request id, closed at teardown; `faults`
    serves /img/red and /img/blue."""
    from imagegallery.transport.qt import QtTransport

    faults.add_image("red", solid_image_bytes("#ff0000"))
    faults.add_image("blue", solid_image_bytes("#0000ff"))
    transport = QtTransport()
    results = {}
    transport.finished.connect(lambda result: results.setdefault(result.request_id, result))
    yield transport, results
    transport.close()


def test_a_transfer_started_after_an_early_hints_answer_is_dropped_gets_its_own_picture(
        qtbot, faults, qt_transport, monkeypatch):
    # The loader never sees a 1xx whose transfer is aborted while it waits for its turn (its
    # row scrolled away): the Qt transport retires the connections at Qt's finished itself.
    from imagegallery.transport.base import TransferRequest
    from imaging import center_color, close_to

    monkeypatch.setattr(base, "FINISHED_RESULTS_BUDGET_S", 0.0)  # every result waits a turn
    transport, results = qt_transport
    transport.start(TransferRequest(1, faults.url("/early-hints-slow/red"), 10_000_000, 5))

    def abort_it_and_ask_for_blue():  # runs after the transport's own finished slot
        transport.abort(1)
        transport.start(TransferRequest(2, faults.url("/img/blue"), 10_000_000, 5))

    transport._transfers[1].reply.finished.connect(abort_it_and_ask_for_blue)
    qtbot.waitUntil(lambda: 2 in results, timeout=5000)
    assert 1 not in results and results[2].ok, results
    from PyQt5.QtGui import QImage
    assert close_to(center_color(QImage.fromData(bytes(results[2].body))), "#0000ff")


def test_a_rerouted_transfer_survives_its_transports_being_replaced(qtbot, faults):
    # The job held the libcurl transport it was rerouted to; replaced (a new connection cap),
    # that transport was closed, and starting the job again on it aborted the app.
    faults.add_image("red", solid_image_bytes("#ff0000"))
    gallery = ImageGalleryModel()
    gallery.set_limits(FAST)
    try:
        gallery.urls = [faults.url("/early-hints-slow/red")]
        qtbot.waitUntil(lambda: faults.hits["/early-hints-slow/red"] == 2, timeout=5000)
        with qtbot.waitSignal(gallery.finished, timeout=15000):
            gallery.maxConnectionsPerHost = 3  # while libcurl waits for the late answer
        assert gallery.status_of(0) == Status.Ready, gallery.get(0)
    finally:
        gallery.loader.close()


def _blue_or_not_answered(result):
    from PyQt5.QtGui import QImage

    from imaging import center_color, close_to

    if not result.ok:
        return result.error.kind is base.ErrorKind.NOT_ANSWERED
    return close_to(center_color(QImage.fromData(bytes(result.body))), "#0000ff")


def test_a_transfer_redirected_into_an_origin_that_owes_an_answer_never_reads_it(
        qtbot, faults, qt_transport):
    # It was at another host when the 1xx came, then redirected onto the connection that owed
    # the late answer, and read it: blue asked for, red shown.
    from imagegallery.transport.base import TransferRequest

    transport, results = qt_transport
    other_host = FaultServer()
    other_host.late_redirect_target = faults.url("/img/blue")
    try:
        transport.start(TransferRequest(1, faults.url("/early-hints-slow/red"), 10_000_000, 5))
        transport.start(TransferRequest(2, other_host.url("/late-redirect"), 10_000_000, 5))
        qtbot.waitUntil(lambda: {1, 2} <= set(results), timeout=5000)
    finally:
        other_host.stop()
    assert _blue_or_not_answered(results[2]), results[2]


def test_an_interim_answer_aborted_before_qt_reports_it_still_retires_its_connections(
        qtbot, faults, qt_transport):
    import time

    from imagegallery.transport.base import TransferRequest

    transport, results = qt_transport
    transport.start(TransferRequest(1, faults.url("/early-hints-slow/red"), 10_000_000, 5))
    # One long GUI turn, which handles no event: Qt's own thread sends the request, reads
    # the 103 and finishes the reply meanwhile, and the news waits in the GUI thread's
    # queue. (qtbot.waitUntil would hand the news over.) Bounded, never a hang.
    deadline = time.monotonic() + 5
    while faults.hits["/early-hints-slow/red"] == 0 and time.monotonic() < deadline:
        pass
    busy_until = time.monotonic() + 0.15  # the 103 reaches Qt's thread
    while time.monotonic() < busy_until:
        pass
    transport.abort(1)  # the row scrolled away in that turn
    transport.start(TransferRequest(2, faults.url("/img/blue"), 10_000_000, 5))
    qtbot.waitUntil(lambda: 2 in results, timeout=5000)
    assert 1 not in results and _blue_or_not_answered(results[2]), results
