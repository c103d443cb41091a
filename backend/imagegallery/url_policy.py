"""Strict parsing of the URL strings a gallery is given.

The list may come from a file someone sent or another QML app, so every entry is parsed here
before anything touches the network: junk, empty strings and schemes outside the allowed set
become a per-row reason instead of an exception.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from PyQt5.QtCore import QUrl

DEFAULT_ALLOWED_SCHEMES = ("http", "https", "file")

# "word:" at the start is a scheme ("javascript:", "data:"), except a Windows drive letter.
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def has_scheme(text: str) -> bool:
    """Whether `text` starts with a URL scheme ("C:\\x" is a drive letter, not a scheme)."""
    return _SCHEME_PREFIX.match(text) is not None


@dataclass(frozen=True)
class ParsedImageUrl:
    """The outcome of parsing one entry: a normalised URL or the reason it was refused."""

    text: str
    url: Optional[str]
    scheme: str = ""
    host_key: str = ""  # "scheme://host:port", the unit connection limits count against
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.url is not None


def parse_image_url(text: str, allowed_schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
                    allow_plain_paths: bool = False) -> ParsedImageUrl:
    """Parse one entry of a URL list. Pure and thread-safe.

    `allow_plain_paths` lets the CLI pass local paths ("photos/a.jpg", "/tmp/b.png"); a model fed
    from QML only takes URLs, so a stray word is never read as a file name.
    """
    allowed = {s.lower() for s in allowed_schemes}
    raw = text if isinstance(text, str) else ""
    stripped = raw.strip()
    if not stripped:
        return ParsedImageUrl(raw, None, error="empty URL")
    if any(ch in stripped for ch in "\r\n\t\0"):
        return ParsedImageUrl(raw, None, error="malformed URL (control characters)")
    if any("\udc80" <= ch <= "\udcff" for ch in stripped):
        # A command-line path whose bytes are not UTF-8 (Python keeps them as lone surrogates):
        # a QUrl cannot carry them, and the tile said "file not found" of a file that is there.
        return ParsedImageUrl(raw, None, error="name is not UTF-8 text (this app cannot open it)")

    if allow_plain_paths and not has_scheme(stripped):
        path = os.path.abspath(os.path.expanduser(stripped))
        stripped = QUrl.fromLocalFile(path).toString()

    # Tolerant, like a browser's address bar: a pasted URL with a space still loads, encoded.
    url = QUrl(stripped, QUrl.TolerantMode)
    if not url.isValid():
        return ParsedImageUrl(raw, None, error="malformed URL")
    scheme = url.scheme().lower()
    if not scheme:
        looks_like_a_path = stripped.startswith(("/", "~", ".")) and not stripped.startswith("//")
        hint = "; a local file is file:///..." if looks_like_a_path else ""
        return ParsedImageUrl(raw, None, error=f"malformed URL (no scheme{hint})")
    if scheme not in allowed:
        return ParsedImageUrl(raw, None, scheme=scheme,
                              error=f"unsupported URL scheme '{scheme}:'")
    if scheme in ("http", "https"):
        host = url.host()
        if not host:
            return ParsedImageUrl(raw, None, scheme=scheme, error="malformed URL (no host)")
        port = url.port(443 if scheme == "https" else 80)
        return ParsedImageUrl(raw, url.toString(QUrl.FullyEncoded), scheme,
                              f"{scheme}://{host.lower()}:{port}")
    if scheme == "file":
        if not url.isLocalFile() or not url.toLocalFile():
            return ParsedImageUrl(raw, None, scheme=scheme, error="malformed file URL")
        return ParsedImageUrl(raw, url.toString(QUrl.FullyEncoded), scheme, "file://")
    # A host app widened the list with a scheme we have no transport for.
    return ParsedImageUrl(raw, None, scheme=scheme, error=f"no transport for '{scheme}:' URLs")
