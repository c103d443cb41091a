"""The loader's bookkeeping between rows, views and work in flight: which job goes first, which
picture wins after a reload, what a new size costs, and what stays in memory."""
import dataclasses
import os
import threading

from PyQt5.QtCore import QSize
from PyQt5.QtGui import QImage

import imagegallery.loader as loader_module
from imagegallery.cache import DiskThumbnailCache
from imagegallery.model import ImageGalleryModel
from imagegallery.provider import EvictedThumbnailProvider
from imaging import (center_color, close_to, encode, noisy_photo_bytes, serve_solid_images,
                     solid_image_bytes)
from servers import free_port_refusing_connections

Status = ImageGalleryModel.Status
MB = 1024 * 1024


def _png_over_a_megabyte() -> bytes:
    """A PNG too large for the encoded-bytes cache (1 MB), so a new size must download it."""
    width, height = 720, 520  # of noise, which PNG cannot compress
    image = QImage(os.urandom(width * height * 4), width, height, QImage.Format_RGB32).copy()
    body = encode(image, "PNG")
    assert len(body) > loader_module.ENCODED_ENTRY_MAX_BYTES
    return body


# -- priorities --------------------------------------------------------------------------------
def test_a_url_on_screen_and_again_far_below_is_fetched_with_the_screen(qtbot, image_server,
                                                                       make_model):
    image_server.latency = 0.02
    order = []
    lock = threading.Lock()
    body = solid_image_bytes("#336699")

    def serve(handler):
        with lock:
            order.append(handler.path)
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    urls = [image_server.add_handler(f"/r{i}.png", serve) for i in range(200)]
    shared = image_server.add_handler("/shared.png", serve)
    urls[25] = urls[180] = shared  # on screen, and the same picture again far below
    model = make_model()
    model.setVisibleRange(0, 29)
    with qtbot.waitSignal(model.finished, timeout=30000):
        model.urls = urls
    # One job serves both rows; asking for row 180 sent it behind every other row (180th).
    assert order.index("/shared.png") < 30


def test_tiles_scrolled_past_do_not_outrank_the_screen(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(loader_module, "default_decode_threads", lambda: 1)
    photo = noisy_photo_bytes(3, 1600, 1200)
    urls = []
    for number in range(40):
        path = tmp_path / f"p{number}.jpg"
        path.write_bytes(photo)
        urls.append(path.as_uri())
    model = ImageGalleryModel()
    loader = model.loader
    try:
        with qtbot.waitSignal(model.finished, timeout=60000):
            model.urls = urls
        loader.thumbnails.clear()  # a long gallery scrolled far: the memory cache let them go
        gate = threading.Event()  # the one decoder waits until every request has been made
        real_decode = loader_module.decode_thumbnail
        monkeypatch.setattr(loader_module, "decode_thumbnail",
                            lambda *args, **kwargs: gate.wait(10) and real_decode(*args, **kwargs))
        provider = EvictedThumbnailProvider()
        delivered = []
        loader.thumbnailReady.connect(lambda url, _: delivered.append(urls.index(url)))

        def ask(row):
            source = model.data(model.index(row), ImageGalleryModel.SourceRole)
            assert source.startswith("image://imagegallery/")
            return provider.requestImageResponse(source.split("://imagegallery/", 1)[1], QSize())

        for row in range(35):  # a fast scroll: each tile passed asks, then is destroyed
            ask(row).cancel()
        model.setVisibleRange(35, 39)
        on_screen = [ask(row) for row in range(35, 40)]
        # Nobody waits for the tiles scrolled past: their jobs end (they stayed, first in line).
        qtbot.waitUntil(lambda: not any(loader.has_job(url) for url in urls[:35]), timeout=5000)
        gate.set()
        qtbot.waitUntil(lambda: all(response.done for response in on_screen), timeout=60000)
        assert all(not response.errorString() for response in on_screen)
        assert sorted(delivered[:5]) == [35, 36, 37, 38, 39], delivered
    finally:
        monkeypatch.undo()
        loader.close()


# -- which picture wins ------------------------------------------------------------------------
def test_reload_during_a_slow_disk_lookup_keeps_the_new_picture(qtbot, monkeypatch, image_server,
                                                                make_model):
    from imagegallery import cache

    url = image_server.add("/x.png", solid_image_bytes("#ff0000"))
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    first.loader.close(finish_disk_writes=True)
    qtbot.waitUntil(lambda: first.loader.disk.load(first.loader.key_for(url)) is not None,
                    timeout=10000)
    cache.shared_thumbnail_cache().clear()  # a new run: memory cold, disk warm
    image_server.add("/x.png", solid_image_bytes("#0000ff"))  # the picture changed on the server

    looking_up, gate = threading.Event(), threading.Event()
    real_load = DiskThumbnailCache.load

    def slow_load(self, key):  # a network home folder, a spun-down drive
        result = real_load(self, key)
        looking_up.set()
        gate.wait(10)
        return result

    monkeypatch.setattr(DiskThumbnailCache, "load", slow_load)
    model = make_model()
    lookups_handled = []
    handle_lookup = model.loader._on_disk_lookup
    monkeypatch.setattr(model.loader, "_on_disk_lookup",
                        lambda token, result: (handle_lookup(token, result), lookups_handled.append(1)))
    try:
        model.urls = [url]
        qtbot.waitUntil(looking_up.is_set, timeout=10000)
        model.reload()
        qtbot.waitUntil(lambda: model.status_of(0) == Status.Ready, timeout=10000)
        assert close_to(center_color(model.thumbnail(0)), "#0000ff")
    finally:
        gate.set()  # the slow lookup ends, with the old picture
    qtbot.waitUntil(lambda: len(lookups_handled) == 1, timeout=10000)
    assert close_to(center_color(model.thumbnail(0)), "#0000ff")


def test_reload_in_the_turn_the_list_is_set_is_not_answered_from_memory(qtbot, image_server,
                                                                       make_model):
    url = image_server.add("/x.png", solid_image_bytes("#ff0000"))
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    image_server.latency = 0.3
    image_server.add("/x.png", solid_image_bytes("#0000ff"))
    model = make_model()
    model.urls = [url]
    model.reload()  # same turn: "show these, fresh from the server"
    with qtbot.waitSignal(model.finished, timeout=10000):
        pass
    assert not model.loader.has_job(url)  # finished() came when the reload had delivered
    assert close_to(center_color(model.thumbnail(0)), "#0000ff")


# -- a new size --------------------------------------------------------------------------------
def test_a_new_size_decodes_waiting_bodies_again_without_downloading_them(qtbot, monkeypatch,
                                                                         image_server):
    monkeypatch.setattr(loader_module, "default_decode_threads", lambda: 1)
    decoding, gate = threading.Event(), threading.Event()
    real_decode = loader_module.decode_thumbnail

    def slow_first_decode(body, spec, *args, **kwargs):
        if not decoding.is_set():
            decoding.set()
            gate.wait(10)  # a large photo being decoded
        return real_decode(body, spec, *args, **kwargs)

    monkeypatch.setattr(loader_module, "decode_thumbnail", slow_first_decode)
    model = ImageGalleryModel()
    try:
        model.urls = serve_solid_images(image_server, ["#ff0000", "#00ff00", "#0000ff"])
        # Every body downloaded; the first is decoding, the other two wait for the decoder.
        qtbot.waitUntil(lambda: image_server.total_hits() == 3 and decoding.is_set()
                        and model.loader.started_transfers() == 0, timeout=10000)
        model.thumbnailSize = QSize(100, 100)
        gate.set()
        qtbot.waitUntil(lambda: model.loadedCount == 3, timeout=10000)
        assert image_server.total_hits() == 3
        assert model.thumbnail(0).width() == 100
    finally:
        gate.set()
        model.loader.close()


def test_progress_counts_a_ready_row_once_while_a_new_size_downloads_it_again(qtbot, image_server,
                                                                              make_model):
    body = _png_over_a_megabyte()
    hits = []

    def big(handler):
        hits.append(1)
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if len(hits) == 1:
            handler.wfile.write(body)
            return
        handler.wfile.write(body[: len(body) // 2])  # the second download stalls half way
        handler.wfile.flush()
        image_server.stopping.wait(30)

    a = image_server.add_handler("/big.png", big)
    b = image_server.add_handler("/hang.png", lambda handler: image_server.stopping.wait(30))
    model = make_model()
    model.urls = [a, b]
    qtbot.waitUntil(lambda: model.status_of(0) == Status.Ready, timeout=10000)
    assert model.progress == 0.5
    received = []
    model.loader.loadProgress.connect(lambda url, got, total: received.append(got))  # after the model's
    model.thumbnailSize = QSize(100, 100)
    qtbot.waitUntil(lambda: len(hits) == 2 and len(received) > 0 and received[-1] >= len(body) // 2,
                    timeout=10000)
    assert model.status_of(0) == Status.Ready
    assert model.progress == 0.5  # one row of two settled, the other at 0 bytes


# -- what stays in memory ----------------------------------------------------------------------
def test_promised_thumbnails_hold_at_most_a_quarter_of_the_memory_cache(qtbot, image_server,
                                                                        make_model):
    image_server.add("/big.png", solid_image_bytes("#808080", 1600, 1600))
    urls = [image_server.url(f"/big.png?n={number}") for number in range(40)]
    model = make_model()
    model.thumbnailSize = QSize(800, 800)  # large tiles: 2.4 MB each
    model.fillMode = ImageGalleryModel.FillMode.PreserveAspectCrop
    loader = model.loader
    budget = loader.thumbnails.budget_bytes
    loader.thumbnails.set_budget(16 * MB)
    try:
        shown = set()

        def read_sources(*_):  # a view scrolling through the list reads each Ready row's source
            for row in range(model.count):
                if row not in shown and model.status_of(row) == Status.Ready:
                    model.data(model.index(row), ImageGalleryModel.SourceRole)
                    shown.add(row)

        model.dataChanged.connect(read_sources)
        with qtbot.waitSignal(model.finished, timeout=60000):
            model.urls = urls
        read_sources()
        assert len(shown) == len(urls)
        promised = sum(thumbnail.image.sizeInBytes() for thumbnail in loader._promised.values())
        assert promised <= 4 * MB  # was 256 thumbnails whatever their size: 96 MB here
    finally:
        loader.thumbnails.set_budget(budget)


def test_reading_rows_with_get_leaves_the_screens_promises_alone(qtbot, image_server,
                                                                 make_model, monkeypatch):
    # get() read every role, `source` too, and a source read promised the thumbnail: the
    # gallery's selectAll() through a proxy calls get() for every row, and pushed out the
    # promises kept for the tiles on screen.
    monkeypatch.setattr(loader_module, "PROMISED_THUMBNAILS", 4)
    urls = serve_solid_images(image_server, ["#ff0000"] * 12)
    model = make_model()
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    on_screen = [model.data(model.index(row), ImageGalleryModel.SourceRole) for row in range(4)]
    promised = list(model.loader._promised)
    for row in range(model.count):
        assert model.get(row)["source"].startswith("image://imagegallery-memory/"), row
    assert list(model.loader._promised) == promised
    assert [model.get(row)["source"] for row in range(4)] == on_screen


def test_reloads_are_forgotten_once_no_older_work_can_be_running(qtbot, monkeypatch, make_model):
    monkeypatch.setattr(loader_module, "REFETCH_MEMORY_S", 0.0)
    port = free_port_refusing_connections()
    model = make_model()
    model.set_limits(dataclasses.replace(model.limits, max_retries=0))
    model.cacheDirectory = ""
    for generation in range(3):
        with qtbot.waitSignal(model.finished, timeout=30000):
            model.urls = [f"http://127.0.0.1:{port}/g{generation}/{n}.png" for n in range(100)]
        with qtbot.waitSignal(model.finished, timeout=30000):
            model.retryFailed()
    model.urls = []
    assert len(model.loader._refetches) <= 100  # one list's, not every URL ever retried


def test_a_url_listed_thousands_of_times_costs_a_scroll_step_little(qtbot, image_server, make_model,
                                                                     monkeypatch):
    # Every rescored row walked all the rows of its URL: 330 ms a scroll step for a placeholder
    # listed 5,000 times. Counted, not timed: how many rows' priorities one step works out.
    url = image_server.add("/same.png", solid_image_bytes("#808080"))
    model = make_model()
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.setVisibleRange(0, 29)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url] * 5000
    worked_out = []
    priority_for = model._priority_for
    monkeypatch.setattr(model, "_priority_for",
                        lambda number: worked_out.append(number) or priority_for(number))
    model.setVisibleRange(2500, 2529)
    assert 0 < len(worked_out) < 2000  # (was 5,000 per row rescored: hundreds of thousands)


def test_a_memory_answer_survives_an_old_reload_being_forgotten(qtbot, image_server, make_model,
                                                                monkeypatch):
    a, b = serve_solid_images(image_server, ["#ff0000", "#00ff00"], 64, 48)
    model = make_model()
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [a, b]
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.retry(0)  # a reload of A the loader remembers
    monkeypatch.setattr(loader_module, "REFETCH_MEMORY_S", 0.0)  # two minutes later
    model.append(a)  # A again: a memory hit, answered next turn
    model.retry(1)  # B retried in the same turn: the loader forgets A's reload
    assert model.status_of(2) == Status.Loading
    qtbot.waitUntil(lambda: model.status_of(2) == Status.Ready, timeout=5000)


def tiles_asking_for(model, url, tiles):
    """(relay, responses): `tiles` Images whose thumbnail of `url` was evicted, each asking the
    image provider for it, as Qt's pixmap reader thread would."""
    from imagegallery.provider import ThumbnailResponse

    relay = EvictedThumbnailProvider().relay
    responses = [ThumbnailResponse(relay) for _ in range(tiles)]
    for response in responses:
        relay._on_miss(model._source_id, url, model.loader.spec, response)
    return relay, responses


def test_an_evicted_thumbnail_comes_back_by_its_own_models_url_rules(qtbot, tmp_path):
    # Two models on one loader, one taking plain paths (as the CLI's does), one not: the URL
    # rules were the loader's, set by the last model made, so the first model's evicted
    # thumbnail was refused as "no scheme" and its Ready row turned to Error.
    from imagegallery.limits import LoadLimits
    from imagegallery.loader import ImageLoader

    path = str(tmp_path / "a.png")
    (tmp_path / "a.png").write_bytes(solid_image_bytes("#ff0000"))
    loader = ImageLoader(LoadLimits(), disk_cache_dir="")
    try:
        paths_allowed = ImageGalleryModel(loader=loader)
        paths_allowed.set_allow_plain_paths(True)
        paths_allowed.urls = [path]
        qtbot.waitUntil(lambda: paths_allowed.status_of(0) == Status.Ready, timeout=5000)
        urls_only = ImageGalleryModel(loader=loader)  # noqa: F841 - its rules are the newest
        loader.thumbnails.clear()  # evicted while its tile is on screen
        relay, [response] = tiles_asking_for(paths_allowed, path, 1)
        qtbot.waitUntil(lambda: response.done, timeout=5000)
        assert response.errorString() == ""
        assert close_to(center_color(response.textureFactory().image()), "#ff0000")
        assert paths_allowed.status_of(0) == Status.Ready
        # The memory provider's way back (its promise gone), judged by the same rules.
        loader.thumbnails.clear()
        with qtbot.waitSignal(loader.thumbnailReady, timeout=5000):
            relay._on_restore(paths_allowed._source_id, path)
        assert paths_allowed.status_of(0) == Status.Ready
    finally:
        loader.close()


def test_a_tile_scrolled_away_does_not_cancel_what_another_tile_reloads(qtbot, image_server,
                                                                         make_model):
    image_server.latency = 0.5  # still loading when the first tile goes
    url = image_server.add("/x.png", solid_image_bytes("#ff0000"))
    model = make_model()
    relay, [response] = tiles_asking_for(model, url, 1)
    relay._on_restore(model._source_id, url)  # another tile of the URL, its promise gone
    response.cancel()  # the first tile scrolled away
    with qtbot.waitSignal(model.loader.thumbnailReady, timeout=5000,
                          check_params_cb=lambda u, _: u == url):
        pass


def test_a_job_only_views_asked_for_ends_when_the_last_of_their_tiles_goes(qtbot, image_server,
                                                                           make_model):
    image_server.latency = 10  # still loading long after the tiles went
    url = image_server.add("/x.png", solid_image_bytes("#ff0000"))
    model = make_model()
    _, responses = tiles_asking_for(model, url, 2)  # two views' tiles of one URL
    for response in responses:
        response.cancel()
    # Ended, not loaded: the second tile's request had made it a job someone else wanted.
    qtbot.waitUntil(lambda: not model.loader.has_job(url), timeout=3000)
    assert model.loader.cached(url) is None
