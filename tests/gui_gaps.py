"""The GUI thread's longest gap between ticks of a 5 ms timer, for tests that bound it."""
from PyQt5.QtCore import QElapsedTimer, QTimer


class GuiThreadGaps:
    """Ticks a 5 ms timer on the GUI thread while in a `with` block; `longest_ms` is the
    largest gap between two ticks (a GUI thread blocked for 1 s shows a gap of 1,000 ms)."""

    def __init__(self):
        self._gaps = []
        self._clock = QElapsedTimer()
        self._last = 0
        self._ticker = QTimer()
        self._ticker.setInterval(5)
        self._ticker.timeout.connect(self._tick)

    def __enter__(self) -> "GuiThreadGaps":
        self._clock.start()
        self._last = self._clock.elapsed()
        self._ticker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._ticker.stop()

    def _tick(self) -> None:
        now = self._clock.elapsed()
        self._gaps.append(now - self._last)
        self._last = now

    @property
    def longest_ms(self) -> int:
        return max(self._gaps, default=0)
