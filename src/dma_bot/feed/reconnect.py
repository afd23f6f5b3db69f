"""The connection watchdog for streaming connections: pure decisions, no I/O, no clock.

:class:`Watchdog` says, from timestamps it is given, whether a connection must be dropped: silent for
longer than ``stale_after_ns`` (a dead TCP connection can look open for minutes), or older than
``max_age_ns`` (Binance cuts every stream at 24 h: we roll over before that, on our own terms). The
delays between reconnects are not decided here but by :class:`dma_bot.retry.Backoff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Verdict", "Watchdog"]


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
