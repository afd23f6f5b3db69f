"""FEED_MODE=replay: the real daemon process driven by a recording of the real mock engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dma_bot.config import load_config
from dma_bot.main import run_daemon
from tests.conftest import ROOT, Daemon, start_daemon
from tests.integration.test_daemon_mock import _assert_complete_and_consistent, _read_jsonl

MD_FIELDS = ("symbol", "bid", "ask", "bid_qty", "ask_qty", "ts_event_ns")


def _md(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(r[f] for f in MD_FIELDS) for r in records if r["type"] == "Md"]


async def _recording(path: Path) -> None:
    config = load_config({}, {"RECORD_FILE": str(path), "MOCK_RATE": "500", "METRICS_HOST": "127.0.0.1",
                              "METRICS_PORT": "0", "STATUS_INTERVAL_S": "0"})
    async with asyncio.timeout(30):
        assert await run_daemon(config, duration=1.0) == 0


async def test_replay_feeds_the_recorded_quotes_through_the_engine_and_stops_at_the_end(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """REPLAY_SPEED=0: every recorded quote, in order, is a quote of the new run (its Md records equal the
    recording's), the engine trades on them, and the daemon drains and exits 0 by itself at the end."""
    recording, replayed = tmp_path / "recording.jsonl", tmp_path / "replayed.jsonl"
    await _recording(recording)
    env = {"FEED_MODE": "replay", "REPLAY_FILE": str(recording), "REPLAY_SPEED": "0", "RECORD_FILE": str(replayed),
           "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0"}

    daemon = await start_daemon(env, "--env", str(ROOT / ".env.mock"))
    daemons.append(daemon)

    assert await daemon.finish(timeout=60) == 0, daemon.stderr
    source, out = _read_jsonl(recording), _read_jsonl(replayed)
    assert _md(out) == _md(source) and len(_md(out)) > 1000
    _assert_complete_and_consistent(out)
    assert out[-1]["counts"]["Ord"] > 0 and out[-1]["clean"] is True


async def test_replay_configuration_mistakes_are_one_line(tmp_path: Path, daemons: list[Daemon]) -> None:
    """No recording, or a real venue with recorded prices: one line each, exit 2."""
    missing = await start_daemon({"FEED_MODE": "replay", "METRICS_PORT": "0", "RECORD_FILE": ""},
                                 "--env", str(ROOT / ".env.mock"))
    daemons.append(missing)
    recording = tmp_path / "r.jsonl"
    recording.write_text("")
    venue = await start_daemon({"FEED_MODE": "replay", "REPLAY_FILE": str(recording), "VENUE_MODE": "binance_sandbox",
                                "METRICS_PORT": "0", "RECORD_FILE": ""}, "--env", str(ROOT / ".env.mock"))
    daemons.append(venue)

    assert (await missing.finish(), missing.lines) == (
        2, ["dma_bot: configuration error: REPLAY_FILE: an existing recording when FEED_MODE=replay, was empty"])
    assert (await venue.finish(), venue.lines) == (
        2, ["dma_bot: configuration error: VENUE_MODE: mock when FEED_MODE=replay (recorded prices are not the "
            "venue's), was binance_sandbox"])
