"""Enumerations shared by every stage, and the order lifecycle as a transition table.

Values are the spellings used on the wire of our own formats (JSONL records, metric labels), so
``str(ExecStatus.PARTIALLY_FILLED) == "partially_filled"`` is what a dashboard filters on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class ExecStatus(StrEnum):
    """Order status as reported by a venue in an execution report (lowercase: metric label values)."""

    PENDING_NEW = "pending_new"  # sent, no answer yet: never reported by a venue, only our own starting state
    ACK = "ack"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_fill(self) -> bool:
        return self is ExecStatus.PARTIALLY_FILLED or self is ExecStatus.FILLED


TERMINAL_STATUSES: Final = frozenset({ExecStatus.FILLED, ExecStatus.CANCELED, ExecStatus.REJECTED,
                                     ExecStatus.EXPIRED})
"""``status in TERMINAL_STATUSES`` is ``status.is_terminal`` without a Python-level property call (hot cores)."""

_S = ExecStatus
ORDER_TRANSITIONS: Final[frozenset[tuple[ExecStatus, ExecStatus]]] = frozenset(
    {
        (_S.PENDING_NEW, _S.ACK),
        (_S.PENDING_NEW, _S.REJECTED),
        # A venue may report a fill before we have processed its ACK (IOC, FULL responses).
        (_S.PENDING_NEW, _S.PARTIALLY_FILLED),
        (_S.PENDING_NEW, _S.FILLED),
        (_S.PENDING_NEW, _S.EXPIRED),
        (_S.PENDING_NEW, _S.CANCELED),
        (_S.ACK, _S.PARTIALLY_FILLED),
        (_S.ACK, _S.FILLED),
        (_S.ACK, _S.CANCELED),
        (_S.ACK, _S.EXPIRED),
        (_S.ACK, _S.REJECTED),
        (_S.PARTIALLY_FILLED, _S.PARTIALLY_FILLED),
        (_S.PARTIALLY_FILLED, _S.FILLED),
        (_S.PARTIALLY_FILLED, _S.CANCELED),
        (_S.PARTIALLY_FILLED, _S.EXPIRED),
    }
)


def is_legal_transition(current: ExecStatus, new: ExecStatus) -> bool:
    """True when an order in ``current`` may move to ``new``."""
    return (current, new) in ORDER_TRANSITIONS


class RejectReason(StrEnum):
    """Why pre-trade risk refused a signal (metric label ``reason``)."""

    PRICE_BAND = "price_band"  # outside the absolute PX_MIN..PX_MAX band
    PRICE_DEVIATION = "price_deviation"  # too far from the current mid
    NO_MARKET = "no_market"  # no mid known yet for the relative band
    MAX_NOTIONAL = "max_notional"
    MAX_POSITION = "max_position"
    RATE_LIMIT = "rate_limit"
    KILL_SWITCH_REDUCING = "kill_switch_reducing"  # reducing state: only position-shrinking orders pass
    KILL_SWITCH_HALTED = "kill_switch_halted"
    QUANTITY = "quantity"  # rounds to zero steps


class NoteKind(StrEnum):
    """What a ``Note`` record says happened (metric label ``kind``): facts about our own books and connections."""

    DUPLICATE_FILL = "duplicate_fill"  # a fill already applied (same trade id, or no new cum_qty): not applied again
    LATE_REPORT = "late_report"  # older than the order's state (delivered out of order): its fill applied, state kept
    ILLEGAL_TRANSITION = "illegal_transition"  # a transition the lifecycle table forbids, with new cum_qty
    FILL_OVERRUN = "fill_overrun"  # applied fills exceed the venue's cum_qty or the order's quantity
    FILL_BY_CUM_QTY = "fill_by_cum_qty"  # a fill without a trade id whose cum_qty step differs from its last_qty
    UNKNOWN_SYMBOL = "unknown_symbol"  # a report for a symbol without an instrument: skipped
    USER_STREAM_DOWN = "user_stream_down"  # a venue's user-data stream was lost (detail: why)
    USER_STREAM_UP = "user_stream_up"  # it was subscribed again (detail: how long it was down)
    RECONCILED = "reconciled"  # the reconciliation after a resubscription ended (orders queried, fills found)
    UNKNOWN_AT_VENUE = "unknown_at_venue"  # an acknowledged order the venue no longer knows (detail: what became of it)
    MARKET_STREAM_DOWN = "market_stream_down"  # the market-data connection was lost (detail: why)
    MARKET_STREAM_UP = "market_stream_up"  # it is connected again (detail: how long it was down)
    POSITION_DRIFT = "position_drift"  # the venue's balance of an asset differs from the ledger's by over one step
    OPEN_ORDER_MISMATCH = "open_order_mismatch"  # open in our books but not at the venue, or the reverse


class KillSwitchState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"
