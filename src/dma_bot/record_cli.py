"""``python -m dma_bot record [--env FILE] --duration S [--out FILE]``: market data only, for backtest data sets.

Owns the command: the configured feed (the mock walk, or a Binance market stream: public data, no keys) into the
recorder and nothing else (no strategies, no orders, no venue), for ``--duration`` seconds or until SIGINT or
SIGTERM. The file is the usual JSONL (a Start record naming the instruments, ``Md`` lines, a Stop), so
``backtest`` and ``FEED_MODE=replay`` read it as any recording. Configuration errors and start-up failures are
one line and exit 2, as for the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock
from dma_bot.config import Config, load_config, preset_values
from dma_bot.errors import ConfigError, StartupError
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.main import build_feed, load_rules
from dma_bot.model.market import MarketBoard
from dma_bot.params import mock_instruments
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields
from dma_bot.recorder.writer import RecorderStage

__all__ = ["main"]

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dma_bot record",
                                     description="Record the configured feed's market data only (no trading).")
    parser.add_argument("--env", metavar="FILE", help="preset file (default ./.env, else the mock preset)")
    parser.add_argument("--duration", type=float, required=True, metavar="SECONDS", help="how long to record")
    parser.add_argument("--out", metavar="FILE", help="the recording (default: RECORD_FILE of the configuration)")
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if not args.duration > 0:
        print(f"dma_bot record: --duration: a number of seconds > 0, was {args.duration}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(preset_values(args.env), {**os.environ, "VENUE_MODE": "mock"})
        path = args.out or config["RECORD_FILE"]
        if not path:
            raise ConfigError("--out: a file to record to (or RECORD_FILE), was empty")
        if config["FEED_MODE"] == "replay":
            raise ConfigError("FEED_MODE: mock, binance_sandbox or binance_mainnet to record, was replay")
        return asyncio.run(_record(config, path, args.duration))
    except (ConfigError, StartupError) as e:
        print(f"dma_bot record: {e}", file=sys.stderr)
        return EXIT_USAGE


async def _record(config: Config, path: str, duration: float) -> int:
    clock = LiveClock()
    stop = asyncio.Event()
    record: Channel[Any] = Channel("record", config["DMA_QUEUE_SIZE"], producers=0)
    board = MarketBoard()
    symbols: tuple[str, ...] = config["SYMBOLS"]
    async with contextlib.AsyncExitStack() as resources:
        if config["FEED_MODE"] == "mock":
            instruments = mock_instruments(config)
        else:
            rest = await resources.enter_async_context(BinanceRest(config["BINANCE_REST_URL"], clock=clock))
            instruments = {symbol: rule.instrument for symbol, rule in (await load_rules(config, rest)).items()}
        routes = {symbol: fanout(record) for symbol in symbols}
        feed = build_feed(config, instruments, routes, board, clock, stop, ())
        recorder = RecorderStage(
            path,
            JsonlEncoder(instruments),
            record,
            clock,
            start_fields={"mode": "record", "config": config.redacted(), "instruments": instrument_fields(instruments)},
            stop_fields=lambda: {"ticks": sum(feed.ticks_by_symbol.values())},
            min_free_bytes=config["RECORD_MIN_FREE_MB"] * 1024 * 1024,
        )
        recorder.open()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(recorder.run())
                group.create_task(feed.run())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(duration):
                        await stop.wait()
                stop.set()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            recorder.close()
    print(f"recorded {sum(feed.ticks_by_symbol.values()):,} quotes of {','.join(symbols)} to {path}", file=sys.stderr)
    return 0
