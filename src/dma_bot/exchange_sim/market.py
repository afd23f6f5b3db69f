"""The simulated market: which symbols the exchange lists, their filters, and how their quotes move.

It owns :class:`SymbolConfig` (one listed symbol: assets, tick and step grid, filter bounds, status, the
starting quote and the size offered at the touch), a table of defaults for common symbols, and
:class:`QuoteWalk`, a seeded random walk on the tick grid that proposes the next top of book. It does no
matching and no I/O: :mod:`dma_bot.exchange_sim.book` applies the quotes proposed here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final

from dma_bot.model.instrument import Instrument

__all__ = [
    "DEFAULT_SYMBOLS",
    "SYMBOL_STATUSES",
    "QuoteWalk",
    "SymbolConfig",
    "TopOfBook",
    "assets_of",
    "parse_symbols",
    "symbol_config",
]

SYMBOL_STATUSES: Final = frozenset({"TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY"})
_QUOTE_ASSETS: Final = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolConfig:
    """One listed symbol. Decimals are built from strings; every bound of 0 switches its check off."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    start_price: Decimal  # the first best bid
    touch_qty: Decimal  # most quantity offered at each side of the touch per quote update
    spread_ticks: int = 1
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal("1000000")
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    bid_multiplier_up: Decimal = Decimal("5")
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal("5")
    ask_multiplier_down: Decimal = Decimal("0.2")
    max_num_orders: int = 200
    status: str = "TRADING"
    order_types: tuple[str, ...] = ("LIMIT", "LIMIT_MAKER", "MARKET")
    instrument: Instrument = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in SYMBOL_STATUSES:
            raise ValueError(f"{self.symbol} status: one of {sorted(SYMBOL_STATUSES)}, was {self.status!r}")
        if self.spread_ticks < 1:
            raise ValueError(f"{self.symbol} spread_ticks: must be >= 1, was {self.spread_ticks}")
        instrument = Instrument(
            symbol=self.symbol,
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_qty=self.min_qty,
            min_notional=self.min_notional,
            base_asset=self.base_asset,
            quote_asset=self.quote_asset,
        )
        object.__setattr__(self, "instrument", instrument)
        if instrument.qty_to_steps(self.touch_qty) < 1:
            raise ValueError(f"{self.symbol} touch_qty: must be at least one step, was {self.touch_qty}")
        if instrument.price_to_ticks(self.start_price) < 1:
            raise ValueError(f"{self.symbol} start_price: must be positive, was {self.start_price}")

    def with_status(self, status: str) -> SymbolConfig:
        return replace(self, status=status)


def _usdt(symbol: str, base: str, price: str, tick: str, step: str, touch: str) -> SymbolConfig:
    return SymbolConfig(
        symbol=symbol,
        base_asset=base,
        quote_asset="USDT",
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step),
        start_price=Decimal(price),
        touch_qty=Decimal(touch),
    )


DEFAULT_SYMBOLS: Final[Mapping[str, SymbolConfig]] = {
    "BTCUSDT": _usdt("BTCUSDT", "BTC", "50000.00", "0.01", "0.00001", "0.05"),
    "ETHUSDT": _usdt("ETHUSDT", "ETH", "3000.00", "0.01", "0.0001", "1"),
    "BNBUSDT": _usdt("BNBUSDT", "BNB", "600.00", "0.01", "0.001", "5"),
    "SOLUSDT": _usdt("SOLUSDT", "SOL", "150.00", "0.01", "0.001", "20"),
}


def symbol_config(name: str) -> SymbolConfig:
    """The default config for ``name``; an unknown symbol gets a generic grid (price 1, tick 0.0001)."""
    if name in DEFAULT_SYMBOLS:
        return DEFAULT_SYMBOLS[name]
    for quote in _QUOTE_ASSETS:
        if name.endswith(quote) and len(name) > len(quote):
            return SymbolConfig(
                symbol=name,
                base_asset=name[: -len(quote)],
                quote_asset=quote,
                tick_size=Decimal("0.0001"),
                step_size=Decimal("0.01"),
                min_qty=Decimal("0.01"),
                start_price=Decimal("1.0000"),
                touch_qty=Decimal("1000"),
                min_notional=Decimal("0"),
            )
    raise ValueError(f"symbol: a name ending in one of {', '.join(_QUOTE_ASSETS)}, was {name!r}")


def parse_symbols(spec: str) -> list[SymbolConfig]:
    """``"BTCUSDT,ETHUSDT,LTCUSDT:BREAK"`` -> configs; ``:STATUS`` lists a symbol that does not trade."""
    configs: list[SymbolConfig] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, status = item.partition(":")
        config = symbol_config(name.upper())
        configs.append(config.with_status(status.upper()) if status else config)
    if not configs:
        raise ValueError(f"symbols: a comma-separated list of symbols, was {spec!r}")
    return configs


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """A proposed quote in ticks and steps."""

    bid: int
    ask: int
    bid_qty: int
    ask_qty: int


class QuoteWalk:
    """Seeded random walk: each step moves the bid by -1, 0 or +1 tick, keeps the spread, redraws sizes."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def first(self, config: SymbolConfig) -> TopOfBook:
        instrument = config.instrument
        bid = instrument.price_to_ticks(config.start_price)
        touch = instrument.qty_to_steps(config.touch_qty)
        return TopOfBook(bid, bid + config.spread_ticks, touch, touch)

    def next(self, config: SymbolConfig, bid: int) -> TopOfBook:
        rng = self._rng
        new_bid = max(1, bid + rng.choice((-1, 0, 1)))
        touch = config.instrument.qty_to_steps(config.touch_qty)
        low = max(1, touch // 4)
        return TopOfBook(new_bid, new_bid + config.spread_ticks, rng.randint(low, touch), rng.randint(low, touch))


def assets_of(configs: Iterable[SymbolConfig]) -> list[str]:
    """Every asset the symbols trade, base assets first, without duplicates."""
    seen: dict[str, None] = {}
    for config in configs:
        seen.setdefault(config.base_asset)
    for config in configs:
        seen.setdefault(config.quote_asset)
    return list(seen)
