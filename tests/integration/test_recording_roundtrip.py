"""A recording made by the real mock engine reads back through dma_bot.feed.recording, quote for quote."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from dma_bot.config import load_config
from dma_bot.feed.recording import ReadStats, SkipReason, read_ticks
from dma_bot.main import run_daemon


async def test_a_recording_of_the_mock_engine_reads_back_every_md_record(tmp_path: Path) -> None:
    """The real daemon's recording (unthrottled mock feed, column batches included): as many quotes as Md
    records, each symbol's quotes in time order, nothing skipped but the other record types."""
    record = tmp_path / "events.jsonl"
    config = load_config({}, {"RECORD_FILE": str(record), "MOCK_RATE": "0", "METRICS_HOST": "127.0.0.1",
                              "METRICS_PORT": "0", "STATUS_INTERVAL_S": "0"})
    async with asyncio.timeout(30):
        assert await run_daemon(config, duration=0.5) == 0
    stop = orjson.loads(record.read_bytes().splitlines()[-1])
    stats = ReadStats()

    ticks = list(read_ticks(record, stats))

    assert len(ticks) == stop["counts"]["Md"] > 1000
    assert stats.skipped[SkipReason.BAD_LINE] == stats.skipped[SkipReason.OUT_OF_ORDER] == 0
    assert stats.skipped[SkipReason.NOT_MD] == stats.lines - len(ticks)
