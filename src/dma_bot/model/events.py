"""Events that flow between stages. Every event states facts; no stage infers one from another's spelling.

Prices are integer ticks and quantities integer steps of the symbol's :class:`Instrument`; fees are Decimal.
Timestamps are integer nanoseconds: ``ts_event_ns`` when the fact happened (venue time where the venue
says), ``ts_ns`` when this process created the event.

The single events are ``NamedTuple``s: immutable, and built in 0.7 us positionally (the per-tick
:class:`Tick`, :class:`Signal`, :class:`RiskReject`) or ~1.5 us by keyword (:class:`Order`, :class:`Route`,
:class:`ExecReport`: build them with keywords, change them with ``_replace``) instead of 2.9-4.6 us for
frozen keyword-only dataclasses (measured on the 2-core target). The column batches (:class:`TickBatch`,
:class:`SignalBatch`, :class:`RejectBatch`) are frozen slotted dataclasses over read-only numpy columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from dma_bot.model.enums import ExecStatus, NoteKind, RejectReason, Side

__all__ = [
    "AccountSnapshot",
    "BoolArray",
    "ExecReport",
    "IntArray",
    "Note",
    "Order",
    "RejectBatch",
    "RiskReject",
    "Route",
    "Signal",
    "SignalBatch",
    "Tick",
    "TickBatch",
    "Watermark",
    "signal_batch",
    "signal_batch_of",
    "tick_batch",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Tick(NamedTuple):
    """Top of book for one symbol (type ``Md`` in the JSONL)."""

    symbol: str
    bid: int  # ticks
    ask: int  # ticks
    bid_qty: int  # steps
    ask_qty: int  # steps
    ts_event_ns: int
    ts_ns: int

    @property
    def mid2(self) -> int:
        """bid + ask: twice the mid, kept integral."""
        return self.bid + self.ask


@dataclass(frozen=True, slots=True, eq=False)
class TickBatch:
    """Consecutive top-of-book quotes of one symbol that arrived together: columns instead of one Tick each.

    Row ``i`` is the Tick ``(symbol, bid[i], ask[i], bid_qty[i], ask_qty[i], ts_event_ns, ts_ns)``; the
    rows are in arrival order and share both timestamps (they were made, or received, at one instant).
    The columns are read-only int64 numpy arrays of equal length >= 1 (build with :func:`tick_batch`).
    Each row is one ``Md`` record in the JSONL, exactly as if the Ticks had come one by one; a batch lets
    the strategies and the recorder work on the columns instead of paying per-object costs per quote.
    """

    symbol: str
    bid: IntArray  # ticks
    ask: IntArray  # ticks
    bid_qty: IntArray  # steps
    ask_qty: IntArray  # steps
    ts_event_ns: int
    ts_ns: int

    def __len__(self) -> int:
        return len(self.bid)

    def rows(self) -> list[Tick]:
        """The quotes as Ticks, in order."""
        symbol, ts_event_ns, ts_ns = self.symbol, self.ts_event_ns, self.ts_ns
        columns = (self.bid.tolist(), self.ask.tolist(), self.bid_qty.tolist(), self.ask_qty.tolist())
        return [Tick(symbol, b, a, bq, aq, ts_event_ns, ts_ns) for b, a, bq, aq in zip(*columns, strict=True)]

    def last(self) -> Tick:
        """The newest quote as a Tick."""
        return Tick(
            self.symbol,
            int(self.bid[-1]),
            int(self.ask[-1]),
            int(self.bid_qty[-1]),
            int(self.ask_qty[-1]),
            self.ts_event_ns,
            self.ts_ns,
        )


def tick_batch(
    symbol: str,
    bid: npt.ArrayLike,
    ask: npt.ArrayLike,
    bid_qty: npt.ArrayLike,
    ask_qty: npt.ArrayLike,
    ts_event_ns: int,
    ts_ns: int,
) -> TickBatch:
    """A TickBatch over int64 copies of the columns, made read-only. Raises ValueError for empty or
    unequal columns, columns that are not one-dimensional integers, or timestamps that are not ints."""
    columns = []
    for name, values in (("bid", bid), ("ask", ask), ("bid_qty", bid_qty), ("ask_qty", ask_qty)):
        array = np.asarray(values)
        if array.ndim != 1 or not (array.dtype.kind in "iu" or array.size == 0):
            raise ValueError(f"tick_batch.{name}: a one-dimensional integer array, was {array.dtype}{array.shape}")
        array = array.astype(np.int64)  # a copy: the caller cannot change the batch afterwards
        array.flags.writeable = False
        columns.append(array)
    length = len(columns[0])
    if length == 0 or any(len(column) != length for column in columns):
        raise ValueError(f"tick_batch: equal columns of >= 1 rows, were {[len(c) for c in columns]}")
    if type(ts_event_ns) is not int or type(ts_ns) is not int:
        raise ValueError(f"tick_batch: int timestamps, were {ts_event_ns!r} and {ts_ns!r}")
    return TickBatch(symbol, columns[0], columns[1], columns[2], columns[3], ts_event_ns, ts_ns)


class Watermark(NamedTuple):
    """Replay only, never recorded: ``source`` is done with every quote stamped ``ts_ns`` or earlier.

    The replay feed stamps its quotes' ``ts_ns`` strictly increasing in file order, so a stamp is also the quote's
    position in the recording. The feed puts ``Watermark("feed", t)`` behind each chunk it hands to a strategy
    worker (every worker, whether the chunk held its symbols or not); the worker, having decided on everything
    before it, passes it on to risk as ``Watermark(<worker>, t)``, and risk releases the signals every worker has
    passed (:class:`~dma_bot.risk.replay_order.ReplayOrder`).
    """

    source: str
    ts_ns: int


class Signal(NamedTuple):
    """A strategy's wish to trade (type ``Sig``)."""

    strategy: str
    symbol: str
    side: Side
    price: int  # ticks
    quantity: int  # steps
    ts_event_ns: int  # of the tick that caused it
    ts_ns: int


class RiskReject(NamedTuple):
    """A signal that pre-trade risk refused, with the reason (type ``Reject``)."""

    strategy: str
    symbol: str
    side: Side
    price: int
    quantity: int
    reason: RejectReason
    detail: str
    ts_signal_ns: int
    ts_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class SignalBatch:
    """Signals of one strategy on one symbol made from one TickBatch (type ``Sig``, one line per row).

    Row ``i`` is the Signal ``(strategy, symbol, BUY if buy[i] else SELL, price[i], quantity, ts_event_ns,
    ts_ns)``, rows in tick order. ``buy`` is a bool array and ``price`` an int64 array (ticks) of equal
    length >= 1; the other fields are shared by every row (the batch's ticks share their timestamp).
    """

    strategy: str
    symbol: str
    buy: BoolArray
    price: IntArray
    quantity: int  # steps
    ts_event_ns: int
    ts_ns: int

    def __len__(self) -> int:
        return len(self.price)

    def rows(self) -> list[Signal]:
        """The signals one by one, in order."""
        head = (self.strategy, self.symbol)
        tail = (self.quantity, self.ts_event_ns, self.ts_ns)
        return [
            Signal(*head, Side.BUY if buy else Side.SELL, price, *tail)
            for buy, price in zip(self.buy.tolist(), self.price.tolist(), strict=True)
        ]


def signal_batch(
    strategy: str, symbol: str, buy: BoolArray, price: IntArray, quantity: int, ts_event_ns: int, ts_ns: int
) -> SignalBatch | None:
    """A SignalBatch over ``buy``/``price`` (made read-only, not copied), or None when there are no rows."""
    if len(price) == 0:
        return None
    if len(buy) != len(price) or buy.dtype != np.bool_ or price.dtype != np.int64:
        raise ValueError(f"signal_batch: bool and int64 columns of equal length, were {buy.dtype}{buy.shape} "
                         f"and {price.dtype}{price.shape}")
    buy.flags.writeable = False
    price.flags.writeable = False
    return SignalBatch(strategy, symbol, buy, price, quantity, ts_event_ns, ts_ns)


def signal_batch_of(signals: Sequence[Signal]) -> SignalBatch | None:
    """The SignalBatch holding ``signals`` (which share strategy, symbol, quantity and timestamps), or None
    for none. Raises ValueError when they do not share those fields."""
    if not signals:
        return None
    first = signals[0]
    shared = (first.strategy, first.symbol, first.quantity, first.ts_event_ns, first.ts_ns)
    for signal in signals:
        if (signal.strategy, signal.symbol, signal.quantity, signal.ts_event_ns, signal.ts_ns) != shared:
            raise ValueError(f"signal_batch_of: signals of one strategy, symbol, quantity and time, was {signal}")
    buy = np.array([signal.side is Side.BUY for signal in signals], dtype=np.bool_)
    price = np.array([signal.price for signal in signals], dtype=np.int64)
    return signal_batch(first.strategy, first.symbol, buy, price, first.quantity, first.ts_event_ns, first.ts_ns)


@dataclass(frozen=True, slots=True, eq=False)
class RejectBatch:
    """Consecutive signals of one SignalBatch that risk refused (type ``Reject``, one line per row).

    Row ``i`` is the RiskReject ``(strategy, symbol, BUY if buy[i] else SELL, price[i], quantity,
    reasons[i], details[i], ts_signal_ns, ts_ns)``, rows in signal order.
    """

    strategy: str
    symbol: str
    buy: BoolArray
    price: IntArray
    quantity: int
    reasons: list[RejectReason]
    details: list[str]
    ts_signal_ns: int
    ts_ns: int

    def __len__(self) -> int:
        return len(self.price)

    def rows(self) -> list[RiskReject]:
        """The rejects one by one, in order."""
        head = (self.strategy, self.symbol)
        columns = (self.buy.tolist(), self.price.tolist(), self.reasons, self.details)
        return [
            RiskReject(*head, Side.BUY if buy else Side.SELL, price, self.quantity, reason, detail,
                       self.ts_signal_ns, self.ts_ns)
            for buy, price, reason, detail in zip(*columns, strict=True)
        ]


class Order(NamedTuple):
    """A parent order that passed risk (type ``Ord``). Build it with keywords."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    price: int
    quantity: int
    ts_signal_ns: int
    ts_ns: int


class Route(NamedTuple):
    """A child order the router sends to one venue (type ``Route``). Build it with keywords."""

    venue: str
    client_order_id: str
    parent_order_id: str
    strategy: str
    symbol: str
    side: Side
    price: int
    quantity: int
    ts_signal_ns: int
    ts_ns: int


class ExecReport(NamedTuple):
    """What a venue said about one of our child orders (type ``Exec``).

    A NamedTuple like the per-tick events (a start-up burst brings hundreds at once: 1.5 us to build by
    keyword instead of 4.6 us as a frozen dataclass); build it with keywords, change it with ``_replace``.

    ``order_qty`` is the order's quantity; ``last_qty``/``last_price`` are this report's fill (0 when it
    is not a fill), never cumulative; ``cum_qty`` is the venue's cumulative filled quantity;
    ``leaves_qty`` what is still open (0 once the order is terminal: the unfilled rest of a cancelled,
    rejected or expired order is ``order_qty - cum_qty``).
    """

    venue: str
    symbol: str
    client_order_id: str
    venue_order_id: str
    side: Side
    status: ExecStatus
    order_qty: int
    last_qty: int
    last_price: int
    cum_qty: int
    leaves_qty: int
    fee: Decimal
    fee_asset: str
    trade_id: str | None
    reason: str
    ts_event_ns: int
    ts_ns: int


class Note(NamedTuple):
    """A fact about the engine's own books or connections rather than the market (type ``Note``).

    ``kind`` says what happened; ``venue``, ``symbol`` and ``client_order_id`` name what it concerns ("" when
    nothing of that kind); ``detail`` is one human-readable line; ``ts_ns`` is when this process learnt it (for
    a note about an execution report, that report's ``ts_ns``). Build it with keywords.
    """

    kind: NoteKind
    venue: str
    symbol: str
    client_order_id: str
    detail: str
    ts_ns: int


class AccountSnapshot(NamedTuple):
    """A venue's own account as it answered one read (type ``Account``), for reconciling the ledger against it.

    ``balances`` is each asset's total (free + locked), exact, as a read-only mapping; an asset the venue did
    not list holds 0 (Binance omits zero balances when asked). ``open_order_ids`` are the client order ids of
    the orders open there on the gateway's symbols, sorted. ``ts_ns`` is when this process had the answers.
    A gateway puts it on its output behind the reports it decided before the read, so the positions stage
    has applied those when it reconciles (``positions.drift``). Build it with keywords.
    """

    venue: str
    balances: Mapping[str, Decimal]
    open_order_ids: tuple[str, ...]
    ts_ns: int
