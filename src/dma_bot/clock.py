"""Time for the engine. Only this module reads the system clock; everything else is handed a Clock."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "LiveClock", "ManualClock"]


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch (event timestamps)."""
        ...

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds (intervals, rate limits, timers)."""
        ...


class LiveClock:
    """The system clock. Its methods are the ``time`` builtins themselves (no Python frame per read: the
    hot stages read the clock once per tick)."""

    __slots__ = ()

    time_ns = staticmethod(time.time_ns)
    monotonic_ns = staticmethod(time.monotonic_ns)


class ManualClock:
    """A clock that moves only when told to: tests and backtests."""

    __slots__ = ("_now_ns",)

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now_ns = start_ns

    def time_ns(self) -> int:
        return self._now_ns

    def monotonic_ns(self) -> int:
        return self._now_ns

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError(f"advance: must be >= 0, was {ns}")
        self._now_ns += ns

    def set(self, now_ns: int) -> None:
        self._now_ns = now_ns
