"""The smallest Python host: `python examples/host.py examples/PhotoPicker.qml`."""
import os
import signal
import sys

from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QGuiApplication
from PyQt5.QtQml import QQmlApplicationEngine

import imagegallery

app = QGuiApplication(sys.argv)
# Ctrl+C quits like closing the window (the thumbnails waiting for the disk are written). Python
# runs a signal handler only when it gets control, which Qt's loop gives it at the timer.
signal.signal(signal.SIGINT, lambda *_: app.quit())
wake_python = QTimer()
wake_python.timeout.connect(lambda: None)
wake_python.start(250)
engine = QQmlApplicationEngine()
imagegallery.install(engine)  # ImageGallery 1.0: types, image providers, QML import path
here = os.path.dirname(os.path.abspath(__file__))  # not the working folder: run it from anywhere
engine.load(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "PhotoPicker.qml"))
sys.exit(app.exec_() if engine.rootObjects() else 3)
