"""The real daemon paper-trading on Binance market data: FEED_MODE=binance_sandbox, VENUE_MODE=mock, against
exchange_sim over real sockets. Instruments come from exchangeInfo; no keys are needed."""

from __future__ import annotations

import signal
from decimal import Decimal
from pathlib import Path

from dma_bot.exchange_sim import ExchangeSim
from tests.conftest import Daemon, eventually, start_daemon
from tests.integration.test_daemon_mock import _assert_complete_and_consistent, _metric_values, _read_jsonl, _scrape

SYMBOLS = "BTCUSDT,ETHUSDT"


def _env(sim: ExchangeSim, record: Path) -> dict[str, str]:
    return {
        "FEED_MODE": "binance_sandbox",
        "VENUE_MODE": "mock",
        "SYMBOLS": SYMBOLS,
        "BINANCE_WS_URL": sim.ws_url,
        "BINANCE_REST_URL": sim.rest_url,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "RECORD_FILE": str(record),
        "STRATEGY_QTY": "0.01",
        "ROUTER_MIN_CHILD_QTY": "0.001",
        "PX_MIN": "0.01",
        "PX_MAX": "10000000",
        "MAX_QPS": "200",
        "RISK_BURST": "200",
        "MR_WINDOW": "8",
        "MA_FAST": "4",
        "MA_SLOW": "8",
        "VB_WINDOW": "8",
        # exchange_sim's walk moves the bid by at most one tick a quote with a constant spread: with the default
        # edges (3 and 5 ticks) the strategies signal a few times in 10 s and 5 fills took ~10 s of a 20 s wait
        "MR_EDGE_TICKS": "1",
        "VB_EDGE_TICKS": "0",
    }


async def test_daemon_paper_trades_on_binance_prices(tmp_path: Path, daemons: list[Daemon]) -> None:
    """Ticks decoded from the venue's bookTicker drive the engine; every Md price sits on the venue's grid."""
    record = tmp_path / "events.jsonl"
    async with ExchangeSim(symbols=SYMBOLS.split(","), port=0, quote_interval=0.002) as sim:
        daemon = await start_daemon(_env(sim, record))
        daemons.append(daemon)
        port = await daemon.wait_ready()

        async def filled() -> bool:
            values = _metric_values(await _scrape(port))
            return sum(v for k, v in values.items() if k.startswith('exec_reports_total{status="filled"')) >= 5

        await eventually(filled, what="5 fills on Binance prices")
        values = _metric_values(await _scrape(port))
        assert values['binance_ws_connected{stream="market",venue="BINANCE"}'] == 1
        assert values['config_feed_mode{mode="binance_sandbox"}'] == 1
        daemon.signal(signal.SIGTERM)
        assert await daemon.finish() == 0, daemon.stderr

    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)
    start = records[0]
    assert Decimal(start["instruments"]["BTCUSDT"]["tick_size"]) == Decimal("0.01")  # from exchangeInfo
    tick = Decimal(start["instruments"]["BTCUSDT"]["tick_size"])
    md = [r for r in records if r["type"] == "Md" and r["symbol"] == "BTCUSDT"]
    assert md
    assert all(Decimal(r["bid"]) % tick == 0 and Decimal(r["bid"]) < Decimal(r["ask"]) for r in md)


async def test_daemon_unknown_binance_symbol_exits_2_naming_it(tmp_path: Path, daemons: list[Daemon]) -> None:
    async with ExchangeSim(symbols=["BTCUSDT"], port=0) as sim:
        env = {**_env(sim, tmp_path / "events.jsonl"), "SYMBOLS": "BTCUSDT,DOGEUSDT"}
        daemon = await start_daemon(env)
        daemons.append(daemon)
        assert await daemon.finish() == 2
    assert daemon.lines == [
        "dma_bot: start-up error: SYMBOLS: symbols listed by the venue's exchangeInfo, was DOGEUSDT (unknown)"
    ]


async def test_daemon_unreachable_binance_rest_exits_2(tmp_path: Path, daemons: list[Daemon]) -> None:
    env = {
        "FEED_MODE": "binance_sandbox",
        "BINANCE_REST_URL": "http://127.0.0.1:9",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "RECORD_FILE": str(tmp_path / "events.jsonl"),
    }
    daemon = await start_daemon(env)
    daemons.append(daemon)
    assert await daemon.finish() == 2
    assert len(daemon.lines) == 1
    assert daemon.lines[0].startswith(
        "dma_bot: start-up error: BINANCE_REST_URL: a reachable Binance REST API (exchangeInfo), was 'http://127.0.0.1:9'"
    )
