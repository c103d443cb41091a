"""ImageGallery: concurrent remote image thumbnails for Qt Quick, from Python.

A host app needs one call::

    engine = QQmlApplicationEngine()
    imagegallery.install(engine)   # types, image providers, QML import path
    engine.load("main.qml")        # import ImageGallery 1.0

See README.md and docs/architecture.md.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

QML_MODULE = "ImageGallery"
QML_MAJOR, QML_MINOR = 1, 0

_log = logging.getLogger("imagegallery.qml")
_types_registered = False
# engine address -> its image providers. PyQt ties a transferred provider's Python half to the
# engine's *wrapper*, and QQuickView.engine() hands out a temporary one: without this strong
# reference the provider's Python half dies while the engine still calls it.
_providers = {}


def register_qml_types() -> None:
    """Register every Python type QML sees, under `ImageGallery 1.0`. Safe to call twice."""
    global _types_registered
    if _types_registered:
        return
    from PyQt5.QtQml import qmlRegisterType

    from .model import ImageGalleryModel
    from .theme import ThemeLoader

    qmlRegisterType(ImageGalleryModel, QML_MODULE, QML_MAJOR, QML_MINOR, "ImageGalleryModel")
    qmlRegisterType(ThemeLoader, QML_MODULE, QML_MAJOR, QML_MINOR, "ThemeLoader")
    _types_registered = True


def install(engine) -> None:
    """Make `import ImageGallery 1.0` work in `engine`: types, image providers, import path.

    Two providers: a synchronous one for thumbnails in memory, and an asynchronous one that
    waits for the loader to bring back a thumbnail no longer in memory (provider.py). Also
    starts the process's warm-up thread (decoders, Qt's TLS answer, libcurl), so they load while
    the app compiles its QML. (To keep the library's threads from freeing the app's Qt objects
    in garbage cycles, see gui_thread_gc.collect_garbage_on_gui_thread.)

    Call once per engine, on the GUI thread, before loading QML. The engine's QML warnings and
    errors go to the `imagegallery.qml` logger instead of Qt's own printing, so each is said
    once: on stderr by Python's logging where the host configured none, else where the host's
    logging sends it. The engine is deleted when the application quits (see below).
    """
    from .loader import warm_up_in_background
    from .model import EVICTED_PROVIDER_NAME, MEMORY_PROVIDER_NAME
    from .provider import EvictedThumbnailProvider, MemoryThumbnailProvider
    from .qml_paths import qml_import_path

    from PyQt5 import sip

    warm_up_in_background()  # decoders and libraries load while the app compiles its QML
    register_qml_types()
    provider = EvictedThumbnailProvider()
    memory_provider = MemoryThumbnailProvider(provider.relay)
    engine.addImageProvider(EVICTED_PROVIDER_NAME, provider)
    engine.addImageProvider(MEMORY_PROVIDER_NAME, memory_provider)
    address = sip.unwrapinstance(engine)
    _providers[address] = (provider, memory_provider)
    engine.destroyed.connect(lambda *_: _providers.pop(address, None))
    engine.addImportPath(qml_import_path())
    # Qt prints every warning it hands to this signal too: with both, a host saw each QML error
    # twice, and one that configured logging (to a file, say) still got Qt's copy on stderr.
    engine.setOutputWarningsToStandardError(False)
    engine.warnings.connect(_log_qml_warnings)
    _load_font_configuration()
    _register_network_meta_types()
    # Deleting the engine later, from Python (at interpreter exit, or with `del`), joins Qt's
    # pixmap reader thread while holding the GIL, which that thread may need for the provider:
    # a hang or a crash at exit, once in a few runs. Deleting it as the application quits runs
    # inside exec_(), where the GIL is free. After app.exec_() returns the engine is gone.
    from PyQt5.QtCore import QCoreApplication

    application = QCoreApplication.instance()
    if application is not None:
        application.aboutToQuit.connect(engine.deleteLater)


def delete_engine(engine) -> None:
    """Delete a QML engine that uses the image providers, without risking a deadlock.

    Deleting an engine joins Qt's pixmap reader thread, which may be inside the provider's
    Python code waiting for the GIL, while a plain `del engine` or `sip.delete(engine)` holds the
    GIL: a hang at exit, once in a few runs. This deletes it from a short event loop instead
    (QEventLoop.exec_ releases the GIL). `install` already deletes the engine as the
    application quits; call this to drop an engine while the application goes on.
    """
    from PyQt5 import sip
    from PyQt5.QtCore import QEventLoop, QTimer

    if sip.isdeleted(engine):
        return  # deleted already, as the application quit
    loop = QEventLoop()
    engine.destroyed.connect(loop.quit)
    QTimer.singleShot(5000, loop.quit)  # a bound: never hang here
    engine.deleteLater()
    loop.exec_()


def _load_font_configuration() -> None:
    # A tile's first text (a tooltip under a resting pointer, an error face) is often the first
    # text a gallery window lays out, and the first layout reads the font configuration: 8 ms
    # idle, 16-30 ms while images load, all on the GUI thread. Measuring one string now moves
    # that to start-up, where an app with any text pays it anyway.
    from PyQt5.QtGui import QFontMetricsF, QGuiApplication

    if isinstance(QGuiApplication.instance(), QGuiApplication):  # not a QCoreApplication
        QFontMetricsF(QGuiApplication.font()).horizontalAdvance("ImageGallery")


_network_meta_types_registered = False


def _register_network_meta_types() -> None:
    # QNAM's get() connects each new reply's signals by name, and Qt 5 looks a meta-type name up
    # by scanning every registered type in order. QML registers hundreds as it loads (about 650
    # here, Qt Quick's and Controls' types), and the types QNAM registers at its first request come
    # after them, so each lookup scanned them all: get() cost 90-100 us on the GUI thread. One
    # request made before QML loads, and aborted at once, registers QNAM's types first: 55-70 us.
    global _network_meta_types_registered
    if _network_meta_types_registered:
        return
    _network_meta_types_registered = True
    from PyQt5.QtCore import QUrl
    from PyQt5.QtNetwork import QNetworkAccessManager, QNetworkRequest

    manager = QNetworkAccessManager()
    manager.get(QNetworkRequest(QUrl("http://127.0.0.1:0/"))).abort()  # port 0: nothing answers
    # Python owns the manager: it goes, with the aborted reply (its child), as this returns.


def _log_qml_warnings(warnings) -> None:
    for warning in warnings:
        _log.warning("%s", warning.toString())


def __getattr__(name):
    # Lazy, so `import imagegallery` stays cheap and needs no QGuiApplication.
    if name == "ImageGalleryModel":
        from .model import ImageGalleryModel

        return ImageGalleryModel
    if name == "ImageLoader":
        from .loader import ImageLoader

        return ImageLoader
    if name == "LoadLimits":
        from .limits import LoadLimits

        return LoadLimits
    raise AttributeError(name)
