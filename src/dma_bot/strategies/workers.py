"""The asyncio shell of the strategy stage, and the pure assignment of symbols to workers.

Owns :func:`shard` (which worker owns which symbol) and :class:`StrategyWorker` (drains one inbox of ticks
through the owning symbol's strategy and puts each batch's signals downstream in one ``put_many``). It does
not build the strategies (``base.make_strategy``), route ticks into inboxes (the wiring does, using the same
shards) or export metrics: it only keeps plain-int counters that the metrics collector reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.model.events import Signal, Tick
from dma_bot.strategies.base import Strategy

__all__ = ["StrategyWorker", "shard"]


def shard(symbols: Sequence[str], workers: int) -> list[list[str]]:
    """Assign each symbol to exactly one of ``workers`` workers: symbol ``i`` goes to shard ``i % workers``.

    Deterministic (it depends only on the order of ``symbols``, never on ``hash()``), and every shard keeps
    the symbols' order. Only non-empty shards are returned, so with more workers than symbols the result
    has ``len(symbols)`` shards of one symbol each, and ``[]`` for no symbols: start one worker per shard.
    Raises ValueError if ``workers < 1`` or a symbol is listed twice.
    """
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers: an integer >= 1, was {workers!r}")
    if len(set(symbols)) != len(symbols):
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        raise ValueError(f"symbols: each symbol once, was {list(symbols)!r} (repeated: {duplicates!r})")
    return [list(symbols[i::workers]) for i in range(min(workers, len(symbols)))]


class StrategyWorker:
    """Runs one strategy over the symbols it owns: ticks from ``inbox``, signals to ``out``.

    ``strategies`` maps each owned symbol to its strategy instance. A tick for any other symbol is a wiring
    bug and raises ValueError (crashing the task group), as does a mapping whose keys or names disagree.
    ``ticks_seen`` counts ticks taken from the inbox and ``signals_by_symbol`` the signals emitted per
    symbol (counted before the put).
    """

    __slots__ = ("_clock", "_inbox", "_out", "_strategies", "signals_by_symbol", "strategy_name", "ticks_seen")

    def __init__(
        self,
        strategy_name: str,
        strategies: Mapping[str, Strategy],
        inbox: Channel[Tick],
        out: Fanout[Signal],
        clock: Clock,
    ) -> None:
        if not strategies:
            raise ValueError(f"{strategy_name} worker: at least one symbol, was none")
        for symbol, strategy in strategies.items():
            if strategy.symbol != symbol or strategy.name != strategy_name:
                raise ValueError(
                    f"{strategy_name} worker: strategies keyed by their own symbol and named {strategy_name!r},"
                    f" was {strategy.name!r} for {strategy.symbol!r} under key {symbol!r}"
                )
        self.strategy_name = strategy_name
        self._strategies = dict(strategies)
        self._inbox = inbox
        self._out = out
        self._clock = clock
        self.ticks_seen = 0
        self.signals_by_symbol = dict.fromkeys(strategies, 0)

    async def run(self) -> None:
        """Process the inbox until every producer closed it, then close ``out`` once."""
        inbox = self._inbox
        out = self._out
        strategies = self._strategies
        on_tick_of = {symbol: strategy.on_tick for symbol, strategy in strategies.items()}
        signals_by_symbol = self.signals_by_symbol
        time_ns = self._clock.time_ns
        while (batch := await inbox.get_batch()) is not None:
            self.ticks_seen += len(batch)
            signals: list[Signal] = []
            for tick in batch:
                on_tick = on_tick_of.get(tick.symbol)
                if on_tick is None:
                    await out.put_many(signals)
                    raise ValueError(
                        f"{self.strategy_name} worker: a tick of one of {sorted(strategies)!r},"
                        f" was a tick of {tick.symbol!r}"
                    )
                signal = on_tick(tick, time_ns())
                if signal is not None:
                    signals_by_symbol[signal.symbol] += 1
                    signals.append(signal)
            if signals:
                await out.put_many(signals)
        await out.close()
