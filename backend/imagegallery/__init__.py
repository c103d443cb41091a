"""ImageGallery: concurrent remote image thumbnails for Qt Quick, from Python.

A host app needs one call::

    engine = QQmlApplicationEngine()
    imagegallery.install(engine)   # types, image provider, QML import path
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
# engine address -> its image provider. PyQt ties a transferred provider's Python half to the
# engine's *wrapper*, and QQuickView.engine() hands out a temporary one: without this strong
# reference the provider's Python half dies while the engine still calls it.
_providers = {}


def register_qml_types() -> None:
    """Register every Python type QML sees, under `ImageGallery 1.0`. Safe to call twice."""
    global _types_registered
    if _types_registered:
        return
    from PyQt5.QtQml import qmlRegisterType, qmlRegisterUncreatableType

    from .model import ImageGalleryModel
    from .theme import ThemeLoader

    qmlRegisterType(ImageGalleryModel, QML_MODULE, QML_MAJOR, QML_MINOR, "ImageGalleryModel")
    qmlRegisterType(ThemeLoader, QML_MODULE, QML_MAJOR, QML_MINOR, "ThemeLoader")
    _types_registered = True


def install(engine) -> None:
    """Make `import ImageGallery 1.0` work in `engine`: types, image provider, import path.

    Call once per engine, on the GUI thread, before loading QML. QML warnings go to the
    `imagegallery.qml` logger.
    """
    from .provider import ThumbnailImageProvider
    from .qml_paths import qml_import_path

    from PyQt5 import sip

    register_qml_types()
    provider = ThumbnailImageProvider()
    engine.addImageProvider("imagegallery", provider)
    address = sip.unwrapinstance(engine)
    _providers[address] = provider
    engine.destroyed.connect(lambda *_: _providers.pop(address, None))
    engine.addImportPath(qml_import_path())
    if hasattr(engine, "warnings"):
        engine.warnings.connect(_log_qml_warnings)


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
