"""JPEG thumbnails through libjpeg-turbo 3 with its SIMD code (the `simplejpeg` wheel).

Qt 5.15's JPEG plugin carries its own libjpeg-turbo, built without SIMD; this one decodes the
same DCT-scaled thumbnails, to the same pixels, with less CPU (docs/architecture.md, step 9 and
"JPEG through libjpeg-turbo 3").
Qt's reader stays the fallback for what is not handed over here or is refused: CMYK, 12-bit and
truncated files (Qt shows what arrived), or a platform without the wheel.

Imported from a decoder thread, never from the sandbox child (numpy takes about 70 ms to load).
"""
from __future__ import annotations

import sys
from typing import Optional

from PyQt5.QtCore import QSize, Qt
from PyQt5.QtGui import QImage

try:
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
