"""Pre-trade risk core: every check at its boundary, the token bucket, the kill switch and the loss limit."""

from __future__ import annotations

import dataclasses
import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from dma_bot.bus import Latest
from dma_bot.model.enums import ExecStatus, KillSwitchState, RejectReason, Side
from dma_bot.model.events import ExecReport, Order, RejectBatch, RiskReject, Signal, Tick, signal_batch_of
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot, VenuePosition
from dma_bot.positions.ledger import Ledger
from dma_bot.risk.limits import KillSwitch, RiskEngine, RiskParams, TokenBucket
from dma_bot.risk.loss import LossLimit
from dma_bot.risk.order_ids import ClientOrderIds

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"), base_asset="BTC",
                 quote_asset="USDT")
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.05"), step_size=Decimal("0.0001"), base_asset="ETH",
                 quote_asset="USDT")
INSTRUMENTS = {BTC.symbol: BTC, ETH.symbol: ETH}
NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
PARAMS = RiskParams(
    px_min=Decimal(10),
    px_max=Decimal(2000),
    max_deviation_bps=100,
    max_notional=Decimal(20_000),
    max_position=Decimal(5),
    max_orders_per_second=1000,
    burst=1000,
    max_loss=Decimal(100),
)


class Harness:
    """A RiskEngine over a real MarketBoard and Latest cell, with BTC quoted at 99.99/100.01."""

    def __init__(self, params: RiskParams = PARAMS, snapshot: PositionSnapshot = EMPTY_SNAPSHOT) -> None:
        self.board = MarketBoard()
        self.positions = Latest(snapshot)
        self.engine = RiskEngine(params, INSTRUMENTS, self.board, self.positions, ClientOrderIds("t"))
        self.quote(BTC.symbol, 9999, 10001)

    def quote(self, symbol: str, bid: int, ask: int) -> None:
        self.board.update(Tick(symbol, bid, ask, 1, 1, NOW, NOW))

    def check(self, side: Side = Side.BUY, price: int = 10_000, quantity: int = 1000, now_ns: int = NOW):
        return self.engine.check(Signal("mr", BTC.symbol, side, price, quantity, NOW - 2, NOW - 1), now_ns)


def params(**changes: object) -> RiskParams:
    fields = {name: getattr(PARAMS, name) for name in PARAMS.__dataclass_fields__}
    fields.update(changes)
    return RiskParams(**fields)  # type: ignore[arg-type]


def holding(
    *positions: tuple[Instrument, int, str], realized: str = "0", fills: int = 1, done: dict | None = None
) -> PositionSnapshot:
    """A snapshot with one venue position per (instrument, signed steps, average price)."""
    venue_positions = {
        (inst.symbol, f"V{index}"): VenuePosition(
            symbol=inst.symbol,
            venue=f"V{index}",
            quantity=steps,
            average_price=Decimal(average),
            realized_pnl=Decimal(0),
            holdings=inst.steps_to_qty(steps),
            traded_quantity=steps,
        )
        for index, (inst, steps, average) in enumerate(positions)
    }
    net: dict[str, int] = {}
    for inst, steps, _ in positions:
        net[inst.symbol] = net.get(inst.symbol, 0) + steps
    return PositionSnapshot(
        positions=venue_positions,
        net_steps=net,
        done_steps=done or {},
        realized_pnl=Decimal(realized),
        fills=fills,
    )


class Booked:
    """A real Ledger fed filled ExecReports: the loss limit reads the PnL form of its snapshots."""

    def __init__(self) -> None:
        self.ledger = Ledger(INSTRUMENTS)
        self.orders = 0

    def fill(self, inst: Instrument, steps: int, price: int, venue: str = "V0", fee: str = "0",
             fee_asset: str = "USDT") -> Booked:
        """One order of ``steps`` (signed: < 0 sells) filled at ``price`` ticks."""
        self.orders += 1
        quantity = abs(steps)
        self.ledger.apply(ExecReport(
            venue=venue, symbol=inst.symbol, client_order_id=f"o{self.orders}", venue_order_id=f"v{self.orders}",
            side=Side.BUY if steps > 0 else Side.SELL, status=ExecStatus.FILLED, last_qty=quantity, last_price=price,
            order_qty=quantity, cum_qty=quantity, leaves_qty=0, fee=Decimal(fee), fee_asset=fee_asset,
            trade_id=f"t{self.orders}", reason="", ts_event_ns=NOW, ts_ns=NOW,
        ))
        return self

    def round_trip(self, inst: Instrument, steps: int, buy: int, sell: int) -> Booked:
        """Buy ``steps`` at ``buy`` ticks and sell them at ``sell``: realized PnL, flat again."""
        return self.fill(inst, steps, buy).fill(inst, -steps, sell)

    def snapshot(self) -> PositionSnapshot:
        return self.ledger.snapshot()


def booked(*positions: tuple[Instrument, int, int]) -> Booked:
    """A ledger holding one position per (instrument, signed steps, entry price ticks), each at its own venue."""
    book = Booked()
    for index, (inst, steps, price) in enumerate(positions):
        book.fill(inst, steps, price, venue=f"V{index}")
    return book


def reason_of(result: Order | RiskReject) -> RejectReason | None:
    return result.reason if isinstance(result, RiskReject) else None


# -- params ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("px_min", Decimal(-1)),
        ("px_min", Decimal(0)),
        ("px_min", 10.0),
        ("px_max", Decimal(0)),
        ("px_max", Decimal(5)),  # below px_min
        ("max_deviation_bps", -1),
        ("max_deviation_bps", True),
        ("max_notional", Decimal("NaN")),
        ("max_position", Decimal(0)),
        ("max_orders_per_second", 0),
        ("burst", 0),
        ("max_loss", Decimal(-1)),
    ],
)
def test_risk_params_bad_value_raises_naming_field(field: str, value: object) -> None:
    """Each out-of-range or wrongly typed limit is refused with its field name and the given value."""
    with pytest.raises(ValueError, match=rf"^{field}: .*was "):
        params(**{field: value})


def test_risk_params_defaults_match_original_limits() -> None:
    """Defaults are the original's limits converted from cents."""
    defaults = RiskParams()

    assert (defaults.px_min, defaults.px_max, defaults.max_notional) == (10, 2000, 20_000_000)
    assert (defaults.max_orders_per_second, defaults.burst, defaults.max_deviation_bps) == (50, 50, 100)


# -- order fields and stats -----------------------------------------------------------------------------
def test_risk_engine_valid_signal_becomes_order_with_next_id() -> None:
    """An accepted signal becomes an Order carrying its fields, a fresh id and the check time."""
    harness = Harness()

    first = harness.check(now_ns=NOW + 5)
    second = harness.check(side=Side.SELL)

    assert first == Order(
        client_order_id="t1",
        strategy="mr",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=10_000,
        quantity=1000,
        ts_signal_ns=NOW - 1,
        ts_ns=NOW + 5,
    )
    assert isinstance(second, Order)
    assert second.client_order_id == "t2"


def test_risk_engine_stats_count_orders_and_rejects_by_reason() -> None:
    """orders_total counts accepted orders; rejects_by_reason lists every reason and counts refusals."""
    harness = Harness()

    harness.check()
    harness.check(quantity=0)
    harness.check(price=1)
    harness.check(price=1)

    stats = harness.engine.stats
    assert stats.orders_total == 1
    assert set(stats.rejects_by_reason) == {reason.value for reason in RejectReason}
    assert stats.rejects_by_reason["quantity"] == 1
    assert stats.rejects_by_reason["price_band"] == 2
    assert stats.rejects_by_reason["rate_limit"] == 0


def test_risk_engine_reject_carries_signal_fields_and_detail() -> None:
    """A RiskReject repeats the signal, names the reason, explains it, and is stamped with the check time."""
    harness = Harness()

    reject = harness.check(price=999_999, now_ns=NOW + 7)

    assert reject == RiskReject(
        "mr", "BTCUSDT", Side.BUY, 999_999, 1000, RejectReason.PRICE_BAND, reject.detail, NOW - 1, NOW + 7
    )
    assert reject.detail == "price 9999.99 outside [10, 2000]"


def test_risk_engine_unknown_symbol_raises() -> None:
    """A signal for a symbol without an instrument is a wiring bug and raises."""
    harness = Harness()

    with pytest.raises(ValueError, match=r"signal\.symbol"):
        harness.engine.check(Signal("mr", "DOGEUSDT", Side.BUY, 100, 1, 0, 0), NOW)


# -- quantity and prices --------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", [0, -1])
def test_risk_engine_non_positive_quantity_rejected(quantity: int) -> None:
    """Zero or negative steps are refused as QUANTITY."""
    assert reason_of(Harness().check(quantity=quantity)) is RejectReason.QUANTITY


@pytest.mark.parametrize(
    ("price", "expected"),
    [(999, RejectReason.PRICE_BAND), (1000, None), (200_000, None), (200_001, RejectReason.PRICE_BAND)],
)
def test_risk_engine_absolute_band_is_inclusive(price: int, expected: RejectReason | None) -> None:
    """10.00 and 2000.00 pass, one tick outside either end is refused."""
    harness = Harness(params(max_deviation_bps=0))

    assert reason_of(harness.check(price=price)) is expected


def test_risk_engine_off_grid_band_edge_rounds_inward() -> None:
    """px_min 10.005 on a 0.01 grid admits 10.01 but not 10.00."""
    harness = Harness(params(px_min=Decimal("10.005"), max_deviation_bps=0))

    assert reason_of(harness.check(price=1000)) is RejectReason.PRICE_BAND
    assert reason_of(harness.check(price=1001)) is None


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (9899, RejectReason.PRICE_DEVIATION),
        (9900, None),
        (10_100, None),
        (10_101, RejectReason.PRICE_DEVIATION),
    ],
)
def test_risk_engine_relative_band_is_inclusive_around_mid(price: int, expected: RejectReason | None) -> None:
    """With mid 100.00 and 100 bps, 99.00 and 101.00 pass and one tick further is refused."""
    assert reason_of(Harness().check(price=price)) is expected


def test_risk_engine_relative_band_uses_exact_half_tick_mid() -> None:
    """Mid 99.995: 1% above is 100.99495, so 100.99 passes and 101.00 is refused."""
    harness = Harness()
    harness.quote(BTC.symbol, 9999, 10_000)

    assert reason_of(harness.check(price=10_099)) is None
    reject = harness.check(price=10_100)
    assert reason_of(reject) is RejectReason.PRICE_DEVIATION
    assert reject.detail == "price 101.00 is 100.51 bps from mid 99.995 > max 100"


def test_risk_engine_no_mid_rejected_as_no_market() -> None:
    """Without a mid the relative band cannot be checked: NO_MARKET; with the band off it passes."""
    banded = RiskEngine(PARAMS, INSTRUMENTS, MarketBoard(), Latest(EMPTY_SNAPSHOT), ClientOrderIds("t"))
    unbanded = RiskEngine(
        params(max_deviation_bps=0), INSTRUMENTS, MarketBoard(), Latest(EMPTY_SNAPSHOT), ClientOrderIds("t")
    )
    signal = Signal("mr", BTC.symbol, Side.BUY, 10_000, 1000, 0, 0)

    assert reason_of(banded.check(signal, NOW)) is RejectReason.NO_MARKET
    assert reason_of(unbanded.check(signal, NOW)) is None


# -- notional and position ------------------------------------------------------------------------------
def test_risk_engine_notional_limit_is_inclusive() -> None:
    """At 100.00, 200 BTC is exactly 20000 and passes; 200.001 BTC (20000.10) is refused with the amount."""
    harness = Harness(params(max_position=Decimal(1000)))

    accepted = harness.check(quantity=200_000)
    reject = harness.check(quantity=200_001)

    assert isinstance(accepted, Order)
    assert reason_of(reject) is RejectReason.MAX_NOTIONAL
    assert reject.detail == "notional 20000.10 > max 20000"


@pytest.mark.parametrize(
    ("net", "side", "quantity", "expected"),
    [
        (0, Side.BUY, 5000, None),
        (0, Side.BUY, 5001, RejectReason.MAX_POSITION),
        (0, Side.SELL, 5001, RejectReason.MAX_POSITION),
        (3000, Side.BUY, 2000, None),
        (3000, Side.BUY, 2001, RejectReason.MAX_POSITION),
        (3000, Side.SELL, 8000, None),
        (3000, Side.SELL, 8001, RejectReason.MAX_POSITION),
    ],
)
def test_risk_engine_position_limit_is_inclusive(
    net: int, side: Side, quantity: int, expected: RejectReason | None
) -> None:
    """Filled net plus this order must stay within +-5 BTC (5000 steps), whichever side."""
    harness = Harness(snapshot=holding((BTC, net, "100")) if net else EMPTY_SNAPSHOT)

    assert reason_of(harness.check(side=side, quantity=quantity)) is expected


def test_risk_engine_open_orders_count_toward_position_on_their_side() -> None:
    """3 BTC bought but not yet filled leaves room for 2 more on the buy side; the sell side is unaffected."""
    harness = Harness()
    assert isinstance(harness.check(quantity=3000), Order)

    assert reason_of(harness.check(quantity=2001)) is RejectReason.MAX_POSITION
    assert reason_of(harness.check(side=Side.SELL, quantity=5000)) is None
    assert reason_of(harness.check(quantity=2000)) is None


def test_risk_engine_done_steps_release_open_exposure() -> None:
    """Once the positions stage reports the 3 BTC as done (cancelled, nothing filled) the room comes back."""
    harness = Harness()
    harness.check(quantity=3000)

    harness.positions.publish(holding(done={(BTC.symbol, Side.BUY): 3000}, fills=0))

    assert reason_of(harness.check(quantity=5000)) is None


def test_risk_engine_filled_open_order_counts_once() -> None:
    """Sent 3 BTC, all filled (net 3000, done 3000): the exposure is the fill, not fill plus open order."""
    harness = Harness()
    harness.check(quantity=3000)

    harness.positions.publish(holding((BTC, 3000, "100"), done={(BTC.symbol, Side.BUY): 3000}))

    assert reason_of(harness.check(quantity=2000)) is None
    assert reason_of(harness.check(quantity=1)) is RejectReason.MAX_POSITION


def test_risk_engine_done_beyond_sent_never_frees_extra_room() -> None:
    """done_steps larger than what this engine sent (an earlier run) does not turn into negative exposure."""
    harness = Harness(snapshot=holding(done={(BTC.symbol, Side.BUY): 10_000}, fills=0))

    assert reason_of(harness.check(quantity=5001)) is RejectReason.MAX_POSITION


# -- rate limit -----------------------------------------------------------------------------------------
def test_risk_engine_rate_limit_refills_at_rate() -> None:
    """Burst 3 at 2/s: three pass at once, the fourth is refused until half a second has passed."""
    harness = Harness(params(max_orders_per_second=2, burst=3))
    burst = [harness.check() for _ in range(3)]

    early = harness.check(now_ns=NOW + SECOND // 2 - 1)
    on_time = harness.check(now_ns=NOW + SECOND // 2)

    assert all(isinstance(order, Order) for order in burst)
    assert reason_of(early) is RejectReason.RATE_LIMIT
    assert reason_of(on_time) is None


def test_risk_engine_rate_limited_signals_do_not_consume_tokens() -> None:
    """Five refusals while empty do not delay the next token: it is there one second after the first."""
    harness = Harness(params(max_orders_per_second=1, burst=1))
    harness.check()

    refused = [harness.check(now_ns=NOW + SECOND // 2) for _ in range(5)]

    assert all(reason_of(r) is RejectReason.RATE_LIMIT for r in refused)
    assert reason_of(harness.check(now_ns=NOW + SECOND)) is None


def test_risk_engine_earlier_rejects_do_not_consume_tokens() -> None:
    """With one token, signals refused by other checks leave it for the next valid one."""
    harness = Harness(params(max_orders_per_second=1, burst=1))

    harness.check(price=1)
    harness.check(quantity=0)
    harness.check(quantity=6000)

    assert isinstance(harness.check(), Order)
    assert reason_of(harness.check()) is RejectReason.RATE_LIMIT


def test_token_bucket_starts_full_and_caps_at_burst() -> None:
    """A new bucket holds burst tokens; a long idle period refills to burst, never more."""
    bucket = TokenBucket(rate_per_s=10, burst=4)

    taken = [bucket.try_take(0) for _ in range(5)]
    after_idle = bucket.available(3600 * SECOND)

    assert taken == [True, True, True, True, False]
    assert after_idle == 4


def test_token_bucket_refill_is_exact_integer_arithmetic() -> None:
    """At 3/s a token takes 333,333,333.3 ns: 333,333,333 ns is not enough, 333,333,334 ns is."""
    bucket = TokenBucket(rate_per_s=3, burst=1)
    bucket.try_take(NOW)

    short = bucket.available(NOW + 333_333_333)
    enough = bucket.try_take(NOW + 333_333_334)

    assert short == 0
    assert enough is True


def test_token_bucket_clock_step_back_counts_as_no_time() -> None:
    """A backwards step adds nothing, and refill resumes from the new reading."""
    bucket = TokenBucket(rate_per_s=1, burst=1)
    bucket.try_take(NOW)

    stepped_back = bucket.try_take(NOW - 10 * SECOND)
    too_soon = bucket.try_take(NOW - 10 * SECOND + SECOND // 2)
    resumed = bucket.try_take(NOW - 9 * SECOND)

    assert (stepped_back, too_soon, resumed) == (False, False, True)


# -- kill switch ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("net", "side", "quantity", "expected"),
    [
        (3000, Side.SELL, 3000, None),
        (3000, Side.SELL, 1, None),
        (3000, Side.SELL, 3001, RejectReason.KILL_SWITCH_REDUCING),
        (3000, Side.BUY, 1, RejectReason.KILL_SWITCH_REDUCING),
        (-3000, Side.BUY, 3000, None),
        (-3000, Side.SELL, 1, RejectReason.KILL_SWITCH_REDUCING),
        (0, Side.SELL, 1, RejectReason.KILL_SWITCH_REDUCING),
    ],
)
def test_kill_switch_reducing_passes_only_flattening_orders(
    net: int, side: Side, quantity: int, expected: RejectReason | None
) -> None:
    """In REDUCING an order passes only when it shrinks |net| without crossing zero."""
    harness = Harness(snapshot=holding((BTC, net, "100")) if net else EMPTY_SNAPSHOT)
    harness.engine.kill_switch.set(KillSwitchState.REDUCING, "operator")

    assert reason_of(harness.check(side=side, quantity=quantity)) is expected


def test_kill_switch_reducing_counts_open_flattening_orders() -> None:
    """Long 3 BTC with 2 BTC of sells still open: 1 BTC more may go, 1.001 would cross zero."""
    harness = Harness(snapshot=holding((BTC, 3000, "100")))
    harness.engine.kill_switch.set(KillSwitchState.REDUCING, "operator")
    harness.check(side=Side.SELL, quantity=2000)

    assert reason_of(harness.check(side=Side.SELL, quantity=1001)) is RejectReason.KILL_SWITCH_REDUCING
    assert reason_of(harness.check(side=Side.SELL, quantity=1000)) is None


def test_kill_switch_halted_blocks_even_flattening_orders() -> None:
    """HALTED refuses everything, naming the operator's reason."""
    harness = Harness(snapshot=holding((BTC, 3000, "100")))
    harness.engine.kill_switch.set(KillSwitchState.HALTED, "venue outage")

    reject = harness.check(side=Side.SELL, quantity=1000)

    assert reason_of(reject) is RejectReason.KILL_SWITCH_HALTED
    assert reject.detail == "halted: venue outage"


def test_kill_switch_operator_can_reactivate() -> None:
    """The operator's set(ACTIVE) lets a position-growing order through again."""
    harness = Harness()
    harness.engine.kill_switch.set(KillSwitchState.HALTED, "pause")

    harness.engine.kill_switch.set(KillSwitchState.ACTIVE, "resume")

    assert reason_of(harness.check()) is None


def test_kill_switch_trip_escalates_only_from_active() -> None:
    """trip() moves ACTIVE to REDUCING once and never softens HALTED."""
    switch = KillSwitch()

    first = switch.trip("loss")
    again = switch.trip("loss again")
    switch.set(KillSwitchState.HALTED, "operator")
    from_halted = switch.trip("loss")

    assert (first, again, from_halted) == (True, False, False)
    assert switch.state is KillSwitchState.HALTED


# -- account drift --------------------------------------------------------------------------------------
def drifted(snapshot: PositionSnapshot, reason: str = "BINANCE USDT drift -500 worth 500, beyond max 100",
            fills: int = 2) -> PositionSnapshot:
    return dataclasses.replace(snapshot, drift={("BINANCE", "USDT"): Decimal(-500)}, drift_breached=bool(reason),
                               drift_reason=reason, fills=fills)


def test_account_drift_breach_trips_reducing_naming_the_drift() -> None:
    """A snapshot whose drift breached RISK_MAX_DRIFT moves the kill switch to reducing at the next decision,
    also with the loss limit off: growing orders are refused, flattening ones pass."""
    long_btc = holding((BTC, 3000, "100"))
    harness = Harness(params(max_loss=Decimal(0)), snapshot=long_btc)
    assert reason_of(harness.check()) is None

    harness.positions.publish(drifted(long_btc))
    growing = harness.check()
    flattening = harness.check(side=Side.SELL, quantity=1000)

    assert reason_of(growing) is RejectReason.KILL_SWITCH_REDUCING
    assert reason_of(flattening) is None
    assert harness.engine.kill_switch.state is KillSwitchState.REDUCING
    assert harness.engine.kill_switch.reason == "position drift: BINANCE USDT drift -500 worth 500, beyond max 100"


def test_account_drift_that_clears_leaves_the_switch_reducing_and_unbreached_drift_trips_nothing() -> None:
    """Drift shown but not breached trades on; once tripped, a later agreeing read does not reactivate."""
    harness = Harness()
    harness.positions.publish(drifted(EMPTY_SNAPSHOT, reason="", fills=0))
    assert reason_of(harness.check()) is None and harness.engine.kill_switch.state is KillSwitchState.ACTIVE

    harness.positions.publish(drifted(EMPTY_SNAPSHOT, fills=0))
    harness.check()
    harness.positions.publish(drifted(EMPTY_SNAPSHOT, reason="", fills=0))

    assert reason_of(harness.check()) is RejectReason.KILL_SWITCH_REDUCING


def test_account_drift_breach_trips_in_check_batch_too() -> None:
    """The column-wise path asks the same question before deciding: a whole batch of buys is refused."""
    harness = Harness(snapshot=drifted(EMPTY_SNAPSHOT))
    signals = [Signal("mr", BTC.symbol, Side.BUY, 10_000, 1000, NOW - 2, NOW - 1) for _ in range(16)]
    batch = signal_batch_of(signals)
    assert batch is not None

    decisions = harness.engine.check_batch(batch, NOW)

    assert harness.engine.kill_switch.state is KillSwitchState.REDUCING
    rows = [row for d in decisions for row in (d.rows() if isinstance(d, RejectBatch) else [d])]
    assert len(rows) == 16 and {reason_of(row) for row in rows} == {RejectReason.KILL_SWITCH_REDUCING}


# -- loss limit -----------------------------------------------------------------------------------------
def test_loss_limit_unrealized_loss_trips_reducing_at_the_limit() -> None:
    """Long 10 BTC from 100.00 (limit 100): mid 90.01 (-99.90) trades on, mid 90.00 (-100) trips."""
    harness = Harness(params(max_position=Decimal(20)), snapshot=booked((BTC, 10_000, 10_000)).snapshot())
    harness.quote(BTC.symbol, 9000, 9002)
    before = harness.check(price=9001)

    harness.quote(BTC.symbol, 9000, 9000)
    growing = harness.check(price=9000)
    flattening = harness.check(side=Side.SELL, price=9000)

    assert reason_of(before) is None
    assert reason_of(growing) is RejectReason.KILL_SWITCH_REDUCING
    assert reason_of(flattening) is None
    assert harness.engine.kill_switch.state is KillSwitchState.REDUCING
    assert harness.engine.kill_switch.reason == "loss limit: pnl -100.00 <= -100"


def test_loss_limit_short_position_loses_when_mid_rises() -> None:
    """Short 10 BTC from 100.00: mid 109.99 trades on, mid 110.00 trips."""
    harness = Harness(params(max_position=Decimal(20)), snapshot=booked((BTC, -10_000, 10_000)).snapshot())
    harness.quote(BTC.symbol, 10_999, 10_999)
    before = harness.check(side=Side.SELL, price=10_999)

    harness.quote(BTC.symbol, 11_000, 11_000)
    after = harness.check(side=Side.SELL, price=11_000)

    assert reason_of(before) is None
    assert reason_of(after) is RejectReason.KILL_SWITCH_REDUCING


def test_loss_limit_never_returns_to_active_by_itself() -> None:
    """After tripping on a realized loss of 100, a later gain (net +50) leaves the switch in REDUCING."""
    book = Booked().round_trip(BTC, 10_000, 10_000, 9_000)
    harness = Harness(snapshot=book.snapshot())
    harness.check()
    assert harness.engine.kill_switch.state is KillSwitchState.REDUCING

    book.round_trip(BTC, 10_000, 9_000, 10_500)
    assert book.ledger.realized_pnl() == 50
    harness.positions.publish(book.snapshot())
    result = harness.check()

    assert reason_of(result) is RejectReason.KILL_SWITCH_REDUCING
    assert harness.engine.kill_switch.state is KillSwitchState.REDUCING


def test_loss_limit_new_snapshot_is_picked_up() -> None:
    """A loss published after earlier checks is seen on the next check (the cache follows the snapshot)."""
    harness = Harness()
    assert reason_of(harness.check()) is None

    book = Booked().round_trip(BTC, 9_999, 10_000, 9_000)  # 9.999 BTC 10.00 lower: -99.99
    assert book.ledger.realized_pnl() == Decimal("-99.99")
    harness.positions.publish(book.snapshot())
    still_fine = harness.check()
    book.round_trip(BTC, 2, 10_000, 9_000)  # -0.02 more
    harness.positions.publish(book.snapshot())
    tripped = harness.check()

    assert reason_of(still_fine) is None
    assert reason_of(tripped) is RejectReason.KILL_SWITCH_REDUCING
    assert harness.engine.kill_switch.reason == "loss limit: pnl -100.01 <= -100"


def test_loss_limit_sums_symbols_on_different_grids() -> None:
    """1 BTC from 100 at 60 (-40) plus 2 ETH from 50 at 20.05 (-59.90) passes; ETH at 20.00 (-100) trips."""
    snapshot = booked((BTC, 1000, 10_000), (ETH, 20_000, 1000)).snapshot()
    harness = Harness(snapshot=snapshot)
    harness.quote(BTC.symbol, 6000, 6000)
    harness.quote(ETH.symbol, 401, 401)
    before = harness.check(price=6000)

    harness.quote(ETH.symbol, 400, 400)
    after = harness.check(price=6000)

    assert reason_of(before) is None
    assert reason_of(after) is RejectReason.KILL_SWITCH_REDUCING


def test_loss_limit_symbol_without_mid_is_marked_at_entry() -> None:
    """ETH held with no ETH quote yet adds no unrealized loss; once quoted, its loss counts."""
    book = booked((ETH, 20_000, 1000)).round_trip(BTC, 5_000, 10_000, 9_000)  # realized -50
    harness = Harness(snapshot=book.snapshot())
    before = harness.check()

    harness.quote(ETH.symbol, 500, 500)  # 2 ETH from 50 at 25: -50 more
    after = harness.check()

    assert reason_of(before) is None
    assert reason_of(after) is RejectReason.KILL_SWITCH_REDUCING


def test_loss_limit_counts_the_fee_value() -> None:
    """Flat after a round trip that lost 60, fees worth 39.99 trade on; 40 in fees (one BTC fee at 100) trip."""
    book = Booked().round_trip(BTC, 1000, 10_000, 4_000).fill(BTC, 1, 10_000, fee="39.99")
    harness = Harness(snapshot=book.snapshot())
    assert reason_of(harness.check()) is None

    book.fill(BTC, -1, 10_000, fee="0.0001", fee_asset="BTC")  # 0.0001 BTC at 100.00: 0.01
    harness.positions.publish(book.snapshot())

    assert reason_of(harness.check()) is RejectReason.KILL_SWITCH_REDUCING
    assert harness.engine.kill_switch.reason == "loss limit: pnl -100.00 <= -100"


def test_loss_limit_matches_the_ledgers_net_pnl_over_seeded_random_fills() -> None:
    """Property: the switch trips exactly when the ledger's net PnL (realized + unrealized at mid - fee value)
    <= -max_loss, at and around the edge, for random fills on two grids at several venues (round trips, flips,
    quote and base fees) and random mids, some missing."""
    rng = random.Random(5)
    checked = 0
    for _ in range(400):
        book = Booked()
        for _ in range(rng.randrange(1, 9)):
            inst = rng.choice((BTC, ETH))
            fee, fee_asset = rng.choice((("0", "USDT"),
                                         (str(Decimal(rng.randrange(1, 10**6)).scaleb(-rng.randrange(0, 9))), "USDT"),
                                         (str(Decimal(rng.randrange(1, 10**4)).scaleb(-8)), inst.base_asset)))
            book.fill(inst, rng.choice((-1, 1)) * rng.randrange(1, 50_000), rng.randrange(1, 20_000),
                      venue=rng.choice(("V0", "V1", "V2")), fee=fee, fee_asset=fee_asset)
        board = MarketBoard()
        board.update(Tick(BTC.symbol, rng.randrange(1, 20_000), rng.randrange(1, 20_000), 1, 1, NOW, NOW))
        if rng.random() < 0.7:
            board.update(Tick(ETH.symbol, rng.randrange(1, 20_000), rng.randrange(1, 20_000), 1, 1, NOW, NOW))
        snapshot = book.snapshot()
        pnl = book.ledger.net_pnl(board)
        edge = -pnl
        for max_loss in (edge, edge + Decimal("1e-12"), edge - Decimal("1e-12")):
            if max_loss <= 0:
                continue
            engine = RiskEngine(params(max_loss=max_loss), INSTRUMENTS, board, Latest(snapshot), ClientOrderIds("t"))

            engine.check(Signal("mr", BTC.symbol, Side.BUY, 10_000, 1000, NOW - 2, NOW - 1), NOW)

            tripped = engine.kill_switch.state is KillSwitchState.REDUCING
            assert tripped == (pnl <= -max_loss), (pnl, max_loss)
            checked += 1
    assert checked > 300


def test_loss_limit_fee_bound_is_the_exact_floor_for_any_fee() -> None:
    """floor((fee - max_loss) * 10**digits) through Decimal arithmetic equals the exact rational floor, on both
    sides of zero, on the bound itself, and for fees too long for the Decimal context (the ratio fallback)."""
    rng = random.Random(5)
    loss = LossLimit(Decimal("123.45"), MarketBoard())
    fees = [Decimal("123.45"), Decimal("123.4500000001"), Decimal("123.4499999999"), Decimal(0),
            Decimal("1E-30"), Decimal("9" * 90), Decimal("0." + "7" * 95)]
    fees += [Decimal(rng.randrange(-10**12, 10**12)).scaleb(-rng.randrange(0, 20)) for _ in range(2000)]
    for fee in fees:
        for digits in (0, 2, 14, 40):
            expected = math.floor((Fraction(fee) - Fraction("123.45")) * 10**digits)
            assert loss._floor_scaled(fee, digits) == expected, (fee, digits)


def test_loss_limit_zero_turns_the_check_off() -> None:
    """max_loss 0: a large realized loss does not touch the kill switch."""
    book = Booked().round_trip(BTC, 1_000_000, 110_000, 10_000)  # 1000 BTC 1000.00 lower
    assert book.ledger.realized_pnl() == -1_000_000
    harness = Harness(params(max_loss=Decimal(0)), snapshot=book.snapshot())

    assert reason_of(harness.check()) is None
    assert harness.engine.kill_switch.state is KillSwitchState.ACTIVE
