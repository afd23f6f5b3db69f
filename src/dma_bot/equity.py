"""EquityCurve: a backtest's net PnL over recorded time, its peak and deepest drawdown, in bounded memory.

Owns the curve only (pure, no I/O): the backtest marks it with the net PnL (realized + unrealized at mid -
priced fees, quote currency, exact) and the net position after every batch of fills and at every minute
boundary of the recorded clock, as the ledger's integers of ``10**-digits`` (``mark_units``: no Decimal
operation per mark) or as Decimals (``mark``). From the marks it keeps:

* ``peak`` and ``max_drawdown``: the highest net PnL marked (0 before any) and the largest fall from a peak to a
  later mark; exact, over every mark;
* ``minute_closes``: the net PnL at the end of each recorded minute that had a mark (``(minute_start_ns,
  net)``), for per-minute statistics such as a Sharpe ratio; a month is ~43,000 entries;
* ``samples``: the curve for a picture, at most ``max_samples``: when full, each run of four samples keeps its
  lowest and highest net PnL (in time order), so the extremes survive and memory stays flat over any file.
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Final

from dma_bot.report_plot import EquitySample

__all__ = ["DEFAULT_MAX_SAMPLES", "MINUTE_NS", "Drawdown", "EquityCurve"]

MINUTE_NS: Final = 60_000_000_000
DEFAULT_MAX_SAMPLES: Final = 100_000
_EXACT: Final = Context(prec=80, traps=[Inexact, Rounded, InvalidOperation])  # a lost digit is an error
_new_tuple: Final = tuple.__new__


def _units(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(integer, digits)``: ``integer * 10**-digits`` exactly, ``digits`` its decimal places."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"equity: a mark must be a finite amount, was {value}")
    digits = max(0, -exponent)
    return int(_EXACT.scaleb(value, digits)), digits


def _decimal(units: int, digits: int) -> Decimal:
    """``units * 10**-digits`` as a Decimal with ``digits`` places (the inverse of :func:`_units`)."""
    return _EXACT.scaleb(Decimal(units), -digits)


class Drawdown:
    """``peak`` and ``max_drawdown`` of the net PnL marked, exactly (what a strategy's books keep).

    Kept in integers of ``10**-digits``, ``digits`` the most decimal places of any mark so far (the ledger's
    marks are integers already: :meth:`add_units` takes them without a Decimal operation)."""

    __slots__ = ("_digits", "_drawdown", "_peak")

    def __init__(self) -> None:
        self._peak = 0
        self._drawdown = 0
        self._digits = 0

    @property
    def peak(self) -> Decimal:
        return _decimal(self._peak, self._digits)

    @property
    def max_drawdown(self) -> Decimal:
        return _decimal(self._drawdown, self._digits)

    def add(self, net_pnl: Decimal) -> None:
        """One mark's net PnL, in time order."""
        net, digits = _units(net_pnl)
        self.add_units(net, digits)

    def add_units(self, net: int, digits: int) -> None:
        """:meth:`add` of the net PnL ``net * 10**-digits`` (``digits >= 0``)."""
        if digits != self._digits:
            net = self._rescaled(net, digits)
        peak = self._peak
        if net > peak:
            self._peak = net
        elif peak - net > self._drawdown:
            self._drawdown = peak - net

    def _rescaled(self, net: int, digits: int) -> int:
        """``net`` in this drawdown's units; a finer mark makes them finer first."""
        if digits > self._digits:
            factor = 10 ** (digits - self._digits)
            self._peak *= factor
            self._drawdown *= factor
            self._digits = digits
            return net
        return net * 10 ** (self._digits - digits)


class EquityCurve(Drawdown):
    __slots__ = ("_marks", "_max_samples", "_minute", "_minute_digits", "_minute_net", "minute_closes")

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 4:
            raise ValueError(f"max_samples: at least 4, was {max_samples}")
        super().__init__()
        self._max_samples = max_samples
        # per mark (ts_ns, net, net digits, position, position digits): the samples, as integers
        self._marks: list[tuple[int, int, int, int, int]] = []
        self.minute_closes: list[tuple[int, Decimal]] = []
        self._minute: int | None = None  # the start of the minute being marked
        self._minute_net = 0  # its last mark, net * 10**-minute_digits
        self._minute_digits = 0

    @property
    def samples(self) -> list[EquitySample]:
        """The curve for a picture (at most ``max_samples``), in time order."""
        return [_new_tuple(EquitySample, (ts_ns, _decimal(net, net_digits), _decimal(position, position_digits)))
                for ts_ns, net, net_digits, position, position_digits in self._marks]

    def mark(self, ts_ns: int, net_pnl: Decimal, net_position: Decimal) -> None:
        """One mark, in time order."""
        net, net_digits = _units(net_pnl)
        position, position_digits = _units(net_position)
        self.mark_units(ts_ns, net, net_digits, position, position_digits)

    def mark_units(self, ts_ns: int, net: int, net_digits: int, position: int, position_digits: int) -> None:
        """:meth:`mark` of net PnL ``net * 10**-net_digits`` and net position ``position *
        10**-position_digits`` (what ``Ledger.mark_units`` gives)."""
        self.add_units(net, net_digits)
        minute = ts_ns - ts_ns % MINUTE_NS
        if minute != self._minute:
            if self._minute is not None:
                self.minute_closes.append((self._minute, _decimal(self._minute_net, self._minute_digits)))
            self._minute = minute
        self._minute_net = net
        self._minute_digits = net_digits
        marks = self._marks
        marks.append((ts_ns, net, net_digits, position, position_digits))
        if len(marks) >= self._max_samples:
            self._marks = _thin(marks)

    def finish(self) -> None:
        """Close the last minute (after the last mark)."""
        if self._minute is not None:
            self.minute_closes.append((self._minute, _decimal(self._minute_net, self._minute_digits)))
            self._minute = None


def _thin(marks: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """Half the marks: of each run of four, the lowest and the highest net PnL, in time order."""
    kept: list[tuple[int, int, int, int, int]] = []
    for start in range(0, len(marks), 4):
        run = marks[start:start + 4]
        nets = [_decimal(mark[1], mark[2]) for mark in run]
        low = min(range(len(run)), key=nets.__getitem__)
        high = max(range(len(run)), key=nets.__getitem__)
        kept.extend(run[i] for i in sorted({low, high}))
    return kept
