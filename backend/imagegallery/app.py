"""The `imagegallery` command: a window of image thumbnails, a screenshot maker, a picker.

Python owns everything here that touches files and processes: argument parsing, reading URL
lists, starting the offline demo server, the screenshot and the picker's stdout. The window itself
is qml/ImageGallery/Main.qml, which talks back through signals.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import stat
import sys
import urllib.parse
from typing import List, Optional, Sequence

from . import __version__
from .gui_thread_gc import collect_garbage_on_gui_thread

EXIT_OK = 0
EXIT_CANCELLED = 1
EXIT_USAGE = 2
EXIT_QML = 3
EXIT_SCREENSHOT = 4
EXIT_INTERRUPTED = 130  # Ctrl+C, as a shell reports it (128 + SIGINT)
SCREENSHOT_TIMEOUT_S = 120.0

_EPILOG = """\
examples:
  imagegallery                          offline demo (a local server of generated images)
  imagegallery https://example.org/a.jpg photos/b.png
  imagegallery --file urls.txt          one URL or path a line; blank lines and # comments skipped
  find . -name '*.jpg' | imagegallery --file -
  imagegallery --pick --file urls.txt   print the chosen URL(s), one a line
  imagegallery --qml examples/PhotoPicker.qml

exit status:
  0  success (for --pick: something was chosen and printed)
  1  --pick was cancelled, the window closed without a choice, or the choice could not be
     written to standard output
  2  usage error: a bad option, a missing file or unreadable URL list, an unknown theme name,
     or a theme file with a QML error (the message names the file and line)
  3  the QML window (or the --qml file) failed to load; the QML errors are printed
  4  --screenshot could not render or save the picture in time, or the window was closed first
  130  interrupted (Ctrl+C); under --pick that is a cancel, 1
"""

_log = logging.getLogger("imagegallery.app")
# What QQmlApplicationEngine prints, through Qt's message handler, before the reasons a root QML
# file did not load: the app's own error (_qml_failed) says it, with the reasons.
_QML_LOAD_FAILED = "QQmlApplicationEngine failed to load component"


def _bypass_proxies_for_loopback() -> None:
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        for loopback in ("127.0.0.1", "localhost"):
            if loopback not in hosts:
                hosts.append(loopback)
        os.environ[name] = ",".join(hosts)


class UsageError(Exception):
    """A mistake in the command line or its files, reported as one line and exit status 2."""


# -- argument handling (pure: no Qt application needed) --------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .transport.select import TRANSPORT_MODES

    parser = argparse.ArgumentParser(
        prog="imagegallery",
        description="Show image URLs (or local image files) as a gallery of thumbnails.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help="image URLs or local image paths; none runs the offline demo")
    parser.add_argument("-f", "--file", metavar="PATH", action="append",
                        help="read URLs from PATH, one a line ('-' reads standard input); "
                             "may be given more than once")
    parser.add_argument("--theme", metavar="NAME|PATH", default=None,
                        help="light, dark, high-contrast, or a theme .qml file "
                             "(reloaded when it changes; see docs/themes.md)")
    parser.add_argument("--thumbnail", metavar="WxH", default=None, type=_thumbnail_size,
                        help="thumbnail box in logical pixels (default 240x140)")
    parser.add_argument("--max-connections", metavar="N", type=_connection_count,
                        help="requests at once per host (default 6)")
    parser.add_argument("--transport", choices=TRANSPORT_MODES,
                        help="network stack: qt (QNetworkAccessManager), curl (libcurl), "
                             "or auto (default)")
    parser.add_argument("--ca-file", metavar="PATH",
                        help="extra CA certificates (PEM) trusted for https")
    parser.add_argument("--revalidate", action="store_true",
                        help="show disk-cached thumbnails at once, then ask each server whether "
                             "its image changed (ETag/Last-Modified) and replace what did")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="render once every tile has settled, save the window, exit")
    parser.add_argument("--timeout", metavar="SECONDS", type=_timeout_seconds, default=None,
                        help="give up on --screenshot after this long (default "
                             f"{SCREENSHOT_TIMEOUT_S:g})")
    parser.add_argument("--pick", action="store_true",
                        help="image picker: print the chosen URL(s) on stdout and exit "
                             "(Enter or double click picks; Esc cancels with status 1)")
    parser.add_argument("--qml", metavar="APP.qml",
                        help="run any QML file with `import ImageGallery 1.0` available")
    parser.add_argument("--version", action="version", version=f"imagegallery {__version__}")
    return parser


# Qt timers take milliseconds in a signed 32-bit int: about 24 days, far past any use here.
_MAX_TIMEOUT_S = 2_000_000


def _timeout_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= _MAX_TIMEOUT_S:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected seconds above 0, at most {_MAX_TIMEOUT_S}, "
                                         f"not '{text}'")
    return seconds


def _thumbnail_size(text: str):
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 240x140, not '{text}'")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 2048 and 16 <= height <= 2048):
        raise argparse.ArgumentTypeError(f"each side must be 16 to 2048 pixels, not '{text}'")
    return width, height


def _connection_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not '{text}'") from None
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError(f"must be 1 to 256, not {count}")
    return count


def parse_url_lines(text: str) -> List[str]:
    """URLs from a list: one a line, blank lines and `#` comment lines skipped."""
    urls = []
    # A list saved by Windows Notepad starts with a byte order mark, which strip() keeps.
    for line in text.lstrip("\ufeff").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def parse_pasted_text(text: str) -> List[str]:
    """URLs and paths pasted into the toolbar, one a line or several on a line. A new entry
    starts at a piece that has a scheme, starts with /, ~ or ., or names an existing file, or
    after an entry that is a whole existing file already (unless the two together begin the
    name of another: "holiday 2.png" beside a file "holiday"); any other piece continues the
    entry before it, with the spaces between them as pasted (a file manager's
    "file:///home/me/My Photos/a.png"). So bare names not on disk ("a.png b.png") stay one entry.
    Thread: not the GUI thread (it asks the disk)."""
    import re

    from .url_policy import has_scheme

    urls: List[str] = []
    for line in parse_url_lines(text):
        spans: List[List[int]] = []  # [start, end] of each entry in the line
        for match in re.finditer(r"\S+", line):
            piece = match.group()
            if not spans or has_scheme(piece) or piece.startswith(("/", "~", ".")) \
                    or os.path.exists(piece) or (
                        _names_a_file(line[spans[-1][0]:spans[-1][1]])
                        and not _begins_a_name(line[spans[-1][0]:match.end()])):
                spans.append([match.start(), match.end()])
            else:
                spans[-1][1] = match.end()
        urls.extend(line[start:end] for start, end in spans)
    return urls


def _pasted_path(entry: str) -> Optional[str]:
    """The local path a pasted entry names (a path, or a file: URL), or None for another URL."""
    from urllib.parse import unquote, urlsplit

    from .url_policy import has_scheme

    if entry[:5].lower() == "file:":
        return unquote(urlsplit(entry).path)
    return None if has_scheme(entry) else os.path.expanduser(entry)


def _names_a_file(entry: str) -> bool:
    """Whether a pasted entry is an existing file as it stands: a name after it is another
    entry, not the rest of this one ("a.png nosuch.png" lost a.png)."""
    path = _pasted_path(entry)
    return path is not None and os.path.isfile(path)


def _begins_a_name(entry: str) -> bool:
    """Whether a pasted entry is the start of a name in its folder."""
    path = _pasted_path(entry)
    if path is None:
        return False
    folder, start = os.path.split(path)
    try:
        return any(name.startswith(start) for name in os.listdir(folder or "."))
    except OSError:
        return False


def resolve_listed_path(entry: str, folder: str) -> str:
    """A list file's entry as the app loads it: a path (an entry without a scheme, or a file
    whose name holds a colon, as `ls > list.txt` writes it) made absolute against the list's
    folder, where the list's author saw it; a URL as written."""
    from .url_policy import has_scheme

    if entry[:8].lower().startswith(("http:", "https:", "file:")):
        return entry  # a URL, without asking the disk: a list of 100,000 took 20 times longer
    path = os.path.join(folder, os.path.expanduser(entry))  # an absolute entry stays itself
    if not has_scheme(entry) or os.path.exists(path):
        return os.path.abspath(path)
    return entry


# A list file larger than this is refused: 100,000 URLs take about 10 MB, and /dev/zero, or a
# video picked by mistake, was read whole until memory ran out.
MAX_URL_LIST_BYTES = 64 * 1024 * 1024
# And one of more entries: a list of one-letter lines made a row each, 4 million from 8 MB
# (1.5 GB, and the window's Open list... froze for 4 s adding them).
MAX_URL_LIST_ENTRIES = 100_000


def read_url_list(path: str, stdin=None) -> List[str]:
    """The URLs of a list file ('-' for standard input), its paths made absolute against the
    list's folder (standard input's, or a pipe's such as `--file <(ls *.jpg)`: the working
    folder). Raises UsageError with the reason."""
    if path != "-":
        path = os.path.expanduser(path)  # `--file=~/list.txt`: no shell expands it after "="
    # realpath: `--file /dev/stdin < album/list.txt` is album/list.txt, not a file in /dev.
    folder = os.path.dirname(os.path.realpath(path)) if os.path.isfile(path) else os.getcwd()
    entries = _read_url_lines(path, stdin)
    if len(entries) > MAX_URL_LIST_ENTRIES:
        raise UsageError(f"URL list has over {MAX_URL_LIST_ENTRIES:,} entries ({len(entries):,}): "
                         f"{'standard input' if path == '-' else path}")
    return [resolve_listed_path(entry, folder) for entry in entries]


def _at_most_list_size(data, source: str):
    if len(data) > MAX_URL_LIST_BYTES:
        raise UsageError(f"URL list is over {MAX_URL_LIST_BYTES // (1024 * 1024)} MB, "
                         f"more than any list of images: {source}")
    return data


def _list_text(data: bytes) -> str:
    """A list file's text: UTF-8 (a BOM skipped), or UTF-16 or UTF-32 where a BOM says so
    (Windows Notepad's "Unicode" is UTF-16). Raises UnicodeDecodeError."""
    if data[:4] in (b"\xff\xfe\0\0", b"\0\0\xfe\xff"):
        return data.decode("utf-32")  # whose BOM starts as UTF-16's does
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _read_url_lines(path: str, stdin=None) -> List[str]:
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin
        if stream is None:  # Python's sys.stdin when descriptor 0 is closed
            raise UsageError("cannot read the URL list from standard input: it is closed")
        try:
            # The bytes, decoded strictly as a list file is: a picture piped in by mistake is
            # "not UTF-8 text", not 30 tiles of junk URLs (sys.stdin escapes what it cannot read).
            raw = getattr(stream, "buffer", None)
            if raw is not None:
                text = _list_text(_at_most_list_size(raw.read(MAX_URL_LIST_BYTES + 1),
                                                     "standard input"))
            else:  # a text stream a caller handed in
                text = _at_most_list_size(stream.read(MAX_URL_LIST_BYTES + 1), "standard input")
            return parse_url_lines(text)
        except UnicodeDecodeError:
            raise UsageError("URL list is not UTF-8 text: standard input") from None
        except OSError as error:
            raise UsageError(f"cannot read the URL list from standard input: {error}") from None
    try:
        with open(path, "rb") as handle:
            return parse_url_lines(_list_text(
                _at_most_list_size(handle.read(MAX_URL_LIST_BYTES + 1), path)))
    except FileNotFoundError:
        raise UsageError(f"URL list not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"URL list is a folder, not a file: {path}") from None
    except UnicodeDecodeError:
        raise UsageError(f"URL list is not UTF-8 text: {path}") from None
    except OSError as error:
        raise UsageError(f"cannot read URL list {path}: {error.strerror}") from None


def stdin_holds_input(stdin=None) -> bool:
    """Whether standard input is a pipe or a non-empty file, without reading it: reading a pipe
    nobody writes to (an IDE's, a launcher's) would hang the app before its window opens."""
    stream = stdin if stdin is not None else sys.stdin
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no stdin, or a stream without a descriptor
        return False
    return stat.S_ISFIFO(status.st_mode) or (stat.S_ISREG(status.st_mode) and status.st_size > 0)


def collect_urls(args, stdin=None) -> List[str]:
    from .url_policy import has_scheme

    urls: List[str] = []
    for entry in args.urls:
        is_path = os.path.exists(os.path.expanduser(entry))
        if entry == "-" and not is_path:  # `cat urls.txt | imagegallery -`, as many tools take it
            raise UsageError("no such file: - (to read URLs from standard input, use --file -)")
        if not has_scheme(entry) and not is_path:
            raise UsageError(f"no such file: {entry} (give a URL with its scheme, e.g. https://...)")
        if is_path and has_scheme(entry):
            # A file named like "photo:1.jpg", as a shell glob gives it: read as a URL of the
            # scheme "photo". Made absolute, it can only be the file.
            entry = os.path.abspath(os.path.expanduser(entry))
        urls.append(entry)
    lists = args.file or []
    if lists.count("-") > 1:
        raise UsageError("--file - is given twice: standard input can be read once")
    for path in lists:
        listed = read_url_list(path, stdin)
        if not listed:
            source = "standard input" if path == "-" else f"URL list {path}"
            raise UsageError(f"{source} holds no URLs "
                             "(one a line; blank lines and # comments are skipped)")
        urls.extend(listed)
        if len(urls) > MAX_URL_LIST_ENTRIES:  # several lists, each under the cap, or URLs beside
            raise UsageError(f"the URLs given hold over {MAX_URL_LIST_ENTRIES:,} entries in all "
                             f"({len(urls):,})")
    return urls


def resolve_theme(value: str):
    """(built-in name, None) or (None, theme file path). Raises UsageError."""
    from .theme import BUILT_IN_THEMES

    name = value.strip().lower().replace("_", "-").replace(" ", "-")
    if name == "highcontrast":
        name = "high-contrast"
    if name in BUILT_IN_THEMES:
        return name, None
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme.lower() == "file":  # as a file manager or QML hands a file around
        value = urllib.parse.unquote(urllib.parse.urlsplit(value).path)
    elif len(scheme) > 1:  # a URL ("C:" is a drive)
        raise UsageError(f"theme {value}: a theme file must be a local file (a path or a file: "
                         "URL); built-in themes are chosen by name")
    path = os.path.expanduser(value)
    if os.path.isfile(path):
        return None, os.path.abspath(path)
    if os.path.isdir(path):
        raise UsageError(f"theme {value} is a folder; give a theme .qml file")
    if value.endswith(".qml") or os.sep in value or "/" in value:
        raise UsageError(f"theme file not found: {value}")
    raise UsageError(f"unknown theme '{value}' (choose {', '.join(BUILT_IN_THEMES)}, "
                     "or give the path of a theme .qml file)")


# -- Qt side ---------------------------------------------------------------------------------
def _one_blas_thread() -> None:
    """Ask numpy's OpenBLAS for one thread, unless the user chose a number.

    numpy comes with the JPEG decoder (simplejpeg hands back arrays), and at import OpenBLAS
    starts a thread for every core but one; each spins about 0.1 s of CPU waiting for matrix
    work this app never gives it, at start-up, while the first screen loads (measured on two
    cores: the decode threads' start-up CPU went from 0.16-0.20 s to 0.06-0.11 s). Read once,
    when numpy loads; set before the app's QGuiApplication and any thread exist. The library
    leaves it to the application: one thread could slow a host's own numpy.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _application():
    from PyQt5.QtCore import QCoreApplication, QLoggingCategory, Qt
    from PyQt5.QtGui import QGuiApplication

    existing = QGuiApplication.instance()
    if existing is not None:
        return existing
    # Only for a process the app starts: a host (or a test) that calls main() in-process with
    # its own application keeps its environment.
    _one_blas_thread()
    QCoreApplication.setAttribute(Qt.AA_EnableHighDpiScaling)
    # Qt 5.15 warns once that it cannot load OpenSSL 3 ("Incompatible version of OpenSSL"); the
    # app fetches https through libcurl instead, so to its users the line is only noise. Rules
    # the user sets (QT_LOGGING_RULES) still win.
    QLoggingCategory.setFilterRules("qt.network.ssl.warning=false")
    app = QGuiApplication([sys.argv[0] if sys.argv else "imagegallery"])
    app.setApplicationName("imagegallery")
    app.setApplicationVersion(__version__)
    # Qt Quick's file dialog ("Open list...") keeps its size in QSettings, which without an
    # organization warns on every open and writes under "Unknown Organization".
    app.setOrganizationName("imagegallery")
    app.setOrganizationDomain("imagegallery.invalid")
    collect_garbage_on_gui_thread()  # the app's own process: no thread of ours frees a Qt object
    return app


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        # One prefix, as on the app's other lines: the logger's name ("imagegallery.theme")
        # after "imagegallery: " only said the program's name twice.
        logging.basicConfig(level=logging.WARNING, format="imagegallery: %(message)s")


def _interrupt_at_once(status: int) -> bool:
    """Ctrl+C before the event loop runs (reading standard input, a theme compiling, the window
    being made) ends the process with `status` there and then. Python's KeyboardInterrupt,
    raised inside a slot Qt called, aborted it instead (exit 134). Only where Ctrl+C is still
    Python's own (the console script): a caller's handler of its own is left alone. Returns
    whether it was installed."""
    def end(*_):
        sys.stderr.flush()
        os._exit(status)

    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return False
        signal.signal(signal.SIGINT, end)
        return True
    except ValueError:  # not the main thread (an embedding host): leave signals alone
        return False


def _install_interrupt(app) -> None:
    """Ctrl+C quits: Python only runs signal handlers when the interpreter gets control."""
    from PyQt5.QtCore import QTimer

    try:
        signal.signal(signal.SIGINT, lambda *_: app.exit(EXIT_INTERRUPTED))
    except ValueError:  # not the main thread (an embedding host): leave signals alone
        return
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    app._imagegallery_interrupt_timer = timer


def image_buttons(window) -> list:
    """The ImageButton tiles the gallery has created (visible ones and its cache buffer)."""
    return _items_named(window.contentItem(), "imageButton")


def gallery_cells(window) -> list:
    """The gallery's cells in use, one per row on screen or in its cache buffer; each holds
    an ImageButton once that has been made (ImageGallery.qml). A cell in the view's pool
    (reuseItems) stays visible, only culled, and shows no row: its index is -1."""
    return [cell for cell in _items_named(window.contentItem(), "galleryCell")
            if cell.isVisible() and cell.property("index") >= 0]


def cell_tile(cell):
    """The ImageButton a gallery cell holds, or None while it is being made."""
    tiles = _items_named(cell, "imageButton")
    return tiles[0] if tiles else None


def _items_named(root, object_name: str) -> list:
    """Items under `root` in the visual tree (a view's delegates have no QObject parent)."""
    from PyQt5.QtQuick import QQuickItem

    found, stack = [], [root]
    while stack:
        item = stack.pop()
        if item.objectName() == object_name:
            found.append(item)
        stack.extend(child for child in item.childItems() if isinstance(child, QQuickItem))
    return found


def tiles_settled(window) -> bool:
    """True when every cell of the gallery shows its tile's final face: the image drawn, or
    the error."""
    from PyQt5.QtQuick import QQuickItem

    from .model import ImageGalleryModel

    ready, error = ImageGalleryModel.Status.Ready, ImageGalleryModel.Status.Error
    for cell in gallery_cells(window):
        # The tile and its face are made asynchronously (ImageGallery.qml, ImageButton.qml):
        # wait for them, not only for the row.
        tile = cell_tile(cell)
        if tile is None:
            return False
        status = tile.property("status")
        if status not in (ready, error):
            return False
        if status == ready and not tile.property("ready"):
            return False
        if status == error and tile.findChild(QQuickItem, "errorFace") is None:
            return False
    return True


def grab_window(window):
    """The window's pixels as a QImage; works with QT_QPA_PLATFORM=offscreen and under X."""
    from PyQt5.QtGui import QImage

    image = window.grabWindow()
    if image is not None and not image.isNull() and not _blank(image):
        return image
    screen = window.screen()
    if screen is not None:
        pixmap = screen.grabWindow(window.winId())
        if not pixmap.isNull():
            return pixmap.toImage()
    return QImage()


def _blank(image) -> bool:
    first = image.pixel(0, 0)
    step = max(1, image.width() // 16)
    return all(image.pixel(x, y) == first for x in range(0, image.width(), step)
               for y in range(0, image.height(), max(1, image.height() // 16)))


def _off_the_gui_thread(work, deliver) -> None:
    """Run `work()` on a thread of its own and hand `deliver` its result (or the exception it
    raised) on the GUI thread: reading a URL list, or asking the disk whether pasted lines are
    paths, is file I/O, which the GUI thread never does (a 15 MB list took it 108 ms)."""
    import threading

    from PyQt5.QtCore import QObject, pyqtSignal

    class Relay(QObject):
        done = pyqtSignal(object)

    relay = Relay()  # made here, on the GUI thread: its signal is queued back to it
    relay.done.connect(lambda outcome: (deliver(outcome), relay.deleteLater()))

    def run() -> None:
        try:
            outcome = work()
        except Exception as error:  # the caller says what it means for the window
            outcome = error
        relay.done.emit(outcome)

    threading.Thread(target=run, name="imagegallery-list", daemon=True).start()


class _Session:
    """One run of the window: engine, model, demo server; `picked` and `screenshot_saved` say
    what main() needs for the exit status besides the event loop's own."""

    def __init__(self, app, args, urls: List[str], theme_name: Optional[str],
                 theme_path: Optional[str]):
        self.app = app
        self.args = args
        self.urls = urls
        self.theme_name = theme_name
        self.theme_path = theme_path
        self.engine = None
        self.window = None
        self.model = None
        self.server = None
        self.theme_loader = None
        self.load_messages: List[str] = []
        self.picked = False
        self.screenshot_saved = False
        self._screenshot_timer = None
        self._settle_timer = None

    # The engine and window live as long as this object; main() drops it after exec.
    def start(self) -> int:
        from PyQt5.QtCore import QSize, Qt, QUrl
        from PyQt5.QtGui import QWindow
        from PyQt5.QtQml import QQmlApplicationEngine

        from . import install
        from .qml_paths import qml_file_url
        from .qt_messages import said_by_the_app
        from .theme import ThemeLoader

        self.engine = engine = QQmlApplicationEngine()
        install(engine)
        engine.warnings.connect(self._collect_warnings)

        if self.theme_path:
            self.theme_loader = ThemeLoader(engine=engine)
            self.theme_loader.source = self.theme_path
            loaded = self.theme_loader.wait(10000)
            if not loaded or self.theme_loader.status != ThemeLoader.Status.Ready:
                message = self.theme_loader.errorString or f"{self.theme_path}: theme did not load in time"
                raise UsageError(f"theme file has an error:\n{message}")
            # A later save that fails keeps the theme shown; the status line says why, and so
            # does the log, for a window nobody is looking at.
            self.theme_loader.failed.connect(self._on_theme_not_reloaded)

        if self.args.qml:
            path = os.path.abspath(os.path.expanduser(self.args.qml))
            windows_before = set(self.app.topLevelWindows())
            # A file that fails to load is said once, as this app's error with its reasons;
            # install()'s logger would print each reason just before it.
            qml_log = logging.getLogger("imagegallery.qml")
            level = qml_log.level
            qml_log.setLevel(logging.CRITICAL)
            first_message = len(self.load_messages)
            try:
                with said_by_the_app(_QML_LOAD_FAILED):
                    engine.load(QUrl.fromLocalFile(path))
            finally:
                qml_log.setLevel(level)
            if not engine.rootObjects():
                return self._qml_failed(path)
            for message in self.load_messages[first_message:]:  # a file that loaded: shown
                qml_log.warning("%s", message)
            made = [window for window in self.app.topLevelWindows()
                    if isinstance(window, QWindow) and window not in windows_before]
            if made and not any(window.isVisible() for window in made):
                # Qt's Window and ApplicationWindow start hidden; a file that forgot
                # `visible: true` showed nothing and never ended. qmlscene shows it; so do we.
                made[0].show()
            if not made:
                # An Item root (or a QtObject holding no window) loads without an error and
                # shows nothing: the app would sit there, windowless, until killed. A QtObject
                # holding its windows in properties, as Qt's own examples do, is fine.
                root = engine.rootObjects()[0]
                meta = root.metaObject()
                while "_QML" in meta.className() and meta.superClass() is not None:
                    meta = meta.superClass()  # from the file's own type to Qt's
                print(f"imagegallery: error: {path}: the root object is {meta.className()} and "
                      "no window was made (use Window or ApplicationWindow): nothing would be "
                      "shown", file=sys.stderr)
                return EXIT_QML
            return EXIT_OK

        if not self.urls:
            # The demo's server is on this machine: a proxy from the environment (HTTP_PROXY) must
            # not carry its requests, or the offline demo fails wherever a proxy is set. Before
            # the window makes its model: transports read the variables when they are made.
            _bypass_proxies_for_loopback()
        initial = {"pickMode": bool(self.args.pick), "themeName": self.theme_name or ""}
        if self.theme_loader is not None:
            initial["themeLoader"] = self.theme_loader
        if self.args.screenshot:
            # The picture is of the gallery, wherever the pointer is: a window that takes no
            # input gets no hover, so no tile under the pointer shows its tooltip in it.
            initial["flags"] = int(Qt.Window | Qt.WindowTransparentForInput)
        engine.setInitialProperties(initial)
        with said_by_the_app(_QML_LOAD_FAILED):
            engine.load(QUrl(qml_file_url("Main.qml")))
        roots = engine.rootObjects()
        if not roots:
            return self._qml_failed(qml_file_url("Main.qml"))
        self.window = roots[0]

        self.model = model = self.window.property("galleryModel")
        model.set_allow_plain_paths(True)
        if self.args.thumbnail:  # else the model's own default
            model.thumbnailSize = QSize(*self.args.thumbnail)
        if self.args.max_connections:
            model.maxConnectionsPerHost = self.args.max_connections
        if self.args.transport:
            model.transport = self.args.transport
        if self.args.ca_file:
            model.caFile = os.path.abspath(os.path.expanduser(self.args.ca_file))
        if self.args.revalidate:
            model.revalidate = True

        self.window.addUrlsRequested.connect(self._on_add_urls)
        self.window.openListRequested.connect(self._on_open_list)
        self.window.openImageRequested.connect(self._on_open_image)
        if self.args.pick:
            self.window.picked.connect(self._on_picked)
            self.window.cancelled.connect(self._on_cancelled)
        if self.args.screenshot:
            self._arm_screenshot()

        urls = self.urls
        if not urls:
            from .demo_server import DemoServer

            self.server = DemoServer().start()
            urls = self.server.urls()
            _log.info("offline demo: %d images from http://127.0.0.1:%d", len(urls), self.server.port)
        model.urls = urls
        return EXIT_OK

    def close(self) -> None:
        from PyQt5 import sip

        from . import delete_engine

        def alive(qobject) -> bool:
            # install() deletes the engine, and with it the window and a QML-made model, as the
            # application quits; whatever is left is closed here.
            return qobject is not None and not sip.isdeleted(qobject)

        if alive(self.window):
            self.window.close()
        if alive(self.model):
            self.model.loader.close()
        # The engine goes first, at once: the Theme singleton must not outlive a theme it shows
        # (a deleted custom theme would leave its bindings reading a null object).
        if alive(self.engine):
            delete_engine(self.engine)
        self.engine = self.window = self.model = None
        if self.theme_loader is not None:
            sip.delete(self.theme_loader)
            self.theme_loader = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _on_theme_not_reloaded(self, message: str) -> None:
        _log.warning("theme not reloaded, keeping the current one: %s", message)

    def _collect_warnings(self, warnings) -> None:
        self.load_messages.extend(warning.toString() for warning in warnings)

    def _screenshot_timeout_s(self) -> float:
        return self.args.timeout if self.args.timeout is not None else SCREENSHOT_TIMEOUT_S

    def _qml_failed(self, what: str) -> int:
        details = "\n".join(self.load_messages) or "(no QML error was reported)"
        print(f"imagegallery: error: could not load {what}:\n{details}", file=sys.stderr)
        return EXIT_QML

    # -- the window's requests ---------------------------------------------------------------
    def _on_add_urls(self, text: str) -> None:
        _off_the_gui_thread(lambda: parse_pasted_text(text), self._append_urls)

    def _on_open_image(self, index: int, url: str) -> None:
        """The whole image, in the desktop's browser or image viewer. A path is read from the
        working folder, as the model reads it.

        Only an image the gallery showed, by http, https or file: any other text of a list (a
        refused smb: URL, a .desktop file's path) must not reach the desktop's handlers."""
        from PyQt5.QtCore import QUrl
        from PyQt5.QtGui import QDesktopServices

        from .model import ImageGalleryModel

        # The view's index is the model's row here (Main.qml gives it the model itself); checked
        # all the same, since an exception in this slot would end the process.
        model = self.model
        if not (0 <= index < model.count and model.data(model.index(index)) == url
                and model.status_of(index) == ImageGalleryModel.Status.Ready):
            return
        target = QUrl.fromUserInput(url, os.getcwd(), QUrl.AssumeLocalFile)
        if target.scheme() not in ("http", "https", "file"):
            return
        if QDesktopServices.openUrl(target):
            self.window.setProperty("statusMessage", "")
            return
        not_opened = f"could not open {url}: the desktop has no application for it"
        _log.warning("%s", not_opened)
        self.window.setProperty("statusMessage", not_opened)  # a GUI user never sees stderr

    def _on_open_list(self, location: str) -> None:
        from PyQt5.QtCore import QUrl

        path = QUrl(location).toLocalFile() if location.startswith("file:") else location
        _off_the_gui_thread(lambda: read_url_list(path), self._on_list_read)

    def _on_list_read(self, outcome) -> None:
        if isinstance(outcome, Exception):
            _log.warning("%s", outcome)
            self.window.setProperty("listError", str(outcome))  # in the window, not only the log
            return
        self.window.setProperty("listError", "")
        self._append_urls(outcome)

    def _append_urls(self, outcome) -> None:
        if isinstance(outcome, Exception):
            _log.warning("cannot read the pasted text: %s", outcome)
        elif self.model.count + len(outcome) > MAX_URL_LIST_ENTRIES:
            refused = (f"not added: the gallery would hold over {MAX_URL_LIST_ENTRIES:,} entries "
                       f"with these {len(outcome):,}")
            _log.warning("%s", refused)
            self.window.setProperty("listError", refused)  # in the window, not only the log
        elif outcome:
            self.model.append(outcome)

    def _on_picked(self, urls) -> None:
        if hasattr(urls, "toVariant"):
            urls = urls.toVariant()
        try:
            if sys.stdout is None:  # Python's sys.stdout when descriptor 1 is closed
                raise OSError("it is closed")
            for url in urls or []:
                print(url)
            sys.stdout.flush()
        except (OSError, ValueError) as error:
            # A full disk, a reader gone (a broken pipe): raised out of this slot, it aborted
            # the process. The choice did not reach the caller, so it counts as none made.
            print(f"imagegallery: error: cannot write the choice to standard output: {error}",
                  file=sys.stderr)
            sys.stdout = open(os.devnull, "w")  # nor at the interpreter's exit, said again
            self._leave(EXIT_CANCELLED)
            return
        self.picked = True
        self._leave(EXIT_OK)

    def _leave(self, status: int) -> None:
        """Hide the window, then end the event loop with `status`. On the way out the loader
        writes its held thumbnails to the disk cache, waiting up to 2 s for them: a pick or a
        screenshot made with the window still shown froze it for that long (0.1-0.35 s for 200
        thumbnails)."""
        self.window.hide()
        self.app.exit(status)

    def _on_cancelled(self) -> None:
        self._leave(EXIT_CANCELLED)

    # -- screenshot --------------------------------------------------------------------------
    def _arm_screenshot(self) -> None:
        from PyQt5.QtCore import QTimer

        self._screenshot_timer = QTimer()
        self._screenshot_timer.setSingleShot(True)
        self._screenshot_timer.timeout.connect(self._screenshot_timed_out)
        self._screenshot_timer.start(int(self._screenshot_timeout_s() * 1000))
        self.model.finished.connect(self._on_model_finished)

    def _on_model_finished(self) -> None:
        from PyQt5.QtCore import QTimer

        if self._settle_timer is not None:
            return
        # The model has settled; the tiles still fetch their thumbnails from the image provider.
        self._settle_timer = QTimer()
        self._settle_timer.setInterval(25)
        self._settle_timer.timeout.connect(self._check_settled)
        self._settle_timer.start()

    def _check_settled(self) -> None:
        if self.model.pendingCount > 0 or not tiles_settled(self.window):
            return
        if self.args.revalidate and self.model.loader.active_jobs():
            # A disk-cached thumbnail is Ready at once, before the server has said whether it
            # changed: the picture would show what may be stale.
            return
        self._settle_timer.stop()
        # One more frame, so what was just loaded is on screen when the picture is taken.
        self.window.frameSwapped.connect(self._take_screenshot)
        self.window.update()

    def _take_screenshot(self) -> None:
        from PyQt5.QtGui import QImageWriter

        self.window.frameSwapped.disconnect(self._take_screenshot)
        image = grab_window(self.window)
        self.window.hide()  # taken: not shown, frozen, while the file is encoded and written
        path = os.path.expanduser(self.args.screenshot)
        if image.isNull():
            print("imagegallery: error: could not grab the window", file=sys.stderr)
            self._leave(EXIT_SCREENSHOT)
            return
        writer = QImageWriter(path)
        if not writer.write(image):
            print(f"imagegallery: error: could not save the screenshot to {path} "
                  f"({writer.errorString()})", file=sys.stderr)
            self._leave(EXIT_SCREENSHOT)
            return
        self._screenshot_timer.stop()
        self.screenshot_saved = True
        print(f"imagegallery: saved {path} ({self.model.loadedCount} of {self.model.count} loaded, "
              f"{self.model.failedCount} failed)", file=sys.stderr)
        self._leave(EXIT_OK)

    def _screenshot_timed_out(self) -> None:
        pending = self.model.pendingCount
        asking = self.model.loader.active_jobs() if self.args.revalidate else 0
        if pending:
            waiting = f"{pending} still loading"
        elif asking:
            waiting = f"{asking} servers' answers to --revalidate still awaited"
        else:
            waiting = "every image settled, not yet shown"
        print(f"imagegallery: error: the gallery did not settle within {self._screenshot_timeout_s():g} s "
              f"({waiting}); no screenshot taken", file=sys.stderr)
        self._leave(EXIT_SCREENSHOT)


def _check_screenshot_path(path: str) -> None:
    # Checked before loading, not after: a gallery takes up to --timeout to settle, and then
    # "could not save" said neither why nor what would do.
    from PyQt5.QtGui import QImageWriter

    if os.path.isdir(os.path.expanduser(path)):
        raise UsageError(f"--screenshot: {path} is a folder; give the picture's file name")
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if not os.path.isdir(folder):
        raise UsageError(f"--screenshot: folder not found: {folder}")
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    writable = sorted(bytes(f).decode() for f in QImageWriter.supportedImageFormats())
    if suffix not in writable:
        raise UsageError(f"--screenshot: cannot write '{suffix or 'no extension'}' pictures; "
                         f"end the name with one of .{', .'.join(writable)}")
    target = os.path.expanduser(path)
    try:
        # A read-only folder or file, /proc: said now, not after loading. A file that is there
        # is opened and left as it is; one that is not is made and removed. Anything else (a
        # link to nowhere, a FIFO) is left to the save, which says why it failed.
        if not os.path.lexists(target):
            with open(target, "xb"):
                pass
            os.remove(target)
        elif os.path.isfile(target) and not os.path.islink(target):
            with open(target, "ab"):
                pass
    except OSError as error:
        raise UsageError(f"--screenshot: cannot write {path} ({error.strerror})") from None


def _check_ca_file(path: str) -> None:
    """A CA file must hold a PEM certificate: given an image or a DER file, both transports
    dropped it without a word, and every https tile then blamed the server's certificate."""
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            head = handle.read(4 * 1024 * 1024)
    except FileNotFoundError:
        raise UsageError(f"CA file not found: {path}") from None
    except OSError as error:
        raise UsageError(f"CA file {path} cannot be read: {error.strerror or error}") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise UsageError(f"CA file {path} holds no PEM certificate "
                         "(a '-----BEGIN CERTIFICATE-----' block)")


def _refuse_options_beside_qml(args) -> None:
    # --qml runs the user's own window: the gallery window's options have nothing to act on, and
    # dropping them without a word left a --screenshot run waiting for ever.
    given = [flag for flag, value in (
        ("URLs", args.urls), ("--file", args.file), ("--theme", args.theme),
        ("--thumbnail", args.thumbnail), ("--max-connections", args.max_connections),
        ("--transport", args.transport), ("--ca-file", args.ca_file),
        ("--revalidate", args.revalidate), ("--screenshot", args.screenshot),
        ("--timeout", args.timeout is not None), ("--pick", args.pick)) if value]
    if given:
        raise UsageError(f"--qml runs your own QML file; {', '.join(given)} cannot be used with it "
                         "(set them in that file)")


def main(argv: Optional[Sequence[str]] = None, stdin=None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as done:  # --help, --version, or a usage error argparse already printed
        return int(done.code or 0) if not isinstance(done.code, str) else EXIT_USAGE
    _configure_logging()
    caller_handler = signal.getsignal(signal.SIGINT)  # None: one set outside Python
    _interrupt_at_once(EXIT_CANCELLED if args.pick else EXIT_INTERRUPTED)
    try:
        return _run(args, stdin)
    finally:
        if caller_handler is not None:  # main() called in-process leaves Ctrl+C as it was
            try:
                signal.signal(signal.SIGINT, caller_handler)
            except ValueError:  # not the main thread: nothing was changed
                pass


def _run(args, stdin) -> int:
    try:
        if args.qml and os.path.isdir(os.path.expanduser(args.qml)):
            raise UsageError(f"--qml: {args.qml} is a folder; give the QML file")
        if args.qml and not os.path.isfile(os.path.expanduser(args.qml)):
            raise UsageError(f"QML file not found: {args.qml}")
        if args.ca_file:
            _check_ca_file(args.ca_file)
        if args.screenshot and args.pick:
            raise UsageError("--screenshot and --pick cannot be used together")
        if args.screenshot:
            _check_screenshot_path(args.screenshot)
        elif args.timeout is not None and not args.qml:  # beside --qml that check says more
            raise UsageError("--timeout is how long --screenshot waits; give it with --screenshot")
        if args.qml:
            _refuse_options_beside_qml(args)
        theme_name, theme_path = resolve_theme(args.theme or "light")
        urls = [] if args.qml else collect_urls(args, stdin)
    except UsageError as error:
        print(f"imagegallery: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not urls and not args.qml and stdin_holds_input(stdin):
        print("imagegallery: no URLs given: showing the offline demo (to read URLs from standard "
              "input, add --file -)", file=sys.stderr)

    from .qt_messages import install_message_handler

    # What Qt's image plugins say about a damaged image goes to the log, at DEBUG: its tile
    # says what became of it (qt_messages.py).
    restore_message_handler = install_message_handler()
    app = _application()
    session = _Session(app, args, urls, theme_name, theme_path)
    try:
        try:
            status = session.start()
        except UsageError as error:
            print(f"imagegallery: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        if status != EXIT_OK:
            return status
        _install_interrupt(app)
        code = app.exec_()
        if args.pick and not session.picked:
            return EXIT_CANCELLED
        if args.screenshot and code == EXIT_OK and not session.screenshot_saved:
            # `imagegallery --screenshot x.png ... && use x.png` must not go on without x.png.
            print("imagegallery: error: the window was closed before the screenshot was taken",
                  file=sys.stderr)
            return EXIT_SCREENSHOT
        return code
    finally:
        session.close()
        restore_message_handler()


if __name__ == "__main__":
    raise SystemExit(main())
