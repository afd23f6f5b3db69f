"""Tests of the recorder stage (dma_bot.recorder.writer) over real files and real bus channels."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dma_bot.bus import Channel
from dma_bot.clock import ManualClock
from dma_bot.errors import StartupError
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.recorder.jsonl_decode import decode_record, to_event
from dma_bot.recorder.writer import RecorderStage

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))
INSTRUMENTS = {"BTCUSDT": BTC}
START_NS = 1_700_000_000_000_000_000


def _tick(i: int) -> Tick:
    return Tick("BTCUSDT", 6_500_000 + i, 6_500_001 + i, 1000 + i, 2000 + i, START_NS + i, START_NS + i + 1)


EVENTS: list[Any] = [
    _tick(0),
    Signal("mean_reversion", "BTCUSDT", Side.BUY, 6_500_000, 100, START_NS, START_NS + 2),
    ExecReport(venue="A", symbol="BTCUSDT", client_order_id="o-1-A", venue_order_id="9", side=Side.BUY,
               status=ExecStatus.FILLED, last_qty=100, last_price=6_500_000, order_qty=100, cum_qty=100, leaves_qty=0,
               fee=Decimal("0.0065"), fee_asset="USDT", trade_id="t1", reason="", ts_event_ns=START_NS,
               ts_ns=START_NS + 3),
    _tick(1),
]


def _stage(path: Path, *, threshold: int | None = None, maxsize: int = 4096,
           stop_fields: Any = None) -> tuple[RecorderStage, Channel[object], JsonlEncoder]:
    inbox: Channel[object] = Channel("recorder", maxsize=maxsize)
    encoder = JsonlEncoder(INSTRUMENTS)
    extra = {} if threshold is None else {"thread_threshold_bytes": threshold}
    stage = RecorderStage(
        str(path), encoder, inbox, ManualClock(START_NS), {"version": "0.1.0", "mode": "mock"},
        stop_fields or (lambda: {"exec_reports": 1}), **extra,
    )
    return stage, inbox, encoder


def _records(path: Path) -> list[dict[str, Any]]:
    return [decode_record(line) for line in path.read_bytes().splitlines()]


async def _run_to_end(stage: RecorderStage, inbox: Channel[object], events: list[Any]) -> None:
    for event in events:
        await inbox.put(event)
    await inbox.close()
    async with asyncio.timeout(5):
        await stage.run()


async def test_recorder_writes_start_events_in_order_and_clean_stop(tmp_path: Path) -> None:
    """A run writes Start, every event in order, then a clean Stop with counts and stop fields."""
    path = tmp_path / "run.jsonl"
    stage, inbox, _ = _stage(path)
    stage.open()

    await _run_to_end(stage, inbox, EVENTS)

    records = _records(path)
    assert [r["type"] for r in records] == ["Start", "Md", "Sig", "Exec", "Md", "Stop"]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert (records[0]["version"], records[0]["mode"], records[0]["ts_ns"]) == ("0.1.0", "mock", START_NS)
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == EVENTS
    stop = records[-1]
    assert stop["clean"] is True and stop["exec_reports"] == 1
    assert stop["counts"] == {"Md": 2, "Sig": 1, "Ord": 0, "Route": 0, "Exec": 1, "Reject": 0, "Note": 0, "Start": 1}
    assert stage.records_written == 6
    assert stage.last_flush_ns == START_NS


async def test_recorder_batches_written_from_a_thread_keep_file_order(tmp_path: Path) -> None:
    """With the thread threshold at 0 every batch goes through asyncio.to_thread, still in order."""
    path = tmp_path / "threaded.jsonl"
    stage, inbox, _ = _stage(path, threshold=0, maxsize=64)
    stage.open()
    ticks = [_tick(i) for i in range(1500)]

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(stage.run())
        for tick in ticks:
            await inbox.put(tick)
        await inbox.close()

    records = _records(path)
    assert [r["seq"] for r in records] == list(range(1, len(ticks) + 3))
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == ticks
    assert records[-1]["clean"] is True and records[-1]["counts"]["Md"] == 1500


async def test_recorder_append_adds_a_section_with_seq_restarting_at_one(tmp_path: Path) -> None:
    """A second run appends its own Start..Stop section to the file, numbered from 1 again."""
    path = tmp_path / "append.jsonl"
    for events in (EVENTS[:2], EVENTS[2:]):
        stage, inbox, _ = _stage(path)
        stage.open()
        await _run_to_end(stage, inbox, events)

    records = _records(path)
    assert [(r["type"], r["seq"]) for r in records] == [
        ("Start", 1), ("Md", 2), ("Sig", 3), ("Stop", 4),
        ("Start", 1), ("Exec", 2), ("Md", 3), ("Stop", 4),
    ]


@pytest.mark.parametrize("threshold", [0, None])
@pytest.mark.parametrize("yields", range(1, 12))
async def test_recorder_cancel_mid_run_keeps_every_encoded_record_and_writes_unclean_stop(
    tmp_path: Path, yields: int, threshold: int | None
) -> None:
    """Cancelled at any await (in get_batch or during a thread write), the file holds Start, every
    record the encoder numbered, and a Stop with clean=false, contiguous and counted."""
    path = tmp_path / "cancel.jsonl"
    stage, inbox, encoder = _stage(path, threshold=threshold, maxsize=8)
    stage.open()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        task = group.create_task(stage.run())
        for i in range(6):
            await inbox.put(_tick(i))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()

    assert task.cancelled()
    records = _records(path)
    stop = records[-1]
    assert [r["type"] for r in records[:1]] == ["Start"]
    assert stop["type"] == "Stop" and stop["clean"] is False
    assert [r["seq"] for r in records] == list(range(1, encoder.seq + 1))
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == [_tick(i) for i in range(len(records) - 2)]
    assert stop["counts"]["Md"] == len(records) - 2
    assert stage.records_written == len(records)


async def test_recorder_cancelled_before_it_starts_leaves_file_to_close(tmp_path: Path) -> None:
    """A task cancelled before its first step never runs its body: close() (idempotent) frees the file."""
    path = tmp_path / "unstarted.jsonl"
    stage, inbox, _ = _stage(path)
    stage.open()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        task = group.create_task(stage.run())
        await inbox.put(_tick(0))
        task.cancel()
    stage.close()
    stage.close()

    assert task.cancelled()
    assert path.read_bytes() == b""


async def test_recorder_error_mid_batch_writes_encoded_prefix_and_unclean_stop(tmp_path: Path) -> None:
    """An unencodable item raises out of run(), after the lines encoded before it and an unclean Stop."""
    path = tmp_path / "error.jsonl"
    stage, inbox, _ = _stage(path)
    stage.open()

    with pytest.raises(TypeError, match="cannot encode str"):
        await _run_to_end(stage, inbox, [_tick(0), "not an event", _tick(1)])

    records = _records(path)
    assert [r["type"] for r in records] == ["Start", "Md", "Stop"]
    assert records[-1]["clean"] is False


async def test_recorder_stop_fields_failure_still_writes_unclean_stop_then_raises(tmp_path: Path) -> None:
    """If stop_fields() fails the Stop is written without its fields, marked unclean, and the error raised."""
    path = tmp_path / "stop.jsonl"

    def broken() -> dict[str, Any]:
        raise KeyError("metrics")

    stage, inbox, _ = _stage(path, stop_fields=broken)
    stage.open()

    with pytest.raises(KeyError, match="metrics"):
        await _run_to_end(stage, inbox, EVENTS[:1])

    records = _records(path)
    assert [r["type"] for r in records] == ["Start", "Md", "Stop"]
    assert records[-1]["clean"] is False and "exec_reports" not in records[-1]


def test_recorder_open_under_a_file_raises_startup_error(tmp_path: Path) -> None:
    """A path whose parent is a regular file cannot be opened: StartupError naming RECORD_FILE and the path."""
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    path = blocker / "run.jsonl"
    stage, _, _ = _stage(path)

    with pytest.raises(StartupError, match=r"^RECORD_FILE: cannot open '.*plain-file/run.jsonl': Not a directory$"):
        stage.open()


def test_recorder_open_creates_missing_parent_directories(tmp_path: Path) -> None:
    """open() creates the parent directories and the file, and close() releases it without writing."""
    path = tmp_path / "a" / "b" / "run.jsonl"
    stage, _, _ = _stage(path)

    stage.open()
    stage.close()

    assert path.exists() and path.read_bytes() == b""


async def test_recorder_run_before_open_is_an_error(tmp_path: Path) -> None:
    """run() without a successful open() refuses to start."""
    stage, _, _ = _stage(tmp_path / "never.jsonl")

    with pytest.raises(RuntimeError, match="open"):
        await stage.run()


async def test_recorder_torn_down_while_behind_still_records_what_was_queued(tmp_path: Path) -> None:
    """A background recorder that is behind (yielding to a busy hot path) when its task is cancelled (a
    crash elsewhere, a forced stop) encodes everything still queued before its unclean Stop: no event that
    passed through the engine is lost."""
    path = tmp_path / "run.jsonl"
    stage, inbox, _ = _stage(path)
    inbox.defer_while(lambda: True)  # the hot path never drains: the recorder keeps deferring
    stage.open()
    for event in EVENTS:
        await inbox.put(event)
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert inbox.qsize() == len(EVENTS)  # still deferring: nothing taken yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    records = _records(path)
    assert [r["type"] for r in records] == ["Start", "Md", "Sig", "Exec", "Md", "Stop"]
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == EVENTS
    assert records[-1]["clean"] is False
    assert records[-1]["counts"]["Md"] == 2
    assert inbox.qsize() == 0
