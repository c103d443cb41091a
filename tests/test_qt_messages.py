"""qt_messages.py: what Qt's image plugins say while one of our threads decodes goes to the
`imagegallery.decode` logger at DEBUG; every other Qt message goes on to the handler before."""
import logging
import threading

import pytest
from PyQt5.QtCore import qWarning

from imagegallery.decode import ThumbnailSpec, decode_thumbnail
from imagegallery.limits import LoadLimits
from imagegallery.qt_messages import install_message_handler
from imaging import solid_image_bytes


@pytest.mark.qt_log_ignore("not about an image")
def test_a_decoders_complaint_is_logged_at_debug_and_other_messages_pass_on(qtbot, qtlog, caplog):
    caplog.set_level(logging.DEBUG, logger="imagegallery.decode")
    jpeg = solid_image_bytes("#00ff00", fmt="JPG")
    url = "http://127.0.0.1:9/cut.jpg"
    results = []
    restore = install_message_handler()
    try:
        # A JPEG cut short: libjpeg-turbo refuses it and Qt's plugin shows what arrived, with
        # libjpeg's complaint as a qWarning from the decode thread.
        decoder = threading.Thread(target=lambda: results.append(
            decode_thumbnail(jpeg[:len(jpeg) // 2], ThumbnailSpec(64, 48), LoadLimits(), url)))
        decoder.start()
        qtbot.waitUntil(lambda: bool(results), timeout=10000)
        qWarning(b"not about an image")
    finally:
        restore()
    decoder.join()
    assert results[0].ok, results[0].error
    said = [record for record in caplog.records if record.name == "imagegallery.decode"]
    assert said and all(record.levelno == logging.DEBUG for record in said)
    assert said[0].getMessage().startswith(f"{url}: ") and "JPEG" in said[0].getMessage()
    # Qt's log (pytest-qt's handler, installed before) got the other message and only it.
    assert [record.message for record in qtlog.records] == ["not about an image"]


def test_with_qt_debug_plugins_set_nothing_is_installed(monkeypatch):
    # Qt's plugin loader then logs while holding the lock a decode thread with the GIL may wait
    # for: a Python handler hung a reviewer's host.
    from PyQt5.QtCore import qInstallMessageHandler

    def current_handler():
        handler = qInstallMessageHandler(None)
        qInstallMessageHandler(handler)
        return handler

    monkeypatch.setenv("QT_DEBUG_PLUGINS", "1")
    before = current_handler()  # pytest-qt's
    restore = install_message_handler()
    try:
        assert current_handler() is before
    finally:
        restore()
    assert current_handler() is before
