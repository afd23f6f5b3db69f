"""The real daemon trading on a Binance-compatible venue: FEED_MODE and VENUE_MODE binance_sandbox against
exchange_sim over real sockets (REST orders, WebSocket API user-data fills, bookTicker market data)."""

from __future__ import annotations

import signal
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from dma_bot.config import read_env_file
from dma_bot.exchange_sim import ExchangeSim
from tests.conftest import ROOT, Daemon, eventually, start_daemon
from tests.integration.test_daemon_mock import _assert_complete_and_consistent, _metric_values, _read_jsonl, _scrape

SYMBOLS = ("BTCUSDT", "ETHUSDT")
BASES = {"BTCUSDT": "BTC", "ETHUSDT": "ETH"}


def _env(sim: ExchangeSim, record: Path) -> dict[str, str]:
    preset = read_env_file(ROOT / ".env.sim")
    return {
        **preset,
        "BINANCE_WS_URL": sim.ws_url,
        "BINANCE_REST_URL": sim.rest_url,
        "BINANCE_WS_API_URL": sim.ws_api_url,
        "BINANCE_API_KEY": sim.api_key,
        "BINANCE_API_SECRET": sim.api_secret,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "RECORD_FILE": str(record),
        "MAX_QPS": "20",
        "RISK_BURST": "20",
        "RISK_MAX_POSITION_NOTIONAL": "3000",  # 0.06 BTC, 1 ETH at the simulator's prices
        "MR_WINDOW": "8",
        "MA_FAST": "4",
        "MA_SLOW": "8",
        "VB_WINDOW": "8",
        "MR_EDGE_TICKS": "0",
        "VB_EDGE_TICKS": "0",
        "MA_MIN_EDGE_TICKS": "1",
        "MA_COOLDOWN_TICKS": "1",
        "VB_COOLDOWN_TICKS": "1",
    }


async def test_daemon_trades_on_binance_protocol_and_positions_match_the_venue(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Orders go out over REST, fills come back over the WS API; after SIGTERM every Exec is recorded and the
    recorded fills (net of fees in the base asset) equal the venue's balance changes."""
    record = tmp_path / "events.jsonl"
    balances = {"USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("1000")}
    async with ExchangeSim(symbols=SYMBOLS, port=0, quote_interval=0.005, balances=balances) as sim:
        before = {asset: sim.balance(asset) for asset in ("BTC", "ETH", "USDT")}
        daemon = await start_daemon(_env(sim, record), "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        port = await daemon.wait_ready()

        async def filled() -> bool:
            values = _metric_values(await _scrape(port))
            return values.get('exec_reports_total{status="filled",venue="BINANCE"}', 0) >= 5

        await eventually(filled, timeout=60, what="5 Binance fills")
        values = _metric_values(await _scrape(port))
        assert values['binance_ws_connected{stream="user",venue="BINANCE"}'] == 1
        assert values['binance_ws_connected{stream="market",venue="BINANCE"}'] == 1
        assert values['binance_listenkey_keepalive_ok_total{venue="BINANCE"}'] >= 1
        daemon.signal(signal.SIGTERM)
        assert await daemon.finish(timeout=60) == 0, daemon.stderr
        assert sim.open_orders() == []  # cancelled on shutdown (or all filled)
        after = {asset: sim.balance(asset) for asset in ("BTC", "ETH", "USDT")}

    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)
    net: dict[str, Decimal] = defaultdict(Decimal)
    base_fees: dict[str, Decimal] = defaultdict(Decimal)
    for r in records:
        if r["type"] == "Exec" and r["status"] in {"partially_filled", "filled"}:
            assert r["venue"] == "BINANCE"
            base = BASES[r["symbol"]]
            net[base] += (1 if r["side"] == "BUY" else -1) * Decimal(r["last_qty"])
            if r["fee_asset"] == base:
                base_fees[base] += Decimal(r["fee"])
    assert net, "no fills were recorded"
    for base in ("BTC", "ETH"):
        change = (after[base][0] + after[base][1]) - (before[base][0] + before[base][1])
        assert change == net[base] - base_fees[base], (base, change, net[base], base_fees[base])
