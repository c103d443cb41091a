"""The `imagegallery` command: arguments and error messages in-process; --screenshot and --pick
end to end in a subprocess under QT_QPA_PLATFORM=offscreen."""
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import pytest
from PyQt5.QtGui import QColor, QImage

from imagegallery import __version__
from imagegallery.app import (EXIT_CANCELLED, EXIT_QML, EXIT_SCREENSHOT, EXIT_USAGE, build_parser,
                              collect_urls, main, parse_pasted_text, parse_url_lines)
from imagegallery.workers import usable_cores
from imaging import close_to, serve_solid_images, solid_image_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPROCESS_TIMEOUT = 60


def run_main(capsys, *argv, stdin=None):
    code = main(list(argv), stdin=stdin)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_documents_exit_codes(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert "exit status:" in out and "--pick was cancelled" in out and "--screenshot" in out


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip() == f"imagegallery {__version__}"


@pytest.mark.parametrize("argv, message", [
    (["--thumbnail", "big"], "expected WIDTHxHEIGHT"),
    (["--thumbnail", "4x4"], "16 to 2048"),
    (["--max-connections", "0"], "must be 1 to 256"),
    (["--transport", "carrier-pigeon"], "invalid choice"),
    # Accepted without a word, and nothing waited for it.
    (["--timeout", "5", "http://127.0.0.1:9/a.png"], "--timeout is how long --screenshot waits"),
])
def test_bad_options_exit_2(capsys, argv, message):
    code, _, err = run_main(capsys, *argv)
    assert code == EXIT_USAGE and message in err


def test_missing_url_list(capsys, tmp_path):
    code, _, err = run_main(capsys, "--file", str(tmp_path / "nope.txt"))
    assert code == EXIT_USAGE and f"URL list not found: {tmp_path / 'nope.txt'}" in err


def test_unreadable_url_lists(capsys, tmp_path):
    code, _, err = run_main(capsys, "--file", str(tmp_path))
    assert code == EXIT_USAGE and "is a folder" in err
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\xff\xfe\x80")
    code, _, err = run_main(capsys, "--file", str(binary))
    assert code == EXIT_USAGE and "not UTF-8 text" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    code, _, err = run_main(capsys, "--file", str(empty))
    assert code == EXIT_USAGE and "holds no URLs" in err
    # Read whole, /dev/zero (or a video picked by mistake) took memory until none was left.
    code, _, err = run_main(capsys, "--file", "/dev/zero")
    assert code == EXIT_USAGE and "URL list is over 64 MB" in err
    # Small, but a row a line: 4 million one-letter lines took 1.5 GB.
    lines = tmp_path / "lines.txt"
    lines.write_text("a\n" * 100_001)
    code, _, err = run_main(capsys, "--file", str(lines))
    assert code == EXIT_USAGE and "URL list has over 100,000 entries (100,001)" in err
    lines.write_text("a\n" * 60_000)  # under the cap, but not twice
    code, _, err = run_main(capsys, "--file", str(lines), "--file", str(lines))
    assert code == EXIT_USAGE and "the URLs given hold over 100,000 entries in all (120,000)" in err


def test_missing_local_image_path(capsys, tmp_path):
    code, _, err = run_main(capsys, str(tmp_path / "gone.png"))
    assert code == EXIT_USAGE and "no such file" in err


def test_unknown_theme_name_and_missing_theme_file(capsys, tmp_path):
    code, _, err = run_main(capsys, "--theme", "solarized", "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE
    assert "unknown theme 'solarized'" in err and "light, dark, high-contrast" in err
    code, _, err = run_main(capsys, "--theme", str(tmp_path / "Mine.qml"), "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE and "theme file not found" in err
    code, _, err = run_main(capsys, "--theme", str(tmp_path), "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE and "is a folder; give a theme .qml file" in err


def test_a_theme_given_as_a_url_is_a_file_url_or_a_usage_error(tmp_path):
    # qrc:/ was joined to the working folder ("theme file not found: qrc:/..."), and a file:
    # URL, as a file manager copies one, was not read as the file it names.
    from imagegallery.app import UsageError, resolve_theme

    theme = tmp_path / "My Theme.qml"
    theme.write_text("import ImageGallery 1.0\nThemeData { }\n")
    assert resolve_theme(theme.as_uri()) == (None, str(theme))
    for url in ("qrc:/qml/ImageGallery/themes/Dark.qml", "https://example.org/Theme.qml"):
        with pytest.raises(UsageError, match="a theme file must be a local file"):
            resolve_theme(url)


def test_theme_file_with_a_qml_error_names_file_and_line(qtbot, capsys, caplog, tmp_path):
    theme = tmp_path / "Broken.qml"
    theme.write_text("import ImageGallery 1.0\nThemeData {\n    accent: 12 +\n}\n")
    code, _, err = run_main(capsys, "--theme", str(theme), "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE
    assert f"{theme}:4" in err or f"{theme}:3" in err
    # Said once, as the usage error, not also in the theme loader's log line before it.
    assert not [r for r in caplog.records if r.name == "imagegallery.theme"]


def test_missing_qml_app(capsys, tmp_path):
    code, _, err = run_main(capsys, "--qml", str(tmp_path / "App.qml"))
    assert code == EXIT_USAGE and "QML file not found" in err
    code, _, err = run_main(capsys, "--qml", str(tmp_path))
    assert code == EXIT_USAGE and "is a folder; give the QML file" in err


def test_a_screenshot_path_that_is_a_folder_is_said_to_be_one(capsys, tmp_path):
    code, _, err = run_main(capsys, "--screenshot", str(tmp_path), "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE and "is a folder; give the picture's file name" in err


def test_empty_standard_input_is_called_that(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("# nothing\n"))
    code, _, err = run_main(capsys, "--file", "-")
    assert code == EXIT_USAGE and "standard input holds no URLs" in err


def test_qml_app_that_fails_to_load_exits_3_with_the_error(qtbot, capsys, caplog, tmp_path):
    app_qml = tmp_path / "App.qml"
    app_qml.write_text("import QtQuick 2.15\nimport ImageGallery 1.0\nItem {\n    NoSuchType {}\n}\n")
    code, _, err = run_main(capsys, "--qml", str(app_qml))
    assert code == EXIT_QML
    assert "could not load" in err and f"{app_qml.as_uri()}:4" in err
    assert "NoSuchType" in err
    # Said once, in the error, not also logged by install()'s QML logger just before it, nor
    # by Qt's "QQmlApplicationEngine failed to load component" (which would fail this test
    # through pytest-qt's qt_log_level_fail).
    assert not [r for r in caplog.records if r.name == "imagegallery.qml"]


def test_a_qml_file_with_a_syntax_error_is_said_once_in_the_apps_words(tmp_path):
    app_qml = tmp_path / "Broken.qml"
    app_qml.write_text("import QtQuick 2.15\nItem {\n    width: 100\n    height: \n}}\n")
    result = subprocess.run([sys.executable, "-m", "imagegallery", "--qml", str(app_qml)],
                            env=subprocess_env(), capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == EXIT_QML, result.stderr
    # Qt printed "QQmlApplicationEngine failed to load component" before these.
    said = result.stderr.splitlines()
    assert said[0] == f"imagegallery: error: could not load {app_qml}:", result.stderr
    assert len(said) == 2 and said[1].startswith(f"{app_qml.as_uri()}:5:"), result.stderr


def test_a_qml_app_whose_root_is_not_a_window_exits_3_saying_so(qtbot, capsys, tmp_path):
    app_qml = tmp_path / "App.qml"
    app_qml.write_text("import QtQuick 2.15\nItem { width: 100; height: 100 }\n")
    code, _, err = run_main(capsys, "--qml", str(app_qml))
    assert code == EXIT_QML
    assert "the root object is QQuickItem and no window was made" in err


def test_a_qml_app_whose_root_object_holds_its_windows_runs(qtbot, capsys, tmp_path):
    # The layout of Qt's own "Qt Quick Examples - Window": a QtObject root whose properties are
    # the application's windows.
    app_qml = tmp_path / "App.qml"
    app_qml.write_text(
        "import QtQuick 2.15\nimport QtQuick.Window 2.15\n"
        "QtObject {\n"
        "    property var mainWindow: Window {\n"
        "        visible: true; width: 100; height: 100\n"
        "        Timer { interval: 100; running: true; onTriggered: Qt.quit() }\n"
        "    }\n"
        "}\n")
    code, _, err = run_main(capsys, "--qml", str(app_qml))
    assert code == 0, err


def test_a_qml_app_whose_window_is_not_made_visible_is_shown(qtbot, capsys, tmp_path):
    # Qt's Window starts hidden: without `visible: true` the app showed nothing and never ended.
    app_qml = tmp_path / "App.qml"
    app_qml.write_text(
        "import QtQuick 2.15\nimport QtQuick.Window 2.15\n"
        "Window {\n"
        "    width: 100; height: 100\n"
        "    onVisibleChanged: if (visible) Qt.quit()\n"
        "    Timer { interval: 5000; running: true; onTriggered: Qt.exit(7) }\n"
        "}\n")
    code, _, err = run_main(capsys, "--qml", str(app_qml))
    assert code == 0, err


def test_window_options_beside_qml_are_refused(capsys, tmp_path):
    app_qml = tmp_path / "App.qml"
    app_qml.write_text("import QtQuick.Window 2.15\nWindow {}\n")
    code, _, err = run_main(capsys, "--qml", str(app_qml), "--timeout", "5")
    assert code == EXIT_USAGE and "--timeout cannot be used with it" in err


def test_url_lists_skip_blank_lines_and_comments_and_read_stdin():
    text = "# my photos\nhttp://a/1.png\n\n   http://a/2.png  \n#http://a/3.png\n"
    assert parse_url_lines(text) == ["http://a/1.png", "http://a/2.png"]
    args = SimpleNamespace(urls=["http://a/0.png"], file=["-"])
    assert collect_urls(args, io.StringIO(text)) == ["http://a/0.png", "http://a/1.png", "http://a/2.png"]
    assert parse_pasted_text("http://a/1.png http://a/2.png\nhttp://a/3.png") == [
        "http://a/1.png", "http://a/2.png", "http://a/3.png"]


def test_every_url_list_given_is_read_and_standard_input_once(capsys, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("http://a/1.png\n")
    second.write_text("http://a/2.png\nhttp://a/3.png\n")
    args = build_parser().parse_args(["http://a/0.png", "--file", str(first), "-f", str(second),
                                      "--file", "-"])
    assert collect_urls(args, io.StringIO("http://a/4.png\n")) == [
        f"http://a/{n}.png" for n in range(5)]
    code, _, err = run_main(capsys, "--file", "-", "--file", "-")
    assert code == EXIT_USAGE and "standard input can be read once" in err


def test_a_ca_file_without_a_certificate_is_a_usage_error(capsys, tmp_path, test_ca):
    picture = tmp_path / "photo.png"
    picture.write_bytes(solid_image_bytes("#ff0000"))
    code, _, err = run_main(capsys, "--ca-file", str(picture), "--screenshot", str(tmp_path / "x.png"),
                            "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE and f"CA file {picture} holds no PEM certificate" in err
    code, _, err = run_main(capsys, "--ca-file", str(tmp_path / "none.pem"), "http://127.0.0.1:9/a.png")
    assert code == EXIT_USAGE and "CA file not found" in err
    assert b"-----BEGIN CERTIFICATE-----" in open(test_ca.ca_file, "rb").read()  # what passes


def test_a_closed_or_binary_standard_input_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # what Python gives when descriptor 0 is closed
    code, _, err = run_main(capsys, "--file", "-")
    assert code == EXIT_USAGE and "cannot read the URL list from standard input: it is closed" in err
    # A picture piped in by mistake, through a stream that escapes what it cannot decode.
    picture = io.TextIOWrapper(io.BytesIO(b"\xff\xd8\xff\xe0 JFIF\n\x89\xfe\n"), encoding="utf-8",
                               errors="surrogateescape")
    code, _, err = run_main(capsys, "--file", "-", stdin=picture)
    assert code == EXIT_USAGE and "URL list is not UTF-8 text: standard input" in err


def test_a_pasted_url_or_path_with_a_space_stays_whole(tmp_path):
    folder = tmp_path / "My Photos"
    folder.mkdir()
    (folder / "beach day.png").write_bytes(b"not read here")
    file_url = (folder / "beach day.png").as_uri().replace("%20", " ")  # as a file manager copies it
    assert parse_pasted_text(file_url) == [file_url]
    assert parse_pasted_text(str(folder / "beach day.png")) == [str(folder / "beach day.png")]
    assert parse_pasted_text("http://a/my photo.jpg") == ["http://a/my photo.jpg"]
    assert parse_pasted_text(f"http://a/1.png {tmp_path}") == ["http://a/1.png", str(tmp_path)]
    # Paths and URLs beside each other still split, a missing file's among them.
    assert parse_pasted_text("~/a.png ~/b.png") == ["~/a.png", "~/b.png"]
    assert parse_pasted_text(f"http://a/1.png http://a/2.png {tmp_path}/missing.png") == [
        "http://a/1.png", "http://a/2.png", f"{tmp_path}/missing.png"]
    # A name after a whole existing file is an entry of its own, not the rest of that one.
    beach = str(folder / "beach day.png")
    assert parse_pasted_text(f"{beach} nosuch.png") == [beach, "nosuch.png"]
    assert parse_pasted_text(f"{(folder / 'beach day.png').as_uri()} nosuch.png") == [
        (folder / "beach day.png").as_uri(), "nosuch.png"]
    # Unless the two together begin another name: a file "beach" beside "beach day.png".
    (folder / "beach").write_bytes(b"not read here")
    assert parse_pasted_text(f"{folder / 'beach'} day.png") == [beach]
    # The spaces inside a name are kept as pasted, two of them too.
    (folder / "two  spaces.png").write_bytes(b"not read here")
    assert parse_pasted_text(str(folder / "two  spaces.png")) == [str(folder / "two  spaces.png")]


def test_a_list_files_paths_are_read_from_the_lists_folder(tmp_path, monkeypatch):
    album = tmp_path / "album"
    album.mkdir()
    (album / "beach.png").write_bytes(b"not read here")
    (album / "IMG:0001.png").write_bytes(b"not read here")  # a camera's name, as `ls` lists it
    (album / "list.txt").write_text("beach.png\nIMG:0001.png\nmissing.png\nhttp://a/1.png\n")
    monkeypatch.chdir(tmp_path)
    args = SimpleNamespace(urls=[], file=["album/list.txt"])
    assert collect_urls(args) == [str(album / "beach.png"), str(album / "IMG:0001.png"),
                                  str(album / "missing.png"), "http://a/1.png"]


def test_a_file_named_with_a_colon_is_the_file_not_a_url_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo:1.jpg").write_bytes(b"not read here")
    args = SimpleNamespace(urls=["photo:1.jpg", "http://a/1.png"], file=None)
    assert collect_urls(args) == [str(tmp_path / "photo:1.jpg"), "http://a/1.png"]


# -- end to end, in a subprocess ---------------------------------------------------------------
def subprocess_env():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_QUICK_BACKEND="software")
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "backend"), env.get("PYTHONPATH", "")])
    return env


# Counts the threads numpy's import starts, after the app has made its application.
BLAS_THREADS_SCRIPT = textwrap.dedent("""
    import os
    from imagegallery import app
    if os.environ.get("CALL_SETUP"):
        qt_app = app._application()
    before = len(os.listdir("/proc/self/task"))
    import numpy
    print(len(os.listdir("/proc/self/task")) - before, os.environ.get("OPENBLAS_NUM_THREADS"))
""")


def threads_numpy_starts(**variables):
    env = subprocess_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    env.update(variables)
    result = subprocess.run([sys.executable, "-c", BLAS_THREADS_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    started, setting = result.stdout.split()
    return int(started), setting


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or usable_cores() < 2,
                    reason="counts threads through Linux's /proc; OpenBLAS starts none on one core")
def test_the_app_starts_no_blas_threads_unless_the_user_asks():
    assert threads_numpy_starts()[0] >= 1  # what numpy does left alone: the check can fail
    assert threads_numpy_starts(CALL_SETUP="1") == (0, "1")
    started, setting = threads_numpy_starts(CALL_SETUP="1", OPENBLAS_NUM_THREADS="2")
    assert (started, setting) == (1, "2")


COLORS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]


def test_screenshot_end_to_end(image_server, tmp_path):
    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(COLORS)]
    urls.append(image_server.url("/missing.png"))
    out = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "imagegallery", "--screenshot", str(out), "--thumbnail", "200x120",
         *urls], env=subprocess_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "4 of 5 loaded, 1 failed" in result.stderr
    image = QImage(str(out))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500
    # Each colour fills a thumbnail somewhere: find a pixel of each on a coarse grid.
    seen = set()
    for y in range(0, image.height(), 6):
        for x in range(0, image.width(), 6):
            pixel = QColor(image.pixel(x, y))
            for color in COLORS:
                if close_to(pixel, color, 4):
                    seen.add(color)
    assert seen == set(COLORS)



def test_a_revalidating_screenshot_waits_for_the_servers_answers(image_server, tmp_path):
    # A disk-cached thumbnail is Ready at once: the picture was taken before any answer, showing
    # the old image the server had replaced.
    version = ["#ff0000", '"v0"']

    def versioned(handler):
        if handler.headers.get("If-None-Match") == version[1]:
            handler._send(304, b"", "image/png", {"ETag": version[1]})
        else:
            handler._send(200, solid_image_bytes(version[0]), "image/png", {"ETag": version[1]})

    url = image_server.add_handler("/versioned.png", versioned)
    env = dict(subprocess_env(), IMAGEGALLERY_CACHE_DIR=str(tmp_path / "cache"))
    for shot, options in (("before.png", []), ("after.png", ["--revalidate"])):
        result = subprocess.run(
            [sys.executable, "-m", "imagegallery", "--screenshot", str(tmp_path / shot), *options,
             url], env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
        assert result.returncode == 0, result.stderr
        version[:] = ["#00ff00", '"v1"']  # the image changes on the server
        image_server.latency = 0.3

    def colors(shot):
        image = QImage(str(tmp_path / shot))
        return {QColor(image.pixel(x, y)).name() for x in range(0, image.width(), 8)
                for y in range(0, image.height(), 8)}

    assert "#ff0000" in colors("before.png")
    assert "#00ff00" in colors("after.png") and "#ff0000" not in colors("after.png")


def test_a_damaged_image_is_reported_on_its_tile_not_on_stderr(image_server, tmp_path):
    # Neither is promised by the docs: the tile is the report. A PNG cut short printed "libpng
    # error: Read Error"; a JPEG cut short, shown as far as it arrived, libjpeg's complaint
    # ("Corrupt JPEG data: premature end of data segment"), now logged at DEBUG.
    png, jpeg = solid_image_bytes("#ff0000"), solid_image_bytes("#00ff00", fmt="JPG")
    urls = [image_server.add("/cut.png", png[:len(png) // 2]),
            image_server.add("/cut.jpg", jpeg[:len(jpeg) // 2], "image/jpeg")]
    result = subprocess.run(
        [sys.executable, "-m", "imagegallery", "--screenshot", str(tmp_path / "shot.png"), *urls],
        env=subprocess_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].endswith("(1 of 2 loaded, 1 failed)"), result.stderr
    assert "libpng" not in result.stderr and "JPEG" not in result.stderr, result.stderr


CLOSE_DRIVER = textwrap.dedent("""
    # Test driver: runs the real app in this process and closes its window once it shows.
    import sys
    from PyQt5.QtCore import QTimer
    from PyQt5.QtGui import QGuiApplication
    from imagegallery import app

    qt_app = QGuiApplication(sys.argv[:1])

    def close_when_shown():
        windows = [w for w in QGuiApplication.topLevelWindows()
                   if w.objectName() == "mainWindow" and w.isExposed()]
        if windows and windows[0].property("galleryModel").count:
            windows[0].close()
        else:
            QTimer.singleShot(20, close_when_shown)

    QTimer.singleShot(0, close_when_shown)
    sys.exit(app.main(sys.argv[1:]))
""")


def test_a_screenshot_window_closed_before_the_picture_exits_4(image_server, tmp_path):
    never = image_server.add_handler("/never.png", lambda request: image_server.stopping.wait(30))
    driver = tmp_path / "drive_close.py"
    driver.write_text(CLOSE_DRIVER)
    out = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, str(driver), "--screenshot", str(out), never],
                            env=subprocess_env(), capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == EXIT_SCREENSHOT, result.stderr
    assert "the window was closed before the screenshot was taken" in result.stderr
    assert not out.exists()


PICK_DRIVER = textwrap.dedent("""
    # Test driver: runs the real app in this process and types on its window like a person.
    # argv[1] is key groups, "A,B|C": the first is typed once all but `held` rows have settled;
    # then the release URL is fetched (the test's server holds `held` answers until then), and
    # each later group is typed once every row has settled.
    import sys
    import urllib.request
    from PyQt5.QtCore import Qt, QTimer
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtTest import QTest
    from imagegallery import app

    qt_app = QGuiApplication(sys.argv[:1])  # main() uses the application that exists
    groups = [group.split(",") if group else [] for group in sys.argv[1].split("|")]
    release_url, still_held = sys.argv[2], [int(sys.argv[3])]

    def awaiting(window):
        # A pick waiting for its images: the model's counts reach the window a turn after its
        # rows settle, and with them the end of the wait.
        pick = window.property("awaitedPick")
        return bool(pick.toVariant() if hasattr(pick, "toVariant") else pick)

    def drive():
        windows = [w for w in QGuiApplication.topLevelWindows()
                   if w.objectName() == "mainWindow" and w.isExposed()]
        model = windows[0].property("galleryModel") if windows else None
        if (model is None or model.count == 0 or model.pendingCount > still_held[0]
                or not windows[0].isActive() or awaiting(windows[0])):
            if windows:
                windows[0].requestActivate()
            QTimer.singleShot(20, drive)
            return
        if still_held[0] == 0:  # nothing held: say what the window says before these keys
            print("status message:", windows[0].property("statusMessage"), file=sys.stderr)
        for key in groups.pop(0):
            QTest.keyClick(windows[0], getattr(Qt, "Key_" + key))
        if release_url and still_held[0]:
            urllib.request.urlopen(release_url, timeout=10).read()
            still_held[0] = 0
        if groups:
            QTimer.singleShot(0, drive)

    QTimer.singleShot(0, drive)
    sys.exit(app.main(sys.argv[4:]))
""")


def run_pick(tmp_path, keys, urls, release_url="", held=0, stdout=subprocess.PIPE):
    driver = tmp_path / "drive_pick.py"
    driver.write_text(PICK_DRIVER)
    return subprocess.run([sys.executable, str(driver), keys, release_url, str(held), "--pick", *urls],
                          env=subprocess_env(), stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


def held_answers(image_server):
    """A release URL, and a way to add answers the server holds until it is fetched."""
    released = threading.Event()

    def release(handler):
        released.set()
        handler._send(200, b"", "text/plain")

    def add_held(path, status, body, content_type):
        def answer(handler):
            released.wait(SUBPROCESS_TIMEOUT)
            handler._send(status, body, content_type)
        return image_server.add_handler(path, answer)

    return image_server.add_handler("/release", release), add_held


def test_pick_prints_the_chosen_url(image_server, tmp_path):
    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(COLORS)]
    result = run_pick(tmp_path, "Right,Right,Return", urls)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [urls[2]]


def test_a_pick_that_cannot_be_written_says_so_and_counts_as_none(image_server, tmp_path):
    # Raised out of the window's slot, the write error aborted the process (exit 134).
    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(COLORS)]
    with open("/dev/full", "w") as full:
        result = run_pick(tmp_path, "Return", urls, stdout=full)
    assert result.returncode == EXIT_CANCELLED, result.stderr
    assert "imagegallery: error: cannot write the choice to standard output: [Errno 28]" \
        in result.stderr
    assert "Traceback" not in result.stderr


# The number of read(2) where /proc/PID/syscall names it.
READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)


@pytest.mark.skipif(READ_SYSCALL is None, reason="read(2)'s number on this machine is not listed")
@pytest.mark.parametrize("options, status", [([], 130), (["--pick"], EXIT_CANCELLED)])
def test_ctrl_c_before_the_window_opens_ends_the_app_without_a_traceback(qtbot, options, status):
    # Python's KeyboardInterrupt came out as a traceback, and inside a slot Qt called (a theme
    # compiling, the window being made) it aborted the process (exit 134).
    app = subprocess.Popen([sys.executable, "-m", "imagegallery", *options, "--file", "-"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=subprocess_env(), text=True)
    try:
        def reading_its_list():  # blocked in read(2) on standard input
            with open(f"/proc/{app.pid}/syscall") as call:
                return call.read().split()[:2] == [READ_SYSCALL, "0x0"]

        qtbot.waitUntil(reading_its_list, timeout=SUBPROCESS_TIMEOUT * 1000)
        app.send_signal(signal.SIGINT)
        _, err = app.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        app.kill()
        app.wait()
    assert app.returncode == status, err
    assert "Traceback" not in err


def test_pick_of_several_prints_each(image_server, tmp_path):
    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(COLORS)]
    result = run_pick(tmp_path, "Space,Right,Right,Right,Space,Return", urls)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [urls[0], urls[3]]


def test_pick_leaves_out_what_failed_to_load(image_server, tmp_path):
    # A picker for scripts printed a refused javascript: entry and a 404 as chosen.
    good = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(COLORS[:2])]
    urls = [good[0], "javascript:alert(1)", image_server.url("/missing.png"), good[1]]
    result = run_pick(tmp_path, "Space,Right,Space,Right,Space,Right,Space,Return", urls)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == good
    # Enter on a failed tile alone picks nothing, and the picker stays open.
    result = run_pick(tmp_path, "Right,Right,Return,Escape", urls)
    assert (result.returncode, result.stdout) == (EXIT_CANCELLED, ""), result.stderr


def test_a_pick_waits_for_chosen_images_still_loading_and_returns_those_that_loaded(
        image_server, tmp_path):
    # A pick printed a URL still loading, which then failed: a script got an image that never was.
    release_url, add_held = held_answers(image_server)
    shown = image_server.add("/shown.png", solid_image_bytes(COLORS[0]))
    late = add_held("/late.png", 200, solid_image_bytes(COLORS[1]), "image/png")
    late_missing = add_held("/late-missing.png", 404, b"not found", "text/plain")
    urls = [shown, late, late_missing]
    result = run_pick(tmp_path, "Space,Right,Space,Right,Space,Return|", urls, release_url, held=2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [shown, late]


def test_enter_on_a_tile_still_loading_that_then_fails_picks_nothing(image_server, tmp_path):
    release_url, add_held = held_answers(image_server)
    urls = [image_server.add("/shown.png", solid_image_bytes(COLORS[0])),
            add_held("/late-missing.png", 404, b"not found", "text/plain")]
    result = run_pick(tmp_path, "Right,Return|Escape", urls, release_url, held=1)
    assert (result.returncode, result.stdout) == (EXIT_CANCELLED, ""), result.stderr
    # The wait ended, and said so: the window had gone quiet, the choice dropped unannounced.
    assert "status message: None of the chosen images loaded: nothing was chosen" in result.stderr


def test_pick_cancelled_exits_1(image_server, tmp_path):
    urls = [image_server.add("/0.png", solid_image_bytes("#ff0000"))]
    result = run_pick(tmp_path, "Escape", urls)
    assert result.returncode == EXIT_CANCELLED, result.stderr
    assert result.stdout == ""


def test_no_urls_runs_the_offline_demo_and_says_how_to_read_stdin(tmp_path):
    out = tmp_path / "demo.png"
    piped = tmp_path / "urls.txt"
    piped.write_text("http://127.0.0.1:9/never-read.png\n")
    with open(piped) as stdin:
        result = subprocess.run([sys.executable, "-m", "imagegallery", "--screenshot", str(out)],
                                stdin=stdin, env=subprocess_env(), capture_output=True, text=True,
                                timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "showing the offline demo (to read URLs from standard input, add --file -)" in \
        result.stderr
    # The demo's 84 generated images, three of them broken on purpose (a 404, a web page, a
    # decompression bomb): error tiles show too, and no decoder complains on the console.
    assert "81 of 84 loaded, 3 failed" in result.stderr
    assert "libpng" not in result.stderr
    image = QImage(str(out))
    assert not image.isNull()
    colours = {image.pixel(x, y) for y in range(0, image.height(), 20)
               for x in range(0, image.width(), 20)}
    assert len(colours) > 50  # thumbnails, not an empty window


def test_the_demo_has_the_same_urls_every_run_so_a_second_run_uses_the_disk_cache():
    # On a free port each run's URLs were new: nothing came from the cache, and every run
    # added 81 thumbnails to it.
    import socket

    from imagegallery.demo_server import DEMO_PORT, DemoServer

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", DEMO_PORT)) == 0:
            pytest.skip(f"another program listens on the demo's port {DEMO_PORT}")
    first = DemoServer().start()
    try:
        beside = DemoServer().start()  # a second demo at once takes a free port instead
        try:
            assert first.port == DEMO_PORT and beside.port != DEMO_PORT
        finally:
            beside.stop()
        urls = first.urls()
    finally:
        first.stop()
    again = DemoServer().start()
    try:
        assert again.urls() == urls
    finally:
        again.stop()


def test_stdin_holds_input_only_for_a_pipe_or_a_non_empty_file(tmp_path):
    from imagegallery.app import stdin_holds_input

    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.write_text("")
    full.write_text("http://a/1.png\n")
    read_end, write_end = os.pipe()
    try:
        with open(empty) as e, open(full) as f, os.fdopen(read_end) as pipe:
            assert (stdin_holds_input(e), stdin_holds_input(f), stdin_holds_input(pipe)) == (
                False, True, True)
    finally:
        os.close(write_end)
    assert stdin_holds_input(io.StringIO("http://a/1.png")) is False  # no descriptor


def test_the_offline_demo_works_with_a_proxy_set(tmp_path):
    from servers import free_port_refusing_connections

    dead_proxy = f"http://127.0.0.1:{free_port_refusing_connections()}"
    env = dict(subprocess_env(), HTTP_PROXY=dead_proxy, http_proxy=dead_proxy)
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    result = subprocess.run([sys.executable, "-m", "imagegallery", "--screenshot",
                             str(tmp_path / "demo.png")], stdin=subprocess.DEVNULL, env=env,
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "81 of 84 loaded, 3 failed" in result.stderr  # not one went to the dead proxy


@pytest.mark.parametrize("argv", [
    ["--timeout", "nan", "--screenshot", "x.png"],
    ["--timeout", "-1", "--screenshot", "x.png"],
    ["--timeout", "3000000", "--screenshot", "x.png"],
    ["--qml", __file__, "--screenshot", "x.png"],
    ["--qml", __file__, "--theme", "dark"],
    ["--qml", __file__, "http://127.0.0.1:9/a.png"],
    ["--screenshot", "/nonexistent-folder/shot.png"],
    ["--screenshot", "shot"],  # no extension: no format to write
    # Said only after loading, with no reason: "could not save the screenshot to /proc/shot.png".
    ["--screenshot", "/proc/shot.png"],
])
def test_options_that_cannot_work_are_usage_errors(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "error" in capsys.readouterr().err


def test_the_screenshot_paths_check_leaves_nothing_behind(tmp_path):
    # Through a link to nowhere it made the link's target, and left it there.
    from imagegallery.app import _check_screenshot_path

    link = tmp_path / "shot.png"
    link.symlink_to(tmp_path / "real.png")
    _check_screenshot_path(str(link))
    _check_screenshot_path(str(tmp_path / "new.png"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shot.png"]


def test_main_in_process_leaves_ctrl_c_as_it_found_it(capsys):
    handler = signal.getsignal(signal.SIGINT)
    assert main(["--thumbnail", "0x0"]) == EXIT_USAGE
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_url_list_with_a_byte_order_mark_reads_its_first_url(tmp_path):
    from imagegallery.app import read_url_list

    listing = tmp_path / "notepad.txt"
    listing.write_bytes("\ufeffhttp://127.0.0.1:9/a.png\r\nhttp://127.0.0.1:9/b.png\r\n".encode("utf-8"))
    assert read_url_list(str(listing)) == ["http://127.0.0.1:9/a.png", "http://127.0.0.1:9/b.png"]
    piped = io.StringIO("\ufeffhttp://127.0.0.1:9/a.png\n")
    assert read_url_list("-", stdin=piped) == ["http://127.0.0.1:9/a.png"]
    # Notepad's "Unicode" is UTF-16 with a BOM: it was "URL list is not UTF-8 text".
    for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        listing.write_bytes("\ufeffhttp://127.0.0.1:9/a.png\r\n".encode(encoding))
        assert read_url_list(str(listing)) == ["http://127.0.0.1:9/a.png"]


def test_a_lists_paths_from_a_pipe_or_home_are_read_as_the_user_meant(tmp_path, monkeypatch):
    # `--file <(ls *.png)` named /dev/fd/63: its paths were read in /dev/fd, every one "file not
    # found". `--file=~/list.txt` (no shell expands "~" after "=") was "URL list not found".
    from imagegallery.app import read_url_list

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    read_end, write_end = os.pipe()
    os.write(write_end, b"beach.png\n")
    os.close(write_end)
    try:
        assert read_url_list(f"/dev/fd/{read_end}") == [str(tmp_path / "beach.png")]
    finally:
        os.close(read_end)
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "list.txt").write_text("beach.png\n")
    assert read_url_list("~/album/list.txt") == [str(tmp_path / "album" / "beach.png")]
    # `--file /dev/stdin < album/list.txt` is that list: its folder, not /dev.
    with open(tmp_path / "album" / "list.txt", "rb") as redirected:
        assert read_url_list(f"/dev/fd/{redirected.fileno()}") == [str(tmp_path / "album" / "beach.png")]


def test_revalidate_asks_the_server_about_each_disk_cached_thumbnail(qtbot, image_server, tmp_path,
                                                                     monkeypatch):
    from PyQt5.QtCore import QCoreApplication

    from imagegallery.app import _Session, build_parser, tiles_settled
    from imagegallery.cache import shared_thumbnail_cache

    monkeypatch.setenv("IMAGEGALLERY_CACHE_DIR", str(tmp_path / "cache"))
    asked = []

    def tagged(handler):
        asked.append(handler.headers.get("If-None-Match"))
        handler._send(200, solid_image_bytes("#ff0000"), "image/png", {"ETag": '"v1"'})

    url = image_server.add_handler("/tagged.png", tagged)
    for arguments in ([url], ["--revalidate", url]):
        session = _Session(QCoreApplication.instance(), build_parser().parse_args(arguments), [url],
                           "light", None)
        try:
            assert session.start() == 0
            qtbot.waitUntil(lambda: session.model.pendingCount == 0, timeout=10000)
            qtbot.waitUntil(lambda: tiles_settled(session.window), timeout=10000)
            loader = session.model.loader
            qtbot.waitUntil(lambda: not loader.active_jobs() and not loader.pending_worker_jobs(),
                            timeout=10000)  # revalidated, and written to disk
        finally:
            session.close()
        shared_thumbnail_cache().clear()  # as a new process starts
    # The second run showed the disk's thumbnail and then asked whether it changed.
    assert asked == [None, '"v1"']


def test_a_list_the_window_cannot_read_says_why_in_the_window(qtbot, image_server, tmp_path,
                                                              monkeypatch):
    from PyQt5.QtCore import QCoreApplication

    from imagegallery import app

    from imagegallery.app import _Session, build_parser, tiles_settled

    first = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    args = build_parser().parse_args([first])
    session = _Session(QCoreApplication.instance(), args, [first], "light", None)
    try:
        assert session.start() == 0
        window = session.window
        window.openListRequested.emit(str(tmp_path / "missing.txt"))
        qtbot.waitUntil(lambda: "URL list not found" in window.property("listError"), timeout=5000)
        listing = tmp_path / "more.txt"
        listing.write_text(image_server.add("/1.png", solid_image_bytes("#00ff00")) + "\n")
        window.openListRequested.emit(listing.as_uri())  # read on a thread, not the GUI's
        qtbot.waitUntil(lambda: session.model.count == 2, timeout=5000)
        assert window.property("listError") == ""
        window.addUrlsRequested.emit(image_server.add("/2.png", solid_image_bytes("#0000ff")))
        qtbot.waitUntil(lambda: session.model.loadedCount == 3, timeout=10000)
        # Lists added one by one are held to the entry cap too, in all.
        monkeypatch.setattr(app, "MAX_URL_LIST_ENTRIES", 4)
        window.openListRequested.emit(listing.as_uri())
        window.openListRequested.emit(listing.as_uri())
        qtbot.waitUntil(lambda: "would hold over 4 entries" in window.property("listError"),
                        timeout=5000)
        assert session.model.count == 4
        window.addUrlsRequested.emit(image_server.url("/3.png"))  # pasted: the same cap
        qtbot.waitUntil(lambda: "with these 1" in window.property("listError"), timeout=5000)
        assert session.model.count == 4
        # Every tile's face made before the engine goes: deleting it mid-incubation warns.
        qtbot.waitUntil(lambda: tiles_settled(window), timeout=10000)
    finally:
        session.close()


def _contrast(first: QColor, second: QColor) -> float:
    """WCAG's contrast ratio of two colours (1 to 21)."""
    def luminance(color):
        channels = [c / 255 for c in (color.red(), color.green(), color.blue())]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _button_colors(window, button):
    """(the most common colour in the button, the one that contrasts with it most): its
    background and its text, as painted."""
    from collections import Counter

    from PyQt5.QtCore import QPointF

    from imagegallery.app import grab_window

    shot = grab_window(window)
    corner = button.mapToScene(QPointF(0, 0)).toPoint()
    counts = Counter(shot.pixel(corner.x() + x, corner.y() + y)
                     for x in range(3, int(button.width()) - 3)
                     for y in range(3, int(button.height()) - 3))
    background = QColor(counts.most_common(1)[0][0])
    text = max((QColor(rgb) for rgb in counts), key=lambda color: _contrast(color, background))
    return background, text


@pytest.mark.parametrize("theme", ["light", "dark", "high-contrast"])
def test_the_pickers_choose_button_can_be_read_and_shows_when_it_can_be_used(qtbot, image_server,
                                                                            theme):
    from PyQt5.QtCore import QCoreApplication, QObject

    from imagegallery.app import _Session, build_parser, tiles_settled

    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    args = build_parser().parse_args(["--pick", "--theme", theme, url])
    session = _Session(QCoreApplication.instance(), args, [url], theme, None)
    try:
        assert session.start() == 0
        window = session.window
        qtbot.waitUntil(lambda: session.model.loadedCount == 1 and tiles_settled(window), timeout=10000)
        button = window.findChild(QObject, "chooseButton")
        idle_background, _ = _button_colors(window, button)
        window.findChild(QObject, "gallery").setProperty("selectedUrls", [url])
        qtbot.waitUntil(lambda: button.property("enabled"), timeout=3000)
        qtbot.waitUntil(lambda: _button_colors(window, button)[0] != idle_background, timeout=3000)
        background, text = _button_colors(window, button)
        # 4.5:1 is WCAG's AA for text; measured on anti-aliased glyphs, 3:1 (its bar for large
        # text and controls) leaves room for the edge pixels.
        assert _contrast(background, text) >= 3.0, (theme, background.name(), text.name())
    finally:
        session.close()


def test_a_pick_hides_the_window_before_the_disk_cache_writes_on_the_way_out(qtbot, image_server):
    # The loader writes its held thumbnails as the event loop ends, waiting up to 2 s: the
    # picker's window stayed shown, frozen, through that.
    from PyQt5.QtCore import Q_ARG, QCoreApplication, QMetaObject, QVariant

    from imagegallery.app import _Session, build_parser

    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    session = _Session(QCoreApplication.instance(), build_parser().parse_args(["--pick", url]),
                       [url], "light", None)
    try:
        assert session.start() == 0
        qtbot.waitUntil(lambda: session.model.loadedCount == 1, timeout=10000)
        assert session.window.isVisible()
        # QCoreApplication.exit() would end every later event loop of this test process at once.
        exits = []
        session.app = SimpleNamespace(exit=exits.append)
        QMetaObject.invokeMethod(session.window, "pickSelection", Q_ARG(QVariant, url))
        assert exits == [0] and not session.window.isVisible()
    finally:
        session.close()


def test_retry_failed_is_offered_for_and_fetches_only_the_failures_a_retry_can_change(
        qtbot, image_server):
    # It was enabled by any failure, and fetched the SVG (or the demo's decompression bomb)
    # again at every click, to the same refusal, where the tiles offer no Retry.
    from PyQt5.QtCore import QCoreApplication, QObject, QPointF, Qt
    from PyQt5.QtTest import QTest

    from imagegallery.app import _Session, build_parser, tiles_settled

    svg = image_server.add("/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                           "image/svg+xml")
    late = image_server.url("/late.png")  # a 404 until it is added
    urls = [svg, late]
    session = _Session(QCoreApplication.instance(), build_parser().parse_args(urls), urls,
                       "light", None)
    try:
        assert session.start() == 0
        window, model = session.window, session.model
        qtbot.waitUntil(lambda: model.failedCount == 2 and tiles_settled(window), timeout=10000)
        button = window.findChild(QObject, "retryFailedButton")
        assert model.retryableFailedCount == 1 and button.property("enabled")
        image_server.add("/late.png", solid_image_bytes("#00ff00"))
        middle = button.mapToScene(QPointF(button.width() / 2, button.height() / 2)).toPoint()
        with qtbot.waitSignal(model.finished, timeout=10000):
            QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier, middle)
        assert (model.loadedCount, model.failedCount, model.retryableFailedCount) == (1, 1, 0)
        assert image_server.hits["/logo.svg"] == 1 and image_server.hits["/late.png"] == 2
        qtbot.waitUntil(lambda: not button.property("enabled"), timeout=3000)
    finally:
        session.close()


def test_the_toolbar_leaves_the_arrow_keys_with_the_gallery(qtbot, image_server):
    # A click on Reload took the focus from the gallery, and after a theme was picked with the
    # mouse the arrow keys went on changing the theme.
    from PyQt5.QtCore import QCoreApplication, QObject, QPoint, QPointF, Qt
    from PyQt5.QtTest import QTest

    from imagegallery.app import _Session, build_parser, tiles_settled

    urls = serve_solid_images(image_server, ["#ff0000", "#00ff00", "#0000ff"])
    args = build_parser().parse_args(urls)
    session = _Session(QCoreApplication.instance(), args, urls, "light", None)
    try:
        assert session.start() == 0
        window = session.window
        qtbot.waitUntil(lambda: session.model.loadedCount == 3 and tiles_settled(window),
                        timeout=10000)
        gallery = window.findChild(QObject, "gallery")

        def click(name):
            item = window.findChild(QObject, name)
            QTest.mouseClick(window, Qt.LeftButton, Qt.NoModifier,
                             item.mapToScene(QPointF(item.width() / 2, item.height() / 2)).toPoint())

        gallery.setProperty("currentIndex", 0)
        click("reloadButton")
        qtbot.waitUntil(lambda: session.model.loadedCount == 3, timeout=10000)
        QTest.keyClick(window, Qt.Key_Right)
        assert gallery.property("currentIndex") == 1

        switcher = window.findChild(QObject, "themeSwitcher")
        click("themeSwitcher")
        def list_shown():  # the popup's item sits in the window's overlay
            stack = [window.contentItem()]
            while stack:
                item = stack.pop()
                if item.metaObject().className() == "QQuickPopupItem" and item.isVisible():
                    return True
                stack.extend(item.childItems())
            return False

        qtbot.waitUntil(list_shown, timeout=3000)
        QTest.keyClick(window, Qt.Key_Down)
        QTest.keyClick(window, Qt.Key_Return)  # picks Dark, and the list closes
        qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
        assert switcher.property("currentText") == "Dark"
        QTest.keyClick(window, Qt.Key_Right)
        assert (gallery.property("currentIndex"), switcher.property("currentText")) == (2, "Dark")

        # From the keyboard the keys stay, in their place in the Tab order.
        for _ in range(8):
            if switcher.property("activeFocus"):
                break
            QTest.keyClick(window, Qt.Key_Tab)
        assert switcher.property("activeFocus")
        QTest.keyClick(window, Qt.Key_Space)
        qtbot.waitUntil(list_shown, timeout=3000)
        QTest.keyClick(window, Qt.Key_Down)
        QTest.keyClick(window, Qt.Key_Return)
        qtbot.waitUntil(lambda: not list_shown(), timeout=3000)
        assert switcher.property("currentText") == "High contrast"
        assert switcher.property("activeFocus")
        # ... but a list then opened with the mouse gives them back (how the box got its focus
        # did not tell: it stayed the Tab's).
        click("themeSwitcher")
        qtbot.waitUntil(list_shown, timeout=3000)
        QTest.keyClick(window, Qt.Key_Escape)
        qtbot.waitUntil(lambda: gallery.property("activeFocus"), timeout=3000)
        # A press on the box released off it opens nothing; a list then opened from the
        # keyboard keeps the keys (the press had marked the next list as the mouse's).
        box = switcher.mapToScene(QPointF(switcher.width() / 2, switcher.height() / 2)).toPoint()
        QTest.mousePress(window, Qt.LeftButton, Qt.NoModifier, box)
        QTest.mouseRelease(window, Qt.LeftButton, Qt.NoModifier, box + QPoint(0, 300))
        assert not list_shown()
        switcher.forceActiveFocus()
        QTest.keyClick(window, Qt.Key_Space)
        qtbot.waitUntil(list_shown, timeout=3000)
        QTest.keyClick(window, Qt.Key_Down)
        QTest.keyClick(window, Qt.Key_Return)
        qtbot.waitUntil(lambda: not list_shown(), timeout=3000)
        assert switcher.property("activeFocus")
    finally:
        session.close()


def test_a_screenshot_window_takes_no_input_so_the_pointer_leaves_no_tooltip_in_it(
        qtbot, image_server, tmp_path):
    """Under a real display the pointer may rest on a tile, whose tooltip was in the picture."""
    from PyQt5.QtCore import QCoreApplication, Qt

    from imagegallery.app import _Session, build_parser, tiles_settled

    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    for arguments, takes_input in (([url], True),
                                   (["--screenshot", str(tmp_path / "out.png"), url], False)):
        session = _Session(QCoreApplication.instance(), build_parser().parse_args(arguments),
                           [url], "light", None)
        try:
            assert session.start() == 0
            transparent = bool(session.window.flags() & Qt.WindowTransparentForInput)
            assert transparent != takes_input, arguments
            qtbot.waitUntil(lambda: session.model.pendingCount == 0, timeout=10000)
            qtbot.waitUntil(lambda: tiles_settled(session.window), timeout=10000)
        finally:
            session.close()


def test_an_image_the_desktop_cannot_open_says_so_in_the_window(qtbot, image_server, monkeypatch):
    from PyQt5.QtCore import QCoreApplication, QObject, Qt
    from PyQt5.QtGui import QDesktopServices
    from PyQt5.QtTest import QTest

    from imagegallery.app import _Session, build_parser, tiles_settled

    desktop_has_an_application = False
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: desktop_has_an_application)
    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    session = _Session(QCoreApplication.instance(), build_parser().parse_args([url]), [url],
                       "light", None)
    try:
        assert session.start() == 0
        window = session.window
        qtbot.waitUntil(lambda: session.model.loadedCount == 1, timeout=10000)
        qtbot.waitUntil(lambda: tiles_settled(window), timeout=10000)
        shown = window.findChild(QObject, "statusMessage")
        assert not shown.property("visible")
        window.findChild(QObject, "gallery").setProperty("currentIndex", 0)
        QTest.keyClick(window, Qt.Key_Return)
        said = f"could not open {url}: the desktop has no application for it"
        qtbot.waitUntil(lambda: shown.property("text") == said, timeout=5000)
        assert shown.property("visible")
        desktop_has_an_application = True  # one installed since: the next open clears it
        QTest.keyClick(window, Qt.Key_Return)
        qtbot.waitUntil(lambda: not shown.property("visible"), timeout=5000)
    finally:
        session.close()


def test_an_image_activated_outside_pick_mode_opens_in_the_desktops_viewer(
        qtbot, image_server, tmp_path, monkeypatch):
    from PyQt5.QtCore import QCoreApplication, QObject, Qt
    from PyQt5.QtGui import QDesktopServices
    from PyQt5.QtTest import QTest

    from imagegallery.app import _Session, build_parser, tiles_settled

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local.png").write_bytes(solid_image_bytes("#00ff00"))
    url = image_server.add("/0.png", solid_image_bytes("#ff0000"))
    refused = "smb://192.0.2.1/share/run-me.desktop"  # an Error row: never handed to the desktop
    missing = image_server.add("/gone.png", b"", status=404)  # an Error row by http
    urls = [url, "local.png", refused, missing]
    session = _Session(QCoreApplication.instance(), build_parser().parse_args(urls), urls,
                       "light", None)
    try:
        assert session.start() == 0
        qtbot.waitUntil(lambda: session.model.pendingCount == 0, timeout=10000)
        qtbot.waitUntil(lambda: tiles_settled(session.window), timeout=10000)
        gallery = session.window.findChild(QObject, "gallery")
        for row in (2, 3, 0, 1):
            gallery.setProperty("currentIndex", row)
            QTest.keyClick(session.window, Qt.Key_Return)
        qtbot.waitUntil(lambda: len(opened) == 2, timeout=5000)
        assert [target.toString() for target in opened] == [url, (tmp_path / "local.png").as_uri()]
    finally:
        session.close()


def test_a_lone_dash_says_how_to_read_standard_input(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no file named "-" here
    code, _, err = run_main(capsys, "-", stdin=io.StringIO("http://127.0.0.1:9/a.png\n"))
    assert code == EXIT_USAGE
    assert err.strip() == ("imagegallery: error: no such file: - "
                           "(to read URLs from standard input, use --file -)")
