"""Images of known content made at test time, so pixel checks know what to expect."""
from __future__ import annotations

import struct
import zlib

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice
from PyQt5.QtGui import QColor, QImage, QPainter


def solid_image_bytes(color: str, width: int = 320, height: int = 200, fmt: str = "PNG",
                      quality: int = 95) -> bytes:
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor(color))
    return encode(image, fmt, quality)


def noisy_photo_bytes(seed: int, width: int = 1600, height: int = 1200, quality: int = 85) -> bytes:
    """A JPEG that compresses like a photo (gradients and shapes, not flat colour)."""
    import random

    rng = random.Random(seed)
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    painter = QPainter(image)
    for _ in range(60):
        painter.setBrush(QColor(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        painter.drawEllipse(rng.randrange(width), rng.randrange(height), rng.randrange(50, width // 2),
                            rng.randrange(50, height // 2))
    painter.end()
    return encode(image, "JPEG", quality)


def encode(image: QImage, fmt: str, quality: int = 95) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    assert image.save(buffer, fmt, quality), f"could not encode {fmt}"
    buffer.close()
    return bytes(data)


def center_color(image: QImage) -> QColor:
    return QColor(image.pixel(image.width() // 2, image.height() // 2))


def close_to(actual: QColor, expected: str, tolerance: int = 12) -> bool:
    wanted = QColor(expected)
    return all(abs(a - b) <= tolerance for a, b in (
        (actual.red(), wanted.red()), (actual.green(), wanted.green()), (actual.blue(), wanted.blue())))


def serve_solid_images(server, colors, width: int = 320, height: int = 200, fmt: str = "PNG"):
    """Register one solid image per colour on `server`; returns their URLs in order."""
    suffix = fmt.lower()
    return [server.add(f"/{i}.{suffix}", solid_image_bytes(color, width, height, fmt),
                       f"image/{suffix}") for i, color in enumerate(colors)]


def png_chunk(name: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + name + data + struct.pack(">I", zlib.crc32(name + data))


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (8-bit RGB) and that holds one byte of image
    data: enough for a size check, which reads no pixel (Qt reads no size without an IDAT)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\0")) + png_chunk(b"IEND", b""))


def with_png_chunks_after_header(png: bytes, chunks: bytes) -> bytes:
    header_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, name, data and CRC
    return png[:header_end] + chunks + png[header_end:]


def png_zip_bomb_texts(count: int) -> bytes:
    """`count` zTXt chunks of 8 KB, each inflating to 7.9 MB (libpng stops one at 8 MB)."""
    inflated = zlib.compress(b"\0" * 7_900_000, 9)
    return b"".join(png_chunk(b"zTXt", b"Comment%d\0\0" % n + inflated) for n in range(count))
