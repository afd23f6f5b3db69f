"""Binance feed benchmark: bookTicker frames/s decoded from a local WebSocket server into Md events (Ticks).

A server process on 127.0.0.1 streams pre-built combined-stream bookTicker frames (the exact Spot shape) as
fast as the client reads them. In this process the client decodes every frame with the daemon's codec into
a Tick and hands it to a bounded Channel that a consumer drains, as the engine would. The WebSocket library
choice rests on these numbers (same frames, same codec, same Channel, interleaved rounds, medians):

* ``feed``: the real :class:`dma_bot.feed.binance.BinanceFeed` (aiohttp client, watchdog, board, counters);
* ``aiohttp`` and ``websockets``: a minimal read -> decode -> put loop on each library;
* ``decode``: the codec alone on the same frames, no socket (the ceiling).

Prints human-readable lines; with ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from dma_bot.binance.codec import parse_market_frame
from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock
from dma_bot.feed.binance import BinanceFeed
from dma_bot.feed.reconnect import Watchdog
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
INSTRUMENTS = {
    symbol: Instrument(symbol=symbol, tick_size=Decimal("0.01"), step_size=Decimal("0.00001")) for symbol in SYMBOLS
}


def _frames(count: int) -> list[bytes]:
    """Combined-stream bookTicker frames of a random walk (distinct prices and sizes, like a live book)."""
    import random

    rng = random.Random(7)
    bids = {symbol: 6_500_000 + 1000 * i for i, symbol in enumerate(SYMBOLS)}
    frames = []
    for n in range(count):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        bids[symbol] += rng.randint(-3, 3)
        bid = bids[symbol]
        ask = bid + rng.randint(1, 3)
        data = {
            "u": 400_900_217 + n,
            "s": symbol,
            "b": f"{bid // 100}.{bid % 100:02d}000000",
            "B": f"{rng.randint(1, 500_000) / 100_000:.8f}",
            "a": f"{ask // 100}.{ask % 100:02d}000000",
            "A": f"{rng.randint(1, 500_000) / 100_000:.8f}",
        }
        frames.append(orjson.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": data}))
    return frames


def _serve(port_queue: Any, count: int, connections: int) -> None:
    """Server process: for each of ``connections`` clients, send ``count`` frames then close."""
    from websockets.asyncio.server import serve

    frames = [frame.decode() for frame in _frames(count)]

    async def handler(ws: Any) -> None:
        for start in range(0, len(frames), 256):
            for frame in frames[start : start + 256]:
                await ws.send(frame)
        await ws.close()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port_queue.put(next(iter(server.sockets)).getsockname()[1])
            await asyncio.sleep(3600)

    asyncio.run(main())


async def _consume(channel: Channel[Tick], expected: int) -> int:
    got = 0
    while got < expected and (batch := await channel.get_batch()) is not None:
        got += len(batch)
    return got


async def _bench_read_loop(frames: Callable[[], AsyncIterator[str | bytes]], count: int) -> float:
    """A minimal client loop: every frame from ``frames`` -> codec -> Tick -> Channel, until ``count`` arrived."""
    channel: Channel[Tick] = Channel("ticks", 8192, producers=0)
    out = fanout(channel)
    clock = LiveClock()

    async def read() -> None:
        async for raw in frames():
            tick = parse_market_frame(raw, INSTRUMENTS, clock.time_ns())
            if type(tick) is Tick:
                await out.put(tick)
        await out.close()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(read())
        got = await _consume(channel, count)
    elapsed = time.perf_counter() - start
    assert got >= count, (got, count)
    return count / elapsed


async def _bench_websockets(url: str, count: int) -> float:
    from websockets.asyncio.client import connect

    async def frames() -> AsyncIterator[str | bytes]:
        async with connect(url, compression=None, max_size=2**20) as ws:
            async for raw in ws:
                yield raw

    return await _bench_read_loop(frames, count)


async def _bench_feed(url: str, count: int) -> float:
    """The real BinanceFeed: frames -> codec -> Tick -> Channel, until the server closes after ``count``."""
    channel: Channel[Tick] = Channel("ticks", 8192, producers=0)
    stop = asyncio.Event()
    feed = BinanceFeed(
        url=url,
        instruments=INSTRUMENTS,
        routes={symbol: fanout(channel) for symbol in SYMBOLS},
        board=MarketBoard(),
        clock=LiveClock(),
        stop=stop,
        backoff=Backoff(initial_s=0.01, max_s=0.01),
        watchdog=Watchdog(stale_after_ns=60 * 10**9, max_age_ns=3600 * 10**9),
    )
    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(feed.run())
        got = await _consume(channel, count)
        elapsed = time.perf_counter() - start
        stop.set()
        group.create_task(_consume(channel, 1 << 62))
    assert got >= count, (got, count)
    return count / elapsed


async def _bench_aiohttp(url: str, count: int) -> float:
    async def frames() -> AsyncIterator[str | bytes]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=0, max_msg_size=2**20) as ws:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                yield message.data

    return await _bench_read_loop(frames, count)


def _bench_decode(frames: list[bytes]) -> float:
    texts = [frame.decode() for frame in frames]
    start = time.perf_counter()
    for text in texts:
        parse_market_frame(text, INSTRUMENTS, 0)
    return len(texts) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000, help="frames per run (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per client; medians reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args(argv)

    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=_serve, args=(port_queue, args.frames, 3 * args.rounds), daemon=True)
    server.start()
    try:
        port = port_queue.get(timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        url = f"ws://127.0.0.1:{port}/stream?streams=" + "/".join(f"{s.lower()}@bookTicker" for s in SYMBOLS)
        decode = _bench_decode(_frames(args.frames))
        runs: dict[str, list[float]] = {"feed": [], "aiohttp": [], "websockets": []}
        benches = {"feed": _bench_feed, "aiohttp": _bench_aiohttp, "websockets": _bench_websockets}
        for round_ in range(args.rounds):  # interleaved, rotating who goes first: the machine is shared
            names = list(benches)
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                runs[name].append(asyncio.run(benches[name](url, args.frames)))
        feed_rate = statistics.median(runs["feed"])
        websockets_rate = statistics.median(runs["websockets"])
        aiohttp_rate = statistics.median(runs["aiohttp"])
    finally:
        server.terminate()
        server.join(5)
    result = {
        "frames": args.frames,
        "rounds": args.rounds,
        "feed_frames_per_s": round(feed_rate),
        "feed_us_per_frame": round(1e6 / feed_rate, 2),
        "aiohttp_frames_per_s": round(aiohttp_rate),
        "websockets_frames_per_s": round(websockets_rate),
        "decode_only_frames_per_s": round(decode),
        "decode_us_per_frame": round(1e6 / decode, 2),
    }
    print(f"bookTicker frames -> Ticks, {args.frames:,} frames x {args.rounds} interleaved rounds (medians), "
          "server in another process on 127.0.0.1:")
    print(f"  BinanceFeed (aiohttp):    {result['feed_frames_per_s']:,} frames/s "
          f"({result['feed_us_per_frame']} us/frame)")
    print(f"  aiohttp read loop:        {result['aiohttp_frames_per_s']:,} frames/s")
    print(f"  websockets read loop:     {result['websockets_frames_per_s']:,} frames/s")
    print(f"  codec alone (no socket):  {result['decode_only_frames_per_s']:,} frames/s "
          f"({result['decode_us_per_frame']} us/frame)")
    if args.json:
        print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
