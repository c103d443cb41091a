"""The benchmark's image server: its own process, 127.0.0.1 only, knobs set over HTTP.

hypercorn serves one ASGI app over HTTP/1.1 keep-alive and, on the same port, HTTP/2 with prior
knowledge (h2c; what `Http2DirectAttribute` sends) or h2c upgrade. With --certfile/--keyfile it
serves https instead, HTTP/2 or HTTP/1.1 by ALPN (PyQt5's Qt cannot load OpenSSL 3 here, so Qt
clients fail there: that is the point of the https workload).

Per request it waits `latency` seconds before the headers; per connection it paces the body to
`bandwidth` bytes/s (one clock per connection, so HTTP/2 streams share their connection's link
like they would on a real one). It counts requests, body bytes, connections that carried a
request, and the most requests in flight at once.

Control (not counted):  GET /_ctl/config?latency=0.1&bandwidth=250000
                        GET /_ctl/stats    GET /_ctl/reset
Files: every file of the corpus at its relative path; a query string is ignored, so
/photo/0001.jpg?n=4203 is a distinct URL (for clients' caches) for the same bytes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import os
import signal
import time
from typing import Dict
from urllib.parse import parse_qs

CHUNK = 16 * 1024
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


class State:
    def __init__(self, files: Dict[str, bytes]):
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
        self.link_free_at: Dict[tuple, float] = {}

    def stats(self) -> dict:
        return {"requests": self.requests, "bytes": self.bytes,
                "connections": len(self.connections), "max_in_flight": self.max_in_flight,
                "http2_requests": self.http2_requests, "not_found": self.not_found,
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
            body = state.files.get(path.lstrip("/"))
            if body is None:
                state.not_found += 1
                await _reply(send, 404, b"not found", "text/plain")
                return
            content_type = _TYPES.get(os.path.splitext(path)[1], "application/octet-stream")
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store")]})
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


def load_files(root: str) -> Dict[str, bytes]:
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if os.path.splitext(name)[1] in _TYPES:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    files[os.path.relpath(path, root).replace(os.sep, "/")] = handle.read()
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
