"""Every limit a request or a decode is held to, in one immutable record. (The engine's own
budgets, such as cache sizes and queue lengths, are constants beside the code they bound.)

Qt 5.15 protects against almost nothing by itself (no decode allocation limit, no gzip-bomb guard,
no transfer timeout), so each guard lives here with a default chosen for remote thumbnails and a
comment saying why. Model properties and CLI flags build a new record with `dataclasses.replace`.
"""
from __future__ import annotations

from dataclasses import dataclass

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class LoadLimits:
    """Resource limits for one loader. Immutable, so any thread may read it."""

    # Camera originals are 5-25 MB; 50 MB leaves room for large PNGs while a 10 GB lie in
    # Content-Length or an endless body is cut off long before it hurts.
    max_response_bytes: int = 50 * MEGABYTE

    # 100 megapixels is a 400 MB ARGB buffer if a decoder allocates in full (PNG and WebP do);
    # larger declared sizes are refused from the header, before any pixel is allocated.
    max_pixels: int = 100_000_000
    max_side: int = 32_768

    # No response headers within this time: the server accepted and went silent.
    connect_timeout_s: float = 15.0
    # No byte at all for this long, once the body started.
    idle_timeout_s: float = 30.0
    # A server that drips a byte a second never trips the idle timer; after `slow_window_s`
    # a transfer averaging under `min_bytes_per_second` is given up as too slow.
    min_bytes_per_second: int = 1024
    slow_window_s: float = 30.0

    # Browsers allow about 20; five covers CDN hops while a loop fails fast.
    max_redirects: int = 5

    # Transient failures (TransferError.transient; listed in docs/reliability.md) are retried
    # this many times after the first try, with exponential backoff from `retry_base_delay_s`
    # and equal jitter, capped by `retry_max_delay_s` (which also caps a server's Retry-After).
    # One count for all of a request's failures, whatever their kind.
    max_retries: int = 2
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0

    # A progressive JPEG is decoded scan by scan, each scan a pass over the whole image, and an
    # in-process decode cannot be stopped: a small file of thousands of scans holds a decoder
    # for minutes. Encoders write 3-60 scans (libjpeg's default script 10).
    max_jpeg_scans: int = 500
    # ...and since a scan costs in proportion to the image's blocks, not its bytes (one run-length
    # symbol ends a scan for 32,767 blocks), fewer for a larger image: scans x megapixels at most
    # this, never below 64 scans. 500 scans up to 4 MP; 64 at 100 MP, where 499 held a decoder
    # for 5 s.
    max_jpeg_scan_megapixels: int = 2_000

    # Rare formats (TIFF, ICNS, TGA, ICO, PNM, ...) decode in a sandbox process (sandbox_decode.py).
    # A decode running longer than this is killed: a thumbnail of an image inside the pixel budget
    # takes well under a second; a hang must not hold a sandbox child (two serve the process) for ever.
    decode_timeout_s: float = 10.0
    # What one sandboxed decode may allocate on top of the child's start-up footprint (an address
    # space limit): room for a full-size decode inside the pixel budget (400 MB of ARGB plus the
    # decoder's own buffers), not for a bomb.
    decoder_memory_bytes: int = 1024 * MEGABYTE

    # Requests in flight. Six per host is what one QNAM allows and what servers expect from a
    # browser; more per host is honoured by spreading over several QNAMs (see transport/qt.py).
    max_connections_per_host: int = 6
    # Streams per host once the host has answered over HTTP/2 (or h2c was asked for): one
    # connection multiplexes them, so the six-connection etiquette no longer applies. 64 stays
    # under the usual server limit of 100 concurrent streams; on W1 over h2c, 100 or 200 were no
    # faster, and 200 cost the server more CPU and the GUI longer stalls (bench/README.md).
    max_http2_streams_per_host: int = 64
    # Across all hosts: per-host caps bind first; this bounds sockets and buffers when a list
    # spans many hosts.
    max_in_flight: int = 64
