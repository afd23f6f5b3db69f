"""The backtest loop (dma_bot.backtest) over a recording of the real mock engine: deterministic, and its
strategies make exactly the signals the live engine made on the same quotes."""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from dma_bot.backtest import Backtest
from dma_bot.config import load_config
from dma_bot.feed.recording import ReadStats, read_ticks
from dma_bot.main import run_daemon
from dma_bot.params import replay_instruments, replay_prices


async def _recording(path: Path) -> None:
    config = load_config({}, {"RECORD_FILE": str(path), "MOCK_RATE": "500", "METRICS_HOST": "127.0.0.1",
                              "METRICS_PORT": "0", "STATUS_INTERVAL_S": "0"})
    async with asyncio.timeout(30):
        assert await run_daemon(config, duration=1.5) == 0


def _backtest(path: Path) -> bytes:
    config = load_config({}, {"FEED_MODE": "replay", "REPLAY_FILE": str(path)})
    instruments = replay_instruments(config)
    backtest = Backtest(config, instruments, replay_prices(config, instruments))
    out = io.BytesIO()
    backtest.run(read_ticks(path, ReadStats()), out, {"recording": str(path)})
    return out.getvalue()


def _signals(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    by: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for r in lines:
        if r["type"] == "Sig":
            by[(r["strategy"], r["symbol"])].append((r["side"], r["price"], r["quantity"], r["ts_event_ns"]))
    return dict(by)


async def test_backtest_is_deterministic_and_signals_as_the_live_engine_did(tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    await _recording(recording)

    first, second = _backtest(recording), _backtest(recording)

    assert first == second  # byte for byte
    out = [orjson.loads(line) for line in first.splitlines()]
    live = [orjson.loads(line) for line in recording.read_bytes().splitlines()]
    assert _signals(out) == _signals(live) and _signals(out)
    stop = out[-1]
    assert stop["type"] == "Stop" and stop["open_orders"] == []
    assert stop["counts"]["Ord"] > 0 and stop["counts"]["Exec"] > stop["counts"]["Ord"]
    assert [r["seq"] for r in out] == list(range(1, len(out) + 1))
