"""Metrics: the original daemon's metric names exactly, read from stage state at scrape time."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import MappingProxyType

from dma_bot.bus import Channel
from dma_bot.metrics import ExecutionMetrics, ExecutionObserver, Metrics, MetricsSources, StreamHealth
from dma_bot.model import ExecReport, ExecStatus, Instrument, KillSwitchState, Route, Side
from dma_bot.model.events import AccountSnapshot
from dma_bot.model.positions import PositionSnapshot, VenuePosition

INSTRUMENTS = {"BTCUSDT": Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                                     base_asset="BTC", quote_asset="USDT")}


def _route(cid: str, ts_signal_ns: int) -> Route:
    return Route(
        venue="A", client_order_id=cid, parent_order_id="p", strategy="mean_reversion", symbol="BTCUSDT",
        side=Side.BUY, price=10_000, quantity=5, ts_signal_ns=ts_signal_ns, ts_ns=ts_signal_ns,
    )


def _report(cid: str, status: ExecStatus, ts_ns: int) -> ExecReport:
    return ExecReport(
        venue="A", symbol="BTCUSDT", client_order_id=cid, venue_order_id="1", side=Side.BUY, status=status,
        last_qty=0, last_price=0, order_qty=5, cum_qty=0, leaves_qty=5, fee=Decimal(0), fee_asset="USDT", trade_id=None,
        reason="", ts_event_ns=ts_ns, ts_ns=ts_ns,
    )


def _sources(executions: ExecutionMetrics) -> MetricsSources:
    position = VenuePosition(
        symbol="BTCUSDT", venue="A", quantity=1500, average_price=Decimal("100"), realized_pnl=Decimal("2.5"),
        holdings=Decimal("1.4985"), traded_quantity=1500, fees={"BTC": Decimal("0.0015"), "USDT": Decimal("0.1")},
        fee_value=Decimal("0.25"),
    )
    snapshot = PositionSnapshot(
        positions=MappingProxyType({("BTCUSDT", "A"): position}), realized_pnl=Decimal("2.5"),
        fee_value=Decimal("0.25"), fills=1,
        drift=MappingProxyType({("BINANCE", "BTC"): Decimal("0.002"), ("BINANCE", "USDT"): Decimal("-12.5")}),
    )
    return MetricsSources(
        feed_mode="mock",
        venue_mode="mock",
        symbols=("BTCUSDT",),
        strategy_workers={"mean_reversion": 2},
        instruments=INSTRUMENTS,
        ticks_by_symbol=lambda: {"BTCUSDT": 7},
        signals=lambda: [("mean_reversion", "BTCUSDT", 3)],
        orders_total=lambda: 2,
        rejects_by_reason=lambda: {"rate_limit": 1},
        kill_switch_state=lambda: KillSwitchState.REDUCING,
        venue_scores=lambda: {"A": 62},
        executions=executions,
        positions=lambda: snapshot,
        unrealized_pnl=lambda: Decimal("-1.25"),
        fees=lambda: position.fees,
        ledger_anomalies=lambda: {"late_report": 4, "illegal_transition": 1},
        fill_gaps=lambda: 2,
        gateway_events=lambda: {"BINANCE": {"unknown_outcome": 3, "retry.order.send": 5}},
        recorder_storage=lambda: (1, 40),
        queues=[Channel("signals", 8)],
        streams=lambda: [
            StreamHealth(venue="MOCK", stream="market", connected=True, reconnects=2, last_event_ns=7_500_000_000)
        ],
        subscriptions=lambda: {"A": (3, 1)},
        simulated_venues=("A",),
        now_ns=lambda: 10_000_000_000,
    )


def _samples(metrics: Metrics) -> dict[str, float]:
    out = {}
    for line in metrics.exposition().decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_exposition_uses_the_original_names_exactly() -> None:
    executions = ExecutionMetrics()
    executions.on_route(_route("c1", 1_000_000))
    executions.on_exec(_report("c1", ExecStatus.ACK, 3_500_000))  # 2.5 ms after the signal
    samples = _samples(Metrics(_sources(executions)))
    assert samples["ticks_total"] == 7
    assert samples['ticks_total_by_symbol{symbol="BTCUSDT"}'] == 7
    assert samples["signals_total"] == 3
    assert samples['signals_total_by{strategy="mean_reversion",symbol="BTCUSDT"}'] == 3
    assert samples["orders_total"] == 2
    assert samples['exec_reports_total{status="ack",venue="A"}'] == 1
    assert samples['sor_venue_score{venue="A"}'] == 62
    assert samples['inventory_qty{symbol="BTCUSDT",venue="A"}'] == 1.4985  # net of the BTC commission
    assert samples["inventory_total_qty"] == 1.4985
    assert samples["pnl_realized"] == 2.5
    assert samples["pnl_unrealized"] == -1.25
    assert samples["pnl_fees"] == 0.25
    assert samples["pnl_net"] == 1.0
    assert samples['fees_paid{asset="BTC"}'] == 0.0015
    assert samples['fees_paid{asset="USDT"}'] == 0.1
    assert samples['ledger_anomalies_total{kind="late_report"}'] == 4
    assert samples['ledger_anomalies_total{kind="illegal_transition"}'] == 1
    assert samples["ledger_fill_gap_orders"] == 2
    assert samples['position_drift{asset="BTC",venue="BINANCE"}'] == 0.002
    assert samples['position_drift{asset="USDT",venue="BINANCE"}'] == -12.5
    # a simulated venue is its own account: 0 for each asset of the instruments, never read from anywhere
    assert samples['position_drift{asset="BTC",venue="A"}'] == 0
    assert samples['position_drift{asset="USDT",venue="A"}'] == 0
    assert sum(key.startswith("position_drift{") for key in samples) == 4
    assert samples['gateway_events_total{event="unknown_outcome",venue="BINANCE"}'] == 3
    assert samples['gateway_events_total{event="retry.order.send",venue="BINANCE"}'] == 5
    assert samples["recorder_write_failures_total"] == 1
    assert samples["recorder_lines_unwritten"] == 40
    assert samples['config_feed_mode{mode="mock"}'] == 1
    assert samples['config_venue_mode{mode="mock"}'] == 1
    assert samples['config_strategy_active{strategy="mean_reversion"}'] == 2
    assert samples['config_symbol{symbol="BTCUSDT"}'] == 1
    assert samples['risk_rejections_total{reason="rate_limit"}'] == 1
    assert samples['risk_kill_switch_state{state="reducing"}'] == 1
    assert samples['risk_kill_switch_state{state="active"}'] == 0
    assert samples['queue_depth{queue="signals"}'] == 0
    assert samples['queue_capacity{queue="signals"}'] == 8
    assert samples['latency_signal_to_ack_ms_bucket{le="2.0"}'] == 0
    assert samples['latency_signal_to_ack_ms_bucket{le="3.0"}'] == 1
    assert samples['latency_signal_to_ack_ms_bucket{le="+Inf"}'] == 1
    assert samples["latency_signal_to_ack_ms_count"] == 1
    assert samples["latency_signal_to_ack_ms_sum"] == 2.5
    assert samples['binance_ws_connected{stream="market",venue="MOCK"}'] == 1
    assert samples['binance_ws_reconnects_total{stream="market",venue="MOCK"}'] == 2
    assert samples['binance_ws_last_event_ts{stream="market",venue="MOCK"}'] == 7
    assert samples['binance_ws_last_event_age_seconds{stream="market",venue="MOCK"}'] == 2.5
    assert samples['binance_listenkey_keepalive_ok_total{venue="A"}'] == 3
    assert samples['binance_listenkey_keepalive_err_total{venue="A"}'] == 1
    assert not any(name.endswith("_created") or "_total_total" in name for name in samples)


def test_two_metrics_objects_do_not_collide() -> None:
    """Each Metrics owns its registry: building two in one process is fine (no global REGISTRY)."""
    first = Metrics(_sources(ExecutionMetrics()))
    second = Metrics(_sources(ExecutionMetrics()))
    assert first.registry is not second.registry
    assert _samples(first) == _samples(second)


def test_latency_counts_first_ack_only() -> None:
    executions = ExecutionMetrics()
    executions.on_route(_route("c1", 0))
    executions.on_exec(_report("c1", ExecStatus.ACK, 1_000_000))
    executions.on_exec(_report("c1", ExecStatus.FILLED, 9_000_000))
    executions.on_exec(_report("unknown", ExecStatus.ACK, 9_000_000))
    assert executions.latency_count == 1
    assert executions.reports == {("ack", "A"): 2, ("filled", "A"): 1}


async def test_observer_counts_routes_and_reports_and_skips_account_reads() -> None:
    """A venue's AccountSnapshot travels with its reports: the observer neither counts nor chokes on it."""
    executions = ExecutionMetrics()
    inbox: Channel[Route | ExecReport | AccountSnapshot] = Channel("exec.metrics", 8)
    account = AccountSnapshot(venue="A", balances=MappingProxyType({"USDT": Decimal(1)}), open_order_ids=(),
                              ts_ns=1)
    for event in (_route("c1", 0), account, _report("c1", ExecStatus.ACK, 1_000_000)):
        await inbox.put(event)
    await inbox.close()

    async with asyncio.timeout(5):
        await ExecutionObserver(executions, inbox).run()

    assert executions.routes_by_venue == {"A": 1}
    assert executions.reports == {("ack", "A"): 1} and executions.latency_count == 1
