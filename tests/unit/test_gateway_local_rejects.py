"""gateways.base local decisions (route_too_old, local_reject) and the mock gateway's maximum order age."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock
from dma_bot.gateways.base import GATEWAY_EVENTS, local_reject, route_too_old
from dma_bot.gateways.mock import MockGateway
from dma_bot.gateways.sim_venue import SimVenue, SimVenueParams
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard

MS = 1_000_000
SIGNAL_NS = 1_760_000_000_000_000_000
BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), base_asset="BTC",
                 quote_asset="USDT")


def route(cid: str = "c1", ts_signal_ns: int = SIGNAL_NS) -> Route:
    return Route(venue="SIM", client_order_id=cid, parent_order_id="p", strategy="mr", symbol="BTCUSDT",
                 side=Side.BUY, price=6_500_000, quantity=100, ts_signal_ns=ts_signal_ns, ts_ns=ts_signal_ns)


def test_route_too_old_names_its_age_and_the_maximum_in_milliseconds() -> None:
    """Older than the maximum: the reason says how old (whole ms) and the limit; at the limit it still goes."""
    reason = route_too_old(route(), SIGNAL_NS + 10_812_345_678, 2_000 * MS)
    assert reason == "stale: 10812 ms since its signal, max 2000 ms"
    assert route_too_old(route(), SIGNAL_NS + 2_000 * MS, 2_000 * MS) == ""
    assert route_too_old(route(), SIGNAL_NS + 2_000 * MS + 1, 2_000 * MS).startswith("stale: 2000 ms")


def test_route_too_old_is_off_at_zero() -> None:
    assert route_too_old(route(ts_signal_ns=0), SIGNAL_NS, 0) == ""


def test_local_reject_carries_the_routes_facts_and_the_reason() -> None:
    report = local_reject(route(), "stale: 3 ms since its signal, max 1 ms", SIGNAL_NS)
    assert (report.status, report.side, report.order_qty, report.cum_qty, report.venue_order_id) == (
        ExecStatus.REJECTED, Side.BUY, 100, 0, "")
    assert report.reason.startswith("stale") and report.ts_ns == report.ts_event_ns == SIGNAL_NS


def test_gateway_events_name_the_venue_fault_outcomes() -> None:
    assert {"unknown_at_venue", "stale_route", "unreachable_reject"} <= set(GATEWAY_EVENTS)


async def test_mock_gateway_rejects_a_route_older_than_the_maximum_age_and_submits_the_fresh_one() -> None:
    """Max age 1000 ms: a route whose signal is 5 s old is REJECTED at once with the reason, counted, never
    submitted; a fresh one lives its simulated life."""
    clock = LiveClock()
    params = SimVenueParams(ack_latency_ms=1, fill_latency_ms=1, partial_fill_pct=0, fee_bps=10)
    board = MarketBoard()
    board.update(Tick("BTCUSDT", 6_499_999, 6_500_000, 0, 0, 0, 0))  # the routes buy at the ask: they fill
    venue = SimVenue("SIM", params, {BTC.symbol: BTC}, seed=1, board=board)
    inbox: Channel[Route] = Channel("venue_orders.SIM", 16)
    out: Channel[ExecReport] = Channel("exec_reports", 64, producers=0)
    gateway = MockGateway(venue, inbox, fanout(out), clock, max_order_age_ms=1_000)
    now = clock.time_ns()
    await inbox.put(route("old", ts_signal_ns=now - 5_000 * MS))
    await inbox.put(route("new", ts_signal_ns=now))
    await inbox.close()
    reports: list[ExecReport] = []
    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(gateway.run())
        while (batch := await out.get_batch()) is not None:
            reports += batch
    old = [r for r in reports if r.client_order_id == "old"]
    assert [r.status for r in old] == [ExecStatus.REJECTED]
    assert old[0].reason.startswith("stale: ") and old[0].reason.endswith(" ms since its signal, max 1000 ms")
    assert [r.status for r in reports if r.client_order_id == "new"] == [ExecStatus.ACK, ExecStatus.FILLED]
    assert gateway.counters()["stale_route"] == 1 and venue.open_orders == 0
    assert set(gateway.counters()) == set(GATEWAY_EVENTS)


def test_mock_gateway_refuses_a_negative_maximum_age() -> None:
    venue = SimVenue("SIM", SimVenueParams(ack_latency_ms=1, fill_latency_ms=1, fee_bps=0), {}, seed=1,
                     board=MarketBoard())
    with pytest.raises(ValueError, match="max_order_age_ms"):
        MockGateway(venue, Channel("in", 1), fanout(Channel("out", 1, producers=0)), LiveClock(), max_order_age_ms=-1)
