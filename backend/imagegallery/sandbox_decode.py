"""Decoding the rarer image formats in a child process, so a decoder crash costs one tile.

Qt's plugins for TIFF, ICNS, TGA, ICO/CUR, WBMP, the PNM family, XBM and XPM see little hostile
input in the wild and are less hardened than libjpeg, libpng, giflib-style GIF, libwebp and BMP:
`libtiff_segfault.tif` from the corpus takes the whole process down inside `QImageReader.read()`.
A segfault cannot be caught in-process, so those bytes are decoded here, in a small persistent
child process:

- the parent (one of a loader's sandbox threads, never the GUI thread) sends the bytes and the
  limits through a pipe and gets back the thumbnail as raw pixels plus the original size;
- the child runs the very same header check (pixel budget from `QImageReader.size()`) before any
  read, under an address-space limit (`RLIMIT_AS`) and without core dumps;
- a decode that outlasts its time limit gets the child killed; a child that dies (crash, out of
  memory) is replaced by a fresh one for the next decode. Either way the tile gets a reason
  ("decoder crashed (tiff)", "decoder timed out after 10 s (tiff)") and nothing else is lost.

A few children serve every loader's sandbox threads (`SANDBOX_PROCESSES`); each is recycled after
`MAX_DECODES_PER_CHILD` decodes so a slow leak in a plugin cannot grow without bound.

Protocol (both ways): two little-endian uint32 (JSON header length, payload length), the JSON
header, the payload. The child may send one `{"stage": "format"}` frame before its result, so the
parent can name the format even if the decoder then crashes.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Optional, Tuple

_FRAME = struct.Struct("<II")
# Enough to keep decoding when one child is stuck until its time limit, without a process per
# decode thread: these formats are rare on the web.
SANDBOX_PROCESSES = 2
MAX_DECODES_PER_CHILD = 500
# Python plus Qt start in about 0.2 s; a loaded CI machine can take many times that.
STARTUP_TIMEOUT_S = 30.0
# A fork takes milliseconds: this only bounds a spawning thread gone wrong.
SPAWNER_ANSWER_S = 30.0
# The header of a request or a reply; anything larger is a protocol violation.
_MAX_HEADER_BYTES = 64 * 1024


class SandboxFailure(Exception):
    """The child could not produce an answer (crashed, timed out, protocol error)."""


class _Spawner:
    """Starts the children from one thread that lives as long as the process.

    A child asks to be killed when its parent goes (PR_SET_PDEATHSIG), and Linux means the
    parent *thread*: started from a loader's sandbox thread, which ends with that loader, the
    child died when that loader closed, in the middle of another loader's decode ("decoder
    crashed (tiff)"), since every loader shares the children."""

    def __init__(self):
        self._requests: "queue.Queue[tuple]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            # Started again if it is gone: it failed to start, or this is a forked child.
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._serve, name="ig-sandbox-spawner",
                                          daemon=True)
                thread.start()  # a RuntimeError here reaches the caller, as from Popen
                self._thread = thread
        done, outcome = threading.Event(), []
        self._requests.put((args, kwargs, outcome, done))
        if not done.wait(SPAWNER_ANSWER_S):
            raise TimeoutError("the sandbox's spawning thread did not answer")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _serve(self) -> None:
        while True:
            args, kwargs, outcome, done = self._requests.get()
            try:
                outcome.append(subprocess.Popen(*args, **kwargs))
            except BaseException as error:  # the caller raises it, in its own thread
                outcome.append(error)
            done.set()


_spawner = _Spawner()


# -- parent side -----------------------------------------------------------------------------------

class _Child:
    """One decoder process. Used by one thread at a time (checked out from the pool)."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self.decodes = 0
        self.seen_format = ""  # what the child detected for the decode in progress
        backend = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = backend + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # The child never shows anything: no display connection, no platform plugin needed.
        env["QT_QPA_PLATFORM"] = "offscreen"
        stderr = None if os.environ.get("IMAGEGALLERY_SANDBOX_STDERR") else subprocess.DEVNULL
        self.process = _spawner.popen(
            [sys.executable, "-m", "imagegallery.sandbox_decode", "--serve", str(memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, close_fds=True)
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        os.set_blocking(self._in, False)
        try:
            header, _ = self._read_frame(time.monotonic() + STARTUP_TIMEOUT_S)
            if header.get("stage") != "ready":
                raise SandboxFailure("decoder failed to start")
        except BaseException:
            self.kill()  # not left running, nor its pipes open, by a start that failed
            raise

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the process and close its pipes. Only from the thread that has it checked out,
        or when no thread has: that thread reads and writes the pipes' descriptor numbers, which
        the next file opened anywhere in the process may reuse once closed (stop_process)."""
        self.stop_process()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def stop_process(self) -> None:
        """End the process, leaving the pipes open: the thread in the middle of a request then
        sees the end of its pipe, fails the decode and closes them itself (kill)."""
        if self.process.poll() is None:
            try:
                self.process.kill()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def request(self, header: dict, payload: bytes, timeout_s: float) -> Tuple[dict, bytes]:
        """Send one decode; returns (result header, pixels). `seen_format` names the format the
        child detected, also when the decode then crashes or times out."""
        deadline = time.monotonic() + timeout_s
        self.decodes += 1
        self.seen_format = ""
        encoded = json.dumps(header).encode()
        self._write(_FRAME.pack(len(encoded), len(payload)) + encoded, deadline)
        self._write(payload, deadline)
        while True:
            reply, pixels = self._read_frame(deadline)
            if reply.get("stage") == "format":
                self.seen_format = str(reply.get("format", ""))[:16]
                continue
            return reply, pixels

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            _, writable, _ = select.select([], [self._in], [], remaining)
            if not writable:
                continue
            try:
                written = os.write(self._in, view[:1 << 20])
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise SandboxFailure("crashed") from None
            view = view[written:]

    def _read_exactly(self, count: int, deadline: float) -> bytes:
        chunks, needed = [], count
        while needed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self._out], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._out, min(needed, 1 << 20))
            if not chunk:
                raise SandboxFailure("crashed")
            chunks.append(chunk)
            needed -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, deadline: float) -> Tuple[dict, bytes]:
        header_length, payload_length = _FRAME.unpack(self._read_exactly(_FRAME.size, deadline))
        if header_length > _MAX_HEADER_BYTES:
            raise SandboxFailure("protocol error")
        header = json.loads(self._read_exactly(header_length, deadline))
        payload = self._read_exactly(payload_length, deadline) if payload_length else b""
        return header, payload


class SandboxDecoder:
    """A small pool of decoder processes shared by every decode thread.

    Thread: `decode` may be called from any thread except the GUI thread (it blocks until the child
    answers or the time limit passes). `close` from any thread.
    """

    def __init__(self, processes: int = SANDBOX_PROCESSES):
        self._slots: "queue.Queue[Optional[_Child]]" = queue.Queue()
        for _ in range(processes):
            self._slots.put(None)  # children start lazily: most galleries never need one
        self._lock = threading.Lock()
        self._children = set()
        self._closed = False
        self.crashes = 0  # tests and diagnostics read these
        self.timeouts = 0
        self.spawned = 0

    def decode(self, data: bytes, header: dict, timeout_s: float, memory_bytes: int,
               format_name: str) -> Tuple[dict, bytes]:
        """Run one decode in a child. Raises SandboxFailure with the reason for the tile."""
        child = self._slots.get()
        try:
            if self._closed:
                raise SandboxFailure("decoder stopped")
            if child is not None and (not child.alive() or child.memory_bytes != memory_bytes
                                      or child.decodes >= MAX_DECODES_PER_CHILD):
                self._retire(child)
                child = None
            if child is None:
                child = self._spawn(memory_bytes)
            try:
                reply, pixels = child.request(header, data, timeout_s)
            except TimeoutError:
                self.timeouts += 1
                name = child.seen_format or format_name
                self._retire(child)
                child = None
                raise SandboxFailure(f"decoder timed out after {_seconds(timeout_s)} "
                                     f"({name})") from None
            except (SandboxFailure, ValueError, OSError):
                name = child.seen_format or format_name
                self.crashes += 1
                self._retire(child)
                child = None
                raise SandboxFailure(f"decoder crashed ({name})") from None
            return reply, pixels
        finally:
            if self._closed and child is not None:
                # Stopped by close() while this thread had it (its decode done just before, or
                # refused as "decoder stopped"): its pipes are this thread's to close.
                child.kill()
                child = None
            self._slots.put(child)

    def _spawn(self, memory_bytes: int) -> _Child:
        try:
            child = _Child(memory_bytes)
        except (OSError, RuntimeError, SandboxFailure, TimeoutError, ValueError) as exc:
            raise SandboxFailure(f"cannot start the sandboxed decoder ({type(exc).__name__})") from None
        with self._lock:
            self.spawned += 1
            self._children.add(child)
            if self._closed:
                child.kill()
                raise SandboxFailure("decoder stopped")
        return child

    def _retire(self, child: _Child) -> None:
        child.kill()
        with self._lock:
            self._children.discard(child)

    def live_processes(self) -> int:
        with self._lock:
            return sum(1 for child in self._children if child.alive())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children, self._children = list(self._children), set()
        idle = []
        while True:  # the children no decode has checked out, each slot given back at once
            try:
                idle.append(self._slots.get_nowait())
            except queue.Empty:
                break
        for child in idle:
            if child is not None:
                child.kill()
            self._slots.put(None)
        for child in children:
            if child not in idle:
                # A decode thread has it. Closing its pipes here (as until 2026-11-28, at exit)
                # let a file the disk thread opened next take their descriptor numbers, which
                # that thread then read or wrote as the child's.
                child.stop_process()


_shared: Optional[SandboxDecoder] = None
_shared_lock = threading.Lock()


def shared_sandbox() -> SandboxDecoder:
    """The process-wide sandbox every loader uses (children are few and shared)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = SandboxDecoder()
            atexit.register(_shared.close)
        return _shared


def _seconds(value: float) -> str:
    from .units import format_seconds

    return format_seconds(value)


# -- child side ------------------------------------------------------------------------------------

def _limit_resources(memory_bytes: int) -> None:
    import resource

    # A crash is expected now and then; a core file per crash would fill the disk instead.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
        # The budget is on top of what Python and Qt already mapped, so it means "what a decode
        # may allocate", whatever the platform's baseline.
        baseline = 0
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmSize:"):
                        baseline = int(line.split()[1]) * 1024
        except OSError:
            pass
        limit = baseline + memory_bytes
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return  # elsewhere the closed stdin pipe ends the child once it is idle
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _read_exactly(stream, count: int) -> Optional[bytes]:
    data = stream.read(count)
    if data is None or len(data) < count:
        return None
    return data


def _serve(memory_bytes: int) -> None:
    _die_with_parent()
    # Library chatter (libtiff warnings) must not corrupt the protocol on stdout.
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    stdin = sys.stdin.buffer

    from PyQt5.QtGui import QGuiApplication, QImageReader

    from .decode import decode_in_this_process

    # The same application type the parent has, so plugins behave as they were measured there;
    # the offscreen platform needs no display.
    application = QGuiApplication(["imagegallery-sandbox"])  # noqa: F841
    # Load every image plugin now, so the memory limit below counts decoding, not start-up.
    QImageReader.supportedImageFormats()
    _limit_resources(memory_bytes)

    def send(header: dict, payload: bytes = b"") -> None:
        encoded = json.dumps(header).encode()
        protocol_out.write(_FRAME.pack(len(encoded), len(payload)) + encoded)
        if payload:
            protocol_out.write(payload)

    # Tests prove the isolation with a real crash and a real hang; no file in the corpus still
    # crashes Qt once readers die before their buffers. Only the environment can turn this on.
    test_faults = os.environ.get("IMAGEGALLERY_SANDBOX_TEST_FAULTS") == "1"

    send({"stage": "ready"})
    while True:
        frame = _read_exactly(stdin, _FRAME.size)
        if frame is None:
            return  # the parent closed the pipe: time to go
        header_length, payload_length = _FRAME.unpack(frame)
        header = json.loads(_read_exactly(stdin, header_length) or b"{}")
        data = _read_exactly(stdin, payload_length) if payload_length else b""
        if data is None:
            return
        if test_faults and data.startswith(b"IMAGEGALLERY-TEST-SEGFAULT"):
            send({"stage": "format", "format": "test"})
            os.kill(os.getpid(), signal.SIGSEGV)
        if test_faults and data.startswith(b"IMAGEGALLERY-TEST-HANG"):
            send({"stage": "format", "format": "test"})
            time.sleep(3600)
        send(*decode_in_this_process(data, header, on_format=lambda name: send(
            {"stage": "format", "format": name})))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        _serve(int(sys.argv[2]))
    else:
        print("internal: started by imagegallery to decode images in a separate process",
              file=sys.stderr)
        sys.exit(2)
