"""BinanceGateway against exchange_sim's injected faults: orders the venue forgot, routes too old to send,
routes while the user-data stream is down, and the connection facts recorded as Notes."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dma_bot.binance.errors import VenueError
from dma_bot.bus import Channel, Fanout, fanout
from dma_bot.clock import LiveClock
from dma_bot.exchange_sim import ExchangeSim, FeeAsset
from dma_bot.gateways.binance_orders import UNKNOWN_AT_VENUE_REASON
from dma_bot.model.enums import ExecStatus, NoteKind, Side
from dma_bot.model.events import Note
from tests.integration.test_binance_gateway import (
    SYMBOL,
    Forward,
    assert_consistent,
    base_held,
    gateway_on,
    reported_fills,
    venue_fills,
)

S = ExecStatus
MS = 1_000_000
UNREACHABLE = re.compile(r"venue unreachable: user-data stream down since \d+ ms")


class NoteLog:
    """The gateway's Notes channel, read on demand: ``wait(kind)`` returns once that many of ``kind`` came."""

    def __init__(self) -> None:
        self.channel: Channel[Note] = Channel("notes", 256, producers=0)
        self.seen: list[Note] = []
        self.closed = False

    def fanout(self) -> Fanout[Note]:
        return fanout(self.channel)

    async def wait(self, kind: NoteKind, count: int = 1) -> list[Note]:
        try:
            async with asyncio.timeout(10):
                while sum(n.kind is kind for n in self.seen) < count:
                    batch = await self.channel.get_batch()
                    assert batch is not None, f"notes closed before {count} {kind}: {self.kinds()}"
                    self.seen += batch
        except TimeoutError:
            pytest.fail(f"timed out waiting for {count} {kind}; got {self.kinds()}")
        return [n for n in self.seen if n.kind is kind]

    async def rest(self) -> list[Note]:
        """Every Note until the gateway closed the channel (it does once its run ends)."""
        async with asyncio.timeout(10):
            while (batch := await self.channel.get_batch()) is not None:
                self.seen += batch
        self.closed = True
        return self.seen

    def kinds(self) -> list[NoteKind]:
        return [n.kind for n in self.seen]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim([SYMBOL], port=0, fee_asset=FeeAsset.QUOTE) as running:
        yield running


# -- orders the venue no longer knows ------------------------------------------------------------------------


async def test_orders_the_venue_forgot_are_canceled_with_the_reason_after_the_reconnect(sim: ExchangeSim) -> None:
    """Three resting orders, the venue wipes them silently, the user-data connection drops: the queries after
    the re-subscription find nothing (-2013), myTrades shows no fill, and each order ends CANCELED with the
    reason, once; nothing stays open, and the outage is in the Notes, in order."""
    notes = NoteLog()
    async with gateway_on(sim, notes=notes.fanout()) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"), h.route("b2", Side.BUY, "49100.00", "0.002"),
                     h.route("s1", Side.SELL, "51000.00", "0.001"))
        await h.until("three ACKs", lambda rs: [r.status for r in rs].count(S.ACK) == 3)
        assert len(sim.wipe_open_orders()) == 3
        sim.faults.add({"kind": "user.drop"})
        await h.until("three CANCELED", lambda rs: [r.status for r in rs].count(S.CANCELED) == 3)
        await notes.wait(NoteKind.RECONCILED)
        assert h.gateway.open_orders == 0
        await h.finish()
    for cid in ("b1", "b2", "s1"):
        reports = h.of(cid)
        assert [r.status for r in reports] == [S.ACK, S.CANCELED]
        assert reports[1].reason == UNKNOWN_AT_VENUE_REASON and reports[1].cum_qty == 0
        assert reports[1].venue_order_id == reports[0].venue_order_id
    counters = h.gateway.counters()
    assert counters["unknown_at_venue"] == 3 and counters["foreign_execution"] == 0
    assert h.gateway.subscriptions_ok == 2 and h.gateway.order_stats.missing_at_venue == 0
    seen = await notes.rest()
    assert notes.kinds() == [NoteKind.USER_STREAM_DOWN, NoteKind.USER_STREAM_UP, *[NoteKind.UNKNOWN_AT_VENUE] * 3,
                             NoteKind.RECONCILED]
    down, up, *unknown, reconciled = seen
    assert down.detail.startswith("user-data stream lost: closed") and down.venue == "BINANCE"
    assert re.fullmatch(r"user-data stream resubscribed after \d+ ms down; reconciling 3 open orders", up.detail)
    assert {(n.symbol, n.client_order_id) for n in unknown} == {(SYMBOL, "b1"), (SYMBOL, "b2"), (SYMBOL, "s1")}
    assert all(n.detail.startswith("not known at venue (-2013) while ack: 0 unreported fills") for n in unknown)
    assert reconciled.detail == ("3 open orders queried after the resubscription: 0 fills found, 3 unknown at "
                                 "venue, 0 open now")


async def test_a_fill_made_before_the_venue_forgot_the_order_is_reported_with_its_trade_id_first(
    sim: ExchangeSim,
) -> None:
    """While the user-data stream is down the resting buy partly fills, then the venue forgets it. After the
    reconnect that fill is reported from myTrades (the venue's trade id and commission), then CANCELED with
    what was filled: the position is the venue's balance change, nothing guessed."""
    before = base_held(sim)
    notes = NoteLog()
    async with gateway_on(sim, notes=notes.fanout()) as h:
        await h.send(h.route("b1", Side.BUY, "49990.00", "0.001"))
        await h.has("b1", S.ACK)
        outage = sim.faults.add({"kind": "user.drop", "for_s": 30})
        await notes.wait(NoteKind.USER_STREAM_DOWN)
        sim.set_quote(SYMBOL, "49989.00", "49990.00", ask_qty="0.0004")
        assert [o.client_order_id for o in sim.wipe_open_orders()] == ["b1"]
        sim.faults.remove(outage.id)  # the outage ends (the test does not wait out the window on the clock)
        await h.has("b1", S.CANCELED)
        reports = await h.finish()
    b1 = h.of("b1")
    assert [r.status for r in b1] == [S.ACK, S.PARTIALLY_FILLED, S.CANCELED]
    assert reported_fills(b1) == venue_fills(sim, b1[0].venue_order_id) and b1[1].fee > 0
    assert (b1[1].last_qty, b1[1].last_price, b1[1].reason) == (40, 4_999_000, "reconciled from myTrades")
    assert (b1[2].cum_qty, b1[2].reason) == (40, UNKNOWN_AT_VENUE_REASON)
    assert_consistent(reports, h.rules, base_held(sim) - before)
    assert h.gateway.counters()["unknown_at_venue"] == 1
    reconciled = await notes.wait(NoteKind.RECONCILED)
    assert reconciled[0].detail.startswith("1 open orders queried after the resubscription: 1 fills found, 1 unknown")
    (unknown,) = await notes.wait(NoteKind.UNKNOWN_AT_VENUE)
    assert unknown.detail == "not known at venue (-2013) while ack: 1 unreported fills in myTrades, ended canceled"


async def test_shutdown_after_a_wipe_ends_every_order_terminal(
    sim: ExchangeSim, caplog: pytest.LogCaptureFixture
) -> None:
    """No reconnect: the cancels at shutdown answer -2011, the queries -2013, and each order ends CANCELED with
    the reason (after its trades were read) instead of staying open: no "orders not terminal"."""
    notes = NoteLog()
    async with gateway_on(sim, notes=notes.fanout(), shutdown_timeout_s=5.0) as h:
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001"), h.route("s1", Side.SELL, "51000.00", "0.002"))
        await h.until("two ACKs", lambda rs: [r.status for r in rs].count(S.ACK) == 2)
        sim.wipe_open_orders()
        with caplog.at_level(logging.WARNING, logger="dma_bot.gateways.binance"):
            await h.finish()
    assert [r.status for r in h.of("b1")] == [S.ACK, S.CANCELED]
    assert [r.status for r in h.of("s1")] == [S.ACK, S.CANCELED]
    assert {r.reason for r in h.reports if r.status is S.CANCELED} == {UNKNOWN_AT_VENUE_REASON}
    assert h.gateway.open_orders == 0 and h.gateway.counters()["unknown_at_venue"] == 2
    assert h.gateway.subscriptions_ok == 1  # found by the cancels, not by a reconnect
    assert not [r for r in caplog.records if "not terminal" in r.getMessage()]
    assert [n.kind for n in await notes.rest()] == [NoteKind.UNKNOWN_AT_VENUE] * 2


# -- the user-data stream down -------------------------------------------------------------------------------


async def test_routes_while_the_user_data_stream_is_down_are_rejected_at_once_and_flow_again_after(
    sim: ExchangeSim,
) -> None:
    """user.drop with a window: every WebSocket API connection is cut, and so is each new one while it lasts.
    Routes in the outage come back REJECTED "venue unreachable" at once, none reached the venue; once the
    gateway is subscribed again a route fills as usual."""
    notes = NoteLog()
    async with gateway_on(sim, notes=notes.fanout()) as h:
        await h.ready()
        outage = sim.faults.add({"kind": "user.drop", "for_s": 30})
        await notes.wait(NoteKind.USER_STREAM_DOWN)
        await h.send(h.route("u1", Side.BUY, "50000.01", "0.001"), h.route("u2", Side.BUY, "49000.00", "0.001"))
        await h.until("two rejects", lambda rs: [r.status for r in rs].count(S.REJECTED) == 2)
        assert h.rest.posts == 0 and not h.gateway.stream.subscribed
        sim.faults.remove(outage.id)  # the window ends (the test does not wait it out on the clock)
        (up,) = await notes.wait(NoteKind.USER_STREAM_UP)
        await h.send(h.route("f1", Side.BUY, "50000.01", "0.001"))
        await h.has("f1", S.FILLED)
        await h.finish()
    for cid in ("u1", "u2"):
        (report,) = h.of(cid)
        assert report.status is S.REJECTED and UNREACHABLE.fullmatch(report.reason), report.reason
        assert sim.order(SYMBOL, client_order_id=cid) is None
    assert [r.status for r in h.of("f1")] == [S.ACK, S.FILLED] and h.of("f1")[-1].trade_id is not None
    assert h.rest.posts == 1 and h.gateway.counters()["unreachable_reject"] == 2
    assert re.fullmatch(r"user-data stream resubscribed after \d+ ms down; reconciling 0 open orders", up.detail)
    assert outage.fired >= 1


# -- maximum order age ---------------------------------------------------------------------------------------


class JumpClock:
    """The live clock, whose wall time jumps forward on demand (a venue that kept us waiting, unslept)."""

    def __init__(self) -> None:
        self._live = LiveClock()
        self.offset_ns = 0

    def time_ns(self) -> int:
        return self._live.time_ns() + self.offset_ns

    def monotonic_ns(self) -> int:
        return self._live.monotonic_ns() + self.offset_ns


async def test_a_route_older_than_the_maximum_age_is_rejected_locally_and_a_fresh_one_is_sent(
    sim: ExchangeSim,
) -> None:
    """Max age 2000 ms: a route whose signal is 10 s old is REJECTED "stale", counted, never POSTed."""
    clock = LiveClock()
    async with gateway_on(sim, clock=clock, max_order_age_ms=2_000) as h:
        await h.ready()
        now = clock.time_ns()
        await h.send(h.route("old", Side.BUY, "49000.00", "0.001")._replace(ts_signal_ns=now - 10_000 * MS),
                     h.route("new", Side.BUY, "49000.00", "0.001")._replace(ts_signal_ns=now))
        await h.has("old", S.REJECTED)
        await h.has("new", S.ACK)
        await h.finish()
    (old,) = h.of("old")
    assert re.fullmatch(r"stale: 1\d{4} ms since its signal, max 2000 ms", old.reason), old.reason
    assert sim.order(SYMBOL, client_order_id="old") is None and h.rest.posts == 1
    assert h.gateway.counters()["stale_route"] == 1


async def test_a_route_refused_with_429_is_not_sent_again_once_it_is_too_old(sim: ExchangeSim) -> None:
    """The POST is answered 429 after the clock moved 5 s: the resend would be a 5 s old price, so it is
    REJECTED "stale" at once (no wait for Retry-After), naming the refusal; the venue never sees the order."""
    clock = JumpClock()

    async def slow_rate_limited(forward: Forward) -> Any:
        clock.offset_ns += 5_000 * MS
        raise VenueError(-1015, "Too many new orders; current limit is 50 orders per 10 SECOND.", 429,
                         retry_after_s=0)

    async with gateway_on(sim, clock=clock, post_faults=[slow_rate_limited], max_order_age_ms=2_000) as h:
        await h.ready()
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001")._replace(ts_signal_ns=clock.time_ns()))
        await h.has("b1", S.REJECTED)
        await h.finish()
    (b1,) = h.of("b1")
    expected = (r"stale: 5\d{3} ms since its signal, max 2000 ms at its resend in 0\.\d{3}s; not sent again after "
                r"-1015 Too many new orders; current limit is 50 orders per 10 SECOND\.")
    assert re.fullmatch(expected, b1.reason), b1.reason
    assert h.rest.posts == 1 and sim.order(SYMBOL, client_order_id="b1") is None
    assert h.gateway.counters()["stale_route"] == 1 and h.gateway.retries_by_policy["order.send"] == 0


async def test_a_route_refused_with_1021_is_not_sent_again_after_the_clock_resync_once_too_old(
    sim: ExchangeSim,
) -> None:
    """-1021 after the clock moved 5 s: the clock is resynchronised, but by then the route is too old to send
    again: REJECTED "stale", naming the refusal; one POST only."""
    clock = JumpClock()

    async def slow_clock_skewed(forward: Forward) -> Any:
        clock.offset_ns += 5_000 * MS
        raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.", 400)

    async with gateway_on(sim, clock=clock, post_faults=[slow_clock_skewed], max_order_age_ms=2_000) as h:
        await h.ready()
        syncs = h.rest.clock_syncs
        await h.send(h.route("b1", Side.BUY, "49000.00", "0.001")._replace(ts_signal_ns=clock.time_ns()))
        await h.has("b1", S.REJECTED)
        await h.finish()
    (b1,) = h.of("b1")
    expected = (r"stale: 5\d{3} ms since its signal, max 2000 ms; not sent again after -1021 Timestamp for this "
                r"request is outside of the recvWindow\.")
    assert re.fullmatch(expected, b1.reason), b1.reason
    assert h.rest.posts == 1 and h.rest.clock_syncs == syncs + 1
    assert h.gateway.counters()["stale_route"] == 1 and h.gateway.retries_by_policy["order.send"] == 0


# -- a silent user-data stream -------------------------------------------------------------------------------


async def test_a_stream_silent_about_an_acknowledged_order_is_dropped_and_the_missed_fill_reconciled(
    sim: ExchangeSim,
) -> None:
    """The stream stays open but delivers nothing (user.silent): the buy fills at once, its ACK comes from the
    POST's answer and no event follows. After user_stream_silence_s the gateway drops the stream, resubscribes,
    and the order query and myTrades report the fill with its trade id and commission, long before any
    shutdown (without the watchdog nothing would until then)."""
    before = base_held(sim)
    notes = NoteLog()
    async with gateway_on(sim, notes=notes.fanout(), user_stream_silence_s=0.2) as h:
        silence = sim.faults.add({"kind": "user.silent", "for_s": 60})
        await h.send(h.route("b1", Side.BUY, "51000.00", "0.001"))
        await h.has("b1", S.FILLED)
        sim.faults.remove(silence.id)
        down = await notes.wait(NoteKind.USER_STREAM_DOWN)
        reconciled = await notes.wait(NoteKind.RECONCILED)
        assert h.gateway.counters()["silent_stream_drop"] == 1
        reports = await h.finish()
    b1 = h.of("b1")
    assert [r.status for r in b1] == [S.ACK, S.FILLED]
    assert reported_fills(b1) == venue_fills(sim, b1[0].venue_order_id) and b1[1].fee > 0
    assert b1[1].reason == "reconciled from myTrades"
    assert re.fullmatch(r"user-data stream lost: silent: nothing for \d+ ms, order b1 acknowledged \d+ ms ago and "
                        r"never told of \(BINANCE_USER_SILENCE_S 0\.2\)", down[0].detail), down[0].detail
    assert reconciled[0].detail.startswith("1 open orders queried after the resubscription: 1 fills found")
    assert_consistent(reports, h.rules, base_held(sim) - before)
    assert h.gateway.subscriptions_ok == 2
