"""ReplayFeed: a recording's quotes into the live engine, at the recorded pace, N times faster, or as fast as the
pipeline takes them (``FEED_MODE=replay``: the dashboard, the recorder and every stage run as live, no network).

Owns only the pacing and the quotes' order: the quotes come from :mod:`dma_bot.feed.recording` (parsed, checked
and counted there), each goes on the board and to its symbol's fan-out, stamped ``ts_ns`` with the local clock
when handed on (its ``ts_event_ns`` stays the recorded one). The stamps are strictly increasing (a quote handed
on in the same nanosecond as the one before it, or after the clock stepped back, gets that stamp + 1 ns), so a
quote's ``ts_ns`` also gives its place in the recording, ties of ``ts_event_ns`` included: behind each chunk it
hands on, the feed puts a :class:`~dma_bot.model.events.Watermark` with the chunk's last stamp on each channel of
``progress`` (the strategy workers' inboxes), from which risk restores the backtest's order of the signals.
With ``speed`` > 0 a quote is handed on ``(ts_event_ns - first) / speed`` after the first one; with 0 the quotes
go in chunks with a yield between them (backpressure paces them). At the end of the recording it sets ``stop``,
so the daemon drains and exits as after ``--duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Final

from dma_bot.bus import Channel, Fanout, put_each
from dma_bot.clock import Clock
from dma_bot.feed.mock import channel_targets
from dma_bot.feed.recording import ReadStats
from dma_bot.model.events import Tick, TickBatch, Watermark
from dma_bot.model.market import MarketBoard

__all__ = ["ReplayFeed"]

_CHUNK: Final = 256  # quotes handed on together when they are due at once
_SHORT_WAIT_NS: Final = 200_000


class ReplayFeed:
    """Replays ``ticks`` (one recording's, or several merged by time) into ``routes`` until done or ``stop``."""

    def __init__(
        self,
        ticks: Iterator[Tick],
        stats: ReadStats,
        routes: Mapping[str, Fanout[Tick | TickBatch]],
        board: MarketBoard,
        clock: Clock,
        speed: Decimal,
        stop: asyncio.Event,
        progress: Collection[Channel[Tick | TickBatch | Watermark]] = (),
    ) -> None:
        """``progress``: the channels behind ``routes`` that get a Watermark behind every chunk (each must be one
        of them; the recorder's copy must not be: a Watermark is no event)."""
        if not speed >= 0:
            raise ValueError(f"speed: >= 0 (0 = as fast as the pipeline takes them), was {speed}")
        self._ticks = ticks
        self.stats = stats
        self._routes = dict(routes)
        self._channels, targets = channel_targets(list(self._routes.values()))
        self._targets = dict(zip(self._routes, targets, strict=True))
        marked = {id(channel) for channel in progress}
        self._marked = [index for index, channel in enumerate(self._channels) if id(channel) in marked]
        if len(self._marked) != len(marked):
            raise ValueError("progress: channels the routes lead to, was one outside them")
        self._board = board
        self._clock = clock
        self._speed = speed
        self._stop = stop
        self.ticks_by_symbol: dict[str, int] = dict.fromkeys(self._routes, 0)
        self.connected = False
        self.finished = False  # the recording was replayed to its end (not stopped before)

    async def run(self) -> None:
        self.connected = True
        try:
            await self._replay()
        finally:
            self.connected = False
            for route in self._routes.values():
                await route.close()
        if self.finished:
            self._stop.set()

    async def _replay(self) -> None:
        clock, board, stop, targets = self._clock, self._board, self._stop, self._targets
        counts = self.ticks_by_symbol
        batches: list[list[Tick | TickBatch | Watermark]] = [[] for _ in self._channels]
        pending = 0
        speed = self._speed
        start_ns = clock.monotonic_ns()
        first_ns: int | None = None
        stamp = 0
        for tick in self._ticks:
            if stop.is_set():
                return
            if speed:
                if first_ns is None:
                    first_ns = tick.ts_event_ns
                due_ns = start_ns + int((tick.ts_event_ns - first_ns) / speed)
                wait_ns = due_ns - clock.monotonic_ns()
                if wait_ns > 0:
                    if pending:
                        await self._hand_on(batches, stamp)
                        batches = [[] for _ in self._channels]
                        pending = 0
                    await self._wait(wait_ns)
                    if stop.is_set():
                        return
            now = clock.time_ns()
            stamp = now if now > stamp else stamp + 1
            stamped = tick._replace(ts_ns=stamp)
            board.update(stamped)
            for index in targets[tick.symbol]:
                batches[index].append(stamped)
            counts[tick.symbol] += 1
            pending += 1
            if pending >= _CHUNK:
                await self._hand_on(batches, stamp)
                batches = [[] for _ in self._channels]
                pending = 0
                await asyncio.sleep(0)
        if pending:
            await self._hand_on(batches, stamp)
        self.finished = True

    async def _hand_on(self, batches: list[list[Tick | TickBatch | Watermark]], stamp: int) -> None:
        """Each channel's quotes, and a Watermark of the last stamp behind them on the ``progress`` channels."""
        if self._marked:
            mark = Watermark("feed", stamp)
            for index in self._marked:
                batches[index].append(mark)
        await put_each(self._channels, batches)

    async def _wait(self, wait_ns: int) -> None:
        if wait_ns > _SHORT_WAIT_NS:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_ns / 1e9):
                    await self._stop.wait()
        else:
            await asyncio.sleep(wait_ns / 1e9)
