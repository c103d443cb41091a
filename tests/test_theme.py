"""Themes: the built-ins behind the Theme singleton, and ThemeLoader's theme files by path."""
import os
import re
import subprocess
import sys
import textwrap

import pytest
from PyQt5 import sip
from PyQt5.QtCore import QMetaObject, QObject, Q_ARG, QVariant
from PyQt5.QtGui import QColor, QPalette
from PyQt5.QtQml import QQmlApplicationEngine, QQmlComponent

import imagegallery
from imagegallery.qml_paths import qml_file_url
from imagegallery.theme import BUILT_IN_THEMES, ThemeLoader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The Theme singleton seen through a plain object, with a ThemeLoader declared in QML.
PROBE_QML = """
import QtQuick 2.15
import QtQml 2.15
import ImageGallery 1.0

QtObject {
    id: root
    property string themePath: ""
    readonly property color window: Theme.window
    readonly property color accent: Theme.accent
    readonly property int radius: Theme.radius
    // Theme.current is null for a moment while a custom theme object is destroyed (Theme.qml).
    readonly property string currentName: Theme.current ? Theme.current.name : ""
    readonly property string builtInNames: Theme.names.join(",")
    readonly property var loader: loader

    function useBuiltIn(name) { Theme.custom = null; Theme.name = name }

    property ThemeLoader themeLoader: ThemeLoader {
        id: loader
        source: root.themePath
    }
    property Binding useFile: Binding {
        target: Theme
        property: "custom"
        value: loader.theme
        when: loader.theme !== null
        restoreMode: Binding.RestoreBindingOrValue  // as docs/themes.md shows
    }
}
"""

GOOD_THEME = """import ImageGallery 1.0

ThemeData {
    name: "mine"
    accent: "%s"
    radius: 11
}
"""


@pytest.fixture
def probe(qtbot, tmp_path):
    engine = QQmlApplicationEngine()
    imagegallery.install(engine)
    warnings = []
    engine.warnings.connect(lambda ws: warnings.extend(w.toString() for w in ws))
    path = tmp_path / "Probe.qml"
    path.write_text(PROBE_QML)
    engine.load(str(path))
    assert engine.rootObjects(), warnings
    root = engine.rootObjects()[0]
    root.engine = engine
    yield root
    QMetaObject.invokeMethod(root, "useBuiltIn", Q_ARG(QVariant, "light"))
    imagegallery.delete_engine(engine)
    assert not warnings, warnings


def color(root, name):
    return QColor(root.property(name)).name()


def write(path, text):
    path.write_text(text)
    return str(path)


def test_python_knows_the_built_in_themes_qml_has(probe):
    # app.py's --theme check reads BUILT_IN_THEMES; the switcher lists Theme.names.
    assert tuple(probe.property("builtInNames").split(",")) == BUILT_IN_THEMES


def test_built_in_themes_switch_every_value(probe):
    seen = {}
    for name in BUILT_IN_THEMES:
        QMetaObject.invokeMethod(probe, "useBuiltIn", Q_ARG(QVariant, name))
        assert probe.property("currentName") == name
        seen[name] = (color(probe, "window"), color(probe, "accent"))
    assert seen["light"] == ("#f4f5f7", "#2f6fed")
    assert seen["dark"] == ("#16181d", "#5b9cff")
    assert seen["high-contrast"] == ("#000000", "#ffff00")


@pytest.mark.qt_log_ignore("Theme.name: no built-in theme")
def test_a_mistyped_built_in_name_shows_light_and_says_so(qtlog, probe):
    QMetaObject.invokeMethod(probe, "useBuiltIn", Q_ARG(QVariant, "drak"))
    assert color(probe, "window") == "#f4f5f7"
    said = [record.message for record in qtlog.records if "Theme.name" in record.message]
    assert said == ["Theme.name: no built-in theme 'drak' (light, dark, high-contrast); showing light"]


def test_theme_file_loads_and_applies(qtbot, probe, tmp_path):
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#123456")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    assert loader.status == ThemeLoader.Status.Ready and loader.errorString == ""
    assert color(probe, "accent") == "#123456"
    assert probe.property("radius") == 11
    # What the file leaves out keeps ThemeData's defaults.
    assert color(probe, "window") == "#f4f5f7"


def test_theme_file_extending_a_built_in(qtbot, probe, tmp_path):
    path = write(tmp_path / "DarkOrange.qml",
                 'import ImageGallery 1.0\nDarkTheme { name: "dark-orange"; accent: "#ff8800" }\n')
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    assert color(probe, "accent") == "#ff8800" and color(probe, "window") == "#16181d"


def test_changed_file_is_reloaded(qtbot, probe, tmp_path):
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#123456")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        write(tmp_path / "Mine.qml", GOOD_THEME % "#abcdef" + "// saved again\n")
    assert color(probe, "accent") == "#abcdef"


def test_file_replaced_by_rename_is_reloaded(qtbot, probe, tmp_path):
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#123456")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        temporary = write(tmp_path / "Mine.qml.tmp", GOOD_THEME % "#fedcba")
        os.replace(temporary, path)  # how many editors save
    assert color(probe, "accent") == "#fedcba"


def test_broken_file_keeps_the_current_theme_and_names_file_and_line(qtbot, probe, tmp_path, caplog):
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#123456")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    theme_before = loader.theme

    broken = 'import ImageGallery 1.0\n\nThemeData {\n    accent: "#00ff00"\n    acent: "#ff0000"\n}\n'
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        write(tmp_path / "Mine.qml", broken)
    message = failed.args[0]
    assert message.startswith(f"{path}:5:")
    assert "acent" in message
    assert loader.errorString == message and loader.status == ThemeLoader.Status.Error
    assert loader.theme is theme_before
    assert color(probe, "accent") == "#123456"
    # Said through `failed` alone: the loader's own warning printed it again in every host.
    assert not [record for record in caplog.records if record.name == "imagegallery.theme"]

    # Fixing the file recovers.
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        write(tmp_path / "Mine.qml", GOOD_THEME % "#00ff00" + "\n")
    assert color(probe, "accent") == "#00ff00" and loader.errorString == ""


def test_syntax_error_and_wrong_root_type_are_reported(qtbot, probe, tmp_path):
    loader = probe.property("loader")
    path = write(tmp_path / "Syntax.qml", "import ImageGallery 1.0\nThemeData {\n    accent: \n}\n")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", path)
    assert failed.args[0].startswith(f"{path}:")
    assert loader.theme is None
    assert color(probe, "accent") == "#2f6fed"  # the built-in stays

    other = write(tmp_path / "Plain.qml", "import QtQuick 2.15\nQtObject { property color accent: 'red' }\n")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", other)
    assert "root object must be ThemeData" in failed.args[0]
    assert failed.args[0].endswith("not QtObject")  # the type written, not the file's name
    boxed = write(tmp_path / "Boxed.qml", "import QtQuick 2.15\nRectangle { color: 'red' }\n")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", boxed)
    assert failed.args[0].endswith("not Rectangle")


def test_missing_file_is_reported(qtbot, probe, tmp_path):
    loader = probe.property("loader")
    missing = str(tmp_path / "Nope.qml")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", missing)
    assert failed.args[0] == f"{missing}: theme file not found"


def test_a_theme_file_too_large_for_a_theme_is_refused_unread(qtbot, probe, tmp_path):
    # Compiled on Qt's loader thread, which nothing stops: 6 MB took 146 s, holding the exit.
    huge = tmp_path / "Huge.qml"
    huge.write_text("import ImageGallery 1.0\nThemeData {\n" + "    // padding\n" * 80_000 + "}\n")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", str(huge))
    assert failed.args[0] == f"{huge}: a theme file of over 1 MB (a theme takes a few KB)"


@pytest.mark.parametrize("source", ["qrc:/qml/ImageGallery/themes/Dark.qml",
                                    "http://example.org/themes/Sunset.qml"])
def test_a_url_of_another_scheme_is_refused_as_not_a_local_file(qtbot, probe, source):
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", source)
    assert failed.args[0] == (f"{source}: a theme file must be a local file (a path or a file: "
                              "URL); built-in themes are chosen by name (Theme.name)")


TYPO_THEME = 'import ImageGallery 1.0\n\nThemeData {\n    acent: "#5bff8a"\n}\n'
THROWING_THEME = 'import ImageGallery 1.0\n\nThemeData {\n    radius: nope.x\n}\n'
TYPO_SAID = 'Cannot assign to non-existent property "acent"'
THROWING_SAID = "ReferenceError: nope is not defined"


def docs_snippet(language, holding):
    """The fenced `language` block of docs/themes.md that holds the text `holding`."""
    with open(os.path.join(ROOT, "docs", "themes.md"), encoding="utf-8") as handle:
        blocks = re.findall(rf"```{language}\n(.*?)```", handle.read(), re.S)
    return next(block for block in blocks if holding in block)


def run_python(tmp_path, script, *argv):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_QUICK_BACKEND="software",
               IMAGEGALLERY_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "backend"), env.get("PYTHONPATH", "")])
    path = tmp_path / "host.py"
    path.write_text(script)
    return subprocess.run([sys.executable, str(path), *argv], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=60)


PYTHON_HOST = textwrap.dedent("""
    import sys
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtQml import QQmlApplicationEngine
    import imagegallery

    app = QGuiApplication(sys.argv)
    engine = QQmlApplicationEngine()
    imagegallery.install(engine)
""")


@pytest.mark.parametrize("theme, said", [(TYPO_THEME, TYPO_SAID), (THROWING_THEME, THROWING_SAID)])
def test_the_docs_python_loader_says_a_theme_error_once(tmp_path, theme, said):
    snippet = docs_snippet("python", "ThemeLoader(engine=engine)")
    (tmp_path / "Forest.qml").write_text(theme)
    run = run_python(tmp_path, PYTHON_HOST + snippet.replace('"/home/me/Sunset.qml"', "sys.argv[1]"),
                     str(tmp_path / "Forest.qml"))
    assert run.returncode == 1, run.stderr
    assert run.stderr.count(said) == 1, run.stderr


@pytest.mark.parametrize("theme, said", [(TYPO_THEME, TYPO_SAID), (THROWING_THEME, THROWING_SAID)])
def test_the_docs_qml_loader_says_a_theme_error_once(tmp_path, theme, said):
    snippet = docs_snippet("qml", "ThemeLoader {")
    imports, _, items = snippet.partition("// ... inside your window or any item:")
    (tmp_path / "Sunset.qml").write_text(theme)
    (tmp_path / "main.qml").write_text(
        "import QtQuick 2.15\nimport QtQuick.Window 2.15\n" + imports
        + "Window {\n" + items
        + "Connections { target: themeFile; function onFailed() { Qt.quit() } }\n}\n")
    run = run_python(tmp_path, PYTHON_HOST + textwrap.dedent("""
        engine.load(sys.argv[1])
        sys.exit(app.exec_() if engine.rootObjects() else 3)
    """), str(tmp_path / "main.qml"))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count(said) == 1, run.stderr


# The app with a good theme file, whose next save has a typo: it quits once that failed.
APP_THEME_SAVE = textwrap.dedent("""
    import sys
    from PyQt5.QtCore import QTimer
    from imagegallery import app

    theme_path, broken = sys.argv[1], sys.argv[2]
    start = app._Session.start

    def start_then_save_a_typo(session):
        status = start(session)
        session.theme_loader.failed.connect(lambda message: QTimer.singleShot(0, session.app.quit))
        with open(theme_path, "w") as theme:
            theme.write(broken)
        return status

    app._Session.start = start_then_save_a_typo
    sys.exit(app.main(["--theme", theme_path, "http://127.0.0.1:9/a.png"]))
""")


def test_the_app_says_a_failed_theme_save_once_with_one_prefix(tmp_path):
    theme = tmp_path / "Forest.qml"
    theme.write_text(GOOD_THEME % "#5bff8a")
    run = run_python(tmp_path, APP_THEME_SAVE, str(theme), TYPO_THEME)
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stderr.splitlines() if TYPO_SAID in line]
    assert said == [f"imagegallery: theme not reloaded, keeping the current one: {theme}:4:5: "
                    + TYPO_SAID], run.stderr


def test_python_side_loader_with_engine(qtbot, probe, tmp_path):
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#445566")
    loader = ThemeLoader(engine=probe.engine)
    loader.source = path
    assert loader.wait(5000)
    assert loader.status == ThemeLoader.Status.Ready
    assert QColor(loader.theme.property("accent")).name() == "#445566"
    sip.delete(loader)


def test_example_theme_loads(qtbot, probe):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", os.path.join(here, "examples", "themes", "Sunset.qml"))
    assert probe.property("currentName") == "sunset"


def test_a_binding_that_throws_is_refused_like_a_typo(qtbot, probe, tmp_path):
    loader = probe.property("loader")
    path = write(tmp_path / "Throws.qml",
                 'import ImageGallery 1.0\nThemeData {\n    accent: "#00ff00"\n    radius: nope.x\n}\n')
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        probe.setProperty("themePath", path)
    message = failed.args[0]
    assert message.startswith(f"{path}:4:") and "nope" in message
    assert "?v=" not in message
    assert loader.theme is None
    assert color(probe, "accent") == "#2f6fed"  # the built-in stays


def test_theme_object_destroyed_falls_back_without_errors(qtbot, probe, tmp_path):
    # What happens as an application quits: the ThemeLoader, and with it the theme object that
    # Theme.custom holds, goes before the Theme singleton. The built-in must take over without
    # a binding reading a property of null (34 TypeErrors on the way out before).
    path = write(tmp_path / "Mine.qml", GOOD_THEME % "#123456")
    loader = probe.property("loader")
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        probe.setProperty("themePath", path)
    assert color(probe, "accent") == "#123456"
    with qtbot.waitSignal(loader.destroyed, timeout=5000):
        loader.deleteLater()
    assert color(probe, "accent") == "#2f6fed"  # light's, and the probe fixture asserts no warnings


def test_refused_theme_saves_do_not_pile_up_compiled_components(qtbot, probe, tmp_path):
    path = tmp_path / "Plain.qml"
    path.write_text("import QtQuick 2.15\nQtObject { property color accent: 'red' }\n")
    loader = ThemeLoader(engine=probe.engine)
    loader.source = str(path)
    assert loader.wait(5000)
    for _ in range(20):  # an editor saving a file with the wrong root type, again and again
        with qtbot.waitSignal(loader.failed, timeout=5000):
            loader.reload()
    qtbot.waitUntil(lambda: len(loader.findChildren(QQmlComponent)) == 0, timeout=3000)


def test_the_apps_theme_switcher_restyles_with_every_live_switch(qtbot):
    # Qt 5.15: a control whose own palette role changes stops taking the window's other roles,
    # and the switcher kept the first theme's colours (its arrow then vanished on dark).
    engine = QQmlApplicationEngine()
    imagegallery.install(engine)
    engine.load(qml_file_url("Main.qml"))
    window = engine.rootObjects()[0]
    try:
        switcher = window.findChild(QObject, "themeSwitcher")
        for name in ("dark", "high-contrast", "light", "dark"):
            window.setProperty("themeName", name)
            own, windows = switcher.property("palette"), window.property("palette")
            for role in (QPalette.Button, QPalette.ButtonText, QPalette.Window, QPalette.Mid,
                         QPalette.Highlight, QPalette.Light):
                assert own.color(role) == windows.color(role), (name, role)
            # The arrow: drawn in `dark`, the button's text colour here, never its background.
            assert own.color(QPalette.Dark) == windows.color(QPalette.ButtonText)
            assert own.color(QPalette.Dark) != own.color(QPalette.Button)
    finally:
        window.close()
        imagegallery.delete_engine(engine)
