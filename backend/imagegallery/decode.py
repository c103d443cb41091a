"""Turning downloaded bytes into a thumbnail, safely, in a worker thread.

Everything here is pure and thread-safe: no Qt object outlives a call, nothing touches the GUI.
Order of work for one image: undo Content-Encoding (bounded), refuse SVG and web pages, sniff the
format from its magic bytes, read the header, refuse what is too large, then decode straight to
thumbnail size.

Where a decode runs depends on the format and the size (see docs/reliability.md):
- JPEG, PNG, GIF, WebP and BMP, recognised by their magic bytes, decode here, in the calling
  worker thread, with Qt forced to that one plugin (no other plugin probes the bytes); a JPEG
  goes to libjpeg-turbo first (`jpeg_turbo`), and to Qt only if that refuses it;
- everything else (TIFF, ICNS, TGA, ICO/CUR, WBMP, PBM/PGM/PPM, XBM, XPM, and anything unknown) is
  handed to `sandbox_decode`, a child process that can crash or hang without taking the app down,
  and so is one of those five whose decode would take over IN_PROCESS_DECODE_BYTES (128 MB), an
  animated WebP over 2 MB, or a GIF over 2 MB whose first frame cannot be cut out.
"""
from __future__ import annotations

import functools
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QRect, QSize, Qt
from PyQt5.QtGui import QImage, QImageIOHandler, QImageReader, QTransform

from . import jpeg_scans
from .limits import LoadLimits
from .qt_messages import decoding_an_image
from .remedy import Remedy
from .transport.base import Body
from .units import format_bytes, quote_server_words

# Every check of a body's bytes in Python (magic numbers, SVG, HTML) reads at most its start.
_SNIFF_BYTES = 1024
JPEG_START = b"\xff\xd8"  # SOI, the first two bytes of every JPEG
GZIP_START = b"\x1f\x8b"
# The HTML test reads less than that: a page's tag must start within 512 bytes (the window it has
# always had), so a body with more leading whitespace is not refused as a web page.
_HTML_SNIFF_BYTES = 512

# Above this many pixels a non-JPEG image is scaled inside QImageReader.read(), off the GIL
# (see _read); freeing 4 megapixels with it held costs about a millisecond.
SCALE_IN_READER_PIXELS = 4_000_000
# Most non-JPEG images decode in full before they are scaled. One whose decode would take more
# than this (see _decode_peak_bytes) is decoded in the sandbox child, under its memory limit,
# not in this process: inside the pixel budget a 777 KB 16-bit PNG of 10000x10000 took 1.5 GB
# here, a 92-byte animated WebP 384 MB, a 35-byte GIF or a 1 KB BMP 400 MB, in each decode
# thread at once. 128 MB keeps a 16-megapixel photo with alpha in process.
IN_PROCESS_DECODE_BYTES = 128 * 1024 * 1024

FIT = "fit"
CROP = "crop"

# Formats whose handler can only be chosen from the file name or media type (no magic number, or
# one that another plugin claims first: Qt's ICO plugin takes test-flag.tga for an icon).
_FORMATS_BY_SUFFIX = {".tga": b"tga", ".icb": b"tga", ".vda": b"tga", ".vst": b"tga",
                      ".wbmp": b"wbmp"}
_FORMATS_BY_MEDIA_TYPE = {"image/x-tga": b"tga", "image/x-targa": b"tga", "image/tga": b"tga",
                          "image/vnd.wap.wbmp": b"wbmp"}
# SVG can reference local files and Qt resources (QtSvg follows <image> links), and a hostile
# one can hang the parser: images from the network are never rendered as SVG.
_REFUSED_FORMATS = {b"svg", b"svgz"}
_HARDENED_FORMATS = {b"jpeg", b"png", b"gif", b"webp", b"bmp"}  # sniff_in_process_format's
SVG_REFUSED = "SVG is not shown (it can reference other files)"
ARITHMETIC_JPEG_REFUSED = "arithmetic-coded JPEG is not shown (no browser decodes it either)"
LOSSLESS_JPEG_REFUSED = "lossless JPEG is not shown (no browser decodes it either)"
# Segments before the first scan: a dozen in practice. The walk holds the GIL, so it is bounded.
MAX_JPEG_SEGMENTS = 512
# Colour profiles are a few kilobytes; the largest printer profiles a few hundred. Qt parses one
# into a table of its tags, about 8 bytes for each byte, for a thumbnail that does not use it.
MAX_PROFILE_BYTES = 4 * 1024 * 1024
# Encoders write 3-60 scans: a photo of any size may have this many (LoadLimits.max_jpeg_scans).
MIN_JPEG_SCANS_ALLOWED = 64
# Qt makes a reader's format handler under a global mutex, and probes the device while holding
# it; our device is a QBuffer made in Python, whose every virtual call needs the GIL. A thread
# that held the GIL while waiting for that mutex (QImageReader.canRead does not release it)
# deadlocked against the thread inside: GUI frozen for good. Every handler made while holding the
# GIL (over our buffers, or any reader in a thread that may meet them) is made under this lock
# instead, which is waited for without the GIL.
HANDLER_CREATION_LOCK = threading.Lock()


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
    remedy: Remedy = Remedy.RETRY  # what may undo `error`
    # Set, with no image and no error, by `decode_thumbnail(defer_sandbox=True)` when the bytes
    # are for the sandbox: calling it decodes them there (blocking, like `decode_thumbnail`).
    decode_in_sandbox: Optional[Callable[[], "DecodedThumbnail"]] = None

    @property
    def ok(self) -> bool:
        return self.image is not None


class DecodeRefused(Exception):
    """Raised inside decoding with the reason shown on the tile. As such, the bytes were at
    fault (empty, cut short, corrupt, not an image): the server may send others, so a Retry
    may help. The kinds below are this client's own refusals."""

    remedy = Remedy.RETRY

    def __init__(self, reason: str, remedy: Optional[Remedy] = None):
        super().__init__(reason)
        if remedy is not None:
            self.remedy = remedy


class RefusedByRule(DecodeRefused):
    """A fixed rule refused the bytes (SVG, a JPEG coding, a bound on segments, scans, blocks,
    chunks or a colour profile, a content encoding this build cannot undo): the same bytes meet
    it on every try, so a tile offers no Retry."""

    remedy = Remedy.NONE


class RefusedByLimit(DecodeRefused):
    """A LoadLimits value refused the bytes (pixels, sides, decoder memory, the decompressed
    size, progressive scans): loosened, it may let them through, and the model loads such rows
    again then."""

    remedy = Remedy.LOOSER_LIMITS


# Members of one gzip body: a few in practice, a flood of empty ones a hostile server's.
MAX_GZIP_MEMBERS = 1000
_INFLATE_WINDOW_BYTES = 64 * 1024


# Codings one body may be sent in ("gzip, gzip"): each is bounded by the byte cap, not their work.
MAX_CONTENT_CODINGS = 3


def undo_content_encoding(body: Body, encoding: str, max_bytes: int) -> Body:
    """Inflate a body the server compressed although we asked for identity, never past max_bytes.
    A list of codings (a field sent twice arrives joined by commas) is undone last first, as
    browsers do; "identity" in it means nothing.

    An identity body comes back as bytes, or as the same QByteArray: that one stays shared with
    the reader's buffer, never copied."""
    codings = [coding.strip() for coding in (encoding or "").lower().split(",")]
    codings = [coding for coding in codings if coding not in ("", "identity")]
    if not codings:
        return body if isinstance(body, QByteArray) else bytes(body)
    if len(codings) > MAX_CONTENT_CODINGS:
        raise RefusedByRule(f"body in over {MAX_CONTENT_CODINGS} content encodings")
    for coding in reversed(codings):
        body = _undo_one_coding(body, coding, max_bytes)
    return body


def _undo_one_coding(body: Body, encoding: str, max_bytes: int) -> bytes:
    compressed = memoryview(bytes(body))
    if encoding in ("gzip", "x-gzip"):
        window_bits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # HTTP's deflate is the zlib format, but some servers send raw deflate, and browsers
        # take both.
        window_bits = zlib.MAX_WBITS if _looks_like_zlib(compressed) else -zlib.MAX_WBITS
    else:
        raise RefusedByRule(f"unsupported content encoding '{quote_server_words(encoding)}'")
    pieces, size, position, members = [], 0, 0, 0
    while position < len(compressed):
        # A gzip body may be several members one after another (`cat a.gz b.gz`), which
        # browsers inflate whole. Each is 20 bytes at least, so they are counted, and fed a
        # window at a time: zlib copies all the input it did not use for every member, and a
        # few MB of empty members took seconds, holding the GIL.
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise RefusedByRule(f"gzip body of over {MAX_GZIP_MEMBERS} members")
        inflater = zlib.decompressobj(window_bits)
        before_this_member = len(pieces)
        while not inflater.eof and position < len(compressed):
            window = compressed[position:position + _INFLATE_WINDOW_BYTES]
            try:
                piece = inflater.decompress(window, max_bytes + 1 - size)
            except zlib.error as exc:
                if members > 1:  # bytes after the last member, ignored as before
                    return b"".join(pieces[:before_this_member])
                raise DecodeRefused(f"corrupt {encoding} body ({exc})") from None
            pieces.append(piece)
            size += len(piece)
            if size > max_bytes or inflater.unconsumed_tail:
                raise RefusedByLimit(
                    f"too large after decompression (over {format_bytes(max_bytes)})")
            position += len(window) - len(inflater.unused_data)
        if not (inflater.eof and window_bits > zlib.MAX_WBITS
                and compressed[position:position + 2] == b"\x1f\x8b"):
            break  # the end, or bytes after it that start no member: ignored
    return b"".join(pieces)


def _looks_like_zlib(data: bytes) -> bool:
    """A zlib stream's two header bytes: deflate as the method, and a valid check value."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


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


def decode_thumbnail(body: Body, spec: ThumbnailSpec, limits: LoadLimits, url: str = "",
                     content_type: str = "", content_encoding: str = "",
                     sandbox=None, defer_sandbox: bool = False) -> DecodedThumbnail:
    """Decode `body` into a thumbnail for `spec`. Never raises; thread-safe; may block for up to
    `limits.decode_timeout_s` on the sandbox, so never call it from the GUI thread.

    With `defer_sandbox`, bytes for the sandbox are not decoded: the result carries
    `decode_in_sandbox` instead, for the caller to run on a thread of its own. A child stuck
    until its time limit then holds that thread, not one the in-process formats need: on one
    core (one decode thread) a hanging TIFF held back every other thumbnail for 10 s."""
    # A QByteArray from the Qt transport goes to QImageReader's buffer as it is (shared);
    # Python looks only at its first kilobyte. Copying it to bytes and back cost two memcpys
    # of every body (about 3 ms of a 30 ms decode for a 3 MB JPEG).
    with decoding_an_image(url):  # what Qt's plugins say meanwhile is about this image
        return _with_reason_for_failure(_decode, body, spec, limits, url, content_type,
                                        content_encoding, sandbox, defer_sandbox)


def _with_reason_for_failure(decode: Callable[..., DecodedThumbnail], *args) -> DecodedThumbnail:
    try:
        return decode(*args)
    except DecodeRefused as refused:
        return DecodedThumbnail(None, QSize(), str(refused), refused.remedy)
    except Exception as unexpected:  # a decoder bug must cost one tile, not the process
        return DecodedThumbnail(None, QSize(), f"cannot decode ({type(unexpected).__name__})")


def _decode(body: Body, spec: ThumbnailSpec, limits: LoadLimits, url: str, content_type: str,
            content_encoding: str, sandbox, defer_sandbox: bool) -> DecodedThumbnail:
    data = undo_content_encoding(body, content_encoding, limits.max_response_bytes)
    head = _bytes_at(data, 0, _SNIFF_BYTES)
    if not head:
        raise DecodeRefused("empty response (0 bytes)")
    if _looks_like_svg(head, url, content_type):
        raise RefusedByRule(SVG_REFUSED)
    if head[:2] == GZIP_START:
        # Compressed with no Content-Encoding said (or twice). Qt's SVG plugin claims every
        # gzip stream as svgz, so a gzipped PNG read "SVG is not shown", with no Retry for what
        # the server may yet fix.
        if _looks_like_svg(_gzip_start(data), url, content_type):
            raise RefusedByRule(SVG_REFUSED)
        raise DecodeRefused("not an image (gzip-compressed data)")
    unsupported = _unsupported_format_name(head)
    if unsupported:
        # No plugin for them in this Qt (browsers show AVIF): said, not "not an image".
        raise RefusedByRule(f"{unsupported} images are not supported (no decoder for them here)")
    image_format = sniff_in_process_format(head)
    if head[:2] == JPEG_START:  # sniffed as JPEG, or one whose first marker is garbled
        header = read_jpeg_header(data)
        if header.too_many_segments:
            # Its frame header (size, coding) may lie beyond them, unchecked by every limit: 130
            # empty comments hid an arithmetic-coded bomb that then held a decoder for 2 s.
            raise RefusedByRule(f"JPEG with over {MAX_JPEG_SEGMENTS} segments before its image")
        if header.arithmetic:
            # Its scans cost a pass over every block for next to no bytes (303 scans of a
            # 10000x10000 frame in 6.5 KB held a decoder for 10 s), and no browser decodes it.
            raise RefusedByRule(ARITHMETIC_JPEG_REFUSED)
        if header.lossless:
            # No DCT, so no decode at a reduced scale: asked for one, libjpeg-turbo wrote the
            # whole image into simplejpeg's buffer for the thumbnail, and a 34 KB file crashed
            # the process.
            raise RefusedByRule(LOSSLESS_JPEG_REFUSED)
        if header.precision not in (0, 8):
            raise RefusedByRule(f"JPEG with {header.precision}-bit samples is not shown (no "
                                "browser decodes it either)")
        if header.profile_bytes > MAX_PROFILE_BYTES:
            # Qt joins the pieces and parses the profile into a table of its tags (about 8
            # bytes for each byte) when asked the size, with the GIL held: a 32 MB one took
            # 177 MB and 267 ms. The thumbnail does not use it.
            raise RefusedByRule(f"JPEG with a {format_bytes(header.profile_bytes)} colour profile "
                                f"(limit {format_bytes(MAX_PROFILE_BYTES)})")
        if not header.progressive and 0 < header.first_scan_components < header.components \
                and sequential_scans(data, header, header.components) > header.components:
            # A sequential frame codes each component once. Where its first scan codes them all,
            # libjpeg stops at a second scan with an error; where it codes fewer, libjpeg takes
            # a component coded again, and each such scan, 10 bytes of it, costs a pass over
            # every block: 5,000 of them held both decoders for over a minute. (Counted only
            # then: the count is a search of the whole body, 1 ms a megabyte.)
            raise RefusedByRule(f"JPEG with more scans than its {header.components} "
                                "components (each is a pass over the whole image)")
        most = jpeg_scans_allowed(header.stored, limits)
        scans = jpeg_scans.JpegScans(data, most) if header.progressive else None
        # Every scan is a pass over the whole image, for libjpeg-turbo and Qt alike, and
        # neither can be stopped once started: a 62 KB file of 1,000 scans held a decoder
        # for 2.2 s.
        if _most_scans(data, header, scans, most) > most:
            raise RefusedByLimit(f"progressive JPEG with over {most} scans "
                                "(each is a pass over the whole image)")
        if image_format == b"jpeg" and jpeg_decode_peak_bytes(header) <= IN_PROCESS_DECODE_BYTES:
            # (A larger one goes to Qt's reader below, which hands it to the sandbox.)
            thumbnail = _decode_jpeg_with_turbo(data, header, scans, spec, limits)
            if thumbnail is not None:
                return thumbnail
    hint = _format_hint(url, content_type)
    if image_format == b"png":
        chunks = walk_png_chunks(data)
        if chunks.cut_short:
            # libpng would stop at the end of the data with a png_error, which Qt's plugin
            # leaves to libpng's default handler: "libpng error: Read Error" straight on stderr,
            # past any Qt message handler, for a failure the tile reports anyway.
            raise DecodeRefused(chunks.cut_short)
        data = without_png_text_chunks(data, chunks.text_spans)
    elif image_format == b"gif" and len(data) > GIF_CUT_FROM_BYTES:
        cut = first_gif_frame(data)
        if cut is None:
            # Where its first frame ends was not found as Qt would find it (an extension Qt
            # reads otherwise, a chain of tiny sub-blocks): Qt's scan of every frame would hold
            # the GIL, so the sandbox decodes it.
            image_format, hint = b"", b"gif"
        else:
            data = cut
    if image_format:
        try:
            return _decode_with_qt(data, spec, limits.max_pixels, limits.max_side, image_format,
                                   autodetect=False, content_type=content_type,
                                   in_process_bytes=IN_PROCESS_DECODE_BYTES)
        except _TooLargeForThisProcess:
            hint = image_format
    elif _looks_like_html(head, content_type) and _format_name_guess(head, b"") == "image":
        # (A page by its Content-Type alone, with the magic of an image the sandbox reads, is
        # that image: the bytes decide, as in browsers.)
        raise DecodeRefused(_not_an_image_reason(head, content_type))
    in_sandbox = (bytes(data), spec, limits, hint, content_type, sandbox)
    if defer_sandbox:
        return DecodedThumbnail(None, QSize(), decode_in_sandbox=lambda: _with_reason_for_failure(
            _decode_in_sandbox, *in_sandbox))
    return _decode_in_sandbox(*in_sandbox)


_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# libpng keeps at most 1,000 ancillary chunks; a picture needs none of its texts.
MAX_PNG_TEXT_CHUNKS = 1000
# Chunks a PNG may have at all: encoders cut image data into pieces of 8-64 KB, so a 50 MB file
# has a few thousand. Bounded because the walk below is Python holding the GIL (0.5-1 us a
# chunk).
MAX_PNG_CHUNKS = 100_000


def without_png_text_chunks(data: Body, spans: Optional[List[Tuple[int, int]]] = None) -> Body:
    """A PNG without its text chunks (tEXt, zTXt, iTXt), which Qt reads but the pixels never
    need. libpng inflates every compressed text (up to 8 MB each) when Qt reads the header,
    inside QImageReader.size(), and PyQt keeps the GIL through that call: 40 such chunks in a
    320 KB file froze the GUI thread for 0.7 s, 200 for 4 s. `spans`: the text chunks'
    (start, end), where the caller has walked the chunks already (walk_png_chunks)."""
    if spans is None:
        spans = walk_png_chunks(data).text_spans
    if not spans:
        return data
    kept, position = [], 0
    for first, end in spans:
        kept.append(_bytes_at(data, position, first - position))
        position = end
    kept.append(_bytes_at(data, position, len(data) - position))
    return b"".join(kept)


# Blocks (extensions) a GIF may have before its first image: an encoder writes a few (loop
# count, comment, the first frame's timing). Bounded because the walk is Python.
MAX_GIF_BLOCKS_BEFORE_IMAGE = 1000
# Sub-blocks the walk reads: encoders fill them (255 bytes), so 250,000 is a 60 MB frame, past
# the response cap; 1-byte ones made the walk a 2 s Python loop for a 48 MB file.
MAX_GIF_SUB_BLOCKS = 250_000
# A GIF up to this size goes to Qt whole: Qt's scan of all its frames costs at most a few
# milliseconds (about 6 ms for 2 MB of 1x1 frames), where the walk to cut it costs 0.1-0.6 ms for
# W3's 0.3-1.3 MB files.
GIF_CUT_FROM_BYTES = 2 * 1024 * 1024


def first_gif_frame(data: Body) -> Optional[Body]:
    """A GIF cut after its first image, with a trailer; `data` as it is when nothing follows that
    image; None when the walk does not find where it ends (the data ends first, a block it does
    not know, or over MAX_GIF_SUB_BLOCKS sub-blocks).

    A thumbnail needs the first frame, but Qt's plugin scans every frame when asked the size,
    inside QImageReader.size(), and PyQt keeps the GIL through that call: a 49 MB file of four
    million 1x1 frames froze the GUI thread for 120-300 ms."""
    header = _bytes_at(data, 0, 13)
    if len(header) < 13:
        return None
    position = 13 + (3 << ((header[10] & 0x07) + 1) if header[10] & 0x80 else 0)
    budget = [MAX_GIF_SUB_BLOCKS]
    for _ in range(MAX_GIF_BLOCKS_BEFORE_IMAGE):
        introducer = _bytes_at(data, position, 2)
        if introducer[:1] == b"\x21":  # an extension: its label, then its sub-blocks
            if introducer[1:] in (b"\xf9", b"\xff") and _bytes_at(data, position + 2, 1) == b"\0":
                return None  # Qt reads a chain after this empty first sub-block too; not we
            position = _after_gif_sub_blocks(data, position + 2, budget)
        elif introducer[:1] == b"\x2c":  # the image descriptor
            descriptor = _bytes_at(data, position, 10)
            if len(descriptor) < 10:
                return None
            position += 10
            if descriptor[9] & 0x80:  # a local colour table
                position += 3 << ((descriptor[9] & 0x07) + 1)
            end = _after_gif_sub_blocks(data, position + 1, budget)  # after the LZW code size
            if end < 0:
                return None
            if end + 1 >= len(data):
                return data
            return _bytes_at(data, 0, end) + b"\x3b"
        else:
            return None
        if position < 0:
            return None
    raise RefusedByRule(f"GIF with over {MAX_GIF_BLOCKS_BEFORE_IMAGE} blocks before its first image")


def _after_gif_sub_blocks(data: Body, position: int, budget: List[int]) -> int:
    """Where a chain of GIF sub-blocks (a length byte, then that many bytes) starting at
    `position` ends, after its empty terminator; -1 if the data ends first or `budget` (the
    sub-blocks the walk may still read) runs out. Read 64 KB at a time: one frame can be
    megabytes of 255-byte blocks."""
    window_start, window = position, b""
    while budget[0] > 0:
        budget[0] -= 1
        offset = position - window_start
        if offset >= len(window):
            window_start, window, offset = position, _bytes_at(data, position, 65536), 0
            if not window:
                return -1
        length = window[offset]
        if length == 0:
            return position + 1
        position += 1 + length
    return -1


class PngChunks(NamedTuple):
    """What a walk of a PNG's chunks found (walk_png_chunks)."""

    text_spans: List[Tuple[int, int]]  # (start, end) of each text chunk, whole
    cut_short: str  # why the data ends before the PNG does, as a tile's reason; "" if it does not


def walk_png_chunks(data: Body, max_chunks: int = MAX_PNG_CHUNKS) -> PngChunks:
    """Walk the chunks of the PNG `data` in order by their lengths, as libpng reads them, to
    its IEND chunk: where its text chunks are, and whether the data ends first.

    By length, not by name: a search by name was fooled by a fake chunk inside a real text
    whose length ran over the real ones. Raises DecodeRefused past `max_chunks` chunks or
    MAX_PNG_TEXT_CHUNKS texts.
    """
    spans = []
    position, chunks, size = 8, 0, len(data)  # after the signature
    while position + 8 <= size:
        header = _bytes_at(data, position, 8)
        end = position + 12 + int.from_bytes(header[:4], "big")
        name = header[4:8]
        chunks += 1
        if chunks > max_chunks:
            raise RefusedByRule(f"PNG of over {max_chunks:,} chunks")
        if name in _PNG_TEXT_CHUNKS:
            spans.append((position, min(end, size)))
            if len(spans) > MAX_PNG_TEXT_CHUNKS:
                raise RefusedByRule(f"PNG with over {MAX_PNG_TEXT_CHUNKS} text chunks")
        if name == b"IEND":
            # Qt's plugin supplies the last chunk's CRC when the file lacks it, as some
            # encoders' files do; nothing else that is missing.
            if end - 4 <= size:
                return PngChunks(spans, "")
            break
        if end > size:
            break
        position = end
    if position + 8 <= size:
        if not name.isalpha():  # a length read from bytes that are no chunk header: damage
            return PngChunks(spans, "damaged png (a chunk header that is not one)")
        return PngChunks(spans, f"truncated png (the data ends inside its {name.decode()} chunk)")
    return PngChunks(spans, "truncated png (the data ends before its IEND chunk)")


def sniff_in_process_format(data: bytes) -> bytes:
    """The hardened format `data` is by its magic bytes, or b"" (then the sandbox decodes it).

    Hardened: the decoders every browser exposes to the whole web, fuzzed for years.
    """
    if data[:3] == b"\xff\xd8\xff":
        return b"jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return b"gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return b"webp"
    if data[:2] == b"BM" and len(data) >= 26:
        return b"bmp"
    return b""


def _decode_in_sandbox(data: bytes, spec: ThumbnailSpec, limits: LoadLimits, hint: bytes,
                       content_type: str, sandbox) -> DecodedThumbnail:
    from .sandbox_decode import SandboxFailure, shared_sandbox

    sandbox = sandbox or shared_sandbox()
    request = {"hint": hint.decode(), "max_pixels": limits.max_pixels, "max_side": limits.max_side,
               "width": spec.width, "height": spec.height, "fill": spec.fill_mode,
               "content_type": content_type[:200], "memory_bytes": limits.decoder_memory_bytes}
    try:
        reply, pixels = sandbox.decode(data, request, limits.decode_timeout_s,
                                       limits.decoder_memory_bytes, _format_name_guess(data, hint))
    except SandboxFailure as failure:
        raise DecodeRefused(str(failure)) from None
    if not reply.get("ok"):
        raise DecodeRefused(str(reply.get("error") or "cannot decode")[:300],
                            Remedy.from_untrusted(reply.get("remedy")))
    width, height, per_line = int(reply["width"]), int(reply["height"]), int(reply["bpl"])
    image_format = QImage.Format(int(reply["format"]))
    # The child is trusted no further than its answer's shape: sizes must match the pixels.
    if (not 0 < width <= limits.max_side or not 0 < height <= limits.max_side
            or image_format not in (QImage.Format_RGB32, QImage.Format_ARGB32_Premultiplied)
            or per_line != width * 4 or len(pixels) != per_line * height):
        raise DecodeRefused("decoder sent a malformed answer")
    # copy(): the QImage must own its pixels, not borrow the bytes object's buffer.
    image = QImage(pixels, width, height, per_line, image_format).copy()
    original = QSize(*(int(v) for v in reply["original"]))
    return DecodedThumbnail(image, original)


def decode_in_this_process(data: bytes, request: dict,
                           on_format: Optional[Callable[[str], None]] = None) -> Tuple[dict, bytes]:
    """The sandbox child's half: decode with Qt here and return (answer header, raw pixels)."""
    spec = ThumbnailSpec(int(request["width"]), int(request["height"]), str(request["fill"]))
    try:
        decoded = _decode_with_qt(data, spec, int(request["max_pixels"]), int(request["max_side"]),
                                  str(request.get("hint", "")).encode(), autodetect=True,
                                  content_type=str(request.get("content_type", "")),
                                  on_format=on_format, memory_bytes=request.get("memory_bytes"))
    except DecodeRefused as refused:
        return {"ok": False, "error": str(refused), "remedy": int(refused.remedy)}, b""
    except Exception as unexpected:
        return {"ok": False, "error": f"cannot decode ({type(unexpected).__name__})"}, b""
    image = decoded.image
    pointer = image.constBits()
    pointer.setsize(image.sizeInBytes())
    return ({"ok": True, "width": image.width(), "height": image.height(),
             "bpl": image.bytesPerLine(), "format": int(image.format()),
             "original": [decoded.original_size.width(), decoded.original_size.height()]},
            bytes(pointer))


class _TooLargeForThisProcess(Exception):
    """Its decoded pixels would take more than the in-process budget: the sandbox decodes it."""


def _decode_with_qt(data: Body, spec: ThumbnailSpec, max_pixels: int, max_side: int,
                    image_format: bytes, autodetect: bool, content_type: str,
                    on_format: Optional[Callable[[str], None]] = None,
                    in_process_bytes: Optional[int] = None,
                    memory_bytes: Optional[int] = None) -> DecodedThumbnail:
    """Decode with Qt's plugin for `image_format` (or the one the bytes name, with
    `autodetect`). Past `in_process_bytes` of decode memory it raises _TooLargeForThisProcess
    (the caller hands it to the sandbox); past `memory_bytes` (the sandbox's own limit) the
    image is refused."""
    # The reader must not outlive its buffer, nor the buffer its bytes: some TIFFs crash otherwise.
    array = QByteArray(data)
    buffer = QBuffer(array)
    buffer.open(QIODevice.ReadOnly)
    readers = []  # every reader made here, so all of them die before the buffer
    reader = None
    failure, remedy = "", Remedy.RETRY
    too_large = False
    try:
        if image_format:
            # Only the named plugin looks at the bytes: no other plugin's probe runs on them.
            reader = QImageReader(buffer, image_format)
            reader.setAutoDetectImageFormat(False)
            readers.append(reader)
            with HANDLER_CREATION_LOCK:
                readable = reader.canRead()
            if not readable:
                reader = None
                buffer.seek(0)
        if reader is None:
            if not autodetect:
                raise DecodeRefused(f"cannot decode {image_format.decode()} (bad header)")
            reader = QImageReader(buffer)
            reader.setDecideFormatFromContent(True)
            readers.append(reader)
        with HANDLER_CREATION_LOCK:  # makes the handler, unless canRead() above already did
            detected = bytes(reader.format())
        if not detected:
            raise DecodeRefused(_not_an_image_reason(bytes(array.left(_SNIFF_BYTES)), content_type))
        if on_format is not None:
            on_format(detected.decode("ascii", "replace"))
        if detected in _REFUSED_FORMATS or ("svg" in content_type.lower()
                                            and detected not in _HARDENED_FORMATS):
            raise RefusedByRule(SVG_REFUSED)
        return _read(reader, detected, data, spec, max_pixels, max_side, in_process_bytes,
                     memory_bytes)
    except _TooLargeForThisProcess:
        too_large = True
    except DecodeRefused as refused:
        failure, remedy = str(refused), refused.remedy
    except Exception as unexpected:  # a decoder bug must cost one tile, not the process
        failure = f"cannot decode ({type(unexpected).__name__})"
    finally:
        # Readers first, then the buffer: the TIFF plugin reads from the device when its handler
        # is destroyed, and a deleted buffer there is a segfault. An exception's traceback would
        # keep `_read`'s frame (and its reader) alive past this point, which is why the handlers
        # above keep only the message and its remedy.
        reader = None
        del readers[:]
        buffer.close()
        del buffer, array
    if too_large:
        raise _TooLargeForThisProcess()  # a new one: the caught one's traceback held the reader
    raise DecodeRefused(failure, remedy)


def _bmp_declared_size(header: bytes) -> QSize:
    """The size a BMP's info header (40 bytes or more) declares; empty when it has none."""
    if len(header) < 26 or struct.unpack_from("<I", header, 14)[0] < 40:
        return QSize()
    width, height = struct.unpack_from("<ii", header, 18)
    return QSize(abs(width), abs(height))


def _check_bmp_length(header: bytes, length: int) -> None:
    """Refuse an uncompressed BMP shorter than its header says: Qt shows it, half garbage."""
    if length < 34 or len(header) < 34:
        return
    offset, header_size = struct.unpack_from("<II", header, 10)
    if header_size < 40:
        return
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", header, 18)
    if compression not in (0, 3) or bits not in (1, 4, 8, 16, 24, 32) or width <= 0:
        return  # RLE and odd layouts have no fixed size; Qt checks those itself
    needed = offset + (width * bits + 31) // 32 * 4 * abs(height)
    if length < needed:
        raise DecodeRefused(f"truncated bmp ({length} of {needed} bytes)")


def _read(reader: QImageReader, image_format: bytes, data: Body, spec: ThumbnailSpec,
          max_pixels: int, max_side: int, in_process_bytes: Optional[int] = None,
          memory_bytes: Optional[int] = None) -> DecodedThumbnail:
    name = image_format.decode("ascii", "replace")
    if image_format == b"webp":
        _check_webp_canvas(data, max_pixels, max_side, in_process_bytes, memory_bytes)
    # EXIF orientation. Qt 5.15's JPEG plugin misses an EXIF segment after another APP1 (an
    # XMP packet first, as some editors write), and its WebP and PNG plugins ignore EXIF: ours
    # reads all three.
    own_orientation = image_format in (b"jpeg", b"webp", b"png")
    reader.setAutoTransform(not own_orientation)
    if image_format in (b"ico", b"cur"):
        _jump_to_the_icon_for(reader, spec, max_pixels, max_side)
    stored = reader.size()  # from the header only; nothing is allocated yet (but see above)
    if not stored.isValid() or stored.isEmpty():
        if image_format == b"bmp":  # Qt refuses some bombs' sizes itself: named as what they are
            _check_pixel_budget(_bmp_declared_size(_bytes_at(data, 0, 26)), max_pixels, max_side)
        raise DecodeRefused(f"not a readable {name} image (no size in header)")
    if image_format == b"gif":
        # Qt gives a GIF's first frame size but paints the frame on a canvas the size of the
        # file's logical screen: a 35-byte file with a 1x1 frame on a 12,000-pixel screen made
        # it allocate 576 MB. Judged, and scaled, by the canvas.
        stored = stored.expandedTo(_gif_screen_size(data))
    _check_pixel_budget(stored, max_pixels, max_side)
    if image_format == b"bmp":  # after the budget: a bomb is "too large", not "truncated"
        _check_bmp_length(_bytes_at(data, 0, _SNIFF_BYTES), len(data))
    peak_bytes = _decode_peak_bytes(reader, image_format, data, stored)
    _check_decode_memory(stored, name, peak_bytes, in_process_bytes, memory_bytes)

    if image_format == b"jpeg":
        manual = transformation = read_jpeg_header(data).transformation
    elif image_format == b"webp":
        manual = transformation = _webp_exif_transformation(bytes(data))
    elif image_format == b"png":
        manual = transformation = _png_exif_transformation(data)
    else:
        manual, transformation = 0, int(reader.transformation())
    rotated = bool(transformation & int(QImageIOHandler.TransformationRotate90))
    display = stored.transposed() if rotated else stored
    scaled, clip = target_geometry(display, spec)
    # JPEG decodes straight at reduced size (DCT scaling), far cheaper than decode-then-scale.
    # Other formats decode in full (the pixel budget above bounds it). A large one is scaled
    # inside read() too, which gives the GIL up: scaled in Python, the scale and the freeing of
    # the full image held the GIL, and the GUI thread waited for it (50-90 ms for a GIF with a
    # 12,000-pixel screen). A small one is scaled below, 7-11% cheaper (W3's PNG, GIF, WebP).
    scale_in_reader = image_format == b"jpeg" or (
        stored.width() * stored.height() > SCALE_IN_READER_PIXELS)
    if scale_in_reader:
        # The reader scales and clips before it applies the orientation.
        scaled, clip = _as_stored(scaled, clip, transformation)
        if scaled != stored:
            reader.setScaledSize(scaled)
        if clip is not None:
            reader.setScaledClipRect(clip)
    image = reader.read()
    if image.isNull():
        if peak_bytes > IN_PROCESS_DECODE_BYTES and reader.error() == QImageReader.UnknownError:
            # What Qt says when an allocation after the read fails (the sandbox's memory limit).
            raise RefusedByLimit(f"image too large to decode ({stored.width()}x{stored.height()} "
                                f"{name} ran out of memory, needing about "
                                f"{format_bytes(peak_bytes)})")
        raise DecodeRefused(f"cannot decode {name} ({reader.errorString()})")
    if manual:
        image = _apply_transformation(image, manual)
    if not scale_in_reader:
        # Two steps, a fast one to twice the target and a smooth one to the target: a third of
        # one smooth pass over the full image, and the same at thumbnail size.
        image = _downscale(image, scaled)
        if clip is not None:
            image = image.copy(clip)
    # The scene graph uploads these two formats without converting; do it here, once, off the
    # GUI thread.
    wanted = QImage.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else QImage.Format_RGB32
    if image.format() != wanted:
        image = image.convertToFormat(wanted)
    return DecodedThumbnail(image, display)


def jpeg_scans_allowed(stored: Optional[QSize], limits: LoadLimits) -> int:
    """The most scans a JPEG frame of `stored` pixels may have (LoadLimits.max_jpeg_scans and
    max_jpeg_scan_megapixels)."""
    if stored is None or stored.isEmpty():
        # A size not known before the scans (no frame header, a height given after them):
        # assume the worst.
        return min(limits.max_jpeg_scans, MIN_JPEG_SCANS_ALLOWED)
    megapixels = stored.width() * stored.height() / 1e6
    by_size = int(limits.max_jpeg_scan_megapixels / megapixels)
    return min(limits.max_jpeg_scans, max(MIN_JPEG_SCANS_ALLOWED, by_size))


def _most_scans(data: Body, header: "JpegHeader",
                scans: Optional[jpeg_scans.JpegScans], limit: int) -> int:
    """How many scans the decoders may find in this JPEG: the walk's count where it reached the
    end (or the limit), else every start-of-scan marker in the file.

    The walks stop at a byte that is not a marker, where libjpeg skips it with a warning and
    decodes on, so a stray byte before the frame or between segments hid a thousand scans from
    the limit. Entropy-coded data never holds 0xFF 0xDA (it stuffs every 0xFF), so the markers
    found bound the count from above. A sequential Huffman frame needs none of this: each of
    its scans codes every block in two bits or more, so its decode costs in proportion to its
    bytes, which are capped. (Arithmetic coding has no such floor: refused before this.)
    """
    if scans is not None and (scans.complete or scans.scans > limit):
        return scans.scans
    if scans is None and header.stored is not None:
        return 0
    start_of_scan = b"\xff\xda"
    if isinstance(data, QByteArray):
        return data.count(QByteArray(start_of_scan))
    return bytes(data).count(start_of_scan)


def _decode_jpeg_with_turbo(data: Body, header: JpegHeader,
                            scans: Optional[jpeg_scans.JpegScans], spec: ThumbnailSpec,
                            limits: LoadLimits) -> Optional[DecodedThumbnail]:
    """A JPEG thumbnail from libjpeg-turbo, or None to leave the file to Qt's reader (no
    simplejpeg, CMYK, a header or a scan it refuses; Qt then gives the tile its answer).
    `scans` is the file's walk when it is progressive."""
    from . import jpeg_turbo  # here, not at the top: the sandbox child never loads numpy

    if not jpeg_turbo.available():
        return None
    stored = header.stored
    if stored is None or stored.isEmpty() or header.components not in (1, 3) \
            or header.precision != 8:
        return None  # no frame header, a height given after the scan, CMYK or YCCK, 12-bit
    _check_pixel_budget(stored, limits.max_pixels, limits.max_side)
    transformation = header.transformation
    rotated = bool(transformation & int(QImageIOHandler.TransformationRotate90))
    display = stored.transposed() if rotated else stored
    scaled, clip = _as_stored(*target_geometry(display, spec), transformation)
    image = None
    eighth = QSize(-(-stored.width() // 8), -(-stored.height() // 8))
    if scans is not None and eighth.width() >= scaled.width() \
            and eighth.height() >= scaled.height():
        # libjpeg-turbo decodes this at 1/8 scale, which reads few of a progressive file's scans.
        cut = scans.for_eighth_scale()
        if cut is not None:
            image = jpeg_turbo.decode_jpeg_scaled(cut, scaled, decoded_size=eighth)
    if image is None:
        image = jpeg_turbo.decode_jpeg_scaled(data, scaled)
    if image is None:
        return None
    # What Qt's reader does: scale and clip as stored, then turn the result upright.
    if clip is not None:
        image = image.copy(clip)
    if transformation:
        image = _apply_transformation(image, transformation)
    return DecodedThumbnail(image, display)


def _decode_peak_bytes(reader: QImageReader, image_format: bytes, data: Body, stored: QSize) -> int:
    """About the most memory Qt takes to decode `stored` pixels of this image before scaling
    it (measured per format with a reset VmHWM): the image as read, at least 32 bits a pixel (an
    indexed GIF is painted on a 32-bit canvas), plus the copy the scale converts it to first
    (premultiplied, or 32 bits) unless it is read in a format the scale takes as it is, plus an
    animated WebP's canvas beside its frame. For JPEG (decoded at its DCT scale) libjpeg's
    coefficient buffer, if it keeps one; 0 for an 8-bit, non-interlaced RGB or RGBA PNG past
    SCALE_IN_READER_PIXELS, which Qt reads row by row straight to the thumbnail's size."""
    if image_format == b"jpeg":
        return jpeg_decode_peak_bytes(read_jpeg_header(data))
    if image_format == b"png" and _png_read_row_by_row(data) \
            and stored.width() * stored.height() > SCALE_IN_READER_PIXELS:
        return 0
    read_as = reader.imageFormat()
    bits = max(32, QImage.toPixelFormat(read_as).bitsPerPixel())
    if read_as not in (QImage.Format_RGB32, QImage.Format_ARGB32_Premultiplied):
        bits += bits  # converted before the scale: 32 bits, or 64 for a 16-bit image
    flags = _bytes_at(data, 20, 1) if image_format == b"webp" else b""
    if flags and _bytes_at(data, 12, 4) == b"VP8X" and flags[0] & 0x02:
        bits += 32  # animated: the frame, and the canvas it is drawn on
    return stored.width() * stored.height() * bits // 8




# An animated WebP larger than this decodes in the sandbox (see _check_webp_canvas).
WEBP_ANIMATION_IN_PROCESS_BYTES = 2 * 1024 * 1024
# Chunks looked through for one: a still file has two to five; an animation's frames come last.
_WEBP_CHUNKS_LOOKED_AT = 64


def _webp_chunks(data: Body) -> Iterator[Tuple[bytes, int, int]]:
    """(tag, where its payload starts, its declared size) for a WebP's first
    _WEBP_CHUNKS_LOOKED_AT chunks, until a chunk's header would not fit within the RIFF size
    the file declares or the data, whichever ends first. A payload may run past that end."""
    position, end = 12, min(len(data), 8 + int.from_bytes(_bytes_at(data, 4, 4), "little"))
    for _ in range(_WEBP_CHUNKS_LOOKED_AT):
        if position + 8 > end:
            return
        header = _bytes_at(data, position, 8)
        size = int.from_bytes(header[4:8], "little")
        yield header[:4], position + 8, size
        position += 8 + size + (size & 1)


def _webp_chunk_bytes(data: Body, name: bytes) -> int:
    """The size of the first `name` chunk among a WebP's first _WEBP_CHUNKS_LOOKED_AT chunks;
    -1 when there are that many and none is one, 0 when the chunks end before that."""
    looked_at = 0
    for tag, _, size in _webp_chunks(data):
        if tag == name:
            return size
        looked_at += 1
    return -1 if looked_at == _WEBP_CHUNKS_LOOKED_AT else 0


def _check_webp_canvas(data: Body, max_pixels: int, max_side: int,
                       in_process_bytes: Optional[int], memory_bytes: Optional[int]) -> None:
    """Judge an extended WebP by the canvas its VP8X chunk declares, before Qt's reader is asked
    anything: for an animated file Qt's plugin allocates and paints that canvas as soon as it
    is asked the size, with the GIL held. A 92-byte file declaring 65536x16384 took 4 GB and
    froze the GUI thread for 4.7 s before the pixel budget could refuse it."""
    header = _bytes_at(data, 12, 18)
    if len(header) < 18 or header[:4] != b"VP8X":
        return
    if header[8] & 0x20:  # a colour profile: an ICCP chunk, after VP8X or (libwebp takes it) later
        profile_bytes = _webp_chunk_bytes(data, b"ICCP")
        if profile_bytes < 0:
            raise RefusedByRule(f"webp with a colour profile past its first "
                                f"{_WEBP_CHUNKS_LOOKED_AT} chunks")
        if profile_bytes > MAX_PROFILE_BYTES:
            # Qt parses it into a table of its tags, about 8 bytes for each byte (a 42 MB
            # profile took 330 MB), for a thumbnail that does not use it.
            raise RefusedByRule(f"webp with a {format_bytes(profile_bytes)} colour profile "
                                f"(limit {format_bytes(MAX_PROFILE_BYTES)})")
    canvas = QSize(int.from_bytes(header[12:15], "little") + 1,
                   int.from_bytes(header[15:18], "little") + 1)
    _check_pixel_budget(canvas, max_pixels, max_side)
    animated = bool(header[8] & 0x02)
    if animated and len(data) > WEBP_ANIMATION_IN_PROCESS_BYTES and in_process_bytes is not None:
        # Qt's plugin reads every frame's header when asked the size, with the GIL held: a
        # million 1x1 frames (48 MB) froze the GUI thread for 215 ms. Its first frame is all a
        # thumbnail shows; a large animation is decoded where the GIL is not shared.
        raise _TooLargeForThisProcess()
    # The bound _decode_peak_bytes gives once the reader has the format: the frame read and
    # converted, and an animation's canvas beside it.
    peak_bytes = canvas.width() * canvas.height() * (12 if animated else 8)
    _check_decode_memory(canvas, "webp", peak_bytes, in_process_bytes, memory_bytes)


def _check_decode_memory(stored: QSize, name: str, peak_bytes: int,
                         in_process_bytes: Optional[int], memory_bytes: Optional[int]) -> None:
    """Refuse a decode of `peak_bytes` past the sandbox's own limit (`memory_bytes`); hand one
    past `in_process_bytes` to the sandbox (_TooLargeForThisProcess)."""
    if memory_bytes is not None and peak_bytes > memory_bytes:
        raise RefusedByLimit(f"image too large to decode ({stored.width()}x{stored.height()} "
                            f"{name} needs about {format_bytes(peak_bytes)}, the decoder may use "
                            f"{format_bytes(memory_bytes)})")
    if in_process_bytes is not None and peak_bytes > in_process_bytes:
        raise _TooLargeForThisProcess()


def _png_read_row_by_row(data: Body) -> bool:
    """An 8-bit RGB or RGBA PNG without interlacing, from its IHDR."""
    header = _bytes_at(data, 0, 29)
    return len(header) == 29 and header[12:16] == b"IHDR" and header[24] == 8 \
        and header[25] in (2, 6) and header[28] == 0


def _check_pixel_budget(stored: QSize, max_pixels: int, max_side: int) -> None:
    w, h = stored.width(), stored.height()
    if w > max_side or h > max_side or w * h > max_pixels:
        raise RefusedByLimit(
            f"image too large ({w}x{h}, limit {max_pixels / 1e6:g} megapixels "
            f"and {max_side} px a side)")


# Icon entries looked at for the one to show: a favicon has a handful, the format up to 65,535.
MAX_ICON_ENTRIES = 64


def _jump_to_the_icon_for(reader: QImageReader, spec: ThumbnailSpec, max_pixels: int,
                          max_side: int) -> None:
    """Point `reader` at the icon entry a thumbnail of `spec` is best made from: among those
    within the pixel limits, the smallest that is not scaled up, else the largest; of two the
    same size, the one of more colours. Qt reads the first, most often the 16x16 one, which a
    140-pixel tile showed as a tiny picture."""
    entries = []
    for index in range(min(reader.imageCount(), MAX_ICON_ENTRIES)):
        if reader.jumpToImage(index):
            size = reader.size()
            if size.isValid() and not size.isEmpty() and size.width() * size.height() <= max_pixels \
                    and max(size.width(), size.height()) <= max_side:
                depth = QImage.toPixelFormat(reader.imageFormat()).bitsPerPixel()
                entries.append((size.width() * size.height(), -depth, index, size))
    if not entries:
        reader.jumpToImage(0)  # judged by the limits as it is
        return
    entries.sort()
    largest = entries[-1][3]
    wanted = target_geometry(largest, spec)[0]
    best = next(index for _, _, index, size in entries
                if size.width() >= wanted.width() and size.height() >= wanted.height())
    reader.jumpToImage(best)


def _as_stored(scaled: QSize, clip: Optional[QRect],
               transformation: int) -> Tuple[QSize, Optional[QRect]]:
    """The decode size and crop in the file's stored orientation, from display orientation:
    `clip` taken back through `transformation` as _apply_transformation applies it. (Swapping
    the crop's axes alone put an odd margin's extra pixel on the wrong side after a mirroring
    turn, EXIF 6 and 7: a crop one pixel off centre.)"""
    rotated = bool(transformation & int(QImageIOHandler.TransformationRotate90))
    stored = scaled.transposed() if rotated else scaled
    if clip is None:
        return stored, None
    x, y, width, height = clip.x(), clip.y(), clip.width(), clip.height()
    if rotated:  # a quarter turn clockwise took stored (x, y) to (stored height - 1 - y, x)
        x, y, width, height = y, scaled.width() - x - width, height, width
    if transformation & int(QImageIOHandler.TransformationMirror):
        x = stored.width() - x - width
    if transformation & int(QImageIOHandler.TransformationFlip):
        y = stored.height() - y - height
    return stored, QRect(x, y, width, height)


def _downscale(image: QImage, size: QSize) -> QImage:
    if image.size() == size:
        return image
    if image.width() > 2 * size.width() and image.height() > 2 * size.height():
        image = image.scaled(size * 2, Qt.IgnoreAspectRatio, Qt.FastTransformation)
    return image.scaled(size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)


_JPEG_COMMENT = 0xFE
# EXIF orientation (1-8) as Qt's QImageIOHandler::Transformations (the table Qt uses for JPEG).
_EXIF_TO_QT = {1: 0, 2: 1, 3: 3, 4: 2, 5: 6, 6: 4, 7: 5, 8: 7}


class JpegHeader(NamedTuple):
    """What a JPEG's segments before its first scan say."""

    stored: Optional[QSize]  # from the frame header (SOFn); None when there is none
    components: int
    precision: int  # bits a sample
    transformation: int  # the EXIF orientation as a Qt transformation, 0 when none
    progressive: bool  # a progressive frame: its scans are counted, and maybe cut
    arithmetic: bool  # arithmetic-coded (SOF9-11, SOF13-15): refused
    lossless: bool  # lossless (SOF3, 7, 11, 15): refused
    first_scan_at: int  # where the first start-of-scan marker is; -1 when the walk found none
    first_scan_components: int  # how many of the frame's components the first scan codes
    coefficient_bytes: int  # the frame's DCT coefficients, 2 bytes each, 64 a block
    profile_bytes: int  # its ICC colour profile's pieces (APP2 ICC_PROFILE segments)
    # More than MAX_JPEG_SEGMENTS before the first scan: the walk stopped short of the frame.
    too_many_segments: bool
    # Comment segments of the "key: value" form Qt's writer makes of a QImage's texts (the disk
    # cache keeps its metadata there); read only when asked for.
    comments: Dict[str, str]


def read_jpeg_header(data: Body, with_comments: bool = False) -> JpegHeader:
    """The frame header and EXIF orientation of a JPEG, from one walk over its segment headers
    before the first scan (where Qt's plugin reads them too), reading only the EXIF segment
    whole, and with `with_comments` the comment segments.

    Python, not libjpeg-turbo's header parse: a 2.5 us call that gives up the GIL can wait
    milliseconds to get it back while another thread runs Python, and a decoder pays that per
    image.
    """
    stored, components, precision, transformation, progressive = None, 0, 0, 0, False
    arithmetic = lossless = False
    first_scan_at, first_scan_components, coefficient_bytes = -1, 0, 0
    profile_bytes = 0
    comments: Dict[str, str] = {}
    exif_read = False
    too_many_segments = False
    position = 2  # after SOI
    for _ in range(MAX_JPEG_SEGMENTS):
        header = _bytes_at(data, position, 10)
        if header and header[0] != 0xFF:
            # libjpeg skips bytes that are not a marker, with a warning, and reads on: so does
            # this walk, or one stray byte would hide the frame's size and coding from the
            # limits (an arithmetic-coded bomb then held a decoder for 7 s).
            position = _index_of_byte(data, 0xFF, position)
            if position < 0:
                break
            continue
        if len(header) < 4:
            break
        marker = header[1]
        if marker == 0xFF:
            # Fill bytes before the marker, any number of them: skipped at C speed, as one step
            # of the walk's budget.
            position = _last_fill_byte(data, position + 1)
            continue
        if marker in jpeg_scans.MARKERS_WITHOUT_LENGTH:
            # As libjpeg reads them (a stuffed 0xFF00 is discarded; TEM and RSTn stand alone):
            # read as lengths, a restart marker sent the walk into an APP segment's body, to a
            # planted frame header, while libjpeg decoded the real one, a lossless frame that
            # crashed the process.
            position += 2
            continue
        if marker == 0xDA:  # start of scan
            first_scan_at = position
            first_scan_components = header[4] if len(header) > 4 else 0
            break
        length = int.from_bytes(header[2:4], "big")
        if length < 2:
            break
        if marker in jpeg_scans.FRAME_MARKERS and stored is None and len(header) == 10:
            precision, components = header[4], header[9]
            progressive = marker in jpeg_scans.PROGRESSIVE_FRAME_MARKERS
            arithmetic = marker in jpeg_scans.ARITHMETIC_FRAME_MARKERS
            lossless = marker in jpeg_scans.LOSSLESS_FRAME_MARKERS
            stored = QSize(int.from_bytes(header[7:9], "big"), int.from_bytes(header[5:7], "big"))
            sampling = _bytes_at(data, position + 10, 3 * components)
            coefficient_bytes = _coefficient_bytes(stored, sampling)
        elif marker == 0xE2 and header[4:10] == b"ICC_PR":  # a piece of an ICC_PROFILE
            profile_bytes += length - 2
        elif marker == 0xE1 and not exif_read and header[4:10] == b"Exif\0\0":
            exif_read = True
            exif = _bytes_at(data, position + 4, length - 2)
            transformation = _EXIF_TO_QT.get(_exif_orientation(exif), 0)
        elif marker == _JPEG_COMMENT and with_comments:
            # Split where Qt's reader splits them: the key ends at the first ": ", has no space.
            text = _bytes_at(data, position + 4, length - 2).decode("utf-8", "replace")
            name, separator, value = text.partition(": ")
            if separator and " " not in name:
                comments[name] = value
        position += 2 + length
    else:  # the budget ran out before a scan, the data's end or a broken length
        too_many_segments = True
    return JpegHeader(stored, components, precision, transformation, progressive, arithmetic,
                      lossless, first_scan_at, first_scan_components, coefficient_bytes,
                      profile_bytes, too_many_segments, comments)


def _coefficient_bytes(stored: QSize, sampling: bytes) -> int:
    """What libjpeg allocates to keep every DCT coefficient of a frame (jdcoefct.c's whole-image
    buffer), from each component's sampling factors: its blocks, padded to whole MCUs, 128
    bytes each."""
    factors = [(byte >> 4, byte & 0x0F) for byte in sampling[1::3]]
    if not factors or min(min(pair) for pair in factors) < 1:
        # Factors libjpeg refuses; every component at full size is the bound.
        blocks = jpeg_scans.ceil_div(stored.width(), 8) * jpeg_scans.ceil_div(stored.height(), 8)
        return blocks * 128 * max(1, len(factors))
    most_across = max(across for across, _ in factors)
    most_down = max(down for _, down in factors)
    mcus_across = jpeg_scans.ceil_div(stored.width(), 8 * most_across)
    mcus_down = jpeg_scans.ceil_div(stored.height(), 8 * most_down)
    return sum(mcus_across * across * mcus_down * down for across, down in factors) * 128


def jpeg_decode_peak_bytes(header: JpegHeader) -> int:
    """About the most memory libjpeg takes for this frame beyond a few rows: its whole-image
    coefficient buffer, which it keeps when the frame has more than one scan (progressive, or a
    first scan without every component), whatever the scale it decodes at. A 210-byte file of a
    10000x10000 frame whose first scan held one component took 650 MB."""
    several_scans = header.progressive or 0 < header.first_scan_components < header.components
    return header.coefficient_bytes if several_scans else 0


def sequential_scans(data: Body, header: JpegHeader, most: int) -> int:
    """How many scans a sequential JPEG frame has, counting no further than `most` + 1: from a
    walk over its segments and scans to its end of image (jpeg_scans.JpegScans), so an image
    appended after it (a phone's multi-picture file) is not counted, nor the bytes 0xFF 0xD9
    inside a comment between two scans (a search for them ended the count there, and 3,000
    scans after it held a decoder for 7.5 s). Where the walk stops short of the end (a stray
    byte it does not follow, its step limit, a file cut short), every start-of-scan marker from
    the first scan on counts (not an EXIF thumbnail's before it): an end of image found by a
    search is no end, as above, and a cut-short file with an image appended is refused rather
    than a hostile one let through."""
    walk = jpeg_scans.JpegScans(data, most)
    if walk.complete or walk.scans > most:
        return walk.scans
    count, position = 0, header.first_scan_at
    while position >= 0 and count <= most:
        count += 1
        position = _index_of(data, b"\xff\xda", position + 2)
    return count


def _index_of(data: Body, needle: bytes, start: int) -> int:
    """Where `needle` next occurs in `data` from `start`, or -1; no copy of the body."""
    if isinstance(data, QByteArray):
        return data.indexOf(needle, start)
    return data.find(needle, start)


def _last_fill_byte(data: Body, start: int) -> int:
    """Where the run of 0xFF bytes that `start` is in ends (the last one, which precedes the
    marker), found a block at a time."""
    position = start
    while True:
        block = _bytes_at(data, position, 4096)
        rest = block.lstrip(b"\xff")
        if rest or len(block) < 4096:
            return position + len(block) - len(rest) - 1
        position += len(block)


def _index_of_byte(data: Body, byte: int, start: int) -> int:
    return _index_of(data, bytes((byte,)), start)


def _bytes_at(data: Body, start: int, count: int) -> bytes:
    # QByteArray.mid reads through the const API: the body is never copied whole (a non-const
    # access to a shared QByteArray would detach it).
    if isinstance(data, QByteArray):
        return bytes(data.mid(start, count))
    return bytes(data[start:start + count])


def _gif_screen_size(data: Body) -> QSize:
    """The logical screen size a GIF's header declares (empty when the header is short)."""
    header = _bytes_at(data, 0, 10)
    if len(header) < 10:
        return QSize()
    width, height = struct.unpack_from("<HH", header, 6)
    return QSize(width, height)


def _webp_exif_transformation(data: bytes) -> int:
    """The orientation in a WebP file's EXIF chunk, as a Qt transformation (0 when none)."""
    for tag, start, size in _webp_chunks(data):
        if tag == b"EXIF":
            return _EXIF_TO_QT.get(_exif_orientation(data[start:start + size]), 0)
    return 0


# Chunks looked at for an eXIf before the image data: a PNG has a few (IHDR, gAMA, iCCP, ...).
_PNG_CHUNKS_BEFORE_IMAGE = 64


def _png_exif_transformation(data: Body) -> int:
    """The orientation in a PNG's eXIf chunk, as a Qt transformation (0 when none). Only before
    the image data, where browsers read it: one after IDAT is ignored by them too."""
    position = 8
    for _ in range(_PNG_CHUNKS_BEFORE_IMAGE):
        header = _bytes_at(data, position, 8)
        if len(header) < 8 or header[4:8] in (b"IDAT", b"IEND"):
            return 0
        length = int.from_bytes(header[:4], "big")
        if header[4:8] == b"eXIf":
            exif = _bytes_at(data, position + 8, min(length, 65536))
            return _EXIF_TO_QT.get(_exif_orientation(exif), 0)
        position += 12 + length
    return 0


def _exif_orientation(exif: bytes) -> int:
    if exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    order = {b"II": "<", b"MM": ">"}.get(exif[:2])
    if order is None or len(exif) < 8:
        return 0
    try:
        (offset,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, offset)
        for index in range(min(count, 256)):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", exif, offset + 2 + 12 * index)
            if tag == 0x0112 and kind == 3:
                return struct.unpack_from(order + "H", value)[0]
    except struct.error:
        pass
    return 0


def _apply_transformation(image: QImage, transformation: int) -> QImage:
    """What Qt's autoTransform does: mirror and flip first, then turn a quarter clockwise."""
    mirror = bool(transformation & int(QImageIOHandler.TransformationMirror))
    flip = bool(transformation & int(QImageIOHandler.TransformationFlip))
    if mirror or flip:
        image = image.mirrored(mirror, flip)
    if transformation & int(QImageIOHandler.TransformationRotate90):
        image = image.transformed(QTransform().rotate(90))
    return image


def _url_path(url: str) -> str:
    """The URL without its query and fragment, lower-cased, for suffix tests."""
    return url.split("?", 1)[0].split("#", 1)[0].lower()


def _format_hint(url: str, content_type: str) -> bytes:
    path = _url_path(url)
    for suffix, image_format in _FORMATS_BY_SUFFIX.items():
        if path.endswith(suffix):
            return image_format
    return _FORMATS_BY_MEDIA_TYPE.get(content_type.split(";", 1)[0].strip().lower(), b"")


def _format_name_guess(data: bytes, hint: bytes) -> str:
    """A name for the tile if the child dies before it says what it found."""
    if hint:
        return hint.decode()
    if data[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if data[:4] == b"icns":
        return "icns"
    if data[:4] in (b"\0\0\1\0", b"\0\0\2\0"):
        return "ico"
    if data[:1] == b"P" and data[1:2] in b"123456":
        return "pnm"
    return "image"


# ISO base media files ("ftyp" box) by their brand: AVIF and HEIF, which this Qt cannot decode.
_UNSUPPORTED_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIF", b"heix": "HEIF",
                       b"hevc": "HEIF", b"heim": "HEIF", b"heis": "HEIF", b"mif1": "HEIF",
                       b"msf1": "HEIF"}


def _unsupported_format_name(data: bytes) -> str:
    """"AVIF" or "HEIF" for such a file (by its brands) where Qt has no plugin for it (as
    PyQt5's wheels have none), else ""."""
    if data[4:8] != b"ftyp" or data[8:12] not in _UNSUPPORTED_BRANDS:
        return ""
    # A generic major brand (mif1) names AVIF among the compatible ones.
    name = "AVIF" if b"avif" in data[8:64] else _UNSUPPORTED_BRANDS[data[8:12]]
    plugins = {b"AVIF": (b"avif",), b"HEIF": (b"heif", b"heic")}[name.encode()]
    return "" if any(plugin in _qt_image_formats() for plugin in plugins) else name


@functools.lru_cache(maxsize=1)
def _qt_image_formats() -> frozenset:
    """The formats Qt's image plugins read here (a KImageFormats install adds AVIF and HEIF)."""
    return frozenset(bytes(name).lower() for name in QImageReader.supportedImageFormats())


def _looks_like_svg(data: bytes, url: str, content_type: str) -> bool:
    if sniff_in_process_format(data):
        return False  # a PNG named .svg is a PNG: it can reference nothing
    if "svg" in content_type.lower() or _url_path(url).endswith((".svg", ".svgz")):
        return True
    if _looks_like_html(data, content_type):
        return False  # a web page with an inline <svg>: a page, which the server may replace
    head = data[:_SNIFF_BYTES].lower()
    return b"<svg" in head or b"<!doctype svg" in head


def _gzip_start(data: Body) -> bytes:
    """The first _SNIFF_BYTES of what the gzip stream `data` inflates to (b"" if it is not one)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
            _bytes_at(data, 0, 64 * 1024), _SNIFF_BYTES)
    except zlib.error:
        return b""


def _looks_like_html(data: bytes, content_type: str) -> bool:
    head = data[:_HTML_SNIFF_BYTES].lstrip()
    head = head[3:].lstrip().lower() if head.startswith(b"\xef\xbb\xbf") else head.lower()  # BOM
    return head.startswith((b"<!doctype html", b"<html")) or "html" in content_type.lower()


def _not_an_image_reason(data: bytes, content_type: str) -> str:
    if _looks_like_html(data, content_type):
        return "not an image (a web page)"
    if content_type and not content_type.lower().startswith("image/"):
        return f"not an image ({quote_server_words(content_type.split(';')[0])})"
    return "not an image"


def warm_up_decoders() -> None:
    """Load libjpeg-turbo and Qt's image-format plugins before the first real image."""
    from PyQt5.QtGui import QImageReader, QImageWriter

    from . import jpeg_turbo  # noqa: F401  (loads numpy: about 70 ms, better now than mid-load)

    QImageReader.supportedImageFormats()
    pixel = QImage(1, 1, QImage.Format_RGB32)
    pixel.fill(0)
    for image_format in (b"jpeg", b"png"):
        array = QByteArray()
        buffer = QBuffer(array)
        buffer.open(QIODevice.WriteOnly)
        QImageWriter(buffer, image_format).write(pixel)
        buffer.close()
        buffer.open(QIODevice.ReadOnly)
        reader = QImageReader(buffer, image_format)
        with HANDLER_CREATION_LOCK:
            reader.read()
        del reader
        buffer.close()
