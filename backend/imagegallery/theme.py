"""ThemeLoader: a user's theme file, loaded by path and reloaded on every save.

A theme file is a QML document whose root object is `ThemeData` (or a built-in theme it extends);
see docs/themes.md. The loader compiles it with `QQmlComponent` in asynchronous mode, so reading
and compiling happen on the QML type loader's thread, and only the tiny `create()` runs on the GUI
thread. A file that does not load leaves the current theme in place: `errorString` and the
`failed` signal say why, naming the file and line. Saying it to the user is the caller's part
(the app's status line and log, a host's own); the `imagegallery.theme` logger records it only
at DEBUG.
"""
from __future__ import annotations

import enum
import itertools
import logging
import os
from typing import List, Optional

from PyQt5.QtCore import (Q_ENUM, QEventLoop, QFileSystemWatcher, QObject, QTimer, QUrl,
                          pyqtProperty, pyqtSignal, pyqtSlot)
from PyQt5.QtQml import QQmlComponent, QQmlEngine, QQmlError

from .url_policy import has_scheme

# Theme.qml's `names`, for the command line's check before any QML loads (a test keeps them equal).
BUILT_IN_THEMES = ("light", "dark", "high-contrast")

_log = logging.getLogger("imagegallery.theme")

# Editors save in several steps (truncate, write, rename); one reload after they settle.
_RELOAD_DELAY_MS = 120

_versions = itertools.count(1)
MAX_THEME_FILE_BYTES = 1024 * 1024


def local_path_of(source: str) -> Optional[str]:
    """A theme source as a local path: accepts a path or a file:// URL. None for a URL of any
    other scheme (qrc:, http:), which the loader does not read."""
    if source.startswith("file:"):
        return QUrl(source).toLocalFile()
    path = os.path.expanduser(source)
    if has_scheme(source) and not os.path.exists(path):  # "Mine:1.qml" beside us is a file
        return None
    return os.path.abspath(path)


def format_qml_error(error: QQmlError, fallback_path: str = "") -> str:
    """"path:line:column: description", with the local path rather than a file:// URL."""
    url = error.url()
    path = url.toLocalFile() if url.isLocalFile() else url.toString(QUrl.RemoveQuery)
    path = path or fallback_path
    where = path
    if error.line() > 0:
        where += f":{error.line()}"
        if error.column() > 0:
            where += f":{error.column()}"
    return f"{where}: {error.description()}" if where else error.description()


def _is_theme_data(obj: QObject) -> bool:
    meta = obj.metaObject()
    while meta is not None:
        if meta.className().startswith("ThemeData_QMLTYPE"):
            return True
        meta = meta.superClass()
    return False


class ThemeLoader(QObject):
    """Loads the theme file at `source` into `theme` and reloads it when the file changes.

    Usable from QML (`ThemeLoader { source: "/path/Sunset.qml" }`, then `Theme.custom:
    loader.theme`) and from Python (`ThemeLoader(engine=engine)`). Thread: GUI thread.
    """

    class Status(enum.IntEnum):
        Null = 0
        Ready = 1
        Loading = 2
        Error = 3

    Q_ENUM(Status)

    sourceChanged = pyqtSignal()
    themeChanged = pyqtSignal()
    statusChanged = pyqtSignal()
    errorStringChanged = pyqtSignal()
    watchChanged = pyqtSignal()
    loaded = pyqtSignal()  # a new theme object is in `theme`
    failed = pyqtSignal(str, arguments=["message"])  # `theme` is unchanged

    def __init__(self, parent: Optional[QObject] = None, engine: Optional[QQmlEngine] = None):
        super().__init__(parent)
        self._engine = engine
        self._source = ""
        self._theme: Optional[QObject] = None
        self._status = self.Status.Null
        self._error = ""
        self._watch = True
        self._component: Optional[QQmlComponent] = None
        self._stamp = None  # the file's (mtime, size, inode) at the last load
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._on_file_event)
        self._watcher.directoryChanged.connect(self._on_file_event)
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(_RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.reload)

    # -- properties --------------------------------------------------------------------------
    def _get_source(self) -> str:
        return self._source

    def _set_source(self, source) -> None:
        source = source.toString() if isinstance(source, QUrl) else str(source or "")
        if source == self._source:
            return
        self._source = source
        self.sourceChanged.emit()
        self._update_watch()
        # Queued, so a QML object has its context (and engine) before the first load.
        QTimer.singleShot(0, self.reload)

    source = pyqtProperty(str, _get_source, _set_source, notify=sourceChanged)

    @pyqtProperty(QObject, notify=themeChanged)
    def theme(self) -> Optional[QObject]:
        return self._theme

    @pyqtProperty(int, notify=statusChanged)
    def status(self) -> int:
        return int(self._status)

    @pyqtProperty(str, notify=errorStringChanged)
    def errorString(self) -> str:
        return self._error

    def _get_watch(self) -> bool:
        return self._watch

    def _set_watch(self, watch: bool) -> None:
        if bool(watch) != self._watch:
            self._watch = bool(watch)
            self._update_watch()
            self.watchChanged.emit()

    watch = pyqtProperty(bool, _get_watch, _set_watch, notify=watchChanged)

    @property
    def path(self) -> str:
        """The local file `source` names, or "" (none given, or a URL of another scheme)."""
        return (local_path_of(self._source) or "") if self._source else ""

    # -- loading -----------------------------------------------------------------------------
    @pyqtSlot()
    def reload(self) -> None:
        """Load `source` again; on failure the current theme stays."""
        if self._component is not None:  # a newer request wins over one still compiling,
            self._component.deleteLater()  # which would otherwise stay a child of this loader
        self._component = None
        if not self._source:
            self._set_theme(None)
            self._set_status(self.Status.Null, "")
            return
        path = self.path
        if not path:
            # Joined to the working folder, "qrc:/x/Dark.qml" was "/home/me/qrc:/x/Dark.qml: theme
            # file not found", which sent people looking for a file they had not named.
            self._fail(f"{self._source}: a theme file must be a local file (a path or a file: "
                       "URL); built-in themes are chosen by name (Theme.name)")
            return
        if not os.path.isfile(path):
            self._fail(f"{path}: theme file not found")
            return
        if os.path.getsize(path) > MAX_THEME_FILE_BYTES:
            # Compiled on Qt's loader thread, which no one can stop: 200,000 lines (6 MB) took
            # 146 s, and deleting the engine at exit waited for it.
            self._fail(f"{path}: a theme file of over {MAX_THEME_FILE_BYTES // (1024 * 1024)} MB "
                       "(a theme takes a few KB)")
            return
        self._stamp = self._stamp_of(path)
        engine = self._engine_for_loading()
        self._set_status(self.Status.Loading, self._error)
        component = QQmlComponent(engine, self)
        self._component = component
        # A fresh URL per load: the engine caches compiled files by URL, and the theme in use
        # keeps the previous compilation alive, so reloading the same URL would return it.
        url = QUrl.fromLocalFile(path)
        url.setQuery(f"v={next(_versions)}")
        component.statusChanged.connect(self._on_component_status)
        component.loadUrl(url, QQmlComponent.Asynchronous)
        if component.status() != QQmlComponent.Loading and component is self._component:
            # Already compiled (cached imports, or an error found at once): no signal will come.
            self._on_component_status(component.status(), component)

    def wait(self, timeout_ms: int = 10000) -> bool:
        """Block (running the event loop) until the current load settles. For CLI start-up."""
        if self._status != self.Status.Loading and not self._source_pending():
            return True
        loop = QEventLoop()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        self.statusChanged.connect(loop.quit)
        timer.start(timeout_ms)
        while self._status == self.Status.Loading or self._source_pending():
            if not timer.isActive():
                return False
            loop.exec_()
        self.statusChanged.disconnect(loop.quit)
        return True

    def _source_pending(self) -> bool:
        return bool(self._source) and self._status == self.Status.Null

    def _engine_for_loading(self) -> QQmlEngine:
        """The engine given, else one of this loader's own.

        PyQt5 gives QML a proxy that wraps this object, so QML's context (and engine) cannot be
        found from `self`; a small private engine compiles the theme instead. Theme.custom takes
        any QtObject, so an object from either engine can be shown.
        """
        if self._engine is None:
            from . import install

            self._engine = QQmlEngine(self)
            install(self._engine)
        return self._engine

    def _on_component_status(self, status, component: Optional[QQmlComponent] = None) -> None:
        component = component or self.sender()
        if component is None or component is not self._component or status == QQmlComponent.Loading:
            return
        self._component = None
        path = self.path
        if status == QQmlComponent.Error:
            self._fail(self._messages(component.errors(), path))
            component.deleteLater()
            return
        if status != QQmlComponent.Ready:  # Null: nothing to make
            component.deleteLater()
            return
        theme, runtime_errors = self._create_watching_errors(component)
        if theme is None:
            self._fail(self._messages(component.errors(), path) or f"{path}: could not create the theme")
            component.deleteLater()
            return
        if runtime_errors:
            # A binding that throws (`radius: nope.x`) still creates the object, with that value
            # left unset: refused like a compile error, so a typo never passes as a theme.
            theme.deleteLater()
            component.deleteLater()
            self._fail(self._messages(runtime_errors, path))
            return
        if not _is_theme_data(theme):
            theme.deleteLater()
            component.deleteLater()
            self._fail(f"{path}:1: the root object must be ThemeData (or LightTheme, DarkTheme, "
                       f"HighContrastTheme), not {_qml_type_name(theme)}")
            return
        QQmlEngine.setObjectOwnership(theme, QQmlEngine.CppOwnership)
        theme.setParent(self)
        # The component stays alive with its object: it owns the compiled type the object uses.
        component.setParent(theme)
        self._set_theme(theme)
        self._set_status(self.Status.Ready, "")
        _log.info("theme loaded from %s", path)
        self.loaded.emit()

    @staticmethod
    def _create_watching_errors(component: QQmlComponent):
        """Create the theme object, with the errors its own file's bindings raised meanwhile
        (the engine reports them as warnings, not as the component's errors)."""
        from . import _log_qml_warnings

        theme_file = component.url().adjusted(QUrl.RemoveQuery)
        raised: List[QQmlError] = []
        others: List[QQmlError] = []

        def collect(errors):
            for error in errors:
                theirs = error.url().adjusted(QUrl.RemoveQuery) == theme_file
                (raised if theirs else others).append(error)

        engine = component.engine()
        # The theme's own errors are this loader's failure, said through `failed`; install()'s
        # relay to the imagegallery.qml logger would say each once more, so it waits meanwhile.
        try:
            engine.warnings.disconnect(_log_qml_warnings)
            relayed = True
        except TypeError:  # an engine install() did not set up
            relayed = False
        engine.warnings.connect(collect)
        try:
            theme = component.create()
        finally:
            engine.warnings.disconnect(collect)
            if relayed:
                engine.warnings.connect(_log_qml_warnings)
                _log_qml_warnings(others)
        return theme, raised

    @staticmethod
    def _messages(errors: List[QQmlError], path: str) -> str:
        return "\n".join(format_qml_error(error, path) for error in errors)

    def _fail(self, message: str) -> None:
        # Not a warning: the caller hears of it through `failed` and `errorString` and says it
        # where it says things; a warning here printed it a second time, in every host that did.
        if self._theme is None:
            _log.debug("theme not loaded: %s", message)
        else:  # a reload of the same file, or another file given as the source
            _log.debug("theme not loaded, keeping the current one: %s", message)
        self._set_status(self.Status.Error, message)
        self.failed.emit(message)

    def _set_theme(self, theme: Optional[QObject]) -> None:
        if theme is self._theme:
            return
        old, self._theme = self._theme, theme
        self.themeChanged.emit()  # bindings move to the new object before the old one goes
        if old is not None:
            old.deleteLater()

    def _set_status(self, status: "ThemeLoader.Status", error: str) -> None:
        if error != self._error:
            self._error = error
            self.errorStringChanged.emit()
        if status != self._status:
            self._status = status
            self.statusChanged.emit()

    # -- watching ----------------------------------------------------------------------------
    def _update_watch(self) -> None:
        watched = self._watcher.files() + self._watcher.directories()
        if watched:
            self._watcher.removePaths(watched)
        if not (self._watch and self._source):
            return
        path = self.path
        # The folder too: an editor that saves by renaming replaces the file, which ends a
        # watch on the file itself.
        folder = os.path.dirname(path)
        if os.path.isdir(folder):
            self._watcher.addPath(folder)
        if os.path.isfile(path):
            self._watcher.addPath(path)

    def _on_file_event(self, _changed: str) -> None:
        path = self.path
        if path and os.path.isfile(path) and path not in self._watcher.files():
            self._watcher.addPath(path)
        if path and os.path.isfile(path) and self._stamp_of(path) != self._stamp:
            self._reload_timer.start()

    @staticmethod
    def _stamp_of(path: str):
        try:
            info = os.stat(path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)


def _qml_type_name(item) -> str:
    """The QML type `item` was declared as (Rectangle, QtObject), not the type its file makes
    of it (a theme file NotTheme.qml whose root is a Rectangle is of a type "NotTheme")."""
    meta = item.metaObject()
    while meta.superClass() is not None and "_QML" in meta.className():
        meta = meta.superClass()
    name = meta.className()
    if name == "QObject":
        return "QtObject"
    return name[len("QQuick"):] if name.startswith("QQuick") else name
