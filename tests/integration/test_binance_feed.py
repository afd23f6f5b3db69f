"""The Binance feed over real sockets against exchange_sim: ticks, reconnects, serverShutdown, clean stop."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock
from dma_bot.errors import StartupError
from dma_bot.exchange_sim import ExchangeSim
from dma_bot.feed.binance import BinanceFeed, combined_stream_url
from dma_bot.feed.reconnect import Watchdog
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.model.events import Tick
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff
from tests.conftest import eventually

SYMBOLS = ("BTCUSDT", "ETHUSDT")


async def _is(value: bool) -> bool:
    return value
S = 1_000_000_000


async def _rules(sim: ExchangeSim, symbols: tuple[str, ...] = SYMBOLS) -> dict:
    async with BinanceRest(sim.rest_url, clock=LiveClock()) as rest:
        return await rest.exchange_info(symbols)


def _feed(sim: ExchangeSim, rules: dict, out: Channel[Tick], stop: asyncio.Event, **kw: object) -> BinanceFeed:
    instruments = {symbol: rule.instrument for symbol, rule in rules.items()}
    return BinanceFeed(
        url=combined_stream_url(sim.ws_url, list(instruments)),
        instruments=instruments,
        routes={symbol: fanout(out) for symbol in instruments},
        board=MarketBoard(),
        clock=LiveClock(),
        stop=stop,
        backoff=Backoff(initial_s=0.01, max_s=0.05),
        watchdog=kw.pop("watchdog", Watchdog(stale_after_ns=30 * S, max_age_ns=3600 * S)),  # type: ignore[arg-type]
        seed=1,
    )


async def _next_ticks(out: Channel[Tick], n: int) -> list[Tick]:
    got: list[Tick] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            batch = await out.get_batch()
            assert batch is not None
            got.extend(batch)
    return got


async def test_feed_decodes_book_ticker_into_exact_ticks_and_stops_cleanly() -> None:
    """Quotes set on the venue arrive as Ticks on the instrument's grid; stop closes the output."""
    async with ExchangeSim(symbols=SYMBOLS, port=0) as sim:
        rules = await _rules(sim)
        out: Channel[Tick] = Channel("out", 1024, producers=0)
        stop = asyncio.Event()
        feed = _feed(sim, rules, out, stop)
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(feed.run())
            await sim.wait_stream_subscribers("btcusdt@bookTicker")
            sim.set_quote("BTCUSDT", "65000.01", "65000.02", "1.5", "2.25")
            ticks = await _next_ticks(out, 1)
            instrument = rules["BTCUSDT"].instrument
            tick = next(t for t in ticks if t.symbol == "BTCUSDT")
            assert instrument.ticks_to_price(tick.bid) == Decimal("65000.01")
            assert instrument.ticks_to_price(tick.ask) == Decimal("65000.02")
            assert instrument.steps_to_qty(tick.bid_qty) == Decimal("1.5")
            assert instrument.steps_to_qty(tick.ask_qty) == Decimal("2.25")
            assert feed.connected
            stop.set()
        assert await out.get_batch() is None or await out.get_batch() is None
        assert not feed.connected


async def test_feed_reconnects_after_a_dropped_connection_and_after_server_shutdown() -> None:
    """A cut TCP connection and a serverShutdown both lead to a reconnect and the stream resumes."""
    async with ExchangeSim(symbols=SYMBOLS, port=0) as sim:
        rules = await _rules(sim)
        out: Channel[Tick] = Channel("out", 4096, producers=0)
        stop = asyncio.Event()
        feed = _feed(sim, rules, out, stop)
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            group.create_task(feed.run())
            await sim.wait_stream_subscribers("ethusdt@bookTicker", 1)
            await sim.step()
            await _next_ticks(out, 1)
            sim.drop_connections()
            await eventually(lambda: _is(feed.connections >= 2 and feed.connected), what="reconnect after a drop")
            assert feed.reconnects == 1
            await sim.wait_stream_subscribers("ethusdt@bookTicker", 1)
            sim.server_shutdown()
            await eventually(lambda: _is(feed.connections >= 3 and feed.connected), what="reconnect after shutdown")
            assert feed.last_close_reason == "serverShutdown"
            await sim.wait_stream_subscribers("ethusdt@bookTicker", 1)
            await sim.step()
            assert await _next_ticks(out, 1)
            assert feed.reconnects == 2
            stop.set()


async def test_feed_drops_a_silent_connection() -> None:
    """No frame within the stale threshold: the watchdog drops the connection and the feed reconnects."""
    async with ExchangeSim(symbols=SYMBOLS, port=0) as sim:
        rules = await _rules(sim)
        out: Channel[Tick] = Channel("out", 1024, producers=0)
        stop = asyncio.Event()
        feed = _feed(sim, rules, out, stop, watchdog=Watchdog(stale_after_ns=S // 5, max_age_ns=3600 * S))
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(feed.run())
            await eventually(lambda: _is(feed.reconnects >= 1), what="the watchdog drops the silent connection")
            assert feed.last_close_reason.startswith("stale")
            stop.set()


async def test_exchange_info_unknown_or_halted_symbol_is_a_startup_error() -> None:
    async with ExchangeSim(symbols=("BTCUSDT", "ETHUSDT"), port=0) as sim:
        with pytest.raises(StartupError, match=r"^SYMBOLS: symbols listed by the venue's exchangeInfo, was XRPUSDT"):
            await _rules(sim, ("BTCUSDT", "XRPUSDT"))
        sim.set_symbol_status("ETHUSDT", "BREAK")
        with pytest.raises(StartupError, match=r"^SYMBOLS: symbols with status TRADING, was ETHUSDT \(BREAK\)"):
            await _rules(sim, ("BTCUSDT", "ETHUSDT"))
