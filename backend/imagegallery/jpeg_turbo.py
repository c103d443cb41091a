"""JPEG thumbnails through libjpeg-turbo 3 with its SIMD code (the `simplejpeg` wheel).

Qt 5.15's JPEG plugin carries its own libjpeg-turbo, built without SIMD; this one decodes the
same DCT-scaled thumbnails, to the same pixels, with less CPU (docs/architecture.md, step 9 and
"JPEG through libjpeg-turbo 3").
For downloads, Qt's reader stays the fallback for what is not handed over here or is refused:
CMYK, 12-bit and truncated files (Qt shows what arrived), or a platform without the wheel. The disk
cache writes its JPEG thumbnails here and reads them back here; one refused is fetched again.

Imported first by the warm-up thread install() starts (loader.warm_up_in_background), before the
first list, since numpy takes about 70 ms to load; else by a decoder thread or the disk thread (the
disk cache's JPEGs go through it too). Never imported in the sandbox child.
"""
from __future__ import annotations

import sys
from typing import Optional

from PyQt5.QtCore import QSize, Qt
from PyQt5.QtGui import QImage

try:
    import numpy
    import simplejpeg
except Exception:  # ImportError, or numpy failing to load: Qt's decoder does the work instead
    simplejpeg = None

# Format_RGB32 is 0xffRRGGBB in native byte order: B, G, R, X in memory on little-endian machines.
_RGB32_BYTE_ORDER = "BGRX" if sys.byteorder == "little" else "XRGB"


def available() -> bool:
    return simplejpeg is not None


def decode_jpeg_scaled(data, size: QSize,
                       decoded_size: Optional[QSize] = None) -> Optional[QImage]:
    """`data` (bytes, or an unshared QByteArray: read in place) decoded at `size`, Format_RGB32.

    libjpeg-turbo picks the smallest DCT scale at least `size`; a smooth scale makes up the rest,
    as Qt's plugin does. None when the decoder refuses the file, or when `decoded_size` is given
    and the DCT scale gave another size (a file cut down for one scale is wrong at any other).
    Releases the GIL while decoding.
    """
    if simplejpeg is None:
        return None
    try:
        # strict: a warning (a truncated scan, a corrupt segment) is a refusal, so such files get
        # Qt's behaviour, which the corpus tests pin down.
        pixels = simplejpeg.decode_jpeg(data, colorspace=_RGB32_BYTE_ORDER, strict=True,
                                        min_width=size.width(), min_height=size.height())
    except ValueError:  # what simplejpeg raises for any file it will not decode
        return None
    height, width = pixels.shape[:2]
    if decoded_size is not None and (width, height) != (decoded_size.width(),
                                                        decoded_size.height()):
        return None
    # The QImage borrows the array's memory; scaled() and copy() make one that owns its pixels.
    borrowed = QImage(pixels.data, width, height, pixels.strides[0], QImage.Format_RGB32)
    if borrowed.size() == size:
        return borrowed.copy()
    return borrowed.scaled(size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)


def encode_rgb32(image: QImage, quality: int) -> Optional[bytes]:
    """An opaque `image` as a baseline JPEG (4:2:0), or None without the wheel.

    Five times cheaper than Qt's writer (no SIMD): 0.16 against 0.8 ms for a 187x140
    thumbnail, the disk cache's every write. Releases the GIL while encoding.
    """
    if simplejpeg is None or image.isNull():
        return None
    if image.format() != QImage.Format_RGB32:
        image = image.convertToFormat(QImage.Format_RGB32)
    pointer = image.constBits()
    pointer.setsize(image.sizeInBytes())
    # With the image's own row stride: one made over another buffer may pad its rows.
    pixels = numpy.ndarray((image.height(), image.width(), 4), numpy.uint8, pointer,
                           strides=(image.bytesPerLine(), 4, 1))
    return simplejpeg.encode_jpeg(pixels, quality=quality, colorspace=_RGB32_BYTE_ORDER,
                                  colorsubsampling="420")


# The module's last statement: `cache` reads the disk's JPEGs through this module only once it
# is here, so a thread that finds LOADED never waits on the import another thread is running.
LOADED = True
