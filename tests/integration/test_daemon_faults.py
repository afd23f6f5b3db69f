"""The real daemon process against exchange_sim with faults injected at the server, over real sockets.

Each test runs one daemon on the `.env.sim` protocol (REST orders, WebSocket API user data, bookTicker), lets it
trade, injects a series of faults one after another and waits after each until trading has visibly resumed
(more fills). After SIGTERM: exit 0, every Route ends in a final Exec in the JSONL, and the Stop record's
positions (net of commissions taken in the base asset) equal the venue's balance changes.
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from dma_bot.exchange_sim import ExchangeSim
from dma_bot.exchange_sim.market import DEFAULT_SYMBOLS, SymbolConfig
from tests.conftest import ROOT, Daemon, eventually, start_daemon
from tests.integration.test_daemon_binance_venue import _env
from tests.integration.test_daemon_mock import _assert_complete_and_consistent, _metric_values, _read_jsonl, _scrape

SYMBOLS = ("BTCUSDT", "ETHUSDT")
BASES = ("BTC", "ETH")
BALANCES = {"USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("1000")}

Fault = Mapping[str, Any] | Callable[[ExchangeSim], object]


async def _fills(port: int) -> float:
    values = _metric_values(await _scrape(port))
    return sum(v for k, v in values.items() if k.startswith("exec_reports_total{") and '"filled"' in k)


async def _until_fired(sim: ExchangeSim, fault: Mapping[str, Any]) -> None:
    """Add ``fault``; one with a window (``for_s``) that passed without touching anything (on a loaded machine
    the venue may have had nothing to send then) is removed and added again, so every fault in the list really
    struck and the venue's rules list only windows that did."""
    for _ in range(10):
        rule = sim.faults.add(fault)
        if "for_s" not in fault:
            return

        async def settled(rule_id: int = rule.id) -> bool:
            (state,) = [entry for entry in sim.faults.snapshot() if entry["id"] == rule_id]
            return bool(state["fired"]) or not state["active"]

        await eventually(settled, timeout=60, what=f"{fault} to fire or end")
        if rule.fired:
            return
        sim.faults.remove(rule.id)  # an empty window: it struck nothing, so it is not one of the faults applied
    raise AssertionError(f"{fault}: never fired in 10 windows")


async def _trade_through(
    faults: list[Fault], tmp_path: Path, daemons: list[Daemon], *, thin: bool = False, **env: str
) -> dict[str, Any]:
    """Run the daemon, apply each fault after a few fills, wait for fills to resume; return what was seen.
    ``thin``: the venue shows less than one order's quantity at the touch, so orders fill in parts."""
    record = tmp_path / "events.jsonl"
    symbols: list[str | SymbolConfig] = list(SYMBOLS)
    if thin:
        symbols = [replace(DEFAULT_SYMBOLS[s], touch_qty=DEFAULT_SYMBOLS[s].step_size * 60) for s in SYMBOLS]
    async with ExchangeSim(symbols=symbols, port=0, quote_interval=0.005, balances=dict(BALANCES)) as sim:
        before = {asset: sum(sim.balance(asset)) for asset in BASES}
        daemon = await start_daemon({**_env(sim, record), **env}, "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        port = await daemon.wait_ready()
        for fault in [None, *faults]:
            if callable(fault):
                done = fault(sim)
                if inspect.isawaitable(done):
                    await done
            elif fault is not None:
                await _until_fired(sim, fault)
            floor = await _fills(port) + 3

            async def resumed(floor: float = floor) -> bool:
                return await _fills(port) >= floor

            await eventually(resumed, timeout=60, what=f"fills to resume after {fault}")
        metrics = _metric_values(await _scrape(port))
        daemon.signal(signal.SIGTERM)
        code = await daemon.finish(timeout=60)
        assert code == 0, daemon.stderr
        after = {asset: sum(sim.balance(asset)) for asset in BASES}
        fired = [(rule["fault"]["kind"], rule["fired"]) for rule in sim.faults.snapshot()]
    records = _read_jsonl(record)
    _assert_complete_and_consistent(records)
    stop = records[-1]
    held: dict[str, Decimal] = dict.fromkeys(BASES, Decimal(0))
    for position in stop["positions"]:
        held[position["symbol"].removesuffix("USDT")] += Decimal(position["quantity"])
    for asset in BASES:
        assert after[asset] - before[asset] == held[asset], (asset, after[asset] - before[asset], held[asset])
    assert stop["clean"] is True
    return {"records": records, "metrics": metrics, "fired": fired, "stderr": daemon.stderr}


async def test_daemon_survives_request_faults_and_books_equal_the_account(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """5xx with an unknown outcome, 429 with Retry-After, 418, -1021 and a request held past its timeout on
    POST /api/v3/order: each order ends final (never resent blind), and the books still equal the account."""
    post = {"method": "POST", "path": "/api/v3/order"}
    seen = await _trade_through(
        [
            {"kind": "request.server_error", "status": 503, "times": 2, **post},
            {"kind": "request.server_error", "status": 500, "executed": True, "times": 1, **post},
            {"kind": "request.rate_limited", "retry_after_s": 1, "times": 2, **post},
            {"kind": "request.banned", "retry_after_s": 1, "times": 1, **post},
            {"kind": "request.timestamp", "times": 1, **post},
            {"kind": "request.timeout", "hold_s": 1.5, "then": "drop", "executed": True, "times": 1, **post},
        ],
        tmp_path,
        daemons,
        BINANCE_REQUEST_TIMEOUT_S="1",
    )
    assert len(seen["fired"]) == 6 and all(count >= 1 for _, count in seen["fired"]), seen["fired"]
    events = {k: v for k, v in seen["metrics"].items() if k.startswith("gateway_events_total{")}
    assert events['gateway_events_total{event="unknown_outcome",venue="BINANCE"}'] >= 2


async def test_daemon_survives_user_data_faults_and_books_equal_the_account(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    wiped: list[str] = []

    async def wipe_resting(sim: ExchangeSim) -> None:
        """Wait until an order of ours rests at the venue, then have the venue forget every resting order."""

        async def resting() -> bool:
            return bool(sim.open_orders())

        await eventually(resting, timeout=30, what="an order resting at the venue")
        wiped.extend(order.client_order_id for order in sim.wipe_open_orders())

    """Dropped and expired user-data subscriptions, duplicated and reordered execution reports, a trade
    delivered after its order's terminal report, a silent stream that loses reports, a venue that forgets our
    resting orders: every fill is booked once, every order ends final, and the books equal the account."""
    seen = await _trade_through(
        [
            {"kind": "user.duplicate", "exec_type": "TRADE", "times": 4},
            {"kind": "user.out_of_order", "mode": "trade_after_terminal", "times": 2},
            {"kind": "user.out_of_order", "mode": "swap", "times": 2},
            {"kind": "user.drop"},
            {"kind": "user.expire"},
            {"kind": "user.silent", "for_s": 0.5},
            wipe_resting,
            {"kind": "user.drop"},
        ],
        tmp_path,
        daemons,
        thin=True,
        STRATEGY_NOTIONAL="",  # sized in base units instead: 0.002 BTC is more than the thin touch shows
        STRATEGY_QTY="0.002",
    )
    assert all(count >= 1 for _, count in seen["fired"]), seen["fired"]
    assert wiped
    final = {r["client_order_id"]: r for r in seen["records"] if r["type"] == "Exec"}
    for cid in wiped:
        assert final[cid]["status"] in {"canceled", "filled"}, final[cid]
        assert final[cid]["status"] == "filled" or final[cid]["reason"].startswith("not known at venue"), final[cid]
    events = seen["metrics"]
    assert events['gateway_events_total{event="late_execution",venue="BINANCE"}'] >= 1  # repeats absorbed
    assert seen["metrics"]['binance_listenkey_keepalive_ok_total{venue="BINANCE"}'] >= 3  # resubscribed twice


async def test_daemon_drops_a_silent_user_data_stream_and_reconciles_what_it_lost(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The user-data stream stays open but delivers nothing for far longer than the test waits: orders the venue
    acknowledged go untold of, so after BINANCE_USER_SILENCE_S the daemon drops and resubscribes the stream, and
    the fills it lost come from the reconciliation (fills resume while the venue is still silent); once the
    silence is lifted the books equal the account."""

    def lift_silence(sim: ExchangeSim) -> None:
        for rule in sim.faults.snapshot():
            if rule["fault"]["kind"] == "user.silent" and rule["active"]:
                sim.faults.remove(rule["id"])

    seen = await _trade_through(
        [{"kind": "user.silent", "for_s": 600}, lift_silence],
        tmp_path,
        daemons,
        BINANCE_USER_SILENCE_S="1",
        BINANCE_RECONNECT_MAX_S="1",
    )
    assert seen["metrics"]['gateway_events_total{event="silent_stream_drop",venue="BINANCE"}'] >= 1
    downs = [r["detail"] for r in seen["records"] if r["type"] == "Note" and r["kind"] == "user_stream_down"]
    assert any(d.startswith("user-data stream lost: silent: nothing for ") for d in downs), downs
    assert "Traceback" not in seen["stderr"]


async def test_daemon_survives_market_data_faults(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A dropped market stream, a silent one (dropped after BINANCE_STALE_S), malformed, duplicate and
    out-of-order frames: the feed skips what it cannot parse, reconnects, and trading resumes with the books
    equal to the account."""
    seen = await _trade_through(
        [
            {"kind": "market.malformed", "style": "bad_price", "times": 3},
            {"kind": "market.malformed", "style": "truncated", "times": 3},
            {"kind": "market.duplicate", "times": 10},
            {"kind": "market.out_of_order", "times": 10},
            {"kind": "market.drop"},
            {"kind": "market.silent", "for_s": 1.0},
        ],
        tmp_path,
        daemons,
        BINANCE_STALE_S="1",
    )
    assert all(count >= 1 for _, count in seen["fired"]), seen["fired"]
    assert seen["metrics"]['binance_ws_reconnects_total{stream="market",venue="BINANCE"}'] >= 1
    assert "Traceback" not in seen["stderr"]


async def _health(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def test_healthz_reports_user_stream_outage_and_frozen_venue(tmp_path: Path, daemons: list[Daemon]) -> None:
    """/healthz is 503 naming the venue while its user-data stream is down and while it leaves a request
    unanswered past HEALTH_MAX_ANSWER_WAIT_S, and 200 again once the venue is back."""
    record = tmp_path / "events.jsonl"
    async with ExchangeSim(symbols=SYMBOLS, port=0, quote_interval=0.005, balances=dict(BALANCES)) as sim:
        env = {**_env(sim, record), "HEALTH_MAX_ANSWER_WAIT_S": "1", "BINANCE_RECONNECT_MAX_S": "1"}
        daemon = await start_daemon(env, "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        port = await daemon.wait_ready()

        async def status_is(code: int, problem: str = "") -> bool:
            status, body = await _health(port)
            return status == code and (not problem or any(problem in p for p in body["problems"]))

        await eventually(lambda: status_is(200), timeout=30, what="healthy after start-up")
        sim.faults.add({"kind": "user.drop", "for_s": 2.0})
        await eventually(lambda: status_is(503, "user-data stream down"), timeout=30, what="503 while stream down")
        await eventually(lambda: status_is(200), timeout=30, what="healthy after the stream is back")
        sim.faults.add({"kind": "request.timeout", "hold_s": 4.0, "then": "answer", "method": "POST",
                        "path": "/api/v3/order", "times": 1})
        await eventually(lambda: status_is(503, "has not answered a request"), timeout=30, what="503 while frozen")
        _, body = await _health(port)
        assert body["venues"]["BINANCE"]["oldest_request_waiting_s"] > 1
        await eventually(lambda: status_is(200), timeout=30, what="healthy after the venue answers")
        daemon.signal(signal.SIGTERM)
        assert await daemon.finish(timeout=60) == 0, daemon.stderr
