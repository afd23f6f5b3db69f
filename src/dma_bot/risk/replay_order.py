"""ReplayOrder: a replay's signals put back in the order the backtest decides them, for risk.

The backtest decides signals in the recording's quote order and, for one quote, in STRATEGIES order; the live
engine's strategy workers run concurrently, so their signals reach risk interleaved in scheduling order, and the
token bucket (one for all symbols) makes that order matter. Under replay each signal comes paired with the quote
it was made on, whose ``ts_ns`` the replay feed made strictly increasing in file order (ties of ``ts_event_ns``
included), and each worker passes on the feed's :class:`~dma_bot.model.events.Watermark` behind what it decided
before it. This pure core (no asyncio, no clock) holds the pairs and hands them out sorted by (quote stamp,
strategy's place in STRATEGIES) once every worker's watermark has reached their quote: no later pair can then sort
before them. ``drain`` hands out the rest when the workers are done.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from dma_bot.model.events import Signal, Tick

__all__ = ["ReplayOrder"]

_Held = tuple[int, int, int, Tick, Signal]  # (quote stamp, strategy rank, arrival, quote, signal)


class ReplayOrder:
    """Holds ``(quote, signal)`` pairs from the workers named ``sources`` until their watermarks pass them."""

    __slots__ = ("_arrivals", "_heap", "_horizon", "_marks", "_rank")

    def __init__(self, strategies: Sequence[str], sources: Sequence[str]) -> None:
        """``strategies`` in config order; ``sources`` the name of every worker that sends watermarks."""
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources: distinct worker names, at least one, was {list(sources)!r}")
        self._rank = {name: rank for rank, name in enumerate(strategies)}
        self._marks = dict.fromkeys(sources, -1)
        self._horizon = -1  # the lowest watermark: every pair up to it has arrived
        self._heap: list[_Held] = []
        self._arrivals = 0  # keeps equal keys (the rows of one TickBatch) in arrival order

    def add(self, quote: Tick, signal: Signal) -> None:
        """Hold ``signal``, made on ``quote``. Raises ValueError for a strategy not in ``strategies``."""
        rank = self._rank.get(signal.strategy)
        if rank is None:
            raise ValueError(f"signal.strategy: one of {sorted(self._rank)}, was {signal.strategy!r}")
        self._arrivals += 1
        heapq.heappush(self._heap, (quote.ts_ns, rank, self._arrivals, quote, signal))

    def advance(self, source: str, ts_ns: int) -> list[tuple[Tick, Signal]]:
        """``source`` is done with every quote up to ``ts_ns``: the pairs no unseen pair can precede, in order."""
        marks = self._marks
        previous = marks.get(source)
        if previous is None:
            raise ValueError(f"watermark source: one of {sorted(marks)}, was {source!r}")
        if ts_ns <= previous:
            return []
        marks[source] = ts_ns
        if previous > self._horizon:  # it was not the lowest: the horizon stays
            return []
        self._horizon = horizon = min(marks.values())
        heap = self._heap
        released: list[tuple[Tick, Signal]] = []
        while heap and heap[0][0] <= horizon:
            _, _, _, quote, signal = heapq.heappop(heap)
            released.append((quote, signal))
        return released

    def drain(self) -> list[tuple[Tick, Signal]]:
        """Every pair still held, in order (the workers have closed: nothing else can come)."""
        heap = self._heap
        released = [(quote, signal) for _, _, _, quote, signal in sorted(heap)]
        heap.clear()
        return released

    def __len__(self) -> int:
        """Pairs held."""
        return len(self._heap)
