"""Order sizes and position limits per symbol at a reference price (dma_bot.risk.sizing)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from dma_bot.errors import ConfigError
from dma_bot.model.instrument import Instrument
from dma_bot.risk.sizing import order_sizes

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"),
                 min_notional=Decimal("5"), base_asset="BTC", quote_asset="USDT")
SOL = Instrument(symbol="SOLUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal("5"), base_asset="SOL", quote_asset="USDT")
INSTRUMENTS = {"BTCUSDT": BTC, "SOLUSDT": SOL}
PRICES = {"BTCUSDT": Decimal("50000"), "SOLUSDT": Decimal("150")}


def _sizes(**given: Decimal | None):
    arguments = {"quantity": Decimal("0.001"), "notional": None, "max_position": Decimal("100"),
                 "max_position_notional": None, **given}
    return order_sizes(INSTRUMENTS, PRICES, **arguments)  # type: ignore[arg-type]


def test_notional_sizes_each_symbol_to_the_fewest_steps_worth_it() -> None:
    """12 USDT: 0.00024 BTC (12.0) and 0.080 SOL (12.0); a notional limit becomes each symbol's whole steps."""
    sizes = _sizes(notional=Decimal("12"), max_position_notional=Decimal("500"))

    assert sizes.quantities == {"BTCUSDT": 24, "SOLUSDT": 80}
    assert sizes.max_positions == {"BTCUSDT": 1000, "SOLUSDT": 3333}


def test_notional_rounds_up_and_never_below_the_minimum_quantity() -> None:
    """7 USDT of SOL is 46.67 steps: 47 (7.05); with minQty 0.1 it is 100 steps; 1 USDT of BTC is below
    minNotional."""
    assert _sizes(notional=Decimal("7")).quantities["SOLUSDT"] == 47
    lot = {"SOLUSDT": dataclasses.replace(SOL, min_qty=Decimal("0.1"))}
    assert order_sizes(lot, PRICES, quantity=Decimal(1), notional=Decimal("7"), max_position=Decimal(100),
                       max_position_notional=None).quantities == {"SOLUSDT": 100}
    with pytest.raises(ConfigError, match=r"^STRATEGY_NOTIONAL: an order of BTCUSDT worth at least its minNotional 5 "
                                          r"at its price 50000, was 1 \(0.00002 BTC = 1\)$"):
        _sizes(notional=Decimal("1"))


def test_a_quantity_below_min_notional_at_the_reference_price_is_refused_naming_symbol_and_filter() -> None:
    """STRATEGY_QTY=0.001 is 50 USDT of BTC but 0.15 USDT of SOL: refused, naming SOL and its minNotional."""
    with pytest.raises(ConfigError, match=r"^STRATEGY_QTY: an order of SOLUSDT worth at least its minNotional 5 at its "
                                          r"price 150, was 0.001 \(0.001 SOL = 0.15\)$"):
        _sizes()


def test_a_quantity_below_lot_size_or_a_step_is_refused() -> None:
    lot = {"SOLUSDT": dataclasses.replace(SOL, min_qty=Decimal("0.1"))}
    with pytest.raises(ConfigError, match=r"^STRATEGY_QTY: at least SOLUSDT's minimum quantity 0.1 \(LOT_SIZE\)"):
        order_sizes(lot, PRICES, quantity=Decimal("0.05"), notional=None, max_position=Decimal(100),
                    max_position_notional=None)
    with pytest.raises(ConfigError, match=r"^STRATEGY_QTY: at least one quantity step of SOLUSDT \(0.001\)"):
        _sizes(quantity=Decimal("0.0001"))


def test_an_order_above_the_position_limit_is_refused() -> None:
    """An order larger than its symbol's notional position limit could never pass the position check."""
    with pytest.raises(ConfigError, match=r"^STRATEGY_NOTIONAL: an order of BTCUSDT within RISK_MAX_POSITION_NOTIONAL "
                                          r"\(0.00020 at 50000\), was 12 \(0.00024 BTC\)"):
        _sizes(notional=Decimal("12"), max_position_notional=Decimal("10"))
