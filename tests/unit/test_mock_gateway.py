"""Tests for the MockGateway shell over real bus Channels, a LiveClock and millisecond latencies."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from dma_bot.bus import MAX_DEFERRALS, Channel, Fanout
from dma_bot.clock import LiveClock, ManualClock
from dma_bot.gateways.base import Gateway
from dma_bot.gateways.mock import MockGateway
from dma_bot.gateways.sim_venue import SimVenue, SimVenueParams
from dma_bot.model.enums import ExecStatus, Side, is_legal_transition
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard

BTC = Instrument(
    symbol="BTCUSDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    base_asset="BTC",
    quote_asset="USDT",
)


def marketable_board() -> MarketBoard:
    """A board whose BTC quote (bid 65000.00, ask 65000.01, depth unknown) every route of make_route crosses:
    buys are priced at or above the ask, sells at or below the bid, so each order fills whole."""
    board = MarketBoard()
    board.update(Tick("BTCUSDT", 6_500_000, 6_500_001, 0, 0, 0, 0))
    return board


def make_gateway(
    *, inbox_size: int = 1_024, out_size: int = 4_096, partial_fill_pct: int = 50, reject_pct: int = 0, seed: int = 1
) -> tuple[MockGateway, Channel[Route], Channel[ExecReport]]:
    params = SimVenueParams(
        ack_latency_ms=1, fill_latency_ms=1, partial_fill_pct=partial_fill_pct, reject_pct=reject_pct, fee_bps=10
    )
    venue = SimVenue("SIM", params, {BTC.symbol: BTC}, seed=seed, board=marketable_board())
    inbox: Channel[Route] = Channel("venue_orders.SIM", inbox_size)
    out: Channel[ExecReport] = Channel("exec_reports", out_size)
    return MockGateway(venue, inbox, Fanout([out]), LiveClock()), inbox, out


def make_route(n: int) -> Route:
    """Route n: odd n buys at 65000.00 + n ticks, even n sells at 65000.00 - n ticks."""
    return Route(
        venue="SIM",
        client_order_id=f"c{n}",
        parent_order_id=f"p{n}",
        strategy="mr",
        symbol="BTCUSDT",
        side=Side.BUY if n % 2 else Side.SELL,
        price=6_500_000 + n if n % 2 else 6_500_000 - n,
        quantity=100 + n,
        ts_signal_ns=0,
        ts_ns=0,
    )


async def send(inbox: Channel[Route], routes: list[Route]) -> None:
    for route in routes:
        await inbox.put(route)
    await inbox.close()


async def collect(out: Channel[ExecReport]) -> list[ExecReport]:
    reports: list[ExecReport] = []
    while (batch := await out.get_batch()) is not None:
        reports.extend(batch)
    return reports


async def run_all(
    gateway: MockGateway, inbox: Channel[Route], out: Channel[ExecReport], routes: list[Route]
) -> list[ExecReport]:
    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(gateway.run())
        group.create_task(send(inbox, routes))
        collector = group.create_task(collect(out))
    return collector.result()


def assert_complete_lifecycles(routes: list[Route], reports: list[ExecReport]) -> None:
    """Each route: legal transitions from PENDING_NEW, exactly one terminal report, last, fills summing up."""
    grouped: dict[str, list[ExecReport]] = {}
    for report in reports:
        grouped.setdefault(report.client_order_id, []).append(report)
    assert grouped.keys() == {route.client_order_id for route in routes}
    for route in routes:
        own = grouped[route.client_order_id]
        status = ExecStatus.PENDING_NEW
        for report in own:
            assert is_legal_transition(status, report.status), (route.client_order_id, status, report.status)
            status = report.status
            assert report.side is route.side
        assert status.is_terminal
        assert sum(r.status.is_terminal for r in own) == 1
        if status is ExecStatus.FILLED:
            assert sum(r.last_qty for r in own) == route.quantity


def test_mock_gateway_satisfies_gateway_protocol() -> None:
    """MockGateway is a Gateway whose venue attribute is the venue's name."""
    gateway, _, _ = make_gateway()

    assert isinstance(gateway, Gateway)
    assert gateway.venue == "SIM"


async def test_mock_gateway_every_route_gets_ack_then_terminal_in_order() -> None:
    """Every route gets ACK first and a FILLED last, with partials in between; stats count each report."""
    gateway, inbox, out = make_gateway(partial_fill_pct=50)
    routes = [make_route(n) for n in range(20)]

    reports = await run_all(gateway, inbox, out, routes)

    assert_complete_lifecycles(routes, reports)
    firsts = {}
    for report in reports:
        firsts.setdefault(report.client_order_id, report.status)
    assert set(firsts.values()) == {ExecStatus.ACK}
    assert gateway.stats.routes_received == 20
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status.value] = counts.get(report.status.value, 0) + 1
    assert gateway.stats.reports_by_status == counts
    assert counts["ack"] == counts["filled"] == 20 and counts.get("partially_filled", 0) > 0


async def test_mock_gateway_end_right_after_routes_delivers_all_fills_before_closing() -> None:
    """Routes followed at once by END: the output closes only after every fill was delivered."""
    gateway, inbox, out = make_gateway(partial_fill_pct=30)
    routes = [make_route(n) for n in range(50)]
    await send(inbox, routes)

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(gateway.run())
        collector = group.create_task(collect(out))
    reports = collector.result()

    assert_complete_lifecycles(routes, reports)
    assert gateway.stats.reports_by_status["filled"] == 50
    assert gateway.sim_venue.open_orders == 0


async def test_mock_gateway_500_routes_through_small_channels_lose_nothing() -> None:
    """500 routes through bounded channels (backpressure both ways, rejects on): each gets its terminal."""
    gateway, inbox, out = make_gateway(inbox_size=8, out_size=16, partial_fill_pct=30, reject_pct=10, seed=3)
    routes = [make_route(n) for n in range(500)]

    reports = await run_all(gateway, inbox, out, routes)

    assert_complete_lifecycles(routes, reports)
    stats = gateway.stats.reports_by_status
    assert stats["filled"] + stats["rejected"] == 500
    assert stats["rejected"] > 0
    assert sum(stats.values()) == len(reports)


async def test_mock_gateway_routes_arriving_during_pending_timeouts_lose_nothing() -> None:
    """Closed loop: each route is sent only after the previous ACK, so routes keep arriving while the
    gateway waits on its inbox with a deadline; no timeout-cancelled get may drop one."""
    gateway, inbox, out = make_gateway(inbox_size=1, partial_fill_pct=100)
    routes = [make_route(n) for n in range(100)]
    reports: list[ExecReport] = []

    async def closed_loop() -> None:
        for route in routes:
            await inbox.put(route)
            while not any(r.client_order_id == route.client_order_id for r in reports):
                batch = await out.get_batch()
                assert batch is not None
                reports.extend(batch)
        await inbox.close()
        reports.extend(await collect(out))

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(gateway.run())
        group.create_task(closed_loop())

    assert_complete_lifecycles(routes, reports)
    assert gateway.stats.routes_received == 100


async def test_mock_gateway_empty_inbox_closes_output_without_reports() -> None:
    """An inbox that ends with no routes closes the output at once."""
    gateway, inbox, out = make_gateway()
    await inbox.close()

    async with asyncio.timeout(5):
        await gateway.run()
        batch = await out.get_batch()

    assert batch is None
    assert gateway.stats.reports_by_status == {}


async def _turns_until_first_report(busy: bool) -> int:
    """Loop turns from submitting one route (its ACK due at once on a still clock) to the ACK on the output,
    with the gateway told the engine's hot path is ``busy``."""
    clock = ManualClock()
    venue = SimVenue("SIM", SimVenueParams(ack_latency_ms=0, fill_latency_ms=1, fee_bps=0), {BTC.symbol: BTC}, seed=3,
                     board=marketable_board())
    inbox: Channel[Route] = Channel("routes.SIM", 8)
    out: Channel[ExecReport] = Channel("exec", 64)
    gateway = MockGateway(venue, inbox, Fanout([out]), clock)
    gateway.defer_reports_while(lambda: busy)
    turns = 0

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(gateway.run())
        await inbox.put(make_route(1))
        while not out.qsize():
            turns += 1
            await asyncio.sleep(0)
        clock.advance(10**9)  # every fill is due now
        await inbox.close()
    assert [r.status for r in out.take_queued()][-1] is ExecStatus.FILLED
    return turns


async def test_mock_gateway_reports_wait_for_the_hot_path_but_not_for_long() -> None:
    """The simulated venue's due reports go out at once when the engine is idle, and only after yielding
    (at most MAX_DEFERRALS turns) while the engine's hot path has work waiting."""
    idle = await _turns_until_first_report(busy=False)
    busy = await _turns_until_first_report(busy=True)
    assert idle <= 3
    assert MAX_DEFERRALS <= busy <= MAX_DEFERRALS + 4
