"""Turning downloaded bytes into a thumbnail, safely, in a worker thread.

Everything here is pure and thread-safe: no Qt object outlives a call, nothing touches the GUI.
Order of work for one image: undo Content-Encoding (bounded), sniff the format, read the header,
refuse what is too large or not allowed, then decode straight to thumbnail size.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QRect, QSize
from PyQt5.QtGui import QImage, QImageIOHandler, QImageReader

from .limits import LoadLimits
from .units import format_bytes

FIT = "fit"
CROP = "crop"

# Formats whose handler can only be chosen from the file name (no magic number).
_FORMATS_BY_SUFFIX = {".tga": b"tga", ".icb": b"tga", ".vda": b"tga", ".vst": b"tga"}
# SVG can reference local files and Qt resources (QtSvg follows <image> links), and a hostile
# one can hang the parser: images from the network are never rendered as SVG.
_REFUSED_FORMATS = {b"svg", b"svgz"}


@dataclass(frozen=True)
class ThumbnailSpec:
    """What to produce: the box in device pixels and how to fit the image into it."""

    width: int
    height: int
    fill_mode: str = FIT  # FIT keeps the whole image inside; CROP fills the box and crops


@dataclass
class DecodedThumbnail:
    image: Optional[QImage]
    original_size: QSize
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.image is not None


class DecodeRefused(Exception):
    """Raised inside decoding with the reason shown on the tile."""


def undo_content_encoding(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Inflate a body the server compressed although we asked for identity, never past max_bytes."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise DecodeRefused(f"unsupported content encoding '{encoding}'")
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise DecodeRefused(f"corrupt {encoding} body ({exc})") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise DecodeRefused(f"too large after decompression (over {format_bytes(max_bytes)})")
    return data


def target_geometry(original: QSize, spec: ThumbnailSpec) -> Tuple[QSize, Optional[QRect]]:
    """The size to decode at and the centred crop (None for FIT), in display orientation.

    Never upscales: a small image stays as it is and the view centres it.
    """
    width, height = original.width(), original.height()
    if spec.fill_mode == CROP:
        scale = min(1.0, max(spec.width / width, spec.height / height))
    else:
        scale = min(1.0, spec.width / width, spec.height / height)
    scaled = QSize(max(1, round(width * scale)), max(1, round(height * scale)))
    if spec.fill_mode != CROP:
        return scaled, None
    crop_w, crop_h = min(spec.width, scaled.width()), min(spec.height, scaled.height())
    clip = QRect((scaled.width() - crop_w) // 2, (scaled.height() - crop_h) // 2, crop_w, crop_h)
    return scaled, clip


def decode_thumbnail(body: bytes, spec: ThumbnailSpec, limits: LoadLimits, url: str = "",
                     content_type: str = "", content_encoding: str = "") -> DecodedThumbnail:
    """Decode `body` into a thumbnail for `spec`. Never raises; thread-safe."""
    try:
        return _decode(body, spec, limits, url, content_type, content_encoding)
    except DecodeRefused as refused:
        return DecodedThumbnail(None, QSize(), str(refused))
    except Exception as unexpected:  # a decoder bug must cost one tile, not the process
        return DecodedThumbnail(None, QSize(), f"cannot decode ({type(unexpected).__name__})")


def _decode(body: bytes, spec: ThumbnailSpec, limits: LoadLimits, url: str, content_type: str,
            content_encoding: str) -> DecodedThumbnail:
    data = undo_content_encoding(body, content_encoding, limits.max_response_bytes)
    if not data:
        raise DecodeRefused("empty response (0 bytes)")
    # The reader must not outlive its buffer, nor the buffer its bytes: some TIFFs crash otherwise.
    array = QByteArray(data)
    buffer = QBuffer(array)
    buffer.open(QIODevice.ReadOnly)
    reader = QImageReader(buffer)
    try:
        return _read(reader, data, spec, limits, url, content_type)
    finally:
        del reader
        buffer.close()
        del buffer, array


def _read(reader: QImageReader, data: bytes, spec: ThumbnailSpec, limits: LoadLimits, url: str,
          content_type: str) -> DecodedThumbnail:
    reader.setDecideFormatFromContent(True)
    image_format = bytes(reader.format())
    if not image_format:
        hint = _format_hint_from_url(url)
        if hint:
            reader.setFormat(hint)
            image_format = hint if reader.canRead() else b""
    if not image_format:
        raise DecodeRefused(_not_an_image_reason(data, content_type))
    if image_format in _REFUSED_FORMATS or "svg" in content_type.lower():
        raise DecodeRefused("SVG is not shown (it can reference other files)")

    reader.setAutoTransform(True)  # EXIF orientation
    stored = reader.size()  # from the header only; nothing is allocated yet
    if not stored.isValid() or stored.isEmpty():
        raise DecodeRefused(f"not a readable {image_format.decode()} image (no size in header)")
    w, h = stored.width(), stored.height()
    if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
        raise DecodeRefused(
            f"image too large ({w}x{h}, limit {limits.max_pixels / 1e6:g} megapixels "
            f"and {limits.max_side} px a side)")

    rotated = bool(int(reader.transformation()) & int(QImageIOHandler.TransformationRotate90))
    display = stored.transposed() if rotated else stored
    scaled, clip = target_geometry(display, spec)
    if rotated:  # the reader scales and clips before it applies the orientation
        scaled = scaled.transposed()
        clip = QRect(clip.y(), clip.x(), clip.height(), clip.width()) if clip is not None else None
    if scaled != stored:
        # JPEG decodes straight at reduced size (DCT scaling); other formats decode in full and
        # Qt scales them smoothly inside read(). The pixel budget above bounds that full decode.
        reader.setScaledSize(scaled)
    if clip is not None:
        reader.setScaledClipRect(clip)
    image = reader.read()
    if image.isNull():
        raise DecodeRefused(f"cannot decode {image_format.decode()} ({reader.errorString()})")
    # The scene graph uploads these two formats without converting; do it here, once, off the
    # GUI thread.
    wanted = QImage.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else QImage.Format_RGB32
    if image.format() != wanted:
        image = image.convertToFormat(wanted)
    return DecodedThumbnail(image, display)


def _format_hint_from_url(url: str) -> bytes:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    for suffix, image_format in _FORMATS_BY_SUFFIX.items():
        if path.endswith(suffix):
            return image_format
    return b""


def _not_an_image_reason(data: bytes, content_type: str) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or "html" in content_type.lower():
        return "not an image (the server sent a web page)"
    if content_type and not content_type.lower().startswith("image/"):
        return f"not an image ({content_type.split(';')[0].strip()})"
    return "not an image"
