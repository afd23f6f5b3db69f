"""The backtest's progress bar (dma_bot.progress): drawn by bytes with records and their rate, or nothing."""

from __future__ import annotations

import io
import os

from dma_bot.progress import Progress, progress_enabled


def test_progress_enabled_draws_the_bytes_read_records_and_their_rate() -> None:
    stream = io.StringIO()

    with Progress(10_240, enabled=True, stream=stream) as progress:
        progress.advance(2_048, 500)
        progress.advance(5_120, 1_234_567)

    text = stream.getvalue()
    last = text.rsplit("\r", 1)[-1]
    assert last.startswith(" 50%|#####") and "5.00k/10.0k" in last, last
    assert "1,234,567 records, " in last and " records/s]" in last, last
    assert text.endswith("\n")


def test_progress_without_a_total_counts_bytes_and_close_twice_is_harmless() -> None:
    stream = io.StringIO()
    progress = Progress(None, enabled=True, stream=stream)

    progress.advance(3_072, 42)
    progress.close()
    progress.close()
    progress.advance(4_096, 43)

    last = stream.getvalue().rsplit("\r", 1)[-1]
    assert last.startswith("3.00kB ") and "42 records" in last and "%" not in last, last


def test_progress_disabled_writes_nothing() -> None:
    stream = io.StringIO()

    with Progress(10_240, enabled=False, stream=stream) as progress:
        for n in range(1, 1_000):
            progress.advance(n * 10, n * 1_000)

    assert stream.getvalue() == ""


def test_progress_is_enabled_on_a_terminal_only() -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert progress_enabled(terminal)
    finally:
        os.close(leader)
        os.close(follower)
    assert not progress_enabled(io.StringIO())
