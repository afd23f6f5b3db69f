"""The mock feed: a seeded random walk of top-of-book quotes per symbol, on integer ticks.

:class:`RandomWalk` is the pure core (no clock, no asyncio): it draws its randomness from numpy in
blocks, so one quote costs a few list lookups and one ``Tick``. :class:`MockFeed` is the shell: it paces
the walk at ``rate`` quotes per second per symbol (0 = as fast as the consumers take them), updates the
MarketBoard, hands each tick to its symbol's fan-out, and on stop closes every output once. The ticks of
one wake-up are handed on together: every channel behind the fan-outs gets its ticks, in order, through
one ``bus.put_each`` (one ``extend`` per channel unless a channel is full) instead of one awaited put per
tick and channel. From ``_COLUMNAR_MIN`` rounds per wake-up on (the unthrottled feed emits ``batch`` rounds at
a time) each symbol's quotes go out as one :class:`TickBatch` made column-wise by
:meth:`RandomWalk.next_rounds` (the same quotes, from the same draws, as the per-quote ``next``), which the
strategies and the recorder process column-wise too.

Like the original, the bid moves by -3..+3 ticks per quote and is floored; unlike it, the spread is
1..``max_spread_ticks`` ticks and the sizes are random, and every symbol walks independently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from dma_bot.bus import Channel, Fanout, put_each
from dma_bot.clock import Clock
from dma_bot.model.events import IntArray, Tick, TickBatch, tick_batch
from dma_bot.model.market import MarketBoard

__all__ = ["MockFeed", "RandomWalk", "RandomWalkParams"]

_BLOCK = 4096
_CHUNK = 128  # draws converted to Python ints at a time for next()
_PACED_BURST = 4  # rounds (one tick per symbol) emitted per event-loop iteration when paced
_SHORT_WAIT_NS = 20_000_000  # pauses up to this long are plain sleeps (stop is seen right after them)
_COLUMNAR_MIN = 16  # rounds from which each symbol's quotes go out as one TickBatch
_new_tuple: Final = tuple.__new__  # builds the Tick NamedTuple without its Python-level __new__


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomWalkParams:
    start_ticks: int
    min_ticks: int
    max_spread_ticks: int = 3
    max_step_ticks: int = 3
    min_size_steps: int = 1
    max_size_steps: int = 5000

    def __post_init__(self) -> None:
        if not 0 < self.min_ticks <= self.start_ticks:
            raise ValueError(f"min_ticks: from 1 to start_ticks ({self.start_ticks}), was {self.min_ticks}")
        if self.max_spread_ticks < 1 or self.max_step_ticks < 0:
            raise ValueError("max_spread_ticks: >= 1 and max_step_ticks >= 0")
        if not 0 < self.min_size_steps <= self.max_size_steps:
            raise ValueError("min_size_steps: from 1 to max_size_steps")


class RandomWalk:
    """Deterministic quotes for ``symbols`` from ``seed``: ``next(index, now_ns)`` is the next Tick."""

    __slots__ = ("_arrays", "_bids", "_chunk", "_chunk_end", "_chunk_start", "_params", "_pos", "_rng", "symbols")

    def __init__(self, symbols: Sequence[str], params: RandomWalkParams, seed: int) -> None:
        self.symbols = tuple(symbols)
        self._params = params
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._bids = [params.start_ticks] * len(self.symbols)
        self._arrays = self._draw()
        self._pos = 0
        # next() reads Python ints from a chunk of the block converted on demand: converting a whole block at
        # once would stall the paced feed for ~0.5 ms every 4096 quotes.
        self._chunk: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
        self._chunk_start = 0
        self._chunk_end = 0

    def _draw(self) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """The next block of randomness: steps, spreads, bid sizes, ask sizes (always drawn in this order)."""
        p, rng = self._params, self._rng
        return (
            rng.integers(-p.max_step_ticks, p.max_step_ticks + 1, _BLOCK, dtype=np.int64),
            rng.integers(1, p.max_spread_ticks + 1, _BLOCK, dtype=np.int64),
            rng.integers(p.min_size_steps, p.max_size_steps + 1, _BLOCK, dtype=np.int64),
            rng.integers(p.min_size_steps, p.max_size_steps + 1, _BLOCK, dtype=np.int64),
        )

    def _refill(self) -> None:
        self._arrays = self._draw()
        self._pos = 0
        self._chunk_end = 0

    def _convert_chunk(self) -> None:
        """Python ints for next() from the current position on (a new block first if this one is used up)."""
        if self._pos == _BLOCK:
            self._refill()
        start = self._pos
        end = min(start + _CHUNK, _BLOCK)
        a, b, c, d = self._arrays
        self._chunk = (a[start:end].tolist(), b[start:end].tolist(), c[start:end].tolist(), d[start:end].tolist())
        self._chunk_start = start
        self._chunk_end = end

    def _take(self, count: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """The next ``count`` draws of each kind as arrays, consumed exactly as ``count`` calls of next() would."""
        pos = self._pos
        if pos + count <= _BLOCK:
            self._pos = pos + count
            a, b, c, d = self._arrays
            return a[pos : pos + count], b[pos : pos + count], c[pos : pos + count], d[pos : pos + count]
        parts: list[tuple[IntArray, ...]] = []
        while count > 0:
            if self._pos == _BLOCK:
                self._refill()
            pos = self._pos
            take = min(count, _BLOCK - pos)
            parts.append(tuple(array[pos : pos + take] for array in self._arrays))
            self._pos = pos + take
            count -= take
        a, b, c, d = (np.concatenate(kind) for kind in zip(*parts, strict=True))
        return a, b, c, d

    def next_rounds(self, rounds: int, now_ns: int) -> list[TickBatch]:
        """``rounds`` quotes of every symbol as one TickBatch per symbol (in symbol order), all stamped
        ``now_ns``: the same quotes, from the same draws, as ``rounds`` rounds of ``next(0..n-1)``."""
        if rounds < 1:
            raise ValueError(f"rounds: >= 1, was {rounds}")
        n = len(self.symbols)
        steps, spreads, bid_sizes, ask_sizes = self._take(rounds * n)
        floor = self._params.min_ticks
        batches = []
        for index, symbol in enumerate(self.symbols):
            bids = np.cumsum(steps[index::n])
            bids += self._bids[index]
            if int(bids.min()) < floor:  # the floor bends the path: walk it step by step (rare)
                bids = self._floored_path(index, steps[index::n].tolist())
            self._bids[index] = int(bids[-1])
            asks = bids + spreads[index::n]
            batches.append(tick_batch(symbol, bids, asks, bid_sizes[index::n], ask_sizes[index::n], now_ns, now_ns))
        return batches

    def _floored_path(self, index: int, steps: list[int]) -> IntArray:
        floor = self._params.min_ticks
        bid = self._bids[index]
        path = []
        for step in steps:
            bid += step
            if bid < floor:
                bid = floor
            path.append(bid)
        return np.array(path, dtype=np.int64)

    def next(self, index: int, now_ns: int) -> Tick:
        pos = self._pos
        if not self._chunk_start <= pos < self._chunk_end:
            self._convert_chunk()
            pos = self._pos
        self._pos = pos + 1
        steps, spreads, bid_sizes, ask_sizes = self._chunk
        pos -= self._chunk_start
        bid = self._bids[index] + steps[pos]
        if bid < self._params.min_ticks:
            bid = self._params.min_ticks
        self._bids[index] = bid
        fields = (self.symbols[index], bid, bid + spreads[pos], bid_sizes[pos], ask_sizes[pos], now_ns, now_ns)
        return _new_tuple(Tick, fields)


class MockFeed:
    """Paces a RandomWalk into the engine until ``stop`` is set, then closes its outputs."""

    def __init__(
        self,
        walk: RandomWalk,
        routes: Mapping[str, Fanout[Tick | TickBatch]],
        board: MarketBoard,
        clock: Clock,
        rate_per_symbol: int,
        stop: asyncio.Event,
        batch: int = 256,
    ) -> None:
        missing = [s for s in walk.symbols if s not in routes]
        if missing:
            raise ValueError(f"routes: a fan-out for every symbol, missing {missing}")
        self._walk = walk
        self._routes = [routes[s] for s in walk.symbols]
        self._channels, self._targets = channel_targets(self._routes)
        self._board = board
        self._clock = clock
        self._rate = rate_per_symbol
        self._stop = stop
        self._batch = batch
        self.ticks_by_symbol: dict[str, int] = dict.fromkeys(walk.symbols, 0)
        self.connected = False

    async def run(self) -> None:
        self.connected = True
        try:
            if self._rate == 0:
                await self._run_unthrottled()
            else:
                await self._run_paced()
        finally:
            self.connected = False
        await self._close()

    async def _emit(self, rounds: int, counts: list[int]) -> None:
        """``rounds`` rounds of one quote per symbol, on the board and then handed on in order.

        A few rounds go out as one Tick per quote, each stamped when made; from ``_COLUMNAR_MIN`` rounds on,
        each symbol's quotes go out as one TickBatch made (and stamped) at once, which the strategies and
        the recorder process column-wise."""
        batches: list[list[Tick | TickBatch]] = [[] for _ in self._channels]
        appends = [[batches[i].append for i in targets] for targets in self._targets]
        update = self._board.update
        time_ns = self._clock.time_ns
        n = len(appends)
        if rounds >= _COLUMNAR_MIN:
            for index, batch in enumerate(self._walk.next_rounds(rounds, time_ns())):
                update(batch.last())
                for append in appends[index]:
                    append(batch)
        else:
            walk_next = self._walk.next
            for _ in range(rounds):
                for index in range(n):
                    tick = walk_next(index, time_ns())
                    update(tick)
                    for append in appends[index]:
                        append(tick)
        for index in range(n):
            counts[index] += rounds
        await put_each(self._channels, batches)

    async def _run_unthrottled(self) -> None:
        counts = [0] * len(self._routes)
        while not self._stop.is_set():
            await self._emit(self._batch, counts)
            self._sync_counts(counts)
            await asyncio.sleep(0)
        self._sync_counts(counts)

    async def _run_paced(self) -> None:
        """Emit ``rate`` rounds per second; a late loop catches up a few rounds per iteration."""
        counts = [0] * len(self._routes)
        interval_ns = 1_000_000_000 // self._rate
        start = self._clock.monotonic_ns()
        emitted = 0  # rounds emitted: one round is one tick per symbol
        while not self._stop.is_set():
            due = (self._clock.monotonic_ns() - start) // interval_ns + 1
            # Emit at most a few rounds per wake-up and let the consumers run in between: a tick waits for
            # every tick emitted before it in the same burst, so bursts are what tick-to-order latency sees.
            rounds = min(due - emitted, _PACED_BURST)
            if rounds > 0:
                await self._emit(rounds, counts)
            emitted += rounds
            if due - emitted > self._batch:
                emitted = due - self._batch  # drop the backlog of a long stall: pacing, not a burst
            self._sync_counts(counts)
            wait_ns = start + emitted * interval_ns - self._clock.monotonic_ns()
            if wait_ns > _SHORT_WAIT_NS:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_ns / 1e9):
                        await self._stop.wait()
            else:  # a plain sleep costs a fraction of a stop-aware wait; stop is checked on the next turn
                await asyncio.sleep(wait_ns / 1e9 if wait_ns > 0 else 0)
        self._sync_counts(counts)

    def _sync_counts(self, counts: list[int]) -> None:
        for symbol, count in zip(self._walk.symbols, counts, strict=True):
            self.ticks_by_symbol[symbol] = count

    async def _close(self) -> None:
        for route in self._routes:
            await route.close()


def unique_channels(fanouts: Sequence[Fanout[Tick | TickBatch]]) -> list[Channel[Tick | TickBatch]]:
    """The distinct channels behind ``fanouts`` (for wiring checks)."""
    seen: dict[int, Channel[Tick | TickBatch]] = {}
    for fanout in fanouts:
        for channel in fanout.channels:
            seen.setdefault(id(channel), channel)
    return list(seen.values())


def channel_targets(
    fanouts: Sequence[Fanout[Tick | TickBatch]],
) -> tuple[list[Channel[Tick | TickBatch]], list[tuple[int, ...]]]:
    """The distinct channels behind ``fanouts`` and, per fan-out, the indexes of its channels among them: a feed
    collects each channel's quotes and hands them on with one ``put_each``."""
    channels = unique_channels(fanouts)
    position = {id(channel): i for i, channel in enumerate(channels)}
    return channels, [tuple(position[id(c)] for c in fanout.channels) for fanout in fanouts]
