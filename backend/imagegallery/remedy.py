"""What may make a failed load go otherwise, decided where the failure is known.

A transport knows it from the error's kind (`TransferError.remedy`), a decoder at each refusal
(`decode.DecodeRefused` and its kinds), the URL rules when they refuse a URL. The loader and
the model act on it (the `retryable` role, the rows loaded again after a settings change) and
never read it back out of the reason a person reads, which can be reworded freely.
"""
from __future__ import annotations

import enum


class Remedy(enum.IntEnum):
    """What may undo a failure. Plain data: any thread may use it."""

    # The server or the network may answer otherwise (a 503, a reset, a body cut short or not an
    # image): a Retry may help.
    RETRY = 0
    # A fixed rule of this client (SVG, a JPEG coding, a bound on a file's segments, scans or
    # chunks, a malformed or refused URL, a refused redirect): every try ends the same.
    NONE = 1
    # A LoadLimits value (pixels, sides, decoder memory, response bytes, progressive scans):
    # loosening it may let the image through.
    LOOSER_LIMITS = 2
    # The transport lacked something (TLS, reading a 103 answer): another transport may not.
    OTHER_TRANSPORT = 3

    @classmethod
    def from_untrusted(cls, value) -> "Remedy":
        """The remedy a sandbox child named, RETRY for anything that names none."""
        try:
            return cls(int(value))
        except (TypeError, ValueError, OverflowError):  # JSON allows Infinity
            return cls.RETRY
