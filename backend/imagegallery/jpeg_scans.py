"""A progressive JPEG cut down to the scans that a 1/8-scale decode reads.

At 1/8 scale libjpeg makes each 8x8 block of a component into one pixel from its DC coefficient
alone, but it still entropy-decodes every scan of the file first. In a progressive JPEG the AC
scans are most of the bytes and most of the decode time: a 1600x1200 progressive photo took
14-29 ms to decode to a 187x140 thumbnail, against 4.6 ms for the same photo saved as baseline.
Given only the scans it needs, it takes 2.5-6.5 ms and gives the same pixels
(tests/test_jpeg_scans.py). Many sites and CDNs serve their JPEGs progressive.

Two details of libjpeg (and libjpeg-turbo) decide what must stay:
- At 1/8 scale, a subsampled component, like the chroma of a 4:2:0 file, is decoded with a
  larger inverse DCT instead of being upsampled afterwards (jdmaster.c), and that reads AC
  coefficients. Such components keep all their scans.
- When AC coefficients of a progressive file are missing, libjpeg "block-smooths" the image: it
  guesses them, and in libjpeg-turbo the DC too, from neighbouring blocks (jdcoefct.c). That
  changes the pixels and costs more time than the dropped scans saved. So for each component
  whose AC scans were dropped, an empty AC scan for coefficients 1-9 (the ones smoothing looks
  at) is added. It is made of end-of-band runs, and it tells libjpeg those coefficients are
  known to be zero.

The same walk counts the scans, for the decoder's limit on them (LoadLimits.max_jpeg_scans).

Everything here is byte work on the caller's thread (a decoder). It reads each segment header
and finds each scan's end, so it costs about 1 ms per MB. Anything unexpected means no cut, and
the caller decodes the whole file: arithmetic coding, restart intervals, a truncated file, no
progressive frame.
"""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

# A marker that can end a scan's entropy-coded data: not a stuffed 0xFF00, not a restart
# marker (0xD0-0xD7), not a fill byte (0xFF).
_MARKER_AFTER_SCAN = re.compile(rb"\xff[\x01\xc0-\xcf\xd8-\xfe]")
# The frame header markers: SOF0-SOF15 but for DHT, JPG and DAC, which share their range.
FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
SOF_PROGRESSIVE_HUFFMAN = 0xC2
# Progressive frames, Huffman or arithmetic coded: the ones whose scan count is unbounded.
PROGRESSIVE_FRAME_MARKERS = frozenset({SOF_PROGRESSIVE_HUFFMAN, 0xC6, 0xCA, 0xCE})
# Arithmetic-coded frames (SOF9-11, SOF13-15).
ARITHMETIC_FRAME_MARKERS = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Lossless frames (SOF3, SOF7, SOF11, SOF15): no DCT, so no decode at a reduced scale.
LOSSLESS_FRAME_MARKERS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_SOS, _EOI, _DRI = 0xDA, 0xD9, 0xDD
# Markers libjpeg reads with no length after them: a stuffed 0xFF00 (discarded), TEM and RST0-7.
MARKERS_WITHOUT_LENGTH = frozenset({0x00, 0x01, *range(0xD0, 0xD8)})
# The coefficients libjpeg's block smoothing reads (zigzag 1-9, jdcoefct.c SAVED_COEFS).
_SMOOTHED_LAST_COEFFICIENT = 9
# AC Huffman table 0 with fifteen 4-bit codes, 0000-1110, for EOB0-EOB14: EOBr is a run of
# 2**r to 2**(r+1) - 1 blocks, its length past 2**r in the r bits after the code.
_END_OF_BAND_TABLE = (b"\xff\xc4" + (2 + 1 + 16 + 15).to_bytes(2, "big") + b"\x10"
                      + bytes([0, 0, 0, 15] + [0] * 12) + bytes(run << 4 for run in range(15)))
_LONGEST_END_OF_BAND_RUN = 2 ** 15 - 1


class _Component(NamedTuple):
    identifier: int
    blocks: int  # 8x8 blocks in its scans
    needs_ac: bool  # read by the inverse DCT libjpeg uses for it at 1/8 scale


class _Segment(NamedTuple):
    marker: int
    start: int
    end: int  # past the segment, and for a scan past its entropy-coded data
    first_coefficient: int = 0  # of a scan: 0 for a DC scan
    components: Tuple[int, ...] = ()  # of a scan


class JpegScans:
    """The segments of a JPEG, from one walk over them: how many scans it has (for the
    decoder's scan limits) and, for a progressive one, the file cut down for a 1/8-scale decode.

    The walk stops after `max_scans` + 1 scans: past that the count is all that matters. It
    reads a QByteArray in place.
    """

    def __init__(self, data, max_scans: int):
        self._data = memoryview(data)
        self._segments: List[_Segment] = []
        self.scans = 0
        self.complete = False  # the walk reached the end-of-image marker
        try:
            self._walk(max_scans)
        except (IndexError, ValueError):  # a segment running past the end, a malformed header
            self.complete = False

    def _walk(self, max_scans: int) -> None:
        data = self._data
        if data[:2] != b"\xff\xd8":
            return
        position = 2
        # Tables and markers between scans are a few per scan; thousands of them are as hostile
        # as thousands of scans, and walking them is Python time.
        for _ in range(4 * max_scans + 64):
            if data[position] != 0xFF:
                return
            marker = data[position + 1]
            if marker == 0xFF:  # a fill byte before a marker
                position += 1
                continue
            if marker == _EOI:
                self.complete = True
                return
            if marker in MARKERS_WITHOUT_LENGTH:  # as libjpeg reads them: see read_jpeg_header
                position += 2
                continue
            end = position + 2 + int.from_bytes(data[position + 2:position + 4], "big")
            if end > len(data):
                return
            if marker != _SOS:
                self._segments.append(_Segment(marker, position, end))
                position = end
                continue
            self.scans += 1
            if self.scans > max_scans:
                return
            scan_end = _MARKER_AFTER_SCAN.search(data, end)
            if scan_end is None:
                return  # truncated
            components = tuple(data[position + 5 + 2 * i] for i in range(data[position + 4]))
            self._segments.append(_Segment(marker, position, scan_end.start(), data[end - 3],
                                           components))
            position = scan_end.start()

    def for_eighth_scale(self) -> Optional[bytes]:
        """The file as a smaller JPEG that decodes at 1/8 scale to the same pixels, or None
        when it cannot be cut down (see the module's docstring)."""
        if not self.complete:
            return None
        data = self._data
        components: Dict[int, _Component] = {}
        kept: List = [data[:2]]
        try:
            for segment in self._segments:
                if segment.marker in FRAME_MARKERS:
                    if segment.marker != SOF_PROGRESSIVE_HUFFMAN:
                        return None  # baseline, arithmetic, lossless, hierarchical
                    components = _frame_components(data[segment.start:segment.end])
                elif segment.marker == _DRI and int.from_bytes(
                        data[segment.start + 4:segment.start + 6], "big"):
                    return None  # restart markers inside scans: not handled
                elif segment.marker == _SOS:
                    if not components:
                        return None  # a scan before the frame header
                    if segment.first_coefficient != 0 and not any(
                            components[c].needs_ac for c in segment.components if c in components):
                        continue  # an AC scan nothing reads at 1/8 scale
                kept.append(data[segment.start:segment.end])
        except (IndexError, ValueError):  # a malformed frame header
            return None
        if not components or all(c.needs_ac for c in components.values()):
            return None  # nothing was dropped
        kept.append(_END_OF_BAND_TABLE)
        kept.extend(_empty_ac_scan(c) for c in components.values() if not c.needs_ac)
        kept.append(b"\xff\xd9")
        return b"".join(kept)


def _frame_components(frame_header: memoryview) -> Dict[int, _Component]:
    """Each component of a frame header (SOFn segment), with its size in blocks and whether
    libjpeg reads its AC coefficients at 1/8 scale."""
    height = int.from_bytes(frame_header[5:7], "big")
    width = int.from_bytes(frame_header[7:9], "big")
    sampling: List[Tuple[int, int, int]] = []
    for index in range(frame_header[9]):
        identifier, factors = frame_header[10 + 3 * index], frame_header[11 + 3 * index]
        sampling.append((identifier, factors >> 4, factors & 15))
    if not sampling or width == 0 or height == 0:
        raise ValueError("empty frame")
    most_h = max(h for _, h, _ in sampling)
    most_v = max(v for _, _, v in sampling)
    components = {}
    for identifier, h, v in sampling:
        if h == 0 or v == 0:
            raise ValueError("zero sampling factor")
        # jdmaster.c: starting from the 1x1 IDCT of 1/8 scale, a component gets an IDCT twice
        # as large while that still needs no upsampling.
        idct_size = 1
        while (idct_size < 8 and most_h % (h * idct_size * 2) == 0
               and most_v % (v * idct_size * 2) == 0):
            idct_size *= 2
        # A component's own scans cover its samples, not padded to whole MCUs (jdinput.c).
        columns = ceil_div(ceil_div(width * h, most_h), 8)
        rows = ceil_div(ceil_div(height * v, most_v), 8)
        components[identifier] = _Component(identifier, columns * rows, idct_size > 1)
    return components


def _empty_ac_scan(component: _Component) -> bytes:
    """A scan of `component`'s coefficients 1-9, all zero, coded as end-of-band runs with the
    table above."""
    bits, length = 0, 0
    left = component.blocks
    while left:
        run = min(left, _LONGEST_END_OF_BAND_RUN)
        order = run.bit_length() - 1
        bits = (bits << 4) | order
        bits = (bits << order) | (run - (1 << order))
        length += 4 + order
        left -= run
    padding = -length % 8  # the last byte is padded with 1 bits
    bits = (bits << padding) | ((1 << padding) - 1)
    coded = bits.to_bytes((length + padding) // 8, "big").replace(b"\xff", b"\xff\x00")
    # One component, AC table 0, coefficients 1-9, no successive approximation.
    header = b"\xff\xda\x00\x08\x01" + bytes([component.identifier, 0x00, 1,
                                               _SMOOTHED_LAST_COEFFICIENT, 0x00])
    return header + coded


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
