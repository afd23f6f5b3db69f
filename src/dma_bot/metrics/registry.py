"""Metrics: owns one CollectorRegistry and exposes every engine metric, read at scrape time.

Nothing here runs per tick. The stages keep plain integer counters and state (their ``stats``), and
:class:`EngineCollector` reads them through the callables of :class:`MetricsSources` when Prometheus
scrapes, so the hot path pays nothing for observability. Metric names and labels are the original
daemon's, exactly, so its dashboards keep working; prometheus_client's habit of appending ``_total`` to
counters is handled by naming each sample explicitly. ``ticks_total_by_symbol`` and ``signals_total_by``
are exposed as untyped: they are counters in meaning, but a counter whose name does not end in
``_total`` cannot be written cleanly in the exposition format. Values become floats only here, at the
exposition border (Prometheus samples are float64); the engine's money stays Decimal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from dma_bot.metrics.executions import ExecutionMetrics
from dma_bot.metrics.text_format import render
from dma_bot.model.enums import KillSwitchState
from dma_bot.model.instrument import Instrument
from dma_bot.model.positions import PositionSnapshot

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsSources", "StreamHealth"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Depth(Protocol):
    name: str

    def qsize(self) -> int: ...

    @property
    def maxsize(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamHealth:
    """One streaming connection: the market-data feed (stream "market") or a venue's user-data stream ("user")."""

    venue: str
    stream: str
    connected: bool
    reconnects: int
    last_event_ns: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSources:
    """Read-only accessors into the running engine, built by the wiring."""

    feed_mode: str
    venue_mode: str
    symbols: Sequence[str]
    strategy_workers: Mapping[str, int]
    instruments: Mapping[str, Instrument]
    ticks_by_symbol: Callable[[], Mapping[str, int]]
    signals: Callable[[], Iterable[tuple[str, str, int]]]  # (strategy, symbol, count)
    orders_total: Callable[[], int]
    rejects_by_reason: Callable[[], Mapping[str, int]]
    kill_switch_state: Callable[[], KillSwitchState]
    venue_scores: Callable[[], Mapping[str, int]]
    executions: ExecutionMetrics
    positions: Callable[[], PositionSnapshot]
    unrealized_pnl: Callable[[], Decimal]
    fees: Callable[[], Mapping[str, Decimal]]  # commissions per asset
    ledger_anomalies: Callable[[], Mapping[str, int]]  # Note kind -> count
    fill_gaps: Callable[[], int]  # orders whose applied fills differ from the venue's cum_qty
    gateway_events: Callable[[], Mapping[str, Mapping[str, int]]]  # venue -> event -> count
    recorder_storage: Callable[[], tuple[int, int]]  # (write failures, lines not in the file)
    queues: Sequence[_Depth]
    streams: Callable[[], Iterable[StreamHealth]]
    subscriptions: Callable[[], Mapping[str, tuple[int, int]]]  # venue -> (ok, err) user-data (re)subscriptions
    simulated_venues: Sequence[str]  # in-process venues: their account is our books (position_drift 0)
    now_ns: Callable[[], int]


def _family(name: str, documentation: str, kind: str) -> Metric:
    return Metric(name, documentation, kind)


class EngineCollector(Collector):
    def __init__(self, sources: MetricsSources) -> None:
        self._s = sources

    def collect(self) -> Iterator[Metric]:
        s = self._s
        yield from self._config(s)
        yield from self._flow(s)
        yield from self._executions(s.executions)
        yield from self._positions(s)
        depth = _family("queue_depth", "Events waiting in each queue between stages", "gauge")
        capacity = _family("queue_capacity", "Capacity of each queue between stages", "gauge")
        for queue in s.queues:
            depth.add_sample("queue_depth", {"queue": queue.name}, queue.qsize())
            capacity.add_sample("queue_capacity", {"queue": queue.name}, queue.maxsize)
        yield depth
        yield capacity
        yield from self._streams(s)
        yield from self._books(s)

    @staticmethod
    def _books(s: MetricsSources) -> Iterator[Metric]:
        events = _family("gateway_events", "Gateway repairs, reconciliations, retries and give-ups by venue and event",
                         "counter")
        for venue, counts in s.gateway_events().items():
            for event, count in counts.items():
                events.add_sample("gateway_events_total", {"venue": venue, "event": event}, count)
        yield events
        failures, unwritten = s.recorder_storage()
        written = _family("recorder_write_failures", "Failed writes of the JSONL recording (disk full, I/O error)",
                          "counter")
        written.add_sample("recorder_write_failures_total", {}, failures)
        yield written
        held = _family("recorder_lines_unwritten", "JSONL lines not (yet) in the file after a write failure", "gauge")
        held.add_sample("recorder_lines_unwritten", {}, unwritten)
        yield held

    @staticmethod
    def _streams(s: MetricsSources) -> Iterator[Metric]:
        connected = _family("binance_ws_connected", "1 if the streaming connection is up, 0 otherwise", "gauge")
        reconnects = _family("binance_ws_reconnects", "Reconnects of the streaming connection", "counter")
        last_ts = _family("binance_ws_last_event_ts", "Unix seconds of the last event received", "gauge")
        age = _family("binance_ws_last_event_age_seconds", "Seconds since the last event received", "gauge")
        now_ns = s.now_ns()
        for health in s.streams():
            labels = {"venue": health.venue, "stream": health.stream}
            connected.add_sample("binance_ws_connected", labels, 1 if health.connected else 0)
            reconnects.add_sample("binance_ws_reconnects_total", labels, health.reconnects)
            if health.last_event_ns is not None:
                last_ts.add_sample("binance_ws_last_event_ts", labels, health.last_event_ns // 1_000_000_000)
                age.add_sample("binance_ws_last_event_age_seconds", labels, max(now_ns - health.last_event_ns, 0) / 1e9)
        yield from (connected, reconnects, last_ts, age)
        ok = _family("binance_listenkey_keepalive_ok", "Successful user-data stream (re)subscriptions", "counter")
        err = _family("binance_listenkey_keepalive_err", "Failed user-data stream (re)subscriptions", "counter")
        for venue, (ok_count, err_count) in s.subscriptions().items():
            ok.add_sample("binance_listenkey_keepalive_ok_total", {"venue": venue}, ok_count)
            err.add_sample("binance_listenkey_keepalive_err_total", {"venue": venue}, err_count)
        yield ok
        yield err

    @staticmethod
    def _config(s: MetricsSources) -> Iterator[Metric]:
        for name, label, values in (
            ("config_feed_mode", "mode", {s.feed_mode: 1}),
            ("config_venue_mode", "mode", {s.venue_mode: 1}),
            ("config_strategy_active", "strategy", dict(s.strategy_workers)),
            ("config_symbol", "symbol", dict.fromkeys(s.symbols, 1)),
        ):
            family = _family(name, f"Configured {label} (value: 1, or workers for strategies)", "gauge")
            for key, value in values.items():
                family.add_sample(name, {label: key}, value)
            yield family

    @staticmethod
    def _flow(s: MetricsSources) -> Iterator[Metric]:
        ticks = s.ticks_by_symbol()
        total = _family("ticks", "Market data ticks", "counter")
        total.add_sample("ticks_total", {}, sum(ticks.values()))
        yield total
        by_symbol = _family("ticks_total_by_symbol", "Market data ticks per symbol", "unknown")
        for symbol, count in ticks.items():
            by_symbol.add_sample("ticks_total_by_symbol", {"symbol": symbol}, count)
        yield by_symbol

        rows = list(s.signals())
        signals = _family("signals", "Strategy signals", "counter")
        signals.add_sample("signals_total", {}, sum(count for _, _, count in rows))
        yield signals
        by = _family("signals_total_by", "Strategy signals by strategy and symbol", "unknown")
        for strategy, symbol, count in rows:
            by.add_sample("signals_total_by", {"strategy": strategy, "symbol": symbol}, count)
        yield by

        orders = _family("orders", "Orders accepted by risk", "counter")
        orders.add_sample("orders_total", {}, s.orders_total())
        yield orders
        rejects = _family("risk_rejections", "Signals refused by pre-trade risk, by reason", "counter")
        for reason, count in s.rejects_by_reason().items():
            rejects.add_sample("risk_rejections_total", {"reason": reason}, count)
        yield rejects
        kill = _family("risk_kill_switch_state", "Kill switch state (1 for the current state)", "gauge")
        current = s.kill_switch_state()
        for state in KillSwitchState:
            kill.add_sample("risk_kill_switch_state", {"state": state.value}, 1 if state is current else 0)
        yield kill
        scores = _family("sor_venue_score", "Smart order router venue score", "gauge")
        for venue, score in s.venue_scores().items():
            scores.add_sample("sor_venue_score", {"venue": venue}, score)
        yield scores

    @staticmethod
    def _executions(e: ExecutionMetrics) -> Iterator[Metric]:
        reports = _family("exec_reports", "Execution reports by status and venue", "counter")
        for (status, venue), count in e.reports.items():
            reports.add_sample("exec_reports_total", {"status": status, "venue": venue}, count)
        yield reports
        routes = _family("routes", "Child orders sent to venues", "counter")
        for venue, count in e.routes_by_venue.items():
            routes.add_sample("routes_total", {"venue": venue}, count)
        yield routes
        latency = _family("latency_signal_to_ack_ms", "Latency from signal to venue ACK (ms)", "histogram")
        for le, count in e.cumulative_buckets():
            latency.add_sample("latency_signal_to_ack_ms_bucket", {"le": le}, count)
        latency.add_sample("latency_signal_to_ack_ms_count", {}, e.latency_count)
        latency.add_sample("latency_signal_to_ack_ms_sum", {}, e.latency_sum_ns / 1e6)
        yield latency

    @staticmethod
    def _positions(s: MetricsSources) -> Iterator[Metric]:
        snapshot = s.positions()
        inventory = _family("inventory_qty", "Net position per symbol and venue, base units", "gauge")
        total = Decimal(0)
        for (symbol, venue), position in snapshot.positions.items():
            quantity = position.holdings  # what the account holds, net of base-asset commissions
            total += quantity
            inventory.add_sample("inventory_qty", {"symbol": symbol, "venue": venue}, float(quantity))
        yield inventory
        unrealized = s.unrealized_pnl()
        for name, doc, value in (
            ("inventory_total_qty", "Net position over all symbols and venues, base units", total),
            ("pnl_realized", "Realized PnL before fees, quote currency", snapshot.realized_pnl),
            ("pnl_unrealized", "Unrealized PnL marked at mid, quote currency", unrealized),
            ("pnl_fees", "Quote value of the fees that have a price (see fees_paid for every asset)",
             snapshot.fee_value),
            ("pnl_net", "Realized + unrealized PnL - pnl_fees, quote currency",
             snapshot.realized_pnl + unrealized - snapshot.fee_value),
        ):
            family = _family(name, doc, "gauge")
            family.add_sample(name, {}, float(value))
            yield family
        fees = _family("fees_paid", "Commissions paid per asset, in that asset", "gauge")
        for asset, amount in s.fees().items():
            fees.add_sample("fees_paid", {"asset": asset}, float(amount))
        yield fees
        anomalies = _family("ledger_anomalies", "Execution reports the ledger noted (duplicate, late, illegal...)",
                            "counter")
        for kind, count in s.ledger_anomalies().items():
            anomalies.add_sample("ledger_anomalies_total", {"kind": kind}, count)
        yield anomalies
        gaps = _family("ledger_fill_gap_orders", "Orders whose applied fills differ from the venue's cum_qty", "gauge")
        gaps.add_sample("ledger_fill_gap_orders", {}, s.fill_gaps())
        yield gaps
        drift = _family("position_drift", "Venue account balance minus the ledger's expectation, per asset", "gauge")
        for (venue, asset), amount in snapshot.drift.items():
            drift.add_sample("position_drift", {"venue": venue, "asset": asset}, float(amount))
        if s.simulated_venues:
            assets = sorted({a for i in s.instruments.values() for a in (i.base_asset, i.quote_asset) if a})
            for venue in s.simulated_venues:
                for asset in assets:
                    drift.add_sample("position_drift", {"venue": venue, "asset": asset}, 0.0)
        yield drift


class Metrics:
    """The daemon's metrics: a private registry (never the global one) and its exposition."""

    def __init__(self, sources: MetricsSources) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(EngineCollector(sources))

    def exposition(self) -> bytes:
        """The text exposition of every family (``render``: generate_latest's bytes, ~10x cheaper)."""
        return render(self.registry.collect())
