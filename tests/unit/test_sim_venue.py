"""Unit tests for the pure simulated venue: lifecycle, quantities, ids, fees, latency and determinism."""

from __future__ import annotations

import random
from decimal import Decimal
from itertools import pairwise

import pytest

from dma_bot.errors import ConfigError
from dma_bot.gateways.sim_venue import SimVenue, SimVenueParams
from dma_bot.model.enums import ExecStatus, Side, is_legal_transition
from dma_bot.model.events import ExecReport, Route
from dma_bot.model.instrument import Instrument

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
BTC = Instrument(
    symbol="BTCUSDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    base_asset="BTC",
    quote_asset="USDT",
)
ETH = Instrument(
    symbol="ETHUSDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.0001"),
    min_notional=Decimal("5"),
    base_asset="ETH",
    quote_asset="USDT",
)
INSTRUMENTS = {BTC.symbol: BTC, ETH.symbol: ETH}


def make_params(**overrides: object) -> SimVenueParams:
    values: dict[str, object] = {"ack_latency_ms": 2, "fill_latency_ms": 5, "fee_bps": 10}
    values.update(overrides)
    return SimVenueParams(**values)  # type: ignore[arg-type]


def make_route(n: int, *, symbol: str = "BTCUSDT", side: Side = Side.BUY, price: int = 6_500_000,
               quantity: int = 1_000, venue: str = "SIM") -> Route:
    return Route(
        venue=venue,
        client_order_id=f"c{n}",
        parent_order_id=f"p{n}",
        strategy="mr",
        symbol=symbol,
        side=side,
        price=price,
        quantity=quantity,
        ts_signal_ns=T0,
        ts_ns=T0,
    )


def drain(venue: SimVenue) -> list[ExecReport]:
    """Pop every scheduled report, stepping the clock to each due time."""
    reports: list[ExecReport] = []
    while (due := venue.next_due_ns()) is not None:
        reports.extend(venue.pop_due(due))
    return reports


def by_order(reports: list[ExecReport]) -> dict[str, list[ExecReport]]:
    grouped: dict[str, list[ExecReport]] = {}
    for report in reports:
        grouped.setdefault(report.client_order_id, []).append(report)
    return grouped


def test_sim_venue_single_fill_acks_then_fills_at_limit() -> None:
    """Without partials, an order gets ACK then one FILLED at its limit price, side from the route."""
    venue = SimVenue("SIM", make_params(partial_fill_pct=0), INSTRUMENTS, seed=1)

    venue.submit(make_route(1, side=Side.SELL), T0)
    reports = drain(venue)

    assert [r.status for r in reports] == [ExecStatus.ACK, ExecStatus.FILLED]
    ack, fill = reports
    assert ack.venue_order_id == "SIM-1" == fill.venue_order_id
    assert (ack.last_qty, ack.cum_qty, ack.leaves_qty, ack.trade_id) == (0, 0, 1_000, None)
    assert (fill.last_qty, fill.last_price, fill.cum_qty, fill.leaves_qty) == (1_000, 6_500_000, 1_000, 0)
    assert fill.side is Side.SELL and ack.side is Side.SELL
    assert (fill.venue, fill.symbol, fill.fee_asset) == ("SIM", "BTCUSDT", "USDT")
    assert venue.open_orders == 0


def test_sim_venue_pop_due_before_time_returns_nothing() -> None:
    """Nothing is reported before it is due; ts_ns is the pop time, ts_event_ns the scheduled time."""
    venue = SimVenue("SIM", make_params(jitter_pct=0, partial_fill_pct=0), INSTRUMENTS, seed=1)
    venue.submit(make_route(1), T0)

    early = venue.pop_due(T0 + 2 * MS - 1)
    late = venue.pop_due(T0 + 3 * MS)

    assert early == []
    assert [(r.status, r.ts_event_ns, r.ts_ns) for r in late] == [(ExecStatus.ACK, T0 + 2 * MS, T0 + 3 * MS)]
    assert venue.next_due_ns() == T0 + 7 * MS
    assert venue.open_orders == 1


def test_sim_venue_partial_fills_sum_exactly_to_quantity() -> None:
    """With partial_fill_pct=100 every order fills in 2-3 positive parts with consistent cum/leaves."""
    venue = SimVenue("SIM", make_params(partial_fill_pct=100), INSTRUMENTS, seed=7)
    quantities = [2, 3, 17, 1_000, 123_457]
    for n, quantity in enumerate(quantities):
        venue.submit(make_route(n, quantity=quantity), T0)

    grouped = by_order(drain(venue))

    for n, quantity in enumerate(quantities):
        fills = [r for r in grouped[f"c{n}"] if r.status.is_fill]
        assert 2 <= len(fills) <= 3
        assert [r.status for r in fills[:-1]] == [ExecStatus.PARTIALLY_FILLED] * (len(fills) - 1)
        assert fills[-1].status is ExecStatus.FILLED
        assert all(r.last_qty > 0 for r in fills)
        assert sum(r.last_qty for r in fills) == quantity
        running = 0
        for report in fills:
            running += report.last_qty
            assert (report.cum_qty, report.leaves_qty) == (running, quantity - running)


def test_sim_venue_quantity_of_one_step_fills_whole() -> None:
    """A one-step order cannot be split, so it fills in one FILLED even with partial_fill_pct=100."""
    venue = SimVenue("SIM", make_params(partial_fill_pct=100), INSTRUMENTS, seed=3)
    venue.submit(make_route(1, quantity=1), T0)

    statuses = [r.status for r in drain(venue)]

    assert statuses == [ExecStatus.ACK, ExecStatus.FILLED]


def test_sim_venue_trade_ids_unique_across_orders() -> None:
    """Every fill has a trade id '<name>-t<n>', unique within the venue; venue order ids are unique too."""
    venue = SimVenue("SIM", make_params(partial_fill_pct=60), INSTRUMENTS, seed=11)
    for n in range(200):
        venue.submit(make_route(n, quantity=50 + n), T0 + n * 100_000)

    reports = drain(venue)
    trade_ids = [r.trade_id for r in reports if r.status.is_fill]
    order_ids = {r.venue_order_id for r in reports}

    assert len(trade_ids) == len(set(trade_ids)) > 200
    assert all(t is not None and t.startswith("SIM-t") for t in trade_ids)
    assert len(order_ids) == 200
    assert all(r.trade_id is None for r in reports if not r.status.is_fill)


def test_sim_venue_fee_is_exact_bps_of_notional() -> None:
    """fee == fee_bps/10000 * price * quantity exactly, in the quote asset; non-fills pay nothing."""
    venue = SimVenue("SIM", make_params(fee_bps=7, partial_fill_pct=100), INSTRUMENTS, seed=5)
    venue.submit(make_route(1, price=6_543_219, quantity=12_345), T0)

    reports = drain(venue)

    for report in reports:
        price = Decimal("0.01") * report.last_price
        quantity = Decimal("0.00001") * report.last_qty
        assert report.fee == Decimal("7") / Decimal("10000") * price * quantity
        assert report.fee_asset == "USDT"
    fills = [r for r in reports if r.status.is_fill]
    assert sum((r.fee for r in fills), Decimal(0)) == Decimal("0.0007") * Decimal("65432.19") * Decimal("0.12345")
    assert reports[0].fee == 0


def test_sim_venue_zero_fee_bps_charges_zero() -> None:
    """fee_bps=0 gives a fee of exactly zero on fills."""
    venue = SimVenue("SIM", make_params(fee_bps=0, partial_fill_pct=0), INSTRUMENTS, seed=5)
    venue.submit(make_route(1), T0)

    fill = drain(venue)[-1]

    assert fill.status is ExecStatus.FILLED and fill.fee == Decimal(0)


def _run(seed: int, params: SimVenueParams) -> list[ExecReport]:
    venue = SimVenue("SIM", params, INSTRUMENTS, seed=seed)
    for n in range(50):
        venue.submit(make_route(n, quantity=10 + n), T0 + n * MS)
    return drain(venue)


def test_sim_venue_same_seed_same_reports() -> None:
    """Determinism: the same seed and route sequence give identical reports."""
    params = make_params(reject_pct=10)

    assert _run(42, params) == _run(42, params)


def test_sim_venue_different_seed_different_latencies() -> None:
    """A different seed draws different latencies."""
    params = make_params()

    first = [r.ts_event_ns for r in _run(1, params)]
    second = [r.ts_event_ns for r in _run(2, params)]

    assert first != second


def test_sim_venue_reject_path_reports_one_rejected() -> None:
    """With reject_pct=100 an order gets exactly one REJECTED (no ACK, no fill, no venue id) with a reason."""
    venue = SimVenue("SIM", make_params(reject_pct=100, jitter_pct=0), INSTRUMENTS, seed=9)
    venue.submit(make_route(1, side=Side.SELL), T0)

    reports = drain(venue)

    assert len(reports) == 1
    (reject,) = reports
    assert reject.status is ExecStatus.REJECTED and reject.reason
    assert (reject.last_qty, reject.cum_qty, reject.leaves_qty, reject.fee) == (0, 0, 0, 0)
    assert reject.venue_order_id == "" and reject.trade_id is None
    assert reject.side is Side.SELL and reject.ts_event_ns == T0 + 2 * MS
    assert venue.open_orders == 0


@pytest.mark.parametrize(
    ("route", "reason_start"),
    [
        (make_route(1, symbol="XRPUSDT"), "unknown symbol"),
        (make_route(2, quantity=0), "quantity"),
        (make_route(3, price=0), "price"),
        (make_route(4, symbol="ETHUSDT", price=100_000, quantity=4), "notional"),
    ],
)
def test_sim_venue_invalid_route_rejected_with_reason(route: Route, reason_start: str) -> None:
    """The venue's own order checks turn a bad route into a REJECTED report, not an exception."""
    venue = SimVenue("SIM", make_params(), INSTRUMENTS, seed=1)
    venue.submit(route, T0)

    reports = drain(venue)

    assert [r.status for r in reports] == [ExecStatus.REJECTED]
    assert reports[0].reason.startswith(reason_start)


def test_sim_venue_route_for_other_venue_raises() -> None:
    """A route addressed to another venue is a wiring bug and raises."""
    venue = SimVenue("SIM", make_params(), INSTRUMENTS, seed=1)

    with pytest.raises(ValueError, match="venue"):
        venue.submit(make_route(1, venue="OTHER"), T0)


def test_sim_venue_latencies_within_jitter_bounds() -> None:
    """Ack and fill latencies stay within +-jitter_pct of their means, as integer ns."""
    params = make_params(ack_latency_ms=Decimal("1.5"), fill_latency_ms=4, jitter_pct=20, partial_fill_pct=50)
    venue = SimVenue("SIM", params, INSTRUMENTS, seed=13)
    for n in range(300):
        venue.submit(make_route(n), T0)

    grouped = by_order(drain(venue))

    ack_delays = set()
    for reports in grouped.values():
        ack_delays.add(reports[0].ts_event_ns - T0)
        assert 1_200_000 <= reports[0].ts_event_ns - T0 <= 1_800_000
        for before, after in pairwise(reports):
            assert 3_200_000 <= after.ts_event_ns - before.ts_event_ns <= 4_800_000
    assert len(ack_delays) > 100


def test_sim_venue_zero_latency_still_orders_events_strictly() -> None:
    """With zero latencies the events of one order still have strictly increasing times."""
    venue = SimVenue("SIM", make_params(ack_latency_ms=0, fill_latency_ms=0, partial_fill_pct=100), INSTRUMENTS, 2)
    venue.submit(make_route(1), T0)

    times = [r.ts_event_ns for r in drain(venue)]

    assert times == sorted(set(times)) and len(times) >= 3


def test_sim_venue_ties_pop_in_submit_order() -> None:
    """Reports due at the same time come out in submit order."""
    venue = SimVenue("SIM", make_params(jitter_pct=0, partial_fill_pct=0), INSTRUMENTS, seed=1)
    for n in range(5):
        venue.submit(make_route(n), T0)

    acks = venue.pop_due(T0 + 2 * MS)

    assert [r.client_order_id for r in acks] == ["c0", "c1", "c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"ack_latency_ms": -1}, "ack_latency_ms"),
        ({"fill_latency_ms": 1.5}, "fill_latency_ms"),
        ({"ack_latency_ms": Decimal("NaN")}, "ack_latency_ms"),
        ({"jitter_pct": 101}, "jitter_pct"),
        ({"partial_fill_pct": -1}, "partial_fill_pct"),
        ({"reject_pct": True}, "reject_pct"),
        ({"fee_bps": -1}, "fee_bps"),
    ],
)
def test_sim_venue_params_invalid_value_raises_config_error(overrides: dict[str, object], key: str) -> None:
    """Out-of-range or float parameters fail loudly, naming the key."""
    with pytest.raises(ConfigError, match=f"^{key}: "):
        make_params(**overrides)


def test_sim_venue_params_decimal_latency_converts_to_exact_ns() -> None:
    """Millisecond latencies become exact integer nanoseconds."""
    params = make_params(ack_latency_ms=Decimal("0.25"), fill_latency_ms=3)

    assert (params.ack_latency_ns, params.fill_latency_ns) == (250_000, 3_000_000)


def test_sim_venue_random_routes_lifecycle_properties() -> None:
    """Property-style: over seeded random routes and pop times, every order follows a legal lifecycle."""
    rng = random.Random(2024)
    params = make_params(partial_fill_pct=40, reject_pct=15, ack_latency_ms=1, fill_latency_ms=2)
    venue = SimVenue("SIM", params, INSTRUMENTS, seed=99)
    routes: dict[str, Route] = {}
    popped: list[ExecReport] = []
    now = T0
    for n in range(2_000):
        route = make_route(n, side=rng.choice((Side.BUY, Side.SELL)), price=rng.randrange(1, 10_000_000),
                           quantity=rng.randrange(1, 100_000))
        routes[route.client_order_id] = route
        venue.submit(route, now)
        now += rng.randrange(0, 2 * MS)
        batch = venue.pop_due(now)
        assert all(r.ts_event_ns <= now == r.ts_ns for r in batch)
        assert [r.ts_event_ns for r in batch] == sorted(r.ts_event_ns for r in batch)
        popped.extend(batch)
    popped.extend(drain(venue))

    assert venue.open_orders == 0 and venue.next_due_ns() is None
    grouped = by_order(popped)
    assert grouped.keys() == routes.keys()
    trade_ids = [r.trade_id for r in popped if r.trade_id is not None]
    assert len(trade_ids) == len(set(trade_ids))
    for client_order_id, reports in grouped.items():
        route = routes[client_order_id]
        status = ExecStatus.PENDING_NEW
        for report in reports:
            assert is_legal_transition(status, report.status)
            status = report.status
            assert (report.side, report.symbol, report.venue) == (route.side, route.symbol, "SIM")
        assert status.is_terminal and [r.status.is_terminal for r in reports].count(True) == 1
        times = [r.ts_event_ns for r in reports]
        assert times == sorted(set(times))
        if status is ExecStatus.FILLED:
            assert sum(r.last_qty for r in reports) == route.quantity == reports[-1].cum_qty
            assert all(r.last_price == route.price for r in reports if r.status.is_fill)
