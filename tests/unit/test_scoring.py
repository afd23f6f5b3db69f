"""Smart order router core: scores, ranking, deterministic ties, the child split and the inventory bias."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from dma_bot.model.enums import Side
from dma_bot.model.events import Order, Route
from dma_bot.model.instrument import Instrument
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot, VenuePosition
from dma_bot.router.scoring import DEFAULT_VENUES, Router, RouterParams, VenueSpec

WHOLE = Instrument(symbol="XYZUSDT", tick_size=Decimal("0.01"), step_size=Decimal(1))
BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
INSTRUMENTS = {WHOLE.symbol: WHOLE, BTC.symbol: BTC}
NOW = 1_700_000_000_000_000_000


def order(quantity: int = 100, side: Side = Side.BUY, symbol: str = WHOLE.symbol) -> Order:
    return Order(
        client_order_id="d1",
        strategy="mr",
        symbol=symbol,
        side=side,
        price=10_000,
        quantity=quantity,
        ts_signal_ns=NOW - 10,
        ts_ns=NOW - 5,
    )


def holding(venue: str, steps: int, symbol: str = WHOLE.symbol) -> PositionSnapshot:
    position = VenuePosition(
        symbol=symbol, venue=venue, quantity=steps, average_price=Decimal(100), realized_pnl=Decimal(0),
        holdings=Decimal(steps), traded_quantity=steps,
    )
    return PositionSnapshot(positions={(symbol, venue): position}, net_steps={symbol: steps}, fills=1,
                            held_steps={(symbol, venue): steps})


def split(routes: list[Route]) -> list[tuple[str, int]]:
    return [(route.venue, route.quantity) for route in routes]


def test_router_default_table_scores() -> None:
    """liquidity - fee_bps - latency_ms: A 62, B 41, C 82."""
    router = Router(RouterParams(), INSTRUMENTS)

    router.route(order(), EMPTY_SNAPSHOT, NOW)

    assert router.last_scores == {"A": 62, "B": 41, "C": 82}


def test_router_ranks_best_score_first() -> None:
    """The default table ranks C, A, B."""
    router = Router(RouterParams(), INSTRUMENTS)

    ranked = router.rank(order(), EMPTY_SNAPSHOT)

    assert [(venue.name, score) for score, venue in ranked] == [("C", 82), ("A", 62), ("B", 41)]


def test_router_default_split_follows_liquidity() -> None:
    """100 over C (90) and A (70): C gets 100*90//160 = 56, A the remaining 44."""
    router = Router(RouterParams(), INSTRUMENTS)

    routes = router.route(order(100), EMPTY_SNAPSHOT, NOW)

    assert split(routes) == [("C", 56), ("A", 44)]


def test_router_ties_break_by_venue_name_whatever_the_table_order() -> None:
    """Equal scores rank by name ascending, however the venues were listed."""
    venues = (
        VenueSpec(name="Z", fee_bps=0, latency_ms=0, liquidity=50),
        VenueSpec(name="M", fee_bps=0, latency_ms=0, liquidity=50),
        VenueSpec(name="Q", fee_bps=0, latency_ms=0, liquidity=50),
    )
    forward = Router(RouterParams(venues=venues, top_n=1), INSTRUMENTS)
    backward = Router(RouterParams(venues=venues[::-1], top_n=1), INSTRUMENTS)

    assert [venue.name for _, venue in forward.rank(order(), EMPTY_SNAPSHOT)] == ["M", "Q", "Z"]
    assert split(forward.route(order(), EMPTY_SNAPSHOT, NOW)) == [("M", 100)]
    assert split(backward.route(order(), EMPTY_SNAPSHOT, NOW)) == [("M", 100)]


def test_router_quantity_one_with_min_child_two_gives_one_child_of_one() -> None:
    """The original turned quantity 1 into a child of 2; ours never exceeds the parent."""
    router = Router(RouterParams(), INSTRUMENTS)

    routes = router.route(order(1), EMPTY_SNAPSHOT, NOW)

    assert split(routes) == [("C", 1)]


def test_router_min_child_lifts_small_share_and_last_takes_rest() -> None:
    """Quantity 3: C's share 3*90//160 = 1 is lifted to the minimum 2; A gets the remaining 1."""
    router = Router(RouterParams(), INSTRUMENTS)

    assert split(router.route(order(3), EMPTY_SNAPSHOT, NOW)) == [("C", 2), ("A", 1)]


def test_router_min_child_rounds_up_to_the_step() -> None:
    """min_child_qty 0.0015 BTC on a 0.001 step is 2 steps, not 1."""
    router = Router(RouterParams(min_child_qty=Decimal("0.0015")), INSTRUMENTS)

    routes = router.route(order(3, symbol=BTC.symbol), EMPTY_SNAPSHOT, NOW)

    assert split(routes) == [("C", 2), ("A", 1)]


def test_router_split_property_over_seeded_random_tables() -> None:
    """For random tables, top_n, minima and quantities: children sum to the parent, each > 0, at most top_n."""
    rng = random.Random(20240601)
    for _ in range(2000):
        count = rng.randint(1, 6)
        venues = tuple(
            VenueSpec(
                name=f"V{index}",
                fee_bps=rng.randint(-5, 30),
                latency_ms=rng.randint(0, 50),
                liquidity=rng.randint(1, 200),
            )
            for index in range(count)
        )
        params = RouterParams(
            venues=venues,
            top_n=rng.randint(1, 7),
            min_child_qty=Decimal(rng.randint(0, 60)),
            inventory_bias_weight=rng.randint(0, 20),
        )
        snapshot = holding(f"V{rng.randrange(count)}", rng.randint(-50, 50))
        quantity = rng.randint(1, 10_000)

        routes = Router(params, INSTRUMENTS).route(order(quantity, rng.choice(list(Side))), snapshot, NOW)

        assert sum(route.quantity for route in routes) == quantity
        assert all(route.quantity > 0 for route in routes)
        assert 1 <= len(routes) <= params.top_n
        assert len({route.venue for route in routes}) == len(routes)


@pytest.mark.parametrize(
    ("steps", "side", "expected_c"),
    [(10, Side.BUY, 77), (10, Side.SELL, 87), (-10, Side.BUY, 87), (-10, Side.SELL, 77), (0, Side.BUY, 82)],
)
def test_router_inventory_bias_favours_the_venue_the_order_shrinks(steps: int, side: Side, expected_c: int) -> None:
    """A venue where the order would shrink our position gets +weight, one where it would grow it -weight."""
    router = Router(RouterParams(), INSTRUMENTS)

    router.route(order(side=side), holding("C", steps), NOW)

    assert router.last_scores == {"A": 62, "B": 41, "C": expected_c}


def test_router_inventory_bias_can_reorder_venues() -> None:
    """With weight 30, buying more where we are long on C drops C (52) below A (62)."""
    router = Router(RouterParams(inventory_bias_weight=30), INSTRUMENTS)

    growing = router.route(order(side=Side.BUY), holding("C", 10), NOW)
    shrinking = router.route(order(side=Side.SELL), holding("C", 10), NOW)

    assert [route.venue for route in growing] == ["A", "C"]
    assert [route.venue for route in shrinking] == ["C", "A"]


def test_router_child_routes_carry_parent_fields() -> None:
    """Each child names its parent, repeats its fields, is stamped now_ns and gets id '<parent>-<venue>'."""
    router = Router(RouterParams(), INSTRUMENTS)

    first, second = router.route(order(100, Side.SELL), EMPTY_SNAPSHOT, NOW)

    assert first == Route(
        venue="C",
        client_order_id="d1-C",
        parent_order_id="d1",
        strategy="mr",
        symbol=WHOLE.symbol,
        side=Side.SELL,
        price=10_000,
        quantity=56,
        ts_signal_ns=NOW - 10,
        ts_ns=NOW,
    )
    assert second.client_order_id == "d1-A"


def test_router_stats_count_routes_per_venue() -> None:
    """routes_by_venue starts at 0 for every venue and counts each child sent."""
    router = Router(RouterParams(), INSTRUMENTS)
    assert router.stats.routes_by_venue == {"A": 0, "B": 0, "C": 0}

    router.route(order(100), EMPTY_SNAPSHOT, NOW)
    router.route(order(1), EMPTY_SNAPSHOT, NOW)

    assert router.stats.routes_by_venue == {"A": 1, "B": 0, "C": 2}


def test_router_unknown_symbol_raises() -> None:
    """An order for a symbol without an instrument is a wiring bug and raises."""
    router = Router(RouterParams(), INSTRUMENTS)

    with pytest.raises(ValueError, match=r"order\.symbol"):
        router.route(order(symbol="DOGEUSDT"), EMPTY_SNAPSHOT, NOW)


def test_default_venues_are_the_original_table() -> None:
    """A 5/3/70, B 7/2/50, C 2/6/90."""
    table = [(v.name, v.fee_bps, v.latency_ms, v.liquidity) for v in DEFAULT_VENUES]

    assert table == [("A", 5, 3, 70), ("B", 7, 2, 50), ("C", 2, 6, 90)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "venue name"),
        ({"name": "binance-spot"}, "venue name"),
        ({"name": "V" * 13}, "venue name"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"liquidity": 0}, "liquidity"),
        ({"fee_bps": 1.5}, "fee_bps"),
    ],
)
def test_venue_spec_bad_field_raises(changes: dict[str, object], message: str) -> None:
    """Names outside ^[A-Za-z0-9_]{1,12}$, negative latency, zero liquidity and non-int fees are refused."""
    fields: dict[str, object] = {"name": "A", "fee_bps": 1, "latency_ms": 1, "liquidity": 1} | changes

    with pytest.raises(ValueError, match=message):
        VenueSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"venues": ()}, "venues"),
        ({"venues": (DEFAULT_VENUES[0], DEFAULT_VENUES[0])}, "repeated: A"),
        ({"top_n": 0}, "top_n"),
        ({"min_child_qty": Decimal(-1)}, "min_child_qty"),
        ({"inventory_bias_weight": -1}, "inventory_bias_weight"),
    ],
)
def test_router_params_bad_field_raises(changes: dict[str, object], message: str) -> None:
    """Empty or duplicate venue tables, top_n < 1 and negative minima or weights are refused."""
    with pytest.raises(ValueError, match=message):
        RouterParams(**changes)  # type: ignore[arg-type]


def test_venue_spec_and_router_params_accept_positional_fields() -> None:
    """VenueSpec(name, fee_bps, latency_ms, liquidity) and RouterParams(venues, top_n, ...) build positionally."""
    spec = VenueSpec("X", 1, 2, 30)

    params = RouterParams((spec,), 1, Decimal(0), 0)

    assert (spec.base_score, params.venues, params.top_n) == (27, (spec,), 1)
