"""EquityCurve: a backtest's net PnL over recorded time, its peak and deepest drawdown, in bounded memory.

Owns the curve only (pure, no I/O): the backtest marks it with the net PnL (realized + unrealized at mid -
priced fees, quote currency, exact Decimal) and the net position after every batch of fills and at every
minute boundary of the recorded clock. From the marks it keeps:

* ``peak`` and ``max_drawdown``: the highest net PnL marked (0 before any) and the largest fall from a peak to a
  later mark; exact, over every mark;
* ``minute_closes``: the net PnL at the end of each recorded minute that had a mark (``(minute_start_ns,
  net)``), for per-minute statistics such as a Sharpe ratio; a month is ~43,000 entries;
* ``samples``: the curve for a picture, at most ``max_samples``: when full, each run of four samples keeps its
  lowest and highest net PnL (in time order), so the extremes survive and memory stays flat over any file.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from dma_bot.report_plot import EquitySample

__all__ = ["DEFAULT_MAX_SAMPLES", "MINUTE_NS", "Drawdown", "EquityCurve"]

MINUTE_NS: Final = 60_000_000_000
DEFAULT_MAX_SAMPLES: Final = 100_000
_ZERO: Final = Decimal(0)
_new_tuple: Final = tuple.__new__


class Drawdown:
    """``peak`` and ``max_drawdown`` of the net PnL marked, exactly (what a strategy's books keep)."""

    __slots__ = ("max_drawdown", "peak")

    def __init__(self) -> None:
        self.peak = _ZERO
        self.max_drawdown = _ZERO

    def add(self, net_pnl: Decimal) -> None:
        """One mark's net PnL, in time order."""
        if net_pnl > self.peak:
            self.peak = net_pnl
        elif self.peak - net_pnl > self.max_drawdown:
            self.max_drawdown = self.peak - net_pnl


class EquityCurve(Drawdown):
    __slots__ = ("_max_samples", "_minute", "_minute_net", "minute_closes", "samples")

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 4:
            raise ValueError(f"max_samples: at least 4, was {max_samples}")
        super().__init__()
        self._max_samples = max_samples
        self.samples: list[EquitySample] = []
        self.minute_closes: list[tuple[int, Decimal]] = []
        self._minute: int | None = None  # the start of the minute being marked
        self._minute_net = _ZERO

    def mark(self, ts_ns: int, net_pnl: Decimal, net_position: Decimal) -> None:
        """One mark, in time order."""
        self.add(net_pnl)
        minute = ts_ns - ts_ns % MINUTE_NS
        if minute != self._minute:
            if self._minute is not None:
                self.minute_closes.append((self._minute, self._minute_net))
            self._minute = minute
        self._minute_net = net_pnl
        samples = self.samples
        samples.append(_new_tuple(EquitySample, (ts_ns, net_pnl, net_position)))  # no Python-level __new__
        if len(samples) >= self._max_samples:
            self.samples = _thin(samples)

    def finish(self) -> None:
        """Close the last minute (after the last mark)."""
        if self._minute is not None:
            self.minute_closes.append((self._minute, self._minute_net))
            self._minute = None


def _thin(samples: list[EquitySample]) -> list[EquitySample]:
    """Half the samples: of each run of four, the lowest and the highest net PnL, in time order."""
    kept: list[EquitySample] = []
    for start in range(0, len(samples), 4):
        run = samples[start:start + 4]
        low = min(range(len(run)), key=lambda i: run[i].net_pnl)
        high = max(range(len(run)), key=lambda i: run[i].net_pnl)
        kept.extend(run[i] for i in sorted({low, high}))
    return kept
