"""gateways.binance_orders: the Binance gateway's pure decisions, on recorded payloads and seeded sequences."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from dma_bot.binance.codec import (
    OrderState,
    Trade,
    parse_cancel_response,
    parse_order_response,
    parse_query_order,
    parse_user_event,
)
from dma_bot.binance.filters import parse_exchange_info
from dma_bot.errors import ProtocolError
from dma_bot.gateways.binance_orders import (
    REASSIGNED_AT_VENUE_REASON,
    UNKNOWN_AT_VENUE_REASON,
    OrderTable,
    local_reject,
)
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Route
from dma_bot.positions.ledger import Ledger

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
SYMBOLS = {
    s: r.instrument for s, r in parse_exchange_info(json.loads((PAYLOADS / "exchange_info.json").read_text())).items()
}
BTC = SYMBOLS["BTCUSDT"]
VENUE = "BINANCE"
NOW = 1_760_000_001_000_000_000
CID = "r1a2b3c7-BINANCE"  # the order of execution_report_new/partially_filled/filled and query_order
S = ExecStatus


def route(cid: str = CID, side: Side = Side.BUY, price: int = 6_500_000, quantity: int = 300) -> Route:
    return Route(venue=VENUE, client_order_id=cid, parent_order_id="p", strategy="mr", symbol="BTCUSDT",
                 side=side, price=price, quantity=quantity, ts_signal_ns=0, ts_ns=0)


def event(name: str) -> ExecReport:
    report = parse_user_event((PAYLOADS / f"{name}.json").read_bytes(), VENUE, SYMBOLS, NOW)
    assert isinstance(report, ExecReport)
    return report


def body(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def subscribed_table(*routes: Route) -> OrderTable:
    table = OrderTable(VENUE)
    table.stream_subscribed()
    for r in routes or (route(),):
        table.register(r, BTC)
    return table


def rest_ack(r: Route | None = None) -> list[ExecReport]:
    return parse_order_response(body("order_response_ack"), VENUE, SYMBOLS, NOW, route=r or route())


def snapshot(executed: str, quote: str, status: str = "PARTIALLY_FILLED", cid: str = CID) -> OrderState:
    raw = body("query_order") | {"executedQty": executed, "cummulativeQuoteQty": quote, "status": status,
                                 "clientOrderId": cid}
    return parse_query_order(raw)


def statuses(reports: list[ExecReport]) -> list[ExecStatus]:
    return [r.status for r in reports]


# -- ACK -----------------------------------------------------------------------------------------------------


def test_ack_from_rest_first_is_emitted_once_and_the_stream_new_is_a_duplicate() -> None:
    """The REST ACK answers first: it is the ACK; the stream's NEW after it is dropped and counted."""
    table = subscribed_table()
    first = table.on_post_answered(CID, rest_ack())
    second = table.on_execution(event("execution_report_new"))
    assert statuses(first) == [S.ACK] and first[0].venue_order_id == "4293153"
    assert second == [] and table.stats.duplicate_acks == 1


def test_ack_from_stream_first_is_emitted_once_and_the_rest_ack_is_a_duplicate() -> None:
    """The stream's NEW wins the race: the REST ACK that follows is dropped."""
    table = subscribed_table()
    first = table.on_execution(event("execution_report_new"))
    second = table.on_post_answered(CID, rest_ack())
    assert statuses(first) == [S.ACK] and second == []
    assert table.stats.duplicate_acks == 1


def test_rest_ack_after_a_fill_is_dropped_not_an_illegal_transition() -> None:
    """A fill heard before the POST answered: the late ACK would be PARTIALLY_FILLED -> ACK, so it is dropped."""
    table = subscribed_table()
    table.on_execution(event("execution_report_partially_filled"))
    assert table.on_post_answered(CID, rest_ack()) == []
    assert table.stats.illegal_transitions == 0


# -- fills ---------------------------------------------------------------------------------------------------


def test_stream_fills_pass_through_with_last_qty_and_trade_ids_and_end_the_order() -> None:
    """Partial then full fill: reported as the venue said (l, L, z, t, n), and the order is no longer open."""
    table = subscribed_table()
    out = table.on_execution(event("execution_report_new"))
    out += table.on_execution(event("execution_report_partially_filled"))
    out += table.on_execution(event("execution_report_filled"))
    assert statuses(out) == [S.ACK, S.PARTIALLY_FILLED, S.FILLED]
    assert [(r.last_qty, r.cum_qty, r.trade_id) for r in out[1:]] == [(100, 100, "3001"), (200, 300, "3002")]
    assert out[2].last_price == 6_499_999 and out[2].fee == Decimal("0.00000200")
    assert table.open_count() == 0 and table.open_orders() == []


def test_repeated_trade_id_is_a_duplicate() -> None:
    """The same execution delivered twice is reported once."""
    table = subscribed_table()
    table.on_execution(event("execution_report_new"))
    fill = event("execution_report_partially_filled")
    assert len(table.on_execution(fill)) == 1
    assert table.on_execution(fill) == []
    assert table.stats.duplicate_trades == 1


def test_execution_after_terminal_is_late_and_dropped() -> None:
    """Nothing follows a terminal report (a fill after FILLED would be an illegal transition downstream)."""
    table = subscribed_table()
    for name in ("execution_report_new", "execution_report_partially_filled", "execution_report_filled"):
        table.on_execution(event(name))
    assert table.on_execution(event("execution_report_filled")._replace(trade_id="9999")) == []
    assert table.stats.late_executions == 1


def test_execution_for_a_client_id_we_never_sent_is_counted_and_ignored() -> None:
    """Another session on the account: its executions are not ours to report."""
    table = subscribed_table()
    assert table.on_execution(event("execution_report_new")._replace(client_order_id="someone-else")) == []
    assert table.stats.foreign_executions == 1


def test_cumulative_jump_on_the_stream_holds_the_fill_and_asks_for_a_full_query() -> None:
    """z - l above what we accounted for means fills were skipped: nothing is emitted, the order is queried."""
    table = subscribed_table()
    table.on_execution(event("execution_report_new"))
    out = table.on_execution(event("execution_report_filled"))  # z=300, l=200, but we heard 0
    assert out == [] and table.stats.cumulative_gaps == 1
    assert table.take_queries() == [("BTCUSDT", CID)] and table.take_queries() == []
    assert table.needs_full_sync(CID)


def test_illegal_transition_is_counted_and_never_emitted() -> None:
    """PARTIALLY_FILLED -> REJECTED is not in the table: the core refuses to emit it."""
    table = subscribed_table()
    table.on_post_answered(CID, rest_ack())
    table.on_execution(event("execution_report_partially_filled"))
    rejected = event("execution_report_new")._replace(status=S.REJECTED, cum_qty=100, leaves_qty=0)
    assert table.on_execution(rejected) == []
    assert table.stats.illegal_transitions == 1


# -- POST outcomes -------------------------------------------------------------------------------------------


def test_final_post_error_is_one_rejected_with_the_venues_code_and_message() -> None:
    """-2010 from the POST becomes the order's only report."""
    table = subscribed_table()
    out = table.on_post_rejected(CID, -2010, "Account has insufficient balance for requested action.", NOW)
    assert statuses(out) == [S.REJECTED]
    assert out[0].reason == "-2010 Account has insufficient balance for requested action."
    assert (out[0].side, out[0].order_qty, out[0].cum_qty) == (Side.BUY, 300, 0)
    assert table.open_count() == 0


def test_stream_rejected_during_the_post_is_reported_once_with_the_posts_answer() -> None:
    """The stream's REJECTED waits for the POST's -2010 so that exactly one REJECTED carries both reasons."""
    cid = "r1a2b3c9-BINANCE"
    table = subscribed_table(route(cid))
    held = table.on_execution(event("execution_report_rejected"))
    out = table.on_post_rejected(cid, -2010, "Account has insufficient balance for requested action.", NOW)
    assert held == [] and statuses(out) == [S.REJECTED]
    assert out[0].reason == "-2010 Account has insufficient balance for requested action. (INSUFFICIENT_BALANCES)"
    assert out[0].venue_order_id == "4293155"


def test_stream_rejected_then_unknown_post_outcome_reports_the_streams_reject() -> None:
    """The POST answer was lost, but the stream already said REJECTED: that is the answer, no query needed."""
    cid = "r1a2b3c9-BINANCE"
    table = subscribed_table(route(cid))
    table.on_execution(event("execution_report_rejected"))
    out = table.on_post_unknown(cid)
    assert statuses(out) == [S.REJECTED] and out[0].reason == "INSUFFICIENT_BALANCES"


def test_unknown_outcome_not_found_after_queries_is_rejected() -> None:
    """An order whose POST was lost and that the venue does not know never reached it."""
    table = subscribed_table()
    assert table.on_post_unknown(CID) == []
    assert table.retry_not_found(CID)
    out = table.on_not_found(CID, NOW)
    assert statuses(out) == [S.REJECTED] and out[0].reason == "unknown outcome: not found at venue"
    assert table.stats.not_found_rejects == 1 and not table.retry_not_found(CID)


def test_unknown_outcome_found_by_query_is_acked_and_the_stream_new_is_a_duplicate() -> None:
    """The query shows the order exists: ACK (once), and the stream fills it as usual."""
    table = subscribed_table()
    table.on_post_unknown(CID)
    out = table.on_order_state(snapshot("0.00000000", "0.00000000", "NEW"), NOW)
    out += table.on_execution(event("execution_report_new"))
    out += table.on_execution(event("execution_report_partially_filled"))
    assert statuses(out) == [S.ACK, S.PARTIALLY_FILLED]
    assert table.stats.reconciled_acks == 1 and table.stats.duplicate_acks == 1


def test_not_found_for_an_order_whose_post_is_in_flight_changes_nothing() -> None:
    """A reconciliation query can overtake our own POST: "does not exist" then means "not yet"."""
    table = subscribed_table()
    assert not table.retry_not_found(CID)
    assert table.on_not_found(CID, NOW) == []
    assert table.status(CID) is S.PENDING_NEW


def test_resubscription_while_the_post_was_in_flight_asks_for_a_query_after_the_answer() -> None:
    """Events between the POST and the new subscription may be lost: the answered order must be queried."""
    table = subscribed_table()
    table.stream_lost()
    assert table.stream_subscribed() == [("BTCUSDT", CID)]
    table.on_post_answered(CID, rest_ack())
    assert table.needs_query(CID)


def test_local_reject_is_a_rejected_report_that_names_the_filter() -> None:
    """A route refused before sending carries side, quantity and the local reason."""
    report = local_reject(route(), "local NOTIONAL: notional 0.5 is below minNotional 5", NOW)
    assert (report.status, report.side, report.order_qty, report.venue_order_id) == (S.REJECTED, Side.BUY, 300, "")
    assert report.reason.startswith("local NOTIONAL")


# -- snapshots and reconciliation ----------------------------------------------------------------------------


def test_reconciliation_after_a_gap_reports_the_missing_quantity_once() -> None:
    """Missed while disconnected: the query's executedQty becomes one fill (no trade id) priced by the quote;
    the stream's copy of that fill, if it still comes, is recognised by its cumulative quantity."""
    table = subscribed_table()
    table.on_post_answered(CID, rest_ack())
    table.stream_lost()
    assert table.stream_subscribed() == [("BTCUSDT", CID)]
    out = table.on_order_state(parse_query_order(body("query_order")), NOW)
    stale = table.on_execution(event("execution_report_partially_filled"))
    rest = table.on_execution(event("execution_report_filled"))
    assert statuses(out) == [S.PARTIALLY_FILLED]
    assert (out[0].last_qty, out[0].last_price, out[0].cum_qty, out[0].trade_id) == (100, 6_500_000, 100, None)
    assert out[0].reason.startswith("reconciled")
    assert stale == [] and table.stats.stale_fills == 1
    assert statuses(rest) == [S.FILLED] and rest[0].last_qty == 200


def trade(trade_id: int, qty: int, price: int = 6_500_000, order_id: str = "4293153") -> Trade:
    return Trade(symbol="BTCUSDT", trade_id=str(trade_id), venue_order_id=order_id, side=Side.BUY, price=price,
                 qty=qty, commission=Decimal("0.0000001") * qty, commission_asset="BTC", is_maker=True,
                 ts_event_ns=NOW - 1000)


def gapped_table() -> OrderTable:
    """Our order ACKed, its first fill (trade 3001, 100 steps) heard, then a reconnect."""
    table = subscribed_table()
    table.on_post_answered(CID, rest_ack())
    table.on_execution(event("execution_report_partially_filled"))
    table.stream_lost()
    table.stream_subscribed()
    return table


def test_wants_trades_only_when_a_full_snapshot_shows_unheard_quantity() -> None:
    """After a gap, executedQty above what we reported asks for myTrades; heard quantity or a live stream not."""
    table = gapped_table()
    continuous = subscribed_table()
    assert table.wants_trades(snapshot("0.00300000", "194.99998000", "FILLED"))
    assert not table.wants_trades(snapshot("0.00100000", "65.00000000"))
    assert not continuous.wants_trades(snapshot("0.00300000", "194.99998000", "FILLED"))
    assert continuous.wants_trades(snapshot("0.00300000", "194.99998000", "FILLED"), full=True)


def test_reconciliation_reports_each_missed_trade_with_its_id_and_commission_once() -> None:
    """myTrades lists the heard trade and two missed ones: only the missed ones are reported, each its own
    fill with the venue's id, price and commission; the stream's late copy is a duplicate trade."""
    table = gapped_table()
    trades = [trade(3003, 150, 6_499_999), trade(3001, 100), trade(3002, 50)]
    state = snapshot("0.00300000", "194.99998500", "FILLED")
    out = table.on_order_state(state, NOW, trades=trades)
    late = table.on_execution(event("execution_report_filled")._replace(trade_id="3003"))
    assert statuses(out) == [S.PARTIALLY_FILLED, S.FILLED]
    assert [(r.trade_id, r.last_qty, r.last_price, r.cum_qty, r.fee) for r in out] == [
        ("3002", 50, 6_500_000, 150, Decimal("0.0000050")), ("3003", 150, 6_499_999, 300, Decimal("0.0000150"))]
    assert out[1].leaves_qty == 0 and all(r.reason == "reconciled from myTrades" for r in out)
    assert (table.stats.reconciled_trades, table.stats.reconciled_fills) == (2, 0)
    assert late == [] and table.stats.late_executions == 1


def test_trade_newer_than_the_order_snapshot_is_reported_with_its_commission_not_hidden() -> None:
    """myTrades is read after the order query: the order traded in between, so a trade is newer than the
    snapshot's executedQty. It is still a fact: reported with its id and commission, the stream's copy is then a
    duplicate, and the next stream fill continues from it. (It used to be marked seen unreported: the stream's
    copy was refused and a later reconciliation reported its quantity id-less, without its commission.)"""
    table = gapped_table()
    trades = [trade(3001, 100), trade(3002, 50), trade(3003, 30)]  # 3003 came after the snapshot at 150

    out = table.on_order_state(snapshot("0.00150000", "97.50000000"), NOW, trades=trades)
    late = table.on_execution(event("execution_report_partially_filled")._replace(
        trade_id="3003", last_qty=30, cum_qty=180, leaves_qty=120))
    rest = table.on_execution(event("execution_report_filled")._replace(
        trade_id="3004", last_qty=120, cum_qty=300))

    assert [(r.trade_id, r.last_qty, r.cum_qty, r.fee) for r in out] == [
        ("3002", 50, 150, Decimal("0.0000050")), ("3003", 30, 180, Decimal("0.0000030"))]
    assert late == [] and table.stats.duplicate_trades == 1
    assert [(r.trade_id, r.last_qty, r.cum_qty, r.status) for r in rest] == [("3004", 120, 300, S.FILLED)]
    assert table.stats.reconciled_fills == 0 and table.stats.covered_trades == 0


def test_trade_beyond_the_order_quantity_is_not_reported_nor_marked_seen() -> None:
    """A myTrades entry that would overfill the order is a contradiction: counted, not reported."""
    table = gapped_table()
    trades = [trade(3001, 100), trade(3002, 150), trade(3003, 100)]

    out = table.on_order_state(snapshot("0.00250000", "162.50000000"), NOW, trades=trades)

    assert [(r.trade_id, r.last_qty) for r in out] == [("3002", 150)]
    assert table.stats.overfilling_trades == 1


def test_reconciliation_reports_what_my_trades_does_not_cover_without_a_trade_id() -> None:
    """myTrades lags executedQty: its trades are reported with ids, the rest as one id-less fill."""
    table = gapped_table()
    out = table.on_order_state(snapshot("0.00300000", "195.00000000", "FILLED"), NOW, trades=[trade(3002, 50)])
    assert [(r.trade_id, r.last_qty, r.status) for r in out] == [("3002", 50, S.PARTIALLY_FILLED),
                                                                  (None, 150, S.FILLED)]
    assert out[1].last_price == 6_500_000 and out[1].reason.startswith("reconciled from the order query")
    assert (table.stats.reconciled_trades, table.stats.reconciled_fills) == (1, 1)


def test_trade_already_reported_without_an_id_is_covered_not_reported_again() -> None:
    """A fill first reconciled id-less, then myTrades lists it and a newer one: the oldest unknown trade is
    the one already reported (covered), only the newer one becomes a fill."""
    table = gapped_table()
    first = table.on_order_state(snapshot("0.00200000", "130.00000000"), NOW)
    table.stream_lost()
    table.stream_subscribed()
    trades = [trade(3001, 100), trade(3002, 100), trade(3003, 100, 6_499_999)]
    out = table.on_order_state(snapshot("0.00300000", "194.99999000", "FILLED"), NOW, trades=trades)
    assert [(r.trade_id, r.last_qty) for r in first] == [(None, 100)]
    assert [(r.trade_id, r.last_qty, r.last_price, r.status) for r in out] == [("3003", 100, 6_499_999, S.FILLED)]
    assert (table.stats.covered_trades, table.stats.reconciled_trades, table.stats.reconciled_fills) == (1, 1, 1)


def test_trades_of_another_order_are_a_protocol_error_before_anything_changes() -> None:
    """A myTrades entry of another order is refused whole: nothing reported, the order still reconcilable."""
    table = gapped_table()
    state = snapshot("0.00300000", "195.00000000", "FILLED")
    with pytest.raises(ProtocolError, match="trade 9 of order 1"):
        table.on_order_state(state, NOW, trades=[trade(9, 200, order_id="1")])
    assert table.status(CID) is S.PARTIALLY_FILLED
    assert statuses(table.on_order_state(state, NOW)) == [S.FILLED]


def test_snapshot_while_the_stream_is_continuous_only_adds_the_ack() -> None:
    """No gap since the order was sent: fills are left to the stream (they carry trade ids and commission)."""
    table = subscribed_table()
    out = table.on_order_state(parse_query_order(body("query_order")), NOW)
    assert statuses(out) == [S.ACK]
    assert statuses(table.on_execution(event("execution_report_partially_filled"))) == [S.PARTIALLY_FILLED]


def test_cancel_response_with_every_fill_heard_is_the_canceled_report_and_the_stream_copy_is_late() -> None:
    """DELETE answered CANCELED and nothing is unheard: report it; the stream's CANCELED is then late."""
    cid = "r1a2b3c8-BINANCE"
    table = subscribed_table(route(cid, Side.SELL, 6_510_000))
    table.on_execution(event("execution_report_new")._replace(client_order_id=cid, side=Side.SELL))
    fill = event("execution_report_partially_filled")._replace(client_order_id=cid, side=Side.SELL,
                   last_price=6_510_000)
    table.on_execution(fill)
    out = table.on_order_state(parse_cancel_response(body("cancel_response")), NOW)
    late = table.on_execution(event("execution_report_canceled"))
    assert statuses(out) == [S.CANCELED] and out[0].cum_qty == 100
    assert late == [] and table.stats.late_executions == 1


def test_cancel_response_with_an_unheard_fill_waits_for_the_stream_unless_forced() -> None:
    """CANCELED with executedQty above what we heard: reporting it now would orphan the fill in flight."""
    cid = "r1a2b3c8-BINANCE"
    table = subscribed_table(route(cid, Side.SELL, 6_510_000))
    table.on_execution(event("execution_report_new")._replace(client_order_id=cid, side=Side.SELL))
    state = parse_cancel_response(body("cancel_response"))
    assert table.on_order_state(state, NOW) == []
    forced = table.on_order_state(state, NOW, full=True)
    assert statuses(forced) == [S.PARTIALLY_FILLED, S.CANCELED]
    assert (forced[0].last_qty, forced[0].last_price) == (100, 6_510_000)


def test_reconciled_fill_with_an_off_grid_average_is_rounded_and_says_so() -> None:
    """Two missed fills at 65000.00 and 65000.01 average off the tick: rounded half-even, counted, explained."""
    table = subscribed_table()
    table.on_post_answered(CID, rest_ack())
    table.stream_lost()
    table.stream_subscribed()
    out = table.on_order_state(snapshot("0.00200000", "130.00001000"), NOW)
    assert out[0].last_qty == 200 and out[0].last_price == 6_500_000
    assert table.stats.inexact_fill_prices == 1 and "rounded" in out[0].reason


def test_snapshot_older_than_what_was_reported_is_stale() -> None:
    """A query answered before a fill we already reported cannot move the order backwards."""
    table = subscribed_table()
    for name in ("execution_report_new", "execution_report_partially_filled"):
        table.on_execution(event(name))
    assert table.on_order_state(snapshot("0.00000000", "0.00000000", "NEW"), NOW, full=True) == []
    assert table.stats.stale_snapshots == 1


def test_snapshot_with_an_off_grid_quantity_is_a_protocol_error() -> None:
    """executedQty must be a whole number of steps: a fraction is never rounded into a fill."""
    table = subscribed_table()
    with pytest.raises(ProtocolError, match="executedQty"):
        table.on_order_state(snapshot("0.000001", "0.065"), NOW)


# -- an order the venue no longer knows ----------------------------------------------------------------------


def acked_table(*routes: Route) -> OrderTable:
    """Our order(s) ACKed by the POST's answer (venue order 4293153), the stream subscribed."""
    table = subscribed_table(*routes)
    for r in routes or (route(),):
        table.on_post_answered(r.client_order_id, rest_ack(r))
    return table


def test_an_acknowledged_order_not_found_is_canceled_with_the_reason_once_its_trades_are_read() -> None:
    """ACKed, then -2013: the shell must read myTrades (acknowledged_order_id says which order) and ask again
    first; with no trade the order ends CANCELED, nothing filled, the reason saying why, counted."""
    table = acked_table()
    assert table.acknowledged_order_id(CID) == "4293153" and table.retry_not_found(CID)
    out = table.on_not_found(CID, NOW, trades=[])
    assert statuses(out) == [S.CANCELED]
    assert (out[0].cum_qty, out[0].leaves_qty, out[0].last_qty, out[0].venue_order_id) == (0, 0, 0, "4293153")
    assert out[0].reason == UNKNOWN_AT_VENUE_REASON and out[0].ts_ns == NOW
    assert table.open_count() == 0 and table.stats.unknown_at_venue == 1
    assert table.acknowledged_order_id(CID) == "" and not table.retry_not_found(CID)
    assert table.on_not_found(CID, NOW, trades=[]) == []


def test_a_lost_order_reports_every_unreported_trade_with_its_id_and_commission_before_the_cancel() -> None:
    """Trade 3001 heard on the stream, 3002 made while we were not listening, then the venue lost the order:
    3002 becomes its own fill (id, price, commission), then CANCELED at 150 steps; the Ledger agrees."""
    table = acked_table()
    heard = table.on_execution(event("execution_report_partially_filled"))
    out = table.on_not_found(CID, NOW, trades=[trade(3002, 50, 6_499_999), trade(3001, 100)])
    assert statuses(out) == [S.PARTIALLY_FILLED, S.CANCELED]
    assert (out[0].trade_id, out[0].last_qty, out[0].last_price, out[0].cum_qty, out[0].fee, out[0].fee_asset) == (
        "3002", 50, 6_499_999, 150, Decimal("0.0000050"), "BTC")
    assert out[1].cum_qty == 150 and out[1].reason == UNKNOWN_AT_VENUE_REASON
    ledger = Ledger(SYMBOLS)
    for report in heard + out:
        ledger.apply(report)
    assert ledger.snapshot().positions[("BTCUSDT", VENUE)].traded_quantity == 150
    assert ledger.stats.illegal_transitions == 0 and table.stats.reconciled_trades == 1


def test_a_lost_order_whose_trades_fill_it_ends_filled_not_canceled() -> None:
    """The venue filled it before it forgot it: FILLED from myTrades, no CANCELED after."""
    table = acked_table()
    out = table.on_not_found(CID, NOW, trades=[trade(3001, 100), trade(3002, 200)])
    assert [(r.status, r.trade_id, r.cum_qty) for r in out] == [(S.PARTIALLY_FILLED, "3001", 100),
                                                                (S.FILLED, "3002", 300)]
    assert table.open_count() == 0 and table.stats.unknown_at_venue == 1


def test_a_lost_order_whose_trades_are_unknown_is_left_open_never_guessed() -> None:
    """myTrades did not answer: no fill and no cancel are invented; the next query with trades settles it."""
    table = acked_table()
    assert table.on_not_found(CID, NOW) == []
    assert table.status(CID) is S.ACK and table.open_count() == 1 and table.stats.missing_at_venue == 1
    assert statuses(table.on_not_found(CID, NOW, trades=[trade(3001, 100)])) == [S.PARTIALLY_FILLED, S.CANCELED]


def test_a_lost_orders_trade_of_another_order_is_a_protocol_error_before_anything_changes() -> None:
    table = acked_table()
    with pytest.raises(ProtocolError, match="trade 9 of order 1"):
        table.on_not_found(CID, NOW, trades=[trade(9, 100, order_id="1")])
    assert table.status(CID) is S.ACK and table.stats.unknown_at_venue == 0


def test_a_lost_orders_quantity_reported_without_trade_id_covers_its_oldest_trades() -> None:
    """100 steps were reconciled id-less after a gap; myTrades then shows that trade and one more: only
    the newer one is a fill, then the cancel."""
    table = gapped_table()
    table.on_order_state(snapshot("0.00200000", "130.00000000"), NOW)  # trade 3002 reported without its id
    out = table.on_not_found(CID, NOW, trades=[trade(3001, 100), trade(3002, 100), trade(3003, 50)])
    assert [(r.status, r.trade_id, r.last_qty, r.cum_qty) for r in out] == [(S.PARTIALLY_FILLED, "3003", 50, 250),
                                                                            (S.CANCELED, None, 0, 250)]
    assert table.stats.covered_trades == 1


def test_not_found_asks_again_only_for_orders_that_may_exist() -> None:
    """A POST in flight: "does not exist" means "not yet" (never asked again, nothing decided); an answered
    order the venue acknowledged may lag behind a query right after placing, so it is asked again."""
    table = subscribed_table(route("inflight"), route())
    table.on_post_answered(CID, rest_ack())
    assert not table.retry_not_found("inflight") and table.acknowledged_order_id("inflight") == ""
    assert table.on_not_found("inflight", NOW, trades=[]) == [] and table.status("inflight") is S.PENDING_NEW
    assert table.retry_not_found(CID) and table.acknowledged_order_id(CID) == "4293153"


# -- the table -----------------------------------------------------------------------------------------------


def test_register_twice_is_a_bug_upstream() -> None:
    """Client ids are unique per order: a repeat is a programming error, not a report."""
    table = subscribed_table()
    with pytest.raises(ValueError, match="unique"):
        table.register(route(), BTC)


def test_open_orders_are_counted_per_symbol_and_listed_oldest_first() -> None:
    """open_count feeds MAX_NUM_ORDERS; open_orders is what shutdown cancels and reconnects reconcile."""
    table = subscribed_table(route("a"), route("b"))
    table.on_post_rejected("a", -2010, "no", NOW)
    assert table.open_count("BTCUSDT") == 1 and table.open_count("ETHBTC") == 0
    assert table.open_orders() == [("BTCUSDT", "b")]


def test_finished_orders_are_forgotten_beyond_the_bound() -> None:
    """Memory is bounded: a long-finished order's late events count as foreign."""
    table = OrderTable(VENUE, max_finished_orders=1)
    table.stream_subscribed()
    for cid in ("a", "b"):
        table.register(route(cid), BTC)
        table.on_post_rejected(cid, -2010, "no", NOW)
    assert table.status("a") is None and table.status("b") is S.REJECTED


# -- seeded sequences ----------------------------------------------------------------------------------------


def _venue_fills(rng: random.Random, quantity: int) -> list[tuple[int, int]]:
    fills, left = [], quantity
    while left and rng.random() < 0.85:
        size = rng.randint(1, left)
        fills.append((size, 6_500_000 + rng.randint(-3, 3)))
        left -= size
    return fills


@pytest.mark.parametrize("seed", range(40))
def test_random_drops_duplicates_and_reconnects_keep_the_position_exact(seed: int) -> None:
    """Whatever the stream loses or repeats, the reports applied to a real Ledger give the venue's quantity,
    with no illegal transition and no duplicate trade id, and the order ends in the venue's final state."""
    rng = random.Random(seed)
    quantity = rng.randint(1, 500)
    table = subscribed_table(route(quantity=quantity))
    emitted = table.on_post_answered(CID, rest_ack())
    cum = quote = 0
    connected = True
    for trade, (size, price) in enumerate(_venue_fills(rng, quantity), start=1):
        cum += size
        quote += size * price
        status = S.FILLED if cum == quantity else S.PARTIALLY_FILLED
        fill = event("execution_report_partially_filled")._replace(status=status, order_qty=quantity, last_qty=size,
                       last_price=price, cum_qty=cum, leaves_qty=quantity - cum, trade_id=str(trade))
        if connected and rng.random() < 0.25:
            connected = False
            table.stream_lost()
        if connected:
            emitted += table.on_execution(fill)
            if rng.random() < 0.2:
                emitted += table.on_execution(fill)
        elif rng.random() < 0.5:
            connected = True
            table.stream_subscribed()
            state = snapshot(str(BTC.steps_to_qty(cum)), str(BTC.notional(1, 1) * quote), status.name)
            emitted += table.on_order_state(state, NOW)
            emitted += table.on_execution(fill)  # delivered again after the new subscription
    final = S.FILLED if cum == quantity else S.CANCELED
    last = snapshot(str(BTC.steps_to_qty(cum)), str(BTC.notional(1, 1) * quote), final.name)
    emitted += table.on_order_state(last, NOW, full=True)
    ledger = Ledger(SYMBOLS)
    for report in emitted:
        ledger.apply(report)
    trade_ids = [r.trade_id for r in emitted if r.trade_id is not None]
    assert sum(r.last_qty for r in emitted) == cum
    base_fees = sum((r.fee for r in emitted if r.last_qty and r.fee_asset == "BTC"), Decimal(0))
    if cum:
        position = ledger.snapshot().positions[("BTCUSDT", VENUE)]
        assert position.traded_quantity == cum
        assert position.holdings == BTC.steps_to_qty(cum) - base_fees  # net of commission taken in BTC
    assert ledger.stats.illegal_transitions == 0 and table.stats.illegal_transitions == 0
    assert len(trade_ids) == len(set(trade_ids))
    assert emitted[-1].status is final and table.open_count() == 0
    assert statuses(emitted).count(S.ACK) == 1


def test_a_lost_order_whose_order_id_names_another_order_now_is_canceled_with_what_was_reported() -> None:
    """A venue restarted from scratch reuses order ids: myTrades of our old orderId list another order's trades
    (refused as a contradiction), so the shell says ``reassigned``; the order ends CANCELED at the quantity
    reported before, with the reason naming the restart (the account check catches anything else)."""
    table = acked_table()
    table.on_execution(event("execution_report_partially_filled"))
    with pytest.raises(ProtocolError):
        table.on_not_found(CID, NOW, trades=[dataclasses.replace(trade(9, 50), side=Side.SELL)])

    out = table.on_not_found(CID, NOW, reassigned=True)

    assert [(r.status, r.cum_qty, r.last_qty, r.reason) for r in out] == [
        (S.CANCELED, 100, 0, REASSIGNED_AT_VENUE_REASON)]
    assert table.open_count() == 0 and table.stats.unknown_at_venue == 1


# -- a silent stream -----------------------------------------------------------------------------------------


def ack_of(cid: str) -> list[ExecReport]:
    raw = body("order_response_ack") | {"clientOrderId": cid}
    return parse_order_response(raw, VENUE, SYMBOLS, NOW, route=route(cid))


def test_an_order_acknowledged_over_rest_is_awaited_from_the_stream_until_it_tells_of_it() -> None:
    """The REST ACK starts the wait; the stream's NEW (or any event of the order) ends it."""
    table = subscribed_table(route("a"), route("b"))
    for cid, at in (("a", 5), ("b", 7)):
        table.on_post_answered(cid, ack_of(cid))
        table.awaiting_stream(cid, at)
    assert table.oldest_unheard() == ("a", 5)
    table.awaiting_stream("a", 9)  # asked again (a retry path): still waited for since the first answer
    assert table.oldest_unheard() == ("a", 5)
    table.stream_heard("a")
    assert table.oldest_unheard() == ("b", 7)
    table.stream_heard("b")
    assert table.oldest_unheard() is None


def test_an_order_the_stream_told_of_before_the_post_answered_is_not_awaited() -> None:
    """Binance's NEW often beats the POST's answer: nothing is left to wait for."""
    table = subscribed_table()
    table.stream_heard(CID)
    table.on_execution(event("execution_report_new"))
    table.on_post_answered(CID, rest_ack())
    table.awaiting_stream(CID, 5)
    assert table.oldest_unheard() is None


def test_terminal_orders_and_orders_sent_before_a_resubscription_are_not_awaited() -> None:
    """A terminal order needs no news; a resubscription queries every open order, so the wait starts over; an
    order acknowledged while the stream is lost is queried at the resubscription, not awaited."""
    table = subscribed_table(route("a"), route("b"), route("c"))
    for cid in ("a", "b"):
        table.on_post_answered(cid, ack_of(cid))
        table.awaiting_stream(cid, 1)
    table.on_post_rejected("a", -2010, "insufficient balance", NOW)  # terminal now (the wait entry is stale)
    assert table.oldest_unheard() == ("b", 1)
    table.stream_lost()
    table.on_post_answered("c", ack_of("c"))
    table.awaiting_stream("c", 2)
    assert table.oldest_unheard() == ("b", 1)
    table.stream_subscribed()
    assert table.oldest_unheard() is None


def test_the_stream_is_silent_about_an_order_once_both_its_ack_and_the_last_frame_are_that_old() -> None:
    """Silence is judged from the later of the order's acknowledgement and the last frame the stream gave."""
    table = subscribed_table()
    table.on_post_answered(CID, rest_ack())
    table.awaiting_stream(CID, 100)
    assert table.silent_about(now_ns=109, listening_since_ns=0, silence_ns=10) is None  # acknowledged 9 ago
    assert table.silent_about(now_ns=110, listening_since_ns=0, silence_ns=10) == (CID, 100)
    assert table.silent_about(now_ns=110, listening_since_ns=105, silence_ns=10) is None  # a frame 5 ago
    assert table.silent_about(now_ns=115, listening_since_ns=105, silence_ns=10) == (CID, 100)
    table.stream_heard(CID)
    assert table.silent_about(now_ns=1_000, listening_since_ns=0, silence_ns=10) is None
