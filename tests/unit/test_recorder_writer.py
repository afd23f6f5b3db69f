"""Tests of the recorder stage (dma_bot.recorder.writer) over real files and real bus channels."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dma_bot.bus import Channel
from dma_bot.clock import ManualClock
from dma_bot.errors import StartupError
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.recorder.jsonl_decode import SkipReason, decode_record, read_records, to_event
from dma_bot.recorder.writer import TAIL_SCAN_BYTES, AppendFile, RecorderStage, describe_tail

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
    assert stop["counts"] == {"Md": 2, "Sig": 1, "Ord": 0, "Route": 0, "Exec": 1, "Reject": 0, "Note": 0, "Account": 0,
                             "Start": 1}
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
    """A task cancelled before its first step never runs its body: close() (idempotent) frees the file, which
    holds the Start that open() wrote and nothing more."""
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
    assert [r["type"] for r in _records(path)] == ["Start"]


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
    """open() creates the parent directories and the file and writes the Start; close() adds nothing."""
    path = tmp_path / "a" / "b" / "run.jsonl"
    stage, _, _ = _stage(path)

    stage.open()
    stage.close()

    assert [r["type"] for r in _records(path)] == ["Start"]


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


# --- storage failures: a fake disk behind the opener seam, and /dev/full ---------------------------------------


class FakeDisk:
    """A disk with ``room`` bytes left (None: unlimited). A write that does not fit hands over what fits (a
    short write, as write(2) does) and the next one fails with ENOSPC; ``recover()`` makes room again.
    What it accepts goes through to the real file."""

    def __init__(self, room: int | None) -> None:
        self.room = room
        self.refused = 0

    def open(self, path: str) -> AppendFile:
        return _FakeDiskFile(self, open(path, "ab", buffering=0))

    def recover(self) -> None:
        self.room = None


class _FakeDiskFile:
    def __init__(self, disk: FakeDisk, real: Any) -> None:
        self._disk = disk
        self._real = real

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        disk = self._disk
        if disk.room is None:
            return int(self._real.write(data))
        if disk.room == 0:
            disk.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        count = int(self._real.write(bytes(data[: disk.room])))
        disk.room -= count
        return count

    def fileno(self) -> int:
        return int(self._real.fileno())

    def close(self) -> None:
        self._real.close()


def _storage_stage(path: str | Path, **options: Any) -> tuple[RecorderStage, Channel[object], JsonlEncoder,
                                                               ManualClock, list[OSError]]:
    """A stage whose write failures are collected in the returned list (its on_write_failure)."""
    inbox: Channel[object] = Channel("recorder", maxsize=options.pop("maxsize", 4096))
    encoder = JsonlEncoder(INSTRUMENTS)
    clock = ManualClock(START_NS)
    failures: list[OSError] = []
    stage = RecorderStage(
        str(path), encoder, inbox, clock, {"version": "0.1.0", "mode": "mock"}, lambda: {"exec_reports": 1},
        on_write_failure=failures.append, **options,
    )
    return stage, inbox, encoder, clock, failures


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run (the stage between turns) until ``condition()`` holds; fail after 5 s."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - plain attributes, maybe set by a worker thread: no event
            await asyncio.sleep(0)  # one turn of the loop, not a timed wait


def _start_line_length() -> int:
    return len(JsonlEncoder(INSTRUMENTS).encode_control("Start", {"version": "0.1.0", "mode": "mock"},
                                                        ts_ns=START_NS))


@pytest.mark.parametrize("threshold", [0, None])
async def test_recorder_disk_full_holds_lines_keeps_consuming_and_writes_all_in_order_on_recovery(
    tmp_path: Path, threshold: int | None
) -> None:
    """ENOSPC mid-line: no exception, the callback once, the inbox keeps draining (a producer of 200 events
    on an 8-slot channel finishes), retries fail and are counted; once the disk recovers a retry writes
    every held line after the cut-short one, so the file is whole with gapless seq and an unclean Stop."""
    path = tmp_path / "full.jsonl"
    disk = FakeDisk(room=_start_line_length() + 50)  # the Start fits, the first Md is cut after 50 bytes
    options: dict[str, Any] = {} if threshold is None else {"thread_threshold_bytes": threshold}
    stage, inbox, encoder, _, failures = _storage_stage(path, opener=disk.open, retry_interval_s=0, maxsize=8,
                                                        **options)
    stage.open()
    ticks = [_tick(i) for i in range(202)]

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        task = group.create_task(stage.run())
        await inbox.put(ticks[0])
        await _until(lambda: bool(failures))  # reported on the loop thread once the write has returned
        assert not path.read_bytes().endswith(b"\n")  # the line was cut short on disk
        assert [e.errno for e in failures] == [errno.ENOSPC]
        assert (stage.failing, stage.lines_held, stage.records_written) == (True, 1, 1)
        for tick in ticks[1:201]:  # each batch retries (interval 0) and fails
            await inbox.put(tick)
        await _until(lambda: stage.lines_held == 201)  # set by the (maybe threaded) write, after its retry
        assert stage.write_failures == disk.refused >= 2
        assert stage.records_written == 1 and encoder.seq == 202
        disk.room = 1000  # a retry that fits part of the held lines: written up to there, the rest held
        await inbox.put(ticks[201])
        await _until(lambda: disk.room == 0 and encoder.seq == 203 and stage.lines_held + stage.records_written == 203)
        assert stage.failing and 1 < stage.records_written < 10
        disk.recover()
        ticks.append(_tick(202))
        await inbox.put(ticks[202])
        await _until(lambda: stage.records_written == 204)
        assert not stage.failing and stage.lines_held == 0
        await inbox.close()

    assert task.done() and task.exception() is None
    records = _records(path)  # strict: every line whole
    assert [r["seq"] for r in records] == list(range(1, 206))
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == ticks
    stop = records[-1]
    assert stop["clean"] is False
    assert stop["storage"] == {"write_failures": stage.write_failures, "lines_dropped": 0}
    assert len(failures) == 1
    assert (stage.records_written, stage.lines_unwritten, stage.lines_dropped) == (205, 0, 0)


async def test_recorder_retries_a_failed_write_at_most_once_per_retry_interval(tmp_path: Path) -> None:
    """While the disk is full, batches are held without touching the file until retry_interval_s has
    passed on the stage's clock: one failed attempt, then one per interval."""
    disk = FakeDisk(room=None)
    stage, inbox, encoder, clock, failures = _storage_stage(tmp_path / "r.jsonl", opener=disk.open,
                                                            retry_interval_s=1.0)
    stage.open()
    disk.room = 0  # full right after the Start

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(stage.run())
        for i in range(5):
            await inbox.put(_tick(i))
            await _until(lambda i=i: encoder.seq == i + 2)
        assert disk.refused == stage.write_failures == 1  # the first Md's write; no retry yet
        clock.advance(1_000_000_000)
        await inbox.put(_tick(5))
        await _until(lambda: encoder.seq == 7)
        assert disk.refused == stage.write_failures == 2
        assert stage.lines_held == 6
        await inbox.close()

    assert len(failures) == 1


async def test_recorder_past_the_memory_bound_drops_and_counts_lines_then_resumes(tmp_path: Path) -> None:
    """With max_unwritten_bytes held, further batches are dropped and counted; the retry after recovery
    writes the held lines and then the new batch, so the seq gap is exactly the dropped lines, and the Stop
    says how many."""
    path = tmp_path / "bound.jsonl"
    disk = FakeDisk(room=None)
    stage, inbox, encoder, clock, failures = _storage_stage(path, opener=disk.open, retry_interval_s=1.0,
                                                            max_unwritten_bytes=1000)
    stage.open()
    disk.room = 0  # full right after the Start
    ticks = [_tick(i) for i in range(21)]

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(stage.run())
        for i, tick in enumerate(ticks[:20]):
            await inbox.put(tick)
            await _until(lambda i=i: encoder.seq == i + 2)
        dropped, kept = stage.lines_dropped, stage.lines_held
        assert dropped > 0 and kept + dropped == 20  # 20 Md lines after the Start
        assert 1000 <= stage.bytes_held < 1000 + 200  # the bound plus at most one batch
        disk.recover()
        clock.advance(1_000_000_000)
        await inbox.put(ticks[20])
        await _until(lambda: encoder.seq == 22)
        assert not stage.failing and stage.records_written == kept + 2
        await inbox.close()

    records = _records(path)
    assert [r["seq"] for r in records] == [*range(1, kept + 2), 22, 23]
    assert [to_event(r, INSTRUMENTS) for r in records[1:-1]] == [*ticks[:kept], ticks[20]]
    stop = records[-1]
    assert stop["clean"] is False
    assert stop["storage"] == {"write_failures": 1, "lines_dropped": dropped}
    assert stop["counts"]["Md"] == 21  # encoded, of which lines_dropped never reached the file
    assert (stage.lines_dropped, stage.lines_unwritten, stage.records_written) == (dropped, dropped, kept + 3)
    assert stage.records_written + stage.lines_unwritten == encoder.seq
    assert len(failures) == 1


async def test_recorder_disk_that_never_recovers_ends_quietly_and_the_next_run_starts_on_a_new_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk full to the end: run() returns, the lines never written are counted and logged, the file
    ends inside a line. The next run's open() sees it: a newline, then a Start with previous_section, and
    the reader skips the torn line as TORN with its line number."""
    path = tmp_path / "torn.jsonl"
    disk = FakeDisk(room=_start_line_length() + 50)
    stage, inbox, encoder, _, failures = _storage_stage(path, opener=disk.open, retry_interval_s=0)
    stage.open()

    await _run_to_end(stage, inbox, EVENTS)

    assert [e.errno for e in failures] == [errno.ENOSPC]
    assert stage.failed and stage.records_written == 1
    assert stage.lines_unwritten == encoder.seq - 1 == len(EVENTS) + 1  # the events and the Stop
    assert "never reached" in caplog.text
    torn = path.read_bytes()
    assert not torn.endswith(b"\n")

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dma_bot.recorder.writer"):
        second, inbox2, _ = _stage(path)
        second.open()
    assert second.previous_section == {"clean": False, "stop": False, "torn_line": True}
    assert [r.getMessage() for r in caplog.records if "previous section" in r.getMessage()] == [
        f"recorder: the previous section of '{path}' ends inside a line (a write was cut short); the new section "
        "starts on a new line; the new Start records it"
    ]
    await _run_to_end(second, inbox2, EVENTS[:1])

    data = path.read_bytes()
    assert data.startswith(torn + b"\n{")
    records, skipped = read_records(path)
    assert [r["type"] for r in records] == ["Start", "Start", "Md", "Stop"]
    assert records[1]["previous_section"] == {"clean": False, "stop": False, "torn_line": True}
    assert records[-1]["clean"] is True and second.records_written == 3
    assert skipped.lines == [(2, SkipReason.TORN)]
    assert skipped.counts[SkipReason.TORN] == 1 and skipped.total == 1


async def test_recorder_fsync_failure_makes_the_stop_unclean_without_raising(tmp_path: Path) -> None:
    """An EIO from fsync at the end (before the Stop) is a write failure: reported once, counted, and the
    Stop says clean=false; run() does not raise."""
    path = tmp_path / "fsync.jsonl"
    calls: list[int] = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    stage, inbox, _, _, failures = _storage_stage(path, fsync=failing_fsync)
    stage.open()

    await _run_to_end(stage, inbox, EVENTS)

    records = _records(path)
    assert [r["type"] for r in records] == ["Start", "Md", "Sig", "Exec", "Md", "Stop"]
    assert records[-1]["clean"] is False
    assert records[-1]["storage"] == {"write_failures": 1, "lines_dropped": 0}
    assert [e.errno for e in failures] == [errno.EIO]
    assert len(calls) == 2 and stage.write_failures == 1 and stage.lines_unwritten == 0


async def test_recorder_cancelled_while_the_disk_is_full_raises_only_the_cancellation(tmp_path: Path) -> None:
    """Torn down while holding lines: the cancellation propagates, not an OSError, and the lines stay counted."""
    disk = FakeDisk(room=None)
    stage, inbox, encoder, _, failures = _storage_stage(tmp_path / "c.jsonl", opener=disk.open)
    stage.open()
    disk.room = 0  # full right after the Start
    task = asyncio.create_task(stage.run())
    await inbox.put(_tick(0))
    await _until(lambda: encoder.seq == 2)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(failures) == 1 and stage.failed
    assert stage.lines_unwritten == 2 and encoder.seq == 3 and stage.records_written == 1  # Md and Stop held


@pytest.mark.skipif(not os.access("/dev/full", os.W_OK), reason="/dev/full (writes fail with ENOSPC) is missing")
async def test_recorder_on_dev_full_refuses_to_start() -> None:
    """A real device whose writes fail with ENOSPC: open() cannot write the Start, so start-up stops with one
    StartupError naming the file and the reason, before anything runs (no failure callback: nothing traded)."""
    stage, _, _, _, failures = _storage_stage("/dev/full", min_free_bytes=0)

    with pytest.raises(StartupError, match=r"^RECORD_FILE: cannot write to '/dev/full': No space left on device"):
        stage.open()

    assert failures == []
    stage.close()


# --- open(): the previous section and free space ----------------------------------------------------------------


async def test_recorder_open_after_a_clean_section_records_it_and_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file ending with a clean Stop: the new Start says so, nothing extra is written, no warning."""
    path = tmp_path / "clean.jsonl"
    first, inbox, _ = _stage(path)
    first.open()
    await _run_to_end(first, inbox, EVENTS[:1])
    before = path.read_bytes()

    with caplog.at_level(logging.WARNING, logger="dma_bot.recorder.writer"):
        second, inbox2, _ = _stage(path)
        second.open()
    await _run_to_end(second, inbox2, EVENTS[:1])

    assert not [r for r in caplog.records if "previous section" in r.getMessage()]
    assert path.read_bytes().startswith(before + b'{"type":"Start"')
    start = _records(path)[3]
    assert start["type"] == "Start"
    assert start["previous_section"] == {"clean": True, "stop": True, "torn_line": False}


async def test_recorder_open_after_a_crashed_section_says_it_has_no_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose last section has whole lines but no Stop (a crash): previous_section stop=false, one
    warning, no newline added."""
    path = tmp_path / "crashed.jsonl"
    encoder = JsonlEncoder(INSTRUMENTS)
    crashed = encoder.encode_control("Start", {}, ts_ns=START_NS) + encoder.encode(_tick(0))
    path.write_bytes(crashed)

    with caplog.at_level(logging.WARNING, logger="dma_bot.recorder.writer"):
        stage, inbox, _ = _stage(path)
        stage.open()
    await _run_to_end(stage, inbox, [])

    messages = [r.getMessage() for r in caplog.records if "previous section" in r.getMessage()]
    assert messages == [f"recorder: the previous section of '{path}' has no Stop record at its end (the last run "
                        "did not stop); the new Start records it"]
    assert path.read_bytes().startswith(crashed + b'{"type":"Start"')
    assert _records(path)[2]["previous_section"] == {"clean": False, "stop": False, "torn_line": False}


def test_recorder_open_reads_only_the_tail_of_the_file(tmp_path: Path) -> None:
    """A last line longer than the bytes open() reads cannot be checked: stop is null, not guessed."""
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"type":"Stop","clean":true}\n' + b'{"type":"Md","x":"' + b"9" * TAIL_SCAN_BYTES + b'"}\n')
    stage, _, _ = _stage(path)

    stage.open()
    stage.close()

    assert stage.previous_section == {"clean": False, "stop": None, "torn_line": False}


@pytest.mark.parametrize(
    ("tail", "whole_file", "expected"),
    [
        (b"", True, None),
        (b'{"type":"Stop","clean":true}\n', True, {"clean": True, "stop": True, "torn_line": False}),
        (b'{"type":"Stop","clean":false}\n', True, {"clean": False, "stop": True, "torn_line": False}),
        (b'x\n{"type":"Stop","clean":true}\n', False, {"clean": True, "stop": True, "torn_line": False}),
        (b'{"type":"Md"}\n', True, {"clean": False, "stop": False, "torn_line": False}),
        (b'{"type":"Stop","clean":true}\n{"type":"Md","se', True, {"clean": False, "stop": False, "torn_line": True}),
        (b'{"type":"Stop","clean":true}', True, {"clean": False, "stop": False, "torn_line": True}),
        (b'"type":"Stop","clean":true}\n', False, {"clean": False, "stop": None, "torn_line": False}),
        (b"not json\n", True, {"clean": False, "stop": False, "torn_line": False}),
    ],
)
def test_describe_tail_says_how_the_last_section_ended(
    tail: bytes, whole_file: bool, expected: dict[str, Any] | None
) -> None:
    assert describe_tail(tail, whole_file=whole_file) == expected


@pytest.mark.parametrize(("free", "warns"), [(999, True), (1000, False)])
def test_recorder_open_warns_once_when_free_space_is_below_the_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, free: int, warns: bool
) -> None:
    """Free space below min_free_bytes on the file's file system is one warning naming path, free and bound."""
    path = tmp_path / "d" / "run.jsonl"
    asked: list[str] = []

    def disk_usage(directory: str) -> SimpleNamespace:
        asked.append(directory)
        return SimpleNamespace(free=free)

    stage, _, _, _, _ = _storage_stage(path, min_free_bytes=1000, disk_usage=disk_usage)
    with caplog.at_level(logging.WARNING, logger="dma_bot.recorder.writer"):
        stage.open()
    stage.close()

    assert asked == [str(tmp_path / "d")]
    expected = [f"recorder: only 999 bytes free on the file system of '{path}', below the 1000-byte warning bound"]
    assert [r.getMessage() for r in caplog.records] == (expected if warns else [])


def test_recorder_refuses_start_fields_that_set_previous_section(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="previous_section"):
        RecorderStage(str(tmp_path / "x.jsonl"), JsonlEncoder(INSTRUMENTS), Channel("recorder", maxsize=1),
                      ManualClock(),
                      {"previous_section": {}}, dict)
