"""The shared corpus of real hostile, broken and odd image files, served over HTTP to a gallery.

Every tile must settle: Ready where MANIFEST.tsv says the file decodes (the right way up), Error
with a reason where it says the file should fail, either where it allows both. The process never
crashes (a segfaulting TIFF decoder lives in the sandbox child) and never passes 1 GB of RSS.
"""
import csv
import mimetypes
import os

import pytest
from PyQt5.QtGui import QColor, QTransform

from corpus_files import CORPUS, corpus_bytes
from decoder_chatter import DECODER_CHATTER
from imagegallery.decode import ThumbnailSpec, decode_thumbnail
from imagegallery.limits import LoadLimits
from imagegallery.model import ImageGalleryModel
from imagegallery.sandbox_decode import SandboxDecoder
from process_memory import status_bytes

Status = ImageGalleryModel.Status
GIGABYTE = 1024 ** 3

pytestmark = [
    pytest.mark.skipif(not os.path.isfile(os.path.join(CORPUS, "MANIFEST.tsv")),
                       reason=f"the shared corpus is not at {CORPUS} (../shared/corpus from the "
                              "project root)"),
    # Damaged on purpose: the tiles' reasons are checked, not the decoders' complaints.
    pytest.mark.qt_log_ignore(*DECODER_CHATTER),
]

# Files the manifest wants refused that Qt decodes harmlessly, so either outcome is accepted:
SAFE_WHEN_DECODED = {
    # a bomb only in later frames' extents: Qt reads the first frame, 100x100;
    "pillow/decompression_bomb_extents.gif",
    # the defect is in an ancillary iCCP chunk (compression method 1) Qt skips; pixels are intact;
    "pillow/unknown_compression_method.png",
    # Pillow refuses the BitsPerSample count; libtiff reads the 52x53 image correctly.
    "pillow/tiff_wrong_bits_per_sample.tiff",
}


def manifest():
    with open(os.path.join(CORPUS, "MANIFEST.tsv"), newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def outcome_for(entry) -> str:
    """'ready', 'error' or 'either', from the manifest's own words."""
    path, expected = entry["path"], entry["expected"].lower()
    if entry["category"].startswith("svg") or path.endswith((".svg", ".svgz")):
        return "error"  # SVG from the network is never rendered (docs/reliability.md)
    if "or clean failure" in expected or "or fail cleanly" in expected or path in SAFE_WHEN_DECODED:
        return "either"
    if expected.startswith("decodes") or "first frame ok" in expected:
        return "ready"
    if "fail" in expected or "refuse" in expected:
        return "error"
    return "either"  # "no crash" entries: only settling with a reason counts


def mean_difference(a, b) -> float:
    """Mean absolute RGB difference of two images, compared at 32x32."""
    a, b = a.scaled(32, 32), b.scaled(32, 32)
    total = 0
    for y in range(32):
        for x in range(32):
            p, q = QColor(a.pixel(x, y)), QColor(b.pixel(x, y))
            total += abs(p.red() - q.red()) + abs(p.green() - q.green()) + abs(p.blue() - q.blue())
    return total / (32 * 32 * 3)


@pytest.fixture(scope="module")
def served_corpus():
    from servers import ImageServer

    server = ImageServer()
    urls = {}
    for entry in manifest():
        with open(os.path.join(CORPUS, entry["path"]), "rb") as handle:
            body = handle.read()
        content_type = mimetypes.guess_type(entry["path"])[0] or "application/octet-stream"
        urls[entry["path"]] = server.add("/" + entry["path"], body, content_type)
    yield server, urls
    server.stop()


@pytest.fixture
def gallery(qtbot, served_corpus):
    server, urls = served_corpus
    model = ImageGalleryModel()
    entries = manifest()
    with qtbot.waitSignal(model.finished, timeout=90000):
        model.urls = [urls[entry["path"]] for entry in entries]
    yield model, {entry["path"]: row for row, entry in enumerate(entries)}
    model.loader.close()


def test_every_corpus_file_settles_as_the_manifest_says(gallery):
    model, rows = gallery
    assert model.pendingCount == 0
    assert model.loadedCount + model.failedCount == model.count == len(rows)
    wrong = []
    for entry in manifest():
        row = rows[entry["path"]]
        status, reason = model.status_of(row), model.get(row)["errorString"]
        want = outcome_for(entry)
        if status == Status.Error and not reason:
            wrong.append((entry["path"], "Error without a reason"))
        elif status == Status.Ready and model.thumbnail(row) is None:
            wrong.append((entry["path"], "Ready without a thumbnail"))
        elif want == "ready" and status != Status.Ready:
            wrong.append((entry["path"], f"expected Ready, got {reason!r}"))
        elif want == "error" and status != Status.Error:
            wrong.append((entry["path"], "expected Error, got Ready"))
    assert not wrong, "\n".join(f"{path}: {problem}" for path, problem in wrong)
    # Well under 1 GB although lottapixel.jpg declares 16 GB of pixels.
    assert status_bytes("VmHWM") < GIGABYTE


def test_reasons_name_the_problem(gallery):
    model, rows = gallery

    def reason(path):
        return model.get(rows[path])["errorString"]

    assert reason("fuzzdb/lottapixel.jpg").startswith("image too large (64250x64250")
    assert reason("pillow/libtiff_segfault.tif").startswith("image too large (65535x900")
    assert reason("qtsvg/imageInclude.svg") == "SVG is not shown (it can reference other files)"
    assert reason("librsvg/bug785276-empty.svg") in ("empty response (0 bytes)",
                                                    "SVG is not shown (it can reference other files)")


def test_exif_orientation_examples_come_out_landscape_and_upright(gallery):
    model, rows = gallery
    reference = model.thumbnail(rows["exif-orientation-examples/Landscape_0.jpg"])
    assert reference.width() > reference.height()
    for number in (4, 5, 7, 8):
        image = model.thumbnail(rows[f"exif-orientation-examples/Landscape_{number}.jpg"])
        assert image.width() > image.height(), number
        assert (image.width(), image.height()) == (reference.width(), reference.height())
        # Each file stores the same photo turned or mirrored; applied right, it matches the
        # reference closely, while the reference turned upside down differs a lot.
        upright = mean_difference(image, reference)
        upside_down = mean_difference(image.transformed(QTransform().rotate(180)), reference)
        assert upright < 10 and upside_down > 4 * upright, (number, upright, upside_down)


def test_other_orientations_are_applied(gallery):
    model, rows = gallery
    # Qt's own test image: red top-left and blue top-right once orientation 6 is applied.
    jpeg = model.thumbnail(rows["qtbase/jpeg_exif_orientation_value_6_motorola.jpg"])
    top_left, top_right = QColor(jpeg.pixel(0, 0)), QColor(jpeg.pixel(jpeg.width() - 1, 0))
    assert top_left.red() > 240 and top_left.blue() < 20
    assert top_right.blue() > 240 and top_right.red() < 20
    # The Qt logo TIFF (decoded in the sandbox): its dark green bar ends up on the left edge and
    # the white margin at the bottom.
    tiff = model.thumbnail(rows["qtimageformats/rgb_orientation_6.tiff"])
    bar, margin = QColor(tiff.pixel(4, 32)), QColor(tiff.pixel(32, 60))
    assert bar.green() < 120 and bar.blue() < 40, bar.name()
    assert min(margin.red(), margin.green(), margin.blue()) > 240, margin.name()
    # WebP keeps orientation in an EXIF chunk Qt ignores; the same hopper stored upright as a
    # JPEG tells which way up is right.
    webp = model.thumbnail(rows["pillow/hopper_orientation_6.webp"])
    upright = model.thumbnail(rows["pillow/hopper_16bit_qtables.jpg"])
    scores = {angle: mean_difference(webp.transformed(QTransform().rotate(angle)), upright)
              for angle in (0, 90, 180, 270)}
    assert min(scores, key=scores.get) == 0, scores


def test_tga_is_decoded_with_the_suffix_hint(gallery):
    model, rows = gallery
    row = rows["qtimageformats/test-flag.tga"]
    assert model.status_of(row) == Status.Ready, model.get(row)["errorString"]
    assert model.get(row)["imageSize"].width() == 400


# -- the sandbox itself ------------------------------------------------------------------------

SPEC = ThumbnailSpec(240, 140)


@pytest.fixture
def sandbox(monkeypatch):
    # Children spawned from here crash or hang on demand (see sandbox_decode._serve).
    monkeypatch.setenv("IMAGEGALLERY_SANDBOX_TEST_FAULTS", "1")
    decoder = SandboxDecoder(processes=1)
    yield decoder
    decoder.close()
    assert decoder.live_processes() == 0


def test_the_former_segfault_tiff_is_refused_cleanly(qtbot, sandbox):
    data = corpus_bytes("pillow/libtiff_segfault.tif")
    refused = decode_thumbnail(data, SPEC, LoadLimits(), "http://h/x.tif", sandbox=sandbox)
    assert refused.error == ("image too large (65535x900, limit 100 megapixels and 32768 px a "
                             "side)")
    # Past the side limit the read itself runs, and fails cleanly, in the child.
    read = decode_thumbnail(data, SPEC, LoadLimits(max_side=70000), "http://h/x.tif",
                            sandbox=sandbox)
    assert read.error.startswith("cannot decode tiff"), read.error
    assert sandbox.crashes == 0


def test_sandbox_survives_a_crashing_decoder(qtbot, sandbox):
    crashed = decode_thumbnail(b"IMAGEGALLERY-TEST-SEGFAULT", SPEC, LoadLimits(), "http://h/x.tif",
                               sandbox=sandbox)
    assert (crashed.ok, crashed.error) == (False, "decoder crashed (test)")
    assert sandbox.crashes == 1
    after = decode_thumbnail(corpus_bytes("qtimageformats/16bpc.tiff"), SPEC, LoadLimits(),
                             "http://h/y.tiff", sandbox=sandbox)
    assert after.ok, after.error
    assert (after.original_size.width(), after.original_size.height()) == (64, 46)
    assert sandbox.spawned == 2 and sandbox.live_processes() == 1


def test_sandbox_decode_time_limit(qtbot, sandbox):
    # Start the child first so the limit measures the decode, not Python's start-up.
    warm = decode_thumbnail(corpus_bytes("qtimageformats/16bpc.tiff"), SPEC, LoadLimits(),
                            "http://h/a.tiff", sandbox=sandbox)
    assert warm.ok
    hung = decode_thumbnail(b"IMAGEGALLERY-TEST-HANG", SPEC, LoadLimits(decode_timeout_s=0.5),
                            "http://h/b.tga", sandbox=sandbox)
    assert hung.error == "decoder timed out after 0.5 s (test)"
    assert sandbox.timeouts == 1
    again = decode_thumbnail(corpus_bytes("qtimageformats/test-flag.tga"), SPEC, LoadLimits(),
                             "http://h/b.tga", sandbox=sandbox)
    assert again.ok, again.error
    assert sandbox.spawned == 2


def test_crash_in_a_gallery_costs_one_tile(qtbot, monkeypatch, image_server):
    monkeypatch.setenv("IMAGEGALLERY_SANDBOX_TEST_FAULTS", "1")
    from imagegallery import sandbox_decode

    monkeypatch.setattr(sandbox_decode, "_shared", SandboxDecoder(processes=1))
    good = [image_server.add("/a.tga", corpus_bytes("qtimageformats/test-flag.tga"), "image/x-tga"),
            image_server.add("/b.jpg", corpus_bytes("libjpeg-turbo/testorig.jpg"), "image/jpeg")]
    bad = image_server.add("/c.tif", b"IMAGEGALLERY-TEST-SEGFAULT", "image/tiff")
    model = ImageGalleryModel()
    try:
        with qtbot.waitSignal(model.finished, timeout=30000):
            model.urls = [good[0], bad, good[1]]
        assert [model.status_of(r) for r in range(3)] == [Status.Ready, Status.Error, Status.Ready]
        assert model.get(1)["errorString"] == "decoder crashed (test)"
    finally:
        model.loader.close()
        sandbox_decode._shared.close()


def test_sandbox_enforces_the_pixel_budget_and_memory_limit(qtbot, sandbox):
    tiny_budget = LoadLimits(max_pixels=1000)
    refused = decode_thumbnail(corpus_bytes("qtimageformats/16bpc.tiff"), SPEC, tiny_budget,
                               "http://h/a.tiff", sandbox=sandbox)
    assert refused.error.startswith("image too large (64x46"), refused.error
    # 400x400 at 24 bits: the child cannot get the memory for it under a 64 KB allowance, and
    # dies trying (the address-space limit makes the allocation fail).
    starved = decode_thumbnail(corpus_bytes("qtimageformats/test-flag.tga"), SPEC,
                               LoadLimits(decoder_memory_bytes=64 * 1024), "http://h/b.tga",
                               sandbox=sandbox)
    assert (starved.ok, starved.error, sandbox.crashes) == (False, "decoder crashed (tga)", 1)
    fine = decode_thumbnail(corpus_bytes("qtimageformats/test-flag.tga"), SPEC, LoadLimits(),
                            "http://h/b.tga", sandbox=sandbox)
    assert fine.ok, fine.error


def _blank_png(width: int, height: int, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """A black PNG, not interlaced (1-bit greyscale unless told): a few KB whatever its size."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = bytes(1 + (width * channels * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_a_small_file_that_decodes_to_hundreds_of_megabytes_is_decoded_in_the_sandbox(sandbox):
    # Inside the pixel budget, but 8000x8000 1-bit pixels are converted to 32 bits and copied
    # once more before the scale: 512 MB, in every decode thread at once, in this process.
    asked = []
    decode = sandbox.decode
    sandbox.decode = lambda data, *args: asked.append(len(data)) or decode(data, *args)
    huge = _blank_png(8000, 8000)
    assert len(huge) < 20_000
    thumbnail = decode_thumbnail(huge, SPEC, LoadLimits(), "http://h/huge.png", sandbox=sandbox)
    assert thumbnail.error == "" and thumbnail.original_size.width() == 8000
    assert thumbnail.image.size().width() == 140 and QColor(thumbnail.image.pixel(70, 70)).name() == "#000000"
    assert asked == [len(huge)]
    # Qt reads an 8-bit RGBA PNG row by row straight to the thumbnail's size: no memory to save.
    rgba = decode_thumbnail(_blank_png(6000, 6000, 8, 6), SPEC, LoadLimits(), "http://h/rgba.png",
                            sandbox=sandbox)
    small = decode_thumbnail(_blank_png(800, 800), SPEC, LoadLimits(), "http://h/small.png",
                             sandbox=sandbox)
    assert rgba.error == "" and small.error == "" and asked == [len(huge)]  # both in this process
    # Past what the sandbox may allocate, it is refused before the child tries.
    refused = decode_thumbnail(huge, SPEC, LoadLimits(decoder_memory_bytes=100 * 1024 * 1024),
                               "http://h/huge.png", sandbox=sandbox)
    assert refused.error == ("image too large to decode (8000x8000 png needs about 488.3 MB, the "
                             "decoder may use 100 MB)")
