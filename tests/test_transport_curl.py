"""CurlTransport on its own: threading, the contract's promises, and what goes on the wire."""
import gzip
import threading
import time

import pycurl
import pytest
from PyQt5.QtCore import QCoreApplication, QElapsedTimer, Qt

from imagegallery.remedy import Remedy
from imagegallery.transport.base import (INSECURE_REDIRECT_MESSAGE, TOO_MANY_REDIRECTS_MESSAGE,
                                         ErrorKind, TransferRequest, TransportOptions)
from imagegallery.transport.curl import PROGRESS_MIN_INTERVAL_S, CurlTransport, curl_error
from tls_servers import AsgiImageServer

CAP = 50 * 1024 * 1024


class Recorder:
    """Everything a transport emitted, and on which thread it arrived."""

    def __init__(self, transport):
        self.started, self.progress, self.finished = [], [], {}
        self.threads = set()
        transport.responseStarted.connect(self._on_started)
        transport.progress.connect(self._on_progress)
        transport.finished.connect(self._on_finished)

    def _on_started(self, rid, status, total):
        self.threads.add(threading.current_thread())
        self.started.append((rid, status, total))

    def _on_progress(self, rid, received, total):
        self.threads.add(threading.current_thread())
        self.progress.append((rid, received, total))

    def _on_finished(self, result):
        self.threads.add(threading.current_thread())
        assert result.request_id not in self.finished, "finished twice"
        self.finished[result.request_id] = result

    def ids(self):
        return ({rid for rid, *_ in self.started} | {rid for rid, *_ in self.progress}
                | set(self.finished))


@pytest.fixture
def make_transport():
    """Transports closed at teardown. Request it after the server fixtures, so clients close
    their connections before the servers stop."""
    made = []

    def make(**options):
        transport = CurlTransport(TransportOptions(**options))
        made.append(transport)
        return transport, Recorder(transport)

    yield make
    for transport in made:
        transport.close()


def run(qtbot, transport, recorder, request_id, url, **fields):
    fields.setdefault("max_response_bytes", CAP)
    fields.setdefault("max_redirects", 5)
    transport.start(TransferRequest(request_id, url, **fields))
    qtbot.waitUntil(lambda: request_id in recorder.finished, timeout=5000)
    return recorder.finished[request_id]


def hold(server, path):
    """A route that answers only when the test says so; returns (entered, release)."""
    entered, release = threading.Event(), threading.Event()

    def handler(request):
        entered.set()
        release.wait(5)
        try:
            request._send(200, b"late", "image/png")
        except OSError:
            pass

    server.add_handler(path, handler)
    return entered, release


def test_worker_thread_starts_lazily_and_signals_arrive_on_the_gui_thread(qtbot, make_transport,
                                                                         image_server):
    transport, recorder = make_transport()
    assert transport.worker_thread is None
    url = image_server.add("/a.bin", b"x" * 1000, "application/octet-stream")
    for rid in (1, 2, 3):
        transport.start(TransferRequest(rid, url, CAP, 5))
    qtbot.waitUntil(lambda: len(recorder.finished) == 3, timeout=5000)
    assert recorder.threads == {threading.main_thread()}
    assert transport.worker_thread.is_alive()
    assert [t.name for t in threading.enumerate()].count("imagegallery-curl") == 1
    assert all(r.ok and r.body == b"x" * 1000 for r in recorder.finished.values())
    assert transport.in_flight() == 0
    transport.close()
    qtbot.waitUntil(lambda: not transport.worker_thread.is_alive(), timeout=5000)


def test_progress_is_throttled_and_ends_with_the_full_count(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    size = 4 * 1024 * 1024
    url = image_server.add("/big.bin", b"\0" * size, "application/octet-stream")
    began = time.monotonic()
    result = run(qtbot, transport, recorder, 1, url)
    elapsed = time.monotonic() - began
    assert result.ok and len(result.body) == size
    assert recorder.started == [(1, 200, size)]
    counts = [received for _, received, _ in recorder.progress]
    assert counts == sorted(counts) and counts[-1] == size
    assert all(total == size for *_, total in recorder.progress)
    # At most one event per 50 ms, plus the final count: not one per chunk (256 of them here).
    assert len(counts) <= elapsed / PROGRESS_MIN_INTERVAL_S + 2


def test_a_body_sent_a_byte_at_a_time_costs_its_size_not_an_object_a_byte(
        qtbot, make_transport, image_server):
    import tracemalloc

    cap = 1024 * 1024

    def one_byte_chunks(request):
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        piece = b"1\r\nx\r\n" * 65536  # 64 KB of body in 1-byte chunks
        try:
            for _ in range(cap // 65536 + 2):
                request.wfile.write(piece)
            request.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped at its cap
        request.close_connection = True

    transport, recorder = make_transport()
    url = image_server.add_handler("/drip.png", one_byte_chunks)
    tracemalloc.start()
    try:
        transport.start(TransferRequest(1, url, cap, 5))
        qtbot.waitUntil(lambda: 1 in recorder.finished, timeout=60000)  # a million callbacks
        peak = tracemalloc.get_traced_memory()[1]
        result = recorder.finished[1]
    finally:
        tracemalloc.stop()
    assert not result.ok and result.error.kind == ErrorKind.TOO_LARGE
    # A Python object per piece libcurl hands over took several times the cap.
    assert peak < 3 * cap, f"{peak / 2 ** 20:.0f} MB for a {cap / 2 ** 20:.0f} MB cap"


def test_asks_for_identity_and_keeps_a_compressed_body_as_sent(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    compressed = gzip.compress(b"\x89PNG" + b"\0" * 100_000)
    url = image_server.add("/gz", compressed, "image/png", headers={"Content-Encoding": "gzip"})
    result = run(qtbot, transport, recorder, 1, url)
    assert image_server.request_headers["/gz"][0]["Accept-Encoding"] == "identity"
    # The decode stage inflates it, under the byte cap; the transport must not.
    assert result.ok and result.body == compressed and result.content_encoding == "gzip"


def test_conditional_request_gives_not_modified(qtbot, make_transport, image_server):
    transport, recorder = make_transport()

    def handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            request.send_response(304)
            request.send_header("ETag", '"v1"')
            request.send_header("Content-Length", "0")
            request.end_headers()
        else:
            request._send(200, b"body", "image/png", {"ETag": '"v1"'})

    url = image_server.add_handler("/cond", handler)
    first = run(qtbot, transport, recorder, 1, url)
    second = run(qtbot, transport, recorder, 2, url, if_none_match=first.etag)
    assert first.ok and first.etag == '"v1"' and not first.not_modified
    assert second.ok and second.not_modified and second.http_status == 304


def test_exactly_max_redirects_hops_are_followed(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    image_server.add("/end", b"done", "image/png")
    for hop in range(6):
        target = "/end" if hop == 5 else f"/hop{hop + 1}"
        image_server.add(f"/hop{hop}", b"", "text/plain", 302, {"Location": target})
    six_hops = run(qtbot, transport, recorder, 1, image_server.url("/hop0"), max_redirects=6)
    five_allowed = run(qtbot, transport, recorder, 2, image_server.url("/hop0"), max_redirects=5)
    assert six_hops.ok and six_hops.body == b"done"
    assert not five_allowed.ok and five_allowed.error.message == TOO_MANY_REDIRECTS_MESSAGE
    # The server's hops, which it may fix: a manual retry is worth offering.
    assert five_allowed.error.kind is ErrorKind.BROKEN_REDIRECT
    assert five_allowed.error.remedy is Remedy.RETRY


def test_redirect_to_a_raw_utf8_location_is_followed_percent_encoded(qtbot, make_transport,
                                                                    image_server):
    transport, recorder = make_transport()
    image_server.add("/bild-%C3%A4.png", b"umlaut", "image/png")
    # Servers send UTF-8 bytes in Location; http.server writes header text as latin-1.
    raw_location = "/bild-\u00e4.png".encode("utf-8").decode("latin-1")
    url = image_server.add("/moved", b"", "text/plain", 301, {"Location": raw_location})
    result = run(qtbot, transport, recorder, 1, url)
    assert result.ok and result.body == b"umlaut"
    assert image_server.hits["/bild-%C3%A4.png"] == 1


def test_redirect_to_another_scheme_is_refused(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    url = image_server.add("/to-file", b"", "text/plain", 302, {"Location": "file:///etc/passwd"})
    result = run(qtbot, transport, recorder, 1, url)
    assert result.error.kind is ErrorKind.REDIRECT and "file" in result.error.message
    assert result.error.remedy is Remedy.NONE  # the redirect policy's answer, every time


def test_https_to_http_redirect_is_refused(qtbot, https_server, image_server, test_ca,
                                           make_transport):
    transport, recorder = make_transport(ca_file=test_ca.ca_file)
    plain = image_server.add("/img", b"plain", "image/png")
    url = https_server.add_redirect("/down", plain)
    result = run(qtbot, transport, recorder, 1, url)
    assert result.error.message == INSECURE_REDIRECT_MESSAGE
    assert result.error.remedy is Remedy.NONE
    assert image_server.hits["/img"] == 0


def test_server_retry_after_is_kept(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    url = image_server.add("/busy", b"busy", "text/plain", 503, {"Retry-After": "7"})
    result = run(qtbot, transport, recorder, 1, url)
    assert result.error.message == "HTTP 503 Service Unavailable"
    assert result.error.retry_after_s == 7 and result.error.transient


def test_abort_while_waiting_for_the_server_emits_nothing_more(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    entered, release = hold(image_server, "/held")
    transport.start(TransferRequest(1, image_server.url("/held"), CAP, 5))
    qtbot.waitUntil(entered.is_set, timeout=5000)
    transport.abort(1)
    assert transport.in_flight() == 0
    release.set()
    # A later transfer through the same loop finishing proves the loop moved on past request 1.
    url = image_server.add("/after", b"after", "image/png")
    assert run(qtbot, transport, recorder, 2, url).ok
    assert recorder.ids() == {2}


def test_abort_drops_a_result_already_on_its_way(qtbot, make_transport, image_server):
    transport, recorder = make_transport()
    url = image_server.add("/quick", b"quick", "image/png")
    queued = threading.Event()
    # Runs on the worker thread right after the result was queued for the GUI thread.
    transport.worker_signals.finished.connect(lambda result: queued.set(), Qt.DirectConnection)
    transport.start(TransferRequest(1, url, CAP, 5))
    # Block the GUI thread (no event processing) until the result is on its way, then abort.
    assert queued.wait(5)
    transport.abort(1)
    assert run(qtbot, transport, recorder, 2, url).ok
    assert 1 not in recorder.ids()


def test_close_with_transfers_in_flight_returns_and_stops_the_thread(qtbot, make_transport,
                                                                     image_server):
    transport, recorder = make_transport()
    entered, release = hold(image_server, "/held")
    for rid in range(1, 4):
        transport.start(TransferRequest(rid, image_server.url("/held"), CAP, 5))
    qtbot.waitUntil(entered.is_set, timeout=5000)
    transport.close()
    release.set()
    assert transport.in_flight() == 0
    qtbot.waitUntil(lambda: not transport.worker_thread.is_alive(), timeout=5000)
    QCoreApplication.processEvents()  # delivers anything the stopped thread had queued
    assert recorder.finished == {}


def test_close_does_not_wait_for_a_worker_stuck_in_libcurls_cleanup(qtbot, make_transport,
                                                                    image_server, monkeypatch):
    # libcurl's cleanup waits for its DNS lookups: a slow resolver held the GUI thread for 2 s at
    # every transport change and at quit while close() joined the worker.
    from imagegallery.transport import curl

    cleanup_done = threading.Event()
    real_run = curl._Worker.run

    def run_then_slow_cleanup(worker):
        real_run(worker)
        cleanup_done.wait(10)  # as multi.close() waiting for a resolver thread

    monkeypatch.setattr(curl._Worker, "run", run_then_slow_cleanup)
    transport, recorder = make_transport()
    url = image_server.add("/a.png", b"x" * 100, "image/png")
    assert run(qtbot, transport, recorder, 1, url).ok
    timer = QElapsedTimer()
    timer.start()
    transport.close()
    closing_ms = timer.elapsed()
    assert transport.worker_thread.is_alive()
    cleanup_done.set()
    qtbot.waitUntil(lambda: not transport.worker_thread.is_alive(), timeout=5000)
    assert closing_ms < 500  # it joined for 2,000 ms


def test_self_signed_certificate_fails_with_the_reason(qtbot, make_transport, test_ca,
                                                       self_signed_certificate):
    transport, recorder = make_transport(ca_file=test_ca.ca_file)
    server = AsgiImageServer(tls=self_signed_certificate)
    try:
        result = run(qtbot, transport, recorder, 1, server.add("/a.png", b"a"))
    finally:
        server.stop()
    assert result.error.kind is ErrorKind.TLS
    assert result.error.message == "certificate verify failed: self-signed certificate"
    assert not result.error.transient
    assert server.total_hits() == 0


def test_unreadable_ca_file_is_an_error_not_a_silent_fallback(qtbot, https_server, tmp_path,
                                                              make_transport):
    transport, recorder = make_transport(ca_file=str(tmp_path / "missing.pem"))
    result = run(qtbot, transport, recorder, 1, https_server.add("/a.png", b"a"))
    assert result.error.kind is ErrorKind.TLS
    assert result.error.message.startswith("certificate verify failed: cannot read CA file")


def test_a_long_ca_file_error_is_cut_to_a_line_for_the_tile(qtbot, https_server, tmp_path,
                                                             make_transport):
    ca_file = tmp_path / ("ca-" + "x" * 200 + "\nsecond line.pem")
    transport, recorder = make_transport(ca_file=str(ca_file))
    result = run(qtbot, transport, recorder, 1, https_server.add("/a.png", b"a"))
    assert result.error.kind is ErrorKind.TLS
    assert result.error.message.startswith("certificate verify failed: cannot read CA file (")
    assert "\n" not in result.error.message
    assert len(result.error.message) <= len("certificate verify failed: cannot read CA file ()") + 120
    assert result.error.message.endswith("\u2026)")
    assert https_server.total_hits() == 0


@pytest.mark.parametrize("code", [pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION,
                                  pycurl.E_RECV_ERROR, 9999])
def test_libcurls_own_error_text_is_cut_to_a_line_for_the_tile(code):
    # libcurl's text (up to 256 bytes) can carry a certificate's subject or a proxy's answer,
    # line breaks included; no local server makes libcurl say that much, so the text is given.
    said = "SSL certificate problem: CONNECT " + "subject " * 30 + "\r\nX-Injected: yes"
    message = curl_error(code, said, via_proxy=True).message
    assert "\n" not in message and "\r" not in message
    assert len(message) <= len("certificate verify failed: ") + 120


def test_https_uses_http2_by_alpn_over_one_connection(qtbot, https_server, test_ca, make_transport):
    transport, recorder = make_transport(ca_file=test_ca.ca_file)
    urls = [https_server.add(f"/{i}.png", bytes([i]) * 5000) for i in range(10)]
    for rid, url in enumerate(urls, 1):
        transport.start(TransferRequest(rid, url, CAP, 5))
    qtbot.waitUntil(lambda: len(recorder.finished) == 10, timeout=5000)
    assert all(r.ok and r.http2_used for r in recorder.finished.values())
    assert https_server.http_versions == {"2": 10} and https_server.connections == 1


EXIT_SCRIPT = """
import sys
from PyQt5.QtCore import QEventLoop
from PyQt5.QtGui import QGuiApplication
app = QGuiApplication(sys.argv)
from imagegallery.model import ImageGalleryModel
model = ImageGalleryModel()
model.transport = "curl"
model.urls = [sys.argv[1]]
while model.status_of(0) not in (ImageGalleryModel.Status.Ready, ImageGalleryModel.Status.Error):
    app.processEvents(QEventLoop.WaitForMoreEvents)
print(int(model.status_of(0)), flush=True)
"""  # ends without quitting an application: nothing closes its transport


def test_a_script_that_never_closed_its_curl_transport_exits_without_waiting(tmp_path, image_server):
    # The exit hook waited for curl workers nobody had told to stop: 2 s at every such exit.
    import os
    import subprocess
    import sys

    from imagegallery.transport.curl import _SHUTDOWN_WAIT_S
    from imaging import solid_image_bytes

    url = image_server.add("/red.png", solid_image_bytes("#ff0000"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMAGEGALLERY_CACHE_DIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", EXIT_SCRIPT, url], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "1"  # Ready: the script's last line has run
    ended = time.monotonic()
    process.wait(timeout=60)
    assert process.returncode == 0
    assert time.monotonic() - ended < 0.75 * _SHUTDOWN_WAIT_S
