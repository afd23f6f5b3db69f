"""Order sizes and position limits per symbol, from the configuration and one reference price each. Pure.

A user sizes orders either in base units (``STRATEGY_QTY``, the same number for every symbol, rounded down to
each symbol's step) or in quote currency (``STRATEGY_NOTIONAL``: per symbol the fewest steps worth at least that
much at the reference price, and at least the venue's minimum quantity). The position limit is likewise either
``RISK_MAX_POSITION`` in base units or ``RISK_MAX_POSITION_NOTIONAL`` in quote currency (per symbol the most
whole steps worth at most that much). The reference price is the venue's last price at start-up (Binance) or
``MOCK_START_PRICE`` (the mock feed); sizes are fixed for the run, so a price that moves far enough can still
take an order below the venue's ``minNotional`` later (it is then refused locally, naming the filter).

A configuration whose orders could never pass is refused here, at start-up, with one line naming the symbol,
the filter and the numbers: a quantity that rounds to no step, below the venue's minimum quantity (LOT_SIZE)
or minimum notional (NOTIONAL / MIN_NOTIONAL) at the reference price, or above the position limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from dma_bot.errors import ConfigError
from dma_bot.model.instrument import Instrument

__all__ = ["OrderSizes", "order_sizes"]


@dataclass(frozen=True, slots=True)
class OrderSizes:
    """Per symbol: the steps of every order, and the position limit in steps (None: RISK_MAX_POSITION applies)."""

    quantities: Mapping[str, int]
    max_positions: Mapping[str, int] | None


def order_sizes(
    instruments: Mapping[str, Instrument],
    prices: Mapping[str, Decimal],
    *,
    quantity: Decimal,
    notional: Decimal | None,
    max_position: Decimal,
    max_position_notional: Decimal | None,
) -> OrderSizes:
    """The order size and position limit of every symbol; ConfigError when an order could never pass."""
    quantities: dict[str, int] = {}
    limits: dict[str, int] = {}
    for symbol, instrument in instruments.items():
        price = prices[symbol]
        step = Fraction(instrument.step_size)
        value_of_step = Fraction(price) * step
        min_steps = math.ceil(Fraction(instrument.min_qty) / step)
        if notional is None:
            key, given = "STRATEGY_QTY", f"{quantity}"
            steps = instrument.qty_to_steps(quantity)
            if steps <= 0:
                raise ConfigError(f"STRATEGY_QTY: at least one quantity step of {symbol} ({instrument.step_size}), "
                                  f"was {quantity}")
            if steps < min_steps:
                raise ConfigError(f"STRATEGY_QTY: at least {symbol}'s minimum quantity {instrument.min_qty} "
                                  f"(LOT_SIZE), was {quantity}")
        else:
            key, given = "STRATEGY_NOTIONAL", f"{notional}"
            steps = max(math.ceil(Fraction(notional) / value_of_step), min_steps, 1)
        worth = _decimal(steps * value_of_step)
        size = f"{instrument.format_qty(steps)} {instrument.base_asset or symbol}"
        price_text, min_notional_text = f"{price.normalize():f}", f"{instrument.min_notional.normalize():f}"
        if instrument.min_notional and worth < instrument.min_notional:
            raise ConfigError(
                f"{key}: an order of {symbol} worth at least its minNotional {min_notional_text} at its price "
                f"{price_text}, was {given} ({size} = {worth.normalize():f})"
            )
        if max_position_notional is None:
            limit_key, limit = "RISK_MAX_POSITION", math.floor(Fraction(max_position) / step)
        else:
            limit_key, limit = "RISK_MAX_POSITION_NOTIONAL", math.floor(Fraction(max_position_notional) / value_of_step)
            limits[symbol] = limit
        if steps > limit:
            raise ConfigError(
                f"{key}: an order of {symbol} within {limit_key} ({instrument.format_qty(limit)} at {price_text}), "
                f"was {given} ({size}): every order would be refused (max_position)"
            )
        quantities[symbol] = steps
    return OrderSizes(quantities, limits if max_position_notional is not None else None)


def _decimal(value: Fraction) -> Decimal:
    """An exact Fraction with a terminating decimal expansion (steps x price x step) as a Decimal."""
    return Decimal(value.numerator) / Decimal(value.denominator)
