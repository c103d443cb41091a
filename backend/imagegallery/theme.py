"""Placeholder: ThemeLoader is written with the QML module (issue 3)."""
from PyQt5.QtCore import QObject


class ThemeLoader(QObject):
    """Loads a theme file by path and watches it for changes. Thread: GUI thread."""
