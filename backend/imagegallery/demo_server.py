"""The offline demo: a small HTTP server of the app's own, serving generated images.

`imagegallery` with no URLs starts it on 127.0.0.1 (DEMO_PORT, else a free port) in a background
thread, so a
first run on any machine shows a full gallery with no network: varied colours, shapes and sizes,
a little latency per request (so loading states show), and a few entries that fail on purpose
(a 404, a page that is not an image, a decompression bomb) so error tiles show too.
"""
from __future__ import annotations

import colorsys
import math
import random
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PyQt5.QtGui import (QBrush, QColor, QFont, QFontDatabase, QImage, QLinearGradient, QPainter,
                         QPen, QPolygonF)

DEFAULT_COUNT = 84
# (width, height): landscape, portrait, square and panorama, so fit and crop both show.
_SIZES = [(800, 600), (640, 480), (600, 800), (500, 500), (1200, 500), (960, 640), (480, 720)]
_SHAPES = ("circle", "square", "triangle", "star", "rings", "stripes")
# Rows that fail on purpose: index -> how it fails.
_BROKEN = {13: "missing", 41: "not-an-image", 65: "bomb"}
# The bomb's declared size: 3.6 gigapixels in a file of a few dozen bytes, refused from its header.
_BOMB_SIDE = 60_000


def decompression_bomb_png(side: int = _BOMB_SIDE) -> bytes:
    """A valid PNG header declaring side x side pixels, with almost no data behind it: what a
    loader must refuse before allocating (and does: the tile says "image too large")."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def render_demo_image(number: int) -> Tuple[bytes, str]:
    """Image `number` of the demo, encoded: (body, content type). Deterministic; thread-safe."""
    rng = random.Random(number * 7919)
    width, height = _SIZES[number % len(_SIZES)]
    hue = (number * 0.137) % 1.0
    image = QImage(width, height, QImage.Format_RGB32)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    gradient = QLinearGradient(0, 0, width, height)
    gradient.setColorAt(0, _hsv(hue, 0.55, 0.95))
    gradient.setColorAt(1, _hsv((hue + 0.12) % 1.0, 0.75, 0.55))
    painter.fillRect(0, 0, width, height, QBrush(gradient))

    shape = _SHAPES[number % len(_SHAPES)]
    accent = _hsv((hue + 0.5) % 1.0, 0.7, 0.98)
    painter.setPen(QPen(QColor(255, 255, 255, 200), max(2, width // 150)))
    painter.setBrush(accent)
    cx, cy, r = width / 2, height / 2, min(width, height) * rng.uniform(0.22, 0.34)
    if shape == "circle":
        painter.drawEllipse(QPointF(cx, cy), r, r)
    elif shape == "square":
        painter.translate(cx, cy)
        painter.rotate(rng.uniform(-25, 25))
        painter.drawRoundedRect(QRectF(-r, -r, 2 * r, 2 * r), r * 0.15, r * 0.15)
        painter.resetTransform()
    elif shape == "triangle":
        painter.drawPolygon(QPolygonF([QPointF(cx, cy - r), QPointF(cx + r * 0.95, cy + r * 0.75),
                                       QPointF(cx - r * 0.95, cy + r * 0.75)]))
    elif shape == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.45
            angle = math.pi / 2 + i * math.pi / 5
            points.append(QPointF(cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
        painter.drawPolygon(QPolygonF(points))
    elif shape == "rings":
        painter.setBrush(Qt.NoBrush)
        for i in range(5):
            painter.setPen(QPen(_hsv((hue + 0.1 * i + 0.5) % 1.0, 0.6, 1.0), max(3, width // 60)))
            painter.drawEllipse(QPointF(cx, cy), r * (1 - i * 0.18), r * (1 - i * 0.18))
    else:
        painter.setPen(Qt.NoPen)
        stripe = max(8, width // 12)
        for i, x in enumerate(range(0, width, stripe)):
            if i % 2 == 0:
                painter.fillRect(QRectF(x, height * 0.3, stripe, height * 0.4), accent)

    # Text needs font rendering off the GUI thread, which some platforms lack; shapes do not.
    if QFontDatabase.supportsThreadedFontRendering():
        font = QFont()
        font.setPixelSize(max(18, height // 9))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255, 230))
        painter.drawText(QRectF(0, height * 0.78, width, height * 0.2), Qt.AlignCenter,
                         f"#{number}")  # the number in its URL, which the tooltip shows
    painter.end()

    fmt = "PNG" if number % 5 == 0 else "JPEG"
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, fmt, 88)
    buffer.close()
    return bytes(data), "image/png" if fmt == "PNG" else "image/jpeg"


def _hsv(h: float, s: float, v: float) -> QColor:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return QColor(int(r * 255), int(g * 255), int(b * 255))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):  # the app's terminal is for the app's messages
        pass

    def do_GET(self):
        owner = self.server.owner
        if owner.latency_range[1] > 0:
            # The handler thread waits, never the app: latency makes loading states visible.
            time.sleep(random.uniform(*owner.latency_range))
        try:
            status, body, content_type = owner.respond(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# The same port every run, so the same URLs, so a second demo shows its thumbnails from the disk
# cache: on a free port each run's 84 URLs were new, and each run added 81 files to the cache.
DEMO_PORT = 47391


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True  # the last run's connections in TIME_WAIT must not block the port


class DemoServer:
    """Serves `count` generated images at /demo/<n>.(jpg|png) on 127.0.0.1, in a daemon thread."""

    def __init__(self, count: int = DEFAULT_COUNT, latency: Tuple[float, float] = (0.05, 0.35)):
        self.count = count
        self.latency_range = latency
        self._cache: Dict[int, Tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        try:
            self._server = _Server(("127.0.0.1", DEMO_PORT), _Handler)
        except OSError:  # another demo, or another program, has it
            self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "DemoServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="imagegallery-demo",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def urls(self) -> List[str]:
        base = f"http://127.0.0.1:{self.port}/demo"
        return [f"{base}/{n}.{'png' if n % 5 == 0 else 'jpg'}" for n in range(self.count)]

    def respond(self, path: str) -> Tuple[int, bytes, str]:
        name = path.rsplit("/", 1)[-1]
        stem = name.split(".", 1)[0]
        if not path.startswith("/demo/") or not (stem.isascii() and stem.isdigit()) \
                or int(stem) >= self.count:
            return 404, b"not found", "text/plain"
        number = int(stem)
        kind = _BROKEN.get(number)
        if kind == "missing":
            return 404, b"not found", "text/plain"
        if kind == "not-an-image":
            return 200, b"<!doctype html><title>Moved</title><p>This is a web page.</p>", "text/html"
        if kind == "bomb":
            return 200, decompression_bomb_png(), "image/png"
        with self._lock:
            cached = self._cache.get(number)
        if cached is None:
            cached = render_demo_image(number)
            with self._lock:
                self._cache[number] = cached
        body, content_type = cached
        return 200, body, content_type
