"""feed/prefetch.py with real child processes: the same blocks and the same counts after each block as reading
in-process, a RecordingError at the same point with the same text, a crash or a silent death of the child as a
PrefetchError (never a hang), and no child left behind."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dma_bot.config import load_config, preset_values
from dma_bot.feed import recording_columns
from dma_bot.feed.mock import RandomWalk
from dma_bot.feed.prefetch import Prefetch, PrefetchError, prefetch_available
from dma_bot.feed.recording import ReadStats, RecordingError
from dma_bot.feed.recording_columns import QuoteBlock, merge_columns, read_columns
from dma_bot.params import mock_instruments, random_walk_params
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_796_083_200_000_000_000
FIELDS = ("symbol", "bid", "ask", "bid_qty", "ask_qty", "ts_event_ns", "ts_ns")

pytestmark = pytest.mark.skipif(not prefetch_available(), reason="no fork start method here")


def _write(path: Path, seed: int, quotes: int, *, corrupt: bool) -> Path:
    """The mock walk of the preset's symbols; ``corrupt``: a line that is not JSON, a quote of a symbol without
    an instrument (both bad lines) and a late quote every few hundred lines: problems."""
    config = load_config(preset_values(str(ROOT / ".env.mock")), {})
    instruments = mock_instruments(config)
    walk = RandomWalk(config["SYMBOLS"], random_walk_params(config, instruments), seed)
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=T0)]
    count = len(config["SYMBOLS"])
    for i in range(quotes):
        lines.append(encoder.encode(walk.next(i % count, T0 + i * 1_000_000 + seed)))
        if corrupt and i % 300 == 150:
            lines.append(b'{"type":"Md","seq":1,"ts_ns":oops}\n')
            lines.append(re.sub(rb'"symbol":"[A-Z]+"', b'"symbol":"XRPUSDT"', lines[-2]))
            lines.append(encoder.encode(walk.next(0, T0)))  # older than the quotes before it
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("prefetch")
    return [_write(folder / f"r{seed}.jsonl", seed, 3_000, corrupt=True) for seed in (1, 2, 3)]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many blocks per file (the child is forked from this process: it reads with the same chunk size)."""
    monkeypatch.setattr(recording_columns, "CHUNK_BYTES", 16 << 10)


def _reader(paths: list[Path], stats: ReadStats, *, strict: bool = False) -> Iterator[QuoteBlock]:
    symbols = load_config(preset_values(str(ROOT / ".env.mock")), {})["SYMBOLS"]
    return merge_columns([read_columns(path, stats, symbols=symbols, strict=strict) for path in paths])


def _consume(blocks: Iterator[QuoteBlock], stats: ReadStats) -> list[tuple[QuoteBlock, ReadStats]]:
    """Each block with the counts as they are right after it is handed out (what the progress bar reads)."""
    return [(block, copy.deepcopy(stats)) for block in blocks]


def _same(a: list[tuple[QuoteBlock, ReadStats]], b: list[tuple[QuoteBlock, ReadStats]], *, least: int = 5) -> None:
    assert len(a) == len(b) >= least
    for (block_a, stats_a), (block_b, stats_b) in zip(a, b, strict=True):
        assert block_a.symbols == block_b.symbols
        for name in FIELDS:
            assert np.array_equal(getattr(block_a, name), getattr(block_b, name))
        assert stats_a == stats_b


def _children() -> list[int]:
    """This process's children, zombies included (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                found.append(int(entry))
    return found


def test_the_blocks_and_the_counts_after_each_are_those_read_in_process(recordings: list[Path]) -> None:
    here = ReadStats()
    expected = _consume(_reader(recordings, here), here)
    stats = ReadStats()
    prefetch = Prefetch(lambda: _reader(recordings, stats), stats)
    with prefetch as blocks:
        pid = prefetch.pid
        assert pid is not None and pid != os.getpid()
        got = _consume(blocks, stats)
    _same(got, expected)
    assert stats == here and len(stats.problems) == 10
    assert stats.skipped["bad_line"] and stats.skipped["out_of_order"]
    assert all(block.bid.flags.writeable for block, _ in got)  # as the reader's own arrays
    assert pid not in _children()


def test_a_strict_error_is_raised_after_the_same_blocks_with_the_same_text(recordings: list[Path]) -> None:
    here = ReadStats()
    blocks_here = _reader(recordings, here, strict=True)
    expected = []
    with pytest.raises(RecordingError) as raised_here:
        for block in blocks_here:
            expected.append((block, copy.deepcopy(here)))
    stats = ReadStats()
    got = []
    with Prefetch(lambda: _reader(recordings, stats, strict=True), stats) as blocks, \
            pytest.raises(RecordingError) as raised:
        for block in blocks:
            got.append((block, copy.deepcopy(stats)))
    assert str(raised.value) == str(raised_here.value) and ":" in str(raised.value)
    assert stats == here
    _same(got, expected, least=1)  # the error comes after a few blocks


def _crashing(recordings: list[Path], stats: ReadStats) -> Iterator[QuoteBlock]:
    blocks = _reader(recordings, stats)
    yield next(blocks)
    raise ValueError("injected into the reader")


def test_another_exception_in_the_child_is_a_prefetch_error_with_its_traceback(recordings: list[Path]) -> None:
    stats = ReadStats()
    prefetch = Prefetch(lambda: _crashing(recordings, stats), stats)
    with prefetch as blocks:
        pid = prefetch.pid
        assert len(next(blocks)) > 0
        with pytest.raises(PrefetchError, match=r"(?s)Traceback.*ValueError: injected into the reader"):
            next(blocks)
    assert pid not in _children()


def _dying(recordings: list[Path], stats: ReadStats) -> Iterator[QuoteBlock]:
    blocks = _reader(recordings, stats)
    yield next(blocks)
    os._exit(3)


def test_a_child_that_dies_without_a_word_is_a_prefetch_error_with_its_exit_code(recordings: list[Path]) -> None:
    stats = ReadStats()
    prefetch = Prefetch(lambda: _dying(recordings, stats), stats)
    with prefetch as blocks:
        pid = prefetch.pid
        next(blocks)
        with pytest.raises(PrefetchError, match=r"ended without a word \(exit code 3\)"):
            next(blocks)
    assert pid not in _children()


def test_leaving_early_stops_the_child(recordings: list[Path]) -> None:
    stats = ReadStats()
    prefetch = Prefetch(lambda: _reader(recordings, stats), stats)
    with prefetch as blocks:
        pid = prefetch.pid
        next(blocks)  # the child is now blocked on the full pipe or still reading
    assert pid not in _children()
    prefetch.close()  # again: nothing


def test_disabled_reads_in_process(recordings: list[Path]) -> None:
    stats = ReadStats()
    prefetch = Prefetch(lambda: _reader(recordings, stats), stats, enabled=False)
    with prefetch as blocks:
        assert prefetch.pid is None
        got = _consume(blocks, stats)
    here = ReadStats()
    _same(got, _consume(_reader(recordings, here), here))
