"""The Binance gateway's pure core: one table of our orders and every decision about what to report.

It owns, per client order id, what we have reported (status, cumulative quantity and quote, whether the
ACK went out, the trade ids seen, the venue's last event time), how the POST ended (in flight, answered,
unknown outcome), and the user-data stream's subscription epoch. From the facts the shell hands it (the
REST answer to our POST, an ``executionReport``, a ``GET``/``DELETE /api/v3/order`` snapshot, a query that
found nothing) it returns the :class:`ExecReport` s to emit, in order, and never an illegal transition:

* ACK exactly once, from whichever of the REST answer, the stream's NEW or a query says so first.
* A fill is emitted once: a repeated trade id, or a cumulative quantity ``z`` we already accounted for
  (a fill that reconciliation reported first), is a duplicate and counted.
* While the stream has been subscribed since we last synchronised an order, the stream is trusted and a
  snapshot only adds what the stream cannot (the ACK, a terminal state with nothing unheard); after a
  gap (a reconnect, a cumulative jump), a snapshot is applied in full: when it shows quantity we did not
  hear (:meth:`OrderTable.wants_trades`), the shell fetches the order's ``myTrades`` and each trade whose
  id we have not reported becomes its own fill, with the venue's trade id, price and commission; only the
  quantity those trades do not cover (or all of it, when ``myTrades`` failed) becomes one fill without
  trade id (priced by the missing quote over the missing quantity, commission unknown and reported as
  0). Then the terminal state.
* An order the venue acknowledged and then no longer knows (a query answers -2013 "Order does not exist",
  also after a cancel answered -2011: the venue restarted or lost it) is settled rather than left open
  forever: the shell reads its ``myTrades`` first, each trade not yet reported becomes its fill (with trade
  id and commission), and the order ends CANCELED with :data:`UNKNOWN_AT_VENUE_REASON`. Without the trade
  list nothing is guessed: the order stays open, counted, for the next query to settle.

It does no I/O, reads no clock (``now_ns`` comes in) and knows no asyncio: the shell in
:mod:`dma_bot.gateways.binance` does the requests and the waiting. Executions for client ids it never
registered are counted and ignored (other sessions on the account).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum
from typing import Final

from dma_bot.binance.codec import OrderState, Trade
from dma_bot.errors import ProtocolError
from dma_bot.gateways.base import local_reject
from dma_bot.model.enums import ExecStatus, Side, is_legal_transition
from dma_bot.model.events import ExecReport, Route
from dma_bot.model.instrument import Instrument

__all__ = [
    "DEFAULT_MAX_FINISHED_ORDERS",
    "REASSIGNED_AT_VENUE_REASON",
    "UNKNOWN_AT_VENUE_REASON",
    "OrderTable",
    "OrderTableStats",
    "PostState",
    "local_reject",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_FINISHED_ORDERS: Final = 65_536
_EXACT: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
_ZERO: Final = Decimal(0)
_PENDING_NEW: Final = ExecStatus.PENDING_NEW
_ACK: Final = ExecStatus.ACK
_PARTIAL: Final = ExecStatus.PARTIALLY_FILLED
_FILLED: Final = ExecStatus.FILLED
_REJECTED: Final = ExecStatus.REJECTED
_CANCELED: Final = ExecStatus.CANCELED
_NEVER_SYNCED: Final = -1
UNKNOWN_AT_VENUE_REASON: Final = "not known at venue (-2013): reconciled as canceled; filled quantity per myTrades"
REASSIGNED_AT_VENUE_REASON: Final = (
    "not known at venue (-2013) and its orderId now names another order (the venue restarted): reconciled as "
    "canceled with the fills reported before; any difference shows as position drift"
)
"""The reason of the CANCELED that ends an order the venue acknowledged and then no longer knew."""


class PostState(StrEnum):
    """How our ``POST /api/v3/order`` ended."""

    IN_FLIGHT = "in_flight"
    ANSWERED = "answered"  # 2xx, or a final error
    UNKNOWN = "unknown"  # 5xx, timeout, transport error: the order may or may not exist


@dataclass(slots=True)
class OrderTableStats:
    """What the core refused or repaired, for metrics and tests (each a count of events)."""

    duplicate_acks: int = 0
    duplicate_trades: int = 0
    stale_fills: int = 0  # a stream fill whose quantity reconciliation had already reported
    overlapping_fills: int = 0  # a stream fill partly covered by reconciliation (trimmed)
    late_executions: int = 0  # for an order we already reported terminal
    foreign_executions: int = 0  # for a client id we never sent (or forgot long ago)
    ignored_executions: int = 0  # neither ACK, fill nor terminal (an amendment)
    cumulative_gaps: int = 0  # the stream skipped quantity: the order is queried in full
    stale_snapshots: int = 0  # a query older than what we already reported
    reconciled_acks: int = 0
    reconciled_fills: int = 0  # fills without trade id, from executedQty (myTrades failed or fell short)
    reconciled_trades: int = 0  # fills with trade id and commission, from myTrades
    covered_trades: int = 0  # myTrades entries whose quantity was already reported without a trade id
    overfilling_trades: int = 0  # myTrades entries beyond the order's quantity (a contradiction: not reported)
    reconciled_terminals: int = 0
    inexact_fill_prices: int = 0  # a reconciled fill whose average price is off the tick grid (rounded)
    not_found_rejects: int = 0
    unknown_at_venue: int = 0  # an acknowledged order the venue no longer knows: its trades reported, then CANCELED
    missing_at_venue: int = 0  # such an order whose trades could not be read: left open (never guessed)
    illegal_transitions: int = 0


class _Order:
    __slots__ = (
        "deferred_reject",
        "filled",
        "filled_quote",
        "heard",
        "instrument",
        "last_event_ns",
        "post",
        "route",
        "status",
        "sync_epoch",
        "trade_ids",
        "unidentified",
        "venue_order_id",
    )

    def __init__(self, route: Route, instrument: Instrument, epoch: int) -> None:
        self.route = route
        self.instrument = instrument
        self.status = _PENDING_NEW
        self.post = PostState.IN_FLIGHT
        self.venue_order_id = ""
        self.filled = 0  # sum of the last_qty we reported: the venue's cumulative quantity accounted for (steps)
        self.filled_quote = 0  # sum of last_qty * last_price we reported (tick*step units)
        self.trade_ids: set[str] = set()
        self.unidentified = 0  # steps reported without a trade id and not yet matched to a myTrades entry
        self.last_event_ns = 0
        self.sync_epoch = epoch  # the stream epoch since which we have heard everything about it
        self.deferred_reject: ExecReport | None = None
        self.heard = False  # the user-data stream told of it (any event, in any epoch)


class OrderTable:
    """Our orders on one venue, keyed by client order id, and the reporting decisions about them."""

    __slots__ = ("_connected", "_epoch", "_finished", "_max_finished", "_open_by_symbol", "_orders", "_queries",
                 "_unheard", "stats", "venue")

    def __init__(self, venue: str, *, max_finished_orders: int = DEFAULT_MAX_FINISHED_ORDERS) -> None:
        if max_finished_orders <= 0:
            raise ValueError(f"max_finished_orders: a positive count, was {max_finished_orders}")
        self.venue = venue
        self.stats = OrderTableStats()
        self._orders: dict[str, _Order] = {}
        self._finished: deque[str] = deque()
        self._max_finished = max_finished_orders
        self._open_by_symbol: dict[str, int] = {}
        self._queries: dict[str, None] = {}
        self._unheard: dict[str, int] = {}  # acknowledged over REST, not yet told of by the stream: since when
        self._epoch = 0
        self._connected = False

    # -- the stream ---------------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """How many times the user-data stream has been subscribed."""
        return self._epoch

    def stream_subscribed(self) -> list[tuple[str, str]]:
        """A (re)subscription happened: start a new epoch; returns the open orders to reconcile."""
        self._epoch += 1
        self._connected = True
        self._unheard.clear()  # the reconciliation queries every open order
        return self.open_orders()

    def stream_lost(self) -> None:
        """The subscription ended: events are being missed from now on."""
        self._connected = False

    def awaiting_stream(self, client_order_id: str, now_ns: int) -> None:
        """The venue answered the order's POST at ``now_ns`` (monotonic): the stream should tell of it soon. An
        order it already told of, a terminal one, and one the stream was not subscribed for all along (it is
        queried instead) are not waited for."""
        order = self._orders.get(client_order_id)
        if (order is None or order.heard or order.status.is_terminal or not self._connected
                or order.sync_epoch != self._epoch):
            return
        self._unheard.setdefault(client_order_id, now_ns)

    def stream_heard(self, client_order_id: str) -> None:
        """The user-data stream delivered an event about the order (call it before :meth:`on_execution`)."""
        order = self._orders.get(client_order_id)
        if order is not None:
            order.heard = True
        self._unheard.pop(client_order_id, None)

    def oldest_unheard(self) -> tuple[str, int] | None:
        """``(client_order_id, since_ns)`` of the open order acknowledged longest ago over REST that the stream
        has not told of, or None. A stream that stays silent about it is broken (Binance sends the order's NEW
        within milliseconds of accepting it): the shell drops and resubscribes it."""
        unheard = self._unheard
        for cid, since_ns in list(unheard.items()):
            order = self._orders.get(cid)
            if order is None or order.status.is_terminal:  # (a heard order left the dict in stream_heard)
                del unheard[cid]
                continue
            return cid, since_ns
        return None

    def silent_about(self, now_ns: int, listening_since_ns: int, silence_ns: int) -> tuple[str, int] | None:
        """``(client_order_id, since_ns)`` of :meth:`oldest_unheard` when the stream is silent about it: nothing
        came on the stream since ``listening_since_ns`` (monotonic, while we listened) and neither that nor the
        order's acknowledgement is less than ``silence_ns`` before ``now_ns``; else None."""
        oldest = self.oldest_unheard()
        if oldest is None or now_ns - max(oldest[1], listening_since_ns) < silence_ns:
            return None
        return oldest

    # -- our orders ---------------------------------------------------------------------------------------
    def register(self, route: Route, instrument: Instrument) -> None:
        """Record ``route`` just before its POST is sent; a client id still in the table is a bug upstream."""
        cid = route.client_order_id
        if cid in self._orders:
            raise ValueError(f"client_order_id: unique per order, was {cid!r} twice")
        if route.venue != self.venue or route.symbol != instrument.symbol:
            raise ValueError(f"route {cid}: venue {self.venue} and symbol {instrument.symbol}, was {route.venue} "
                             f"{route.symbol}")
        self._orders[cid] = _Order(route, instrument, self._epoch if self._connected else _NEVER_SYNCED)
        self._open_by_symbol[route.symbol] = self._open_by_symbol.get(route.symbol, 0) + 1

    def open_count(self, symbol: str | None = None) -> int:
        """Orders not yet reported terminal (of ``symbol``, or in total)."""
        if symbol is None:
            return sum(self._open_by_symbol.values())
        return self._open_by_symbol.get(symbol, 0)

    def open_orders(self) -> list[tuple[str, str]]:
        """``(symbol, client_order_id)`` of every order not yet reported terminal, oldest first."""
        return [(o.route.symbol, cid) for cid, o in self._orders.items() if not o.status.is_terminal]

    def status(self, client_order_id: str) -> ExecStatus | None:
        order = self._orders.get(client_order_id)
        return None if order is None else order.status

    def last_event_ns(self, client_order_id: str) -> int | None:
        """Venue time of the newest event or snapshot seen for the order (0 before any)."""
        order = self._orders.get(client_order_id)
        return None if order is None else order.last_event_ns

    def needs_full_sync(self, client_order_id: str) -> bool:
        """True when events about the order may have been missed: a snapshot of it must be applied in full."""
        order = self._orders[client_order_id]
        return not self._connected or order.sync_epoch != self._epoch

    def needs_query(self, client_order_id: str) -> bool:
        """After the POST answered: query now, because the stream was resubscribed while it was in flight."""
        order = self._orders[client_order_id]
        return self._connected and not order.status.is_terminal and order.sync_epoch != self._epoch

    def retry_not_found(self, client_order_id: str) -> bool:
        """Whether "order does not exist" is worth asking again: for a POST of unknown outcome, and for an
        order the venue acknowledged (a query right after the placement can lag behind the matching engine:
        it is settled as lost only when asking again keeps finding nothing). Never for a POST in flight."""
        order = self._orders.get(client_order_id)
        if order is None or order.status.is_terminal:
            return False
        return (order.post is PostState.UNKNOWN and order.status is _PENDING_NEW) or order.status is not _PENDING_NEW

    def acknowledged_order_id(self, client_order_id: str) -> str:
        """The venue's order id of an open order the venue acknowledged, else "".

        For such an order "does not exist" means the venue lost it (a restart, a wipe): before
        :meth:`on_not_found` settles it, the shell reads that order id's ``myTrades``."""
        order = self._orders.get(client_order_id)
        if order is None or order.status.is_terminal or order.status is _PENDING_NEW:
            return ""
        return order.venue_order_id

    def take_queries(self) -> list[tuple[str, str]]:
        """Orders the stream showed a gap for, to be queried (each once)."""
        if not self._queries:
            return []
        wanted = [(self._orders[cid].route.symbol, cid) for cid in self._queries if cid in self._orders]
        self._queries.clear()
        return wanted

    # -- the POST -----------------------------------------------------------------------------------------
    def on_post_answered(self, client_order_id: str, reports: list[ExecReport]) -> list[ExecReport]:
        """The POST's 2xx answer, parsed (an ACK body gives one ACK report)."""
        order = self._orders[client_order_id]
        order.post = PostState.ANSWERED
        out: list[ExecReport] = []
        if order.deferred_reject is not None:
            self._advance(order, order.deferred_reject, out)
            return out
        for report in reports:
            out += self.on_execution(report)
        return out

    def on_post_rejected(self, client_order_id: str, code: int | None, message: str, now_ns: int) -> list[ExecReport]:
        """A final refusal of the POST: one REJECTED with the venue's code and message."""
        order = self._orders[client_order_id]
        order.post = PostState.ANSWERED
        if order.status.is_terminal:
            return []
        reason = f"{code} {message}" if code is not None else message
        deferred = order.deferred_reject
        if deferred is not None:
            report = deferred._replace(reason=f"{reason} ({deferred.reason})" if deferred.reason else reason)
        else:
            report = local_reject(order.route, reason, now_ns)._replace(venue_order_id=order.venue_order_id)
        out: list[ExecReport] = []
        self._advance(order, report, out)
        return out

    def on_post_unknown(self, client_order_id: str) -> list[ExecReport]:
        """The POST may or may not have reached the venue: query it, never resend it.

        If the stream already said REJECTED while the POST was in flight, that is the answer."""
        order = self._orders[client_order_id]
        out: list[ExecReport] = []
        if order.deferred_reject is not None:
            order.post = PostState.ANSWERED
            self._advance(order, order.deferred_reject, out)
        else:
            order.post = PostState.UNKNOWN
        return out

    def on_not_found(
        self, client_order_id: str, now_ns: int, *, trades: Sequence[Trade] | None = None, reassigned: bool = False
    ) -> list[ExecReport]:
        """Queries found no such order (-2013, also after a cancel answered -2011).

        For a POST of unknown outcome that means it never arrived: REJECTED. For an order the venue had
        acknowledged (:meth:`acknowledged_order_id`), the venue lost it: ``trades`` is that order's
        ``myTrades``; each trade not yet reported becomes its fill (trade id, price, commission), and unless
        they fill it, the order ends CANCELED with :data:`UNKNOWN_AT_VENUE_REASON`, its cumulative quantity
        what was reported. Without ``trades`` (myTrades failed) nothing is guessed: the order stays open,
        counted in ``missing_at_venue``. A trade of another order or side is a ProtocolError raised before
        anything changes; ``reassigned`` says the caller found that the venue's orderId now names another
        order (its myTrades contradict ours: a venue restarted from scratch): the venue has no trade of this
        order to tell, and it ends CANCELED with :data:`REASSIGNED_AT_VENUE_REASON` (the account check
        catches a fill the dead venue made and never reported). For a POST still in flight, "does not exist"
        means "not yet": nothing."""
        order = self._orders.get(client_order_id)
        if order is None or order.status.is_terminal:
            return []
        out: list[ExecReport] = []
        if order.post is PostState.UNKNOWN and order.status is _PENDING_NEW:
            self.stats.not_found_rejects += 1
            self._advance(order, local_reject(order.route, "unknown outcome: not found at venue", now_ns), out)
        elif order.status is not _PENDING_NEW:
            if reassigned:
                self.stats.unknown_at_venue += 1
                self._advance(order, self._lost_report(order, now_ns, REASSIGNED_AT_VENUE_REASON), out)
                return out
            if trades is None:
                self.stats.missing_at_venue += 1
                _log.warning("order %s: the venue does not know it (status %s) and its trades are unknown: left "
                             "open", client_order_id, order.status)
                return out
            route = order.route
            _check_trades(client_order_id, order.venue_order_id, route.symbol, route.side, trades)
            self.stats.unknown_at_venue += 1
            self._trade_fills(order, order.venue_order_id, trades, now_ns, out)
            if not order.status.is_terminal:
                self._advance(order, self._lost_report(order, now_ns, UNKNOWN_AT_VENUE_REASON), out)
        elif order.post is PostState.ANSWERED:
            self.stats.missing_at_venue += 1
            _log.warning("order %s: the venue does not find it (status %s)", client_order_id, order.status)
        return out

    def _lost_report(self, order: _Order, now_ns: int, reason: str) -> ExecReport:
        return self._order_report(order, _CANCELED, order.filled, order.venue_order_id, now_ns, now_ns, reason)

    # -- the stream's executionReports ------------------------------------------------------------------
    def on_execution(self, report: ExecReport) -> list[ExecReport]:
        """One ``executionReport`` (or a REST report): what to emit, usually the report itself or nothing."""
        order = self._orders.get(report.client_order_id)
        if order is None or order.route.symbol != report.symbol:
            self.stats.foreign_executions += 1
            return []
        if report.ts_event_ns > order.last_event_ns:
            order.last_event_ns = report.ts_event_ns
        if report.venue_order_id and not order.venue_order_id:
            order.venue_order_id = report.venue_order_id
        if order.status.is_terminal:
            self.stats.late_executions += 1
            if report.last_qty > 0 and report.cum_qty > order.filled:
                _log.warning("order %s: a fill (trade %s, cumulative %d steps) beyond the %d reported before it "
                             "was reported %s: not reported", report.client_order_id, report.trade_id,
                             report.cum_qty, order.filled, order.status)
            return []
        out: list[ExecReport] = []
        status = report.status
        if report.last_qty > 0:
            self._fill(order, report, out)
        elif status is _ACK:
            if order.status is _PENDING_NEW:
                self._advance(order, report, out)
            else:
                self.stats.duplicate_acks += 1
        elif status.is_terminal:
            if status is _REJECTED and order.post is PostState.IN_FLIGHT and order.status is _PENDING_NEW:
                order.deferred_reject = report  # reported with the POST's own answer, once
            elif report.cum_qty > order.filled:
                self._gap(order)
            else:
                self._advance(order, report, out)
        else:
            self.stats.ignored_executions += 1
        return out

    def _fill(self, order: _Order, report: ExecReport, out: list[ExecReport]) -> None:
        trade_id = report.trade_id
        if trade_id is not None and trade_id in order.trade_ids:
            self.stats.duplicate_trades += 1
            return
        if report.cum_qty <= order.filled:
            self.stats.stale_fills += 1
            if trade_id is not None:
                order.trade_ids.add(trade_id)
                order.unidentified = max(0, order.unidentified - report.last_qty)
            if report.status.is_terminal and report.status is not _FILLED:
                zero = {"last_qty": 0, "last_price": 0, "fee": _ZERO, "fee_asset": "", "trade_id": None}
                self._advance(order, report._replace(**zero), out)
            return
        before = report.cum_qty - report.last_qty
        if before > order.filled:
            self._gap(order)
            return
        if before < order.filled:
            self.stats.overlapping_fills += 1
            report = report._replace(last_qty=report.cum_qty - order.filled)
        if trade_id is not None:
            order.trade_ids.add(trade_id)
        self._advance(order, report, out)

    def _gap(self, order: _Order) -> None:
        """The stream skipped quantity: hold what it says and have the order queried in full."""
        self.stats.cumulative_gaps += 1
        order.sync_epoch = _NEVER_SYNCED
        self._queries[order.route.client_order_id] = None

    # -- snapshots (GET /api/v3/order, DELETE /api/v3/order) --------------------------------------------
    def wants_trades(self, state: OrderState, *, full: bool | None = None) -> bool:
        """Whether :meth:`on_order_state` would report unheard quantity: fetch the order's myTrades first."""
        order = self._orders.get(state.client_order_id)
        if order is None or order.route.symbol != state.symbol or order.status.is_terminal:
            return False
        if full is None:
            full = self.needs_full_sync(state.client_order_id)
        try:
            return full and _steps(order.instrument, state.executed_qty, state.client_order_id) > order.filled
        except ProtocolError:
            return False

    def on_order_state(
        self, state: OrderState, now_ns: int, *, full: bool | None = None, trades: Sequence[Trade] | None = None
    ) -> list[ExecReport]:
        """A venue snapshot of one of our orders -> the transitions we have not reported yet.

        ``full`` None decides by epoch (:meth:`needs_full_sync`); True applies it in full whatever the
        stream did (the shutdown's last word). ``trades``: the order's ``myTrades``, when fetched; a trade
        of another order or side is a ProtocolError raised before anything changes."""
        order = self._orders.get(state.client_order_id)
        if order is None or order.route.symbol != state.symbol:
            self.stats.foreign_executions += 1
            return []
        if order.status.is_terminal:
            return []
        if full is None:
            full = self.needs_full_sync(state.client_order_id)
        if state.side is not order.route.side:
            raise ProtocolError(f"order {state.client_order_id}: side {order.route.side}, was {state.side}")
        executed = _steps(order.instrument, state.executed_qty, state.client_order_id)
        _check_trades(state.client_order_id, state.venue_order_id, state.symbol, state.side, trades or ())
        if state.ts_event_ns > order.last_event_ns:
            order.last_event_ns = state.ts_event_ns
        if not order.venue_order_id:
            order.venue_order_id = state.venue_order_id
        out: list[ExecReport] = []
        reconciled = f"reconciled: venue status {state.venue_status}"
        if order.status is _PENDING_NEW:
            if state.status is _REJECTED:
                self._advance(order, self._snapshot_report(order, state, _REJECTED, executed, now_ns, reconciled), out)
                return out
            self.stats.reconciled_acks += 1
            self._advance(order, self._snapshot_report(order, state, _ACK, 0, now_ns, reconciled), out)
        if executed < order.filled:
            self.stats.stale_snapshots += 1
            return out
        if full:
            if executed > order.filled and trades:
                self._trade_fills(order, state.venue_order_id, trades, now_ns, out)
            if executed > order.filled and not order.status.is_terminal:
                self._reconciled_fill(order, state, executed, now_ns, out)
            if state.status.is_terminal and not order.status.is_terminal:
                self.stats.reconciled_terminals += 1
                terminal = self._snapshot_report(order, state, state.status, executed, now_ns, reconciled)
                self._advance(order, terminal, out)
            if self._connected:
                order.sync_epoch = self._epoch
                self._queries.pop(state.client_order_id, None)
        elif state.status.is_terminal and executed == order.filled:
            self._advance(order, self._snapshot_report(order, state, state.status, executed, now_ns), out)
        return out

    def _snapshot_report(
        self, order: _Order, state: OrderState, status: ExecStatus, cum_qty: int, now_ns: int, reason: str = ""
    ) -> ExecReport:
        return self._order_report(order, status, cum_qty, state.venue_order_id, state.ts_event_ns, now_ns, reason)

    def _order_report(
        self,
        order: _Order,
        status: ExecStatus,
        cum_qty: int,
        venue_order_id: str,
        ts_event_ns: int,
        now_ns: int,
        reason: str,
    ) -> ExecReport:
        """A report of ``order`` reaching ``status`` at ``cum_qty`` with no fill of its own."""
        route = order.route
        return ExecReport(
            venue=self.venue,
            symbol=route.symbol,
            client_order_id=route.client_order_id,
            venue_order_id=venue_order_id,
            side=route.side,
            status=status,
            order_qty=route.quantity,
            last_qty=0,
            last_price=0,
            cum_qty=cum_qty,
            leaves_qty=0 if status.is_terminal else route.quantity - cum_qty,
            fee=_ZERO,
            fee_asset="",
            trade_id=None,
            reason=reason,
            ts_event_ns=ts_event_ns,
            ts_ns=now_ns,
        )

    def _trade_fills(
        self, order: _Order, venue_order_id: str, trades: Sequence[Trade], now_ns: int, out: list[ExecReport]
    ) -> None:
        """One fill per trade of the order we have not reported, oldest first.

        Quantity we reported without a trade id (an earlier fallback) covers the oldest unknown trades:
        those are marked seen, never reported again. A trade is a fact even when it is newer than the
        snapshot's ``executed`` (myTrades is read after the order query, and the order may have traded in
        between): it is reported with its id and commission, and the stream's copy is then a duplicate.
        Marking such a trade seen without reporting it would lose its commission: the stream's copy would be
        refused as a duplicate and its quantity reported later id-less. A trade beyond the order's quantity is
        a contradiction: left unreported, never marked seen."""
        route = order.route
        for trade in sorted(trades, key=lambda t: int(t.trade_id)):
            if trade.trade_id in order.trade_ids:
                continue
            if order.unidentified > 0 or order.status.is_terminal:
                order.unidentified = max(0, order.unidentified - trade.qty)
                self.stats.covered_trades += 1
                order.trade_ids.add(trade.trade_id)
                continue
            if order.filled + trade.qty > route.quantity:
                self.stats.overfilling_trades += 1
                _log.warning("order %s: myTrades trade %s of %d steps would fill %d of %d: not reported",
                             route.client_order_id, trade.trade_id, trade.qty, order.filled + trade.qty,
                             route.quantity)
                break
            cum = order.filled + trade.qty
            status = _FILLED if cum == route.quantity else _PARTIAL
            report = ExecReport(
                venue=self.venue,
                symbol=route.symbol,
                client_order_id=route.client_order_id,
                venue_order_id=venue_order_id,
                side=route.side,
                status=status,
                order_qty=route.quantity,
                last_qty=trade.qty,
                last_price=trade.price,
                cum_qty=cum,
                leaves_qty=route.quantity - cum if status is _PARTIAL else 0,
                fee=trade.commission,
                fee_asset=trade.commission_asset,
                trade_id=trade.trade_id,
                reason="reconciled from myTrades",
                ts_event_ns=trade.ts_event_ns,
                ts_ns=now_ns,
            )
            order.trade_ids.add(trade.trade_id)
            self.stats.reconciled_trades += 1
            self._advance(order, report, out)

    def _reconciled_fill(
        self, order: _Order, state: OrderState, executed: int, now_ns: int, out: list[ExecReport]
    ) -> None:
        """One fill for the quantity the stream never told us about, priced by the missing quote."""
        instrument = order.instrument
        missing = executed - order.filled
        unit = _EXACT.multiply(instrument.tick_size, instrument.step_size)
        missing_units = _EXACT.subtract(_EXACT.divide(state.cum_quote_qty, unit), Decimal(order.filled_quote))
        average = _EXACT.divide(missing_units, Decimal(missing))
        reason = "reconciled from the order query: no trade id, commission unknown"
        price = int(average.to_integral_value(rounding=ROUND_HALF_EVEN))
        if price <= 0:
            price = order.route.price
            reason += f"; no quote amount, priced at the limit {instrument.format_price(price)}"
        elif average != price:
            self.stats.inexact_fill_prices += 1
            reason += f"; average price {_EXACT.multiply(average, instrument.tick_size)} rounded to the tick"
        status = _FILLED if executed == order.route.quantity else _PARTIAL
        self.stats.reconciled_fills += 1
        report = self._snapshot_report(order, state, status, executed, now_ns)._replace(
            last_qty=missing,
            last_price=price,
            reason=reason,
        )
        self._advance(order, report, out)
        if out and out[-1] is report:
            order.unidentified += missing

    # -- bookkeeping -------------------------------------------------------------------------------------
    def _advance(self, order: _Order, report: ExecReport, out: list[ExecReport]) -> None:
        if not is_legal_transition(order.status, report.status):
            self.stats.illegal_transitions += 1
            _log.warning("order %s: illegal transition %s -> %s not reported", report.client_order_id,
                         order.status, report.status)
            return
        order.status = report.status
        if report.last_qty > 0:
            order.filled += report.last_qty
            order.filled_quote += report.last_qty * report.last_price
        out.append(report)
        if report.status.is_terminal:
            self._finish(order)

    def _finish(self, order: _Order) -> None:
        symbol = order.route.symbol
        self._open_by_symbol[symbol] -= 1
        order.deferred_reject = None
        finished = self._finished
        finished.append(order.route.client_order_id)
        if len(finished) > self._max_finished:
            self._orders.pop(finished.popleft(), None)


def _check_trades(client_order_id: str, order_id: str, symbol: str, side: Side, trades: Sequence[Trade]) -> None:
    """Every trade must be of venue order ``order_id`` on ``symbol`` and ``side``: else a ProtocolError."""
    for trade in trades:
        if (trade.venue_order_id, trade.symbol, trade.side) != (order_id, symbol, side):
            raise ProtocolError(f"order {client_order_id}: trades of order {order_id} ({symbol} {side}), was trade "
                                f"{trade.trade_id} of order {trade.venue_order_id} ({trade.symbol} {trade.side})")


def _steps(instrument: Instrument, quantity: Decimal, client_order_id: str) -> int:
    units = _EXACT.divide(quantity, instrument.step_size)
    if units != units.to_integral_value() or units < 0:
        where = f"order {client_order_id}: executedQty"
        raise ProtocolError(f"{where} a multiple of {instrument.step_size}, was {quantity}")
    return int(units)

