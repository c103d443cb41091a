"""Qt's messages in the `imagegallery` app: what Qt's image plugins say while one of our threads
decodes an image goes to the log at DEBUG (logger `imagegallery.decode`), and so does a message
the app says itself, in its own words, while it does (said_by_the_app); every other message goes
where it went before.

Qt's JPEG plugin hands each of libjpeg's complaints to qWarning ("Corrupt JPEG data: premature
end of data segment"), and its PNG plugin each of libpng's warnings ("libpng warning: iCCP:
known incorrect sRGB profile"), once per damaged file, on the thread that decodes it. Printed
on stderr they read as the app's own warnings, while the tile already says what became of the
image (its reason, or the image as far as it could be read). Which thread said it tells them
apart, not their words: libjpeg alone has over a hundred messages.

libpng's errors never come here: Qt's plugin leaves them to libpng, which prints them itself
(decode.walk_png_chunks keeps the common one, a file cut short, from reaching libpng).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator, Optional

from PyQt5.QtCore import QtMsgType, qFormatLogMessage, qInstallMessageHandler

_decoder_log = logging.getLogger("imagegallery.decode")
_restated_log = logging.getLogger("imagegallery.qml")
_this_thread = threading.local()
# Qt's fatal and critical messages are printed whatever thread says them.
_DECODER_KINDS = (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg, QtMsgType.QtWarningMsg)


def decoding_an_image(name: str) -> ContextManager[None]:
    """Marks this thread, inside the `with` block, as decoding the image `name` (a URL or a
    path): what Qt's plugins say on it meanwhile is logged as about that image. Any thread;
    where no handler of this module is installed, the mark is never read."""
    return _marked("image", name)


def said_by_the_app(message: str) -> ContextManager[None]:
    """Inside the `with` block, Qt's `message` said on this thread is logged at DEBUG only: the
    app says it itself, with more ("QQmlApplicationEngine failed to load component", before
    the app's own error naming the file and line)."""
    return _marked("restated", message)


@contextmanager
def _marked(mark: str, value: str) -> Iterator[None]:
    """This thread's `mark` is `value` inside the block (nested blocks restore the outer one)."""
    outer = getattr(_this_thread, mark, None)
    setattr(_this_thread, mark, value)
    try:
        yield
    finally:
        setattr(_this_thread, mark, outer)


def install_message_handler() -> Callable[[], None]:
    """Route Qt's messages as the module's docstring says, for the whole process; returns a
    function that puts the handler found here back. Call both on the GUI thread.

    Every other message is handed to the handler installed before (pytest-qt's, in the tests),
    or printed as Qt's default handler prints it. The handler is Python, so a message takes the
    GIL on the thread that says it, as a Python host's own handler does.

    Not with QT_DEBUG_PLUGINS set, when it installs nothing: Qt's plugin loader then logs each
    plugin it looks at while holding the lock image readers are made under, and a decode
    thread that holds the GIL may be waiting for that lock (QImageReader.canRead keeps the GIL;
    decode.HANDLER_CREATION_LOCK): the message would wait for the GIL for ever (a reviewer's
    host with a QML Image loading on Qt's pixmap thread hung in 4 runs of 4)."""
    if os.environ.get("QT_DEBUG_PLUGINS"):
        return lambda: None
    previous: Optional[Callable] = None

    def handle(kind, context, message):
        image = getattr(_this_thread, "image", None)
        if image is not None and kind in _DECODER_KINDS:
            _decoder_log.debug("%s: %s", image, message)
        elif message == getattr(_this_thread, "restated", None):
            _restated_log.debug("%s", message)
        elif previous is not None:
            previous(kind, context, message)
        elif sys.stderr is not None:
            sys.stderr.write(qFormatLogMessage(kind, context, message) + "\n")
            sys.stderr.flush()

    previous = qInstallMessageHandler(handle)
    return lambda: qInstallMessageHandler(previous)
