"""Clocks passed into the pipeline, so nothing downstream reads the wall clock directly.

Replay of a recording uses the frames' own timestamps; live sources stamp frames with a clock
object, which tests replace with a manual one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (wall time) for stamping captures."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals and backoff."""

    def sleep(self, seconds: float, until: threading.Event | None = None) -> bool:
        """Wait; returns True early if `until` is set."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, until: threading.Event | None = None) -> bool:
        if until is None:
            time.sleep(seconds)
            return False
        return until.wait(seconds)


SYSTEM_CLOCK = SystemClock()
