"""Decoding from several threads at once, and reading the disk cache beside them, never deadlocks.

Qt makes a reader's handler under a global mutex while probing the device, and a QBuffer made in
Python needs the GIL for that probe: without care, one thread holding the GIL waits for the mutex
while the thread inside waits for the GIL. Without the fix this child process hung on every run;
so it did when the disk cache read its PNGs through a QBuffer made in Python (five runs of five).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_four_threads_decoding_at_once_all_finish(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    try:
        run = subprocess.run([sys.executable, os.path.join(HERE, "concurrent_decodes.py"), "300",
                              str(tmp_path / "cache")],
                             env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("decoding from four threads deadlocked (no exit in 60 s)") from None
    assert run.returncode == 0, run.stderr[-2000:]
    assert "decoded 1200, read 300 from the disk cache, failed 0" in run.stdout
