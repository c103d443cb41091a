"""ImageGalleryModel against the tests' own HTTP server: statuses, pixels, counts, list edits."""
import socket
import threading

import pytest
from PyQt5.QtCore import QSize

from fault_server import FaultServer
from imagegallery.model import ImageGalleryModel
from imagegallery.remedy import Remedy
from imaging import center_color, close_to, serve_solid_images, solid_image_bytes

Status = ImageGalleryModel.Status
COLORS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff", "#ff00ff"]


def serve_colors(server, colors=COLORS, fmt="PNG"):
    return serve_solid_images(server, colors, fmt=fmt)


def test_every_image_loads_with_the_right_pixels_and_size(qtbot, model, image_server):
    urls = serve_colors(image_server)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    assert model.loadedCount == len(urls) and model.failedCount == 0 and model.pendingCount == 0
    for row, color in enumerate(COLORS):
        assert model.status_of(row) == Status.Ready
        image = model.thumbnail(row)
        # 320x200 fitted into 240x140 keeps the aspect: 224x140.
        assert (image.width(), image.height()) == (224, 140)
        assert close_to(center_color(image), color)
        index = model.index(row)
        assert model.data(index, ImageGalleryModel.ImageSizeRole) == QSize(320, 200)
        assert model.data(index, ImageGalleryModel.SourceRole).startswith("image://imagegallery-memory/")
    assert model.progress == 1.0


def test_status_moves_from_null_through_loading_to_ready(qtbot, model, image_server):
    url = serve_colors(image_server, ["#123456"])[0]
    seen = []
    model.dataChanged.connect(lambda first, last, roles: seen.append(model.status_of(0)))
    model.rowsInserted.connect(lambda *args: seen.append(model.status_of(0)))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    assert seen[0] in (Status.Null, Status.Loading)
    assert Status.Loading in seen and seen[-1] == Status.Ready


def test_errors_carry_a_reason(qtbot, model, image_server):
    image_server.add("/page.html", b"<html><body>hi</body></html>", "text/html")
    urls = [image_server.url("/missing.png"), image_server.url("/page.html"), "not a url", "ftp://x/y"]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    reasons = [model.data(model.index(r), ImageGalleryModel.ErrorStringRole) for r in range(4)]
    assert [model.status_of(r) for r in range(4)] == [Status.Error] * 4
    assert reasons[0] == "HTTP 404 Not Found"
    assert reasons[1].startswith("not an image")
    assert "malformed" in reasons[2] or "scheme" in reasons[2]
    assert reasons[3] == "unsupported URL scheme 'ftp:'"
    assert model.failedCount == 4 and model.loadedCount + model.failedCount == model.count


def test_a_urls_state_reads_as_loaded_pending_or_failed(qtbot, model, image_server):
    released = threading.Event()

    def held(handler):
        released.wait(10)
        handler._send(200, solid_image_bytes("#00ff00"), "image/png")

    shown = serve_colors(image_server, ["#ff0000"])[0]
    late = image_server.add_handler("/late.png", held)
    missing = image_server.url("/missing.png")
    model.urls = [shown, late, missing, late]
    qtbot.waitUntil(lambda: model.loadedCount == 1 and model.failedCount == 1, timeout=10000)
    states = {url: (model.loaded(url), model.pending(url), model.failed(url))
              for url in (shown, late, missing, image_server.url("/never-listed.png"))}
    assert list(states.values()) == [(True, False, False), (False, True, False),
                                     (False, False, True), (False, False, False)]
    with qtbot.waitSignal(model.finished, timeout=10000):
        released.set()
    assert (model.loaded(late), model.pending(late), model.failed(late)) == (True, False, False)


def test_changed_list_keeps_unchanged_rows_without_new_requests(qtbot, model, image_server):
    urls = serve_colors(image_server)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls[:4]
    hits_before = image_server.total_hits()
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls[1:6]
    assert model.count == 5
    assert all(model.status_of(r) == Status.Ready for r in range(5))
    # Only the two new URLs went to the server.
    assert image_server.total_hits() - hits_before == 2
    assert image_server.hits["/1.png"] == 1


def test_duplicate_urls_are_downloaded_once(qtbot, model, image_server):
    url = serve_colors(image_server, ["#00ff00"])[0]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url] * 5
    assert image_server.hits["/0.png"] == 1
    assert model.loadedCount == 5


def test_thumbnail_size_change_redecodes_without_downloading(qtbot, model, image_server):
    urls = serve_colors(image_server, ["#ff0000", "#0000ff"])
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    hits = image_server.total_hits()
    model.thumbnailSize = QSize(100, 100)
    qtbot.waitUntil(lambda: model.thumbnail(0) is not None and model.thumbnail(1) is not None,
                    timeout=10000)
    assert model.thumbnail(0).width() == 100 and model.thumbnail(0).height() in (62, 63)
    assert image_server.total_hits() == hits
    # The new size goes to the disk cache too, once the loader is idle.
    loader = model.loader
    qtbot.waitUntil(lambda: loader.pending_worker_jobs() == 0, timeout=10000)
    for url, color in zip(urls, ["#ff0000", "#0000ff"]):
        stored = loader.disk.load(loader.key_for(url))
        assert stored is not None and stored.image.width() == 100
        assert close_to(center_color(stored.image), color)
    model.fillMode = ImageGalleryModel.FillMode.PreserveAspectCrop
    qtbot.waitUntil(lambda: model.thumbnail(0) is not None, timeout=10000)
    assert (model.thumbnail(0).width(), model.thumbnail(0).height()) == (100, 100)
    assert image_server.total_hits() == hits


def test_a_redecode_for_a_new_size_keeps_what_the_response_said(qtbot, model, image_server):
    """The body kept for re-decoding is kept with its headers: a gzip-encoded PNG is inflated
    again (it was taken for compressed SVG and refused), and the ETag stays with the thumbnail
    (a revalidation later asked with none and downloaded the image whole)."""
    import gzip

    url = image_server.add("/zipped.png", gzip.compress(solid_image_bytes("#20c040", 320, 200)),
                           "image/png", headers={"Content-Encoding": "gzip", "ETag": '"v7"'})
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    model.thumbnailSize = QSize(100, 100)
    qtbot.waitUntil(lambda: model.loader.stats["encoded_hits"] == 1
                    and not model.loader.has_job(url), timeout=10000)
    assert model.status_of(0) == Status.Ready, model.data(model.index(0), ImageGalleryModel.ErrorStringRole)
    assert model.thumbnail(0).width() == 100 and close_to(center_color(model.thumbnail(0)), "#20c040")
    assert model.loader.thumbnails.get(model.loader.key_for(url)).etag == '"v7"'
    assert image_server.total_hits() == 1


def test_model_passes_qt_model_tester_through_list_edits(qtbot, qtmodeltester, model, image_server):
    urls = serve_colors(image_server)
    qtmodeltester.check(model, force_py=True)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    # The tester checks the model again at every signal it emits. A second check() would
    # connect it twice, and its teardown undoes one: a change the model emitted after that (a
    # row still settling under load) then reached a tester already let go.
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [urls[3], urls[0]]  # reorder and drop: kept rows survive a reset
        model.append([urls[5], "junk"])
        model.remove(0)
    assert model.urls == [urls[0], urls[5], "junk"]
    assert model.status_of(0) == Status.Ready


def test_a_new_list_keeps_rows_in_place_and_removes_and_inserts_the_rest_in_runs(qtbot, model):
    letters = ["a", "b", "c", "d", "e", "f", "g"]  # not URLs: Error rows, nothing is fetched
    with qtbot.waitSignal(model.finished, timeout=5000):
        model.urls = letters
    changes = []
    model.rowsRemoved.connect(lambda _parent, first, last: changes.append(("removed", first, last)))
    model.rowsInserted.connect(lambda _parent, first, last: changes.append(("inserted", first, last)))
    model.modelReset.connect(lambda: changes.append(("reset",)))
    with qtbot.waitSignal(model.finished, timeout=5000):
        model.urls = ["x", "a", "c", "y", "z", "g", "w"]
    # a, c and g stay in order: no reset. The others go from the end (d-f, then b), and the new
    # rows come in from the start, each range at its place in the new list.
    assert changes == [("removed", 3, 5), ("removed", 1, 1),
                       ("inserted", 0, 0), ("inserted", 3, 4), ("inserted", 6, 6)]
    assert model.urls == ["x", "a", "c", "y", "z", "g", "w"]


def test_every_new_list_ends_in_finished_even_with_nothing_left_to_load(qtbot, model,
                                                                        image_server):
    urls = serve_colors(image_server, COLORS[:3])
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    hits = image_server.total_hits()
    # "Set urls, wait for finished()" waited for ever when every row was kept, settled.
    with qtbot.waitSignal(model.finished, timeout=3000):
        model.urls = list(reversed(urls))
    with qtbot.waitSignal(model.finished, timeout=3000):
        model.urls = urls[1:]
    with qtbot.waitSignal(model.finished, timeout=3000):
        model.urls = []
    assert image_server.total_hits() == hits


def test_a_reload_is_not_undone_by_the_older_decode_finishing_last(qtbot, model, image_server,
                                                                   hold_decode):
    red, blue = solid_image_bytes("#ff0000"), solid_image_bytes("#0000ff")
    url = image_server.add("/picture.png", red)
    held, release = hold_decode(red)
    model.urls = [url]
    qtbot.waitUntil(held.is_set, timeout=5000)
    image_server.add("/picture.png", blue)  # the picture changed: reload() fetches it again
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.reload()
    release.set()
    loader = model.loader
    qtbot.waitUntil(lambda: loader.pending_worker_jobs() == 0, timeout=10000)
    assert close_to(center_color(model.thumbnail(0)), "#0000ff")
    assert close_to(center_color(loader.disk.load(loader.key_for(url)).image), "#0000ff")


def test_retry_and_reload_fetch_again(qtbot, model, image_server):
    url = serve_colors(image_server, ["#ff0000"])[0]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url, image_server.url("/late.png")]
    assert model.status_of(1) == Status.Error
    image_server.add("/late.png", solid_image_bytes("#00ff00"))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.retryFailed()
    assert model.status_of(1) == Status.Ready and model.failedCount == 0
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.reload()
    assert image_server.hits["/0.png"] == 2  # reload bypasses every cache


@pytest.mark.parametrize("limit, refused_under, reason", [
    ("maxResponseBytes", 1000, "too large ("),
    ("maxImagePixels", 10_000, "image too large (320x200"),
])
def test_a_row_a_limit_refused_offers_no_retry_and_loads_once_the_limit_is_raised(
        qtbot, model, image_server, limit, refused_under, reason):
    # Asked again under the same limit, the server's answer is refused the same way: Retry could
    # not help. Raising the limit is what can, and it loads the row itself.
    small = image_server.add("/small.png", solid_image_bytes("#ff0000", 8, 8))
    large = image_server.add("/large.png", solid_image_bytes("#00ff00", 320, 200, "BMP"),
                             "image/bmp")
    setattr(model, limit, refused_under)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [small, large]
    assert model.status_of(0) == Status.Ready
    assert model.status_of(1) == Status.Error
    assert model.get(1)["errorString"].startswith(reason), model.get(1)["errorString"]
    assert model.get(1)["retryable"] is False
    with qtbot.waitSignal(model.finished, timeout=10000):
        setattr(model, limit, 100_000_000)
    assert model.status_of(1) == Status.Ready
    assert close_to(center_color(model.thumbnail(1)), "#00ff00")
    assert image_server.hits["/small.png"] == 1  # only the refused row was asked for again


def test_a_limit_raised_while_a_transfer_runs_under_the_old_one_lets_it_load(qtbot, model,
                                                                               image_server):
    # A transfer keeps the byte cap it started with: refused under it after the limit was
    # raised, the row showed no Retry and was never asked for again.
    released = threading.Event()

    def held(handler):
        released.wait(10)
        handler._send(200, solid_image_bytes("#00ff00", 320, 200, "BMP"), "image/bmp")

    url = image_server.add_handler("/held.bmp", held)
    model.maxResponseBytes = 1000
    with qtbot.waitSignal(model.loader.loadStarted, timeout=10000):
        model.urls = [url]
    model.maxResponseBytes = 100_000_000
    with qtbot.waitSignal(model.finished, timeout=10000):
        released.set()
    assert model.status_of(0) == Status.Ready, model.get(0)["errorString"]
    assert image_server.hits["/held.bmp"] == 2


def test_a_refusal_under_the_limits_it_was_decoded_with_is_not_fetched_again(qtbot, model,
                                                                             image_server):
    # Once the settings a job saw were those at its creation: one downloading as the limit rose,
    # decoded under the new limit and refused by it, was fetched and refused a second time.
    released = threading.Event()

    def held(handler):
        released.wait(10)
        handler._send(200, solid_image_bytes("#00ff00", 320, 200), "image/png")

    url = image_server.add_handler("/held.png", held)
    model.maxImagePixels = 10_000
    with qtbot.waitSignal(model.loader.loadStarted, timeout=10000):
        model.urls = [url]
    model.maxImagePixels = 20_000  # looser, and still refusing 320x200
    with qtbot.waitSignal(model.finished, timeout=10000):
        released.set()
    assert model.get(0)["errorString"].startswith("image too large (320x200")
    assert image_server.hits["/held.png"] == 1


def test_each_failure_names_what_may_undo_it():
    from dataclasses import replace

    from imagegallery.decode import ThumbnailSpec, decode_thumbnail
    from imagegallery.limits import LoadLimits
    from imagegallery.transport.base import ErrorKind, TransferError

    assert TransferError(ErrorKind.TLS_UNAVAILABLE, "").remedy is Remedy.OTHER_TRANSPORT
    assert TransferError(ErrorKind.REDIRECT_NEEDS_TLS, "").remedy is Remedy.OTHER_TRANSPORT
    assert TransferError(ErrorKind.TOO_LARGE, "").remedy is Remedy.LOOSER_LIMITS
    assert TransferError(ErrorKind.REDIRECT, "").remedy is Remedy.NONE
    assert TransferError(ErrorKind.HTTP_STATUS, "HTTP 404", 404).remedy is Remedy.RETRY
    spec, small = ThumbnailSpec(64, 64), replace(LoadLimits(), max_pixels=10_000)
    decoded = [decode_thumbnail(body, spec, small) for body in (
        b"<svg xmlns='http://www.w3.org/2000/svg'/>", solid_image_bytes("#00ff00", 320, 200),
        solid_image_bytes("#00ff00", 320, 200, "TIFF"), b"\x89PNG\r\n\x1a\n cut short")]
    # The TIFF's refusal comes from the sandbox child, over its pipe, with its remedy.
    assert [(d.ok, d.remedy) for d in decoded] == [
        (False, Remedy.NONE), (False, Remedy.LOOSER_LIMITS), (False, Remedy.LOOSER_LIMITS),
        (False, Remedy.RETRY)], [d.error for d in decoded]


def test_a_transport_change_asks_again_only_for_what_a_transport_refused(qtbot, model,
                                                                         image_server):
    # Both a limit and the transport may undo a refusal by this client's settings, but each
    # only its own: a row refused by a limit was downloaded again at every transport change.
    large = image_server.add("/large.png", solid_image_bytes("#00ff00", 320, 200))
    model.maxImagePixels = 10_000
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [large]
    assert model.get(0)["errorString"].startswith("image too large (320x200")
    with qtbot.waitSignal(model.loader.remedyAvailable, timeout=5000):
        model.transport = "curl" if model.transport != "curl" else "qt"
    with qtbot.waitSignal(model.finished, timeout=10000):  # after any reload it started
        model.append(image_server.add("/small.png", solid_image_bytes("#0000ff", 40, 40)))
    assert model.status_of(1) == Status.Ready
    assert image_server.hits["/large.png"] == 1
    assert model.status_of(0) == Status.Error and not model.get(0)["retryable"]


def test_retryable_failed_count_follows_failures_retries_and_removals(qtbot, model, image_server):
    svg = image_server.add("/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                           "image/svg+xml")
    missing = [image_server.url(f"/missing{n}.png") for n in range(2)]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [svg, *missing, "not a url"]
    assert (model.failedCount, model.retryableFailedCount) == (4, 2)
    model.remove(1)
    assert (model.failedCount, model.retryableFailedCount) == (3, 1)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.retryFailed()
    assert (model.failedCount, model.retryableFailedCount) == (3, 1)
    assert image_server.hits["/logo.svg"] == 1 and image_server.hits["/missing1.png"] == 2


def test_a_limit_change_asks_again_only_for_what_that_limit_refused(qtbot, model, image_server):
    svg = image_server.add("/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                           "image/svg+xml")
    large = image_server.add("/large.png", solid_image_bytes("#00ff00", 320, 200))
    model.maxImagePixels = 10_000
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [svg, large]
    assert [model.get(row)["retryable"] for row in (0, 1)] == [False, False]
    model.maxImagePixels = 5_000  # tightened: nothing it refused can load now
    assert image_server.total_hits() == 2
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.maxImagePixels = 100_000_000
    assert model.status_of(1) == Status.Ready
    # The SVG is refused by a policy no limit changes: not fetched again at every step.
    assert image_server.hits["/logo.svg"] == 1 and image_server.hits["/large.png"] == 2


def test_a_retry_while_the_last_one_is_on_its_way_asks_the_server_once(qtbot, model, image_server):
    image_server.latency = 0.2  # the second click comes while the first retry is in flight
    url = image_server.url("/late.png")
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    image_server.add("/late.png", solid_image_bytes("#00ff00"))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.retry(0)  # a double click on Retry
        model.retry(0)
        qtbot.waitUntil(lambda: image_server.hits["/late.png"] >= 2, timeout=5000)
        model.retry(0)  # the request left already
    assert model.status_of(0) == Status.Ready
    assert image_server.hits["/late.png"] == 2  # the first try, then one retry


def test_progress_counts_half_downloads_and_stays_right_as_the_list_changes(qtbot, model):
    server = FaultServer()
    try:
        good = server.add_image("good.png", solid_image_bytes("#00ff00"))
        half = server.url("/half/a.png")  # half of its body arrives, then nothing more
        model.urls = [good, half, half]  # two rows share the half-loaded URL

        def settled_at(expected):
            qtbot.waitUntil(lambda: abs(model.progress - expected) < 1e-9, timeout=10000)

        settled_at((1 + 0.5 + 0.5) / 3)
        assert model.status_of(1) == model.status_of(2) == Status.Loading
        model.urls = [good, half]  # one of the two rows goes; its download stays
        settled_at((1 + 0.5) / 2)
        model.urls = [good, half, half, good]  # rows come back, one more ready at once
        settled_at((1 + 0.5 + 0.5 + 1) / 4)
        assert server.hits["/half/a.png"] == 1
    finally:
        model.loader.close()
        server.stop()


def test_a_model_given_a_loader_reports_and_changes_that_loaders_limits(qtbot):
    from dataclasses import replace

    from imagegallery.limits import LoadLimits
    from imagegallery.loader import ImageLoader

    loader = ImageLoader(replace(LoadLimits(), max_retries=5, max_connections_per_host=3))
    gallery = ImageGalleryModel(loader=loader)
    try:
        assert gallery.limits is loader.limits
        assert (gallery.property("maxRetries"), gallery.property("maxConnectionsPerHost")) == (5, 3)
        gallery.setProperty("maxRetries", 1)
        assert loader.limits.max_retries == 1
        other = ImageGalleryModel(loader=loader)  # a second model on the same loader
        other.setProperty("maxConnectionsPerHost", 8)
        gallery.setProperty("maxRetries", 2)  # must not put back the 3 connections it first saw
        assert (loader.limits.max_retries, loader.limits.max_connections_per_host) == (2, 8)
        assert gallery.property("maxConnectionsPerHost") == 8
    finally:
        loader.close()


def test_allowed_schemes_set_after_the_urls_judge_the_rows_already_requested(
        qtbot, model, image_server, tmp_path):
    local = tmp_path / "local.png"
    local.write_bytes(solid_image_bytes("#00ff00"))
    remote = serve_colors(image_server, ["#ff0000"])[0]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [local.as_uri(), remote]  # QML may set the list first
    assert model.status_of(0) == Status.Ready and model.status_of(1) == Status.Ready
    model.allowedSchemes = ["http", "https"]
    assert model.status_of(0) == Status.Error and "file" in model.get(0)["errorString"]
    assert model.get(0)["source"] == ""  # no longer shown
    assert model.status_of(1) == Status.Ready
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.allowedSchemes = ["http", "https", "file"]  # allowed again: it loads again
    assert model.status_of(0) == Status.Ready and close_to(center_color(model.thumbnail(0)), "#00ff00")


def test_reload_fetches_the_rows_on_screen_first(qtbot, model, image_server):
    urls = serve_colors(image_server, [f"#{i * 6:02x}4080" for i in range(40)])
    model.prefetchRows = 0
    model.setVisibleRange(30, 33)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    started = []
    model.loader.loadStarted.connect(lambda url: started.append(url))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.reload()
    assert sorted(started) == sorted(urls)  # every row again, from the network
    assert set(started[:4]) == set(urls[30:34])
    assert model.loadedCount == 40 and image_server.total_hits() == 80


# -- edits and shared loaders: rows that must not be stranded --------------------------------

def test_a_url_one_model_drops_still_loads_for_another_on_the_same_loader(qtbot, image_server):
    from imagegallery.loader import ImageLoader

    image_server.latency = 0.5
    url = image_server.add("/a.png", solid_image_bytes("#ff0000"))
    loader = ImageLoader()
    first, second = ImageGalleryModel(loader=loader), ImageGalleryModel(loader=loader)
    try:
        first.urls = [url]
        second.urls = [url]
        qtbot.waitUntil(lambda: loader.started_transfers() == 1, timeout=5000)
        first.urls = []  # the first model's cancel must not take the second one's job
        with qtbot.waitSignal(second.finished, timeout=5000):
            pass
        assert second.status_of(0) == Status.Ready
        assert close_to(center_color(second.thumbnail(0)), "#ff0000")
        assert image_server.total_hits() == 1
    finally:
        loader.close()


def test_another_models_cancelled_transfer_leaves_no_row_loading_for_ever(qtbot, image_server):
    """On a shared loader, a transfer one model asked for and then dropped must not strand the
    other model's row of that URL in Loading: scrolled into view, the row still loads."""
    from imagegallery.loader import ImageLoader

    first_url = image_server.add("/first.png", solid_image_bytes("#00ff00", 16, 16))
    shared_url = image_server.add("/shared.png", solid_image_bytes("#ff0000", 16, 16))
    loader = ImageLoader()
    dropping, scrolling = ImageGalleryModel(loader=loader), ImageGalleryModel(loader=loader)
    try:
        scrolling.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
        scrolling.prefetchRows = 0
        scrolling.setVisibleRange(0, 0)
        with qtbot.waitSignal(scrolling.finished, timeout=5000):
            scrolling.urls = [first_url, shared_url]  # row 1 is off screen: not requested
        assert scrolling.status_of(1) == Status.Null
        image_server.latency = 1.0
        with qtbot.waitSignal(loader.loadStarted, timeout=5000):
            dropping.urls = [shared_url]
        assert scrolling.status_of(1) == Status.Null  # not this model's transfer
        dropping.urls = []  # its job is cancelled, and no signal says so
        image_server.latency = 0.0
        scrolling.setVisibleRange(1, 1)
        qtbot.waitUntil(lambda: scrolling.status_of(1) == Status.Ready, timeout=5000)
        assert close_to(center_color(scrolling.thumbnail(1)), "#ff0000")
        assert not scrolling.busy
    finally:
        loader.close()


def test_rows_waiting_for_the_feed_load_after_the_busy_rows_are_removed(qtbot, image_server,
                                                                        model):
    from imagegallery.model import MAX_LOADER_JOBS

    body = solid_image_bytes("#00ff00", 16, 16)
    image_server.latency = 5.0  # the loader fills up with slow requests
    urls = [image_server.add(f"/{i}.png", body) for i in range(MAX_LOADER_JOBS + 20)]
    model.urls = urls
    qtbot.waitUntil(lambda: model.loader.active_jobs() >= MAX_LOADER_JOBS, timeout=10000)
    image_server.latency = 0.0
    # Their jobs are cancelled and send no result, which is what restarted the feed.
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls[MAX_LOADER_JOBS:]
    assert model.loadedCount == 20 and model.pendingCount == 0


def test_load_visible_requests_rows_a_removal_moves_onto_the_screen(qtbot, image_server, model):
    body = solid_image_bytes("#0000ff", 16, 16)
    urls = [image_server.add(f"/{i}.png", body) for i in range(200)]
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.setVisibleRange(0, 11)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    # A filter narrows the list; the view reports the same range, which changes nothing.
    model.urls = urls[100:]
    model.setVisibleRange(0, 11)
    qtbot.waitUntil(lambda: all(model.status_of(r) == Status.Ready for r in range(12)),
                    timeout=5000)


def load_visible_showing_rows_0_to_3(qtbot, model, server, rows):
    """`rows` blue images under LoadVisible with no prefetch margin, rows 0-3 on screen and
    loaded; returns their URLs."""
    body = solid_image_bytes("#0000ff", 16, 16)
    urls = [server.add(f"/{i}.png", body) for i in range(rows)]
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.prefetchRows = 0
    model.setVisibleRange(0, 3)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    return urls


def test_load_visible_edits_off_screen_send_no_second_finished(qtbot, image_server, model):
    load_visible_showing_rows_0_to_3(qtbot, model, image_server, 100)
    hits = image_server.total_hits()
    with qtbot.assertNotEmitted(model.finished, wait=300):
        model.remove(80)
        model.append(image_server.url("/99.png"))
    assert image_server.total_hits() == hits  # nothing was loaded, so nothing finished


def test_progress_forgets_a_partial_download_the_new_schemes_refuse(qtbot, model):
    import socket

    server = FaultServer()
    silent = socket.socket()  # an https peer that accepts and never speaks: stays Loading
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        model.urls = [server.url("/half/a.png"), f"https://127.0.0.1:{silent.getsockname()[1]}/b.png"]
        qtbot.waitUntil(lambda: model.data(model.index(0), ImageGalleryModel.ProgressRole) >= 0.5,
                        timeout=5000)
        model.allowedSchemes = ["https"]  # row 0 is refused: settled, with nothing in flight
        assert model.status_of(0) == Status.Error and model.status_of(1) == Status.Loading
        assert model.progress == 0.5  # one of two rows settled, the other at 0 bytes
    finally:
        model.loader.close()
        server.stop()
        silent.close()


def test_bad_property_values_from_qml_are_refused_with_a_warning(tmp_path):
    # In a child process: an exception raised in a property write from QML aborts the process.
    import subprocess
    import sys

    script = tmp_path / "bad_values.py"
    script.write_text(
        "from PyQt5.QtCore import QByteArray, QUrl\n"
        "from PyQt5.QtGui import QGuiApplication\n"
        "from PyQt5.QtQml import QQmlComponent, QQmlEngine\n"
        "import imagegallery\n"
        "app = QGuiApplication(['bad_values', '-platform', 'offscreen'])\n"
        "engine = QQmlEngine()\n"
        "imagegallery.install(engine)\n"
        "component = QQmlComponent(engine)\n"
        "component.setData(QByteArray(b'import ImageGallery 1.0\\nImageGalleryModel {'\n"
        "    b' transport: \"HTTP\"; maxImagePixels: Infinity; maxResponseBytes: NaN;'\n"
        "    b' maxRetries: -1; connectTimeout: 0; idleTimeout: 5000 }'), QUrl('inline.qml'))\n"
        "model = component.create()\n"
        "print(model.property('transport'), model.property('maxImagePixels'),\n"
        "      model.property('maxRetries'), model.property('connectTimeout'),\n"
        "      model.property('idleTimeout'))\n"
        "model.loader.close()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["auto", "100000000.0", "2", "15000", "5000"]  # the rest kept
    for name in ("transport", "maxImagePixels", "maxResponseBytes", "maxRetries", "connectTimeout"):
        assert f"ImageGalleryModel.{name} must be" in done.stderr


def test_a_fifo_or_a_device_in_the_list_fails_its_row_and_no_other(qtbot, model, tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it to read would wait for a writer that never comes
    colors = ["#ff0000", "#00ff00", "#0000ff"]
    files = []
    for number, color in enumerate(colors):
        path = tmp_path / f"{number}.png"
        path.write_bytes(solid_image_bytes(color))
        files.append(path.as_uri())
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [fifo.as_uri(), "file:///dev/zero"] + files
    assert [model.get(row)["errorString"] for row in (0, 1)] == ["not a regular file"] * 2
    for row, color in enumerate(colors, start=2):
        assert model.status_of(row) == Status.Ready
        assert close_to(center_color(model.thumbnail(row)), color)


def _never_answering(server):
    def handler(request):
        server.stopping.wait(10)  # until the server stops at teardown
    return handler


def test_removing_the_last_loading_row_still_sends_the_finished_owed(qtbot, model, image_server):
    fast = image_server.add("/fast.png", solid_image_bytes("#ff0000"))
    slow = image_server.add_handler("/slow.png", _never_answering(image_server))
    # Row 0's change flushed, so nothing is dirty when row 1 goes: the case that lost the debt.
    with qtbot.waitSignal(model.countsChanged, check_params_cb=lambda *_: model.loadedCount == 1,
                          timeout=5000):
        model.urls = [fast, slow]
    assert model.status_of(1) == Status.Loading
    with qtbot.waitSignal(model.finished, timeout=3000):
        model.remove(1)  # the list has settled: "set urls, wait for finished()" must end


def test_narrowed_schemes_are_not_undone_by_a_memory_hit_on_its_way(qtbot, make_model,
                                                                     image_server):
    url = image_server.add("/red.png", solid_image_bytes("#ff0000"))
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    second = make_model()
    # QML may set `urls` and `allowedSchemes` in either order, in one turn; the memory cache's
    # answer to the first comes in the next.
    with qtbot.waitSignal(second.loader.thumbnailReady, timeout=5000):
        second.urls = [url]
        second.allowedSchemes = ["https"]
        assert second.status_of(0) == Status.Error
    assert second.status_of(0) == Status.Error, second.get(0)["source"]
    assert "scheme" in second.get(0)["errorString"]


def test_a_reload_scrolled_away_and_back_does_not_bring_back_the_old_picture(qtbot, model,
                                                                             image_server):
    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    others = [image_server.add(f"/{i}.png", solid_image_bytes("#00ff00")) for i in range(1, 10)]
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.prefetchRows = 0
    model.setVisibleRange(0, 0)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url] + others
    assert close_to(center_color(model.thumbnail(0)), "#ff0000")
    image_server.add("/0.png", solid_image_bytes("#0000ff"))  # the picture changed on the server
    image_server.latency = 1.0
    model.reload()
    qtbot.waitUntil(lambda: model.loader.started_transfers() == 1, timeout=5000)
    model.setVisibleRange(5, 5)  # scrolled away while it downloads: cancelled
    model.setVisibleRange(0, 0)  # and back: from the network again, not the memory cache
    image_server.latency = 0.0
    qtbot.waitUntil(lambda: model.status_of(0) == Status.Ready, timeout=5000)
    assert close_to(center_color(model.thumbnail(0)), "#0000ff"), center_color(model.thumbnail(0)).name()


def test_a_wider_prefetch_margin_loads_the_rows_it_adds_under_load_visible(qtbot, model,
                                                                           image_server):
    load_visible_showing_rows_0_to_3(qtbot, model, image_server, 40)
    assert model.status_of(4) == Status.Null
    model.prefetchRows = 4  # the view reports the same range as before: nothing else asks
    qtbot.waitUntil(lambda: all(model.status_of(r) == Status.Ready for r in range(4, 8)),
                    timeout=3000)
    assert model.status_of(8) == Status.Null


def test_reloads_while_the_loader_is_full_queue_each_waiting_row_once(qtbot, model, image_server):
    from imagegallery.model import MAX_LOADER_JOBS

    image_server.latency = 5.0  # the loader stays full while the test runs
    body = solid_image_bytes("#0000ff", 16, 16)
    urls = [image_server.add(f"/{i}.png", body) for i in range(MAX_LOADER_JOBS + 200)]
    model.urls = urls
    qtbot.waitUntil(lambda: model.loader.active_jobs() >= MAX_LOADER_JOBS, timeout=5000)
    for _ in range(5):
        model.reload()
    queued = list(model._feed_queue)
    assert len({id(row) for row in queued}) == len(queued) <= len(urls)  # 4,080 before


def test_progress_of_a_refused_row_is_not_kept_after_its_result_is_dropped(qtbot, image_server):
    # A loader shared with another model finishes the job of a row this model refused since.
    body = solid_image_bytes("#ff0000", 64, 64)
    release = threading.Event()

    def half_then_rest(request):
        request.send_response(200)
        request.send_header("Content-Type", "image/png")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body[:len(body) // 2])
        request.wfile.flush()
        release.wait(10)
        request.wfile.write(body[len(body) // 2:])

    slow = image_server.add_handler("/slow.png", half_then_rest)
    black_hole = socket.socket()  # accepts no connection: an https row that stays Loading
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(8)
    pending = f"https://127.0.0.1:{black_hole.getsockname()[1]}/never.png"
    owner = ImageGalleryModel()
    shared = ImageGalleryModel(loader=owner.loader)
    try:
        owner.urls = [slow]
        shared.urls = [slow, pending]
        qtbot.waitUntil(lambda: shared.status_of(0) == Status.Loading, timeout=5000)
        shared.allowedSchemes = ["https"]  # the host narrows: row 0 is refused, row 1 loads on
        assert shared.status_of(0) == Status.Error
        qtbot.waitUntil(lambda: owner.progress > 0, timeout=5000)  # the other model's job goes on
        release.set()
        qtbot.waitUntil(lambda: owner.status_of(0) == Status.Ready, timeout=5000)
        assert shared.status_of(1) == Status.Loading and shared.pendingCount == 1
        # One row failed, one has received nothing: progress 0.5, not more.
        assert shared.progress == 0.5, (shared.progress, shared._fraction)
    finally:
        release.set()
        owner.loader.close()
        black_hole.close()


@pytest.mark.parametrize("policy", ["LoadAll", "LoadVisible"])
def test_a_row_owed_a_reload_settles_when_its_url_is_added_again_meanwhile(
        qtbot, image_server, policy):
    """A URL reloaded while its row waits (off screen, or in the feed), then listed again on
    screen: the new row was asked for plainly, the owed row was marked Loading by that transfer
    but kept out of its result, and stayed Loading for ever (finished never came; a review's
    repro)."""
    from imagegallery.cache import shared_thumbnail_cache
    from imagegallery.loader import ImageLoader

    url = image_server.add("/u.png", solid_image_bytes("#ff0000"))
    other = image_server.add("/o.png", solid_image_bytes("#00ff00"))
    model = ImageGalleryModel(loader=ImageLoader(disk_cache_dir=""))
    try:
        model.loadPolicy = getattr(ImageGalleryModel.LoadPolicy, policy)
        model.prefetchRows = 0
        model.setVisibleRange(1, 2)  # row 0 is off screen; row 2 does not exist yet
        with qtbot.waitSignal(model.finished, timeout=10000):
            model.urls = [url, other]
        model.reload()
        shared_thumbnail_cache().clear()
        model.loader.encoded.discard(url)
        model.append(url)  # row 2, on screen
        model.setVisibleRange(0, 2)  # and row 0 back on screen
        qtbot.waitUntil(lambda: model.pendingCount == 0 and not model.busy, timeout=10000)
        assert [model.status_of(row) for row in range(3)] == [Status.Ready] * 3
    finally:
        model.loader.close()


def test_a_null_view_or_a_nan_ratio_from_qml_is_refused_with_a_warning(model, caplog):
    # From QML, the exception a null view raised aborted the process; NaN passed the ratio's
    # clamp as 8, for thumbnails of 64 times the pixels.
    with caplog.at_level("WARNING", logger="imagegallery.model"):
        model.setVisibleRangeOf(None, 0, 5)
        model.setVisibleRowsOf(None, [0], [])
        model.forgetView(None)
        model.devicePixelRatio = 2.0
        model.devicePixelRatio = float("nan")
    assert model.devicePixelRatio == 2.0
    warned = [record.getMessage() for record in caplog.records]
    assert sum("the view is null" in message for message in warned) == 3, warned
    assert any("devicePixelRatio must be a number" in message for message in warned), warned


# -- the model changed from slots on its own row signals ---------------------------------------
def counts_add_up(model):
    statuses = [model.status_of(row) for row in range(model.count)]
    return (model.loadedCount == statuses.count(Status.Ready)
            and model.failedCount == statuses.count(Status.Error)
            and model.pendingCount == statuses.count(Status.Null) + statuses.count(Status.Loading))


def test_rows_removed_from_a_slot_on_rows_inserted_leave_the_counts_right(qtbot, model,
                                                                          image_server):
    # The insertion went on to request its rows by numbers the slot had changed: a removed row
    # counted as Loading for ever, and `busy` never went false.
    urls = serve_colors(image_server)

    def keep_the_last_two(parent, first, last):
        while model.count > 2:
            model.remove(0)

    model.rowsInserted.connect(keep_the_last_two)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    qtbot.waitUntil(lambda: not model.busy, timeout=5000)
    assert model.urls == urls[-2:] and counts_add_up(model) and model.loadedCount == 2


def test_a_slot_on_rows_removed_sees_the_counts_without_the_rows_removed(qtbot, model,
                                                                        image_server):
    # The counts and the URL index were brought up to date only after rowsRemoved: a host
    # refilling an emptied gallery from it read counts of rows no longer there.
    first, more = serve_colors(image_server)[:2], serve_colors(image_server)[2:]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = first
    seen = []

    def refill_when_emptied(parent, first_row, last_row):
        seen.append((model.count, model.loadedCount + model.failedCount + model.pendingCount))
        if model.count == 0:
            model.append(more)

    model.rowsRemoved.connect(refill_when_emptied)
    model.remove(1)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.remove(0)
    assert seen[:2] == [(1, 1), (0, 0)]
    qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=10000)
    assert model.urls == more and counts_add_up(model)
