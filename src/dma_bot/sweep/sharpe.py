"""The Sharpe ratio of a backtest's per-minute equity, in exact Decimal arithmetic (the same digits everywhere).

Owns the formula only. The input is the net PnL at each recorded minute's close (``EquityCurve.minute_closes``,
quote currency). The changes are each close minus the one before, the first from 0 (the books start flat);
the ratio is ``mean(changes) / std(changes, ddof=1) * sqrt(525600)``: annualised over the minutes of a
365-day year, as crypto trades around the clock; no risk-free rate. None when there are fewer than
:data:`MIN_CHANGES` changes (an annualised ratio of a few minutes is noise: two minutes of a 50-second recording
gave 32,732) or they do not vary. Rounded to 6 decimal places (28 significant digits inside).
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

__all__ = ["MINUTES_PER_YEAR", "MIN_CHANGES", "per_minute_sharpe"]

MINUTES_PER_YEAR: Final = 525_600
MIN_CHANGES: Final = 10  # minute-to-minute changes, at least: fewer give no Sharpe ratio
_PLACES: Final = Decimal("0.000001")


def per_minute_sharpe(closes: Sequence[Decimal]) -> Decimal | None:
    """Annualised Sharpe ratio of the minute-to-minute changes of ``closes`` (see the module docstring)."""
    if len(closes) < MIN_CHANGES:
        return None
    with decimal.localcontext(prec=28):
        changes = [closes[0], *(b - a for a, b in itertools.pairwise(closes))]
        count = len(changes)
        mean = sum(changes, Decimal(0)) / count
        variance = sum(((c - mean) ** 2 for c in changes), Decimal(0)) / (count - 1)
        if variance == 0:
            return None
        ratio = mean / variance.sqrt() * Decimal(MINUTES_PER_YEAR).sqrt()
        return ratio.quantize(_PLACES)
