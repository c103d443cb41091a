"""The image provider: QML shows the model's thumbnails, and an evicted one comes back."""
import pytest
from PyQt5.QtCore import QUrl
from PyQt5.QtQml import QQmlComponent, QQmlEngine

import imagegallery
from imagegallery.cache import shared_thumbnail_cache
from imagegallery.model import ImageGalleryModel
from imaging import center_color, close_to, solid_image_bytes

QML = b"""
import QtQuick 2.15
Image { asynchronous: true; cache: false }
"""


@pytest.fixture
def engine(qtbot):
    engine = QQmlEngine()
    imagegallery.install(engine)
    yield engine
    engine.clearComponentCache()


def make_image_item(engine):
    component = QQmlComponent(engine)
    component.setData(QML, QUrl("inline.qml"))
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
        answers = []
        model.loader.load_for_provider(str(picture), model.loader.spec,
                                       lambda thumbnail, error: answers.append((thumbnail, error)))
        qtbot.waitUntil(lambda: len(answers) == 1, timeout=10000)
        thumbnail, error = answers[0]
        assert error == "" and close_to(center_color(thumbnail.image), "#00ff00")
    finally:
        model.loader.close()
