"""Reconnect policy and connection watchdog for streaming connections: pure decisions, no I/O, no clock.

:class:`Backoff` gives the delay before reconnect attempt *n*: exponential from ``initial_s``, capped at
``max_s``, with full jitter in ``[delay * (1 - jitter), delay]`` drawn from a seeded ``random.Random``, so a
fleet of daemons does not reconnect in lock-step and tests are deterministic. A connection that stayed up
for ``reset_after_s`` resets the attempt count.

:class:`Watchdog` says, from timestamps it is given, whether a connection must be dropped: silent for
longer than ``stale_after_ns`` (a dead TCP connection can look open for minutes), or older than
``max_age_ns`` (Binance cuts every stream at 24 h: we roll over before that, on our own terms).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Backoff", "Verdict", "Watchdog"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    reset_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"initial_s: from 0 (exclusive) to max_s ({self.max_s}), was {self.initial_s}")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("multiplier: >= 1, and jitter: from 0 to 1")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt`` (1 = the first reconnect)."""
        if attempt < 1:
            raise ValueError(f"attempt: >= 1, was {attempt}")
        ceiling = min(self.max_s, self.initial_s * self.multiplier ** min(attempt - 1, 64))
        return ceiling * (1 - self.jitter * rng.random())


class Verdict(StrEnum):
    OK = "ok"
    STALE = "stale"  # silent for too long
    ROLLOVER = "rollover"  # connection too old: reconnect before the venue cuts it


@dataclass(frozen=True, slots=True, kw_only=True)
class Watchdog:
    stale_after_ns: int
    max_age_ns: int

    def verdict(self, *, connected_ns: int, last_frame_ns: int, now_ns: int) -> Verdict:
        if now_ns - max(last_frame_ns, connected_ns) > self.stale_after_ns:
            return Verdict.STALE
        if now_ns - connected_ns > self.max_age_ns:
            return Verdict.ROLLOVER
        return Verdict.OK

    def next_check_ns(self, *, connected_ns: int, last_frame_ns: int) -> int:
        """The earliest time at which the verdict can change (for the shell's timer)."""
        return min(max(last_frame_ns, connected_ns) + self.stale_after_ns, connected_ns + self.max_age_ns) + 1
