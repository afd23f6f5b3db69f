"""Unit tests for the pure simulated venue: lifecycle, quantities, ids, fees, latency, determinism, and fills
against the quote prevailing when each fill attempt is due."""

from __future__ import annotations

import random
from decimal import Decimal
from itertools import pairwise

import pytest

from dma_bot.errors import ConfigError
from dma_bot.gateways.sim_venue import SimVenue, SimVenueParams
from dma_bot.model.enums import ExecStatus, Side, is_legal_transition
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.positions.ledger import Ledger

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


def quote(bid: int, ask: int, bid_qty: int = 0, ask_qty: int = 0, symbol: str = "BTCUSDT") -> Tick:
    return Tick(symbol, bid, ask, bid_qty, ask_qty, T0, T0)


def board_of(*ticks: Tick) -> MarketBoard:
    board = MarketBoard()
    for tick in ticks:
        board.update(tick)
    return board


def at_limit_board() -> MarketBoard:
    """A locked BTC quote at make_route's default limit, depth unknown: either side fills whole at its limit."""
    return board_of(quote(6_500_000, 6_500_000))


def make_venue(params: SimVenueParams, seed: int, board: MarketBoard | None = None) -> SimVenue:
    return SimVenue("SIM", params, INSTRUMENTS, seed=seed, board=at_limit_board() if board is None else board)


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


def pop_next(venue: SimVenue) -> list[ExecReport]:
    """Pop the reports due at the next scheduled time."""
    due = venue.next_due_ns()
    assert due is not None
    return venue.pop_due(due)


def by_order(reports: list[ExecReport]) -> dict[str, list[ExecReport]]:
    grouped: dict[str, list[ExecReport]] = {}
    for report in reports:
        grouped.setdefault(report.client_order_id, []).append(report)
    return grouped


def test_sim_venue_single_fill_acks_then_fills_at_the_touch() -> None:
    """Without partials, an order gets ACK then one FILLED at the touch (here its limit), side from the route."""
    venue = make_venue(make_params(partial_fill_pct=0), 1)

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
    venue = make_venue(make_params(jitter_pct=0, partial_fill_pct=0), 1)
    venue.submit(make_route(1), T0)

    early = venue.pop_due(T0 + 2 * MS - 1)
    late = venue.pop_due(T0 + 3 * MS)

    assert early == []
    assert [(r.status, r.ts_event_ns, r.ts_ns) for r in late] == [(ExecStatus.ACK, T0 + 2 * MS, T0 + 3 * MS)]
    assert venue.next_due_ns() == T0 + 7 * MS
    assert venue.open_orders == 1


def test_sim_venue_partial_fills_sum_exactly_to_quantity() -> None:
    """With partial_fill_pct=100 every order fills in 2-3 positive parts with consistent cum/leaves."""
    venue = make_venue(make_params(partial_fill_pct=100), 7)
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
    venue = make_venue(make_params(partial_fill_pct=100), 3)
    venue.submit(make_route(1, quantity=1), T0)

    statuses = [r.status for r in drain(venue)]

    assert statuses == [ExecStatus.ACK, ExecStatus.FILLED]


def test_sim_venue_trade_ids_unique_across_orders() -> None:
    """Every fill has a trade id '<name>-t<n>', unique within the venue; venue order ids are unique too."""
    venue = make_venue(make_params(partial_fill_pct=60), 11)
    for n in range(200):
        venue.submit(make_route(n, quantity=50 + n), T0 + n * 100_000)

    reports = drain(venue)
    trade_ids = [r.trade_id for r in reports if r.status.is_fill]
    order_ids = {r.venue_order_id for r in reports}

    assert len(trade_ids) == len(set(trade_ids)) > 200
    assert all(t is not None and t.startswith("SIM-t") for t in trade_ids)
    assert len(order_ids) == 200
    assert all(r.trade_id is None for r in reports if not r.status.is_fill)


def test_sim_venue_fee_is_exact_bps_of_notional_at_the_fill_price() -> None:
    """fee == fee_bps/10000 * fill price * quantity exactly, in the quote asset (the ask the buy took, not its
    limit); non-fills pay nothing."""
    venue = make_venue(make_params(fee_bps=7, partial_fill_pct=100), 5)
    venue.submit(make_route(1, price=6_543_219, quantity=12_345), T0)

    reports = drain(venue)

    for report in reports:
        price = Decimal("0.01") * report.last_price
        quantity = Decimal("0.00001") * report.last_qty
        assert report.fee == Decimal("7") / Decimal("10000") * price * quantity
        assert report.fee_asset == "USDT"
    fills = [r for r in reports if r.status.is_fill]
    assert {r.last_price for r in fills} == {6_500_000}
    assert sum((r.fee for r in fills), Decimal(0)) == Decimal("0.0007") * Decimal("65000.00") * Decimal("0.12345")
    assert reports[0].fee == 0


def test_sim_venue_zero_fee_bps_charges_zero() -> None:
    """fee_bps=0 gives a fee of exactly zero on fills."""
    venue = make_venue(make_params(fee_bps=0, partial_fill_pct=0), 5)
    venue.submit(make_route(1), T0)

    fill = drain(venue)[-1]

    assert fill.status is ExecStatus.FILLED and fill.fee == Decimal(0)


def _run(seed: int, params: SimVenueParams) -> list[ExecReport]:
    venue = make_venue(params, seed)
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
    venue = make_venue(make_params(reject_pct=100, jitter_pct=0), 9)
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
    venue = make_venue(make_params(), 1)
    venue.submit(route, T0)

    reports = drain(venue)

    assert [r.status for r in reports] == [ExecStatus.REJECTED]
    assert reports[0].reason.startswith(reason_start)


@pytest.mark.parametrize(("quantity", "price", "refused"), [
    (49, 100_000, "notional"),  # 0.0049 ETH at 1000.00: 4.90 USDT < min_notional 5
    (50, 100_000, None),  # exactly 5.00
    (51, 99_999, None),  # 5.0999... > 5
])
def test_sim_venue_min_qty_and_min_notional_are_checked_exactly_at_the_bound(
        quantity: int, price: int, refused: str | None) -> None:
    """The order checks in integer steps and ticks*steps refuse exactly what the Decimal comparison would:
    4.90 USDT of notional is refused, 5.00 is not; the fewest steps of min_qty pass, one step fewer does not."""
    lot = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.0001"),
                     min_qty=Decimal("0.0001"), min_notional=Decimal("0.05"), base_asset="ETH", quote_asset="USDT")
    tight = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                       min_qty=Decimal("0.0025"), base_asset="BTC", quote_asset="USDT")
    for instruments, route, expected in (
        ({"ETHUSDT": ETH}, make_route(1, symbol="ETHUSDT", price=price, quantity=quantity), refused),
        ({"ETHUSDT": lot}, make_route(2, symbol="ETHUSDT", price=50_000, quantity=1), None),
        ({"BTCUSDT": tight}, make_route(3, price=6_500_000, quantity=2), "quantity"),  # 0.002 < 0.0025
        ({"BTCUSDT": tight}, make_route(4, price=6_500_000, quantity=3), None),  # 0.003
    ):
        venue = SimVenue("SIM", make_params(), instruments, seed=1, board=at_limit_board())
        venue.submit(route, T0)
        first = drain(venue)[0]
        if expected is None:
            assert first.status is ExecStatus.ACK, first.reason
        else:
            assert first.status is ExecStatus.REJECTED and first.reason.startswith(expected), first.reason


def test_sim_venue_route_for_other_venue_raises() -> None:
    """A route addressed to another venue is a wiring bug and raises."""
    venue = make_venue(make_params(), 1)

    with pytest.raises(ValueError, match="venue"):
        venue.submit(make_route(1, venue="OTHER"), T0)


def test_sim_venue_latencies_within_jitter_bounds() -> None:
    """Ack and fill latencies stay within +-jitter_pct of their means, as integer ns."""
    params = make_params(ack_latency_ms=Decimal("1.5"), fill_latency_ms=4, jitter_pct=20, partial_fill_pct=50)
    venue = make_venue(params, 13)
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
    venue = make_venue(make_params(ack_latency_ms=0, fill_latency_ms=0, partial_fill_pct=100), 2)
    venue.submit(make_route(1), T0)

    times = [r.ts_event_ns for r in drain(venue)]

    assert times == sorted(set(times)) and len(times) >= 3


def test_sim_venue_ties_pop_in_submit_order() -> None:
    """Reports due at the same time come out in submit order."""
    venue = make_venue(make_params(jitter_pct=0, partial_fill_pct=0), 1)
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
    """Property-style: over seeded random routes, pop times and moving quotes (sizes 0 = unknown, or shown),
    every order follows a legal lifecycle, each fill is at the touch prevailing when it is popped, within its
    limit and the displayed size, and an order ends FILLED with its whole quantity or EXPIRED with the rest."""
    rng = random.Random(2024)
    params = make_params(partial_fill_pct=40, reject_pct=15, ack_latency_ms=1, fill_latency_ms=2)
    board = MarketBoard()
    venue = make_venue(params, 99, board)
    routes: dict[str, Route] = {}
    popped: list[ExecReport] = []
    now = T0

    def check_fills(batch: list[ExecReport], tick: Tick | None) -> None:
        for report in batch:
            if not report.status.is_fill:
                continue
            assert tick is not None and report.last_qty > 0
            route = routes[report.client_order_id]
            if route.side is Side.BUY:
                assert report.last_price == tick.ask <= route.price
                assert tick.ask_qty == 0 or report.last_qty <= tick.ask_qty
            else:
                assert report.last_price == tick.bid >= route.price
                assert tick.bid_qty == 0 or report.last_qty <= tick.bid_qty

    for n in range(2_000):
        route = make_route(n, side=rng.choice((Side.BUY, Side.SELL)), price=rng.randrange(4_000_000, 6_000_000),
                           quantity=rng.randrange(1, 100_000))
        routes[route.client_order_id] = route
        venue.submit(route, now)
        now += rng.randrange(0, 2 * MS)
        if rng.randrange(10):
            bid = rng.randrange(4_500_000, 5_500_000)
            board.update(quote(bid, bid + rng.randrange(1, 5), rng.choice((0, rng.randrange(1, 100_000))),
                               rng.choice((0, rng.randrange(1, 100_000)))))
        batch = venue.pop_due(now)
        assert all(r.ts_event_ns <= now == r.ts_ns for r in batch)
        assert [r.ts_event_ns for r in batch] == sorted(r.ts_event_ns for r in batch)
        check_fills(batch, board.last.get("BTCUSDT"))
        popped.extend(batch)
    batch = drain(venue)
    check_fills(batch, board.last["BTCUSDT"])
    popped.extend(batch)

    assert venue.open_orders == 0 and venue.next_due_ns() is None
    grouped = by_order(popped)
    assert grouped.keys() == routes.keys()
    trade_ids = [r.trade_id for r in popped if r.trade_id is not None]
    assert len(trade_ids) == len(set(trade_ids))
    ends: dict[ExecStatus, int] = {}
    expired_after_fills = 0
    for client_order_id, reports in grouped.items():
        route = routes[client_order_id]
        status = ExecStatus.PENDING_NEW
        for report in reports:
            assert is_legal_transition(status, report.status)
            status = report.status
            assert (report.side, report.symbol, report.venue) == (route.side, route.symbol, "SIM")
            if not report.status.is_terminal:
                assert report.leaves_qty == route.quantity - report.cum_qty
        assert status.is_terminal and [r.status.is_terminal for r in reports].count(True) == 1
        ends[status] = ends.get(status, 0) + 1
        for before, after in pairwise(reports):  # strictly later, but an EXPIRED ends the order at its last fill
            assert before.ts_event_ns < after.ts_event_ns or (
                before.ts_event_ns == after.ts_event_ns and before.status.is_fill and status is ExecStatus.EXPIRED)
        final = reports[-1]
        assert sum(r.last_qty for r in reports) == final.cum_qty
        if status is ExecStatus.FILLED:
            assert final.cum_qty == route.quantity and final.leaves_qty == 0
        if status is ExecStatus.EXPIRED:
            assert final.cum_qty < route.quantity and (final.last_qty, final.leaves_qty, final.fee) == (0, 0, 0)
            assert final.reason.startswith("not filled within the venue's fill window: ")
            expired_after_fills += final.cum_qty > 0
    assert min(ends[ExecStatus.FILLED], ends[ExecStatus.EXPIRED], ends[ExecStatus.REJECTED], expired_after_fills) > 100


# -- fills against the prevailing quote ------------------------------------------------------------------------
FILL_DUE = T0 + 7 * MS  # make_params(jitter_pct=0, partial_fill_pct=0): ACK at +2 ms, the one fill attempt at +7 ms


def single_attempt_venue(board: MarketBoard, **overrides: object) -> SimVenue:
    """One fill attempt, no jitter: ACK due at T0 + 2 ms, the attempt at FILL_DUE."""
    values: dict[str, object] = {"jitter_pct": 0, "partial_fill_pct": 0}
    values.update(overrides)
    return make_venue(make_params(**values), 1, board)


@pytest.mark.parametrize(
    ("side", "tick", "fill_price"),
    [
        (Side.BUY, quote(6_499_000, 6_499_500), 6_499_500),
        (Side.SELL, quote(6_500_700, 6_501_000), 6_500_700),
    ],
)
def test_sim_venue_marketable_order_fills_at_the_touch_with_price_improvement(
    side: Side, tick: Tick, fill_price: int,
) -> None:
    """A buy limited at 65000.00 against an ask of 64995.00 fills at the ask (a sell above its limit at the bid):
    the price improvement goes to the order, and the fee is on the fill price's notional."""
    venue = single_attempt_venue(board_of(tick), fee_bps=10)
    venue.submit(make_route(1, side=side, price=6_500_000, quantity=1_000), T0)

    ack, fill = drain(venue)

    assert ack.status is ExecStatus.ACK
    assert (fill.status, fill.last_qty, fill.last_price, fill.cum_qty, fill.leaves_qty) == (
        ExecStatus.FILLED, 1_000, fill_price, 1_000, 0)
    assert fill.fee == Decimal("0.001") * Decimal("0.01") * fill_price * Decimal("0.01")
    assert fill.ts_event_ns == FILL_DUE


@pytest.mark.parametrize(
    ("side", "tick", "words"),
    [
        (Side.BUY, quote(6_500_000, 6_500_001), "BUY limit 6500000 ticks, ask 6500001 ticks"),
        (Side.SELL, quote(6_499_999, 6_500_000), "SELL limit 6500000 ticks, bid 6499999 ticks"),
    ],
)
def test_sim_venue_order_not_marketable_expires_without_a_fill(side: Side, tick: Tick, words: str) -> None:
    """A buy below the ask (a sell above the bid) fills nothing, reports no zero fill, and ends with one EXPIRED
    at its last attempt: nothing filled, nothing left open, and a reason saying why."""
    venue = single_attempt_venue(board_of(tick))
    venue.submit(make_route(1, side=side, price=6_500_000, quantity=1_000), T0)

    reports = drain(venue)

    assert [r.status for r in reports] == [ExecStatus.ACK, ExecStatus.EXPIRED]
    expired = reports[-1]
    assert (expired.last_qty, expired.last_price, expired.cum_qty, expired.leaves_qty, expired.fee) == (0, 0, 0, 0, 0)
    assert (expired.order_qty, expired.trade_id, expired.venue_order_id) == (1_000, None, "SIM-1")
    assert expired.reason == ("not filled within the venue's fill window: limit not marketable against the quote "
                              f"({words})")
    assert expired.ts_event_ns == FILL_DUE and venue.open_orders == 0


def test_sim_venue_fills_against_the_quote_prevailing_when_due_not_the_one_at_submit() -> None:
    """The quote at submit does not decide: an order marketable then but not when its attempt is due expires,
    and one not marketable at submit fills at the ask prevailing when it is due."""
    board = board_of(quote(6_498_000, 6_499_000))
    venue = single_attempt_venue(board)
    venue.submit(make_route(1, price=6_500_000), T0)
    assert [r.status for r in venue.pop_due(T0 + 2 * MS)] == [ExecStatus.ACK]
    board.update(quote(6_500_500, 6_501_000))  # the ask moved through the limit before the order's fill was due
    venue.submit(make_route(2, price=6_500_000), T0 + 3 * MS)  # decided against 65010.00: not marketable now
    assert [r.status for r in venue.pop_due(T0 + 5 * MS)] == [ExecStatus.ACK]

    expired = venue.pop_due(FILL_DUE)
    board.update(quote(6_497_000, 6_497_500))
    filled = venue.pop_due(T0 + 10 * MS)

    assert [(r.client_order_id, r.status, r.cum_qty) for r in expired] == [("c1", ExecStatus.EXPIRED, 0)]
    assert [(r.client_order_id, r.status, r.last_qty, r.last_price) for r in filled] == [
        ("c2", ExecStatus.FILLED, 1_000, 6_497_500)]


@pytest.mark.parametrize(
    ("ask_qty", "statuses", "fills"),
    [
        (0, [ExecStatus.ACK, ExecStatus.FILLED], [1_000]),  # 0 = depth unknown: the whole attempt fills
        (1_000, [ExecStatus.ACK, ExecStatus.FILLED], [1_000]),
        (5_000, [ExecStatus.ACK, ExecStatus.FILLED], [1_000]),
        (300, [ExecStatus.ACK, ExecStatus.PARTIALLY_FILLED, ExecStatus.EXPIRED], [300]),
    ],
)
def test_sim_venue_fill_is_capped_at_the_displayed_size(
    ask_qty: int, statuses: list[ExecStatus], fills: list[int],
) -> None:
    """One attempt fills at most the size displayed at the ask; a size of 0 means unknown depth and fills the
    whole attempt. What the last attempt leaves expires, with cum_qty what filled, and the reason says so."""
    venue = single_attempt_venue(board_of(quote(6_499_000, 6_499_500, ask_qty=ask_qty)))
    venue.submit(make_route(1, quantity=1_000), T0)

    reports = drain(venue)

    assert [r.status for r in reports] == statuses
    assert [r.last_qty for r in reports if r.status.is_fill] == fills
    final = reports[-1]
    assert final.cum_qty == sum(fills) and final.leaves_qty == 0
    if final.status is ExecStatus.EXPIRED:
        partial = reports[1]
        assert (partial.cum_qty, partial.leaves_qty) == (300, 700)
        assert final.ts_event_ns == partial.ts_event_ns == FILL_DUE and final.last_qty == 0
        assert final.reason == ("not filled within the venue's fill window: the ask displayed 300 steps, 700 steps "
                                "left (filled 300 of 1000)")


def test_sim_venue_unfilled_steps_carry_over_to_the_next_attempt() -> None:
    """With the size capped, each attempt fills min(its part + what earlier attempts left, displayed size); the
    schedule (times and parts, seen on an uncapped twin with the same seed) does not depend on the quotes."""
    params = make_params(partial_fill_pct=100)
    quantity = 10_000
    twin = make_venue(params, 21, board_of(quote(6_499_000, 6_499_500)))
    capped = make_venue(params, 21, board_of(quote(6_499_000, 6_499_500, ask_qty=4_000)))
    twin.submit(make_route(1, quantity=quantity), T0)
    capped.submit(make_route(1, quantity=quantity), T0)

    parts = [r for r in drain(twin) if r.status.is_fill]
    reports = drain(capped)

    assert len(parts) == 3
    expected: list[int] = []
    left = 0
    for part in parts:
        want = left + part.last_qty
        expected.append(min(want, 4_000))
        left = want - expected[-1]
    fills = [r for r in reports if r.status.is_fill]
    assert [r.last_qty for r in fills] == expected
    assert any(part.last_qty < fill.last_qty for part, fill in zip(parts, fills, strict=True))  # a carry-over
    assert [r.ts_event_ns for r in fills] == [r.ts_event_ns for r in parts]
    assert sum(expected) + left == quantity
    final = reports[-1]
    if left:
        assert final.status is ExecStatus.EXPIRED and final.cum_qty == quantity - left
    else:
        assert final.status is ExecStatus.FILLED and final.cum_qty == quantity


def test_sim_venue_steps_not_marketable_at_one_attempt_fill_at_the_next() -> None:
    """A two-part order whose first attempt is not marketable reports nothing then, and fills both parts at the
    second attempt: one FILLED of the whole quantity."""
    board = board_of(quote(6_500_100, 6_500_200))
    venue = make_venue(make_params(partial_fill_pct=100), 4, board)
    venue.submit(make_route(1, quantity=2), T0)  # two steps: two parts of one step each
    assert [r.status for r in pop_next(venue)] == [ExecStatus.ACK]

    first = pop_next(venue)
    still_open = venue.open_orders
    board.update(quote(6_499_000, 6_500_000))
    second = pop_next(venue)

    assert first == [] and still_open == 1
    assert [(r.status, r.last_qty, r.last_price, r.cum_qty) for r in second] == [
        (ExecStatus.FILLED, 2, 6_500_000, 2)]
    assert venue.next_due_ns() is None


def test_sim_venue_without_any_quote_expires_the_order() -> None:
    """No quote for the symbol at any attempt: nothing fills, and the order expires naming the missing quote."""
    venue = make_venue(make_params(partial_fill_pct=100), 6, board_of(quote(100, 101, symbol="ETHUSDT")))
    venue.submit(make_route(1), T0)

    reports = drain(venue)

    assert [r.status for r in reports] == [ExecStatus.ACK, ExecStatus.EXPIRED]
    assert reports[-1].reason == "not filled within the venue's fill window: no quote for BTCUSDT"
    assert reports[-1].cum_qty == 0 and venue.open_orders == 0


def _moving_run(seed: int, marketable: bool) -> list[ExecReport]:
    """50 orders against a quote that moves before each pop, through the limits or (not ``marketable``) far
    from them on both sides."""
    board = MarketBoard()
    venue = make_venue(make_params(partial_fill_pct=50, reject_pct=10), seed, board)
    reports: list[ExecReport] = []
    now = T0
    for n in range(50):
        venue.submit(make_route(n, side=Side.BUY if n % 2 else Side.SELL, quantity=100 + n), now)
        now += MS
        offset = (n % 7 - 3) * 100
        bid, ask = (6_500_000 + offset, 6_500_050 + offset) if marketable else (5_500_000, 7_500_000)
        board.update(quote(bid, ask, n % 3 * 40, n % 4 * 30))
        reports += venue.pop_due(now)
    return reports + drain(venue)


def test_sim_venue_same_seed_and_quotes_same_reports() -> None:
    """Determinism with moving quotes: the same seed, routes and quotes give identical reports; and the schedule
    (ACKs, rejects, their times and ids) is the same whatever the quotes, so the random draws are too."""
    first = _moving_run(42, marketable=True)

    assert first == _moving_run(42, marketable=True)
    assert {r.status for r in first} >= {ExecStatus.FILLED, ExecStatus.PARTIALLY_FILLED, ExecStatus.EXPIRED}
    never = _moving_run(42, marketable=False)
    assert {r.status for r in never} == {ExecStatus.ACK, ExecStatus.REJECTED, ExecStatus.EXPIRED}

    def schedule(reports: list[ExecReport]) -> list[tuple[str, ExecStatus, int, str]]:
        return [(r.client_order_id, r.status, r.ts_event_ns, r.venue_order_id) for r in reports
                if r.status in {ExecStatus.ACK, ExecStatus.REJECTED}]

    assert schedule(first) == schedule(never)


def test_sim_venue_reports_keep_the_ledger_consistent_when_orders_expire_after_partial_fills() -> None:
    """Partial fills then EXPIRED, applied to the ledger: the position is what filled, at the prices filled,
    no order stays open, and the whole quantity counts as done (nothing more can fill)."""
    board = board_of(quote(6_499_000, 6_499_500, ask_qty=300))
    venue = make_venue(make_params(partial_fill_pct=0, fee_bps=0), 1, board)
    ledger = Ledger(INSTRUMENTS)
    venue.submit(make_route(1, quantity=1_000), T0)

    reports = drain(venue)
    for report in reports:
        ledger.apply(report)

    assert [r.status for r in reports] == [ExecStatus.ACK, ExecStatus.PARTIALLY_FILLED, ExecStatus.EXPIRED]
    snapshot = ledger.snapshot()
    assert snapshot.net_steps["BTCUSDT"] == 300 and snapshot.fills == 1
    assert snapshot.done_steps[("BTCUSDT", Side.BUY)] == 1_000
    assert ledger.open_orders == 0 and ledger.fill_gaps() == [] and ledger.take_notes() == []


def test_sim_venue_draws_are_random_randrange_on_the_same_state() -> None:
    """The venue's own uniform draw gives exactly what ``random.Random(seed).randrange(n)`` gives, draw for
    draw (so a seed's schedule is the documented one), for bounds around powers of two and the ones it uses."""
    params = SimVenueParams(ack_latency_ms=1, fill_latency_ms=2, fee_bps=0)
    venue = SimVenue("SIM", params, INSTRUMENTS, seed=11, board=MarketBoard())
    reference = random.Random(11)
    bounds = [1, 2, 3, 4, 5, 7, 8, 9, 100, 127, 128, 129, 2 * 300_000 + 1, 2**40 + 3] * 50
    assert [venue._below(n) for n in bounds] == [reference.randrange(n) for n in bounds]


def test_sim_venue_cuts_are_random_sample_on_the_same_state() -> None:
    """The partial-fill cuts draw what random.sample(range(1, q), k) draws from the same state (both of its
    branches: small populations by pool, large ones by set) and leave the generator in the same state."""
    venue = make_venue(make_params(), 11)
    reference = random.Random(11)
    for quantity in [2, 3, 5, 21, 22, 23, 100, 10_000, 7, 2, 1_000_003]:
        for count in (1, 2, 5):
            if count > quantity - 1:
                continue
            assert venue._cuts(quantity, count) == reference.sample(range(1, quantity), count), (quantity, count)
    assert venue._rng.getstate() == reference.getstate()


def test_sim_venue_prepare_runs_before_each_attempt_reads_its_symbols_quote() -> None:
    """``pop_due(now, prepare)``: an ACK alone reads no quote (prepare not called); each fill attempt calls it
    with the order's symbol before reading the board, so a quote it puts there is the one the attempt trades
    against."""
    board = MarketBoard()  # empty: only prepare's quotes can fill
    venue = make_venue(make_params(jitter_pct=0, partial_fill_pct=0), seed=1, board=board)
    venue.submit(make_route(1), T0)
    venue.submit(make_route(2), T0)
    calls: list[tuple[str, int]] = []
    prices = iter([6_500_000, 6_400_000])

    def prepare(symbol: str) -> None:
        calls.append((symbol, len(board.last)))
        price = next(prices)
        board.update(quote(price, price))

    acks = venue.pop_due(T0 + 2 * MS, prepare)
    assert [report.status for report in acks] == [ExecStatus.ACK, ExecStatus.ACK] and calls == []
    fills = venue.pop_due(T0 + 10 * MS, prepare)
    assert [report.status for report in fills] == [ExecStatus.FILLED, ExecStatus.FILLED]
    assert [report.last_price for report in fills] == [6_500_000, 6_400_000]
    assert calls == [("BTCUSDT", 0), ("BTCUSDT", 1)]
