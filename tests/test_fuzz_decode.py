"""Fuzzing the decode path with mutated corpus files (bit flips, truncation, splices).

decode_thumbnail must never raise and always return an image or a reason, in-process (JPEG, PNG,
GIF, WebP, BMP) and through the sandbox child (everything else). Bounded: a fixed number of
examples with a per-example deadline, so it runs in CI on every push.
"""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus_files import CORPUS, corpus_bytes
from decoder_chatter import DECODER_CHATTER
from imagegallery.decode import ThumbnailSpec, decode_thumbnail, sniff_in_process_format
from imagegallery.limits import LoadLimits


pytestmark = [
    pytest.mark.skipif(not os.path.isdir(CORPUS), reason=f"the shared corpus is not at {CORPUS}"),
    pytest.mark.qt_log_ignore(*DECODER_CHATTER, r"^QImage", r"^QIcoFile", r"^QTgaFile",
                              r"^gif", r"^Invalid", r"^Empty", r"^Unknown", r"^Not a"),
]

# Seeds for both paths; small files keep each example fast.
SEEDS = {
    "jpeg": "libjpeg-turbo/testorig.jpg",
    "jpeg-progressive": "qtbase/jpeg_exif_orientation_value_6_motorola.jpg",
    "png": "pngsuite/basi6a16.png",
    "gif": "qtbase/four-frames.gif",
    "webp": "pillow/hopper_orientation_6.webp",
    "bmp": "pillow/badrle.bmp",
    "tiff": "qtimageformats/16bpc.tiff",
    "tiff-orientation": "qtimageformats/rgb_orientation_6.tiff",
    "tga": "qtimageformats/test-flag.tga",
    "wbmp": "qtimageformats/qt-logo-small.wbmp",
    "icns": "pillow/oom-8ed3316a4109213ca96fb8a256a0bfefdece1461.icns",
}
SUFFIX = {"tiff-orientation": "tiff", "jpeg-progressive": "jpg"}
# Tight enough that a mutated header cannot make one example slow; large enough for the seeds.
LIMITS = LoadLimits(max_pixels=4_000_000, max_side=4096, decode_timeout_s=5.0,
                    max_response_bytes=4 * 1024 * 1024)
SPEC = ThumbnailSpec(96, 64)


def seed_bytes(name):
    return corpus_bytes(SEEDS[name])


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(seed_bytes(name))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "truncate", "splice", "overwrite", "grow"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "splice":
            other = seed_bytes(draw(st.sampled_from(sorted(SEEDS))))
            start = draw(st.integers(0, len(other) - 1))
            data[position:position] = other[start:start + draw(st.integers(1, 256))]
        elif operation == "overwrite":
            # Header fields (sizes, counts, offsets) are where decoders break: write extremes.
            value = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                          b"\x7f\xff\xff\xff", b"\x80\x00"]))
            data[position:position + len(value)] = value
        else:
            data[position:position] = bytes(draw(st.integers(1, 64)))
    return name, bytes(data)


def check(name, data):
    url = f"http://fuzz.invalid/x.{SUFFIX.get(name, name)}"
    result = decode_thumbnail(data, SPEC, LIMITS, url)
    assert result.ok or result.error, "no image and no reason"
    if result.ok:
        image = result.image
        assert not image.isNull() and 0 < image.width() <= SPEC.width
        assert 0 < image.height() <= SPEC.height
    else:
        assert result.image is None and len(result.error) < 400


@pytest.mark.slow
@settings(max_examples=200, deadline=8000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_images_never_raise(qtbot, case):
    check(*case)


def test_every_seed_decodes_and_takes_the_intended_path(qtbot):
    for name in SEEDS:
        data = seed_bytes(name)
        in_process = sniff_in_process_format(data)
        assert bool(in_process) == (name in ("jpeg", "jpeg-progressive", "png", "gif", "webp",
                                             "bmp")), name
        if name != "icns":  # that one is a crafted header with no image behind it
            url = f"http://fuzz.invalid/x.{SUFFIX.get(name, name)}"
            assert decode_thumbnail(data, SPEC, LIMITS, url).ok, name


def test_degenerate_inputs(qtbot):
    for data in (b"", b"\0", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBP",
                 b"BM", b"II*\0", b"MM\0*", b"icns", bytes(4096), b"\xff" * 4096):
        for url in ("http://h/x", "http://h/x.tga", "http://h/x.wbmp"):
            result = decode_thumbnail(data, SPEC, LIMITS, url)
            assert not result.ok and result.error, (data[:8], url)
