"""One benchmark client in one fresh process: `python -m bench.client CONFIG.json RESULT.json`.

Every client shows a real window of 4 x 6 tiles (1040x960) and is measured the same way:
  t0       when loading starts: the window is shown and has settled for 300 ms, then the URLs are
           handed over (process start-up and QML compilation are not counted); in `from_launch`
           workloads, when the driver started the process, the URLs set as the QML is loaded,
           before the window's first frame (start-up counts, and stalls count from that frame);
  first    the first thumbnail ready; all: every thumbnail settled (ready or failed);
  screen_full  every tile of the first screen (rows 0-23) ready or failed, in `all` mode: the
           latest of those rows' times, each counted as `first` is (below);
  stall    the largest gap between ticks of a 5 ms precise QTimer on the GUI thread, from t0 to
           the end (a GUI thread blocked for the whole run stalls for the whole run);
  rss      resident memory at t0 and the process's peak (VmHWM);
  cpu      CPU seconds per thread name from t0 to the end (the server's own is counted apart).

"Ready" per client: naive: the loop has ended (nothing is painted before, so every row counts
then); qnam: the pixmap is set on its widget; qtquick: Image.status is Ready
in its delegate; gallery: the model row is Ready *and* every tile on screen shows its thumbnail
(ImageButton.ready), so the gallery is never credited before the user could see the picture.
The gallery's first thumbnail likewise counts when a tile shows it, not when its row is Ready;
so do its first screen's rows for `screen_full` (the view's thumbnailShown, sent at the tile
Image's status change to Ready, which only a Ready row's tile reaches), the stage Qt Quick's
Image.status is read at. A failed row counts when it failed, for every client.

A run cut off by its timeout records the time spent as the time it did not reach (a lower bound)
and `timed_out`, so the driver can count it, visibly, instead of dropping it.

In `screens` mode (W5) only the 24 tiles on screen count: the first screen, then the view jumps
to the end and the new screen is timed from the jump.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List, Optional

COLUMNS, ROWS = 4, 6
THUMB_W, THUMB_H = 240, 140
CELL_W, CELL_H = 260, 160  # ImageGallery's cell for a 240x140 thumbnail (padding 6, spacing 8)
WINDOW_W, WINDOW_H = COLUMNS * CELL_W, ROWS * CELL_H
SETTLE_MS = 300
FIRST_READY_ROWS_KEPT = 6  # which rows come first says which requests a client made first


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """This process's peak (VmHWM). Not getrusage's ru_maxrss: Linux starts a child's at its
    parent's peak, so every client read at least the driver's 84 MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_by_thread() -> Dict[str, float]:
    """CPU seconds (user + system) per thread name, threads of one pool summed (Linux); threads
    gone by now (the gallery's warm-up thread) under "exited threads", from the process's total."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: Dict[str, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
        with open("/proc/self/stat") as handle:
            process_fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return totals
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        name = "gui" if task == str(os.getpid()) else name.rstrip("0123456789-")
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    process_total = (int(process_fields[11]) + int(process_fields[12])) / ticks
    totals["exited threads"] = max(0.0, process_total - sum(totals.values()))
    return totals


class Meter:
    """Collects the timings; `on_done` runs once when the target set has settled or time is up."""

    def __init__(self, app, config: dict, on_done):
        from PyQt5.QtCore import Qt, QTimer

        self.app = app
        self.config = config
        self.on_done = on_done
        self.t0 = 0.0
        self.begun_at = 0.0  # perf_counter() at begin()
        self.last_tick = 0.0
        self.max_gap = 0.0
        self.max_gap_at = 0.0  # when the longest gap began, from t0: says which work caused it
        self.settled: Dict[int, float] = {}
        self.failed = 0
        self.failed_rows: set = set()
        self.first_ready_rows: List[int] = []
        self.first_screen = range(min(len(config["urls"]), COLUMNS * ROWS))
        self.shown: Dict[int, float] = {}  # the gallery: first-screen row -> its tile showed it
        self.jump_at = 0.0  # screens mode: when the view jumped to the end, from t0
        self.first: Optional[float] = None
        # The gallery's first thumbnail counts when a tile shows it (the view's thumbnailShown,
        # at its Image's status change), the moment Qt Quick's is counted at (Image.status
        # Ready), not when its row is Ready, a provider round trip and possibly the tile's
        # making earlier. The row's time is kept apart.
        self.first_row: Optional[float] = None
        self.first_is_shown = False  # the gallery: `first` comes from thumbnail_shown
        self.target: set = set()
        self.phase_start = 0.0
        self.results: dict = {}
        self.finished = False
        self.extra_check = None  # gallery: a predicate that must also hold (tiles on screen shown)
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)
        self.deadline = QTimer()
        self.deadline.setSingleShot(True)
        self.deadline.timeout.connect(self.time_up)

    def begin(self, target, launched_s_ago: Optional[float] = None) -> None:
        """Start timing now, or, for a client timed from launch, from its process's start
        `launched_s_ago` seconds before; its stalls count from the window's first frame, since
        before that there is no window to freeze (tick)."""
        self.rss_start = _rss()
        self.cpu_start = _cpu_by_thread()
        self.t0 = self.last_tick = self.phase_start = self.begun_at = time.perf_counter()
        if launched_s_ago is not None:  # CPU and memory count from the launch, as times do
            self.t0 = self.phase_start = self.t0 - launched_s_ago
            self.last_tick = None
            self.cpu_start, self.rss_start = {}, 0
        self.target = set(target)
        self.timer.start()
        self.deadline.start(int((self.config["timeout_s"] - (launched_s_ago or 0)) * 1000))

    def first_frame(self) -> None:
        if self.last_tick is None:
            self.last_tick = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last_tick is None:  # from launch, before the first frame
            self.check()
            return
        if now - self.last_tick > self.max_gap:
            self.max_gap, self.max_gap_at = now - self.last_tick, self.last_tick - self.t0
        self.last_tick = now
        self.check()

    def thumbnail_shown(self, index: int) -> None:
        elapsed = self.now()
        if self.first is None:
            self.first = elapsed
        if index in self.first_screen:
            self.shown.setdefault(index, elapsed)

    def first_screen_shown(self) -> bool:
        """Every first-screen row's tile has shown its thumbnail, or the row failed."""
        return all(row in self.shown or row in self.failed_rows for row in self.first_screen)

    def screen_full(self) -> Optional[float]:
        """When the last of the first screen's rows was ready (or failed); None if one never was."""
        times = []
        for row in self.first_screen:
            if row in self.failed_rows:
                times.append(self.settled[row])
            elif self.first_is_shown:
                times.append(self.shown.get(row))
            else:
                times.append(self.settled.get(row))
        return None if None in times else max(times, default=None)

    def settle(self, index: int, ok: bool) -> None:
        if index in self.settled:
            return
        elapsed = self.now()
        self.settled[index] = elapsed
        if ok and self.first_row is None:
            self.first_row = elapsed
            if not self.first_is_shown:
                self.first = elapsed
        if ok and len(self.first_ready_rows) < FIRST_READY_ROWS_KEPT:
            self.first_ready_rows.append(index)
        if not ok:
            self.failed += 1
            self.failed_rows.add(index)
        self.check()

    def unsettle(self, index: int) -> None:
        self.settled.pop(index, None)
        self.failed_rows.discard(index)

    def check(self) -> None:
        if self.finished or not self.target:
            return
        if not self.target.issubset(self.settled):
            return
        if self.extra_check is not None and not self.extra_check():
            return
        phase_done = self.target
        self.target = set()
        self.phase_finished(phase_done)

    def phase_finished(self, indices) -> None:
        self.on_done(self, indices)

    def time_up(self) -> None:
        # The time it did not reach is recorded as the time spent, a lower bound: left out, the
        # run would drop from the medians and a client that timed out would look faster.
        self.results["timed_out"] = True
        elapsed = self.now()
        if self.config["mode"] == "all":
            self.results.setdefault("all", elapsed)
        elif "screen1" not in self.results:
            self.results["screen1"] = elapsed
        else:
            self.results["screen2"] = elapsed - self.jump_at
        self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        now = time.perf_counter()
        if self.last_tick is None:  # from launch, and the window never drew a frame
            self.max_gap, self.max_gap_at = now - self.begun_at, self.begun_at - self.t0
        elif now - self.last_tick > self.max_gap:  # a loop that never yielded
            self.max_gap, self.max_gap_at = now - self.last_tick, self.last_tick - self.t0
        self.timer.stop()
        self.deadline.stop()
        self.results.update({
            "first": self.first, "first_row": self.first_row,
            "first_ready_rows": self.first_ready_rows,
            "screen_full": self.screen_full() if self.config["mode"] == "all" else None,
            "stall": self.max_gap, "stall_at": self.max_gap_at,
            "rss_start": self.rss_start,
            "rss_peak": _peak_rss(), "settled": len(self.settled), "failed": self.failed,
            "cpu_start": self.cpu_start, "cpu_end": _cpu_by_thread()})
        from PyQt5.QtCore import QTimer

        QTimer.singleShot(0, self.app.quit)


# -- (a) the blog's naive loop --------------------------------------------------------------
def run_naive(app, config, meter, window_parts):
    import requests
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QPixmap

    labels = window_parts
    urls = config["urls"]
    meter.begin(range(len(urls)))
    outcomes = []
    for index, url in enumerate(urls):
        if meter.now() > config["timeout_s"]:
            meter.results["timed_out"] = True
            break
        pixmap = QPixmap()
        try:
            ok = pixmap.loadFromData(requests.get(url, timeout=30).content)
        except requests.RequestException:
            ok = False
        if ok:
            labels[index].setPixmap(pixmap.scaled(THUMB_W, THUMB_H, Qt.KeepAspectRatio,
                                                  Qt.SmoothTransformation))
        outcomes.append(ok)
    # Nothing is painted until the loop gives the event loop back, so no picture is on screen
    # before this: every row counts as ready now (first, screen full and all alike).
    for index, ok in enumerate(outcomes):
        meter.settle(index, ok)


def widget_window(count: int, buttons: bool):
    from PyQt5.QtWidgets import (QGridLayout, QLabel, QPushButton, QScrollArea, QWidget)
    from PyQt5.QtCore import QSize

    area = QScrollArea()
    area.resize(WINDOW_W, WINDOW_H)
    inner = QWidget()
    grid = QGridLayout(inner)
    parts = []
    for index in range(count):
        if buttons:
            part = QPushButton()
            part.setIconSize(QSize(THUMB_W, THUMB_H))
        else:
            part = QLabel()
        part.setFixedSize(CELL_W - 8, CELL_H - 8)
        grid.addWidget(part, index // COLUMNS, index % COLUMNS)
        parts.append(part)
    area.setWidget(inner)
    area.show()
    return area, parts


# -- (b) the blog's QNAM way ----------------------------------------------------------------
class _Downloader:
    """One per button, as in the blog: get, then decode and scale on the GUI thread."""

    def __init__(self, manager, url, button, index, meter):
        from PyQt5.QtCore import QUrl
        from PyQt5.QtNetwork import QNetworkRequest

        self.button, self.index, self.meter = button, index, meter
        self.reply = manager.get(QNetworkRequest(QUrl(url)))
        self.reply.finished.connect(self.on_finished)  # bound: a lambda slot would be collected

    def on_finished(self):
        from PyQt5.QtCore import Qt
        from PyQt5.QtGui import QIcon, QPixmap
        from PyQt5.QtNetwork import QNetworkReply

        ok = False
        if self.reply.error() == QNetworkReply.NoError:
            pixmap = QPixmap()
            if pixmap.loadFromData(self.reply.readAll()):
                self.button.setIcon(QIcon(pixmap.scaled(THUMB_W, THUMB_H, Qt.KeepAspectRatio,
                                                        Qt.SmoothTransformation)))
                ok = True
        self.reply.deleteLater()
        self.meter.settle(self.index, ok)


def run_qnam(app, config, meter, window_parts):
    from PyQt5.QtNetwork import QNetworkAccessManager

    manager = QNetworkAccessManager()
    urls = config["urls"]
    meter.begin(range(len(urls)))
    meter.keep = [manager] + [_Downloader(manager, url, window_parts[i], i, meter)
                              for i, url in enumerate(urls)]


# -- (c) Qt Quick Image and (d) ImageGallery -------------------------------------------------
QTQUICK_QML = """
import QtQuick 2.15
Rectangle {
    id: root
    width: %(w)d; height: %(h)d
    color: "#202020"
    property var urls: []
    property QtObject view: grid  // an alias would reach Python as a bare sip.voidptr
    GridView {
        id: grid
        objectName: "grid"
        anchors.fill: parent
        cellWidth: %(cw)d; cellHeight: %(ch)d
        cacheBuffer: %(cache)d
        model: root.urls
        delegate: Item {
            width: grid.cellWidth; height: grid.cellHeight
            Image {
                anchors.centerIn: parent
                width: %(tw)d; height: %(th)d
                source: modelData
                asynchronous: true
                sourceSize: Qt.size(%(tw)d, %(th)d)
                fillMode: Image.PreserveAspectFit
                onStatusChanged: report()
                Component.onCompleted: report()
                function report() {
                    if (status === Image.Ready) probe.settle(index, true)
                    else if (status === Image.Error) probe.settle(index, false)
                }
            }
        }
    }
}
"""

GALLERY_QML = """
import QtQuick 2.15
import ImageGallery 1.0
Rectangle {
    id: root
    width: %(w)d; height: %(h)d
    color: "#202020"
    property QtObject view: gallery
    // The model is made at t0 (makeModel), as an app that declares `ImageGalleryModel { urls:
    // ... }` or sets `ImageGallery.urls` makes it when the list arrives: its loader's start-up
    // (threads, transports) is inside the measured time, as Qt Quick's pixmap reader's is.
    Component {
        id: modelMaker
        ImageGalleryModel { thumbnailSize: Qt.size(%(tw)d, %(th)d) }
    }
    function makeModel() {
        gallery.model = modelMaker.createObject(root)
        return gallery.model
    }
    ImageGallery {
        id: gallery
        anchors.fill: parent
    }
}
"""


def make_probe(meter):
    """The QObject QML delegates report to."""
    from PyQt5.QtCore import QObject, pyqtSlot

    class _Probe(QObject):
        @pyqtSlot(int, bool)
        def settle(self, index, ok):
            meter.settle(index, ok)

    return _Probe()


def run_quick(app, config, meter, kind):
    from PyQt5.QtCore import QUrl
    from PyQt5.QtQuick import QQuickView

    view = QQuickView()
    view.setResizeMode(QQuickView.SizeRootObjectToView)
    engine = view.engine()
    probe = make_probe(meter)
    engine.rootContext().setContextProperty("probe", probe)
    params = {"w": WINDOW_W, "h": WINDOW_H, "cw": CELL_W, "ch": CELL_H, "tw": THUMB_W,
              "th": THUMB_H,
              # Qt Quick loads only instantiated delegates: to load "every thumbnail" of a
              # gallery the view must instantiate every delegate, so the buffer covers the list.
              "cache": 10_000_000 if config["mode"] == "all" else 2 * CELL_H}
    if kind == "gallery":
        import imagegallery

        imagegallery.install(engine)
        source = GALLERY_QML % params
    else:
        source = QTQUICK_QML % params
    path = os.path.join(config["workdir"], f"{kind}.qml")
    with open(path, "w") as handle:
        handle.write(source)
    view.setSource(QUrl.fromLocalFile(path))
    if view.status() != QQuickView.Ready:
        raise SystemExit("QML failed: " + "; ".join(e.toString() for e in view.errors()))
    view.resize(WINDOW_W, WINDOW_H)
    view.show()
    root = view.rootObject()
    # install() parks the provider on the engine's Python wrapper; QQuickView.engine() hands out a
    # temporary one, so without this reference the provider is collected and QML segfaults.
    meter.keep = [view, probe, engine]
    return view, root


def start_quick(app, config, meter, view, root, kind):
    urls = config["urls"]
    grid = root.property("view")
    if kind == "gallery":
        meter.begin(_initial_target(config, len(urls)), _launched_s_ago(config))
        model = _call_qml(root, "makeModel")
        meter.model = model
        options = config.get("gallery", {})
        if "max_connections" in options:
            model.setProperty("maxConnectionsPerHost", options["max_connections"])
        if options.get("http2"):
            model.setProperty("http2Cleartext", True)
        if "load_policy" in options:
            model.setProperty("loadPolicy", options["load_policy"])
        status_role = model.StatusRole

        def on_changed(top, bottom, roles=()):
            if roles and status_role not in roles:
                return
            for row in range(top.row(), bottom.row() + 1):
                status = model.status_of(row)
                if status == 1:
                    meter.settle(row, True)
                elif status == 3:
                    meter.settle(row, False)

        model.dataChanged.connect(on_changed)
        meter.keep.append(on_changed)
        on_screen = min(len(urls), COLUMNS * ROWS)
        meter.extra_check = lambda: _tiles_on_screen_ready(view, grid, on_screen)
        meter.first_is_shown = True

        def on_thumbnail_shown(index, url):
            meter.thumbnail_shown(index)
            if meter.first_screen_shown():  # nothing later is timed
                grid.thumbnailShown.disconnect(on_thumbnail_shown)

        grid.thumbnailShown.connect(on_thumbnail_shown)
        meter.keep.append(on_thumbnail_shown)
        model.setProperty("urls", urls)
    else:
        meter.begin(_initial_target(config, len(urls)), _launched_s_ago(config))
        root.setProperty("urls", urls)
    meter.grid = grid


def _launched_s_ago(config) -> Optional[float]:
    """For a client timed from launch, how long ago the driver started its process (both read
    the system's monotonic clock); else None."""
    if not config.get("from_launch"):
        return None
    return time.monotonic() - float(os.environ["BENCH_SPAWNED_AT"])


def _call_qml(item, function: str):
    """The QObject a QML function of `item` returns (its Python wrapper: `status_of` and the
    role enums are reachable on it)."""
    from PyQt5.QtCore import Q_RETURN_ARG, QMetaObject, QVariant

    returned = QMetaObject.invokeMethod(item, function, Q_RETURN_ARG(QVariant))
    return returned


def _tiles_on_screen_ready(view, grid, expected: int) -> bool:
    """At least `expected` ImageButtons inside the window's rectangle, each showing its
    thumbnail (or its error): a tile still being made is not there to be asked.

    Runs on the GUI thread at every tick once the rows are Ready, so it looks only at the
    view's delegates and a level or two inside them (a delegate can wrap its tile in a
    Loader), not at the whole item tree, which would cost the gallery a stall of its own.
    """
    from PyQt5.QtCore import QPointF

    content = view.contentItem()
    shown = 0
    for tile in _visible_tiles(grid):
        corner = tile.mapToItem(content, QPointF(0, 0))
        if corner.y() + tile.height() <= 0 or corner.y() >= WINDOW_H:
            continue
        shown += 1
        if tile.property("status") == 3:
            continue
        if not tile.property("ready"):
            return False
    return shown >= expected


def _visible_tiles(grid):
    """The ImageButtons the view's delegates hold, skipping delegates parked for reuse."""
    for delegate in grid.property("contentItem").childItems():
        tile = _image_button_in(delegate)
        if tile is not None and tile.isVisible():
            yield tile


def _image_button_in(item, depth: int = 3):
    if item.objectName() == "imageButton":
        return item
    if depth == 0:
        return None
    for child in item.childItems():
        found = _image_button_in(child, depth - 1)
        if found is not None:
            return found
    return None


def _initial_target(config, count):
    if config["mode"] == "screens":
        return range(min(count, COLUMNS * ROWS))
    return range(count)


def main() -> None:
    config_path, result_path = sys.argv[1], sys.argv[2]
    with open(config_path) as handle:
        config = json.load(handle)
    kind = config["kind"]

    if kind in ("naive", "qnam"):
        from PyQt5.QtWidgets import QApplication as App
    else:
        from PyQt5.QtGui import QGuiApplication as App
    from PyQt5.QtCore import QMetaObject, QTimer

    app = App([sys.argv[0]])
    results = {"kind": kind, "platform": app.platformName(), "timed_out": False}

    def on_done(meter, indices):
        elapsed = meter.now()
        if config["mode"] == "all":
            meter.results["all"] = elapsed
            meter.finish()
            return
        # screens: the first screen is ready; jump to the end, time the new one from the jump.
        if "screen1" not in meter.results:
            meter.results["screen1"] = elapsed
            count = len(config["urls"])
            last_screen = range(max(0, count - COLUMNS * ROWS), count)
            for index in last_screen:
                meter.unsettle(index)
            meter.jump_at = elapsed
            QMetaObject.invokeMethod(meter.grid, "positionViewAtEnd")
            meter.target = set(last_screen)
            QTimer.singleShot(0, meter.check)
        else:
            meter.results["screen2"] = elapsed - meter.jump_at
            meter.finish()

    meter = Meter(app, config, on_done)
    meter.results = results
    if kind in ("naive", "qnam"):
        window, parts = widget_window(len(config["urls"]), buttons=kind == "qnam")
        runner = run_naive if kind == "naive" else run_qnam
        QTimer.singleShot(SETTLE_MS, lambda: runner(app, config, meter, parts))
        if kind == "naive":
            # The loop returns only when done; it reports through `settle`, then we finish.
            QTimer.singleShot(SETTLE_MS + 1, lambda: (meter.results.setdefault(
                "all", meter.now()), meter.finish()))
    elif config.get("from_launch"):
        # The URLs are the app's from its start: set before the window's first frame.
        view, root = run_quick(app, config, meter, kind)
        view.frameSwapped.connect(meter.first_frame)
        start_quick(app, config, meter, view, root, kind)
    else:
        view, root = run_quick(app, config, meter, kind)
        QTimer.singleShot(SETTLE_MS, lambda: start_quick(app, config, meter, view, root, kind))

    app.exec_()
    if kind == "gallery" and getattr(meter, "model", None) is not None:
        loader = meter.model.loader
        results["loader_stats"] = dict(loader.stats)
    with open(result_path, "w") as handle:
        json.dump(results, handle)
    # Worker threads and QML teardown add nothing to the measurement; skip them.
    os._exit(0)


if __name__ == "__main__":
    main()
