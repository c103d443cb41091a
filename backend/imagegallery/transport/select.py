"""Which transport carries which URL.

`auto`: plain HTTP/1.1 through Qt; https, and http once h2c is asked for, through libcurl (pycurl,
which brings its own OpenSSL 3 and nghttp2): see transport_name_for. `qt` and `curl` force one
for http(s) alike.
Local files always go through the file transport.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional

from PyQt5.QtCore import QObject, pyqtSignal

from .base import Transport, TransportOptions
# Imported with the loader, not at the first request: the first thumbnail should not wait for
# them (proxy.py imports urllib.request, 15-50 ms, only where a *_proxy variable is set, and the
# warm-up thread does that: environment_proxies in loader._warm_up). The curl transport is not
# imported here: the warm-up thread install() starts imports it, whatever the transport mode
# (loader.warm_up_in_background, through preload_curl_transport).
from .local import LocalFileTransport
from .qt import QtTransport

TRANSPORT_MODES = ("auto", "qt", "curl")
TRANSPORT_ENVIRONMENT_VARIABLE = "IMAGEGALLERY_TRANSPORT"


def preload_curl_transport() -> None:
    """Import the curl transport (pycurl: libcurl, its OpenSSL, nghttp2). Called on the warm-up
    thread (loader.warm_up_in_background): made at the first https URL instead, it cost the GUI
    thread 20-35 ms (linking the libraries, OpenSSL's start-up) inside the setter of a new list."""
    import importlib

    importlib.import_module(".curl", __package__)


def transport_mode_from_environment(default: str = "auto") -> str:
    mode = os.environ.get(TRANSPORT_ENVIRONMENT_VARIABLE, "").strip().lower()
    if mode in TRANSPORT_MODES:
        return mode
    if mode:
        logging.getLogger("imagegallery.transport").warning(
            "%s must be one of %s, not %r: using %r", TRANSPORT_ENVIRONMENT_VARIABLE,
            ", ".join(TRANSPORT_MODES), mode, default)
    return default


def transport_name_for(scheme: str, mode: str, http2_cleartext: bool = False) -> str:
    """Which transport `auto` (or the user's choice) gives a URL of `scheme`.

    Whatever may speak HTTP/2 goes to libcurl: https (HTTP/2 by ALPN) and, once asked for, h2c.
    Qt 5.15's HTTP/2 keeps a header block that never ends (CONTINUATION frames: 2 GB in 2 s) and
    joins the headers an HPACK table expands, quadratically, on the GUI thread (20 KB on the
    wire froze it for minutes); nghttp2 refuses both at once. Plain HTTP/1.1 stays with Qt.
    """
    if scheme == "file":
        return "file"
    if mode in ("qt", "curl"):
        return mode
    if scheme == "https" or http2_cleartext:
        return "curl"
    return "qt"


class TransportSet(QObject):
    """Creates each transport on first use and routes URLs to them. Thread: GUI thread."""

    # A new transport, for its owner to connect to. A signal, not a callback attribute: a bound
    # method stored here made a reference cycle with the loader, so a dropped loader waited for
    # Python's cyclic collector, which may run on any thread, and Qt objects deleted there crashed.
    created = pyqtSignal(QObject)

    def __init__(self, mode: str, options: TransportOptions, parent=None):
        super().__init__(parent)
        if mode not in TRANSPORT_MODES:
            raise ValueError(f"unknown transport '{mode}' (choose {', '.join(TRANSPORT_MODES)})")
        self.mode = mode
        self.options = options
        self._transports: Dict[str, Transport] = {}

    def for_scheme(self, scheme: str, http2_cleartext: bool = False) -> Transport:
        return self._named(transport_name_for(scheme, self.mode, http2_cleartext))

    def fallback_from(self, transport: Transport) -> Optional[Transport]:
        """libcurl, for a transfer `transport` could not finish (Qt without TLS redirected to
        https, Qt and a 103 Early Hints), or None where libcurl is the one that failed or the
        user chose Qt alone."""
        if self.mode == "qt" or transport is self._transports.get("curl"):
            return None
        return self._named("curl")

    def _named(self, name: str) -> Transport:
        transport = self._transports.get(name)
        if transport is None:
            transport = self._create(name)
            self._transports[name] = transport
            self.created.emit(transport)
        return transport

    def _create(self, name: str) -> Transport:
        if name == "file":
            return LocalFileTransport(self)
        if name == "qt":
            return QtTransport(self.options, self, follows_https=self.mode == "qt")
        from .curl import CurlTransport

        return CurlTransport(self.options, self)

    def active(self) -> List[Transport]:
        return list(self._transports.values())

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
