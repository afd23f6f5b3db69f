"""The real daemon when the venue process itself dies: exchange_sim killed with SIGKILL mid-run and restarted on
the same port without any of our orders. The daemon survives, reconnects, records the outage in the JSONL, settles
the orders the new venue does not know, and drains to exit 0 with every Route final."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

from dma_bot.config import read_env_file
from tests.conftest import ROOT, Daemon, eventually, start_daemon
from tests.integration.test_daemon_mock import _assert_complete_and_consistent, _metric_values, _read_jsonl, _scrape


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_sim(port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot.exchange_sim", "--port", str(port), "--symbols", "BTCUSDT,ETHUSDT",
        "--quote-interval", "0.005", "--balance", "BTC=100", "--balance", "ETH=1000", "--balance", "USDT=10000000",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=str(ROOT),
    )
    assert process.stdout is not None
    banner = await asyncio.wait_for(process.stdout.readline(), 30)
    assert banner.startswith(b"REST"), banner
    return process


async def test_daemon_survives_a_killed_and_restarted_venue_and_records_the_outage(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    port = _free_port()
    record = tmp_path / "events.jsonl"
    sim = await _start_sim(port)
    try:
        env = {
            **read_env_file(ROOT / ".env.sim"),
            "BINANCE_WS_URL": f"ws://127.0.0.1:{port}/ws",
            "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
            "BINANCE_WS_API_URL": f"ws://127.0.0.1:{port}/ws-api/v3",
            "BINANCE_RECONNECT_MAX_S": "1",
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": "0",
            "RECORD_FILE": str(record),
            "MAX_QPS": "20",
            "RISK_BURST": "20",
            "RISK_MAX_POSITION_NOTIONAL": "3000",
            "MR_WINDOW": "8",
            "MR_EDGE_TICKS": "0",
            "MA_FAST": "4",
            "MA_SLOW": "8",
            "VB_WINDOW": "8",
            "RISK_MAX_DRIFT": "0",  # the new venue's account lost our position: noted, not enough to stop here
        }
        daemon = await start_daemon(env, "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        metrics_port = await daemon.wait_ready()

        async def fills_at_least(count: float) -> bool:
            values = _metric_values(await _scrape(metrics_port))
            return values.get('exec_reports_total{status="filled",venue="BINANCE"}', 0) >= count

        await eventually(lambda: fills_at_least(3), timeout=60, what="3 fills before the outage")
        sim.kill()  # SIGKILL: no close frames, no answers
        await sim.wait()

        async def disconnected() -> bool:
            values = _metric_values(await _scrape(metrics_port))
            return values['binance_ws_connected{stream="user",venue="BINANCE"}'] == 0

        await eventually(disconnected, timeout=30, what="the user-data stream seen down")
        before = _metric_values(await _scrape(metrics_port))['exec_reports_total{status="filled",venue="BINANCE"}']
        sim = await _start_sim(port)
        await eventually(lambda: fills_at_least(before + 3), timeout=60, what="3 fills after the venue is back")
        daemon.signal(signal.SIGTERM)
        code = await daemon.finish(timeout=60)
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            await sim.wait()

    assert code == 0, daemon.stderr
    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)
    kinds = [r["kind"] for r in records if r["type"] == "Note"]
    for kind in ("user_stream_down", "user_stream_up", "market_stream_down", "market_stream_up", "reconciled",
                 "position_drift"):
        assert kind in kinds, (kind, kinds)
    assert kinds.index("user_stream_down") < kinds.index("user_stream_up")
    assert records[-1]["clean"] is True and records[-1]["open_orders"] == []
