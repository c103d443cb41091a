"""Shared fixtures: headless Qt, a cold disk cache per test, the tests' own HTTP server."""
import logging
import os
import sys

# Before any QGuiApplication exists: headless rendering that works on CI without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_QUICK_BACKEND", "software")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/imagegallery-test-runtime")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
os.environ.pop("IMAGEGALLERY_TRANSPORT", None)
for proxy_variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                       "all_proxy", "NO_PROXY", "no_proxy"):
    os.environ.pop(proxy_variable, None)

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402
from PyQt5.QtCore import qWarning  # noqa: E402

from servers import ImageServer  # noqa: E402

# The TLS, h2c and CA fixtures live in tls_servers.py; registered once here.
pytest_plugins = ["tls_servers"]


@pytest.fixture(autouse=True, scope="session")
def garbage_collected_on_the_gui_thread(qapp):
    """As in the app: no worker thread frees a test's Qt objects (gui_thread_gc.py)."""
    from imagegallery.gui_thread_gc import collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread()


@pytest.fixture(autouse=True)
def cold_disk_cache(tmp_path, monkeypatch):
    """Every test starts with an empty thumbnail disk cache and memory cache of its own."""
    directory = tmp_path / "thumbnail-cache"
    monkeypatch.setenv("IMAGEGALLERY_CACHE_DIR", str(directory))
    from imagegallery import cache

    cache.shared_thumbnail_cache().clear()
    yield directory


@pytest.fixture
def image_server():
    server = ImageServer()
    yield server
    server.stop()


@pytest.fixture
def make_model():
    """Models closed at teardown. Request it after server fixtures: clients close first."""
    from imagegallery.model import ImageGalleryModel

    made = []

    def make(**properties):
        model = ImageGalleryModel()
        for name, value in properties.items():
            setattr(model, name, value)
        made.append(model)
        return model

    yield make
    for model in made:
        model.loader.close()


@pytest.fixture
def model(qtbot):
    """One ImageGalleryModel with the defaults, closed at teardown."""
    from imagegallery.model import ImageGalleryModel

    gallery = ImageGalleryModel()
    yield gallery
    gallery.loader.close()


class CountingDecoder:
    """simplejpeg, with a count of the decodes it did, of those it refused, and the bytes each
    was handed."""

    def __init__(self, real):
        self.real = real
        self.decodes = 0
        self.refusals = 0
        self.sizes = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def decode_jpeg(self, data, *args, **kwargs):
        self.decodes += 1
        self.sizes.append(len(data))
        try:
            return self.real.decode_jpeg(data, *args, **kwargs)
        except ValueError:
            self.refusals += 1
            raise


@pytest.fixture
def hold_decode(monkeypatch):
    """`hold_decode(body)` -> (held, release): the decode of `body` waits on its decode thread,
    `held` set, until `release` is set (at teardown at the latest). Request it after the models
    and servers, so it releases before they close."""
    import threading

    from imagegallery import loader as loader_module

    decode = loader_module.decode_thumbnail
    held, release = threading.Event(), threading.Event()
    bodies = []

    def holding(body, *args, **kwargs):
        if bytes(body) in bodies:
            held.set()
            release.wait(10)
        return decode(body, *args, **kwargs)

    monkeypatch.setattr(loader_module, "decode_thumbnail", holding)

    def hold(body: bytes):
        bodies.append(body)
        return held, release

    yield hold
    release.set()  # never a decode thread left waiting into the teardown


@pytest.fixture
def turbo(monkeypatch):
    """libjpeg-turbo's decoder (simplejpeg), counted."""
    from imagegallery import jpeg_turbo

    assert jpeg_turbo.available(), "simplejpeg is a dependency: pip install -e .[test]"
    counting = CountingDecoder(jpeg_turbo.simplejpeg)
    monkeypatch.setattr(jpeg_turbo, "simplejpeg", counting)
    return counting


class _QtLogHandler(logging.Handler):
    def emit(self, record):
        qWarning(self.format(record))


@pytest.fixture(autouse=True, scope="session")
def qml_warnings_fail_tests():
    """install() sends an engine's QML warnings to the `imagegallery.qml` logger, not to Qt's
    log, which is what pytest-qt watches. Handed on to Qt's log here, a QML warning still fails
    its test (qt_log_level_fail), and a test's qt_log_ignore marker still covers it."""
    handler = _QtLogHandler(logging.WARNING)
    qml_log = logging.getLogger("imagegallery.qml")
    qml_log.addHandler(handler)
    yield
    qml_log.removeHandler(handler)
