"""The asyncio shell of the strategy stage, and the pure assignment of symbols to workers.

Owns :func:`shard` (which worker owns which symbol) and :class:`StrategyWorker` (drains one inbox of quotes,
each a Tick or a TickBatch of one symbol, through the owning symbol's strategy, ``on_tick`` or ``on_batch``,
and puts each inbox batch's signals downstream in one ``put_many``). It does
not build the strategies (``base.make_strategy``), route ticks into inboxes (the wiring does, using the same
shards) or export metrics: it only keeps plain-int counters that the metrics collector reads.

Under replay (``ordered`` given) a worker also tells risk which quote each signal was made on: it puts each
``(tick, signal)`` pair, and each :class:`~dma_bot.model.events.Watermark` the feed put in its inbox (renamed to
its ``source``), on ``ordered``, in inbox order, for risk to decide in the backtest's order; ``out`` then gets the
plain signals only (the recorder's copy). Live runs take the loop without any of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.model.events import Signal, SignalBatch, Tick, TickBatch, Watermark
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
    ``ticks_seen`` counts quotes taken from the inbox (a TickBatch counts its rows) and ``signals_by_symbol``
    the signals emitted per symbol (counted before the put).
    """

    __slots__ = ("_clock", "_inbox", "_ordered", "_out", "_strategies", "signals_by_symbol", "source",
                 "strategy_name", "ticks_seen")

    def __init__(
        self,
        strategy_name: str,
        strategies: Mapping[str, Strategy],
        inbox: Channel[Tick | TickBatch] | Channel[Tick | TickBatch | Watermark],
        out: Fanout[Signal | SignalBatch],
        clock: Clock,
        *,
        ordered: Fanout[Any] | None = None,
        source: str = "",
    ) -> None:
        """``ordered`` (replay only): where the ``(tick, signal)`` pairs and this worker's watermarks, named
        ``source``, go; both outputs are closed at the end."""
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
        self._ordered = ordered
        self.source = source or strategy_name
        self.ticks_seen = 0
        self.signals_by_symbol = dict.fromkeys(strategies, 0)

    async def run(self) -> None:
        """Process the inbox until every producer closed it, then close ``out`` (and ``ordered``) once."""
        if self._ordered is not None:
            await self._run_replayed(self._ordered)
            return
        inbox = self._inbox
        out = self._out
        strategies = self._strategies
        on_tick_of = {symbol: strategy.on_tick for symbol, strategy in strategies.items()}
        on_batch_of = {symbol: strategy.on_batch for symbol, strategy in strategies.items()}
        signals_by_symbol = self.signals_by_symbol
        time_ns = self._clock.time_ns
        while (batch := await inbox.get_batch()) is not None:
            signals: list[Signal | SignalBatch] = []
            seen = 0
            for item in batch:
                if type(item) is TickBatch:
                    on_batch = on_batch_of.get(item.symbol)
                    if on_batch is None:
                        await self._unowned(item.symbol, signals)
                    seen += len(item)
                    emitted = on_batch(item, time_ns())
                    if emitted is not None:
                        signals_by_symbol[item.symbol] += len(emitted)
                        signals.append(emitted)
                    continue
                on_tick = on_tick_of.get(item.symbol)
                if on_tick is None:
                    await self._unowned(item.symbol, signals)
                seen += 1
                signal = on_tick(item, time_ns())
                if signal is not None:
                    signals_by_symbol[signal.symbol] += 1
                    signals.append(signal)
            self.ticks_seen += seen
            if signals:
                await out.put_many(signals)
        await out.close()

    async def _run_replayed(self, ordered: Fanout[Any]) -> None:
        """The replay loop: tick by tick (a TickBatch, which the replay feed never sends, row by row), each
        signal also paired with its tick on ``ordered``, each feed watermark passed on there behind them."""
        inbox = self._inbox
        out = self._out
        on_tick_of = {symbol: strategy.on_tick for symbol, strategy in self._strategies.items()}
        signals_by_symbol = self.signals_by_symbol
        time_ns = self._clock.time_ns
        source = self.source
        while (batch := await inbox.get_batch()) is not None:
            signals: list[Signal | SignalBatch] = []
            pairs: list[tuple[Tick, Signal] | Watermark] = []
            seen = 0
            for item in batch:
                kind = type(item)
                if kind is Watermark:
                    pairs.append(Watermark(source, item.ts_ns))  # type: ignore[union-attr]
                    continue
                for tick in item.rows() if kind is TickBatch else (item,):  # type: ignore[union-attr]
                    on_tick = on_tick_of.get(tick.symbol)
                    if on_tick is None:
                        await self._unowned(tick.symbol, signals)
                    seen += 1
                    signal = on_tick(tick, time_ns())
                    if signal is not None:
                        signals_by_symbol[signal.symbol] += 1
                        signals.append(signal)
                        pairs.append((tick, signal))
            self.ticks_seen += seen
            if signals:
                await out.put_many(signals)
            if pairs:
                await ordered.put_many(pairs)
        await out.close()
        await ordered.close()

    async def _unowned(self, symbol: str, signals: list[Signal | SignalBatch]) -> NoReturn:
        """A quote of a symbol this worker does not own: a wiring bug. Hand on what was made, then raise."""
        await self._out.put_many(signals)
        raise ValueError(
            f"{self.strategy_name} worker: a tick of one of {sorted(self._strategies)!r}, was a tick of {symbol!r}"
        )
