"""Compiles resources.qrc into the package at build time.

An installed imagegallery must find its QML without the source tree, so the qml/ folder is
bundled as a Qt resource module (imagegallery/_qml_resources.py) whenever the package is built.
A source checkout without that module falls back to the qml/ folder on disk (see qml_paths.py).
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithQmlResources(build_py):
    def run(self):
        super().run()
        from PyQt5.pyrcc_main import processResourceFile

        here = os.path.dirname(os.path.abspath(__file__))
        target = os.path.join(self.build_lib, "imagegallery", "_qml_resources.py")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        cwd = os.getcwd()
        os.chdir(here)  # pyrcc resolves the qrc's relative file paths from the working folder
        try:
            if not processResourceFile(["resources.qrc"], target, False):
                raise RuntimeError("pyrcc5 could not compile resources.qrc")
        finally:
            os.chdir(cwd)


setup(cmdclass={"build_py": BuildPyWithQmlResources})
