"""Instrument: exact conversion between Decimal and integer ticks/steps, rounding direction, formatting."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from dma_bot.model import Instrument, Side


def _instrument(tick: str = "0.01", step: str = "0.001") -> Instrument:
    return Instrument(symbol="BTCUSDT", tick_size=Decimal(tick), step_size=Decimal(step))


def test_price_off_grid_rounds_to_passive_side() -> None:
    """A buy rounds down, a sell rounds up: never a more aggressive price than asked."""
    inst = _instrument()
    assert inst.price_to_ticks(Decimal("100.015"), passive_for=Side.BUY) == 10001
    assert inst.price_to_ticks(Decimal("100.015"), passive_for=Side.SELL) == 10002
    assert inst.price_to_ticks(Decimal("100.01"), passive_for=Side.SELL) == 10001


def test_price_off_grid_without_side_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"not a multiple of tick size 0\.01"):
        _instrument().price_to_ticks(Decimal("100.015"))


def test_quantity_rounds_down_to_step() -> None:
    inst = _instrument(step="0.001")
    assert inst.qty_to_steps(Decimal("1.2349")) == 1234
    assert inst.qty_to_steps(Decimal("0.0009")) == 0


def test_format_round_trips_exactly_for_random_values() -> None:
    """Property: formatting ticks/steps and parsing back gives the same integer, for several grids."""
    rng = random.Random(1)
    for tick, step in (("0.01", "0.001"), ("0.00000100", "0.00001000"), ("1", "1"), ("0.5", "0.25"), ("10", "0.1")):
        inst = _instrument(tick, step)
        for _ in range(500):
            ticks = rng.randrange(0, 10**9)
            steps = rng.randrange(0, 10**9)
            assert Decimal(inst.format_price(ticks)) == inst.ticks_to_price(ticks)
            assert inst.price_to_ticks(Decimal(inst.format_price(ticks))) == ticks
            assert inst.qty_to_steps(Decimal(inst.format_qty(steps))) == steps


def test_format_fixed_places() -> None:
    inst = _instrument()
    assert inst.format_price(10001) == "100.01"
    assert inst.format_price(5) == "0.05"
    assert inst.format_qty(10000) == "10.000"
    assert inst.format_qty(-1500) == "-1.500"


def test_notional_is_exact() -> None:
    assert _instrument().notional(10001, 1500) == Decimal("150.01500")


@pytest.mark.parametrize("bad", [Decimal(0), Decimal(-1), Decimal("NaN")])
def test_bad_tick_size_rejected(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="tick_size must be a positive finite Decimal"):
        Instrument(symbol="X", tick_size=bad, step_size=Decimal(1))
