"""The benchmark's image server: its own process, 127.0.0.1 only, knobs set over HTTP.

hypercorn serves one ASGI app over HTTP/1.1 keep-alive and, on the same port, HTTP/2 with prior
knowledge (h2c; what `Http2DirectAttribute` sends) or h2c upgrade. With --certfile/--keyfile it
serves https instead, HTTP/2 or HTTP/1.1 by ALPN (PyQt5's Qt cannot load OpenSSL 3 here, so Qt
clients fail there: that is the point of the https workload).

Per request it waits `latency` seconds before the headers; per connection it paces the body to
`bandwidth` bytes/s (one clock per connection, so HTTP/2 streams share their connection's link
like they would on a real one). It counts requests, body bytes, connections that carried a
request, and the most requests in flight at once.

Caching headers are an image host's: `Cache-Control: public, max-age=86400`, a strong ETag (a
hash of the file's bytes) and Last-Modified (the file's mtime), so a client's cache is tested
with what a real server allows, not against a `no-store` it would have to ignore. A conditional
request (If-None-Match, else If-Modified-Since) that matches gets a 304 without a body, after the
same latency.

Control (not counted):  GET /_ctl/config?latency=0.1&bandwidth=250000
                        GET /_ctl/stats    GET /_ctl/reset
Files: every file of the corpus at its relative path; a query string is ignored, so
/photo/0001.jpg?n=4203 is a distinct URL (for clients' caches) for the same bytes.
"""
from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import mimetypes
import os
import signal
import time
from typing import Dict, NamedTuple
from urllib.parse import parse_qs

CHUNK = 16 * 1024
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}
# A day, public: what image hosts and CDNs commonly send for images that do not change.
CACHE_CONTROL = b"public, max-age=86400"


class ServedFile(NamedTuple):
    body: bytes
    etag: bytes  # strong: the same bytes, the same tag
    last_modified: bytes  # HTTP date of the file's mtime
    mtime_s: int  # whole seconds, the precision an HTTP date has


class State:
    def __init__(self, files: Dict[str, ServedFile]):
        self.files = files
        self.latency = 0.0
        self.bandwidth = 0.0  # bytes/s per connection; 0 = unlimited
        self.in_flight = 0
        self.reset()

    def reset(self):
        self.requests = 0
        self.bytes = 0
        self.connections = set()
        # A dying client's requests may still be running: keep counting them down, not from 0.
        self.max_in_flight = self.in_flight
        self.http2_requests = 0
        self.not_found = 0
        self.not_modified = 0
        self.link_free_at: Dict[tuple, float] = {}

    def stats(self) -> dict:
        return {"requests": self.requests, "bytes": self.bytes,
                "connections": len(self.connections), "max_in_flight": self.max_in_flight,
                "http2_requests": self.http2_requests, "not_found": self.not_found,
                "not_modified": self.not_modified,
                "latency": self.latency, "bandwidth": self.bandwidth,
                "in_flight": self.in_flight}


def make_app(state: State):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/_ctl/"):
            await _control(state, path, scope.get("query_string", b""), send)
            return
        connection = tuple(scope.get("client") or ("?", 0))
        state.requests += 1
        state.connections.add(connection)
        if scope.get("http_version") == "2":
            state.http2_requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.latency:
                await asyncio.sleep(state.latency)
            served = state.files.get(path.lstrip("/"))
            if served is None:
                state.not_found += 1
                await _reply(send, 404, b"not found", "text/plain")
                return
            validators = [(b"etag", served.etag), (b"last-modified", served.last_modified),
                          (b"cache-control", CACHE_CONTROL)]
            if _not_modified(served, dict(scope.get("headers") or [])):
                state.not_modified += 1
                await send({"type": "http.response.start", "status": 304, "headers": validators})
                await send({"type": "http.response.body", "body": b""})
                return
            body = served.body
            content_type = _TYPES.get(os.path.splitext(path)[1], "application/octet-stream")
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode())] + validators})
            if not state.bandwidth:
                await send({"type": "http.response.body", "body": body})
                state.bytes += len(body)
                return
            for offset in range(0, len(body), CHUNK):
                piece = body[offset:offset + CHUNK]
                # One clock per connection: streams of one h2 connection queue behind each other.
                now = time.monotonic()
                start = max(now, state.link_free_at.get(connection, now))
                done = start + len(piece) / state.bandwidth
                state.link_free_at[connection] = done
                if done > now:
                    await asyncio.sleep(done - now)
                await send({"type": "http.response.body", "body": piece,
                            "more_body": offset + CHUNK < len(body)})
                state.bytes += len(piece)
        finally:
            state.in_flight -= 1

    return app


def _not_modified(served: ServedFile, headers: Dict[bytes, bytes]) -> bool:
    """RFC 9110 13.1: If-None-Match decides when present (weak comparison, as a GET allows);
    If-Modified-Since only without it."""
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")]
        return b"*" in tags or served.etag in tags
    if_modified_since = headers.get(b"if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since.decode("latin-1"))
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC asks
    return since is not None and served.mtime_s <= since.timestamp()


async def _reply(send, status: int, body: bytes, content_type: str):
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _control(state: State, path: str, query: bytes, send):
    params = {k: v[-1] for k, v in parse_qs(query.decode()).items()}
    if path == "/_ctl/config":
        if "latency" in params:
            state.latency = float(params["latency"])
        if "bandwidth" in params:
            state.bandwidth = float(params["bandwidth"])
    elif path == "/_ctl/reset":
        state.reset()
    await _reply(send, 200, json.dumps(state.stats()).encode(), "application/json")


def load_files(root: str) -> Dict[str, ServedFile]:
    """Every image under root, read once, with its validators computed once (not per request)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if os.path.splitext(name)[1] in _TYPES:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    body = handle.read()
                mtime_s = int(os.stat(path).st_mtime)
                files[os.path.relpath(path, root).replace(os.sep, "/")] = ServedFile(
                    body, b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"',
                    email.utils.formatdate(mtime_s, usegmt=True).encode(), mtime_s)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--bandwidth", type=float, default=0.0)
    parser.add_argument("--certfile", default="", help="serve https with this certificate")
    parser.add_argument("--keyfile", default="")
    args = parser.parse_args()

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    state = State(load_files(args.root))
    state.latency, state.bandwidth = args.latency, args.bandwidth
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]  # never reachable from outside this machine
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 120
    config.h2_max_concurrent_streams = 256
    config.backlog = 1024
    # Clients that open hundreds of connections (the naive loop) must not be throttled by us.
    config.max_app_queue_size = 64
    if args.certfile:
        config.certfile, config.keyfile = args.certfile, args.keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
    shutdown = asyncio.Event()

    async def run():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, shutdown.set)
        loop.add_signal_handler(signal.SIGINT, shutdown.set)
        await serve(make_app(state), config, shutdown_trigger=shutdown.wait)

    mimetypes.init()
    asyncio.run(run())


if __name__ == "__main__":
    main()
