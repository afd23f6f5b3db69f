"""The strategy seam: the :class:`Strategy` protocol, the per-strategy parameters holder and the factory.

Owns the contract every strategy follows and the one place that maps a strategy name to its class. It does
not own any strategy's logic (one module each), the asyncio shell (``workers.py``) or reading the config
(config builds a :class:`StrategyParams` and calls :func:`make_strategy`).

Contract: one instance per (strategy, symbol). ``on_tick`` is synchronous and pure apart from the instance's
own state: no I/O, no clock reads (``now_ns`` is passed in and becomes ``Signal.ts_ns``; ``Signal.ts_event_ns``
is the tick's), no queues, no metrics. It is only ever given ticks of its own ``symbol`` (the caller routes).
Warm-up: no signal until the strategy's window(s) are full. Prices are integer ticks, quantities integer steps.
``on_batch`` is the columnar twin of ``on_tick``: for a :class:`TickBatch` it returns exactly the signals (as one
:class:`SignalBatch`, or None), and leaves exactly the state, that ``on_tick`` over ``batch.rows()`` in order
would, only faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from dma_bot.model.events import IntArray, Signal, SignalBatch, Tick, TickBatch
from dma_bot.strategies.columns import Rows
from dma_bot.strategies.ma_crossover import MA_CROSSOVER, MACrossover, MACrossoverParams
from dma_bot.strategies.mean_reversion import MEAN_REVERSION, MeanReversion, MeanReversionParams
from dma_bot.strategies.vol_breakout import VOL_BREAKOUT, VolBreakout, VolBreakoutParams

__all__ = ["STRATEGY_NAMES", "Strategy", "StrategyParams", "make_strategy"]

STRATEGY_NAMES: Final[tuple[str, ...]] = (MEAN_REVERSION, MA_CROSSOVER, VOL_BREAKOUT)


class Strategy(Protocol):
    """One strategy on one symbol: ticks (one by one or in batches) in, at most one signal per tick out."""

    name: str
    symbol: str
    quantity: int

    def on_tick(self, tick: Tick, now_ns: int) -> Signal | None:
        """Update state with ``tick`` (of ``self.symbol``); return a signal or None."""
        ...

    def on_batch(self, batch: TickBatch, now_ns: int) -> SignalBatch | None:
        """The same result as ``on_tick(tick, now_ns)`` for each ``tick`` of ``batch.rows()`` in order: the
        non-None signals in order as one SignalBatch (None for none), and the same state afterwards."""
        ...

    def signal_rows(self, bid: IntArray, ask: IntArray) -> Rows:
        """The same for any column of quotes (a strategy reads only bid and ask): the rows that signal, in order,
        and whether each is a buy (at its ask; else a sell at its bid), and the same state afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """The parameters of every strategy, each defaulting to the PoC's defaults; config fills what it reads."""

    mean_reversion: MeanReversionParams = field(default_factory=MeanReversionParams)
    ma_crossover: MACrossoverParams = field(default_factory=MACrossoverParams)
    vol_breakout: VolBreakoutParams = field(default_factory=VolBreakoutParams)


def make_strategy(name: str, params: StrategyParams, symbol: str, quantity: int) -> Strategy:
    """Build strategy ``name`` for ``symbol``, trading ``quantity`` steps (> 0) per signal.

    Raises ValueError for an unknown name or a quantity that is not a positive integer."""
    if name == MEAN_REVERSION:
        return MeanReversion(symbol, params.mean_reversion, quantity)
    if name == MA_CROSSOVER:
        return MACrossover(symbol, params.ma_crossover, quantity)
    if name == VOL_BREAKOUT:
        return VolBreakout(symbol, params.vol_breakout, quantity)
    raise ValueError(f"strategy: one of {', '.join(STRATEGY_NAMES)}, was {name!r}")
