"""The Gateway seam: what every venue adapter promises to the rest of the engine.

A gateway owns one venue: it consumes that venue's ``Route`` channel and emits ``ExecReport``s. It owns
no routing, risk or position logic and never decides facts on the venue's behalf. This module holds the
protocol, the counters every gateway keeps, and the pure local decisions every gateway shares (a route too old
to send, the REJECTED report of a route refused before it was sent); the simulated and Binance gateways live
next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

from dma_bot.model.enums import ExecStatus
from dma_bot.model.events import ExecReport, Route

__all__ = ["GATEWAY_EVENTS", "Gateway", "GatewayStats", "local_reject", "route_too_old"]

_NS_PER_MS: Final = 1_000_000

GATEWAY_EVENTS: Final = (
    "unknown_outcome",  # an order request whose answer was lost: resolved by querying, never by resending
    "query_failure",  # an order query that got no answer after its retry policy
    "trade_query_failure",  # trades of an order never answered: the unheard quantity reported without trade ids
    "bad_answer",  # an order snapshot that contradicts what we sent (skipped)
    "reconciled_ack",  # an ACK learnt from a query instead of the stream
    "reconciled_fill",  # a fill without trade id learnt from a query's executedQty
    "reconciled_trade",  # a fill with trade id and commission learnt from the venue's trade list
    "late_execution",  # an execution for an order already reported terminal
    "foreign_execution",  # an execution for a client order id we never sent (another process on the account?)
    "cumulative_gap",  # the stream skipped quantity: the order was queried in full
    "unknown_at_venue",  # an order the venue acknowledged but no longer knows: its trades reported, then CANCELED
    "stale_route",  # a route older than the maximum order age when it would have been sent: REJECTED locally
    "unreachable_reject",  # a route refused locally because the venue could not hear or answer us (stream down)
)
"""Events every gateway counts (metric ``gateway_events_total{venue,event}``); a venue may add its own."""


@runtime_checkable
class Gateway(Protocol):
    """One venue's adapter, run as one long-lived task in the engine's TaskGroup.

    Contract:

    * ``run()`` consumes its input ``Channel[Route]`` with ``get_batch()`` until it returns None, and emits
      ``ExecReport``s with ``await out.put(...)`` (backpressure, never a drop).
    * A gateway reports only what its venue said: no synthetic ACK before the venue answered, no fill
      that the venue did not report, CANCELED/EXPIRED are never folded into REJECTED. An execution status
      it does not know is an error (``ProtocolError``), never a default.
    * A report carries side, venue and symbol from the order it answers, never inferred from a price or
      from an id's spelling; ``last_qty`` is this report's fill, ``cum_qty`` the venue's running total.
    * It closes its output exactly once, after its input ended AND every order it accepted has reached a
      terminal state (FILLED, CANCELED, REJECTED, EXPIRED) and been reported.
    * It never creates unowned tasks: anything it starts is awaited or cancelled before ``run()`` returns.
    """

    venue: str

    async def run(self) -> None: ...


@dataclass(slots=True)
class GatewayStats:
    """Counters a gateway keeps for metrics and tests (mutated only by its own task)."""

    routes_received: int = 0
    reports_by_status: dict[str, int] = field(default_factory=dict)

    def count_report(self, report: ExecReport) -> None:
        key = report.status.value
        self.reports_by_status[key] = self.reports_by_status.get(key, 0) + 1


def route_too_old(route: Route, now_ns: int, max_age_ns: int) -> str:
    """Why ``route`` is too old to send at ``now_ns`` (wall clock, like its ``ts_signal_ns``), or "".

    ``max_age_ns`` <= 0 turns the check off. The age is measured from the signal the route came from: a
    price decided that long ago is no longer a decision about this market."""
    if max_age_ns <= 0:
        return ""
    age_ns = now_ns - route.ts_signal_ns
    if age_ns <= max_age_ns:
        return ""
    return f"stale: {age_ns // _NS_PER_MS} ms since its signal, max {max_age_ns // _NS_PER_MS} ms"


def local_reject(route: Route, reason: str, now_ns: int) -> ExecReport:
    """The REJECTED report for a route refused before it was sent (never reached the venue)."""
    return ExecReport(
        venue=route.venue,
        symbol=route.symbol,
        client_order_id=route.client_order_id,
        venue_order_id="",
        side=route.side,
        status=ExecStatus.REJECTED,
        order_qty=route.quantity,
        last_qty=0,
        last_price=0,
        cum_qty=0,
        leaves_qty=0,
        fee=Decimal(0),
        fee_asset="",
        trade_id=None,
        reason=reason,
        ts_event_ns=now_ns,
        ts_ns=now_ns,
    )
