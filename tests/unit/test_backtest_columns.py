"""The backtest's column loop (run_columns) writes byte for byte what its per-quote reference loop (run) writes."""

from __future__ import annotations

import io
import pickle
from decimal import Decimal
from pathlib import Path

import pytest

import dma_bot.feed.recording_columns as columns
from dma_bot.backtest import Backtest
from dma_bot.config import load_config, preset_values
from dma_bot.equity import MINUTE_NS
from dma_bot.feed.mock import RandomWalk
from dma_bot.feed.recording import ReadStats
from dma_bot.feed.recording_columns import read_columns
from dma_bot.params import mock_instruments, random_walk_params, replay_instruments, replay_prices, replay_ticks
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields

ROOT = Path(__file__).resolve().parents[2]


def _recording(path: Path, quotes: int, symbols: str) -> Path:
    config = load_config(preset_values(str(ROOT / ".env.mock")), {"SYMBOLS": symbols})
    instruments = mock_instruments(config)
    walk = RandomWalk(config["SYMBOLS"], random_walk_params(config, instruments), 42)
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=1)]
    count = len(config["SYMBOLS"])
    for i in range(quotes):  # 7 ms apart (minutes go by), a burst of equal times now and then
        ts = 10**18 + (i - i % 7 if i % 50 < 10 else i) * 7_000_000
        lines.append(encoder.encode(walk.next(i % count, ts)))
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize(("symbols", "overrides"), [
    ("BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT", {}),
    ("BTCUSDT", {"STRATEGIES": "mean_reversion", "MR_COOLDOWN_TICKS": "0"}),
    ("BTCUSDT,ETHUSDT", {"MOCK_PARTIAL_FILL_PCT": "100"}),
])
def test_column_loop_equals_the_per_quote_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symbols: str,
                                               overrides: dict[str, str]) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", 50_000)  # many blocks: reports fall due across block edges
    path = _recording(tmp_path / "md.jsonl", 30_000, symbols)
    values = {"FEED_MODE": "replay", "REPLAY_FILE": str(path), "VENUE_MODE": "mock", "SYMBOLS": symbols, **overrides}
    config = load_config(preset_values(str(ROOT / ".env.mock")), values)
    instruments = replay_instruments(config)
    prices = replay_prices(config, instruments)
    reference, columnar = io.BytesIO(), io.BytesIO()

    per_quote = Backtest(config, instruments, prices)
    per_quote.run(replay_ticks(config, instruments, ReadStats(), str(path)), reference, {})
    by_columns = Backtest(config, instruments, prices)
    by_columns.run_columns(read_columns(path, ReadStats(), symbols=config["SYMBOLS"]), columnar, {})

    assert columnar.getvalue() == reference.getvalue()
    assert by_columns.equity.samples == per_quote.equity.samples
    assert by_columns.equity.minute_closes == per_quote.equity.minute_closes
    assert len(per_quote.equity.minute_closes) >= 3  # minutes were crossed (marked at each start)
    assert per_quote.counts.signals > 50 and per_quote.counts.reports > 50  # the run really trades


def test_every_recorded_minute_has_a_close_even_without_a_fill(tmp_path: Path) -> None:
    """The curve is marked at each minute start in both loops, so a quiet minute still has its close."""
    path = _recording(tmp_path / "md.jsonl", 30_000, "BTCUSDT")  # 7 ms apart: 210 s, 4 minutes touched
    values = {"FEED_MODE": "replay", "REPLAY_FILE": str(path), "VENUE_MODE": "mock", "SYMBOLS": "BTCUSDT",
              "STRATEGIES": "mean_reversion", "MR_EDGE_TICKS": "1000000"}  # never signals
    config = load_config(preset_values(str(ROOT / ".env.mock")), values)
    instruments = replay_instruments(config)
    prices = replay_prices(config, instruments)
    per_quote = Backtest(config, instruments, prices)
    per_quote.run(replay_ticks(config, instruments, ReadStats(), str(path)), io.BytesIO(), {})
    by_columns = Backtest(config, instruments, prices)
    by_columns.run_columns(read_columns(path, ReadStats(), symbols=config["SYMBOLS"]), io.BytesIO(), {})

    first, last = 10**18 - 10**18 % MINUTE_NS, (10**18 + 29_999 * 7_000_000) // MINUTE_NS * MINUTE_NS
    expected = [(minute, Decimal(0)) for minute in range(first, last + 1, MINUTE_NS)]
    assert per_quote.counts.signals == 0
    assert per_quote.equity.minute_closes == expected
    assert by_columns.equity.minute_closes == expected


def test_signals_found_by_a_copy_ahead_of_the_run_give_the_same_events(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``signals`` depends on the quotes alone: a copy of the backtest made before the run (a forked reader holds
    one; a second backtest of the same configuration is one) finds every block's signals first, and
    ``run_signals`` from them (pickled, as they cross a pipe) writes byte for byte what ``run_columns`` writes;
    the running backtest's own strategies never move."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", 50_000)
    symbols = "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT"
    path = _recording(tmp_path / "md.jsonl", 30_000, symbols)
    values = {"FEED_MODE": "replay", "REPLAY_FILE": str(path), "VENUE_MODE": "mock", "SYMBOLS": symbols}
    config = load_config(preset_values(str(ROOT / ".env.mock")), values)
    instruments = replay_instruments(config)
    prices = replay_prices(config, instruments)
    reference, planned = io.BytesIO(), io.BytesIO()
    Backtest(config, instruments, prices).run_columns(read_columns(path, ReadStats(), symbols=config["SYMBOLS"]),
                                                      reference, {})

    running = Backtest(config, instruments, prices)
    copy = Backtest(config, instruments, prices)
    found = [copy.signals(block) for block in read_columns(path, ReadStats(), symbols=config["SYMBOLS"])]
    before = pickle.dumps(running.strategies)
    running.run_signals(pickle.loads(pickle.dumps(found)), planned, {})

    assert len(found) > 3 and sum(len(block.rows) for block in found) > 100
    assert planned.getvalue() == reference.getvalue()
    assert pickle.dumps(running.strategies) == before


class _FirstWrite(io.BytesIO):
    """Output that notes how many input items had been pulled when the first line was written."""

    def __init__(self, pulled: list[int]) -> None:
        super().__init__()
        self._pulled = pulled
        self.pulled_at_first_write: int | None = None

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.pulled_at_first_write is None:
            self.pulled_at_first_write = self._pulled[0]
        return super().write(data)


def _counted(items, pulled: list[int]):  # type: ignore[no-untyped-def]
    for item in items:
        pulled[0] += 1
        yield item


@pytest.mark.parametrize("loop", ["run", "run_columns", "run_signals"])
def test_every_loop_streams_its_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str) -> None:
    """Each loop writes its Start record after taking the first quote or block, not after reading them all:
    the input is streamed (a build that turned the loop's input into a list would hold a whole file)."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", 50_000)
    path = _recording(tmp_path / "md.jsonl", 6_000, "BTCUSDT,ETHUSDT")
    values = {"FEED_MODE": "replay", "REPLAY_FILE": str(path), "VENUE_MODE": "mock", "SYMBOLS": "BTCUSDT,ETHUSDT"}
    config = load_config(preset_values(str(ROOT / ".env.mock")), values)
    instruments = replay_instruments(config)
    backtest = Backtest(config, instruments, replay_prices(config, instruments))
    pulled = [0]
    out = _FirstWrite(pulled)
    if loop == "run":
        backtest.run(_counted(replay_ticks(config, instruments, ReadStats(), str(path)), pulled), out, {})
    else:
        blocks = read_columns(path, ReadStats(), symbols=config["SYMBOLS"])
        if loop == "run_columns":
            backtest.run_columns(_counted(blocks, pulled), out, {})
        else:
            backtest.run_signals(_counted(map(backtest.signals, blocks), pulled), out, {})
    assert pulled[0] > 3  # the input had several items
    assert out.pulled_at_first_write == 1
