"""The real daemon process on the mock preset: it trades, serves metrics, drains on SIGTERM, records it all."""

from __future__ import annotations

import re
import signal
import socket
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import ROOT, Daemon, eventually, start_daemon

FAST = {
    "METRICS_HOST": "127.0.0.1",
    "METRICS_PORT": "0",
    "MOCK_RATE": "2000",
    "MAX_QPS": "200",
    "RISK_BURST": "200",
    "LOG_LEVEL": "info",
}


def _metric_values(text: str) -> dict[str, float]:
    """'name{labels}' -> value for every sample line of a Prometheus exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def _scrape(port: int, path: str = "/metrics") -> str:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a finished recording: a torn line is an error here."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _read_written(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a recording a running daemon is still writing: the line after the last newline may
    be half written (the recorder flushes whole batches, but the reader can race the write itself)."""
    data = path.read_bytes() if path.exists() else b""
    return [orjson.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


async def test_daemon_trades_scrapes_and_drains_on_sigterm(tmp_path: Path, daemons: list[Daemon]) -> None:
    """Start on the mock preset, wait for fills in /metrics, SIGTERM, and check the JSONL is complete and consistent."""
    record = tmp_path / "events.jsonl"
    daemon = await start_daemon({**FAST, "RECORD_FILE": str(record)}, "--env", str(ROOT / ".env.mock"))
    daemons.append(daemon)
    port = await daemon.wait_ready()

    async def filled() -> bool:
        values = _metric_values(await _scrape(port))
        fills = sum(v for k, v in values.items() if k.startswith('exec_reports_total{status="filled"'))
        return fills >= 20

    await eventually(filled, what="20 filled exec reports in /metrics")
    text = await _scrape(port)
    root = await _scrape(port, "/")
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok"
    assert health["feed"]["connected"] is True
    assert set(health["feed"]["seconds_since_last_tick"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"}
    assert health["gateways"] == {"A": "running", "B": "running", "C": "running"}
    assert "ticks_total" in root
    for name in (
        "ticks_total",
        "ticks_total_by_symbol",
        "signals_total",
        "signals_total_by",
        "orders_total",
        "exec_reports_total",
        "latency_signal_to_ack_ms_bucket",
        "latency_signal_to_ack_ms_count",
        "sor_venue_score",
        "inventory_qty",
        "inventory_total_qty",
        "pnl_realized",
        "pnl_unrealized",
        "config_feed_mode",
        "config_venue_mode",
        "config_strategy_active",
        "config_symbol",
        "risk_rejections_total",
        "queue_depth",
    ):
        assert any(line.startswith(name) for line in text.splitlines()), name
    values = _metric_values(text)
    assert values["ticks_total"] > 0
    assert values['config_feed_mode{mode="mock"}'] == 1
    assert values['config_strategy_active{strategy="ma_crossover"}'] == 2
    assert values["latency_signal_to_ack_ms_count"] > 0
    assert 'exec_reports_total{status="ack",venue="C"}' in values

    daemon.signal(signal.SIGTERM)
    code = await daemon.finish()
    assert code == 0, daemon.stderr
    assert "stopped cleanly" in daemon.stderr

    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)


def _assert_complete_and_consistent(records: list[dict[str, Any]]) -> None:
    assert records[0]["type"] == "Start"
    assert records[-1]["type"] == "Stop"
    stop = records[-1]
    assert stop["clean"] is True
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    counts = Counter(r["type"] for r in records[:-1])
    assert dict(counts) == {kind: n for kind, n in stop["counts"].items() if n}
    for kind in ("Md", "Sig", "Ord", "Route", "Exec"):
        assert counts[kind] > 0, kind

    routes = {r["client_order_id"]: r for r in records if r["type"] == "Route"}
    orders = {r["client_order_id"]: r for r in records if r["type"] == "Ord"}
    execs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["type"] == "Exec":
            execs[r["client_order_id"]].append(r)

    # every child order sent to a venue has its execution reports, ending in a terminal state
    for cid, route in routes.items():
        reports = execs[cid]
        assert reports, f"route {cid} has no Exec"
        assert reports[-1]["status"] in {"filled", "canceled", "rejected", "expired"}, reports[-1]
        fills = [Decimal(r["last_qty"]) for r in reports if r["status"] in {"partially_filled", "filled"}]
        if reports[-1]["status"] == "filled":
            assert sum(fills) == Decimal(route["quantity"]) == Decimal(reports[-1]["cum_qty"])
        assert route["parent_order_id"] in orders
        assert {r["side"] for r in reports} == {route["side"]}
    # children never exceed their parent
    by_parent: dict[str, Decimal] = defaultdict(Decimal)
    for route in routes.values():
        by_parent[route["parent_order_id"]] += Decimal(route["quantity"])
    for parent, total in by_parent.items():
        assert total <= Decimal(orders[parent]["quantity"])

    # positions in the last state equal the signed sum of fills, net of commissions taken in the base asset;
    # fees are kept per asset
    traded: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    seen_trades: set[tuple[str, str, str, str]] = set()
    instruments = records[0]["instruments"]
    for r in records:
        if r["type"] == "Exec" and r["status"] in {"partially_filled", "filled"}:
            key = (r["venue"], r["symbol"], r["client_order_id"], r["trade_id"])
            assert key not in seen_trades
            seen_trades.add(key)
            sign = 1 if r["side"] == "BUY" else -1
            traded[(r["symbol"], r["venue"])] += sign * Decimal(r["last_qty"])
            held[(r["symbol"], r["venue"])] += sign * Decimal(r["last_qty"])
            if Decimal(r["fee"]):
                fees[r["fee_asset"]] += Decimal(r["fee"])
                if r["fee_asset"] == instruments[r["symbol"]]["base_asset"]:
                    held[(r["symbol"], r["venue"])] -= Decimal(r["fee"])
    final = {(p["symbol"], p["venue"]): Decimal(p["quantity"]) for p in stop["positions"]}
    final_traded = {(p["symbol"], p["venue"]): Decimal(p["traded_quantity"]) for p in stop["positions"]}
    for key in set(final) | set(traded):
        assert final.get(key, Decimal(0)) == held.get(key, Decimal(0)), key
        assert final_traded.get(key, Decimal(0)) == traded.get(key, Decimal(0)), key
    assert {asset: Decimal(amount) for asset, amount in stop["fees"].items()} == fees
    assert stop["fill_gaps"] == [] and stop["open_orders"] == []


async def test_daemon_duration_stops_cleanly(tmp_path: Path, daemons: list[Daemon]) -> None:
    """--duration stops the daemon by itself, exit 0, with a complete record and plain status lines."""
    record = tmp_path / "events.jsonl"
    daemon = await start_daemon({**FAST, "RECORD_FILE": str(record), "STATUS_INTERVAL_S": "1"}, "--duration", "2.5")
    daemons.append(daemon)
    assert await daemon.finish() == 0, daemon.stderr
    status_lines = [line for line in daemon.lines if line.startswith("status: ticks/s ")]
    assert status_lines, daemon.stderr
    assert all("\x1b" not in line and "\r" not in line for line in status_lines)
    assert all(re.search(r" pnl -?\d+\.\d{5}$", line) for line in status_lines), status_lines  # tick*step places
    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)


async def test_daemon_unthrottled_records_every_quote_and_decision(tmp_path: Path, daemons: list[Daemon]) -> None:
    """Unthrottled, the feed, strategies, risk and recorder work on column batches: the record must still hold
    every quote (as many Md lines as ticks, each symbol's walk unbroken), exactly one decision per signal,
    and be complete and consistent."""
    record = tmp_path / "events.jsonl"
    daemon = await start_daemon({**FAST, "MOCK_RATE": "0", "RECORD_FILE": str(record)}, "--duration", "0.5")
    daemons.append(daemon)
    assert await daemon.finish() == 0, daemon.stderr
    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)
    md = [r for r in records if r["type"] == "Md"]
    ticks = int(re.search(r"stopped cleanly: ticks=(\d+)", daemon.stderr).group(1))  # type: ignore[union-attr]
    assert len(md) == ticks > 10_000
    last_bid: dict[str, Decimal] = {}
    for r in md:  # the walk moves at most 3 ticks of 0.01 per quote: a lost or reordered row would break it
        bid = Decimal(r["bid"])
        assert abs(bid - last_bid.get(r["symbol"], bid)) <= Decimal("0.03"), r
        last_bid[r["symbol"]] = bid
    signals: Counter[tuple[str, str, int]] = Counter()
    decisions: Counter[tuple[str, str, int]] = Counter()
    for r in records:
        if r["type"] == "Sig":
            signals[(r["strategy"], r["symbol"], r["ts_ns"])] += 1
        elif r["type"] in ("Ord", "Reject"):
            decisions[(r["strategy"], r["symbol"], r["ts_signal_ns"])] += 1
    assert signals == decisions
    assert sum(signals.values()) > 1_000


async def test_daemon_bad_config_exits_2_with_one_line(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A bad value: exit status 2 and exactly one line naming the key, what is allowed and what was given."""
    daemon = await start_daemon({**FAST, "STRATEGY_WORKERS": "many"})
    daemons.append(daemon)
    assert await daemon.finish() == 2
    assert daemon.lines == [
        "dma_bot: configuration error: STRATEGY_WORKERS: an integer from 1 to 64, was 'many'"
    ]


async def test_daemon_taken_port_exits_2(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A metrics port that is already bound is a start-up error (exit 2), and no record file is started."""
    record = tmp_path / "events.jsonl"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = await start_daemon({**FAST, "METRICS_PORT": str(port), "RECORD_FILE": str(record)})
        daemons.append(daemon)
        assert await daemon.finish() == 2
    assert len(daemon.lines) == 1, daemon.stderr
    assert daemon.lines[0].startswith(f"dma_bot: start-up error: METRICS_PORT: a free port on 127.0.0.1, was {port}")
    assert not record.exists()


async def test_daemon_help_lists_every_key_without_secrets() -> None:
    """--help lists every option and configuration key with its default, and never a secret's value."""
    import asyncio
    import os
    import sys

    from dma_bot.config import KEYS

    env = {**os.environ, "BINANCE_API_SECRET": "very-secret-value"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "--help", stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT)
    )
    async with asyncio.timeout(30):
        out, _ = await process.communicate()
    assert process.returncode == 0
    text = out.decode()
    for option in ("--env", "--duration"):
        assert option in text
    for spec in KEYS:
        assert spec.name in text, spec.name
    assert "very-secret-value" not in text
