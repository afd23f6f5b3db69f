"""MarketBoard: the newest top of book per symbol.

Written by exactly one owner (the feed stage, before it hands the tick on) and read by the stages that
need a current mid: risk for its relative price band, positions for unrealized PnL, metrics at scrape
time. Data still flows one way: readers never write.

``last[symbol]`` is the newest Tick, ``mid2s[symbol]`` its bid + ask (what the mid readers read: an int, no
Tick); :meth:`MarketBoard.update` sets both. The backtest's block loop may bring ``mid2s`` up to a row before
``last`` (only a simulated venue's fill reads ``last``, and the loop updates it first).
"""

from __future__ import annotations

from dma_bot.model.events import Tick

__all__ = ["MarketBoard"]


class MarketBoard:
    __slots__ = ("last", "mid2s")

    def __init__(self) -> None:
        self.last: dict[str, Tick] = {}
        self.mid2s: dict[str, int] = {}

    def update(self, tick: Tick) -> None:
        symbol = tick.symbol
        self.last[symbol] = tick
        self.mid2s[symbol] = tick.bid + tick.ask

    def mid2(self, symbol: str) -> int | None:
        """bid + ask in ticks (twice the mid, integral), or None before the first tick."""
        return self.mid2s.get(symbol)
