"""The sandbox's own life cycle (its decodes against real damaged files are in test_corpus.py)."""
import subprocess

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
