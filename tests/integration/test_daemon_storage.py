"""The real daemon process when its JSONL file stops taking writes, and the run after it (dma_bot.main wiring,
dma_bot.recorder.writer): a write past RLIMIT_FSIZE fails with EFBIG mid-run, the way a full disk fails."""

from __future__ import annotations

from pathlib import Path

from dma_bot.main import EXIT_UNCLEAN
from dma_bot.recorder.jsonl_decode import SkipReason, read_records
from tests.conftest import Daemon, start_daemon
from tests.integration.test_daemon_mock import FAST

LIMIT = 300_000  # bytes: a few hundred ms of the mock run


async def test_write_failure_halts_drains_and_exits_unclean_then_next_run_starts_on_a_new_line(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The file refuses a write mid-run: one error line (no traceback), trading halted, the daemon drains and exits
    3 by itself. The next run on that file starts on a new line, says the previous section ended uncleanly, and a
    reader skips the torn line and counts it."""
    record = tmp_path / "events.jsonl"
    env = {**FAST, "RECORD_FILE": str(record)}
    daemon = await start_daemon(env, file_size_limit=LIMIT)
    daemons.append(daemon)

    code = await daemon.finish(timeout=60)

    assert code == EXIT_UNCLEAN, daemon.stderr
    assert "Traceback" not in daemon.stderr
    failures = [line for line in daemon.lines if "write failed" in line and "trading halted" in line]
    assert len(failures) == 1, daemon.stderr
    assert str(record) in failures[0]
    assert any("stopped after a recording failure" in line for line in daemon.lines), daemon.stderr
    assert "stopped cleanly" not in daemon.stderr
    size = record.stat().st_size
    assert 0 < size <= LIMIT

    again = await start_daemon(env, "--duration", "1")
    daemons.append(again)
    assert await again.finish() == 0, again.stderr
    records, skipped = read_records(record)

    starts = [r for r in records if r["type"] == "Start"]
    assert len(starts) == 2
    previous = starts[1]["previous_section"]
    assert previous["clean"] is False and previous["stop"] is False
    torn = not record.read_bytes()[:size].endswith(b"\n")
    assert previous["torn_line"] is torn
    assert skipped.counts.get(SkipReason.TORN, 0) == (1 if torn else 0)
    assert records[-1]["type"] == "Stop" and records[-1]["clean"] is True
    second = records[records.index(starts[1]):]
    assert [r["seq"] for r in second] == list(range(1, len(second) + 1))


async def test_low_free_disk_at_start_up_is_one_warning_line_and_the_run_goes_on(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A file system with less free space than RECORD_MIN_FREE_MB: one warning naming the file, then a normal run."""
    record = tmp_path / "events.jsonl"
    daemon = await start_daemon(
        {**FAST, "RECORD_FILE": str(record), "RECORD_MIN_FREE_MB": "10000000"}, "--duration", "0.5"
    )
    daemons.append(daemon)

    assert await daemon.finish() == 0, daemon.stderr
    warnings = [line for line in daemon.lines if "WARNING" in line and "free" in line]
    assert len(warnings) == 1, daemon.stderr
    assert str(tmp_path) in warnings[0]
