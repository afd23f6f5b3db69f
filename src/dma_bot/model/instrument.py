"""Instrument: a symbol's price and quantity grid, and every rounding the engine does.

Inside the engine a price is an integer count of ``tick_size`` and a quantity an integer count of
``step_size``; Decimal appears only at the borders (config, wire formats, ledger, JSONL). All rounding
lives here with an explicit direction: a quantity rounds down to the step, a limit price rounds to the
passive side of the tick (a buy down, a sell up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from dma_bot.model.enums import Side
from dma_bot.model.grid import format_units, power_of_ten_places

__all__ = ["Instrument"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A tradable symbol's grid. ``tick_size`` and ``step_size`` are positive Decimals built from strings."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    base_asset: str = ""
    quote_asset: str = ""
    _price_places: int | None = field(init=False, repr=False, compare=False)
    _qty_places: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"{self.symbol}: {name} must be a positive finite Decimal, was {value!r}")
        object.__setattr__(self, "_price_places", power_of_ten_places(self.tick_size))
        object.__setattr__(self, "_qty_places", power_of_ten_places(self.step_size))

    # -- prices -------------------------------------------------------------------------------------------
    def price_to_ticks(self, price: Decimal, *, passive_for: Side | None = None) -> int:
        """Integer ticks for ``price``. Off-grid prices round to the passive side of ``passive_for``
        (buy down, sell up); with no side given an off-grid price is an error."""
        units = price / self.tick_size
        if passive_for is None:
            if units != units.to_integral_value():
                raise ValueError(f"{self.symbol}: price {price} is not a multiple of tick size {self.tick_size}")
            return int(units)
        rounding = ROUND_FLOOR if passive_for is Side.BUY else ROUND_CEILING
        return int(units.to_integral_value(rounding=rounding))

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def format_price(self, ticks: int) -> str:
        """Decimal string of a tick count, exact, without building a Decimal on the fast path."""
        return format_units(ticks, self.tick_size, self._price_places)

    # -- quantities ---------------------------------------------------------------------------------------
    def qty_to_steps(self, quantity: Decimal) -> int:
        """Integer steps for ``quantity``, rounded down to the step (never up: never more than asked)."""
        return int((quantity / self.step_size).to_integral_value(rounding=ROUND_DOWN))

    def steps_to_qty(self, steps: int) -> Decimal:
        return self.step_size * steps

    def format_qty(self, steps: int) -> str:
        return format_units(steps, self.step_size, self._qty_places)

    def notional(self, ticks: int, steps: int) -> Decimal:
        """Exact price * quantity in quote currency."""
        return self.tick_size * self.step_size * (ticks * steps)
