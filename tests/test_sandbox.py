"""The sandbox's own life cycle (its decodes against real damaged files are in test_corpus.py)."""
import subprocess
import sys
import threading

import pytest

from imagegallery import sandbox_decode
from imagegallery.sandbox_decode import SandboxDecoder, SandboxFailure


def test_a_child_that_does_not_start_in_time_is_killed_and_reaped(monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(sandbox_decode.subprocess, "Popen", recording_popen)
    monkeypatch.setattr(sandbox_decode, "STARTUP_TIMEOUT_S", 0.0)  # gives up before "ready"
    decoder = SandboxDecoder(processes=1)
    try:
        with pytest.raises(SandboxFailure, match=r"cannot start the sandboxed decoder \(TimeoutError\)"):
            decoder.decode(b"IMAGEGALLERY", {}, 1.0, 64 * 1024 * 1024, "tga")
    finally:
        decoder.close()
    # Left running before: a process and two pipes per failed start, never waited for.
    [child] = started
    assert child.returncode is not None
    assert child.stdin.closed and child.stdout.closed


# A child that starts and then reads requests for ever, never answering.
_SILENT_CHILD = """
import json, struct, sys
ready = json.dumps({"stage": "ready"}).encode()
sys.stdout.buffer.write(struct.pack("<II", len(ready), 0) + ready)
sys.stdout.buffer.flush()
while sys.stdin.buffer.read(65536):
    pass
"""


def test_closing_leaves_a_decoding_childs_pipes_to_the_thread_using_them(qtbot, monkeypatch):
    # close() (the exit hook) closed them under the decode thread, whose descriptor numbers the
    # next file opened (a disk-cache write) could take: it would read or write that file.
    class SilentSpawner:
        def popen(self, args, **kwargs):
            return subprocess.Popen([sys.executable, "-c", _SILENT_CHILD], **kwargs)

    monkeypatch.setattr(sandbox_decode, "_spawner", SilentSpawner())
    closed_pipes_on = []
    kill = sandbox_decode._Child.kill

    def recording_kill(child):
        closed_pipes_on.append(threading.current_thread().name)
        kill(child)

    monkeypatch.setattr(sandbox_decode._Child, "kill", recording_kill)
    decoder = SandboxDecoder(processes=1)
    failures = []

    def decode():
        try:
            decoder.decode(b"IMAGEGALLERY", {}, 30.0, 64 * 1024 * 1024, "tga")
        except SandboxFailure as failure:
            failures.append(str(failure))

    decoding = threading.Thread(target=decode, name="decoding")
    decoding.start()
    try:
        qtbot.waitUntil(lambda: decoder.spawned == 1, timeout=30000)
    finally:
        decoder.close()
        decoding.join(30)
    assert not decoding.is_alive()
    assert failures in (["decoder crashed (tga)"], ["decoder stopped"])
    assert closed_pipes_on == ["decoding"]


def test_a_child_whose_decode_ended_as_the_sandbox_closed_has_its_pipes_closed(qtbot, monkeypatch):
    # Its thread put it back in its slot with both pipes open, for good.
    class SilentSpawner:
        def popen(self, args, **kwargs):
            return subprocess.Popen([sys.executable, "-c", _SILENT_CHILD], **kwargs)

    monkeypatch.setattr(sandbox_decode, "_spawner", SilentSpawner())
    asked, answer = threading.Event(), threading.Event()

    def answered_once_the_sandbox_closes(child, header, payload, timeout_s):
        asked.set()
        answer.wait(30)
        return {"ok": True}, b""

    monkeypatch.setattr(sandbox_decode._Child, "request", answered_once_the_sandbox_closes)
    decoder = SandboxDecoder(processes=1)
    decoding = threading.Thread(target=decoder.decode, args=(b"x", {}, 30.0, 64 << 20, "tga"))
    decoding.start()
    try:
        qtbot.waitUntil(asked.is_set, timeout=30000)
        decoder.close()
    finally:
        answer.set()
        decoding.join(30)
    assert decoder._slots.get_nowait() is None  # the child is gone from its slot, pipes closed


def _tiff(width, height):
    from PyQt5.QtCore import QBuffer, QByteArray, QIODevice
    from PyQt5.QtGui import QColor, QImage, QImageWriter

    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor("#20a040"))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    writer = QImageWriter(buffer, b"tiff")
    writer.setCompression(1)
    assert writer.write(image)
    return bytes(data)


def test_closing_one_loader_leaves_the_shared_children_to_the_others(qtbot, image_server):
    # A child dies with the thread that started it (PR_SET_PDEATHSIG), and the children were
    # started by a loader's sandbox threads, which end with that loader: the decode another
    # loader had in that child failed as "decoder crashed (tiff)".
    from imagegallery.loader import ImageLoader

    small = [image_server.add(f"/small{index}.tif", _tiff(64, 64), "image/tiff") for index in range(2)]
    large = image_server.add("/large.tif", _tiff(6000, 6000), "image/tiff")
    first, second = ImageLoader(disk_cache_dir=""), ImageLoader(disk_cache_dir="")
    try:
        made = []
        first.thumbnailReady.connect(lambda url, thumbnail: made.append(url))
        for url in small:  # two at once: both children start, from the first loader's threads
            first.load(url, (0, 0))
        qtbot.waitUntil(lambda: len(made) == 2, timeout=30000)
        failed, loaded = [], []
        second.loadFailed.connect(lambda url, reason: failed.append(reason))
        second.thumbnailReady.connect(lambda url, thumbnail: loaded.append(url))
        second.load(large, (0, 0))
        qtbot.waitUntil(lambda: second._sandboxed.pending() == 1, timeout=30000)
        first.close()
        qtbot.waitUntil(lambda: bool(failed or loaded), timeout=30000)
        assert (failed, loaded) == ([], [large])
    finally:
        first.close()
        second.close()
