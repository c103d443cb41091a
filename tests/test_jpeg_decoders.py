"""JPEG thumbnails come from libjpeg-turbo (simplejpeg) and match what Qt's own decoder makes.

Qt's plugin stays the fallback for what libjpeg-turbo refuses, so both paths are checked here
against the same pixels: the orientation, the crop and the truncated-file behaviour must not
depend on which decoder did the work.
"""
import ctypes
import os
import struct

import pytest
from PyQt5.QtCore import QByteArray, QRect, QSize
from PyQt5.QtGui import QColor, QImage, QPainter

from imagegallery import jpeg_turbo
from imagegallery.decode import (CROP, FIT, SCALE_IN_READER_PIXELS, ThumbnailSpec, _apply_transformation,
                                 _as_stored, decode_thumbnail, read_jpeg_header)
from imagegallery.limits import LoadLimits

from corpus_files import CORPUS
from imaging import close_to, encode, noisy_photo_bytes


def decode_with_qt_only(monkeypatch, data, spec):
    with monkeypatch.context() as patch:
        patch.setattr(jpeg_turbo, "simplejpeg", None)
        return decode_thumbnail(data, spec, LoadLimits())


def mean_difference(first: QImage, second: QImage) -> float:
    assert first.size() == second.size()
    total = 0
    for y in range(0, first.height(), 3):
        for x in range(0, first.width(), 3):
            a, b = QColor(first.pixel(x, y)), QColor(second.pixel(x, y))
            total += abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())
    samples = len(range(0, first.height(), 3)) * len(range(0, first.width(), 3))
    return total / (3 * samples)


def _quadrants(width, height) -> QImage:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = QImage(width, height, QImage.Format_RGB32)
    painter = QPainter(image)
    for (x, y), color in zip([(0, 0), (1, 0), (0, 1), (1, 1)], ["red", "lime", "blue", "yellow"]):
        painter.fillRect(x * width // 2, y * height // 2, width // 2, height // 2, QColor(color))
    painter.end()
    return image


def quadrants_jpeg(width=800, height=600, orientation=0, xmp_first=False) -> bytes:
    """_quadrants as a JPEG; with an EXIF orientation tag when `orientation` is given, after an
    XMP packet with `xmp_first`."""
    jpeg = encode(_quadrants(width, height), "JPEG", 95)
    if not orientation:
        return jpeg
    # A minimal little-endian EXIF block: one IFD entry, Orientation (0x0112), SHORT, count 1.
    tiff = b"II*\0" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack("<I", 0)
    segments = [b"Exif\0\0" + tiff]
    if xmp_first:
        segments.insert(0, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    app1s = b"".join(b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 for app1 in segments)
    return jpeg[:2] + app1s + jpeg[2:]


def test_a_photo_is_decoded_by_libjpeg_turbo_with_qts_pixels(turbo, monkeypatch):
    data = noisy_photo_bytes(seed=5)
    spec = ThumbnailSpec(240, 140, FIT)
    fast = decode_thumbnail(QByteArray(data), spec, LoadLimits())  # as the Qt transport hands it
    assert fast.ok, fast.error
    assert (turbo.decodes, turbo.refusals) == (1, 0)
    reference = decode_with_qt_only(monkeypatch, data, spec)
    assert reference.ok, reference.error
    assert fast.image.size() == reference.image.size() == QSize(187, 140)
    assert fast.image.format() == QImage.Format_RGB32
    assert mean_difference(fast.image, reference.image) < 2.0
    assert fast.original_size == reference.original_size


def body_address(body: QByteArray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(memoryview(body)))


def test_the_body_is_read_in_place_not_copied(turbo):
    # PyQt5 hands out a buffer of a QByteArray through its non-const data(): were the body shared
    # with a second QByteArray at that moment, it would detach, a hidden copy of every body.
    body = QByteArray(noisy_photo_bytes(seed=6))
    before = body_address(body)
    shown = decode_thumbnail(body, ThumbnailSpec(240, 140), LoadLimits())
    assert shown.ok and turbo.decodes == 1
    assert body_address(body) == before


@pytest.mark.parametrize("orientation, upright, corners", [
    # Where the stored top-left (red), top-right (lime) and bottom-left (blue) end up.
    (6, QSize(600, 800), {"top-right": "red", "bottom-right": "lime", "top-left": "blue"}),  # 90
    (3, QSize(800, 600), {"bottom-right": "red", "bottom-left": "lime", "top-right": "blue"}),
    (5, QSize(600, 800), {"top-left": "red", "bottom-left": "lime", "top-right": "blue"}),
])
@pytest.mark.parametrize("fill_mode", [FIT, CROP])
# Qt's plugin missed the EXIF segment after an XMP one: the picture came out unturned.
@pytest.mark.parametrize("xmp_first", [False, True], ids=["exif", "xmp then exif"])
def test_exif_orientation_and_crop_come_out_the_same_from_both_decoders(
        turbo, monkeypatch, orientation, upright, corners, fill_mode, xmp_first):
    data = quadrants_jpeg(800, 600, orientation=orientation, xmp_first=xmp_first)
    spec = ThumbnailSpec(200, 120, fill_mode)
    fast = decode_thumbnail(data, spec, LoadLimits())
    reference = decode_with_qt_only(monkeypatch, data, spec)
    assert fast.ok and reference.ok, (fast.error, reference.error)
    assert turbo.decodes == 1 and turbo.refusals == 0
    # FIT keeps the whole upright picture inside 200x120; CROP fills the box.
    if fill_mode == CROP:
        expected = QSize(200, 120)
    else:
        expected = QSize(90, 120) if upright.height() > upright.width() else QSize(160, 120)
    assert fast.image.size() == reference.image.size() == expected
    assert fast.original_size == reference.original_size == upright
    assert mean_difference(fast.image, reference.image) < 2.0
    if fill_mode == FIT:  # a crop cuts the corners' quadrants but not their colours
        image = fast.image
        points = {"top-left": (3, 3), "top-right": (image.width() - 4, 3),
                  "bottom-left": (3, image.height() - 4),
                  "bottom-right": (image.width() - 4, image.height() - 4)}
        for corner, color in corners.items():
            assert close_to(QColor(image.pixel(*points[corner])), color, 40), (corner, color)


@pytest.mark.qt_log_ignore("Corrupt JPEG data")  # Qt's plugin says what it skipped
def test_a_truncated_jpeg_is_left_to_qt_which_shows_what_arrived(turbo, monkeypatch):
    whole = quadrants_jpeg(1200, 900)
    cut = whole[: len(whole) * 2 // 3]
    spec = ThumbnailSpec(240, 180, FIT)
    shown = decode_thumbnail(cut, spec, LoadLimits())
    assert turbo.refusals == 1  # libjpeg-turbo, strict, refused the cut file...
    assert shown.ok, shown.error  # ...and Qt decoded what arrived, as a browser would
    assert shown.image.size() == QSize(240, 180)
    assert close_to(QColor(shown.image.pixel(10, 10)), "red", 30)
    assert close_to(QColor(shown.image.pixel(230, 10)), "lime", 30)
    reference = decode_with_qt_only(monkeypatch, cut, spec)
    assert mean_difference(shown.image, reference.image) < 2.0


def test_without_simplejpeg_qt_decodes_jpeg(monkeypatch):
    shown = decode_with_qt_only(monkeypatch, quadrants_jpeg(orientation=6), ThumbnailSpec(200, 120))
    assert shown.ok, shown.error
    assert shown.image.size() == QSize(90, 120)
    assert close_to(QColor(shown.image.pixel(86, 3)), "red", 40)


def jpegs_to_compare():
    """Generated JPEGs (colour, grey, with EXIF before the frame header, with fill bytes), and
    every JPEG of the shared corpus when it is there."""
    grey = QImage(64, 48, QImage.Format_Grayscale8)
    grey.fill(128)
    with_fill_bytes = quadrants_jpeg(320, 240)
    with_fill_bytes = with_fill_bytes[:2] + b"\xff\xff" + with_fill_bytes[2:]
    found = {"colour": quadrants_jpeg(1600, 1200), "grey": encode(grey, "JPEG", 90),
             "exif": quadrants_jpeg(400, 300, orientation=6), "fill bytes": with_fill_bytes}
    if os.path.isdir(CORPUS):
        for folder, _, names in os.walk(CORPUS):
            for name in names:
                with open(os.path.join(folder, name), "rb") as handle:
                    data = handle.read()
                if data[:3] == b"\xff\xd8\xff":
                    found[name] = data
    return found


def test_the_header_walk_reads_the_frame_header_libjpeg_turbo_reads():
    channels = {"Gray": 1, "YCbCr": 3, "RGB": 3, "CMYK": 4, "YCCK": 4}
    compared = 0
    for name, data in jpegs_to_compare().items():
        try:
            height, width, colorspace, _ = jpeg_turbo.simplejpeg.decode_jpeg_header(data)
        except ValueError:
            continue  # libjpeg-turbo refuses the header: the file goes to Qt either way
        header = read_jpeg_header(data)
        assert (header.stored.width(), header.stored.height()) == (width, height), name
        assert header.components == channels[colorspace], name
        compared += 1
    assert compared >= 4
    assert read_jpeg_header(quadrants_jpeg(400, 300, orientation=6)).transformation == 4


@pytest.mark.parametrize("width,height", [(1200, 800), (3000, 2000)], ids=["small", "large"])
def test_png_thumbnails_are_the_same_scaled_in_python_or_in_the_reader(width, height):
    # Above SCALE_IN_READER_PIXELS (4 MP) a PNG is scaled inside QImageReader.read(), off the
    # GIL; below, in two steps in Python. Both give the same box and the same picture.
    assert (width * height > SCALE_IN_READER_PIXELS) == (width == 3000)
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor("#0000ff"))
    painter = QPainter(image)
    painter.fillRect(0, 0, width // 2, height, QColor("#ff0000"))  # left half red
    painter.end()
    body = encode(image, "PNG")
    fitted = decode_thumbnail(body, ThumbnailSpec(240, 140, FIT), LoadLimits())
    cropped = decode_thumbnail(body, ThumbnailSpec(100, 100, CROP), LoadLimits())
    assert fitted.ok and cropped.ok
    assert (fitted.image.width(), fitted.image.height()) == (210, 140)  # 3:2 inside 240x140
    assert (cropped.image.width(), cropped.image.height()) == (100, 100)  # the centre square
    assert fitted.original_size.width() == width
    for thumbnail in (fitted.image, cropped.image):
        assert close_to(QColor(thumbnail.pixel(5, thumbnail.height() // 2)), "#ff0000")
        right = QColor(thumbnail.pixel(thumbnail.width() - 5, thumbnail.height() // 2))
        assert close_to(right, "#0000ff")
        assert thumbnail.format() == QImage.Format_RGB32


def test_a_gif_is_judged_by_its_screen_not_its_first_frame():
    # 35 bytes: a 1x1 frame on a 12,000 x 12,000 logical screen. Qt reports the frame's size
    # and paints it on a screen-sized canvas: 576 MB, for a 1x1 thumbnail.
    def gif(screen_width, screen_height):
        return (b"GIF89a" + struct.pack("<HH", screen_width, screen_height) + b"\x80\x00\x00"
                + b"\x00\x00\x00\xff\xff\xff" + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1)
                + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b")

    refused = decode_thumbnail(gif(12000, 12000), ThumbnailSpec(240, 140), LoadLimits())
    assert refused.error == "image too large (12000x12000, limit 100 megapixels and 32768 px a side)"
    # Within the budget it is scaled as the picture Qt paints: the whole screen, not the frame.
    shown = decode_thumbnail(gif(400, 200), ThumbnailSpec(240, 140), LoadLimits())
    assert shown.ok and (shown.image.width(), shown.image.height()) == (240, 120)


@pytest.mark.parametrize("transformation", range(8))
def test_a_crop_is_taken_back_to_the_stored_orientation_pixel_for_pixel(transformation):
    # Swapping the crop's axes alone put an odd margin's extra pixel on the wrong side after a
    # mirroring turn (EXIF 6 and 7): a thumbnail one pixel off centre.
    stored = QImage(7, 5, QImage.Format_RGB32)
    for y in range(5):
        for x in range(7):
            stored.setPixel(x, y, 0xff000000 | x << 8 | y)
    display = _apply_transformation(stored, transformation)
    for clip in (QRect(1, 0, 4, display.height()), QRect(0, 1, display.width(), 2),
                 QRect(2, 1, 1, 3), QRect(0, 0, display.width(), display.height())):
        size, stored_clip = _as_stored(display.size(), clip, transformation)
        assert size == stored.size()
        assert _apply_transformation(stored.copy(stored_clip), transformation) == display.copy(clip)


@pytest.mark.parametrize("before_the_image, upright", [(True, True), (False, False)])
def test_a_pngs_exif_orientation_before_its_image_data_turns_it(before_the_image, upright):
    # Qt 5.15 ignores the eXIf chunk; browsers honour one before IDAT, and only there.
    from imaging import png_chunk

    plain = encode(_quadrants(200, 100), "PNG")
    tiff = b"MM\0*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    exif = png_chunk(b"eXIf", tiff + struct.pack(">I", 0))
    after_header = 8 + 25  # the signature, then IHDR
    where = after_header if before_the_image else len(plain) - 12  # before IEND
    shown = decode_thumbnail(plain[:where] + exif + plain[where:], ThumbnailSpec(200, 200, FIT),
                             LoadLimits())
    assert shown.ok, shown.error
    if upright:  # EXIF 6: the stored top-left (red) ends up top-right
        assert (shown.image.width(), shown.image.height()) == (100, 200)
        assert close_to(QColor(shown.image.pixel(96, 3)), "red", 40)
    else:
        assert (shown.image.width(), shown.image.height()) == (200, 100)
        assert close_to(QColor(shown.image.pixel(3, 3)), "red", 40)
