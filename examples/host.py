"""The smallest Python host: `python examples/host.py examples/PhotoPicker.qml`."""
import os
import signal
import sys

from PyQt5.QtGui import QGuiApplication
from PyQt5.QtQml import QQmlApplicationEngine

import imagegallery

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C ends it: Qt's loop never lets Python see it
app = QGuiApplication(sys.argv)
engine = QQmlApplicationEngine()
imagegallery.install(engine)  # ImageGallery 1.0: types, image provider, QML import path
here = os.path.dirname(os.path.abspath(__file__))  # not the working folder: run it from anywhere
engine.load(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "PhotoPicker.qml"))
sys.exit(app.exec_() if engine.rootObjects() else 3)
