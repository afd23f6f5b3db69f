"""The Binance feed against exchange_sim's market.drop: the connection facts it records as Notes."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock
from dma_bot.exchange_sim import ExchangeSim
from dma_bot.feed.binance import BinanceFeed, combined_stream_url
from dma_bot.feed.reconnect import Watchdog
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.model.enums import NoteKind
from dma_bot.model.events import Note, Tick
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff

SYMBOLS = ("BTCUSDT", "ETHUSDT")
S = 1_000_000_000


async def _next_notes(notes: Channel[Note], seen: list[Note], count: int) -> list[Note]:
    async with asyncio.timeout(10):
        while len(seen) < count:
            batch = await notes.get_batch()
            assert batch is not None, f"notes closed after {seen}"
            seen += batch
    return seen


async def test_feed_notes_a_lost_market_connection_and_its_return_and_closes_its_notes() -> None:
    """market.drop cuts the bookTicker connection: one MARKET_STREAM_DOWN with the reason, then one
    MARKET_STREAM_UP with how long it was down once reconnected; ticks flow again; stop closes the notes."""
    async with ExchangeSim(symbols=SYMBOLS, port=0) as sim:
        async with BinanceRest(sim.rest_url, clock=LiveClock()) as rest:
            rules = await rest.exchange_info(SYMBOLS)
        instruments = {symbol: rule.instrument for symbol, rule in rules.items()}
        ticks: Channel[Tick] = Channel("ticks", 4096, producers=0)
        notes: Channel[Note] = Channel("notes", 64, producers=0)
        stop = asyncio.Event()
        feed = BinanceFeed(
            url=combined_stream_url(sim.ws_url, list(instruments)),
            instruments=instruments,
            routes={symbol: fanout(ticks) for symbol in instruments},
            board=MarketBoard(),
            clock=LiveClock(),
            stop=stop,
            backoff=Backoff(initial_s=0.01, max_s=0.05),
            watchdog=Watchdog(stale_after_ns=30 * S, max_age_ns=3600 * S),
            notes=fanout(notes),
        )
        seen: list[Note] = []
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(feed.run())
            await sim.wait_stream_subscribers("btcusdt@bookTicker", 1)
            assert notes.qsize() == 0  # the first connection is no news
            sim.faults.add({"kind": "market.drop"})
            down, up = await _next_notes(notes, seen, 2)
            await sim.wait_stream_subscribers("btcusdt@bookTicker", 1)
            sim.set_quote("BTCUSDT", "65432.01", "65432.02")
            bid = instruments["BTCUSDT"].price_to_ticks(Decimal("65432.01"))
            async with asyncio.timeout(10):
                while True:
                    batch = await ticks.get_batch()
                    assert batch is not None, "ticks closed before the reconnected stream sent one"
                    if any(t.symbol == "BTCUSDT" and t.bid == bid for t in batch):
                        break
            stop.set()
        assert (down.kind, down.venue, down.symbol) == (NoteKind.MARKET_STREAM_DOWN, "BINANCE", "")
        assert down.detail.startswith("market stream lost: closed by")
        assert up.kind is NoteKind.MARKET_STREAM_UP
        assert re.fullmatch(r"market stream connected again after \d+ ms down", up.detail)
        assert await notes.get_batch() is None and feed.reconnects == 1
