"""MarketBoard: the newest top of book per symbol.

Written by exactly one owner (the feed stage, before it hands the tick on) and read by the stages that
need a current mid: risk for its relative price band, positions for unrealized PnL, metrics at scrape
time. Data still flows one way: readers never write.
"""

from __future__ import annotations

from dma_bot.model.events import Tick

__all__ = ["MarketBoard"]


class MarketBoard:
    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: dict[str, Tick] = {}

    def update(self, tick: Tick) -> None:
        self.last[tick.symbol] = tick

    def mid2(self, symbol: str) -> int | None:
        """bid + ask in ticks (twice the mid, integral), or None before the first tick."""
        tick = self.last.get(symbol)
        return None if tick is None else tick.bid + tick.ask
