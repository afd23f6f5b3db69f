"""bench/backtest.py's data sets: recordings that read back as the mock walk's quotes, and Nautilus's exact prices."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

from dma_bot.config import load_config
from dma_bot.feed.mock import RandomWalk
from dma_bot.feed.recording import ReadStats, SkipReason, read_ticks, recording_instruments
from dma_bot.params import mock_instruments, random_walk_params

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_recording_reads_back_as_the_mock_walk_in_rounds_1_ms_apart(tmp_path: Path) -> None:
    bench = _load("backtest")
    preset = bench._preset({})
    path = tmp_path / "b.jsonl"
    quotes = 4 * bench.ROUNDS_PER_CHUNK + 3  # crosses a chunk and ends in a partial round
    summary = bench.write_recording(path, preset, quotes)

    config = load_config(preset, {})
    symbols = config["SYMBOLS"]
    assert len(symbols) == 4 and summary["quotes"] == quotes
    instruments = mock_instruments(config)
    assert {s: (i.tick_size, i.step_size) for s, i in recording_instruments(path).items()} == {
        s: (i.tick_size, i.step_size) for s, i in instruments.items()}
    stats = ReadStats()
    ticks = list(read_ticks(path, stats, strict=True))
    assert stats.quotes == quotes and stats.skipped[SkipReason.NOT_MD] == 2  # the Start and Stop records

    walk = RandomWalk(symbols, random_walk_params(config, instruments), config["MOCK_SEED"])
    expected = [walk.next(n % 4, 0) for n in range(quotes)]
    assert [(t.symbol, t.bid, t.ask, t.bid_qty, t.ask_qty) for t in ticks] == [
        (t.symbol, t.bid, t.ask, t.bid_qty, t.ask_qty) for t in expected]
    stamps = [t.ts_event_ns for t in ticks]
    assert stamps == sorted(set(stamps)) and all(t.ts_ns == t.ts_event_ns for t in ticks)
    btc = [t.ts_event_ns for t in ticks if t.symbol == symbols[0]]
    assert {b - a for a, b in itertools.pairwise(btc)} == {bench.QUOTE_SPACING_NS}


def test_nautilus_side_turns_decimal_strings_into_exact_fixed_point_integers() -> None:
    side = _load("nautilus_side")
    assert side._raw("99.97", 2, 10**14) == 9_997 * 10**14
    assert side._raw("3.1", 3, 10**13) == 3_100 * 10**13
    assert side._raw("12", 2, 10**14) == 1_200 * 10**14
    assert side._places("0.001") == 3 and side._places("1") == 0


def test_run_ours_counts_the_events_of_the_backtest_it_ran(tmp_path: Path) -> None:
    bench = _load("backtest")
    preset = bench._preset({})
    recording = tmp_path / "b.jsonl"
    bench.write_recording(recording, preset, 4000)
    result = bench.run_ours("B", recording, preset, tmp_path)

    lines = (tmp_path / "out_B" / "events.jsonl").read_bytes().splitlines()
    kinds = [line.split(b'"type":"', 1)[1].split(b'"', 1)[0] for line in lines]
    assert kinds[0] == b"Start" and kinds[-1] == b"Stop" and b"Md" not in kinds
    assert result["events"] == len(lines) - 2
    assert {b"Sig", b"Ord", b"Route", b"Exec"} <= set(kinds)  # the run traded: the count is of real events
    assert result["us_per_event"] == round(result["run_s"] * 1e6 / result["events"], 2)
