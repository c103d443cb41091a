"""The image providers: QML shows the model's thumbnails, at once when they are in memory,
and an evicted one comes back."""
import pytest
from PyQt5.QtCore import QUrl
from PyQt5.QtQml import QQmlComponent, QQmlEngine

import imagegallery
from imagegallery import loader as loader_module
from imagegallery.cache import shared_thumbnail_cache
from imagegallery.model import ImageGalleryModel
from imagegallery.provider import EvictedThumbnailProvider, ThumbnailResponse
from imaging import center_color, close_to, solid_image_bytes

QML = b"""
import QtQuick 2.15
Image { asynchronous: true; cache: false }
"""
# As the gallery's tiles load their thumbnails.
SYNCHRONOUS_QML = b"""
import QtQuick 2.15
Image { asynchronous: false; cache: false }
"""


@pytest.fixture
def engine(qtbot):
    engine = QQmlEngine()
    imagegallery.install(engine)
    yield engine
    engine.clearComponentCache()


def make_image_item(engine, qml=QML):
    component = QQmlComponent(engine)
    component.setData(qml, QUrl("inline.qml"))
    item = component.create()
    assert item is not None, component.errorString()
    return item


def test_qml_image_shows_the_models_thumbnail(qtbot, engine, image_server, make_model):
    model = make_model()
    url = image_server.add("/red.png", solid_image_bytes("#ff0000"))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    item = make_image_item(engine)
    item.setProperty("source", model.data(model.index(0), ImageGalleryModel.SourceRole))
    qtbot.waitUntil(lambda: item.property("status") == 1, timeout=5000)
    assert item.property("sourceSize").width() == 224


def loaded_model(qtbot, make_model, image_server, path, color):
    model = make_model()
    url = image_server.add(path, solid_image_bytes(color))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    return model


def test_a_thumbnail_in_memory_is_shown_in_the_turn_its_source_is_set(qtbot, engine, image_server,
                                                                      make_model):
    # The asynchronous provider's answer came back through Qt's pixmap reader thread and the GUI
    # thread's queue: 9-24 ms while a new list built its tiles, and a placeholder flash for a
    # tile scrolled back into view.
    model = loaded_model(qtbot, make_model, image_server, "/green.png", "#00ff00")
    source = model.data(model.index(0), ImageGalleryModel.SourceRole)
    assert source.startswith("image://imagegallery-memory/")
    item = make_image_item(engine, SYNCHRONOUS_QML)
    item.setProperty("source", source)
    assert item.property("status") == 1
    assert item.property("sourceSize").width() == 224


def test_a_thumbnail_evicted_after_its_source_was_given_is_still_shown(qtbot, engine, image_server,
                                                                       make_model):
    model = loaded_model(qtbot, make_model, image_server, "/green.png", "#00ff00")
    source = model.data(model.index(0), ImageGalleryModel.SourceRole)
    shared_thumbnail_cache().clear()  # the byte budget let it go before the tile loaded it
    item = make_image_item(engine, SYNCHRONOUS_QML)
    item.setProperty("source", source)
    assert item.property("status") == 1
    assert item.property("sourceSize").width() == 224
    assert image_server.hits["/green.png"] == 1


def test_a_memory_source_nothing_holds_any_more_brings_its_thumbnail_back(
        qtbot, engine, image_server, make_model, monkeypatch):
    monkeypatch.setattr(loader_module, "PROMISED_THUMBNAILS", 0)  # nothing kept for the view
    model = loaded_model(qtbot, make_model, image_server, "/green.png", "#00ff00")
    qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=5000)  # on disk now
    stale = model.data(model.index(0), ImageGalleryModel.SourceRole)
    shared_thumbnail_cache().clear()
    item = make_image_item(engine, SYNCHRONOUS_QML)

    def back_in_memory(*changed) -> bool:
        # The change that brings the thumbnail back, not any change of the row: beside four
        # busy processes another one came first, while the row still named the disk provider.
        return model.data(model.index(0), ImageGalleryModel.SourceRole).startswith(
            "image://imagegallery-memory/")

    with qtbot.waitSignal(model.dataChanged, timeout=5000, check_params_cb=back_in_memory):
        item.setProperty("source", stale)
        # A transparent stand-in, not an Error and a QML warning, for a thumbnail that exists.
        assert item.property("status") == 1
        assert item.property("sourceSize").width() == 1
    fresh = model.data(model.index(0), ImageGalleryModel.SourceRole)
    assert fresh != stale and fresh.startswith("image://imagegallery-memory/")
    item.setProperty("source", fresh)
    assert item.property("status") == 1
    assert item.property("sourceSize").width() == 224
    assert image_server.hits["/green.png"] == 1  # back from the disk cache
    assert close_to(center_color(model.thumbnail(0)), "#00ff00")


def test_evicted_thumbnail_is_restored_without_a_second_download(qtbot, engine, image_server,
                                                                  make_model):
    model = make_model()
    url = image_server.add("/blue.png", solid_image_bytes("#0000ff"))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=5000)  # on disk now
    shared_thumbnail_cache().clear()  # as if the byte budget had evicted it
    item = make_image_item(engine)
    item.setProperty("source", model.data(model.index(0), ImageGalleryModel.SourceRole))
    qtbot.waitUntil(lambda: item.property("status") == 1, timeout=5000)
    assert item.property("sourceSize").width() == 224
    assert image_server.hits["/blue.png"] == 1  # restored from the disk cache
    assert close_to(center_color(model.thumbnail(0)), "#0000ff")


@pytest.mark.qt_log_ignore("bad image id")  # the warning QML prints is the point of the test
def test_bad_image_id_is_an_error_not_a_crash(qtbot, engine):
    item = make_image_item(engine)
    item.setProperty("source", "image://imagegallery/not-a-valid-id")
    qtbot.waitUntil(lambda: item.property("status") == 3, timeout=5000)


@pytest.mark.qt_log_ignore("Failed to get image from provider")
@pytest.mark.parametrize("image_id", ["not-a-valid-id", "999999/240x140/fit/1/aHR0cDovL3g"])
def test_a_memory_source_that_names_nothing_is_an_error_not_a_crash(qtbot, engine, image_id):
    item = make_image_item(engine, SYNCHRONOUS_QML)
    item.setProperty("source", "image://imagegallery-memory/" + image_id)  # the second: no loader
    assert item.property("status") == 3


def test_install_on_a_temporary_engine_wrapper_keeps_the_provider_alive(qtbot, tmp_path,
                                                                        image_server):
    import gc

    from PyQt5.QtQuick import QQuickView

    model = ImageGalleryModel()
    url = image_server.add("/green.png", solid_image_bytes("#00ff00"))
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [url]
    qml = tmp_path / "view.qml"
    qml.write_text("import QtQuick 2.15\nImage { asynchronous: true; source: '%s' }\n"
                   % model.data(model.index(0), ImageGalleryModel.SourceRole))
    view = QQuickView()
    imagegallery.install(view.engine())  # the only Python handle is a temporary wrapper
    gc.collect()
    view.setSource(QUrl.fromLocalFile(str(qml)))
    item = view.rootObject()
    qtbot.waitUntil(lambda: item.property("status") == 1, timeout=5000)
    assert item.property("sourceSize").width() == 224


def test_an_evicted_plain_path_thumbnail_comes_back_for_the_provider(qtbot, tmp_path):
    """The CLI lists local files by path; the provider asks again by that text after an
    eviction, and the loader must judge it by the model's rules, not call it malformed."""
    from imagegallery.cache import shared_thumbnail_cache
    from imagegallery.model import ImageGalleryModel
    from imaging import center_color, close_to, solid_image_bytes

    picture = tmp_path / "local.png"
    picture.write_bytes(solid_image_bytes("#00ff00"))
    model = ImageGalleryModel()
    try:
        model.set_allow_plain_paths(True)
        with qtbot.waitSignal(model.finished, timeout=10000):
            model.urls = [str(picture)]
        assert model.status_of(0) == ImageGalleryModel.Status.Ready
        shared_thumbnail_cache().clear()  # evicted, as scrolling through a large folder does
        response = ThumbnailResponse(None)
        EvictedThumbnailProvider().relay._on_miss(model._source_id, str(picture),
                                                model.loader.spec, response)
        qtbot.waitUntil(lambda: response.done, timeout=10000)
        assert response.errorString() == ""
        assert close_to(center_color(response.textureFactory().image()), "#00ff00")
    finally:
        model.loader.close()


def test_a_reload_while_an_image_waits_answers_it_with_the_new_picture(
        qtbot, image_server, make_model):
    """reload() fetches the URL again; a view's Image waiting on the old job (an evicted
    thumbnail) is served by the new one, not told "cancelled" (an error it showed)."""
    url = image_server.add("/a.png", solid_image_bytes("#ff0000"))
    model = make_model()
    image_server.latency = 0.5
    model.urls = [url]
    qtbot.waitUntil(lambda: model.loader.started_transfers() == 1, timeout=5000)
    answers = []
    model.loader.load_for_provider(url, model.loader.spec,
                                   lambda thumbnail, error: answers.append((thumbnail, error)))
    image_server.add("/a.png", solid_image_bytes("#0000ff"))
    image_server.latency = 0.0
    model.reload()
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=10000)
    thumbnail, error = answers[0]
    assert error == "" and close_to(center_color(thumbnail.image), "#0000ff")


def test_an_image_waiting_on_another_models_job_is_served_when_that_model_drops_it(
        qtbot, image_server):
    """On a shared loader, a tile of model B (Ready, its thumbnail evicted) waits on a job only
    model A claims. A dropped the URL: the job ended, the Image heard "nothing to show", and B's
    row, Ready with the same source, never gave it another (a review's repro)."""
    from imagegallery.loader import ImageLoader

    url = image_server.add("/a.png", solid_image_bytes("#ff0000"))
    loader = ImageLoader()
    first, second = ImageGalleryModel(loader=loader), ImageGalleryModel(loader=loader)
    try:
        with qtbot.waitSignal(second.finished, timeout=10000):
            first.urls = [url]
            second.urls = [url]
        shared_thumbnail_cache().clear()  # evicted: the tile's Image asks the provider
        image_server.latency = 0.5
        first.reload()  # a job only the first model claims
        qtbot.waitUntil(lambda: loader.started_transfers() == 1, timeout=5000)
        answers = []
        loader.load_for_provider(url, loader.spec,
                                 lambda thumbnail, error: answers.append((thumbnail, error)))
        first.urls = []
        qtbot.waitUntil(lambda: bool(answers), timeout=10000)
        thumbnail, error = answers[0]
        assert error == "" and thumbnail is not None
        assert close_to(center_color(thumbnail.image), "#ff0000")
    finally:
        image_server.latency = 0.0
        loader.close()


def test_a_reload_reaches_a_row_off_screen_whose_image_still_waits(qtbot, image_server, make_model):
    """Under LoadVisible a row out of the model's reach is fetched again only once it comes back
    on screen; a job kept going for its waiting Image filled it with the old picture, and the
    reload was lost for it (a review's repro)."""
    first = image_server.add("/0.png", solid_image_bytes("#00ff00"))
    second = image_server.add("/1.png", solid_image_bytes("#ff0000"))
    model = make_model()
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.prefetchRows = 0
    model.setVisibleRange(0, 1)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = [first, second]
    qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=5000)  # on disk
    model.setVisibleRange(0, 0)  # row 1 leaves the model's reach; its tile may still exist
    shared_thumbnail_cache().clear()
    image_server.add("/1.png", solid_image_bytes("#0000ff"))  # the server's picture changed
    answers = []
    model.loader.load_for_provider(second, model.loader.spec,
                                   lambda thumbnail, error: answers.append((thumbnail, error)))
    model.reload()
    qtbot.waitUntil(lambda: bool(answers), timeout=5000)
    model.setVisibleRange(1, 1)  # scrolled back into view
    qtbot.waitUntil(lambda: model.status_of(1) == ImageGalleryModel.Status.Ready
                    and close_to(center_color(model.thumbnail(1)), "#0000ff"), timeout=10000)


def test_an_image_asking_for_a_url_the_rules_refuse_hears_why(qtbot, make_model):
    model = make_model()
    answers = []
    model.loader.load_for_provider("ftp://127.0.0.1/a.png", model.loader.spec,
                                   lambda thumbnail, error: answers.append((thumbnail, error)))
    assert len(answers) == 1
    thumbnail, error = answers[0]
    assert thumbnail is None and "ftp" in error, error


def test_a_response_completed_from_another_thread_finishes_on_its_own_thread(qtbot):
    """Qt's pixmap reader thread owns a response: it connects to `finished`, checks whether it
    came already and deletes the response once it has. Emitted from the GUI thread, `finished`
    could come between that connect and that check, or the response be deleted mid-emission."""
    import threading

    from PyQt5.QtCore import QThread, Qt

    from imagegallery.provider import ThumbnailResponse

    response = ThumbnailResponse()  # made here: this (the test's) thread is its own
    finished_on = []
    response.finished.connect(lambda: finished_on.append(QThread.currentThread()),
                              Qt.DirectConnection)
    completer = threading.Thread(target=lambda: response.complete(None, "gone"))
    completer.start()
    completer.join()
    qtbot.waitUntil(lambda: bool(finished_on), timeout=5000)
    assert finished_on == [response.thread()]
    response.cancel()  # after completion: finishes no second time (cancel emits at once)
    assert len(finished_on) == 1
    assert response.errorString() == "gone"


def test_an_image_asking_for_a_size_no_longer_made_shows_nothing_not_an_error(
        qtbot, engine, image_server, make_model):
    """The thumbnail size changed while a tile's Image asked for an evicted thumbnail: its row
    gives it a source of the new size next. Answered with an error, the tile showed its error
    face meanwhile and QML warned ("QML Image: thumbnail size changed"), once per tile."""
    from imagegallery.model import EVICTED_PROVIDER_NAME

    model = loaded_model(qtbot, make_model, image_server, "/red.png", "#ff0000")
    source = model.data(model.index(0), ImageGalleryModel.SourceRole)
    source_id, _, rest = source.split("/", 3)[-1].partition("/")
    stale = f"image://{EVICTED_PROVIDER_NAME}/{source_id}/64x64/{rest.split('/', 1)[1]}"
    item = make_image_item(engine)
    item.setProperty("source", stale)
    qtbot.waitUntil(lambda: item.property("status") != 2, timeout=5000)  # no longer Loading
    assert item.property("status") == 1  # Ready, with nothing to draw
