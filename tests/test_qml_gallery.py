"""The ImageGallery QML component in a real engine, against the tests' own HTTP server.

Everything is found through objectNames and checked through signals, model state and the
pixels of a rendered window.
"""
import math
import os
import re

import pytest
import pytestqt.exceptions
from PyQt5 import sip
from PyQt5.QtCore import (QMetaObject, QObject, QPoint, QPointF, QSize, Qt, Q_ARG, Q_RETURN_ARG,
                          QVariant)
from PyQt5.QtGui import QColor
from PyQt5.QtQml import QQmlApplicationEngine, QQmlIncubationController
from PyQt5.QtTest import QTest

import imagegallery
from imagegallery.app import cell_tile, gallery_cells, grab_window, image_buttons, tiles_settled
from imagegallery.model import ImageGalleryModel
from imaging import close_to, png_claiming_size, serve_solid_images, solid_image_bytes

COLORS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff", "#ff00ff"]

GALLERY_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    id: root
    width: 580
    height: 420
    visible: true
    color: Theme.window

    property var urls: []
    readonly property var galleryModel: gallery.galleryModel
    readonly property color tileColor: Theme.tile

    function setTheme(name) { Theme.name = name }

    ImageGallery {
        id: gallery
        objectName: "gallery"
        anchors.fill: parent
        urls: root.urls
        Component.onCompleted: {
            galleryModel.thumbnailSize = Qt.size(120, 80)
            forceActiveFocus()
        }
        // `urls` creates the model after completion; size it as soon as it exists.
        onGalleryModelChanged: if (galleryModel) galleryModel.thumbnailSize = Qt.size(120, 80)
    }
}
"""

MODEL_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    id: root
    width: 580
    height: 420
    visible: true

    property var albumA: []
    property var albumB: []
    property bool showB: false
    readonly property var photos: photos

    function switchAlbum() { showB = !showB }

    ImageGalleryModel {
        id: photos
        thumbnailSize: Qt.size(120, 80)
        urls: root.showB ? root.albumB : root.albumA
    }

    ImageGallery {
        objectName: "gallery"
        anchors.fill: parent
        model: photos
    }
}
"""

PAGE_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    id: root
    width: 580
    height: 420
    visible: true

    property var urls: []
    property bool pageShown: true

    Loader {
        anchors.fill: parent
        active: root.pageShown
        sourceComponent: ImageGallery { objectName: "gallery"; urls: root.urls }
    }
}
"""


class Scene:
    """One engine with one window loaded from QML text; closed and freed after the test."""

    def __init__(self, qtbot, tmp_path, source, **initial):
        self.qtbot = qtbot
        self.engine = QQmlApplicationEngine()
        imagegallery.install(self.engine)
        self.warnings = []
        self.engine.warnings.connect(lambda ws: self.warnings.extend(w.toString() for w in ws))
        path = tmp_path / "Scene.qml"
        path.write_text(source)
        if initial:
            self.engine.setInitialProperties(initial)
        self.engine.load(str(path))
        assert self.engine.rootObjects(), self.warnings
        self.window = self.engine.rootObjects()[0]
        self.gallery = self.window.findChild(QObject, "gallery")
        self.window.requestActivate()
        qtbot.waitUntil(self.window.isExposed, timeout=5000)

    def selected(self):
        value = self.gallery.property("selectedUrls")
        return value.toVariant() if hasattr(value, "toVariant") else value

    def model(self):
        if self.gallery is None:  # a scene of a view of its own: its one model
            return self.window.findChild(ImageGalleryModel)
        return self.gallery.property("galleryModel")

    def close(self):
        model = self.model()
        if model is not None:
            model.loader.close()
        self.window.close()
        imagegallery.delete_engine(self.engine)  # sip.delete holds the GIL: a hang mid-load
        assert not self.warnings, self.warnings

    def tile(self, index):
        for tile in image_buttons(self.window):
            if tile.property("index") == index and tile.isVisible():
                return tile
        raise AssertionError(f"no tile for row {index}")

    def tile_center(self, index) -> QPoint:
        tile = self.tile(index)
        point = tile.mapToScene(QPointF(tile.width() / 2, tile.height() / 2))
        return point.toPoint()

    def settle(self):
        model = self.model()
        self.qtbot.waitUntil(lambda: model.count > 0 and model.pendingCount == 0, timeout=10000)
        self.qtbot.waitUntil(lambda: tiles_settled(self.window), timeout=10000)

    def grab(self):
        with self.qtbot.waitSignal(self.window.frameSwapped, timeout=5000):
            self.window.update()
        return grab_window(self.window)


@pytest.fixture
def scene_factory(qtbot, tmp_path):
    scenes = []

    def make(source=GALLERY_QML, **initial):
        scene = Scene(qtbot, tmp_path, source, **initial)
        scenes.append(scene)
        return scene

    yield make
    for scene in scenes:
        scene.close()


def serve(server, colors=COLORS, size=(320, 200)):
    return serve_solid_images(server, colors, *size)


def test_a_new_views_first_cells_come_without_the_buffer_rows(qtbot, scene_factory, image_server):
    # Built in the same turn as the cells on screen, the two buffer rows made the GUI thread's
    # longest gap of a load longer; they follow a frame later.
    urls = [image_server.url(f"/missing/{index}.png") for index in range(80)]
    scene = scene_factory()
    gallery, window = scene.gallery, scene.window
    cells_per_frame = []
    window.frameSwapped.connect(lambda: cells_per_frame.append(len(gallery_cells(window))))
    window.setProperty("urls", urls)
    columns, cell_height = gallery.property("columns"), gallery.property("cellHeight")
    rows_on_screen = math.ceil(gallery.height() / cell_height)
    qtbot.waitUntil(lambda: bool(cells_per_frame) and cells_per_frame[-1] >= columns * (rows_on_screen + 2),
                    timeout=5000)
    first = next(count for count in cells_per_frame if count)
    assert first < columns * (rows_on_screen + 1)  # the screen's rows, no buffer row
    assert gallery.property("cacheBuffer") == 2 * cell_height


def test_a_new_lists_tiles_are_made_after_its_first_frame(qtbot, scene_factory, image_server):
    # A screen of tiles made in one turn was the GUI thread's longest gap of a load (each tile
    # reads its roles through Python) and held up the first replies. The first frame has the
    # bare cells; the tiles are made between the frames that follow, and then show every image.
    urls = serve(image_server)
    scene = scene_factory()
    window = scene.window
    frames = []
    window.frameSwapped.connect(
        lambda: frames.append((len(gallery_cells(window)), len(image_buttons(window)))))
    window.setProperty("urls", urls)
    scene.settle()
    first_cells, first_tiles = next(frame for frame in frames if any(frame))
    assert first_cells > 0 and first_tiles == 0
    assert len(image_buttons(window)) == len(gallery_cells(window)) == len(urls)
    image = scene.grab()
    for index, color in enumerate(COLORS):
        assert close_to(QColor(image.pixel(scene.tile_center(index))), color), index


class HeldIncubation(QQmlIncubationController):
    """Makes asynchronous objects only when the test says, a few milliseconds' worth at a time."""


@pytest.fixture
def held_scene(qtbot, tmp_path):
    """A gallery window whose engine makes asynchronous objects (the tiles) only when the test
    calls `incubateFor` on the returned controller."""
    engine = QQmlApplicationEngine()
    incubation = HeldIncubation()
    engine.setIncubationController(incubation)  # the window keeps an engine's own controller
    imagegallery.install(engine)
    path = tmp_path / "Scene.qml"
    path.write_text(GALLERY_QML)
    engine.load(str(path))
    window = engine.rootObjects()[0]
    qtbot.waitUntil(window.isExposed, timeout=5000)
    yield window, incubation
    model = window.property("galleryModel")
    if model is not None:
        model.loader.close()
    window.close()
    imagegallery.delete_engine(engine)


def make_every_tile(qtbot, window, incubation):
    def made_all():
        incubation.incubateFor(5)
        return (incubation.incubatingObjectCount() == 0
                and all(cell_tile(cell) is not None for cell in gallery_cells(window)))

    qtbot.waitUntil(made_all, timeout=5000)


def test_thumbnails_larger_than_the_memory_cache_show_without_reloading_for_ever(
        qtbot, scene_factory, image_server):
    from imagegallery.cache import shared_thumbnail_cache

    thumbnails = shared_thumbnail_cache()
    budget = thumbnails.budget_bytes
    thumbnails.set_budget(20_000)  # under one 120x80 thumbnail (37.5 KB): none is kept
    try:
        colors = COLORS[:3]
        scene = scene_factory(urls=serve(image_server, colors))
        scene.settle()
        image = scene.grab()
        for index, color in enumerate(colors):
            assert close_to(QColor(image.pixel(scene.tile_center(index))), color), index
        # Each new thumbnail made the tile ask the provider again, which loaded it again from
        # the disk and announced it again: 833 reloads in 3 s.
        with qtbot.assertNotEmitted(scene.model().loader.thumbnailReady, wait=500):
            pass
    finally:
        thumbnails.set_budget(budget)


def test_a_new_lists_tiles_are_made_top_row_first(qtbot, held_scene, image_server):
    # Qt makes asynchronous objects newest first: tiles started as their cells were made came
    # bottom row first, and the first rows' thumbnails, often the first to arrive, waited
    # 20-50 ms for their tiles.
    window, incubation = held_scene
    window.setProperty("urls", [image_server.url(f"/missing/{index}.png") for index in range(80)])
    qtbot.waitUntil(lambda: len(gallery_cells(window)) > 0 and incubation.incubatingObjectCount() > 0,
                    timeout=5000)
    cells = len(gallery_cells(window))

    def made_some():
        incubation.incubateFor(1)
        return bool(image_buttons(window))

    qtbot.waitUntil(made_some, timeout=5000)
    # By the cells' rows: a tile cut off mid-making by the 1 ms slice is in the tree already,
    # its index still unset (0): it read [0, 0] once in 24 runs.
    made = sorted(cell.property("index") for cell in gallery_cells(window)
                  if cell_tile(cell) is not None)
    assert made == list(range(len(made))) and len(made) < cells
    make_every_tile(qtbot, window, incubation)  # and the buffer rows', made a frame later
    made = sorted(cell_tile(cell).property("index") for cell in gallery_cells(window))
    assert made == list(range(len(made))) and len(made) > cells


def test_a_cell_shows_the_tiles_colour_while_its_tile_is_being_made(qtbot, held_scene, image_server):
    window, incubation = held_scene
    window.setProperty("urls", [image_server.url(f"/missing/{index}.png") for index in range(8)])
    qtbot.waitUntil(lambda: len(gallery_cells(window)) == 8, timeout=5000)
    cells = gallery_cells(window)
    assert all(cell_tile(cell) is None for cell in cells)  # nothing made: incubation is held
    # The dark theme: the light one's tile and window colours differ by less than close_to sees.
    QMetaObject.invokeMethod(window, "setTheme", Q_ARG(QVariant, "dark"))
    tile_color, window_color = window.property("tileColor").name(), window.property("color").name()
    image = grab_window(window)
    for cell in cells:
        center = QColor(image.pixel(cell.mapToScene(QPointF(cell.width() / 2, cell.height() / 2)).toPoint()))
        assert close_to(center, tile_color) and not close_to(center, window_color), cell.property("index")


def test_tiles_scrolled_back_into_view_show_their_thumbnails_as_they_are_made(
        qtbot, held_scene, image_server):
    # Thumbnails in memory come from a synchronous provider. Through the asynchronous one, a
    # tile scrolled back showed its placeholder until the answer came back through Qt's pixmap
    # reader thread and the GUI thread's queue. The view first scrolls through more rows than
    # Qt's own 2 MB cache of pixmaps no longer shown holds, so the first rows' thumbnails come
    # from the provider again.
    window, incubation = held_scene
    colors = [COLORS[index % len(COLORS)] for index in range(240)]
    window.setProperty("urls", serve(image_server, colors))
    model = window.property("galleryModel")
    qtbot.waitUntil(lambda: model.count > 0 and model.pendingCount == 0, timeout=10000)
    gallery = window.findChild(QObject, "gallery")
    for first in range(0, len(colors), 12):
        QMetaObject.invokeMethod(gallery, "positionViewAtIndex", Q_ARG(int, first), Q_ARG(int, 1))
        make_every_tile(qtbot, window, incubation)
        qtbot.waitUntil(lambda: tiles_settled(window), timeout=10000)
    QMetaObject.invokeMethod(gallery, "positionViewAtBeginning")
    # From here no event is handled: what an answer through the event queue would bring
    # cannot arrive. The cells made by the jump start their tiles now, and the tiles are made.
    QMetaObject.invokeMethod(gallery, "_startTiles")
    for _ in range(1000):  # a bound, never a hang: a few rounds make them all
        if not incubation.incubatingObjectCount():
            break
        incubation.incubateFor(5)
    tiles = [cell_tile(cell) for cell in gallery_cells(window)]
    assert tiles and all(tile is not None and tile.property("ready") for tile in tiles)
    image = grab_window(window)
    for tile in tiles:
        center = tile.mapToScene(QPointF(tile.width() / 2, tile.height() / 2)).toPoint()
        if 0 <= center.y() < window.height():
            assert close_to(QColor(image.pixel(center)), colors[tile.property("index")])


def test_urls_set_from_qml_create_a_model_that_loads_them(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    model = scene.model()
    assert model.urls == urls
    assert model.loadedCount == len(urls) and model.failedCount == 0
    assert scene.gallery.property("count") == len(urls)


def test_each_known_colour_is_drawn_in_its_own_tile(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    image = scene.grab()
    positions = set()
    for index, color in enumerate(COLORS):
        center = scene.tile_center(index)
        positions.add((center.x(), center.y()))
        actual = QColor(image.pixel(center))
        assert close_to(actual, color), f"tile {index}: {actual.name()} != {color}"
    assert len(positions) == len(COLORS)


def test_clicks_emit_image_clicked_and_select(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    with qtbot.waitSignal(scene.gallery.imageClicked, timeout=3000) as clicked:
        QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(2))
    assert clicked.args == [2, urls[2]]
    assert scene.gallery.property("currentIndex") == 2
    assert scene.selected() == [urls[2]]


def test_each_tile_says_when_it_shows_its_thumbnail(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory()
    shown = []
    scene.gallery.thumbnailShown.connect(lambda index, url: shown.append((index, url)))
    scene.window.setProperty("urls", urls)
    scene.settle()
    assert sorted(shown) == list(enumerate(urls))
    image = scene.grab()
    for index, color in enumerate(COLORS):
        assert close_to(QColor(image.pixel(scene.tile_center(index))), color), index


def test_a_reused_tile_says_when_it_shows_another_rows_thumbnail(qtbot, scene_factory, image_server):
    # Thumbnails in memory load synchronously: a reused tile goes from one Ready picture to the
    # next with its `ready` true throughout.
    colors = [COLORS[index % len(COLORS)] for index in range(120)]
    urls = serve(image_server, colors)
    scene = scene_factory(urls=urls)
    model = scene.model()
    qtbot.waitUntil(lambda: model.count > 0 and model.loadedCount == len(urls), timeout=20000)
    shown = []
    scene.gallery.thumbnailShown.connect(lambda index, url: shown.append((index, url)))
    for first in (40, 80):
        del shown[:]
        QMetaObject.invokeMethod(scene.gallery, "positionViewAtIndex", Q_ARG(int, first), Q_ARG(int, 1))
        qtbot.waitUntil(lambda: tiles_settled(scene.window), timeout=10000)
        on_screen = {tile.property("index") for tile in image_buttons(scene.window)
                     if tile.isVisible() and 0 <= tile.mapToScene(QPointF(0, 0)).y() < scene.window.height()}
        assert first in on_screen
        qtbot.waitUntil(lambda: on_screen <= {index for index, _ in shown}, timeout=5000)
        assert all(url == urls[index] for index, url in shown), shown


def test_double_click_activates(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    with qtbot.waitSignal(scene.gallery.imageActivated, timeout=3000) as activated:
        QTest.mouseDClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(4))
    assert activated.args == [4, urls[4]]


def test_r_retries_the_current_tile_when_it_failed(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS[:2]) + [image_server.url("/late.png")]
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery, window = scene.gallery, scene.window
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    model = scene.model()
    first_row_statuses = []
    model.dataChanged.connect(
        lambda top, bottom, roles: top.row() == 0 and first_row_statuses.append(model.status_of(0)))
    QTest.keyClick(window, Qt.Key_R)  # the current tile (0) loaded: nothing to retry
    image_server.add("/late.png", solid_image_bytes("#00ff00"))
    gallery.setProperty("currentIndex", 2)
    QTest.keyClick(window, Qt.Key_R)
    qtbot.waitUntil(lambda: model.status_of(2) == ImageGalleryModel.Status.Ready, timeout=5000)
    assert image_server.hits["/late.png"] == 2
    # A retry of row 0 would have left before row 2's, and made its row Loading at once.
    assert image_server.hits["/0.png"] == 1 and first_row_statuses == []


def test_keys_move_and_activate(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS * 3)  # 18 rows, 4 columns at this width
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery, window = scene.gallery, scene.window
    columns = gallery.property("columns")
    assert columns == 4
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)

    def press(key):
        QTest.keyClick(window, key)
        return gallery.property("currentIndex")

    assert press(Qt.Key_Right) == 1
    assert press(Qt.Key_Down) == 1 + columns
    assert press(Qt.Key_Left) == columns
    assert press(Qt.Key_Up) == 0
    assert press(Qt.Key_Up) == 0  # an edge: stays
    assert press(Qt.Key_End) == len(urls) - 1
    assert press(Qt.Key_Home) == 0
    page = press(Qt.Key_PageDown)
    assert page > columns and page % columns == 0
    assert press(Qt.Key_PageUp) == 0
    press(Qt.Key_Right)
    with qtbot.waitSignal(gallery.imageActivated, timeout=3000) as activated:
        QTest.keyClick(window, Qt.Key_Return)
    assert activated.args == [1, urls[1]]
    press(Qt.Key_Right)
    with qtbot.waitSignal(gallery.imageActivated, timeout=3000) as activated:
        QTest.keyClick(window, Qt.Key_Space)
    assert activated.args == [2, urls[2]]
    # Selection follows the current tile in single mode.
    assert scene.selected() == [urls[2]]
    # The current tile shows the focus ring.
    assert scene.tile(2).property("showFocus") is True

    gallery.setProperty("currentIndex", -1)  # a host cleared it: any move starts at the first
    for key in (Qt.Key_Down, Qt.Key_Left, Qt.Key_PageDown):
        gallery.setProperty("currentIndex", -1)
        assert press(key) == 0, key
        assert scene.selected() == [urls[0]]


def test_a_move_with_no_current_tile_starts_on_screen_not_at_the_top(qtbot, scene_factory,
                                                                      image_server):
    urls = serve(image_server, COLORS * 10)  # 60 rows: 15 lines, three screens
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery = scene.gallery
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    QMetaObject.invokeMethod(gallery, "positionViewAtEnd")
    scrolled_to = gallery.property("contentY")
    gallery.setProperty("currentIndex", -1)
    QTest.keyClick(scene.window, Qt.Key_Down)
    assert gallery.property("currentIndex") >= 4 * gallery.property("columns")
    assert gallery.property("contentY") >= scrolled_to - gallery.property("cellHeight")


def test_multi_selection_toggles_and_none_selects_nothing(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery, window = scene.gallery, scene.window
    gallery.setProperty("selectionMode", "multi")
    for index in (0, 3, 5, 0):
        QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(index))
    assert scene.selected() == [urls[3], urls[5]]
    assert scene.tile(3).property("selected") is True and scene.tile(0).property("selected") is False

    def is_selected(index):
        return QMetaObject.invokeMethod(gallery, "isSelected", Q_RETURN_ARG(QVariant),
                                        Q_ARG(QVariant, index))

    assert (is_selected(3), is_selected(0), is_selected(99)) == (True, False, False)
    QTest.keyClick(window, Qt.Key_Space)  # current is 0: Space toggles it in multi mode
    assert scene.selected() == [urls[3], urls[5], urls[0]]

    gallery.setProperty("selectedUrls", [])
    gallery.setProperty("selectionMode", "none")
    with qtbot.waitSignal(gallery.imageClicked, timeout=3000):
        QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(1))
    assert scene.selected() == []


def test_a_double_click_in_multi_mode_leaves_the_tile_selected(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery, window = scene.gallery, scene.window
    gallery.setProperty("selectionMode", "multi")
    for index in (0, 1):
        QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(index))
    assert scene.selected() == [urls[0], urls[1]]
    for index in (0, 4):  # one already selected, one not
        with qtbot.waitSignal(gallery.imageActivated, timeout=3000) as activated:
            QTest.mouseDClick(window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(index))
        assert activated.args == [index, urls[index]]
    assert sorted(scene.selected()) == sorted([urls[0], urls[1], urls[4]])


def test_selections_of_rows_that_went_away_are_dropped(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(MODEL_QML, albumA=urls[:3], albumB=urls[2:6])
    scene.settle()
    gallery = scene.gallery
    gallery.setProperty("selectionMode", "multi")
    gallery.setProperty("selectedUrls", [urls[0], urls[2]])
    QMetaObject.invokeMethod(scene.window, "switchAlbum")  # urls[0] is not in the new list
    assert scene.selected() == [urls[2]]
    # All of a list selected is those URLs, not whatever the list holds later.
    QMetaObject.invokeMethod(gallery, "selectAll")
    assert scene.selected() == urls[2:6]
    QMetaObject.invokeMethod(scene.window, "switchAlbum")
    assert scene.selected() == [urls[2]]
    # Settled before the teardown deletes the engine at once: deleting it while the tiles'
    # asynchronous Loaders still incubate crashes inside Qt (a teardown hazard, not the app's,
    # which deletes its engine with deleteLater as it quits).
    scene.settle()


TWO_MODELS_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    id: root
    width: 580
    height: 420
    visible: true

    property var albumA: []
    property var albumB: []
    property string shown: "a"

    ImageGalleryModel { id: a; urls: root.albumA; thumbnailSize: Qt.size(120, 80) }
    ImageGalleryModel { id: b; urls: root.albumB; thumbnailSize: Qt.size(120, 80) }

    ImageGallery {
        objectName: "gallery"
        anchors.fill: parent
        selectionMode: "multi"
        model: root.shown === "a" ? a : root.shown === "b" ? b : null
    }
}
"""


def test_selections_do_not_follow_the_view_to_another_model(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(TWO_MODELS_QML, albumA=urls[:3], albumB=urls[3:6])
    scene.settle()
    QMetaObject.invokeMethod(scene.gallery, "selectAll")
    assert scene.selected() == urls[:3]
    scene.window.setProperty("shown", "b")  # a picker showing B returned A's images
    assert scene.selected() == []
    QMetaObject.invokeMethod(scene.gallery, "selectAll")
    scene.window.setProperty("shown", "")  # no model at all
    assert scene.selected() == []
    scene.window.setProperty("shown", "b")
    scene.settle()  # tiles made before the teardown deletes the engine


def test_url_list_changed_in_qml_reaches_the_model(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(MODEL_QML, albumA=urls[:3], albumB=urls[2:6])
    model = scene.window.property("photos")
    scene.settle()
    assert model.urls == urls[:3]
    hits = image_server.total_hits()
    QMetaObject.invokeMethod(scene.window, "switchAlbum")
    assert model.urls == urls[2:6]
    scene.settle()
    assert model.loadedCount == 4
    assert image_server.total_hits() - hits == 3  # urls[2] stayed; only the new ones were fetched


def test_the_view_reports_visible_rows_so_they_load_first(qtbot, scene_factory, image_server):
    body = solid_image_bytes("#808080", 64, 40)
    urls = [image_server.add(f"/r{i}.png", body) for i in range(200)]
    scene = scene_factory(MODEL_QML, albumA=[], albumB=[])
    model = scene.window.property("photos")
    # Only what the view says is on screen loads: proof that it says so.
    model.prefetchRows = 0
    model.loadPolicy = model.LoadPolicy.LoadVisible
    scene.window.setProperty("albumA", urls)
    qtbot.waitUntil(lambda: model.loadedCount > 0 and not model.busy, timeout=10000)
    first_screen = set(image_server.hits)
    assert "/r0.png" in first_screen and len(first_screen) < 40
    assert "/r199.png" not in first_screen

    # Queued, as the README says a host should move the view (setProperty keeps the GIL while
    # the view loads images, which can deadlock against the provider).
    QMetaObject.invokeMethod(scene.gallery, "positionViewAtEnd", Qt.QueuedConnection)
    qtbot.waitUntil(lambda: image_server.hits["/r199.png"] == 1, timeout=10000)
    assert image_server.hits["/r100.png"] == 0


def test_a_narrower_thumbnail_loads_the_columns_it_adds(qtbot, scene_factory, image_server):
    from PyQt5.QtCore import QSize

    body = solid_image_bytes("#2060a0", 64, 40)
    urls = [image_server.add(f"/n{index}.png", body) for index in range(300)]
    scene = scene_factory(MODEL_QML, albumA=[], albumB=[])
    model, gallery = scene.window.property("photos"), scene.gallery
    model.prefetchRows = 0
    model.loadPolicy = model.LoadPolicy.LoadVisible  # only what the view says is on screen
    scene.window.setProperty("albumA", urls)

    def screen_loaded():
        rows = int(gallery.property("height") // gallery.property("cellHeight"))
        return model.loadedCount >= gallery.property("columns") * rows and not model.busy

    qtbot.waitUntil(screen_loaded, timeout=10000)
    columns = gallery.property("columns")
    model.thumbnailSize = QSize(40, 80)  # the same height: more columns, the same rows
    assert gallery.property("columns") > columns
    # The view said nothing: its rows and height had not changed, so the new columns' rows
    # stayed unrequested, their tiles on the placeholder for ever.
    qtbot.waitUntil(screen_loaded, timeout=10000)


def test_cells_dropped_while_their_tiles_are_made_say_nothing(qtbot, qtlog, scene_factory,
                                                               image_server):
    from PyQt5.QtCore import QSize

    body = solid_image_bytes("#2060a0", 64, 40)
    scene = scene_factory(urls=[image_server.add(f"/i{index}.png", body) for index in range(200)])
    scene.settle()
    model, window = scene.model(), scene.window
    # Frames counted by one connection, not a waitSignal per step: in one of many runs
    # pytest-qt's blocker of an earlier step stopped its timer after deleting it.
    frames = []
    window.frameSwapped.connect(lambda: frames.append(1))
    for step in range(20):  # each change drops cells whose tiles the last one began to make
        width = 60 + (step * 37) % 160
        model.thumbnailSize = QSize(width, width * 2 // 3)
        seen = len(frames)
        window.update()
        qtbot.waitUntil(lambda: len(frames) > seen, timeout=5000)
    scene.settle()
    assert not [r.message for r in qtlog.records if "during incubation" in r.message]


def test_theme_swap_restyles_without_new_requests(qtbot, scene_factory, image_server):
    urls = serve(image_server)
    scene = scene_factory(urls=urls)
    scene.settle()
    hits = image_server.total_hits()
    window = scene.window
    corner = QPoint(window.width() - 3, window.height() - 3)  # below the last row: background
    tile = scene.tile(0)
    face = tile.mapToScene(QPointF(4, tile.height() / 2)).toPoint()  # the tile, beside the image
    before = scene.grab()
    assert close_to(QColor(before.pixel(corner)), "#f4f5f7")
    assert close_to(QColor(before.pixel(face)), "#ffffff")

    QMetaObject.invokeMethod(window, "setTheme", Q_ARG(QVariant, "dark"))
    after = scene.grab()
    assert close_to(QColor(after.pixel(corner)), "#16181d")
    assert close_to(QColor(after.pixel(face)), "#23262e")
    for index, color in enumerate(COLORS):
        assert close_to(QColor(after.pixel(scene.tile_center(index))), color)
    assert image_server.total_hits() == hits
    assert scene.model().loadedCount == len(urls)


def test_error_tile_shows_reason_and_retry_reloads(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS[:2]) + [image_server.url("/later.png")]
    scene = scene_factory(urls=urls)
    scene.settle()
    tile = scene.tile(2)
    assert tile.property("status") == 3
    assert tile.property("errorString") == "HTTP 404 Not Found"
    assert tile.property("statusText") == "failed: HTTP 404 Not Found"  # read as Accessible.name
    retry = tile.findChild(QObject, "retryButton")
    assert retry.property("visible")
    image_server.add("/later.png", solid_image_bytes("#00ff00"))
    center = retry.mapToScene(QPointF(retry.width() / 2, retry.height() / 2)).toPoint()
    QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, center)
    qtbot.waitUntil(lambda: scene.model().loadedCount == 3, timeout=10000)
    assert scene.selected() == []  # Retry did not also click the tile


def test_a_failure_retry_cannot_change_offers_no_retry_and_a_servers_failure_does(
        qtbot, scene_factory, image_server, tmp_path):
    # A malformed URL, a scheme not allowed, an SVG, a body over maxResponseBytes or an image
    # over maxImagePixels fails the same way on every retry: this client's rules decide it, so
    # a Retry button there only asked the server again for the same answer. A 404 or a 500 is
    # the server's to change.
    local = tmp_path / "local.png"
    local.write_bytes(solid_image_bytes("#00ff00"))
    svg = image_server.add("/drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                                           b'height="10"><rect width="10" height="10"/></svg>',
                           "image/svg+xml")

    def two_hundred_megabytes(request):
        request.send_response(200)
        request.send_header("Content-Type", "image/png")
        request.send_header("Content-Length", str(200 * 1024 * 1024))
        request.end_headers()
        request.wfile.write(b"\x89PNG\r\n\x1a\n")

    too_large = image_server.add_handler("/huge.png", two_hundred_megabytes)
    too_many_pixels = image_server.add("/wide.png", png_claiming_size(20000, 20000))
    server_error = image_server.add("/broken.png", b"down", "text/plain", status=500)
    urls = serve(image_server, COLORS[:1]) + ["http://[::1", "smb://host/share/a.png",
                                              image_server.url("/missing.png"), local.as_uri(),
                                              svg, too_large, too_many_pixels, server_error]
    scene = scene_factory(urls=urls)
    scene.settle()
    model = scene.model()

    def offers_retry(row):
        tile = scene.tile(row)
        assert tile.property("status") == ImageGalleryModel.Status.Error, row
        assert model.get(row)["retryable"] is tile.property("retryable"), row
        assert tile.findChild(QObject, "retryButton").property("visible") \
            is tile.property("retryable"), row
        return tile.property("retryable")

    reasons = [model.get(row)["errorString"] for row in (5, 6, 7, 8)]
    assert reasons[0] == "SVG is not shown (it can reference other files)"
    assert reasons[1].startswith("too large (200 MB"), reasons[1]
    assert reasons[2].startswith("image too large (20000x20000"), reasons[2]
    assert reasons[3].startswith("HTTP 500"), reasons[3]
    assert [offers_retry(row) for row in (1, 2, 3, 5, 6, 7, 8)] == \
        [False, False, True, False, False, False, True]
    assert model.get(0)["retryable"] is True  # a loaded row could be reloaded

    model.setProperty("allowedSchemes", ["http", "https"])  # the file row is refused now ...
    qtbot.waitUntil(lambda: scene.tile(4).property("status") == ImageGalleryModel.Status.Error,
                    timeout=5000)
    assert offers_retry(4) is False
    model.setProperty("allowedSchemes", ["http", "https", "file"])  # ... and admitted again
    qtbot.waitUntil(lambda: scene.tile(4).property("ready"), timeout=5000)
    assert model.get(4)["retryable"] is True


def test_a_picture_smaller_than_its_box_is_shown_at_its_own_size(qtbot, scene_factory,
                                                                   image_server):
    # The decoder never upscales; the tile's Image filled the 120x80 box anyway, blowing a
    # 30x20 picture up four times into a blur.
    urls = [image_server.add("/small.png", solid_image_bytes("#ff0000", 30, 20)),
            image_server.add("/large.png", solid_image_bytes("#0000ff", 600, 400))]
    scene = scene_factory(urls=urls)
    scene.settle()
    def sizes():
        return [(round(item.width()), round(item.height()))
                for item in (scene.tile(row).findChild(QObject, "thumbnail") for row in (0, 1))]

    assert sizes() == [(30, 20), (120, 80)]
    picture = scene.grab()
    center = scene.tile_center(0)
    assert close_to(QColor(picture.pixel(center)), "#ff0000")
    for dx, dy in ((25, 0), (-25, 0), (0, 16), (0, -16)):  # inside the box, outside the picture
        assert not close_to(QColor(picture.pixel(center + QPoint(dx, dy))), "#ff0000"), (dx, dy)
    # A new size: the small picture comes back as it was, 30x20, and Image then says no
    # sourceSizeChanged. Sized while it loaded (0x0), it stayed empty.
    scene.model().thumbnailSize = QSize(150, 100)
    qtbot.waitUntil(lambda: sizes() == [(30, 20), (150, 100)], timeout=5000)


def test_the_docs_strip_of_image_buttons_shows_thumbnails_at_the_size_they_were_made(
        qtbot, scene_factory, image_server):
    # Its 130x90 tiles drew 120x80 thumbnails in 118x78 boxes, scaled again, soft; and with no
    # devicePixelRatio bound, half the pixels at a ratio of 2.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(f"{root}/docs/app.md", encoding="utf-8") as handle:
        [snippet] = [block for block in re.findall(r"```qml\n(.*?)```", handle.read(), re.S)
                     if "delegate: ImageButton" in block]
    imports = [line for line in snippet.splitlines() if line.startswith("import ")]
    body = "\n".join(line for line in snippet.splitlines() if not line.startswith("import "))
    scene = scene_factory("\n".join(imports)
                          + "\nWindow { width: 600; height: 200; visible: true\n" + body + "\n}\n")
    model = scene.model()
    assert model.devicePixelRatio == scene.window.screen().devicePixelRatio()
    model.urls = serve(image_server, size=(600, 400))
    qtbot.waitUntil(lambda: model.loadedCount == model.count and all(
        tile.property("ready") for tile in image_buttons(scene.window)), timeout=10000)
    pictures = [tile.findChild(QObject, "thumbnail") for tile in image_buttons(scene.window)]
    assert pictures and {(picture.width(), picture.height()) for picture in pictures} == {(120, 80)}


def test_the_example_app_compiles(qtbot, tmp_path):
    """examples/PhotoPicker.qml uses only the module's public types (compiled, not run: it
    points at public URLs)."""
    from PyQt5.QtCore import QUrl
    from PyQt5.QtQml import QQmlComponent, QQmlEngine

    engine = QQmlEngine()
    imagegallery.install(engine)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    component = QQmlComponent(engine, QUrl.fromLocalFile(f"{root}/examples/PhotoPicker.qml"))
    qtbot.waitUntil(lambda: component.status() != QQmlComponent.Loading, timeout=5000)
    assert component.status() == QQmlComponent.Ready, [e.toString() for e in component.errors()]
    sip.delete(component)
    imagegallery.delete_engine(engine)


def test_an_apps_own_main_qml_is_not_shadowed_by_the_module(qtbot, tmp_path):
    """The module exported the app's window as `Main`, and an explicit import wins over the
    app's own folder: an app's Main {} opened ImageGallery's window instead."""
    from PyQt5.QtCore import QUrl
    from PyQt5.QtQml import QQmlComponent, QQmlEngine

    (tmp_path / "Main.qml").write_text('import QtQuick 2.15\nItem { objectName: "appsOwnMain" }\n')
    (tmp_path / "App.qml").write_text(
        "import QtQuick 2.15\nimport ImageGallery 1.0\nItem { Main {} }\n")
    engine = QQmlEngine()
    imagegallery.install(engine)
    component = QQmlComponent(engine, QUrl.fromLocalFile(str(tmp_path / "App.qml")))
    qtbot.waitUntil(lambda: component.status() != QQmlComponent.Loading, timeout=5000)
    app = component.create()
    try:
        assert app is not None, [e.toString() for e in component.errors()]
        assert [child.objectName() for child in app.childItems()] == ["appsOwnMain"]
    finally:
        sip.delete(app)
        sip.delete(component)
        imagegallery.delete_engine(engine)


def hover(scene, index):
    """The pointer onto row `index`'s tile, from off it: Qt sends no move to where the last
    test's pointer already was, and the tile then never hears it is hovered."""
    QTest.mouseMove(scene.window, QPoint(1, 1))
    QTest.mouseMove(scene.window, scene.tile_center(index))


def shown_tooltip_text(scene):
    """The text of the tooltip on screen, or None. A popup's item sits in the window's overlay;
    its QObject parent is the ToolTip."""
    stack = [scene.window.contentItem()]
    while stack:
        item = stack.pop()
        if item.metaObject().className() == "QQuickPopupItem" and item.isVisible():
            return item.parent().property("text")
        stack.extend(item.childItems())
    return None


def test_hover_highlights_the_tile_and_shows_the_url_as_tooltip(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS[:2])
    scene = scene_factory(urls=urls)
    scene.settle()
    tile = scene.tile(1)
    QTest.mouseMove(scene.window, scene.tile_center(1))
    qtbot.waitUntil(lambda: tile.property("hovered") is True, timeout=3000)
    face = tile.findChild(QObject, "face")
    assert close_to(QColor(face.property("color")), "#eef2fb")  # Theme.tileHover (light)

    qtbot.waitUntil(lambda: shown_tooltip_text(scene) == urls[1], timeout=5000)


def test_a_tooltip_shows_a_very_long_url_cut_in_the_middle_and_the_reason_whole(
        qtbot, scene_factory, image_server):
    # A 9,000-character URL filled the window with 88 lines, and the reason below it was cut.
    long_url = image_server.url("/" + "a" * 9000 + ".png")  # a 404
    scene = scene_factory(urls=[long_url])
    scene.settle()
    hover(scene, 0)
    qtbot.waitUntil(lambda: shown_tooltip_text(scene) is not None, timeout=5000)
    shown_url, reason = shown_tooltip_text(scene).split("\n")
    assert len(shown_url) < 300 and "\u2026" in shown_url
    assert long_url.startswith(shown_url.split("\u2026")[0]) and long_url.endswith("a.png")
    assert reason == "HTTP 404 Not Found"


def test_a_servers_reason_phrase_reaches_the_tile_as_plain_words(qtbot, scene_factory,
                                                                  image_server):
    # An HTTP reason phrase is the server's own text. Read as rich text on the tile, an <img>
    # in it was fetched by Qt Quick and drawn, past the URL rules and every limit.
    tracker = image_server.add("/t", solid_image_bytes("#00ff00"))  # short: the phrase is cut
    phrase = f'<img src="{tracker}"><b>fine</b>\x1b[2J' + "x" * 500

    def markup_reason(handler):
        handler.send_response(404, phrase)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    url = image_server.add_handler("/evil.png", markup_reason)
    scene = scene_factory(urls=[url])
    scene.settle()
    tile = scene.tile(0)
    reason = tile.property("errorString")
    assert reason.startswith(f'HTTP 404 <img src="{tracker}"')
    assert "\x1b" not in reason and len(reason) <= len("HTTP 404 ") + 60  # cut, with an ellipsis
    assert tile.findChild(QObject, "errorText").property("textFormat") == 0  # Text.PlainText

    hover(scene, 0)  # the tooltip quotes it too
    qtbot.waitUntil(lambda: shown_tooltip_text(scene) == f"{url}\n{reason}", timeout=5000)
    with pytest.raises(pytestqt.exceptions.TimeoutError):  # given the time a fetch would take
        qtbot.waitUntil(lambda: image_server.hits["/t"] > 0, timeout=1500)


def test_a_gallery_page_unloaded_ends_its_models_threads(qtbot, tmp_path, image_server):
    scene = Scene(qtbot, tmp_path, PAGE_QML, urls=serve_solid_images(image_server, COLORS))
    try:
        scene.settle()
        loader = scene.model().loader
        threads = loader._decoder._threads + loader._io._threads
        assert all(thread.is_alive() for thread in threads)
        scene.window.setProperty("pageShown", False)  # the Loader destroys the gallery
        qtbot.waitUntil(lambda: not any(thread.is_alive() for thread in threads), timeout=5000)
    finally:
        scene.window.close()
        imagegallery.delete_engine(scene.engine)
    assert not scene.warnings, scene.warnings


@pytest.mark.parametrize("how", ["unload page", "delete_engine"])
def test_a_gallery_gone_mid_load_stops_its_loader_though_python_keeps_its_model(
        qtbot, tmp_path, image_server, how):
    """As app.py and hosts do, Python keeps the model the QML made (`galleryModel`); the page,
    or the engine, goes while rows load. The model's own loader must go with the C++ model,
    not wait for the Python reference to be dropped."""
    image_server.latency = 0.3
    urls = [image_server.add(f"/{i}.png", solid_image_bytes("#00ff00")) for i in range(40)]
    scene = Scene(qtbot, tmp_path, PAGE_QML, urls=urls)
    try:
        model = scene.model()
        loader = model.loader
        threads = loader._decoder._threads + loader._io._threads
        qtbot.waitUntil(lambda: loader.started_transfers() > 0, timeout=5000)
        if how == "unload page":
            scene.window.setProperty("pageShown", False)  # the Loader destroys gallery and model
        else:
            imagegallery.delete_engine(scene.engine)
        qtbot.waitUntil(lambda: sip.isdeleted(model), timeout=5000)
        qtbot.waitUntil(lambda: sip.isdeleted(loader), timeout=5000)
        qtbot.waitUntil(lambda: not any(thread.is_alive() for thread in threads), timeout=5000)
        assert image_server.total_hits() < len(urls)  # the rest were never asked for
    finally:
        if not sip.isdeleted(scene.engine):
            scene.window.close()
            imagegallery.delete_engine(scene.engine)
    assert not scene.warnings, scene.warnings


def test_a_row_made_again_for_a_reloaded_url_shows_the_new_picture(qtbot, scene_factory,
                                                                   image_server):
    url = image_server.add("/p.png", solid_image_bytes("#ff0000"))
    scene = scene_factory(urls=[url])
    scene.settle()
    assert close_to(QColor(scene.grab().pixel(scene.tile_center(0))), "#ff0000")
    image_server.add("/p.png", solid_image_bytes("#0000ff"))  # the picture changed
    model = scene.model()
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.reload()
    scene.settle()
    assert close_to(QColor(scene.grab().pixel(scene.tile_center(0))), "#0000ff")
    scene.window.setProperty("urls", [])  # another album, then back: a new row for the URL,
    qtbot.waitUntil(lambda: model.count == 0, timeout=5000)
    scene.grab()
    scene.window.setProperty("urls", [url])  # whose source must not be one QML has cached
    scene.settle()
    assert close_to(QColor(scene.grab().pixel(scene.tile_center(0))), "#0000ff")


# -- the view's geometry, keys and selection as a QML user configures them ---------------------
def cells_on_screen(scene):
    """Rows whose cells overlap the window (pooled cells, index -1, left out)."""
    window = scene.window
    return sorted(cell.property("index") for cell in gallery_cells(window)
                  if cell.property("index") >= 0
                  and cell.mapToScene(QPointF(cell.width(), cell.height())).y() > 0
                  and cell.mapToScene(QPointF(0, 0)).y() < window.height()
                  and cell.mapToScene(QPointF(cell.width(), 0)).x() > 0
                  and cell.mapToScene(QPointF(0, 0)).x() < window.width())


def own_view_scene(scene_factory, gallery_lines, window_lines=""):
    """A window with its own ImageGalleryModel (`photos`, 120x80 thumbnails) shown by an
    ImageGallery configured by `gallery_lines`."""
    return scene_factory(f"""
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {{
    width: 580; height: 420; visible: true
    readonly property var photos: photos
    {window_lines}
    ImageGalleryModel {{ id: photos; thumbnailSize: Qt.size(120, 80) }}
    ImageGallery {{
        objectName: "gallery"
        anchors.fill: parent
        model: photos
        Component.onCompleted: forceActiveFocus()
        {gallery_lines}
    }}
}}
""")


def test_a_cell_width_the_user_sets_drives_the_keys_and_the_rows_loaded(qtbot, scene_factory,
                                                                        image_server):
    # The view counted its columns from the thumbnail size (four here): with cellWidth 110 the
    # grid has five, Down went four tiles on, and under LoadVisible rows 20-24 on screen (five
    # grid rows of five) never loaded.
    body = solid_image_bytes("#808080", 64, 40)
    urls = [image_server.add(f"/v{i}.png", body) for i in range(80)]
    scene = own_view_scene(scene_factory, "cellWidth: 110; cellHeight: 100")
    model, gallery = scene.window.property("photos"), scene.gallery
    model.prefetchRows = 0
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.urls = urls
    qtbot.waitUntil(lambda: all(image_server.hits[f"/v{i}.png"] for i in range(25)), timeout=5000)
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    gallery.setProperty("currentIndex", 0)
    QTest.keyClick(scene.window, Qt.Key_Down)
    assert gallery.property("currentIndex") == 5


def test_a_header_does_not_hide_the_top_rows_on_screen_from_the_model(qtbot, scene_factory,
                                                                      image_server):
    body = solid_image_bytes("#808080", 64, 40)
    urls = [image_server.add(f"/h{i}.png", body) for i in range(200)]
    scene = own_view_scene(scene_factory,
                           'header: Rectangle { width: 580; height: 60; color: "gray" }')
    model, gallery = scene.window.property("photos"), scene.gallery
    model.prefetchRows = 0
    model.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    model.urls = urls
    qtbot.waitUntil(lambda: model.loadedCount > 0 and not model.busy, timeout=10000)
    # Grid row 10's tiles half showing at the top, the header long gone: they were reported
    # as off screen (the range was shifted by the header's height) and never loaded.
    gallery.setProperty("contentY", 10 * gallery.property("cellHeight") + 40)
    qtbot.waitUntil(lambda: cells_on_screen(scene)[0] == 10 * gallery.property("columns"),
                    timeout=5000)
    qtbot.waitUntil(lambda: all(model.status_of(row) == ImageGalleryModel.Status.Ready
                                for row in cells_on_screen(scene)), timeout=5000)


def test_select_all_then_a_click_on_a_url_listed_twice_deselects_it(qtbot, scene_factory,
                                                                    image_server):
    a, b = serve(image_server, COLORS[:2])
    scene = scene_factory(urls=[a, b, a])
    scene.settle()
    scene.gallery.setProperty("selectionMode", "multi")
    QMetaObject.invokeMethod(scene.gallery, "selectAll")
    assert scene.selected() == [a, b]  # each URL once
    QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(0))
    assert scene.selected() == [b]
    assert scene.tile(0).property("selected") is False and scene.tile(2).property("selected") is False


def test_enter_in_multi_mode_leaves_the_tile_selected_as_a_double_click_does(qtbot, scene_factory,
                                                                             image_server):
    urls = serve(image_server, COLORS[:4])
    scene = scene_factory(urls=urls)
    scene.settle()
    gallery = scene.gallery
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    gallery.setProperty("selectionMode", "multi")
    QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(0))
    QTest.keyClick(scene.window, Qt.Key_Right)
    QTest.keyClick(scene.window, Qt.Key_Right)
    with qtbot.waitSignal(gallery.imageActivated, timeout=3000) as activated:
        QTest.keyClick(scene.window, Qt.Key_Return)
    assert activated.args == [2, urls[2]]
    assert sorted(scene.selected()) == sorted([urls[0], urls[2]])  # what a picker returns


def test_left_and_right_follow_the_screen_in_a_right_to_left_layout(qtbot, scene_factory,
                                                                     image_server):
    urls = serve(image_server)
    mirrored = GALLERY_QML.replace(
        "    ImageGallery {\n        id: gallery",
        "    LayoutMirroring.enabled: true\n    LayoutMirroring.childrenInherit: true\n"
        "    ImageGallery {\n        id: gallery")
    scene = scene_factory(mirrored, urls=urls)
    scene.settle()
    gallery = scene.gallery
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    assert scene.tile_center(1).x() < scene.tile_center(0).x()  # row 1 drawn left of row 0
    gallery.setProperty("currentIndex", 1)
    QTest.keyClick(scene.window, Qt.Key_Left)
    assert gallery.property("currentIndex") == 2  # the tile to its left on screen
    gallery.setProperty("currentIndex", -1)  # a move from no current tile starts at the line's
    QTest.keyClick(scene.window, Qt.Key_Down)  # start, which is on the right here
    assert gallery.property("currentIndex") == 0


@pytest.mark.qt_log_ignore("ImageGallery: `model` must be an ImageGalleryModel")
@pytest.mark.parametrize("plain_model", ["[root.first, root.first, root.first]", "listModel"])
def test_a_model_that_is_not_an_image_gallery_model_gets_one_warning_saying_what_to_do(
        qtbot, qtlog, scene_factory, image_server, plain_model):
    # Each tile read five roles the model does not have: five TypeErrors a tile, and no word of
    # what to do instead. Then one warning a cell for an array, which reads as a new one each
    # time, so it never matched the model warned about.
    url = serve(image_server, COLORS[:1])[0]
    scene = scene_factory(f"""
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {{
    id: root
    width: 580; height: 420; visible: true
    property string first: ""
    ListModel {{ id: listModel }}
    Component.onCompleted: {{ for (var i = 0; i < 3; ++i) listModel.append({{"url": first}}) }}
    function showAnotherPlainList() {{
        gallery.model = gallery.model === listModel ? Array(12).fill(first) : listModel
    }}
    ImageGallery {{ id: gallery; objectName: "gallery"; anchors.fill: parent; model: {plain_model} }}
}}
""", first=url)

    def said():
        return [record.message for record in qtlog.records if "ImageGallery" in record.message]

    qtbot.waitUntil(lambda: scene.gallery.property("count") == 3 and len(said()) > 0, timeout=3000)
    scene.grab()  # a frame later: any warning still due has been said
    assert len(said()) == 1 and "a plain list of URLs goes in `urls`" in said()[0], said()
    assert not scene.warnings  # no TypeError from a tile
    # Another model: one warning more. A new model's first cells are made before the view hears
    # of the change: a ListModel after an array said nothing (the flag was still the array's).
    QMetaObject.invokeMethod(scene.window, "showAnotherPlainList")
    qtbot.waitUntil(lambda: len(said()) > 1, timeout=3000)
    scene.grab()
    assert len(said()) == 2, said()


def test_a_small_tiles_error_face_and_retry_button_stay_inside_the_tile(qtbot, scene_factory,
                                                                        image_server):
    # 32x32 thumbnails (`imagegallery --thumbnail` takes 16x16 and up): the face was 75 px tall
    # in a 44 px tile and the next row's tile covered half of Retry, where a click selected it.
    from PyQt5.QtCore import QRectF

    urls = [image_server.url("/missing.png")] + serve(image_server, COLORS[:1] * 11)
    scene = scene_factory(GALLERY_QML.replace("Qt.size(120, 80)", "Qt.size(32, 32)"), urls=urls)
    scene.settle()
    tile = scene.tile(0)
    assert tile.property("status") == ImageGalleryModel.Status.Error

    def scene_rect(item):
        return QRectF(item.mapToScene(QPointF(0, 0)),
                      item.mapToScene(QPointF(item.width(), item.height())))

    inside = scene_rect(tile)
    for name in ("errorFace", "retryButton"):
        assert inside.contains(scene_rect(tile.findChild(QObject, name))), name
    with qtbot.waitSignal(scene.model().loader.loadFailed, timeout=5000):  # asked again
        retry = tile.findChild(QObject, "retryButton")
        QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier,
                         retry.mapToScene(QPointF(retry.width() / 2, retry.height() / 2)).toPoint())


@pytest.mark.parametrize("box", [16, 32, 64])
def test_a_small_failed_tile_shows_that_it_failed_with_or_without_retry(qtbot, scene_factory,
                                                                         image_server, box):
    # Below 72 px a failed tile shows no title or reason; a refused URL's, with no Retry either,
    # was left blank, as if it were still loading.
    urls = ["http://[::1", image_server.url("/missing.png")] + serve(image_server, COLORS[:1])
    scene = scene_factory(GALLERY_QML.replace("Qt.size(120, 80)", f"Qt.size({box}, {box})"),
                          urls=urls)
    scene.settle()
    shot = scene.grab()
    for row in (0, 1, 2):
        tile = scene.tile(row)
        corner = tile.mapToScene(QPointF(0, 0)).toPoint()
        marked = sum(close_to(QColor(shot.pixel(corner.x() + x, corner.y() + y)), "#c62828", 40)
                     for x in range(int(tile.width())) for y in range(int(tile.height())))
        assert (marked > 10) is (row < 2), (row, marked)


@pytest.mark.qt_log_ignore("ImageGallery: selectionMode is")
def test_a_selection_mode_that_is_not_one_of_the_three_is_named_in_a_warning(
        qtbot, qtlog, scene_factory, image_server):
    scene = scene_factory(urls=serve(image_server, COLORS[:1]))
    scene.gallery.setProperty("selectionMode", "Multi")
    said = [record.message for record in qtlog.records if "selectionMode" in record.message]
    assert len(said) == 1 and '"Multi"' in said[0], said


def test_selection_mode_changes_keep_what_the_new_mode_allows(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS[:3])
    scene = scene_factory(urls=urls)
    scene.settle()
    scene.gallery.setProperty("selectionMode", "multi")
    for row in (0, 2):
        QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(row))
    assert scene.selected() == [urls[0], urls[2]]
    scene.gallery.setProperty("selectionMode", "single")  # kept two selected before
    assert scene.selected() == [urls[2]]
    scene.gallery.setProperty("selectionMode", "none")
    assert scene.selected() == []


def test_ctrl_r_reaches_the_host_and_r_alone_retries(qtbot, scene_factory, image_server):
    urls = [image_server.url("/missing.png")] + serve(image_server, COLORS[:1])
    gallery_end = ("        onGalleryModelChanged: if (galleryModel) "
                   "galleryModel.thumbnailSize = Qt.size(120, 80)\n    }\n")
    host_keys = GALLERY_QML.replace(
        "    ImageGallery {\n        id: gallery",
        "    property int hostSawCtrlR: 0\n"
        "    Item {\n        anchors.fill: parent\n"
        "        Keys.onPressed: if (event.key === Qt.Key_R) root.hostSawCtrlR += 1\n"
        "    ImageGallery {\n        id: gallery").replace(gallery_end, gallery_end + "    }\n")
    scene = scene_factory(host_keys, urls=urls)
    scene.settle()
    gallery = scene.gallery
    qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
    gallery.setProperty("currentIndex", 0)
    QTest.keyClick(scene.window, Qt.Key_R, Qt.ControlModifier)
    assert scene.window.property("hostSawCtrlR") == 1
    with qtbot.waitSignal(scene.model().loader.loadFailed, timeout=5000):  # asked again
        QTest.keyClick(scene.window, Qt.Key_R)
    assert scene.window.property("hostSawCtrlR") == 1
    gallery.setProperty("currentIndex", 1)  # loaded: nothing to retry, so R is the host's
    QTest.keyClick(scene.window, Qt.Key_R)
    assert scene.window.property("hostSawCtrlR") == 2


def test_the_model_urls_made_goes_when_the_host_gives_one(qtbot, scene_factory, image_server):
    urls = serve(image_server, COLORS[:2])
    scene = scene_factory(urls=urls)
    scene.settle()
    made = scene.model()
    given = ImageGalleryModel()
    try:
        scene.gallery.setProperty("model", given)
        qtbot.waitUntil(lambda: sip.isdeleted(made), timeout=5000)  # it would go on loading
        assert scene.model() is given
        assert list(given.urls) == urls  # `urls` is passed on to a model given (it went to the old one)
    finally:
        scene.gallery.setProperty("model", None)
        given.loader.close()


def test_a_url_named_like_a_javascript_object_member_can_be_selected(qtbot, scene_factory,
                                                                     image_server):
    # The selection's sets were plain {} objects, where {}["constructor"] is a function: a
    # relative path of that name always looked selected, so a click could not select it.
    a = serve(image_server, COLORS[:1])[0]
    scene = scene_factory(urls=["constructor", a])
    scene.settle()
    scene.gallery.setProperty("selectionMode", "multi")
    QTest.mouseClick(scene.window, Qt.LeftButton, Qt.NoModifier, scene.tile_center(0))
    assert scene.selected() == ["constructor"]
    QMetaObject.invokeMethod(scene.gallery, "clearSelection")
    QMetaObject.invokeMethod(scene.gallery, "selectAll")
    assert scene.selected() == ["constructor", a]


PROXY_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    width: 580; height: 420; visible: true
    property QtObject proxy: null
    property var activated: []
    ImageGallery {
        objectName: "gallery"; anchors.fill: parent; model: proxy
        onImageActivated: function(index, url) { activated = activated.concat([index + " " + url]) }
    }
}
"""


def gallery_model_behind_a_sorting_proxy(make_model, urls):
    """(model, proxy): the proxy shows the model's rows by URL, last first."""
    from PyQt5.QtCore import QSize, QSortFilterProxyModel

    source = make_model()
    source.thumbnailSize = QSize(120, 80)
    source.urls = urls
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(source)
    proxy.setSortRole(ImageGalleryModel.UrlRole)
    proxy.sort(0, Qt.DescendingOrder)
    return source, proxy


def test_a_sorting_proxy_over_a_gallery_model_shows_its_tiles(qtbot, scene_factory, image_server,
                                                              make_model):
    urls = serve(image_server, COLORS[:3])
    source, proxy = gallery_model_behind_a_sorting_proxy(make_model, urls)
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: source.loadedCount == 3, timeout=10000)
    qtbot.waitUntil(lambda: len(gallery_cells(scene.window)) == 3
                    and all(cell_tile(cell) is not None for cell in gallery_cells(scene.window)),
                    timeout=3000)
    assert sorted(tile.property("url") for tile in image_buttons(scene.window)) == sorted(urls)


def test_a_new_lists_cells_leave_the_roles_to_their_tiles(qtbot, tmp_path, image_server,
                                                         make_model):
    # Every role a cell reads is a call into Python while the first replies wait; a cell read
    # all five to see that the model has them. Now a model's first cell does, once.
    from PyQt5.QtCore import QIdentityProxyModel

    class CountingProxy(QIdentityProxyModel):
        def __init__(self):
            super().__init__()
            self.url_reads = 0

        def data(self, index, role=Qt.DisplayRole):
            if role == ImageGalleryModel.UrlRole:
                self.url_reads += 1
            return super().data(index, role)

    source = make_model()
    source.thumbnailSize = QSize(120, 80)
    proxy = CountingProxy()
    proxy.setSourceModel(source)
    engine = QQmlApplicationEngine()
    incubation = HeldIncubation()  # no tile is made: only the cells read roles
    engine.setIncubationController(incubation)
    imagegallery.install(engine)
    path = tmp_path / "Scene.qml"
    path.write_text(PROXY_QML)
    engine.setInitialProperties({"proxy": proxy})
    engine.load(str(path))
    window = engine.rootObjects()[0]
    try:
        qtbot.waitUntil(window.isExposed, timeout=5000)
        source.urls = [image_server.url(f"/missing/{index}.png") for index in range(40)]
        qtbot.waitUntil(lambda: len(gallery_cells(window)) >= 12, timeout=5000)
        assert not image_buttons(window)
        assert proxy.url_reads == 1
        make_every_tile(qtbot, window, incubation)
        assert image_buttons(window)  # the check let them be made
    finally:
        window.close()
        imagegallery.delete_engine(engine)


@pytest.mark.qt_log_ignore("ImageGallery: `model` must be an ImageGalleryModel")
def test_a_proxy_given_a_source_without_the_tile_roles_gets_the_warning_not_tiles(
        qtbot, qtlog, scene_factory, image_server, make_model):
    # The view remembers that its model has the tile's roles; a proxy given another source
    # model is still the same `model`, and its new rows got tiles that could not fill.
    from PyQt5.QtCore import QIdentityProxyModel
    from PyQt5.QtGui import QStandardItem, QStandardItemModel

    source = make_model()
    source.thumbnailSize = QSize(120, 80)
    source.urls = [image_server.url(f"/missing/{index}.png") for index in range(2)]
    proxy = QIdentityProxyModel()
    proxy.setSourceModel(source)
    scene = scene_factory(PROXY_QML, proxy=proxy)  # its close() asserts QML warned of nothing
    window, gallery = scene.window, scene.gallery
    qtbot.waitUntil(lambda: len(image_buttons(window)) == 2, timeout=5000)
    plain = QStandardItemModel()
    for index in range(12):
        plain.appendRow(QStandardItem(f"row {index}"))
    proxy.setSourceModel(plain)
    qtbot.waitUntil(lambda: any("must be an ImageGalleryModel" in record.message
                                for record in qtlog.records), timeout=5000)
    qtbot.waitUntil(lambda: gallery.property("count") == 12 and len(gallery_cells(window)) >= 8,
                    timeout=5000)
    assert not [tile for tile in image_buttons(window) if tile.isVisible()]
    assert not scene.warnings  # no tile bound to roles the rows do not have


def load_visible_model_behind_a_proxy(make_model, urls, prefetch_rows):
    """(model, proxy): a LoadVisible model of `urls` behind a QSortFilterProxyModel that, until
    told otherwise, shows every row in order."""
    from PyQt5.QtCore import QSize, QSortFilterProxyModel

    source = make_model()
    source.thumbnailSize = QSize(120, 80)
    source.loadPolicy = ImageGalleryModel.LoadPolicy.LoadVisible
    source.prefetchRows = prefetch_rows
    source.urls = urls
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(source)
    return source, proxy


def test_keys_selection_and_urls_go_through_a_sorting_proxy(qtbot, scene_factory, image_server,
                                                             make_model):
    urls = serve(image_server, COLORS[:3])
    source, proxy = gallery_model_behind_a_sorting_proxy(make_model, urls)
    shown = [proxy.data(proxy.index(row, 0), ImageGalleryModel.UrlRole) for row in range(3)]
    assert shown == sorted(urls, reverse=True) and shown != urls
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: source.loadedCount == 3 and tiles_settled(scene.window), timeout=10000)
    gallery = scene.gallery
    assert gallery.property("galleryModel") is source
    assert QMetaObject.invokeMethod(gallery, "urlAt", Q_RETURN_ARG(QVariant), Q_ARG(QVariant, 1)) == shown[1]
    gallery.forceActiveFocus()
    QTest.keyClick(scene.window, Qt.Key_Right)
    assert scene.selected() == [shown[1]]
    QTest.keyClick(scene.window, Qt.Key_Return)
    activated = scene.window.property("activated")
    assert (activated.toVariant() if hasattr(activated, "toVariant") else activated) == [f"1 {shown[1]}"]
    gallery.setProperty("selectionMode", "multi")
    QMetaObject.invokeMethod(gallery, "selectAll")
    assert scene.selected() == shown
    gallery.setProperty("model", None)


def test_load_visible_through_a_proxy_loads_the_screen_it_scrolls_to(qtbot, scene_factory,
                                                                      image_server, make_model):
    urls = serve(image_server, COLORS * 30)
    source, proxy = load_visible_model_behind_a_proxy(make_model, urls, prefetch_rows=4)
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: source.get(0)["status"] == ImageGalleryModel.Status.Ready, timeout=10000)
    QMetaObject.invokeMethod(scene.gallery, "positionViewAtEnd")
    last = len(urls) - 1
    qtbot.waitUntil(lambda: source.get(last)["status"] == ImageGalleryModel.Status.Ready, timeout=10000)
    assert source.loadedCount < len(urls) // 2  # the screens shown and their margins, not the list
    scene.gallery.setProperty("model", None)


def test_a_proxy_filter_that_keeps_the_count_loads_the_rows_it_now_shows(qtbot, scene_factory,
                                                                         image_server, make_model):
    from PyQt5.QtCore import QRegExp

    body = solid_image_bytes("#808080", 64, 40)
    # Rows 0-149 are /a<n>.png, rows 150-299 /b<n>.png: "/a" and "/b" keep 150 rows each.
    urls = [image_server.add(f"/{'a' if n < 150 else 'b'}{n}.png", body) for n in range(300)]
    source, proxy = load_visible_model_behind_a_proxy(make_model, urls, prefetch_rows=0)
    proxy.setFilterRole(ImageGalleryModel.UrlRole)
    proxy.setFilterRegExp(QRegExp("/a"))
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: source.status_of(0) == ImageGalleryModel.Status.Ready, timeout=10000)
    proxy.setFilterRegExp(QRegExp("/b"))
    on_screen = [proxy.mapToSource(proxy.index(row, 0)).row() for row in range(8)]
    qtbot.waitUntil(lambda: all(source.status_of(row) != ImageGalleryModel.Status.Null
                                for row in on_screen), timeout=5000)
    scene.gallery.setProperty("model", None)


def test_a_sparse_proxy_filter_under_load_visible_loads_only_the_rows_it_shows(
        qtbot, scene_factory, image_server, make_model):
    from PyQt5.QtCore import QRegExp

    body = solid_image_bytes("#808080", 64, 40)
    # One row in 30 is /kept<n>.png: the filter shows rows 0, 30, 60, ... of 900.
    urls = [image_server.add(f"/{'kept' if n % 30 == 0 else 'hidden'}{n}.png", body)
            for n in range(900)]
    source, proxy = load_visible_model_behind_a_proxy(make_model, urls, prefetch_rows=2)
    proxy.setFilterRole(ImageGalleryModel.UrlRole)
    proxy.setFilterRegExp(QRegExp("/kept"))
    assert proxy.rowCount() == 30
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: all(source.status_of(30 * row) == ImageGalleryModel.Status.Ready
                                for row in range(4)), timeout=10000)
    qtbot.waitUntil(lambda: not source.busy, timeout=10000)  # every row asked for has settled
    loaded = [row for row in range(900) if source.status_of(row) != ImageGalleryModel.Status.Null]
    assert loaded and all(row % 30 == 0 for row in loaded), loaded[:10]
    # Not even asked for: the list was set before the view's first report, and the top rows
    # a view is assumed to show until then are mostly hidden ones.
    assert all(image_server.hits[f"/hidden{n}.png"] == 0 for n in range(900))
    # The screen and the view's own margin of two rows: not all 30 shown rows.
    on_screen = scene.gallery.property("columns") * math.ceil(
        scene.gallery.height() / scene.gallery.property("cellHeight"))
    assert len(loaded) <= on_screen + 2 < 30
    scene.gallery.setProperty("model", None)


def test_a_view_whose_proxy_shows_nothing_leaves_nothing_on_screen(qtbot, scene_factory,
                                                                     image_server, make_model):
    from PyQt5.QtCore import QRegExp

    body = solid_image_bytes("#808080", 64, 40)
    urls = [image_server.add(f"/{n}.png", body) for n in range(100)]
    source, proxy = load_visible_model_behind_a_proxy(make_model, urls, prefetch_rows=2)
    scene = scene_factory(PROXY_QML, proxy=proxy)
    qtbot.waitUntil(lambda: source.status_of(0) == ImageGalleryModel.Status.Ready, timeout=10000)
    proxy.setFilterRegExp(QRegExp("matches-no-url"))
    assert proxy.rowCount() == 0
    # The view reports its empty screen on its next turn; until then its old rows count.
    qtbot.waitUntil(lambda: not source._rows_in_reach(), timeout=3000)
    hits = image_server.total_hits()
    source.reload()  # fetches the screen again: there is none
    qtbot.waitUntil(lambda: not source.busy, timeout=10000)
    assert image_server.total_hits() == hits
    scene.gallery.setProperty("model", None)


def load_visible_model_of_300(make_model, image_server):
    """A LoadVisible model without a prefetch margin, of 300 small images: what loads is what
    its views show."""
    body = solid_image_bytes("#808080", 64, 40)
    model = make_model(thumbnailSize=QSize(120, 80), prefetchRows=0,
                       loadPolicy=ImageGalleryModel.LoadPolicy.LoadVisible)
    model.urls = [image_server.add(f"/{n}.png", body) for n in range(300)]
    return model


def test_a_hidden_view_leaves_nothing_on_screen(qtbot, scene_factory, image_server, make_model):
    shown = load_visible_model_of_300(make_model, image_server)
    scene = scene_factory(PROXY_QML, proxy=shown)
    qtbot.waitUntil(lambda: shown.status_of(0) == ImageGalleryModel.Status.Ready, timeout=10000)
    scene.gallery.setProperty("visible", False)  # a page covered in a StackView, say
    QMetaObject.invokeMethod(scene.gallery, "positionViewAtIndex", Q_ARG(int, 200), Q_ARG(int, 1))
    qtbot.waitUntil(lambda: not shown._rows_in_reach(), timeout=3000)
    hits = image_server.total_hits()
    shown.reload()
    qtbot.waitUntil(lambda: not shown.busy, timeout=10000)
    assert image_server.total_hits() == hits
    scene.gallery.setProperty("visible", True)  # shown again: its screen loads
    qtbot.waitUntil(lambda: shown.status_of(200) == ImageGalleryModel.Status.Ready, timeout=10000)
    scene.gallery.setProperty("model", None)


TWO_VIEWS_QML = """
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    width: 580; height: 420; visible: true
    property QtObject shared: null
    Row {
        anchors.fill: parent
        ImageGallery { objectName: "gallery"; width: 290; height: parent.height; model: shared }
        ImageGallery { objectName: "strip"; width: 290; height: parent.height; model: shared }
    }
}
"""


def test_two_views_on_one_model_each_load_their_own_screen(qtbot, scene_factory, image_server,
                                                           make_model):
    shared = load_visible_model_of_300(make_model, image_server)
    scene = scene_factory(TWO_VIEWS_QML, shared=shared)
    strip = scene.window.findChild(QObject, "strip")
    qtbot.waitUntil(lambda: shared.status_of(0) == ImageGalleryModel.Status.Ready, timeout=10000)
    # Both move in one turn: each view's report must keep the other's.
    QMetaObject.invokeMethod(scene.gallery, "positionViewAtIndex", Q_ARG(int, 150),
                             Q_ARG(int, 1))  # GridView.Beginning
    QMetaObject.invokeMethod(strip, "positionViewAtEnd")
    qtbot.waitUntil(lambda: shared.status_of(150) == ImageGalleryModel.Status.Ready
                    and shared.status_of(299) == ImageGalleryModel.Status.Ready, timeout=10000)
    scene.gallery.setProperty("model", None)
    strip.setProperty("model", None)


def test_urls_reach_a_gallery_model_given_to_the_proxy_later(qtbot, scene_factory, image_server,
                                                             make_model):
    from PyQt5.QtCore import QSortFilterProxyModel

    urls = serve(image_server, COLORS[:3])
    proxy = QSortFilterProxyModel()
    scene = scene_factory("""
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0

Window {
    width: 580; height: 420; visible: true
    property var list: []
    property QtObject proxy: null
    ImageGallery { objectName: "gallery"; anchors.fill: parent; urls: list; model: proxy }
}
""", list=urls, proxy=proxy)
    source = make_model()
    proxy.setSourceModel(source)
    qtbot.waitUntil(lambda: source.urls == urls, timeout=3000)
    scene.gallery.setProperty("model", None)


def test_a_list_that_shrinks_settles_its_remaining_tiles(qtbot, scene_factory, image_server):
    """The cells of rows gone wait in the view's pool (reuseItems), visible but culled, with no
    row (index -1). Counted as cells in use, their tiles were judged as tiles to show: a list
    that shrank while its tiles still loaded never settled in a test (10 s, then a timeout)."""
    from imagegallery.app import gallery_cells

    scene = scene_factory(urls=serve(image_server, COLORS * 3))
    scene.settle()
    scene.window.setProperty("urls", serve(image_server, COLORS[:2]))
    scene.settle()
    assert sorted(cell.property("index") for cell in gallery_cells(scene.window)) == [0, 1]


DESTROYED_WHILE_SHOWN = """
import sys
from PyQt5.QtGui import QGuiApplication
from PyQt5.QtQml import QQmlApplicationEngine
import imagegallery

app = QGuiApplication(sys.argv)
engine = QQmlApplicationEngine()
imagegallery.install(engine)
engine.quit.connect(app.quit)
engine.rootContext().setContextProperty("FillMode", int(sys.argv[1]))
engine.rootContext().setContextProperty("UrlList", sys.argv[2:])
engine.loadData(b'''
import QtQuick 2.15
import QtQuick.Window 2.15
import ImageGallery 1.0
Window {
    width: 800; height: 600; visible: true
    ImageGalleryModel {
        id: photos
        urls: UrlList
        thumbnailSize: Qt.size(120, 90)
        fillMode: FillMode
        onFinished: { destroy(); quitLater.start() }
    }
    ImageGallery { anchors.fill: parent; model: photos }
    // Quit a while after the model went: its deletion and the view's reaction come first.
    Timer { id: quitLater; interval: 500; onTriggered: Qt.quit() }
}''')
sys.exit(app.exec_() if engine.rootObjects() else 3)
"""


@pytest.mark.parametrize("fill_mode", [1, 2])  # Image.PreserveAspectFit, PreserveAspectCrop
def test_a_model_destroyed_while_its_view_shows_it_does_not_crash(tmp_path, image_server,
                                                                 fill_mode):
    # Destroying it cleared the view's galleryModel from inside the model's destructor; the
    # view's cell size (the model's was 120x90) and the tiles' fill mode fell back to the
    # defaults, and the GridView refilled from the half-destroyed model: a segfault, every time.
    import subprocess
    import sys

    urls = serve_solid_images(image_server, ["#00ff00"] * 100)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_QUICK_BACKEND="software",
               IMAGEGALLERY_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", DESTROYED_WHILE_SHOWN, str(fill_mode), *urls], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
