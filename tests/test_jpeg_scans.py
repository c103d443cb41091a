"""A progressive JPEG decoded at 1/8 scale from only the scans that scale reads.

The cut-down file must give exactly the pixels of the whole file, be what the decoder is handed
when it applies, and be refused (the whole file decoded) whenever it does not: a baseline file,
a larger scale, restart intervals, a truncated file, a hostile one.
"""
import functools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QSize
from PyQt5.QtGui import QImage, QImageWriter

from imagegallery import jpeg_scans
from imagegallery.decode import CROP, FIT, ThumbnailSpec, read_jpeg_header, decode_thumbnail
from imagegallery.limits import LoadLimits

from corpus_files import CORPUS, corpus_bytes
from decoder_chatter import DECODER_CHATTER
from imaging import noisy_photo_bytes


def progressive(data: bytes, grayscale: bool = False, quality: int = 85) -> bytes:
    """`data` re-encoded as a progressive JPEG by Qt's writer (libjpeg's standard scan script:
    DC first with successive approximation, then AC bands per component)."""
    image = QImage.fromData(data)
    if grayscale:
        image = image.convertToFormat(QImage.Format_Grayscale8)
    out = QByteArray()
    buffer = QBuffer(out)
    buffer.open(QIODevice.WriteOnly)
    writer = QImageWriter(buffer, b"jpeg")
    writer.setQuality(quality)
    writer.setProgressiveScanWrite(True)
    assert writer.write(image), writer.errorString()
    buffer.close()
    return bytes(out)


def cut(data: bytes):
    return jpeg_scans.JpegScans(data, LoadLimits().max_jpeg_scans).for_eighth_scale()


def whole_file_thumbnail(monkeypatch, data, spec):
    with monkeypatch.context() as patch:
        patch.setattr(jpeg_scans.JpegScans, "for_eighth_scale", lambda scans: None)
        return decode_thumbnail(data, spec, LoadLimits())


@pytest.mark.parametrize("grayscale", [False, True], ids=["colour-4:2:0", "grayscale"])
@pytest.mark.parametrize("spec", [ThumbnailSpec(240, 140, FIT), ThumbnailSpec(100, 100, CROP)],
                         ids=["fit", "crop"])
def test_a_progressive_photo_decodes_from_its_dc_scans_to_the_same_pixels(
        turbo, monkeypatch, grayscale, spec):
    data = progressive(noisy_photo_bytes(seed=11), grayscale)
    thumbnail = decode_thumbnail(QByteArray(data), spec, LoadLimits())
    assert thumbnail.ok, thumbnail.error
    # The decoder was handed the cut-down file, a fraction of the whole.
    assert len(turbo.sizes) == 1 and turbo.sizes[0] < len(data) / 2
    reference = whole_file_thumbnail(monkeypatch, data, spec)
    assert reference.ok, reference.error
    assert turbo.sizes[-1] == len(data)  # the reference decoded everything
    assert thumbnail.image.size() == reference.image.size()
    assert thumbnail.image == reference.image  # every pixel
    assert thumbnail.original_size == reference.original_size == QSize(1600, 1200)


def corpus_progressive_jpegs():
    if not os.path.isdir(CORPUS):
        return []
    found = []
    for folder, _, names in sorted(os.walk(CORPUS)):
        for name in sorted(names):
            path = os.path.relpath(os.path.join(folder, name), CORPUS)
            data = corpus_bytes(path)
            if data[:3] == b"\xff\xd8\xff" and cut(data) is not None:
                found.append(path)
    return found


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason=f"the shared corpus is not at {CORPUS}")
def test_every_progressive_jpeg_of_the_corpus_gives_the_same_pixels_cut_down(turbo, monkeypatch):
    paths = corpus_progressive_jpegs()
    assert len(paths) >= 3, paths  # an ICC-profiled photo and two EXIF-oriented files
    for path in paths:
        data = corpus_bytes(path)
        size = read_jpeg_header(data).stored
        # The largest thumbnail that is still decoded at 1/8 scale.
        spec = ThumbnailSpec(-(-size.width() // 8), -(-size.height() // 8))
        decodes = len(turbo.sizes)
        thumbnail = decode_thumbnail(data, spec, LoadLimits())
        assert thumbnail.ok, (path, thumbnail.error)
        assert turbo.sizes[decodes] < len(data), path  # it was cut
        reference = whole_file_thumbnail(monkeypatch, data, spec)
        assert thumbnail.image == reference.image, path


def test_a_thumbnail_needing_more_than_an_eighth_decodes_the_whole_file(turbo):
    data = progressive(noisy_photo_bytes(seed=12))
    # 1600x1200 into 480x280 is 373x280: libjpeg decodes at 1/4, which reads the AC scans.
    thumbnail = decode_thumbnail(data, ThumbnailSpec(480, 280), LoadLimits())
    assert thumbnail.ok and thumbnail.image.size() == QSize(373, 280)
    assert turbo.sizes == [len(data)]


def test_a_baseline_jpeg_is_not_cut():
    assert cut(noisy_photo_bytes(seed=13)) is None


def test_restart_intervals_and_truncation_leave_the_file_whole():
    data = progressive(noisy_photo_bytes(seed=14))
    assert cut(data) is not None
    # A DRI segment (restart every 4 MCUs) right after SOI.
    with_restarts = data[:2] + b"\xff\xdd\x00\x04\x00\x04" + data[2:]
    assert cut(with_restarts) is None
    assert cut(data[:len(data) // 2]) is None  # no end of image


def with_last_scan_repeated(data: bytes, times: int) -> bytes:
    last_scan = data.rindex(b"\xff\xda")
    return data[:-2] + data[last_scan:-2] * times + b"\xff\xd9"


@pytest.mark.qt_log_ignore(*DECODER_CHATTER)
def test_a_progressive_jpeg_of_too_many_scans_is_refused_before_decoding(turbo):
    data = progressive(noisy_photo_bytes(seed=17, width=320, height=240))
    scans = jpeg_scans.JpegScans(data, 500).scans
    bomb = with_last_scan_repeated(data, 501 - scans)  # one scan over the limit
    assert jpeg_scans.JpegScans(bomb, 500).scans == 501
    refused = decode_thumbnail(bomb, ThumbnailSpec(40, 30), LoadLimits())
    assert not refused.ok
    assert refused.error == "progressive JPEG with over 500 scans (each is a pass over the whole image)"
    assert turbo.sizes == []  # neither libjpeg-turbo nor Qt was given it
    # At the limit, or with the limit raised, it is decoded (repeated scans are a warning, so
    # libjpeg-turbo refuses it and Qt's reader shows it).
    at_limit = with_last_scan_repeated(data, 500 - scans)
    assert decode_thumbnail(at_limit, ThumbnailSpec(40, 30), LoadLimits()).ok
    assert decode_thumbnail(bomb, ThumbnailSpec(40, 30), LoadLimits(max_jpeg_scans=600)).ok


def with_frame_size(data: bytes, width: int, height: int) -> bytes:
    """`data` with its frame header claiming `width` x `height` (what is checked before decoding)."""
    frame = data.index(b"\xff\xc2")
    return (data[:frame + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big")
            + data[frame + 9:])


@pytest.mark.qt_log_ignore(*DECODER_CHATTER)
def test_a_larger_progressive_jpeg_is_allowed_fewer_scans(turbo):
    # A scan costs a pass over every block, however few its bytes: 499 scans of a 10000x10000
    # frame, with restart intervals so the 1/8 cut did not apply, held a decoder for 5 s.
    data = progressive(noisy_photo_bytes(seed=17, width=320, height=240))
    scans = jpeg_scans.JpegScans(data, 500).scans
    hundred_scans = with_last_scan_repeated(data, 100 - scans)
    assert decode_thumbnail(hundred_scans, ThumbnailSpec(40, 30), LoadLimits()).ok
    assert turbo.sizes
    turbo.sizes.clear()
    huge = with_frame_size(hundred_scans, 10000, 10000)  # 2,000 scan-megapixels allow 20: 64
    refused = decode_thumbnail(huge, ThumbnailSpec(40, 30), LoadLimits())
    assert refused.error == "progressive JPEG with over 64 scans (each is a pass over the whole image)"
    assert turbo.sizes == []
    # 4000x3000 allows 166 scans: a 100-scan file is decoded.
    assert decode_thumbnail(with_frame_size(hundred_scans, 4000, 3000), ThumbnailSpec(40, 30),
                            LoadLimits()).ok


# `cjpeg -arithmetic -scans` of a 10000x10000 grey image: 242 bytes, three sequential scans (SOF9).
ARITHMETIC_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb00"
    "43010909090c0b0c180d0d1832211c21323232323232323232323232323232323232323232323232323232323232"
    "3232323232323232323232323232323232323232ffc90011082710271003012200021101031101ffcc0006001010"
    "05ffda0008010100003f001eb780ffcc000601101105ffda0008010211003f001eb780ffcc000601101105ffda00"
    "08010311003f001eb780ffd9")


def arithmetic_bomb(repeats: int) -> bytes:
    """ARITHMETIC_JPEG with its luma scan `repeats` times more: 21 bytes a full pass."""
    first = ARITHMETIC_JPEG.index(b"\xff\xcc")
    second = ARITHMETIC_JPEG.index(b"\xff\xcc", first + 2)
    return ARITHMETIC_JPEG[:second] + ARITHMETIC_JPEG[first:second] * repeats + ARITHMETIC_JPEG[second:]


def test_an_arithmetic_coded_jpeg_is_refused_before_decoding(turbo):
    # Its luma scan repeated 300 times is 6.5 KB, and each repeat a pass over 1.56 M blocks:
    # libjpeg-turbo took 8.6-10.7 s over it, with no way to stop it.
    for data in (ARITHMETIC_JPEG, arithmetic_bomb(300)):
        refused = decode_thumbnail(data, ThumbnailSpec(240, 140), LoadLimits())
        assert refused.error == "arithmetic-coded JPEG is not shown (no browser decodes it either)"
    assert turbo.sizes == []


def _with_stray_byte(data: bytes, where: str) -> bytes:
    if where == "after the start of image":
        at = 2
    elif where == "after the JFIF header":
        assert data[2:4] == b"\xff\xe0"
        at = 4 + int.from_bytes(data[4:6], "big")
    else:  # after a Huffman table between two scans
        table = data.index(b"\xff\xc4", data.index(b"\xff\xda"))
        at = table + 2 + int.from_bytes(data[table + 2:table + 4], "big")
    return data[:at] + b"\x00" + data[at:]


@pytest.mark.qt_log_ignore(*DECODER_CHATTER)
@pytest.mark.parametrize("where", ["after the start of image", "after the JFIF header",
                                   "after a Huffman table between two scans"])
def test_a_stray_byte_does_not_hide_a_jpegs_scans_from_the_limit(turbo, where):
    # libjpeg skips a byte that is not a marker, with a warning, and decodes on. The walks
    # stopped there, counted too few scans, and Qt's reader decoded every one: a 97 KB file of
    # 1,010 scans held a decoder for 11.7 s.
    data = progressive(noisy_photo_bytes(seed=17, width=320, height=240))
    scans = jpeg_scans.JpegScans(data, 500).scans
    bomb = _with_stray_byte(with_last_scan_repeated(data, 501 - scans), where)
    refused = decode_thumbnail(bomb, ThumbnailSpec(40, 30), LoadLimits())
    assert refused.error == "progressive JPEG with over 500 scans (each is a pass over the whole image)"
    assert turbo.sizes == []
    # The same byte in a file within the limit does not stop it from showing.
    if where != "after the start of image":  # (that one is no JPEG to the sniffer: the sandbox's)
        assert decode_thumbnail(_with_stray_byte(data, where), ThumbnailSpec(40, 30),
                                LoadLimits()).ok


@pytest.mark.qt_log_ignore(*DECODER_CHATTER)
def test_a_stray_byte_does_not_hide_a_frames_size_or_coding(turbo):
    # The header walk stopped at a byte that is not a marker, which libjpeg skips: the frame's
    # size went unknown (so the scan limit was 500, not 64) and its arithmetic coding unseen
    # (a 6.5 KB bomb then held Qt's reader for 7.3 s).
    arithmetic = _with_stray_byte(arithmetic_bomb(60), "after the JFIF header")
    assert decode_thumbnail(arithmetic, ThumbnailSpec(240, 140), LoadLimits()).error \
        == "arithmetic-coded JPEG is not shown (no browser decodes it either)"
    data = progressive(noisy_photo_bytes(seed=17, width=320, height=240))
    scans = jpeg_scans.JpegScans(data, 500).scans
    huge = with_frame_size(with_last_scan_repeated(data, 100 - scans), 10000, 10000)
    refused = decode_thumbnail(_with_stray_byte(huge, "after the JFIF header"),
                               ThumbnailSpec(40, 30), LoadLimits())
    assert refused.error == "progressive JPEG with over 64 scans (each is a pass over the whole image)"
    assert turbo.sizes == []


def test_many_segments_before_the_frame_do_not_hide_its_size_or_coding(turbo):
    # The header walk stopped after 128 segments, so 130 empty comments hid an arithmetic-coded
    # frame: Qt's reader then decoded that 2 KB bomb for 2 s, and a dozen held both decoders.
    from imagegallery.decode import MAX_JPEG_SEGMENTS

    empty_comments = b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 2)
    bomb = arithmetic_bomb(60)
    refused = decode_thumbnail(bomb[:2] + empty_comments + bomb[2:], ThumbnailSpec(240, 140),
                               LoadLimits())
    assert refused.error == f"JPEG with over {MAX_JPEG_SEGMENTS} segments before its image"
    assert turbo.sizes == []
    # A photo with many (but fewer) segments before its frame still shows.
    photo = noisy_photo_bytes(seed=17, width=320, height=240)
    assert decode_thumbnail(photo[:2] + b"\xff\xfe\x00\x02" * 130 + photo[2:],
                            ThumbnailSpec(40, 30), LoadLimits()).ok


@pytest.mark.qt_log_ignore("Corrupt JPEG data")  # Qt's plugin says what it skipped
def test_a_truncated_progressive_jpeg_still_shows_what_arrived(turbo):
    data = progressive(noisy_photo_bytes(seed=15))
    thumbnail = decode_thumbnail(data[:len(data) * 2 // 3], ThumbnailSpec(240, 140), LoadLimits())
    # As for a truncated baseline file: libjpeg-turbo refuses it, Qt's reader shows the scans
    # that arrived.
    assert thumbnail.ok, thumbnail.error
    assert thumbnail.image.size() == QSize(187, 140)


@functools.lru_cache(maxsize=1)
def small_progressive() -> bytes:
    return progressive(noisy_photo_bytes(seed=16, width=320, height=240))


@st.composite
def mutated_progressive(draw):
    data = bytearray(small_progressive())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "truncate", "overwrite", "delete"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "overwrite":
            data[position:position + 4] = draw(st.binary(min_size=4, max_size=4))
        else:
            del data[position:position + draw(st.integers(1, 64))]
        if not data:
            break
    return bytes(data)


@pytest.mark.qt_log_ignore(*DECODER_CHATTER)
@settings(max_examples=150, deadline=2000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_progressive())
def test_a_damaged_progressive_jpeg_gets_an_image_or_a_reason(data):
    smaller = cut(data)  # never raises
    assert smaller is None or (smaller.startswith(b"\xff\xd8") and smaller.endswith(b"\xff\xd9"))
    # 320x240 into 40x30 is the 1/8 scale, so every example goes through the cut.
    thumbnail = decode_thumbnail(data, ThumbnailSpec(40, 30), LoadLimits())
    assert thumbnail.ok or thumbnail.error


def test_fill_bytes_before_a_marker_are_skipped_as_one(turbo):
    # Legal before any marker; the walk spent a step of its budget on each, and 600 of them
    # had a good photo refused as "JPEG with over 512 segments" (a review's file).
    photo = noisy_photo_bytes(seed=17, width=320, height=240)
    assert photo[2] == 0xFF
    padded = photo[:2] + b"\xff" * 600 + photo[2:]
    assert decode_thumbnail(padded, ThumbnailSpec(40, 30), LoadLimits()).ok
