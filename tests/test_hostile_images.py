"""Image files valid to the letter of their format, made to cost a decoder far more than their
bytes: each costs its own tile, with a reason, and not the process, its memory or the GUI
thread (which waits for the GIL a decoder holds inside Qt's calls)."""
import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest
from PyQt5.QtGui import QColor

from imagegallery.decode import (FIT, LOSSLESS_JPEG_REFUSED, SVG_REFUSED, ThumbnailSpec,
                                 decode_thumbnail,
                                 first_gif_frame)
from imagegallery.limits import LoadLimits
from imagegallery.model import ImageGalleryModel
from imaging import center_color, close_to, encode, solid_image_bytes

Status = ImageGalleryModel.Status
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEGABYTE = 1024 * 1024


def segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def frame_jpeg(width: int, height: int, components: int, scans: bytes, frame_marker=0xC0,
               precision=8) -> bytes:
    """A JPEG of one frame (1x1 sampling, one-code Huffman tables) and the given scan bytes."""
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"
    return (b"\xff\xd8" + segment(0xDB, b"\x00" + b"\x01" * 64)
            + segment(frame_marker, struct.pack(">BHHB", precision, height, width, components)
                      + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)))
            + segment(0xC4, b"\x00" + one_code) + segment(0xC4, b"\x10" + one_code)
            + scans + b"\xff\xd9")


def lossless_jpeg(width: int, height: int) -> bytes:
    """A valid lossless (SOF3) JPEG: every difference coded as the one 1-bit code, 0."""
    scan = segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x01\x00\x00")
    return frame_jpeg(width, height, 3, scan + b"\x00" * ((width * height * 3 + 7) // 8), 0xC3)


def jpeg_with_profile(profile: bytes) -> bytes:
    """A small JPEG carrying `profile` in APP2 ICC_PROFILE pieces, as encoders split one."""
    piece_bytes = 65533 - 14
    pieces = [profile[i:i + piece_bytes] for i in range(0, len(profile), piece_bytes)]
    app2 = b"".join(segment(0xE2, b"ICC_PROFILE\0" + bytes([number + 1, len(pieces)]) + piece)
                    for number, piece in enumerate(pieces))
    image = solid_image_bytes("#808080", 16, 16, "JPEG")
    return image[:2] + app2 + image[2:]


def restart_marker_ahead(real: bytes) -> bytes:
    """`real` behind a restart marker and a 64 KB APP0 holding a fake 16x16 frame: libjpeg reads
    RSTn with no length and skips the APP0 whole; a walk that reads a length after RSTn lands
    on the fake frame."""
    fake = (segment(0xC0, struct.pack(">BHHB", 8, 16, 16, 1) + b"\x01\x11\x00")
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    payload = bytearray(65533)
    payload[65500:65500 + len(fake)] = fake
    return b"\xff\xd8\xff\xd0\xff\xe0" + struct.pack(">H", 65535) + bytes(payload) + real[2:]


def component_one_alone(scans: int, entropy: bytes = b"") -> bytes:
    """`scans` sequential scans of component 1 alone (non-interleaved)."""
    return (segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + entropy) * scans


ONE_PIXEL_VP8L = b'VP8L\x0f\x00\x00\x00/\x00\x00\x00\x00\x07\xd0\xff\x88\xfe\x07"\xa2\xff\x01\x00'


def riff_chunk(name: bytes, data: bytes) -> bytes:
    return name + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


def u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def webp(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def animated_webp(canvas_width: int, canvas_height: int) -> bytes:
    """A 92-byte animated WebP: a canvas of the given size, one 1x1 lossless frame."""
    return webp(riff_chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + u24(canvas_width - 1)
                           + u24(canvas_height - 1)),
                riff_chunk(b"ANIM", struct.pack("<IH", 0, 0)),
                riff_chunk(b"ANMF", u24(0) * 4 + u24(100) + b"\0" + ONE_PIXEL_VP8L))


def webp_with_profile(profile: bytes) -> bytes:
    """A 1x1 still WebP carrying `profile` as its colour profile."""
    return webp(riff_chunk(b"VP8X", bytes([0x20, 0, 0, 0]) + u24(0) + u24(0)),
                riff_chunk(b"ICCP", profile), ONE_PIXEL_VP8L)


def gif_of_frames(frames: int, comment: bytes = b"") -> bytes:
    """A 1x1 GIF: a black first frame (after an optional comment), then `frames` more, each the
    smallest a frame can be (12 bytes)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    extension = b"\x21\xfe" + bytes([len(comment)]) + comment + b"\0" if comment else b""
    return (header + extension + descriptor + b"\x02\x02\x44\x01\x00"
            + (descriptor + b"\x02\x00") * frames + b"\x3b")


# Decodes one file in a fresh process and reports the tile's reason and how far the peak RSS
# rose: the suite's own process has had larger peaks, which would hide this one's.
PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    from PyQt5.QtGui import QGuiApplication
    from imagegallery.decode import FIT, ThumbnailSpec, decode_thumbnail
    from imagegallery.limits import LoadLimits

    def peak():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    import imagegallery.decode as decode

    sandboxed = []
    in_sandbox = decode._decode_in_sandbox
    decode._decode_in_sandbox = lambda *args: sandboxed.append(1) or in_sandbox(*args)
    app = QGuiApplication(sys.argv[:1])
    data = open(sys.argv[1], "rb").read()
    spec = ThumbnailSpec(240, 140, FIT)
    decode_thumbnail(open(sys.argv[2], "rb").read(), spec, LoadLimits())  # loads the decoders
    before = peak()
    result = decode_thumbnail(data, spec, LoadLimits())
    print(json.dumps({"error": result.error, "rise": peak() - before, "sandboxed": len(sandboxed)}))
""")


def decoded_in_a_fresh_process(tmp_path, data: bytes) -> dict:
    script, image, warm = tmp_path / "peak.py", tmp_path / "image", tmp_path / "warm.jpg"
    script.write_text(PEAK_SCRIPT)
    image.write_bytes(data)
    warm.write_bytes(solid_image_bytes("#808080", fmt="JPEG"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "backend"),
                                           os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, str(script), str(image), str(warm)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def load(qtbot, model, urls, timeout=20000):
    with qtbot.waitSignal(model.finished, timeout=timeout):
        model.urls = urls
    return [model.get(row) for row in range(len(urls))]


def test_a_lossless_jpeg_is_refused_with_a_reason_and_the_rest_loads(qtbot, model, image_server):
    # libjpeg-turbo decodes a lossless frame at full size whatever scale it is asked for, into
    # the buffer simplejpeg made for the thumbnail: a 34 KB file crashed the process.
    urls = [image_server.add("/lossless.jpg", lossless_jpeg(300, 300), "image/jpeg"),
            image_server.add("/good.jpg", solid_image_bytes("#ff0000", fmt="JPEG"), "image/jpeg")]
    lossless, good = load(qtbot, model, urls)
    assert (lossless["status"], lossless["errorString"]) == (Status.Error, LOSSLESS_JPEG_REFUSED)
    assert lossless["retryable"] is False  # this client's rule: the same answer every time
    assert good["status"] == Status.Ready
    assert close_to(center_color(model.thumbnail(1)), "#ff0000", 24)


def test_a_sequential_jpeg_coding_a_component_again_and_again_is_refused(qtbot, model,
                                                                         image_server):
    # Each 10-byte scan is a pass over every block of a 10000x10000 frame: two files of 5,000
    # held both decoders, and every tile behind them, for over a minute.
    scans = frame_jpeg(10000, 10000, 3, component_one_alone(5000))
    urls = [image_server.add(f"/scans-{n}.jpg", scans, "image/jpeg") for n in range(2)]
    urls.append(image_server.add("/good.png", solid_image_bytes("#00ff00")))
    *refused, good = load(qtbot, model, urls)
    for row in refused:
        assert row["status"] == Status.Error
        assert row["errorString"] == ("JPEG with more scans than its 3 components (each is a "
                                      "pass over the whole image)")
        assert row["retryable"] is False
    assert good["status"] == Status.Ready


def test_a_non_interleaved_sequential_jpeg_is_not_taken_for_one_with_extra_scans():
    # One scan a component is what a non-interleaved encoder writes; the count stops at the
    # frame's end, so an image appended after it (a phone's multi-picture file) is not counted.
    from imagegallery.decode import read_jpeg_header, sequential_scans

    three = frame_jpeg(64, 64, 3, b"".join(
        segment(0xDA, bytes([1, component, 0, 0, 0x3F, 0])) for component in (1, 2, 3)))
    appended = three + solid_image_bytes("#0000ff", fmt="JPEG")
    for data in (three, appended, bytearray(appended)):
        header = read_jpeg_header(bytes(data))
        assert sequential_scans(bytes(data), header, header.components) == 3


def test_a_jpeg_frame_with_several_scans_is_decoded_out_of_process(tmp_path):
    # Its first scan holds one component of three, so libjpeg keeps every coefficient of the
    # 10000x10000 frame (600 MB) whatever the scale: 210 bytes raised the peak RSS by 650 MB,
    # in each decode thread at once.
    data = frame_jpeg(10000, 10000, 3, component_one_alone(1, b"\x00" * 64))
    outcome = decoded_in_a_fresh_process(tmp_path, data)
    assert outcome["rise"] < 100 * MEGABYTE and outcome["sandboxed"] == 1, outcome


def test_an_animated_webps_canvas_is_judged_before_qt_paints_it(tmp_path):
    # Qt's WebP plugin paints an animation's whole canvas when asked the size, before any limit
    # was checked, with the GIL held: 92 bytes took 4 GB and froze the GUI for 4.7 s.
    huge = decoded_in_a_fresh_process(tmp_path, animated_webp(65536, 16384))
    assert huge["error"].startswith("image too large (65536x16384"), huge
    assert huge["rise"] < 100 * MEGABYTE and huge["sandboxed"] == 0, huge
    # Inside the pixel budget, its canvas is painted in the sandbox child, not here (437 MB).
    large = decoded_in_a_fresh_process(tmp_path, animated_webp(10000, 10000))
    assert large["rise"] < 100 * MEGABYTE and large["sandboxed"] == 1, large


def test_only_a_gifs_first_frame_reaches_qt():
    # Qt scans every frame when asked the size, with the GIL held: four million 1x1 frames (49 MB)
    # froze the GUI thread for 120-300 ms.
    first_alone = gif_of_frames(0, comment=b"made by hand")
    many = gif_of_frames(4_000_000, comment=b"made by hand")
    assert len(many) > 45 * MEGABYTE
    assert first_gif_frame(many) == first_alone
    assert first_gif_frame(first_alone) is first_alone  # nothing after it: not copied
    spec = ThumbnailSpec(16, 16, FIT)
    thumbnail = decode_thumbnail(many, spec, LoadLimits(max_response_bytes=64 * MEGABYTE))
    assert thumbnail.error == "" and close_to(QColor(thumbnail.image.pixel(0, 0)), "#000000")
    assert thumbnail.image == decode_thumbnail(first_alone, spec, LoadLimits()).image


@pytest.mark.parametrize("cut", [7, 20, 30])
def test_a_gif_cut_short_is_one_the_walk_finds_no_end_of(cut):
    assert first_gif_frame(gif_of_frames(3)[:cut]) is None


@pytest.mark.parametrize("trick", ["empty control block", "one-byte sub-blocks"])
def test_a_large_gif_the_walk_cannot_cut_is_decoded_out_of_process(tmp_path, trick):
    # Qt reads a chain after a control or application extension's empty first sub-block where
    # the walk saw the extension end, so it got all 49 MB (GUI gaps of 150-330 ms); a frame of
    # 1-byte sub-blocks made the walk itself a 2 s loop.
    if trick == "empty control block":
        many = gif_of_frames(4_000_000)
        data = many[:13 + 6] + b"\x21\xf9\x00\x01\x00\x00" + many[13 + 6:]
    else:
        header = gif_of_frames(0)[:13 + 6 + 10]
        data = header + b"\x02" + b"\x01\x00" * 24_000_000 + b"\x00\x3b"
    assert first_gif_frame(data) is None
    outcome = decoded_in_a_fresh_process(tmp_path, data)
    assert outcome["sandboxed"] == 1, outcome


def test_avif_is_left_to_qt_where_a_plugin_reads_it(monkeypatch):
    # With KImageFormats' plugins installed, Qt decodes AVIF: it must not be refused first.
    from imagegallery import decode

    avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + bytes(64)
    assert decode._unsupported_format_name(avif) == "AVIF"
    monkeypatch.setattr(decode, "_qt_image_formats", lambda: frozenset({b"avif", b"png"}))
    assert decode._unsupported_format_name(avif) == ""


def _tiff_bytes() -> bytes:
    from PyQt5.QtCore import QBuffer, QByteArray, QIODevice
    from PyQt5.QtGui import QImage, QImageWriter

    image = QImage(40, 30, QImage.Format_RGB32)
    image.fill(QColor("#20a040"))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    assert QImageWriter(buffer, b"tiff").write(image)
    return bytes(data)


def test_odd_files_get_the_reason_that_fits(qtbot, model, image_server):
    bmp_bomb = (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
                + struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 0, 0, 0, 0))
    urls = [
        # A PNG is a PNG whatever its name says: it was refused as SVG.
        image_server.add("/named.svg", solid_image_bytes("#0000ff"), "image/svg+xml"),
        # A byte-order mark before a web page hid that it was one.
        image_server.add("/bom.png", b"\xef\xbb\xbf<!DOCTYPE html><html></html>", "image/png"),
        # A page with an inline icon was taken for an SVG, which offers no retry.
        image_server.add("/page.jpg", b"<!DOCTYPE html><html><body><svg width='9'></svg>",
                         "text/html"),
        # 100000x100000 declared in 54 bytes: it was "truncated bmp (54 of 30000000054 bytes)".
        image_server.add("/bomb.bmp", bmp_bomb, "image/bmp"),
        # It was "cannot decode jpeg (Unable to read image data)".
        image_server.add("/twelve.jpg", frame_jpeg(64, 64, 3, component_one_alone(1), precision=12),
                         "image/jpeg"),
        # Compressed with no Content-Encoding: Qt's SVG plugin claims any gzip stream, so both
        # read "SVG is not shown", with no Retry for what the server may fix.
        image_server.add("/gzipped.png", gzip.compress(solid_image_bytes("#00ff00")), "image/png"),
        image_server.add("/drawing", gzip.compress(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
                         "application/octet-stream"),
    ]
    urls += [
        # Browsers show AVIF; this Qt has no plugin: it said "not an image", with a Retry.
        image_server.add("/photo.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + bytes(64),
                         "image/avif"),
        image_server.add("/photo.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64),
                         "image/heic"),
        # A TIFF served as a web page is a TIFF: it was refused as "not an image (a web page)".
        image_server.add("/scan", _tiff_bytes(), "text/html"),
    ]
    named_svg, bom, page, bomb, twelve, gzipped, svgz, avif, heic, tiff = load(qtbot, model, urls)
    assert (avif["errorString"], avif["retryable"]) == (
        "AVIF images are not supported (no decoder for them here)", False)
    assert heic["errorString"] == "HEIF images are not supported (no decoder for them here)"
    assert tiff["status"] == Status.Ready, tiff["errorString"]
    assert (gzipped["errorString"], gzipped["retryable"]) == ("not an image (gzip-compressed data)",
                                                              True)
    assert (svgz["errorString"], svgz["retryable"]) == (SVG_REFUSED, False)
    assert named_svg["status"] == Status.Ready
    assert bom["errorString"] == page["errorString"] == "not an image (a web page)"
    assert page["retryable"] is True
    assert bomb["errorString"].startswith("image too large (100000x100000"), bomb["errorString"]
    assert bom["retryable"] is True and bomb["retryable"] is False and twelve["retryable"] is False
    assert twelve["errorString"] == ("JPEG with 12-bit samples is not shown (no browser decodes it "
                                     "either)")


def icon_of(sizes_and_colors) -> bytes:
    """An ICO of PNG entries, in the order given."""
    from PyQt5.QtGui import QImage

    pngs = []
    for size, color in sizes_and_colors:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(QColor(color))
        pngs.append(encode(image, "PNG"))
    offset = 6 + 16 * len(pngs)
    entries = b""
    for (size, _), png in zip(sizes_and_colors, pngs):
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
    return struct.pack("<HHH", 0, 1, len(pngs)) + entries + b"".join(pngs)


@pytest.mark.parametrize("box, shown, color", [((240, 140), 140, "#ffff00"), ((40, 40), 40, "#0000ff")])
def test_an_icon_is_made_from_its_entry_that_fits_the_tile(box, shown, color):
    # Qt reads the first entry, most often the 16x16: a favicon's tile showed a 16-pixel picture.
    data = icon_of([(16, "#ff0000"), (32, "#00ff00"), (48, "#0000ff"), (256, "#ffff00")])
    thumbnail = decode_thumbnail(data, ThumbnailSpec(*box, FIT), LoadLimits(), url="favicon.ico")
    assert thumbnail.ok, thumbnail.error
    assert (thumbnail.image.width(), thumbnail.image.height()) == (shown, shown)
    assert close_to(QColor(thumbnail.image.pixel(shown // 2, shown // 2)), color)


def _icon_bitmap(side: int, bits: int) -> bytes:
    """An ICO entry as a bitmap: red and half transparent at 32 bits, grey at 4."""
    header = struct.pack("<IiiHHIIiiII", 40, side, side * 2, 1, bits, 0, 0, 0, 0, 0, 0)
    if bits == 32:
        palette, row = b"", b"\x00\x00\xff\x80" * side
    else:
        palette = b"\x00\x00\x00\x00" + b"\x80\x80\x80\x00" * 15
        row = bytes([0x11]) * ((side + 1) // 2)
        row += b"\0" * (-len(row) % 4)
    return header + palette + row * side + b"\0" * ((side + 31) // 32 * 4) * side


def test_of_two_icon_entries_the_same_size_the_one_of_more_colours_is_shown(qapp):
    # Old icons list a 16-colour entry before the 32-bit one of the same size.
    bitmaps = [(32, 4), (32, 32)]
    blobs = [_icon_bitmap(*entry) for entry in bitmaps]
    data, offset = struct.pack("<HHH", 0, 1, len(blobs)), 6 + 16 * len(blobs)
    for (side, bits), blob in zip(bitmaps, blobs):
        data += struct.pack("<BBBBHHII", side, side, 16 if bits == 4 else 0, 0, 1, bits, len(blob),
                            offset)
        offset += len(blob)
    data += b"".join(blobs)
    thumbnail = decode_thumbnail(data, ThumbnailSpec(120, 80, FIT), LoadLimits(), url="old.ico")
    assert thumbnail.ok, thumbnail.error
    color = thumbnail.image.pixelColor(5, 5)
    assert (color.red(), color.green(), color.alpha()) == (255, 0, 128), color.name(QColor.HexArgb)


def test_an_icon_entry_over_the_pixel_limit_is_passed_over_for_one_within_it():
    # Chosen for the tile first and judged by the limits after, the large entry refused the
    # icon whose first entry used to be shown.
    data = icon_of([(16, "#ff0000"), (256, "#ffff00")])
    thumbnail = decode_thumbnail(data, ThumbnailSpec(240, 140, FIT), LoadLimits(max_pixels=10_000),
                                 url="favicon.ico")
    assert thumbnail.ok, thumbnail.error
    assert (thumbnail.image.width(), thumbnail.image.height()) == (16, 16)


def webp_with_profile_after_the_image(profile: bytes) -> bytes:
    """As webp_with_profile, but the profile after the image, where libwebp still takes it."""
    return webp(riff_chunk(b"VP8X", bytes([0x20, 0, 0, 0]) + u24(0) + u24(0)), ONE_PIXEL_VP8L,
                riff_chunk(b"ICCP", profile))


def animated_webp_of_frames(frames: int) -> bytes:
    return webp(riff_chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + u24(0) + u24(0)),
                riff_chunk(b"ANIM", struct.pack("<IH", 0, 0)),
                *[riff_chunk(b"ANMF", u24(0) * 4 + u24(100) + b"\0" + ONE_PIXEL_VP8L)] * frames)


def test_a_large_animated_webp_is_decoded_out_of_process(tmp_path):
    # Qt reads every frame's header when asked the size, with the GIL held: a million 1x1
    # frames (48 MB) froze the GUI thread for 215 ms.
    outcome = decoded_in_a_fresh_process(tmp_path, animated_webp_of_frames(60_000))
    assert outcome["sandboxed"] == 1, outcome


@pytest.mark.qt_log_ignore("Failed ICC signature test")  # the small one's zeros are not a profile
def test_a_webp_whose_colour_profile_is_megabytes_is_refused(qtbot, model, image_server):
    # Qt parses a profile into a table of its tags, about 8 bytes for each byte: a 42 MB one
    # took 330 MB per decode. A thumbnail does not use it.
    urls = [image_server.add("/huge-profile.webp", webp_with_profile(b"\0" * (5 * MEGABYTE)),
                             "image/webp"),
            # libwebp takes the profile after the image too: there the limit did not look.
            image_server.add("/profile-last.webp",
                             webp_with_profile_after_the_image(b"\0" * (5 * MEGABYTE)), "image/webp"),
            # Qt joins a JPEG's profile from its APP2 pieces: 32 MB of them took 177 MB.
            image_server.add("/huge-profile.jpg", jpeg_with_profile(b"\0" * (5 * MEGABYTE)),
                             "image/jpeg"),
            image_server.add("/small-profile.webp", webp_with_profile(b"\0" * 600), "image/webp")]
    huge, last, jpeg, small = load(qtbot, model, urls)
    assert huge["errorString"] == last["errorString"] == "webp with a 5 MB colour profile (limit 4 MB)"
    assert jpeg["errorString"].startswith("JPEG with a 5 MB colour profile (limit 4 MB)")
    assert huge["retryable"] is jpeg["retryable"] is False
    assert small["status"] == Status.Ready


def test_a_restart_marker_before_the_frame_does_not_hide_it(qtbot, model, image_server):
    # Read with a length, RST0 sent the header walk to a planted 16x16 frame while libjpeg
    # decoded the real one: a lossless frame crashed the process, and every JPEG rule was
    # judged on the fake.
    urls = [image_server.add("/hidden-lossless.jpg", restart_marker_ahead(lossless_jpeg(300, 300)),
                             "image/jpeg"),
            image_server.add("/hidden-scans.jpg", restart_marker_ahead(
                frame_jpeg(4000, 4000, 3, component_one_alone(3000))), "image/jpeg"),
            image_server.add("/good.png", solid_image_bytes("#00ff00"))]
    lossless, scans, good = load(qtbot, model, urls)
    assert lossless["errorString"] == LOSSLESS_JPEG_REFUSED
    assert scans["errorString"].startswith("JPEG with more scans than its 3 components")
    assert good["status"] == Status.Ready


@pytest.mark.parametrize("walk_stopper", [b"", b"\x00", segment(0xFE, b"x") * 80],
                         ids=["walk-reaches-the-end", "stray-byte", "80-comments"])
def test_end_of_image_bytes_in_a_comment_do_not_end_the_scan_count(walk_stopper):
    # Nor where the walk stops short (a stray byte libjpeg skips, its step limit) and the count
    # falls back to a search: one that stopped at those bytes let 3,000 scans through (7.7 s).
    from imagegallery.decode import read_jpeg_header, sequential_scans

    scans = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    data = frame_jpeg(4000, 4000, 3,
                      scans + segment(0xFE, b"\xff\xd9") + walk_stopper + scans * 3000)
    assert sequential_scans(data, read_jpeg_header(data), 3) == 4


def test_a_cut_short_non_interleaved_jpeg_counts_its_own_scans_only():
    # Where the walk cannot reach the end, every start-of-scan marker in the file counted: an
    # EXIF thumbnail's scan made a cut-short three-scan file one of four, and refused.
    from imagegallery.decode import read_jpeg_header, sequential_scans

    three = frame_jpeg(64, 64, 3, b"".join(
        segment(0xDA, bytes([1, component, 0, 0, 0x3F, 0])) for component in (1, 2, 3)))
    thumbnail = solid_image_bytes("#0000ff", 16, 16, "JPEG")
    data = three[:2] + segment(0xE1, b"Exif\0\0" + thumbnail) + three[2:-2]  # no end of image
    assert sequential_scans(data, read_jpeg_header(data), 3) == 3
