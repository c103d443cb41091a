"""Where the QML module `ImageGallery` is found: the source tree first, compiled resources next."""
from __future__ import annotations

import os

_SOURCE_QML = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "qml"))


def qml_import_path() -> str:
    """The import path that holds ImageGallery/qmldir.

    An installed package carries qml/ as a compiled Qt resource (built from resources.qrc by
    setup.py); a source checkout uses the folder itself, so QML edits show without a rebuild.
    """
    if os.path.isfile(os.path.join(_SOURCE_QML, "ImageGallery", "qmldir")):
        return _SOURCE_QML
    from . import _qml_resources  # noqa: F401  (registers qrc:/qml on import)

    return "qrc:/qml"


def qml_file_url(name: str) -> str:
    """A URL for one file of the module, e.g. qml_file_url("Main.qml")."""
    from PyQt5.QtCore import QUrl

    root = qml_import_path()
    if root.startswith("qrc:"):
        return f"{root}/ImageGallery/{name}"
    return QUrl.fromLocalFile(os.path.join(root, "ImageGallery", name)).toString()
