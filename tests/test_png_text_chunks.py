"""A PNG's chunks are walked before Qt reads it. Its text chunks never reach Qt: libpng inflates
each compressed one while Qt reads the header, inside a call that keeps the GIL
(QImageReader.size), so a decode thread froze the GUI. One cut short is refused there: libpng
would say so on stderr itself."""
import struct
import threading
import zlib

import pytest

from gui_gaps import GuiThreadGaps
from imagegallery.decode import (MAX_PNG_TEXT_CHUNKS, ThumbnailSpec, decode_thumbnail,
                                 without_png_text_chunks)
from imagegallery.limits import LoadLimits
from imagegallery.remedy import Remedy
from imaging import (center_color, close_to, png_chunk, png_zip_bomb_texts, solid_image_bytes,
                     with_png_chunks_after_header)


def _chunk_names(png: bytes):
    names, position = [], 8
    while position + 8 <= len(png):
        length = struct.unpack(">I", png[position:position + 4])[0]
        names.append(png[position + 4:position + 8])
        position += 12 + length
    return names


def test_text_chunks_are_taken_out_and_the_picture_kept():
    png = solid_image_bytes("#ff0000", 64, 48)
    texts = (png_chunk(b"tEXt", b"Software\0a painter") + png_chunk(b"iTXt", b"Title\0\0\0\0\0red")
             + png_zip_bomb_texts(2))
    stripped = without_png_text_chunks(with_png_chunks_after_header(png, texts))
    assert stripped == png
    assert not {b"tEXt", b"zTXt", b"iTXt"} & set(_chunk_names(stripped))
    # A name that occurs inside other data, without a chunk's length and CRC around it, stays.
    assert without_png_text_chunks(png + b"zTXt") == png + b"zTXt"


def test_a_png_of_more_text_chunks_than_libpng_keeps_is_refused():
    png = solid_image_bytes("#ff0000", 16, 16)
    texts = png_chunk(b"tEXt", b"k\0v") * (MAX_PNG_TEXT_CHUNKS + 1)
    refused = decode_thumbnail(with_png_chunks_after_header(png, texts), ThumbnailSpec(16, 16),
                               LoadLimits())
    assert refused.error == f"PNG with over {MAX_PNG_TEXT_CHUNKS} text chunks"


def test_decoding_a_png_of_compressed_texts_leaves_the_gui_thread_free(qtbot):
    # 100 texts of 8 MB each: 0.8 MB of file, and seconds inside libpng with the GIL held.
    bomb = with_png_chunks_after_header(solid_image_bytes("#00ff00", 64, 48), png_zip_bomb_texts(100))
    results = []
    with GuiThreadGaps() as gaps:
        decoder = threading.Thread(target=lambda: results.append(
            decode_thumbnail(bomb, ThumbnailSpec(64, 48), LoadLimits())))
        decoder.start()
        qtbot.waitUntil(lambda: bool(results), timeout=60000)
    decoder.join()
    assert results[0].ok, results[0].error
    assert close_to(center_color(results[0].image), "#00ff00")
    # Loose for a noisy machine: the GUI thread waited seconds for the GIL before.
    assert gaps.longest_ms < 500, f"GUI thread stalled {gaps.longest_ms} ms"


def test_a_fake_chunk_inside_a_text_does_not_hide_the_texts_after_it():
    """A real tEXt whose text starts a fake zTXt (length and CRC that agree) running over the
    real zTXt chunks after it: a search by chunk name took the fake for a chunk, jumped over
    the real ones, and left every one of them to libpng (a review's file)."""
    png = solid_image_bytes("#00ff00", 64, 48)
    bombs = png_zip_bomb_texts(3)
    inside = 4  # bytes of the fake's data inside the real text
    padding = b"\0" * 4
    fake_length = inside + 4 + len(bombs) + 8 + len(padding)
    text = png_chunk(b"tEXt", b"k\0" + struct.pack(">I", fake_length) + b"zTXt" + b"\0" * inside)
    private_header = struct.pack(">I", len(padding) + 8) + b"prVt"
    fake_data = b"\0" * inside + text[-4:] + bombs + private_header + padding
    fake_crc = struct.pack(">I", zlib.crc32(b"zTXt" + fake_data))
    private_data = padding + fake_crc + b"\0" * 4
    private = private_header + private_data + struct.pack(">I", zlib.crc32(b"prVt" + private_data))
    crafted = with_png_chunks_after_header(png, text + bombs + private)
    assert _chunk_names(crafted).count(b"zTXt") == 3  # what libpng reads
    stripped = without_png_text_chunks(crafted)
    assert b"zTXt" not in _chunk_names(stripped)
    assert decode_thumbnail(stripped, ThumbnailSpec(64, 48), LoadLimits()).ok


def test_a_png_of_more_chunks_than_any_encoder_writes_is_refused():
    from imagegallery.decode import MAX_PNG_CHUNKS

    png = solid_image_bytes("#ff0000", 16, 16)
    private = png_chunk(b"prVt", b"")
    refused = decode_thumbnail(with_png_chunks_after_header(png, private * MAX_PNG_CHUNKS),
                               ThumbnailSpec(16, 16), LoadLimits())
    assert refused.error == f"PNG of over {MAX_PNG_CHUNKS:,} chunks"


@pytest.mark.parametrize("kept, reason", [
    (lambda png: len(png) // 2, "truncated png (the data ends inside its IDAT chunk)"),
    (lambda png: len(png) - 12, "truncated png (the data ends before its IEND chunk)"),
    (lambda png: 20, "truncated png (the data ends inside its IHDR chunk)"),
])
def test_a_png_cut_short_is_refused_with_its_reason_and_nothing_on_stderr(capfd, kept, reason):
    # Qt's PNG plugin gives libpng no error handler, so libpng printed "libpng error: Read Error"
    # straight to stderr, past any Qt message handler, for each such file the app showed.
    png = solid_image_bytes("#ff0000", 320, 200)
    refused = decode_thumbnail(png[:kept(png)], ThumbnailSpec(64, 48), LoadLimits())
    assert refused.error == reason
    assert refused.remedy == Remedy.RETRY  # a download cut short may arrive whole next time
    assert "libpng" not in capfd.readouterr().err


def test_a_png_whose_chunk_header_is_garbage_is_called_damaged_not_truncated(capfd):
    # A length read from bytes that are no chunk header runs past the end of any file.
    png = solid_image_bytes("#ff0000", 320, 200)
    garbage = png[:33] + b"\xff\xff\x00\x00\x01\x02\x03\x04" + png[41:]
    refused = decode_thumbnail(garbage, ThumbnailSpec(64, 48), LoadLimits())
    assert refused.error == "damaged png (a chunk header that is not one)"
    assert "libpng" not in capfd.readouterr().err


def test_a_png_missing_only_its_last_checksum_still_shows():
    # Qt's plugin supplies that one itself, as some encoders leave it out.
    png = solid_image_bytes("#ff0000", 320, 200)
    assert decode_thumbnail(png[:-4], ThumbnailSpec(64, 48), LoadLimits()).ok
