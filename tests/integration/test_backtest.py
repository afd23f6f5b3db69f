"""The backtest loop (dma_bot.backtest) over a recording of the real mock engine: deterministic, and its
strategies make exactly the signals the live engine made on the same quotes."""

from __future__ import annotations

import asyncio
import bisect
import io
import os
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from dma_bot import CORES
from dma_bot.backtest import Backtest
from dma_bot.config import load_config
from dma_bot.exchange_sim import ExchangeSim
from dma_bot.feed.recording import ReadStats, read_ticks, recording_instruments
from dma_bot.main import run_daemon
from dma_bot.params import replay_instruments, replay_prices
from dma_bot.positions.ledger import Ledger, tidy
from dma_bot.recorder.jsonl_decode import to_event


async def _recording(path: Path) -> None:
    config = load_config({}, {"RECORD_FILE": str(path), "MOCK_RATE": "500", "METRICS_HOST": "127.0.0.1",
                              "METRICS_PORT": "0", "STATUS_INTERVAL_S": "0"})
    async with asyncio.timeout(30):
        assert await run_daemon(config, duration=1.5) == 0


def _backtest(path: Path) -> bytes:
    config = load_config({}, {"FEED_MODE": "replay", "REPLAY_FILE": str(path)})
    instruments = replay_instruments(config)
    backtest = Backtest(config, instruments, replay_prices(config, instruments))
    out = io.BytesIO()
    backtest.run(read_ticks(path, ReadStats()), out, {"recording": str(path)})
    return out.getvalue()


def _signals(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    by: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for r in lines:
        if r["type"] == "Sig":
            by[(r["strategy"], r["symbol"])].append((r["side"], r["price"], r["quantity"], r["ts_event_ns"]))
    return dict(by)


async def test_backtest_is_deterministic_and_signals_as_the_live_engine_did(tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    await _recording(recording)

    first, second = _backtest(recording), _backtest(recording)

    assert first == second  # byte for byte
    out = [orjson.loads(line) for line in first.splitlines()]
    live = [orjson.loads(line) for line in recording.read_bytes().splitlines()]
    assert _signals(out) == _signals(live) and _signals(out)
    stop = out[-1]
    assert stop["type"] == "Stop" and stop["open_orders"] == []
    assert stop["counts"]["Ord"] > 0 and stop["counts"]["Exec"] > stop["counts"]["Ord"]
    assert [r["seq"] for r in out] == list(range(1, len(out) + 1))
    _assert_fills_at_the_prevailing_touch(recording, out)


def _assert_fills_at_the_prevailing_touch(path: Path, out: list[dict[str, Any]]) -> None:
    """Each fill is at the touch of its symbol's quote prevailing when it became due: the loop pops a venue's
    reports at the first quote at or after their due time, before applying that quote (after the last quote,
    the last quotes prevail); a buy never above its limit, a sell never below, never beyond the displayed size."""
    instruments = replay_instruments(load_config({}, {"FEED_MODE": "replay", "REPLAY_FILE": str(path)}))
    ticks = list(read_ticks(path, ReadStats()))
    times = [tick.ts_event_ns for tick in ticks]
    routes = {r["client_order_id"]: r for r in out if r["type"] == "Route"}
    fills = [r for r in out if r["type"] == "Exec" and r["status"] in {"partially_filled", "filled"}]
    assert fills
    for fill in fills:
        instrument = instruments[fill["symbol"]]
        applied = bisect.bisect_left(times, fill["ts_event_ns"])  # the quotes applied when the fill was popped
        tick = next(t for t in reversed(ticks[:applied]) if t.symbol == fill["symbol"])
        buy = fill["side"] == "BUY"
        touch, size = (tick.ask, tick.ask_qty) if buy else (tick.bid, tick.bid_qty)
        price = instrument.price_to_ticks(Decimal(fill["last_px"]))
        limit = instrument.price_to_ticks(Decimal(routes[fill["client_order_id"]]["price"]))
        assert price == touch and (price <= limit if buy else price >= limit), (fill, tick)
        assert size == 0 or instrument.qty_to_steps(Decimal(fill["last_qty"])) <= size, (fill, tick)


async def _command(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "backtest", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(cwd),
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("DMA_", "MOCK_", "RECORD_", "METRICS_"))},
             **env},
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_compiled_and_pure_cores_write_the_same_bytes(tmp_path: Path) -> None:
    """The cores compiled by mypyc and their Python sources (DMA_BOT_PURE=1) make the same decisions: a mock
    recording with all three strategies backtested both ways gives byte-identical events.jsonl and report.json,
    and each run.json says which cores ran. `make` builds the compiled ones; CI must have them."""
    if not CORES.compiled:
        message = f"the compiled cores are not built here ({CORES.reason or 'a pure install'}); `make` builds them"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must test them")
        pytest.skip(message)
    recording = tmp_path / "recording.jsonl"
    await _recording(recording)
    for name, env in (("compiled", {}), ("pure", {"DMA_BOT_PURE": "1"})):
        code, out, err = await _command(str(recording), "--out", str(tmp_path / name), cwd=tmp_path, **env)
        assert code == 0, err
        assert f"({name} cores)" in out
        assert orjson.loads((tmp_path / name / "run.json").read_bytes())["cores"] == name
    for file in ("events.jsonl", "report.json"):
        assert (tmp_path / "compiled" / file).read_bytes() == (tmp_path / "pure" / file).read_bytes(), file
    report = orjson.loads((tmp_path / "pure" / "report.json").read_bytes())
    assert report["totals"]["orders"] > 0 and report["totals"]["fills"] > 0  # the run really trades


async def test_backtest_command_writes_identical_events_and_report_twice(tmp_path: Path) -> None:
    """`python -m dma_bot backtest` as a real process: events.jsonl and report.json byte-identical across two runs,
    the report's PnL equal to the Stop record's, a summary on stdout; a missing recording is one line, exit 2."""
    recording = tmp_path / "recording.jsonl"
    await _recording(recording)
    runs = []
    for name in ("a", "b"):
        code, out, err = await _command(str(recording), "--out", str(tmp_path / name), cwd=tmp_path)
        assert code == 0, err
        assert "quotes/s" in out and "net " in out
        runs.append(tmp_path / name)

    for file in ("events.jsonl", "report.json"):
        assert (runs[0] / file).read_bytes() == (runs[1] / file).read_bytes(), file
    report = orjson.loads((runs[0] / "report.json").read_bytes())
    stop = orjson.loads((runs[0] / "events.jsonl").read_bytes().splitlines()[-1])
    assert report["input"]["quotes"] > 1000 and report["totals"]["orders"] > 0
    assert (report["totals"]["realized_pnl"], report["totals"]["net_pnl"]) == (stop["realized_pnl"], stop["net_pnl"])
    rows = report["by_strategy"]
    assert rows and {row["strategy"] for row in rows} <= {"mean_reversion", "ma_crossover", "vol_breakout"}
    assert sum(row["orders"] for row in rows) == report["totals"]["orders"]
    assert sum(row["signals"] for row in rows) == report["totals"]["signals"]
    assert sum(sum(row["rejects"].values()) for row in rows) == report["totals"]["rejects"]
    assert Decimal(report["totals"]["max_drawdown"]) >= 0
    assert sum(Decimal(p["traded_quantity"]) for p in report["by_position"] if p["symbol"] == "BTCUSDT") == sum(
        (1 if r["side"] == "BUY" else -1) * Decimal(r["last_qty"])
        for r in (orjson.loads(line) for line in (runs[0] / "events.jsonl").read_bytes().splitlines())
        if r["type"] == "Exec" and r["symbol"] == "BTCUSDT" and Decimal(r["last_qty"]))
    _assert_books_are_the_events_ledger(recording, runs[0], report)
    code, _, err = await _command(str(tmp_path / "nowhere.jsonl"), cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "nowhere.jsonl" in err


def _assert_books_are_the_events_ledger(recording: Path, run: Path, report: dict[str, Any]) -> None:
    """The report's money is what a fresh Ledger makes of events.jsonl's Exec records: in total and per strategy
    (each Exec attributed through its Route), per symbol and venue inside each strategy, and the Stop record's."""
    instruments = recording_instruments(recording)
    records = [orjson.loads(line) for line in (run / "events.jsonl").read_bytes().splitlines()]
    owner = {r["client_order_id"]: r["strategy"] for r in records if r["type"] == "Route"}
    total = Ledger(instruments)
    ledgers: dict[str, Ledger] = defaultdict(lambda: Ledger(instruments))
    fills: dict[str, int] = defaultdict(int)
    for record in records:
        if record["type"] == "Exec":
            report_event = to_event(record, instruments)
            total.apply(report_event)
            ledgers[owner[report_event.client_order_id]].apply(report_event)
            fills[owner[report_event.client_order_id]] += report_event.last_qty > 0
    stop = records[-1]
    totals = report["totals"]
    assert totals["realized_pnl"] == stop["realized_pnl"] == str(total.realized_pnl())
    assert totals["fee_value"] == stop["fee_value"] == str(total.fee_value())
    assert totals["fills"] == total.stats.fills
    traded = [row for row in report["by_strategy"] if row["fills"]]
    assert len(traded) >= 2  # several strategies really traded: the attribution is tested
    for row in report["by_strategy"]:
        ledger = ledgers[row["strategy"]]
        assert row["realized_pnl"] == str(ledger.realized_pnl()), row["strategy"]
        assert row["fee_value"] == str(ledger.fee_value()), row["strategy"]
        assert row["fees"] == {asset: str(tidy(fee)) for asset, fee in ledger.fees().items()}, row["strategy"]
        assert row["fills"] == fills[row["strategy"]] == ledger.stats.fills
        positions = ledger.snapshot().positions
        assert {(r["symbol"], r["venue"]): r["realized_pnl"] for r in row["by_symbol_venue"]} == {
            key: str(position.realized_pnl) for key, position in positions.items()}
    # net PnL (cash + marked holdings - fees) adds up across strategies; realized PnL need not: in the total
    # book one strategy's buy can close another's short, in their own books it opens a position
    assert sum(Decimal(row["net_pnl"]) for row in report["by_strategy"]) == Decimal(totals["net_pnl"])


async def test_record_command_records_market_data_only_from_the_binance_feed(tmp_path: Path) -> None:
    """`python -m dma_bot record` against exchange_sim's market streams: Md lines only (no Sig, Ord or Exec), a
    clean Stop, and the file backtests as any recording."""
    out = tmp_path / "quotes.jsonl"
    async with ExchangeSim(symbols=("BTCUSDT", "ETHUSDT"), port=0, quote_interval=0.005) as sim:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dma_bot", "record", "--duration", "1", "--out", str(out),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FEED_MODE": "binance_sandbox", "SYMBOLS": "BTCUSDT,ETHUSDT", "PX_MAX": "10000000",
                 "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url, "LOG_LEVEL": "warning"},
            cwd=str(tmp_path),
        )
        async with asyncio.timeout(30):
            _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    types = {r["type"] for r in records}
    assert types == {"Start", "Md", "Stop"} and records[-1]["clean"] is True
    assert {r["symbol"] for r in records if r["type"] == "Md"} == {"BTCUSDT", "ETHUSDT"}
    assert "recorded " in err.decode()
    code, summary, err_bt = await _command(str(out), "--out", str(tmp_path / "bt"), cwd=tmp_path,
                                           SYMBOLS="BTCUSDT,ETHUSDT", PX_MAX="10000000")
    assert code == 0 and "quotes/s" in summary, err_bt
