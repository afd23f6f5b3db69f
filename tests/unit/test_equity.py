"""EquityCurve: the exact peak and drawdown over every mark, per-minute closes, bounded samples."""

from __future__ import annotations

import random
from decimal import Context, Decimal

import pytest

from dma_bot.equity import MINUTE_NS, Drawdown, EquityCurve

_EXACT = Context(prec=100)  # Decimal(int).scaleb without rounding


def test_peak_and_max_drawdown_over_marks() -> None:
    curve = EquityCurve()
    for ts, net in enumerate(["1", "5", "2", "7", "-1.5", "3"]):
        curve.mark(ts, Decimal(net), Decimal(0))
    assert curve.peak == Decimal(7)
    assert curve.max_drawdown == Decimal("8.5")  # 7 -> -1.5


def test_a_curve_that_only_falls_draws_down_from_zero() -> None:
    curve = EquityCurve()
    curve.mark(1, Decimal("-2"), Decimal(0))
    curve.mark(2, Decimal("-3"), Decimal(0))
    assert (curve.peak, curve.max_drawdown) == (Decimal(0), Decimal(3))


def test_minute_closes_are_the_last_mark_of_each_minute() -> None:
    curve = EquityCurve()
    curve.mark(10, Decimal(1), Decimal(0))
    curve.mark(MINUTE_NS - 1, Decimal(2), Decimal(0))
    curve.mark(3 * MINUTE_NS + 5, Decimal(4), Decimal(0))
    curve.finish()
    assert curve.minute_closes == [(0, Decimal(2)), (3 * MINUTE_NS, Decimal(4))]


def test_samples_stay_bounded_and_keep_the_extremes_and_the_drawdown() -> None:
    rng = random.Random(3)
    curve = EquityCurve(max_samples=64)
    values = [Decimal(rng.randint(-1000, 1000)) for _ in range(10_000)]
    for ts, value in enumerate(values):
        curve.mark(ts, value, Decimal(0))
    assert len(curve.samples) < 64
    kept = [sample.net_pnl for sample in curve.samples]
    assert max(kept) == max(values) and min(kept) == min(values)
    assert [s.ts_ns for s in curve.samples] == sorted(s.ts_ns for s in curve.samples)


def test_too_few_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="max_samples: at least 4, was 3"):
        EquityCurve(max_samples=3)


def test_drawdown_alone_keeps_the_curves_peak_and_max_drawdown() -> None:
    """A strategy's Drawdown (no samples, no minutes) gives what a full curve marked with the same PnL gives."""
    rng = random.Random(5)
    curve, drawdown = EquityCurve(), Drawdown()
    net = Decimal(0)
    for index in range(2_000):
        net += Decimal(rng.randrange(-500, 501)) / 100
        curve.mark(index * 1_000_000_000, net, Decimal(0))
        drawdown.add(net)
    assert drawdown.max_drawdown > 0
    assert (drawdown.peak, drawdown.max_drawdown) == (curve.peak, curve.max_drawdown)
    fall = Drawdown()
    for value in ("5", "-2.5", "4", "-3"):
        fall.add(Decimal(value))
    assert (fall.peak, fall.max_drawdown) == (Decimal(5), Decimal(8))


def test_integer_marks_are_the_decimal_marks() -> None:
    """mark_units(net * 10**-digits) gives what mark(Decimal) gives: peak, drawdown, minute closes and samples
    (digit for digit), with the digits changing from mark to mark (a finer mark rescales the peak)."""
    rng = random.Random(9)
    by_units, by_decimals = EquityCurve(max_samples=16), EquityCurve(max_samples=16)
    drawdown = Drawdown()
    for index in range(500):
        digits, position_digits = rng.choice([0, 2, 9, 30]), rng.choice([0, 3])
        net, position = rng.randint(-10**digits * 50, 10**digits * 50), rng.randint(-999, 999)
        ts = index * MINUTE_NS // 7
        by_units.mark_units(ts, net, digits, position, position_digits)
        by_decimals.mark(ts, Decimal(net).scaleb(-digits, _EXACT), Decimal(position).scaleb(-position_digits, _EXACT))
        drawdown.add_units(net, digits)
    by_units.finish()
    by_decimals.finish()
    assert by_units.max_drawdown > 0
    assert (by_units.peak, by_units.max_drawdown) == (by_decimals.peak, by_decimals.max_drawdown)
    assert (drawdown.peak, drawdown.max_drawdown) == (by_units.peak, by_units.max_drawdown)
    assert [str(net) for _, net in by_units.minute_closes] == [str(net) for _, net in by_decimals.minute_closes]
    assert len(by_units.minute_closes) > 50
    assert [tuple(map(str, sample)) for sample in by_units.samples] == [
        tuple(map(str, sample)) for sample in by_decimals.samples]
    assert len(by_units.samples) < 16


def test_a_mark_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="equity: a mark must be a finite amount, was NaN"):
        EquityCurve().mark(1, Decimal("NaN"), Decimal(0))
