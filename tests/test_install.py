"""Packaging and install(): an installed package (not the source tree) finds its QML through
the compiled resources, what QML says reaches the host once, and the sdist carries what it
takes to build, test and read it."""
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOST_APP = textwrap.dedent("""
    import sys
    from PyQt5.QtCore import QTimer, QUrl
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtQml import QQmlApplicationEngine
    import imagegallery

    app = QGuiApplication(sys.argv)
    engine = QQmlApplicationEngine()
    imagegallery.install(engine)
    engine.loadData(b'''
    import QtQuick 2.15
    import QtQuick.Window 2.15
    import ImageGallery 1.0
    Window {
        width: 400; height: 300; visible: true
        property alias gallery: gallery
        ImageGallery { id: gallery; anchors.fill: parent; model: ImageGalleryModel { urls: [%URLS%] } }
    }''', QUrl("host.qml"))
    if not engine.rootObjects():
        sys.exit(3)
    model = engine.rootObjects()[0].property("gallery").property("model")
    model.finished.connect(lambda: (print("settled", model.property("loadedCount"),
                                          model.property("failedCount"), imagegallery.__file__),
                                    app.quit()))
    QTimer.singleShot(20000, lambda: app.exit(4))
    sys.exit(app.exec_())
""")


def build_sdist(source, out_dir) -> str:
    """The path of an sdist built from the tree at `source` (setuptools' own backend, as pip
    and `python -m build` call it)."""
    sdist = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
                               "print(build_meta.build_sdist(sys.argv[1]))", str(out_dir)],
        cwd=str(source), capture_output=True, text=True, timeout=300)
    assert sdist.returncode == 0, sdist.stderr[-2000:]
    return os.path.join(str(out_dir), sdist.stdout.split()[-1])


@pytest.mark.slow
def test_installed_package_loads_its_qml_from_resources(tmp_path, image_server):
    from imaging import solid_image_bytes

    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), ROOT],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "imagegallery" / "_qml_resources.py").is_file()

    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in
            enumerate(["#ff0000", "#00ff00", "#0000ff"])]
    script = tmp_path / "host.py"
    quoted = ", ".join(f'"{u}"' for u in urls + [image_server.url("/missing.png")])
    script.write_text(HOST_APP.replace("%URLS%", quoted))
    env = dict(os.environ, PYTHONPATH=str(target), QT_QPA_PLATFORM="offscreen",
               QT_QUICK_BACKEND="software")
    run = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    settled = run.stdout.split()
    assert settled[:3] == ["settled", "3", "1"]
    # It ran the installed copy, not the source tree.
    assert settled[3].startswith(str(target))


@pytest.mark.slow
def test_a_wheel_built_from_the_sdist_carries_the_qml(tmp_path):
    """`python -m build` and `pip install imagegallery-*.tar.gz` build the wheel from the sdist:
    it must hold resources.qrc and qml/, which setup.py compiles into the package."""
    import zipfile

    with tarfile.open(build_sdist(ROOT, tmp_path)) as archive:
        archive.extractall(tmp_path / "unpacked")
    source = next((tmp_path / "unpacked").iterdir())
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=300)
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    built = next((tmp_path / "wheels").glob("imagegallery-*.whl"))
    assert "imagegallery/_qml_resources.py" in zipfile.ZipFile(built).namelist()


# README's host, with a logging set-up of its own when asked for one.
README_HOST = textwrap.dedent("""
    import logging
    import sys
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtQml import QQmlApplicationEngine
    import imagegallery

    if sys.argv[2:] == ["--log"]:
        logging.basicConfig(format="host-log: %(name)s: %(message)s")
    app = QGuiApplication(sys.argv)
    engine = QQmlApplicationEngine()
    imagegallery.install(engine)
    engine.load(sys.argv[1])
    if not engine.rootObjects():
        sys.exit(1)
    sys.exit(app.exec_())
""")


def run_readme_host(tmp_path, qml, *options):
    host = tmp_path / "host.py"
    host.write_text(README_HOST)
    main = tmp_path / "main.qml"
    main.write_text(qml)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_QUICK_BACKEND="software",
               IMAGEGALLERY_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "backend"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(host), str(main), *options], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_qml_error_in_a_host_is_said_once(tmp_path):
    run = run_readme_host(tmp_path, "import QtQuick 2.15\n\nWindow { }\n")
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("main.qml:3:1: Window is not a type") == 1, run.stderr


@pytest.mark.parametrize("options, prefix", [((), ""), (("--log",), "host-log: imagegallery.qml: ")])
def test_a_qml_warning_in_a_host_is_said_once_where_its_logging_says_things(tmp_path, options,
                                                                           prefix):
    run = run_readme_host(tmp_path, textwrap.dedent("""
        import QtQuick 2.15
        import QtQuick.Window 2.15
        Window {
            visible: true
            Component.onCompleted: console.info(noSuchName)
            Timer { running: true; interval: 0; onTriggered: Qt.quit() }  // once exec_() runs
        }
    """), *options)
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stderr.splitlines() if "ReferenceError: noSuchName" in line]
    assert len(said) == 1, run.stderr
    assert said[0].startswith(prefix + "file://"), run.stderr


# A host's whole life with a model or two, with or without install(); the warm-up thread that
# asks Qt about TLS is joined at exit.
MODELS_HOST = textwrap.dedent("""
    import sys
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtQml import QQmlEngine
    import imagegallery
    from imagegallery.model import ImageGalleryModel

    app = QGuiApplication(sys.argv)
    if sys.argv[1:] == ["install"]:
        engine = QQmlEngine()
        imagegallery.install(engine)
    models = [ImageGalleryModel() for _ in range(2)]
    for model in models:
        model.transport = "qt"
        model.urls = ["https://127.0.0.1:9/a.png"]  # asks Qt about TLS again, for its request
""")


@pytest.mark.parametrize("how", ["install", "model alone"])
def test_qts_openssl_line_comes_once_per_process(tmp_path, how):
    from imagegallery.transport.qt import qt_has_tls

    if qt_has_tls():
        pytest.skip("this Qt loads its OpenSSL: it has nothing to say")
    script = tmp_path / "host.py"
    script.write_text(MODELS_HOST)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMAGEGALLERY_CACHE_DIR=str(tmp_path))
    env.pop("QT_LOGGING_RULES", None)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "backend"), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, str(script), how], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("Incompatible version of OpenSSL") == 1, run.stderr


def test_the_sdist_carries_its_tests_helpers_docs_and_license_and_no_build_junk(tmp_path):
    # setuptools' default took tests/test*.py alone: unpacked, no test could import conftest.py
    # or servers.py, and the README's links to docs/ and examples/ led nowhere.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tmp", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        ".hypothesis", "results"))  # a checkout's own bench/results: made below
    # What test and benchmark runs leave in a checkout.
    for package in ("tests", "bench"):
        (tree / package / "__pycache__").mkdir()
        (tree / package / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"junk")
    (tree / "bench" / "results").mkdir()
    (tree / "bench" / "results" / "run.json").write_text("{}")

    with tarfile.open(build_sdist(tree, tmp_path)) as archive:
        shipped = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    helpers = {f"tests/{name}" for name in os.listdir(tree / "tests") if name.endswith(".py")}
    readme = (tree / "README.md").read_text(encoding="utf-8")
    linked = {path.rstrip(".") for path in re.findall(
        r"(?<![\w/])((?:docs|examples|bench|\.ci)/[\w.-]+(?:/[\w.-]+)*)", readme)}
    assert {"tests/conftest.py", "tests/servers.py", "docs/screenshot.png"} <= helpers | linked
    needed = helpers | linked | {"LICENSE", "resources.qrc", "qml/ImageGallery/qmldir",
                                 "examples/themes/Sunset.qml", "setup.py", "pyproject.toml"}
    assert sorted(needed - shipped) == []
    junk = [name for name in shipped
            if "__pycache__" in name or name.endswith(".pyc") or name.startswith("bench/results")]
    assert junk == []
