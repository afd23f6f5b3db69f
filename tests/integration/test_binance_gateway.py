"""BinanceGateway over real sockets against exchange_sim: lifecycle, rejects, reconnects and lost answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from dma_bot.binance.errors import VenueError
from dma_bot.binance.filters import SymbolRules
from dma_bot.binance.signing import HmacSigner
from dma_bot.bus import Channel, fanout
from dma_bot.clock import Clock, LiveClock
from dma_bot.errors import StartupError
from dma_bot.exchange_sim import ExchangeSim, FeeAsset, RateLimits
from dma_bot.gateways.binance import BinanceGateway
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import AccountSnapshot, ExecReport, Route, Tick
from dma_bot.model.market import MarketBoard
from dma_bot.positions.ledger import Ledger
from dma_bot.retry import Backoff

S = ExecStatus
SYMBOL = "BTCUSDT"
Forward = Callable[[], Awaitable[Any]]
Fault = Callable[[Forward], Awaitable[Any]]


class FlakyRest(BinanceRest):
    """The real REST shell, with scripted faults on the next POSTs (each fault decides whether to forward)."""

    def __init__(self, *args: Any, post_faults: Sequence[Fault] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.post_faults = list(post_faults)
        self.posts = 0
        self.clock_syncs = 0
        self.my_trades_calls = 0
        self.my_trades_down = False
        self.account_faults: list[VenueError] = []  # raised, in order, by the next account reads

    async def request(self, method: str, path: str, params: Any = (), *, signed: bool = False) -> Any:
        async def forward() -> Any:
            return await super(FlakyRest, self).request(method, path, params, signed=signed)

        if path == "/api/v3/account" and self.account_faults:
            raise self.account_faults.pop(0)
        if path == "/api/v3/myTrades":
            self.my_trades_calls += 1
            if self.my_trades_down:
                raise VenueError(-1001, "Internal error; unable to process your request. Please try again.", 503)
        if method == "POST":
            self.posts += 1
            if self.post_faults:
                return await self.post_faults.pop(0)(forward)
        return await forward()

    async def sync_clock(self) -> int:
        self.clock_syncs += 1
        return await super().sync_clock()


async def answer_lost(forward: Forward) -> Any:
    await forward()
    raise VenueError(None, "POST /api/v3/order: ServerDisconnectedError: Server disconnected", None)


async def never_sent(forward: Forward) -> Any:
    raise VenueError(None, "POST /api/v3/order: ClientConnectorError: Connection refused", None)


async def rate_limited(forward: Forward) -> Any:
    raise VenueError(-1015, "Too many new orders; current limit is 50 orders per 10 SECOND.", 429, retry_after_s=0)


async def clock_skewed(forward: Forward) -> Any:
    raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.", 400)


@dataclass
class Harness:
    gateway: BinanceGateway
    inbox: Channel[Route]
    out: Channel[ExecReport | AccountSnapshot]
    rules: dict[str, SymbolRules]
    rest: FlakyRest
    reports: list[ExecReport] = field(default_factory=list)
    accounts: list[AccountSnapshot] = field(default_factory=list)  # the account reads, kept apart from reports
    events: list[ExecReport | AccountSnapshot] = field(default_factory=list)  # both, in output order
    closed: bool = False

    def _take(self, batch: Sequence[ExecReport | AccountSnapshot]) -> None:
        self.events += batch
        for event in batch:
            if type(event) is AccountSnapshot:
                self.accounts.append(event)
            else:
                self.reports.append(event)  # type: ignore[arg-type]

    def route(self, cid: str, side: Side, price: str, quantity: str) -> Route:
        instrument = self.rules[SYMBOL].instrument
        return Route(venue="BINANCE", client_order_id=cid, parent_order_id=f"p-{cid}", strategy="test",
                     symbol=SYMBOL, side=side, price=instrument.price_to_ticks(Decimal(price)),
                     quantity=instrument.qty_to_steps(Decimal(quantity)), ts_signal_ns=0, ts_ns=0)

    async def ready(self) -> None:
        """Return once the gateway is subscribed (the user-data stream hears the account)."""
        async with asyncio.timeout(10):
            await self.gateway.stream.wait_subscribed()

    async def send(self, *routes: Route) -> None:
        for route in routes:
            await self.inbox.put(route)

    async def until(self, what: str, done: Callable[[list[ExecReport]], bool]) -> list[ExecReport]:
        """Collect reports until ``done(all reports so far)``; fail after 10 s naming ``what``."""
        try:
            async with asyncio.timeout(10):
                while not done(self.reports):
                    batch = await self.out.get_batch()
                    assert batch is not None, f"output closed before: {what}"
                    self._take(batch)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; got {[(r.client_order_id, r.status) for r in self.reports]}")
        return self.reports

    async def accounts_read(self, count: int) -> list[AccountSnapshot]:
        """Collect output until ``count`` account reads have come."""
        await self.until(f"{count} account reads", lambda _: len(self.accounts) >= count)
        return self.accounts

    async def has(self, cid: str, status: ExecStatus) -> list[ExecReport]:
        return await self.until(f"{cid} {status}", lambda rs: any(r.client_order_id == cid and r.status is status
                                                                   for r in rs))

    async def finish(self) -> list[ExecReport]:
        """End the inbox and read until the gateway closes its output."""
        self.closed = True
        await self.inbox.close()
        async with asyncio.timeout(15):
            while (batch := await self.out.get_batch()) is not None:
                self._take(batch)
        return self.reports

    def of(self, cid: str) -> list[ExecReport]:
        return [r for r in self.reports if r.client_order_id == cid]


@asynccontextmanager
async def gateway_on(
    sim: ExchangeSim, *, post_faults: Sequence[Fault] = (), secret: str | None = None, clock: Clock | None = None,
    **options: Any
) -> AsyncIterator[Harness]:
    clock = clock or LiveClock()
    signer = HmacSigner(sim.api_key, secret or sim.api_secret)
    async with FlakyRest(sim.rest_url, clock=clock, signer=signer, post_faults=post_faults) as rest:
        rules = await rest.exchange_info([SYMBOL])
        inbox: Channel[Route] = Channel("routes.BINANCE", 64)
        out: Channel[ExecReport | AccountSnapshot] = Channel("exec_reports", 4096, producers=0)
        options = {"reconnect_backoff": Backoff(initial_s=0.02, max_s=0.1),
                   "retry_backoff": Backoff(initial_s=0.01, max_s=0.05), **options}
        gateway = BinanceGateway(rules=rules, rest=rest, ws_api_url=sim.ws_api_url, signer=signer, inbox=inbox,
                                 out=fanout(out), clock=clock, **options)
        harness = Harness(gateway, inbox, out, rules, rest)
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            group.create_task(gateway.run())
            try:
                yield harness
            finally:
                if not harness.closed:
                    await harness.finish()


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim([SYMBOL], port=0, fee_asset=FeeAsset.QUOTE) as running:
        yield running


def base_held(sim: ExchangeSim) -> Decimal:
    free, locked = sim.balance("BTC")
    return free + locked


def ledger_steps(reports: list[ExecReport], rules: dict[str, SymbolRules]) -> tuple[int, Ledger]:
    ledger = Ledger({SYMBOL: rules[SYMBOL].instrument})
    for report in reports:
        ledger.apply(report)
    return ledger.snapshot().net_steps.get(SYMBOL, 0), ledger


def assert_consistent(reports: list[ExecReport], rules: dict[str, SymbolRules], base_change: Decimal) -> None:
    """Applied to a real Ledger: legal, no duplicate fill, and the position is the venue's balance change."""
    steps, ledger = ledger_steps(reports, rules)
    trade_ids = [r.trade_id for r in reports if r.trade_id is not None]
    assert len(trade_ids) == len(set(trade_ids))
    assert ledger.stats.illegal_transitions == 0 and ledger.stats.duplicate_fills == 0
    assert rules[SYMBOL].instrument.steps_to_qty(steps) == base_change
    for cid in {r.client_order_id for r in reports}:
        assert [r.status for r in reports if r.client_order_id == cid].count(S.ACK) <= 1


# -- lifecycle -----------------------------------------------------------------------------------------------


async def test_gateway_rests_partially_fills_and_fills_with_one_report_per_trade(sim: ExchangeSim) -> None:
    """A resting buy: ACK, then the venue's partial and final fills at its limit, each with its trade id."""
    before = base_held(sim)
    async with gateway_on(sim) as h:
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0004")
        await h.has("b1", S.PARTIALLY_FILLED)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.05")
        await h.has("b1", S.FILLED)
        reports = await h.finish()
    assert [r.status for r in reports] == [S.ACK, S.PARTIALLY_FILLED, S.FILLED]
    assert [(r.last_qty, r.last_price, r.cum_qty) for r in reports[1:]] == [(40, 4_999_000, 40), (60, 4_999_000, 100)]
    assert all(r.trade_id is not None and r.fee > 0 and r.side is Side.BUY for r in reports[1:])
    assert_consistent(reports, h.rules, base_held(sim) - before)
    assert h.gateway.stats.reports_by_status == {"ack": 1, "partially_filled": 1, "filled": 1}


async def test_gateway_cancels_its_open_orders_on_shutdown_and_closes_its_output(sim: ExchangeSim) -> None:
    """Inbox ends: every resting order is cancelled at the venue and reported CANCELED once; out closes."""
    async with gateway_on(sim) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"), h.route("s1", Side.SELL, "51000.00", "0.002"))
        await h.until("two ACKs", lambda rs: [r.status for r in rs].count(S.ACK) == 2)
        reports = await h.finish()
    assert [r.status for r in h.of("b1")] == [S.ACK, S.CANCELED]
    assert [r.status for r in h.of("s1")] == [S.ACK, S.CANCELED]
    assert sim.open_orders() == [] and h.gateway.open_orders == 0
    assert len(reports) == 4 and h.gateway.subscriptions_ok == 1 and not h.gateway.stream_connected


async def test_gateway_ioc_leftover_is_reported_expired_after_its_fill(sim: ExchangeSim) -> None:
    """IOC for more than the touch: the touch fills, the rest EXPIRED with the cumulative quantity."""
    before = base_held(sim)
    async with gateway_on(sim, time_in_force="IOC") as h:
        await h.send(h.route("i1", Side.BUY, "50000.01", "0.1"))
        await h.has("i1", S.EXPIRED)
        reports = await h.finish()
    assert [r.status for r in reports] == [S.ACK, S.PARTIALLY_FILLED, S.EXPIRED]
    assert reports[1].last_qty == 5000 and reports[2].cum_qty == 5000 and reports[2].leaves_qty == 0
    assert reports[2].reason == "UNFILLED_IOC_QUANTITY_EXPIRED"
    assert_consistent(reports, h.rules, base_held(sim) - before)


async def test_gateway_limit_maker_that_would_cross_is_rejected_once_with_the_venues_reason(sim: ExchangeSim) -> None:
    """Post-only at the ask: one REJECTED carrying -2010 and its message; nothing is left at the venue."""
    async with gateway_on(sim, time_in_force="LIMIT_MAKER") as h:
        await h.send(h.route("m1", Side.BUY, "50000.01", "0.001"), h.route("m2", Side.BUY, "49000.00", "0.001"))
        await h.has("m1", S.REJECTED)
        await h.has("m2", S.ACK)
        await h.finish()
    assert [r.status for r in h.of("m1")] == [S.REJECTED]
    assert h.of("m1")[0].reason.startswith("-2010 Order would immediately match and take.")
    assert [r.status for r in h.of("m2")] == [S.ACK, S.CANCELED]


async def test_gateway_local_filter_reject_never_reaches_the_venue(sim: ExchangeSim) -> None:
    """Below minNotional, and outside PERCENT_PRICE_BY_SIDE of the board's mid: refused locally, never sent."""
    board = MarketBoard()
    board.update(Tick(SYMBOL, 5_000_000, 5_000_001, 1, 1, 0, 0))
    async with gateway_on(sim, board=board) as h:
        await h.send(h.route("n1", Side.BUY, "50000.00", "0.00001"), h.route("p1", Side.BUY, "5000.00", "0.01"))
        await h.until("two rejects", lambda rs: len(rs) == 2)
        await h.finish()
    assert h.of("n1")[0].reason.startswith("local NOTIONAL: notional 0.5 is below minNotional 5")
    assert h.of("p1")[0].reason.startswith("local PERCENT_PRICE_BY_SIDE: BUY price 5000 is outside")
    assert sim.order(SYMBOL, client_order_id="n1") is None and sim.order(SYMBOL, client_order_id="p1") is None
    assert h.rest.posts == 0


# -- the stream ----------------------------------------------------------------------------------------------


def venue_fills(sim: ExchangeSim, order_id: str) -> list[tuple[str, int, Decimal, str]]:
    """(trade id, steps, commission, asset) of every fill of the venue's order ``order_id``, oldest first."""
    return [(str(t.fill.trade_id), t.fill.qty, t.fill.commission, t.fill.commission_asset)
            for t in sim.exchange.trades[SYMBOL] if str(t.order_id) == order_id]


def reported_fills(reports: list[ExecReport]) -> list[tuple[str | None, int, Decimal, str]]:
    return [(r.trade_id, r.last_qty, r.fee, r.fee_asset) for r in reports if r.last_qty > 0]


async def test_gateway_reconciles_fills_missed_while_the_stream_was_down_from_my_trades(sim: ExchangeSim) -> None:
    """A drop, then two more fills: after the re-subscription each missed trade is its own fill with the
    venue's trade id and commission, none is reported twice, and the new stream carries fills again."""
    before = base_held(sim)
    async with gateway_on(sim) as h:
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0004")
        await h.has("b1", S.PARTIALLY_FILLED)
        sim.drop_connections()
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0003")
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.05")
        await h.has("b1", S.FILLED)
        await h.send(h.route("s1", Side.SELL, "49991.00", "0.0002"))
        await h.has("s1", S.ACK)
        sim.set_quote(SYMBOL, "49991.00", "49992.00")
        await h.has("s1", S.FILLED)
        reports = await h.finish()
    b1 = h.of("b1")
    assert [r.status for r in b1] == [S.ACK, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    assert reported_fills(b1) == venue_fills(sim, b1[0].venue_order_id)
    assert [r.reason for r in b1[2:]] == ["reconciled from myTrades"] * 2
    assert all(r.fee > 0 and r.last_price == 4_999_000 for r in b1[1:])
    assert h.of("s1")[-1].trade_id is not None
    assert h.gateway.subscriptions_ok == 2 and h.gateway.stream_reconnects == 1
    stats = h.gateway.order_stats
    assert (stats.reconciled_trades, stats.reconciled_fills, h.gateway.trade_query_failures) == (2, 0, 0)
    assert_consistent(reports, h.rules, base_held(sim) - before)


async def test_gateway_falls_back_to_executed_qty_when_my_trades_keeps_failing(sim: ExchangeSim) -> None:
    """myTrades answers 503 on every attempt: the missed quantity is one id-less fill, counted, exact."""
    before = base_held(sim)
    async with gateway_on(sim, query_attempts=3) as h:
        h.rest.my_trades_down = True
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0004")
        await h.has("b1", S.PARTIALLY_FILLED)
        sim.drop_connections()
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.05")
        await h.has("b1", S.FILLED)
        reports = await h.finish()
    missed = h.of("b1")[-1]
    assert (missed.last_qty, missed.last_price, missed.trade_id, missed.fee) == (60, 4_999_000, None, 0)
    assert missed.reason.startswith("reconciled from the order query")
    assert h.rest.my_trades_calls == 3 and h.gateway.trade_query_failures == 1
    assert h.gateway.order_stats.reconciled_fills == 1 and h.gateway.order_stats.reconciled_trades == 0
    assert_consistent(reports, h.rules, base_held(sim) - before)


async def test_gateway_resubscribes_after_event_stream_terminated_and_reconciles(sim: ExchangeSim) -> None:
    """eventStreamTerminated ends the subscription: the gateway subscribes again (counted) and reports the
    fill it missed meanwhile from myTrades, with the venue's trade id and commission, once."""
    before = base_held(sim)
    async with gateway_on(sim) as h:
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        sim.terminate_user_streams()
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.05")
        async with asyncio.timeout(10):
            await h.gateway.stream.wait_subscriptions(2)
        await h.has("b1", S.FILLED)
        reports = await h.finish()
    b1 = h.of("b1")
    assert h.gateway.subscriptions_ok == 2 and h.gateway.stream.last_close_reason == "stopped"
    assert [r.status for r in b1] == [S.ACK, S.FILLED]
    assert reported_fills(b1) == venue_fills(sim, b1[0].venue_order_id)
    assert b1[1].reason == "reconciled from myTrades" and h.gateway.order_stats.reconciled_trades == 1
    assert_consistent(reports, h.rules, base_held(sim) - before)


async def test_gateway_resubscribes_after_server_shutdown_and_keeps_hearing_fills(sim: ExchangeSim) -> None:
    """serverShutdown: reconnect, re-subscribe (counted), and fills arrive from the new subscription."""
    async with gateway_on(sim) as h:
        await h.ready()
        sim.server_shutdown()
        async with asyncio.timeout(10):
            await h.gateway.stream.wait_subscriptions(2)
        await h.send(h.route("b1", Side.BUY, "50000.01", "0.001"))
        await h.has("b1", S.FILLED)
        await h.finish()
    assert h.gateway.subscriptions_ok == 2 and h.gateway.subscriptions_err == 0
    assert h.of("b1")[-1].trade_id is not None and h.gateway.last_event_ns is not None


async def test_gateway_counts_and_ignores_executions_of_other_sessions(sim: ExchangeSim) -> None:
    """An order placed on the account by someone else is heard on the stream but never reported."""
    async with gateway_on(sim) as h:
        await h.ready()
        await h.rest.request("POST", "/api/v3/order", [("symbol", SYMBOL), ("side", "BUY"), ("type", "LIMIT"),
                             ("timeInForce", "GTC"), ("quantity", "0.001"), ("price", "49000.00"),
                             ("newClientOrderId", "someone-else")], signed=True)
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.ACK)
        await h.finish()
    assert {r.client_order_id for r in h.reports} == {"b1"}
    assert h.gateway.order_stats.foreign_executions >= 1
    assert [o.client_order_id for o in sim.open_orders()] == ["someone-else"]


async def test_gateway_fails_start_up_when_the_venue_refuses_the_subscription(sim: ExchangeSim) -> None:
    """A wrong secret signs a subscription the venue refuses (-1022): a StartupError, no output closed."""
    clock = LiveClock()
    signer = HmacSigner(sim.api_key, "not-the-secret")
    async with BinanceRest(sim.rest_url, clock=clock, signer=signer) as rest:
        rules = await rest.exchange_info([SYMBOL])
        out: Channel[ExecReport] = Channel("exec_reports", 16, producers=0)
        gateway = BinanceGateway(rules=rules, rest=rest, ws_api_url=sim.ws_api_url, signer=signer,
                                 inbox=Channel("routes.BINANCE", 4), out=fanout(out), clock=clock)
        with pytest.raises(StartupError, match="-1022"):
            async with asyncio.timeout(10):
                await gateway.run()
    assert gateway.subscriptions_err == 1 and gateway.subscriptions_ok == 0 and out.qsize() == 0


# -- POST outcomes -------------------------------------------------------------------------------------------


async def test_gateway_never_resends_an_order_whose_answer_was_lost(sim: ExchangeSim) -> None:
    """The POST reached the venue but its answer did not come back: one order at the venue, one ACK."""
    async with gateway_on(sim, post_faults=[answer_lost]) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.ACK)
        assert [o.client_order_id for o in sim.open_orders()] == ["b1"]
        await h.finish()
    assert h.rest.posts == 1 and h.gateway.unknown_outcomes == 1
    assert [r.status for r in h.of("b1")] == [S.ACK, S.CANCELED]


async def test_gateway_rejects_an_unknown_outcome_the_venue_never_saw(sim: ExchangeSim) -> None:
    """The POST never arrived and the queries keep finding nothing: REJECTED, and never resent."""
    async with gateway_on(sim, post_faults=[never_sent], query_attempts=3) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.REJECTED)
        await h.finish()
    assert [r.reason for r in h.of("b1")] == ["unknown outcome: not found at venue"]
    assert h.rest.posts == 1 and sim.order(SYMBOL, client_order_id="b1") is None


async def test_gateway_waits_retry_after_and_resends_a_rate_limited_order(sim: ExchangeSim) -> None:
    """429 means the order was not accepted: it is sent again after Retry-After and acknowledged once."""
    async with gateway_on(sim, post_faults=[rate_limited]) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.ACK)
        await h.finish()
    assert h.rest.posts == 2 and [r.status for r in h.of("b1")] == [S.ACK, S.CANCELED]


async def test_gateway_resynchronises_the_clock_after_1021_and_resends_once(sim: ExchangeSim) -> None:
    """-1021: /api/v3/time again, then the same order again; a second -1021 is final."""
    async with gateway_on(sim, post_faults=[clock_skewed, clock_skewed, clock_skewed]) as h:
        await h.ready()
        start_syncs = h.rest.clock_syncs
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.REJECTED)
        await h.send(h.route("b2", Side.BUY, "49000.00", "0.001"))
        await h.has("b2", S.ACK)
        await h.finish()
    assert h.of("b1")[0].reason == "-1021 Timestamp for this request is outside of the recvWindow."
    assert h.rest.clock_syncs - start_syncs == 2 and h.rest.posts == 4


async def test_gateway_keeps_placing_orders_while_one_post_is_slow(sim: ExchangeSim) -> None:
    """Bounded concurrency: a POST held back does not hold the next order; reports stay in order per order."""
    release = asyncio.Event()

    async def slow(forward: Forward) -> Any:
        await release.wait()
        return await forward()

    async with gateway_on(sim, post_faults=[slow]) as h:
        await h.send(h.route("slow", Side.BUY, "49000.00", "0.001"), h.route("fast", Side.BUY, "49001.00", "0.001"))
        await h.has("fast", S.ACK)
        assert h.of("slow") == []
        release.set()
        await h.has("slow", S.ACK)
        await h.finish()
    assert [r.status for r in h.of("slow")] == [S.ACK, S.CANCELED]
    assert [r.status for r in h.of("fast")] == [S.ACK, S.CANCELED]


# -- retry policies: the overall deadline -------------------------------------------------------------------


class SlowVenueClock:
    """The live clock, whose monotonic time jumps forward on demand: a venue that takes its time, unslept."""

    def __init__(self) -> None:
        self._live = LiveClock()
        self.offset_ns = 0

    def time_ns(self) -> int:
        return self._live.time_ns()

    def monotonic_ns(self) -> int:
        return self._live.monotonic_ns() + self.offset_ns


async def test_gateway_gives_up_resending_an_order_at_the_send_deadline() -> None:
    """Every POST takes 10 s of the gateway's clock and is rate limited with Retry-After 0: attempts are
    plenty, but with a 25 s deadline (from the first POST) the third failure is final: one REJECTED."""
    clock = SlowVenueClock()

    async def slow_rate_limited(forward: Forward) -> Any:
        clock.offset_ns += 10_000_000_000
        return await rate_limited(forward)

    async with (
        ExchangeSim([SYMBOL], port=0, fee_asset=FeeAsset.QUOTE) as sim,
        gateway_on(sim, clock=clock, post_faults=[slow_rate_limited] * 10, order_attempts=100,
                   order_deadline_s=25.0) as h,
    ):
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.REJECTED)
        await h.finish()
    assert h.rest.posts == 3 and sim.order(SYMBOL, client_order_id="b1") is None
    assert [r.reason for r in h.of("b1")] == ["-1015 Too many new orders; current limit is 50 orders per 10 SECOND."]
    assert h.gateway.retries_by_policy["order.send"] == 2 and h.gateway.gave_up_by_policy["order.send"] == 1


async def test_gateway_does_not_wait_for_a_retry_after_that_ends_past_the_deadline() -> None:
    """The venue's own order limit answers 429 -1015 with Retry-After >= 1 s: a 0.5 s send deadline rejects
    the order at once (Retry-After is under its 30 s cap: the deadline decided), and nothing is resent."""
    no_orders = RateLimits(orders_per_10s=0)
    async with (
        ExchangeSim([SYMBOL], port=0, fee_asset=FeeAsset.QUOTE, rate_limits=no_orders) as sim,
        gateway_on(sim, order_deadline_s=0.5, max_retry_after_s=30.0) as h,
    ):
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.REJECTED)
        await h.finish()
    assert h.rest.posts == 1 and sim.order(SYMBOL, client_order_id="b1") is None
    assert h.of("b1")[0].reason.startswith("-1015 Too many new orders")
    assert h.gateway.gave_up_by_policy["order.send"] == 1 and h.gateway.retries_by_policy["order.send"] == 0


async def test_gateway_stops_querying_an_unknown_outcome_at_the_query_deadline(sim: ExchangeSim) -> None:
    """The POST never arrived and every query finds nothing: 1000 attempts allowed, but 0.05 s apart within a
    0.5 s deadline there are at most 10 retries before the order is REJECTED as not found."""
    flat = Backoff(initial_s=0.05, max_s=0.05, jitter=0.0)
    async with gateway_on(sim, post_faults=[never_sent], retry_backoff=flat, query_attempts=1000,
                          query_deadline_s=0.5) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.REJECTED)
        await h.finish()
    assert [r.reason for r in h.of("b1")] == ["unknown outcome: not found at venue"]
    assert 1 <= h.gateway.retries_by_policy["order.query"] <= 10
    assert h.gateway.gave_up_by_policy["order.query"] == 1 and h.rest.posts == 1


# -- account reads for the ledger's reconciliation ----------------------------------------------------------


def account_total(sim: ExchangeSim, asset: str) -> Decimal:
    free, locked = sim.balance(asset)
    return free + locked


def replay_drifts(
    h: Harness, max_drift: Decimal
) -> tuple[list[dict[tuple[str, str], Decimal]], list[bool], Ledger]:
    """The gateway's output in order through a real Ledger: the drift it shows after each account read, and
    whether it breached then."""
    ledger = Ledger({SYMBOL: h.rules[SYMBOL].instrument}, max_drift=max_drift)
    drifts = []
    breached = []
    for event in h.events:
        if type(event) is AccountSnapshot:
            ledger.apply_account(event)
            drifts.append(dict(ledger.snapshot().drift))
            breached.append(ledger.snapshot().drift_breached)
        else:
            ledger.apply(event)  # type: ignore[arg-type]
    return drifts, breached, ledger


async def test_gateway_reads_the_account_at_start_and_after_each_resubscription(sim: ExchangeSim) -> None:
    """One account read at start-up, before any order; another after a resubscription, behind the fill it
    reconciled from myTrades and listing the order still resting, and its recheck a moment later. Replayed in
    output order, the ledger's expectation equals the venue's balances exactly (drift 0 in BTC and in USDT,
    which pays the commission); a balance changed behind our back then shows, at the next read, as exactly
    that drift, and breaches the bound at its recheck (two reads in a row), not before."""
    totals = {asset: account_total(sim, asset) for asset in ("BTC", "USDT")}
    async with gateway_on(sim, account_recheck_s=0.05) as h:
        (first,) = await h.accounts_read(1)
        assert (first.venue, dict(first.balances), first.open_order_ids) == ("BINANCE", totals, ())
        assert h.events == [first]  # before any order
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0004")
        await h.has("b1", S.PARTIALLY_FILLED)
        sim.drop_user_connections()
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0003")  # a fill the stream cannot tell
        second, recheck = (await h.accounts_read(3))[1:3]
        assert second.open_order_ids == recheck.open_order_ids == ("b1",)
        assert recheck.balances == second.balances
        assert dict(second.balances) == {asset: account_total(sim, asset) for asset in ("BTC", "USDT")}
        reconciled = [r for r in h.of("b1") if r.reason == "reconciled from myTrades"]
        assert [r.last_qty for r in reconciled] == [30]
        assert h.events.index(reconciled[0]) < h.events.index(second)
        free, _ = sim.balance("USDT")
        sim.set_balance("USDT", free + Decimal("1000"))  # behind the daemon's back
        sim.drop_user_connections()
        third = (await h.accounts_read(5))[3]
        await h.finish()
    drifts, breached, ledger = replay_drifts(h, max_drift=Decimal("500"))
    assert len(drifts) == 5
    assert drifts[:3] == [{("BINANCE", "BTC"): 0, ("BINANCE", "USDT"): 0}] * 3
    assert drifts[3:] == [{("BINANCE", "BTC"): 0, ("BINANCE", "USDT"): Decimal("1000")}] * 2
    assert third.open_order_ids == ("b1",)
    assert breached == [False, False, False, False, True]  # 1000 USDT beyond a bound of 500, in two reads
    notes = ledger.take_notes()
    assert [(n.kind, n.detail.split(":")[0]) for n in notes] == [("position_drift", "USDT")] * 2
    assert h.gateway.subscriptions_ok == 3 and h.gateway.counters()["account_read_failure"] == 0


async def test_gateway_retries_the_account_read_and_counts_one_that_never_answers(sim: ExchangeSim) -> None:
    """A 503 on the account read is retried ("account.read"); a refusal (-2015, no permission) is counted and
    sends no AccountSnapshot at that subscription; orders trade all the same. (The recheck is set beyond the
    test's life: only the resubscription's own read is under test.)"""
    async with gateway_on(sim, account_recheck_s=600) as h:
        await h.accounts_read(1)
        h.rest.account_faults = [
            VenueError(-1008, "Server is currently overloaded with other requests. Please try again.", 503),
            VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401),
        ]
        sim.drop_user_connections()
        await h.gateway.stream.wait_subscriptions(2)
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"))
        await h.has("b1", S.ACK)
        await h.finish()
    assert len(h.accounts) == 1 and h.rest.account_faults == []
    assert h.gateway.retries_by_policy["account.read"] == 1
    assert h.gateway.counters()["account_read_failure"] == 1
    assert [r.status for r in h.of("b1")] == [S.ACK, S.CANCELED]
