"""The toolbar's theme switcher (Main.qml): its box and its list, as painted, can be read in
every theme, after a live switch as well as from the start, and with a partial theme file; a
theme file is listed by its own name."""
import os

import pytest
from PyQt5.QtCore import QCoreApplication, QObject, QPointF, Qt
from PyQt5.QtTest import QTest

from imagegallery.app import _Session, build_parser, resolve_theme, tiles_settled
from imaging import close_to, solid_image_bytes
from test_app import _button_colors, _contrast

# What the switcher is meant to paint in each theme (docs/themes.md, "Colours that go
# together"): its list on `field`, the highlighted entry and the open box on `accent`.
INTENDED = {
    "light": {"field": "#ffffff", "accent": "#2f6fed", "fontPixelSize": 13},
    "dark": {"field": "#2a2e37", "accent": "#5b9cff", "fontPixelSize": 13},
    "high-contrast": {"field": "#000000", "accent": "#ffff00", "fontPixelSize": 15},
    # PARTIAL_THEME below leaves these at ThemeData's defaults, the light palette's.
    "file": {"field": "#ffffff", "accent": "#2f6fed", "fontPixelSize": 13},
}
LABELS = {"light": "Light", "dark": "Dark", "high-contrast": "High contrast", "file": "Theme file"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A theme as docs/themes.md invites one ("Set only what you change"): a dark green window with
# light text. The list drew its entries in the default (dark) field text on this window, and the
# highlighted one in this light text on the default (near-white) hover colour.
PARTIAL_THEME = """import ImageGallery 1.0

ThemeData {
    window: "#123524"
    text: "#e8f5e9"
}
"""

# 4.5:1 is WCAG's AA for text; measured on anti-aliased glyphs, 3:1 (its bar for large text and
# controls) leaves room for the edge pixels, as in test_app.py.
READABLE = 3.0


@pytest.fixture
def start_window(qtbot, image_server, tmp_path):
    """start_window(theme) shows the app's window with one loaded image, as
    `imagegallery --theme THEME URL` does; "file" starts it with PARTIAL_THEME's file."""
    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    sessions = []

    def start(theme):
        if theme == "file":
            path = tmp_path / "Partial.qml"
            path.write_text(PARTIAL_THEME)
            theme = str(path)
        args = build_parser().parse_args(["--theme", theme, url])
        session = _Session(QCoreApplication.instance(), args, [url], *resolve_theme(theme))
        sessions.append(session)
        assert session.start() == 0
        # Every tile's face made before the engine goes: deleting it mid-incubation warns.
        qtbot.waitUntil(lambda: session.model.loadedCount == 1 and tiles_settled(session.window),
                        timeout=10000)
        return session.window

    yield start
    for session in sessions:
        session.close()


def _switcher(window):
    return window.findChild(QObject, "themeSwitcher")


def _list_open(window):
    return window.findChild(QObject, "themeSwitcherList").property("opened")


def _open_list(qtbot, window):
    switcher = _switcher(window)
    QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier,
                     switcher.mapToScene(QPointF(switcher.width() / 2,
                                                 switcher.height() / 2)).toPoint())
    qtbot.waitUntil(lambda: _list_open(window), timeout=3000)
    qtbot.waitUntil(lambda: any(entry.property("highlighted") and entry.width() > 0
                                for entry in _entries(window)), timeout=3000)
    return _entries(window)


def _entries(window):
    """The list's entries: items of the popup, which findChildren does not reach."""
    (popup_item,) = [child for child in window.findChild(QObject, "themeSwitcherList").children()
                     if child.metaObject().className() == "QQuickPopupItem"]
    found, stack = [], [popup_item]
    while stack:
        item = stack.pop()
        if item.objectName() == "themeSwitcherEntry":
            found.append(item)
        stack.extend(item.childItems())
    return found


def _pick(qtbot, window, theme):
    """Choose `theme` in the list, from the keyboard, as a user does: the list is opened (and
    its entries made) in the theme shown before."""
    switcher = _switcher(window)
    _open_list(qtbot, window)
    steps = switcher.property("model").index(LABELS[theme]) - switcher.property("currentIndex")
    for _ in range(abs(steps)):
        QTest.keyClick(window, Qt.Key_Down if steps > 0 else Qt.Key_Up)
    QTest.keyClick(window, Qt.Key_Return)
    qtbot.waitUntil(lambda: not _list_open(window), timeout=3000)
    assert switcher.property("currentText") == LABELS[theme]


def _assert_switcher_readable(qtbot, window, theme):
    """With the list open: the box, the highlighted entry and the others are each painted on
    the background meant for them, with text that can be read on it."""
    entries = _open_list(qtbot, window)
    intended = INTENDED[theme]
    (highlighted,) = [entry for entry in entries if entry.property("highlighted")]
    assert highlighted.property("text") == LABELS[theme]
    others = [entry for entry in entries if entry is not highlighted]
    problems = []  # all of them, not only the first: a theme tends to spoil several parts
    # The box's label alone: over the whole box its arrow, in another colour, passed for the
    # text, and yellow text on a yellow open box went unseen.
    box_label = _switcher(window).property("contentItem")
    for part, item, background_name in ([("open box", box_label, "accent"),
                                         ("highlighted entry", highlighted, "accent")]
                                        + [(entry.property("text"), entry, "field")
                                           for entry in others]):
        background, text = _button_colors(window, item)
        if _contrast(background, text) < READABLE:
            problems.append((part, "unreadable", text.name(), "on", background.name()))
        if not close_to(background, intended[background_name], tolerance=2):
            problems.append((part, "on", background.name(), "not", background_name,
                             intended[background_name]))
    for entry in entries:  # their type too: it kept the first theme's size
        if entry.property("font").pixelSize() != intended["fontPixelSize"]:
            problems.append((entry.property("text"), "font", entry.property("font").pixelSize()))
    assert not problems, (theme, problems)
    QTest.keyClick(window, Qt.Key_Escape)
    qtbot.waitUntil(lambda: not _list_open(window), timeout=3000)


@pytest.mark.parametrize("first, then", [
    ("dark", ["light"]),  # "Light" was dark text on the dark theme's hover colour
    ("light", ["high-contrast"]),  # white on light's hover colour; open, the box white under yellow
    ("file", ["dark"]),
    ("file", ["high-contrast", "file"]),  # back to a partial theme
])
def test_the_list_follows_a_live_theme_switch(qtbot, start_window, first, then):
    window = start_window(first)
    for theme in then:
        _pick(qtbot, window, theme)
    _assert_switcher_readable(qtbot, window, then[-1])


@pytest.mark.parametrize("theme", ["light", "dark", "high-contrast", "file"])
def test_the_switcher_can_be_read_in_the_theme_it_starts_in(qtbot, start_window, theme):
    # high-contrast: the open box was filled with the border colour, white, under yellow text.
    # file: a partial theme, dark green window and light text, the rest left at the defaults.
    _assert_switcher_readable(qtbot, start_window(theme), theme)


def _click_entry(qtbot, window, label):
    """Choose the entry `label` with the mouse, as docs/app.md's window offers."""
    entries = _open_list(qtbot, window)
    (entry,) = [entry for entry in entries if entry.property("text") == label]
    # A press in the same turn of the event loop as the list's opening reached no entry; a
    # user presses on a list already drawn.
    with qtbot.waitSignal(window.frameSwapped, timeout=3000):
        window.update()
    QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier,
                     entry.mapToScene(QPointF(entry.width() / 2, entry.height() / 2)).toPoint())
    qtbot.waitUntil(lambda: not _list_open(window), timeout=3000)
    assert _switcher(window).property("currentText") == label


def test_a_theme_file_is_listed_by_its_own_name(qtbot, start_window, tmp_path):
    # It was "Theme file" whatever the file called itself.
    path = tmp_path / "Sunset.qml"
    with open(os.path.join(ROOT, "examples", "themes", "Sunset.qml")) as example:
        path.write_text(example.read())  # name: "sunset"
    window = start_window(str(path))
    switcher = _switcher(window)
    assert switcher.property("model") == ["Light", "Dark", "High contrast", "sunset"]
    assert switcher.property("currentText") == "sunset"
    _click_entry(qtbot, window, "Dark")
    _click_entry(qtbot, window, "sunset")
    assert window.property("fileThemeActive")
    # A save that renames it renames the entry, still the one chosen.
    path.write_text(path.read_text().replace('name: "sunset"', 'name: "dusk"'))
    qtbot.waitUntil(lambda: switcher.property("currentText") == "dusk", timeout=10000)
    assert switcher.property("model")[-1] == "dusk"


@pytest.mark.parametrize("root", ["ThemeData", "DarkTheme"])
def test_a_theme_file_with_no_name_of_its_own_is_listed_as_one(qtbot, start_window, tmp_path, root):
    # ThemeData's "custom", or the "dark" DarkTheme has, names no theme of the file's own.
    path = tmp_path / "Mine.qml"
    path.write_text(f'import ImageGallery 1.0\n\n{root} {{\n    accent: "#ff8a5b"\n}}\n')
    switcher = _switcher(start_window(str(path)))
    assert switcher.property("model") == ["Light", "Dark", "High contrast", "Theme file"]
    assert switcher.property("currentText") == "Theme file"


def test_a_failed_save_is_said_while_the_files_theme_is_shown_and_not_beside_another(
        qtbot, start_window, tmp_path):
    # Picked with the mouse, Dark was shown under "Theme not reloaded: ..." until the next good
    # save of a file no longer shown.
    window = start_window("file")
    said = window.findChild(QObject, "themeError")
    (tmp_path / "Partial.qml").write_text(PARTIAL_THEME.replace("text:", "txet:"))
    qtbot.waitUntil(lambda: said.property("text").startswith("Theme not reloaded: "), timeout=10000)
    assert "txet" in said.property("text")
    _click_entry(qtbot, window, "Dark")
    assert said.property("text") == ""
    # The file's theme, as it last loaded, is shown again, and its file still does not load.
    _click_entry(qtbot, window, "Theme file")
    assert said.property("text").startswith("Theme not reloaded: ")
