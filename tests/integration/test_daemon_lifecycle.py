"""Lifecycle of the daemon in-process: a crashing stage, a forced stop, operator kill-switch signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest

from dma_bot.config import load_config
from dma_bot.main import EXIT_CRASH, EXIT_FORCED, EXIT_OK, Engine, run_daemon
from dma_bot.model.enums import KillSwitchState
from dma_bot.risk.limits import RiskEngine
from tests.conftest import eventually


def _config(record: Path, **extra: str) -> Any:
    return load_config(
        {},
        {"METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0", "RECORD_FILE": str(record), "MOCK_RATE": "0", **extra},
    )


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_crashing_stage_exits_1_names_it_and_recorder_flushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stage that raises stops the whole engine with exit 1, the log names the stage, the JSONL ends in Stop."""
    original = RiskEngine.check
    calls = 0

    def failing_check(self: RiskEngine, signal_: Any, now_ns: int) -> Any:
        nonlocal calls
        calls += 1
        if calls == 200:
            raise RuntimeError("boom in risk")
        return original(self, signal_, now_ns)

    monkeypatch.setattr(RiskEngine, "check", failing_check)
    record = tmp_path / "events.jsonl"
    with caplog.at_level(logging.ERROR, logger="dma_bot"):
        async with asyncio.timeout(30):
            status = await run_daemon(_config(record))
    assert status == EXIT_CRASH
    assert "(in stage risk)" in caplog.text
    assert "RuntimeError: boom in risk" in caplog.text
    records = _records(record)
    assert records[0]["type"] == "Start"
    assert records[-1]["type"] == "Stop"
    assert records[-1]["clean"] is False
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert sum(1 for r in records if r["type"] == "Sig") >= 199  # what passed before the crash is on disk


async def test_second_signal_forces_stop_with_unclean_record(tmp_path: Path) -> None:
    """Two SIGTERMs: the first starts the drain, the second cancels it; exit 130, recorder still flushes."""
    record = tmp_path / "events.jsonl"

    def ready(engine: Engine, port: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)

    async with asyncio.timeout(30):
        status = await run_daemon(_config(record), on_ready=ready)
    assert status == EXIT_FORCED
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    records = _records(record)
    assert records[0]["type"] == "Start"
    assert records[-1]["type"] == "Stop"
    assert records[-1]["clean"] is False


async def test_operator_signals_move_the_kill_switch(tmp_path: Path) -> None:
    """SIGUSR1 puts the kill switch in reducing; SIGUSR2 halts; after that no order is accepted."""
    record = tmp_path / "events.jsonl"
    seen: dict[str, Any] = {}
    ready_event = asyncio.Event()

    def ready(engine: Engine, port: int) -> None:
        seen["engine"] = engine
        ready_event.set()

    async def operate() -> None:
        await ready_event.wait()
        engine: Engine = seen["engine"]
        kill = engine.risk_engine.kill_switch
        stats = engine.risk_engine.stats

        async def state_is(state: KillSwitchState) -> bool:
            return kill.state is state

        os.kill(os.getpid(), signal.SIGUSR1)
        await eventually(lambda: state_is(KillSwitchState.REDUCING), what="kill switch reducing")
        os.kill(os.getpid(), signal.SIGUSR2)
        await eventually(lambda: state_is(KillSwitchState.HALTED), what="kill switch halted")
        seen["orders_at_halt"] = stats.orders_total
        halted_rejects = stats.rejects_by_reason["kill_switch_halted"]

        async def refused_more() -> bool:
            return stats.rejects_by_reason["kill_switch_halted"] >= halted_rejects + 50

        await eventually(refused_more, what="50 signals refused while halted")
        engine.stop.set()

    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        daemon = group.create_task(run_daemon(_config(record), on_ready=ready))
        group.create_task(operate())
    assert daemon.result() == EXIT_OK
    engine: Engine = seen["engine"]
    assert engine.risk_engine.stats.orders_total == seen["orders_at_halt"]
    assert engine.risk_engine.kill_switch.reason == "operator SIGUSR2"


async def test_recorder_off_runs_and_stops_cleanly(tmp_path: Path) -> None:
    """RECORD_FILE empty turns the recorder off; the engine still trades and drains to exit 0."""
    config = load_config(
        {}, {"METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0", "RECORD_FILE": "", "MOCK_RATE": "0"}
    )
    seen: dict[str, Engine] = {}

    def ready(engine: Engine, port: int) -> None:
        seen["engine"] = engine

    async with asyncio.timeout(30):
        status = await run_daemon(config, duration=0.5, on_ready=ready)
    assert status == EXIT_OK
    engine = seen["engine"]
    assert engine.recorder is None
    assert sum(engine.feed.ticks_by_symbol.values()) > 0
    assert engine.risk_engine.stats.orders_total > 0
    assert os.listdir(tmp_path) == []


def test_bookkeeping_channels_yield_to_the_hot_path(tmp_path: Path) -> None:
    """The wiring makes the recorder, positions and metrics inboxes background channels that wait for the
    channels from a tick to an order at a venue, and the simulated venues' reports wait for the same channels
    except the venue's own routes; the hot channels themselves never wait."""
    from dma_bot.clock import ManualClock
    from dma_bot.main import build_engine

    engine = build_engine(_config(tmp_path / "events.jsonl"), ManualClock(), asyncio.Event())
    background = {c.name for c in engine.channels if c._defer_while is not None}
    assert background == {"record", "exec.positions", "exec.metrics"}
    busy = engine.record._defer_while
    assert busy is not None and not busy()
    gateways = {g.venue: g for g in engine.gateways}
    own = gateways["A"]._yield_while
    assert own is not None and not own()
    hot = next(c for c in engine.channels if c.name == "signals")
    hot._items.append(object())
    assert busy() and own()
    hot._items.clear()
    gateways["A"].inbox._items.append(object())  # its own routes do not hold its reports back
    assert not own() and gateways["B"]._yield_while() and busy()  # type: ignore[misc]
