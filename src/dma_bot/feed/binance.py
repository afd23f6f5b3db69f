"""The Binance Spot market-data feed: one combined-stream WebSocket carrying ``<symbol>@bookTicker`` for all
symbols, decoded by :mod:`dma_bot.binance.codec` into Ticks.

The shell only moves bytes and keeps time: it connects (aiohttp's WebSocket client: bench/binance_feed.py
measured it faster than websockets here), answers pings (aiohttp replies to the server's pings and sends its
own heartbeat pings), reconnects after any drop with capped, jittered
exponential backoff (:class:`~dma_bot.retry.Backoff`), drops a connection that stayed silent past
the stale threshold or that is about to reach Binance's 24-hour cut (:class:`~dma_bot.feed.reconnect.Watchdog`),
and reconnects at once on ``serverShutdown``. A malformed frame is counted, logged (first occurrences), and
skipped: it never stops the feed. A connection that was up and is lost, and the next connection after
it, are facts for the record: with ``notes`` it puts a ``Note`` MARKET_STREAM_DOWN (why) and
MARKET_STREAM_UP (after how long). On stop it closes the socket and then closes its outputs once (``notes``
too: build it with its own ``fanout(...)``).

``BINANCE_WS_URL`` keeps the original presets' meaning, the stream base ending in ``/ws``;
:func:`combined_stream_url` turns it into ``.../stream?streams=btcusdt@bookTicker/...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Final

import aiohttp

from dma_bot.binance.codec import MarketControl, MarketControlKind, parse_market_frame
from dma_bot.bus import Fanout
from dma_bot.clock import Clock
from dma_bot.errors import ProtocolError
from dma_bot.feed.reconnect import Verdict, Watchdog
from dma_bot.model.enums import NoteKind
from dma_bot.model.events import Note, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff

__all__ = ["BinanceFeed", "combined_stream_url"]

log = logging.getLogger(__name__)

_LOGGED_BAD_FRAMES: Final = 10
_MAX_STREAMS_PER_CONNECTION: Final = 1024
_NS_PER_MS: Final = 1_000_000


def combined_stream_url(ws_base: str, symbols: Sequence[str]) -> str:
    """``wss://host/ws`` (or ``wss://host``) + symbols -> the combined bookTicker stream URL."""
    if not symbols:
        raise ValueError("symbols: at least one symbol, was none")
    if len(symbols) > _MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"symbols: at most {_MAX_STREAMS_PER_CONNECTION} per connection, was {len(symbols)}")
    base = ws_base.rstrip("/")
    base = base.removesuffix("/ws").removesuffix("/stream")
    streams = "/".join(f"{symbol.lower()}@bookTicker" for symbol in symbols)
    return f"{base}/stream?streams={streams}"


class BinanceFeed:
    """Streams bookTicker for ``instruments`` until ``stop`` is set, reconnecting as needed."""

    def __init__(
        self,
        *,
        url: str,
        instruments: Mapping[str, Instrument],
        routes: Mapping[str, Fanout[Tick]],
        board: MarketBoard,
        clock: Clock,
        stop: asyncio.Event,
        backoff: Backoff,
        watchdog: Watchdog,
        seed: int = 0,
        venue: str = "BINANCE",
        open_timeout_s: float = 10.0,
        notes: Fanout[Note] | None = None,
    ) -> None:
        missing = [symbol for symbol in instruments if symbol not in routes]
        if missing:
            raise ValueError(f"routes: a fan-out for every symbol, missing {missing}")
        self.url = url
        self.venue = venue
        self._instruments = dict(instruments)
        self._routes = dict(routes)
        self._board = board
        self._clock = clock
        self._stop = stop
        self._backoff = backoff
        self._watchdog = watchdog
        self._rng = random.Random(seed)
        self._open_timeout_s = open_timeout_s
        self._notes = notes
        self._down_since_ns: int | None = None  # monotonic: when a connection that was up was lost
        self.ticks_by_symbol: dict[str, int] = dict.fromkeys(instruments, 0)
        self.connected = False
        self.reconnects = 0
        self.connections = 0
        self.bad_frames = 0
        self.last_event_ns: int | None = None
        self.last_close_reason = ""
        self._connected_ns = 0
        self._last_frame_ns = 0
        self._verdict = ""

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            await self._run(session)
        for route in {id(r): r for r in self._routes.values()}.values():
            await route.close()
        if self._notes is not None:
            await self._notes.close()

    async def _note(self, kind: NoteKind, detail: str) -> None:
        if self._notes is not None:
            await self._notes.put(Note(kind=kind, venue=self.venue, symbol="", client_order_id="", detail=detail,
                                       ts_ns=self._clock.time_ns()))

    async def _run(self, session: aiohttp.ClientSession) -> None:
        attempt = 0
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
        while not self._stop.is_set():
            started_ns = self._clock.monotonic_ns()
            was_up = False
            try:
                async with asyncio.timeout(self._open_timeout_s):
                    ws = await session.ws_connect(
                        self.url, heartbeat=20.0, autoping=True, max_msg_size=2**20, compress=0, timeout=timeout
                    )
                async with ws:
                    self.connections += 1
                    self.connected = was_up = True
                    log.info("binance feed connected: %s", self.url)
                    if self._down_since_ns is not None:
                        down_ms = (self._clock.monotonic_ns() - self._down_since_ns) // _NS_PER_MS
                        self._down_since_ns = None
                        await self._note(NoteKind.MARKET_STREAM_UP, f"market stream connected again after {down_ms} "
                                                                    "ms down")
                    try:
                        self.last_close_reason = await self._session(ws)
                    finally:
                        self.connected = False
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                self.last_close_reason = f"{type(e).__name__}: {e}"
            if self._stop.is_set():
                break
            if was_up:
                self._down_since_ns = self._clock.monotonic_ns()
                await self._note(NoteKind.MARKET_STREAM_DOWN, f"market stream lost: {self.last_close_reason}")
            up_s = (self._clock.monotonic_ns() - started_ns) / 1e9
            if up_s >= self._backoff.reset_after_s or self.last_close_reason.startswith(("rollover", "serverShutdown")):
                attempt = 0
            attempt += 1
            self.reconnects += 1
            delay = 0.0 if attempt == 1 and self.connections else self._backoff.delay(attempt, self._rng)
            log.warning(
                "binance feed disconnected (%s); reconnect %d in %.2fs", self.last_close_reason, attempt, delay
            )
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Pump frames until stop, a watchdog verdict, serverShutdown or a drop. Returns why it ended.

        The watchdog runs beside the pump (one timer per check, not one per frame: a per-frame timeout cost
        a third of the feed's throughput in bench/binance_feed.py)."""
        self._connected_ns = self._last_frame_ns = self._clock.monotonic_ns()
        self._verdict = ""
        async with asyncio.TaskGroup() as group:
            supervisor = group.create_task(self._supervise(ws))
            try:
                reason = await self._pump(ws)
            finally:
                supervisor.cancel()
        return self._verdict or reason

    async def _supervise(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close the socket on stop, or when the watchdog says the connection is stale or too old."""
        clock, watchdog = self._clock, self._watchdog
        while True:
            wait_s = (
                watchdog.next_check_ns(connected_ns=self._connected_ns, last_frame_ns=self._last_frame_ns)
                - clock.monotonic_ns()
            ) / 1e9
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait_s, 0.0)):
                    await self._stop.wait()
            if self._stop.is_set():
                await ws.close()
                return
            now_ns = clock.monotonic_ns()
            verdict = watchdog.verdict(
                connected_ns=self._connected_ns, last_frame_ns=self._last_frame_ns, now_ns=now_ns
            )
            if verdict is Verdict.STALE:
                self._verdict = f"stale: no frame for {(now_ns - self._last_frame_ns) / 1e9:.1f}s"
            elif verdict is Verdict.ROLLOVER:
                self._verdict = "rollover: connection age limit"
            else:
                continue
            await ws.close()
            return

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        clock = self._clock
        instruments, routes, board = self._instruments, self._routes, self._board
        counts = self.ticks_by_symbol
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is text or kind is binary:
                raw = message.data
                self._last_frame_ns = clock.monotonic_ns()
                recv_ns = clock.time_ns()
                try:
                    event = parse_market_frame(raw, instruments, recv_ns)
                except ProtocolError as e:
                    self.bad_frames += 1
                    if self.bad_frames <= _LOGGED_BAD_FRAMES:
                        log.warning("binance feed: skipped a bad frame (%d so far): %s", self.bad_frames, e)
                    continue
                if type(event) is Tick:
                    self.last_event_ns = recv_ns
                    board.update(event)
                    counts[event.symbol] += 1
                    await routes[event.symbol].put(event)
                elif isinstance(event, MarketControl):
                    self.last_event_ns = recv_ns
                    if event.kind is MarketControlKind.SERVER_SHUTDOWN:
                        await ws.close()
                        return "serverShutdown"
                    if event.kind is MarketControlKind.ERROR:
                        log.warning("binance feed: stream error %s: %s", event.code, event.message)
                continue
            if self._stop.is_set():
                return "stopped"
            if kind is aiohttp.WSMsgType.ERROR:
                return f"closed by network: {ws.exception()}"
            return f"closed by peer (code {ws.close_code})"
