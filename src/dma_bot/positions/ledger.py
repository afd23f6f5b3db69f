"""Ledger: the pure core of the positions stage, folding execution reports into positions, fees and PnL.

Two tables, kept apart on purpose. A fill is a fact about money, identified by (venue, symbol, order, trade
id) (a venue restarted from scratch, a wiped testnet, numbers its trades from 1 again; our client order ids never
repeat, so the order tells such trades apart while a repeated report of one trade keeps its order):
it is applied exactly once, whatever order the reports arrive in and whatever state the order table
shows. The order table describes each order (its lifecycle state, checked against ``ORDER_TRANSITIONS``;
the largest ``cum_qty`` the venue reported; the fills applied): a report older than the order's state
(a PARTIALLY_FILLED delivered after its FILLED, a trade after its cancel) keeps the state and still books
its fill; a transition the table forbids that brings new ``cum_qty`` is an illegal transition. A fill
without a trade id is applied by the difference between its ``cum_qty`` and what that order has applied,
so a repeated one adds nothing. Each anomaly is counted in :class:`LedgerStats` and becomes a
:class:`~dma_bot.model.events.Note` (taken by :meth:`Ledger.take_notes`, recorded in the JSONL); orders
whose applied fills fall short of the venue's ``cum_qty`` are listed by :meth:`Ledger.fill_gaps`.

Money: per (symbol, venue) the traded quantity in steps with its average-cost book (open cost and
realized PnL as integers of 10**-9 tick*step units: fills add exactly, only the cost share a partial close
removes is rounded half-even, so realized + unrealized PnL is exact at every mark), the commissions per
asset (never added across assets), the base quantity the account holds (traded net of commissions in the
base asset) and the quote value of the fees that have a price: a quote-asset fee at face, a base-asset fee
at its fill price, another asset's at the mid of ``<ASSET><QUOTE>`` when that symbol is an instrument with
a quote on the board at the fill; fees without a price are kept apart as unvalued. ``done_steps`` per
(symbol, side) is what risk subtracts from what it sent: an order counts its applied fills while open and
its whole quantity once terminal. Decimal is built at the border (:meth:`Ledger.snapshot`, the PnL
readers). The PnL readers and :meth:`Ledger.mark` sum, in integers of ``10**-mark_digits`` quote units, a
realized total and per symbol the traded steps and open cost over its venues, kept as fills are applied; each
snapshot carries them as a :class:`~dma_bot.model.positions.PnlForm` (net PnL exact and linear in the mids,
what the loss limit reads). No I/O, clock or asyncio.

Reconciliation: :meth:`Ledger.apply_account` hands a venue's :class:`~dma_bot.model.events.AccountSnapshot`
to a :class:`~dma_bot.positions.drift.Reconciler` with what our fills moved at that venue per asset
(:meth:`Ledger.asset_flows`: the base traded, the quote paid and received as integer tick*step units per
book, each commission out of its own asset) and the orders it remembers there; the drift per (venue, asset)
and whether it breaches ``max_drift`` (quote value; 0 = never) are part of every snapshot, and its
``position_drift`` / ``open_order_mismatch`` Notes join the others.

Memory bound: orders are forgotten ``max_terminal_orders`` terminal orders after they ended (a later
report for one starts again from PENDING_NEW), and trade ids are remembered for the last
``max_trade_ids`` applied fills (an older replay is no longer recognised as a duplicate).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from dma_bot.model.enums import ORDER_TRANSITIONS, TERMINAL_STATUSES, ExecStatus, NoteKind, Side
from dma_bot.model.events import AccountSnapshot, ExecReport, Note
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PnlForm, PositionSnapshot, VenuePosition
from dma_bot.positions.drift import Reconciler

__all__ = [
    "DEFAULT_MAX_TERMINAL_ORDERS",
    "DEFAULT_MAX_TRADE_IDS",
    "SUBUNITS",
    "FillGap",
    "Ledger",
    "LedgerStats",
    "LedgerView",
    "tidy",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_TERMINAL_ORDERS: Final = 65_536
DEFAULT_MAX_TRADE_IDS: Final = 262_144

SUBUNITS: Final = 10**9
"""Integer units per tick*step in which open cost and realized PnL are kept."""

_EXACT: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
_DIVIDE: Final = Context(prec=40, rounding=ROUND_HALF_EVEN)
_HALF_SUBUNITS: Final = SUBUNITS // 2
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
_TWO: Final = Decimal(2)
_PENDING_NEW: Final = ExecStatus.PENDING_NEW
_BUY: Final = Side.BUY
_new_tuple: Final = tuple.__new__


def _round_div(numerator: int, denominator: int) -> int:
    """numerator / denominator (> 0) rounded half-even, in integers."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


def _tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation for whole numbers."""
    value = value.normalize(_EXACT)
    if value.adjusted() >= 0 and value == value.to_integral_value():  # whole: exponent 0 (no digit tuple built)
        return value.quantize(_ONE, context=_EXACT)
    return value


def tidy(value: Decimal) -> Decimal:
    """``value`` as the ledger spells amounts: no trailing zeros, whole numbers without an exponent."""
    return _tidy(value)


def _quote(subunits: int, unit: Decimal) -> Decimal:
    """Integer 10**-9 tick*step units -> quote currency, exactly."""
    return _tidy(_EXACT.multiply(_EXACT.scaleb(Decimal(subunits), -9), unit))


@dataclass(slots=True)
class LedgerStats:
    """Counters of what the ledger applied and refused (read by metrics)."""

    fills: int = 0
    duplicate_fills: int = 0
    late_reports: int = 0
    illegal_transitions: int = 0
    fill_overruns: int = 0
    fills_by_cum_qty: int = 0
    unknown_symbols: int = 0
    forgotten_orders: int = 0
    position_drifts: int = 0
    open_order_mismatches: int = 0

    def anomalies(self) -> dict[NoteKind, int]:
        """The counters that are Notes, by kind (metric ``ledger_anomalies_total{kind}``)."""
        return {
            NoteKind.DUPLICATE_FILL: self.duplicate_fills,
            NoteKind.LATE_REPORT: self.late_reports,
            NoteKind.ILLEGAL_TRANSITION: self.illegal_transitions,
            NoteKind.FILL_OVERRUN: self.fill_overruns,
            NoteKind.FILL_BY_CUM_QTY: self.fills_by_cum_qty,
            NoteKind.UNKNOWN_SYMBOL: self.unknown_symbols,
            NoteKind.POSITION_DRIFT: self.position_drifts,
            NoteKind.OPEN_ORDER_MISMATCH: self.open_order_mismatches,
        }


class FillGap(NamedTuple):
    """An order whose applied fills differ from the largest ``cum_qty`` its venue reported (steps)."""

    venue: str
    symbol: str
    client_order_id: str
    status: ExecStatus
    filled: int
    cum_qty: int


class _Order:
    """What the ledger knows of one order: state, the venue's largest cum_qty, fills applied, done steps."""

    __slots__ = ("cum_qty", "done", "filled", "order_qty", "side", "status", "symbol", "venue")

    def __init__(self, report: ExecReport) -> None:
        self.venue = report.venue
        self.symbol = report.symbol
        self.side = report.side
        self.order_qty = report.order_qty
        self.status = _PENDING_NEW
        self.cum_qty = 0
        self.filled = 0
        self.done = 0


class _Book:
    """One (symbol, venue): traded steps, open cost and realized PnL in SUBUNITS, quote received minus paid
    in tick*step units, fees per asset."""

    __slots__ = ("base_fees", "cash", "cost", "fee_value", "fees", "quantity", "realized", "unvalued")

    def __init__(self) -> None:
        self.quantity = 0
        self.cash = 0
        self.cost = 0
        self.realized = 0
        self.fees: dict[str, Decimal] = {}
        self.base_fees = _ZERO
        self.fee_value = _ZERO
        self.unvalued: dict[str, Decimal] = {}

    def fill(self, sign: int, steps: int, price_ticks: int) -> None:
        held = self.quantity
        signed = sign * steps
        after = held + signed
        self.cash -= signed * price_ticks
        value = price_ticks * SUBUNITS
        if held == 0 or (held > 0) == (signed > 0):
            self.cost += signed * value
        else:
            size = abs(held)
            closed = min(steps, size)
            removed = self.cost if closed == size else _round_div(self.cost * closed, size)
            self.realized += (closed if held > 0 else -closed) * value - removed
            self.cost -= removed
            if after and (after > 0) != (held > 0):
                self.cost = after * value
        self.quantity = after



def _add(amounts: dict[str, Decimal], asset: str, amount: Decimal) -> None:
    amounts[asset] = _EXACT.add(amounts.get(asset, _ZERO), amount)


class _View:
    """One book's VenuePosition as a snapshot caught it: the integers and copies taken then, the Decimal figures
    built on the first read and kept (every later snapshot of an unchanged book shares it)."""

    __slots__ = ("_position", "_state")

    def __init__(self, state: tuple[Any, ...]) -> None:
        self._state: tuple[Any, ...] | None = state
        self._position: VenuePosition | None = None

    def position(self) -> VenuePosition:
        position = self._position
        if position is None:
            (instrument, unit, venue, held_steps, quantity, cost, realized, base_fees, fee_value, fees,
             unvalued) = self._state  # type: ignore[misc]
            holdings = instrument.steps_to_qty(quantity)
            if base_fees:
                holdings = _EXACT.subtract(holdings, base_fees)
            average = _ZERO if not quantity else _tidy(
                _DIVIDE.divide(_EXACT.multiply(Decimal(cost), instrument.tick_size), Decimal(quantity * SUBUNITS)))
            position = self._position = VenuePosition(
                symbol=instrument.symbol,
                venue=venue,
                quantity=held_steps,
                holdings=_tidy(holdings),
                traded_quantity=quantity,
                average_price=average,
                realized_pnl=_quote(realized, unit),
                fees=MappingProxyType(fees),
                fee_value=_tidy(fee_value),
                unvalued_fees=MappingProxyType(unvalued),
            )
            self._state = None
        return position


class _Views(Mapping[tuple[str, str], VenuePosition]):
    """A snapshot's read-only ``positions``: (symbol, venue) -> VenuePosition, each built when first read."""

    __slots__ = ("_views",)

    def __init__(self, views: dict[tuple[str, str], _View]) -> None:
        self._views = views

    def __getitem__(self, key: tuple[str, str]) -> VenuePosition:
        return self._views[key].position()

    def get(self, key: tuple[str, str], default: Any = None) -> Any:  # type: ignore[override]
        view = self._views.get(key)
        return default if view is None else view.position()

    def __contains__(self, key: object) -> bool:
        return key in self._views

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class LedgerView:
    """What risk and the router read of positions (PositionSnapshot's ``net_steps``, ``held_steps``,
    ``done_steps``, ``pnl_form``, ``drift_breached``, ``drift_reason``), read from the ledger in place at each
    read: what a snapshot taken then would show, without copying the tables. For a driver that runs risk, the
    router and the ledger in one thread (the backtest, which reads it before every decision); the daemon's
    stages read published snapshots. Read-only. Build it with :meth:`Ledger.view`."""

    __slots__ = ("_done", "_held", "_ledger", "_net")

    def __init__(self, ledger: Ledger, net: Mapping[str, int], held: Mapping[tuple[str, str], int],
                 done: Mapping[tuple[str, Side], int]) -> None:
        self._ledger = ledger
        self._net = net
        self._held = held
        self._done = done

    @property
    def net_steps(self) -> Mapping[str, int]:
        if self._ledger._stale_held:
            self._ledger._refresh_held()
        return self._net

    @property
    def held_steps(self) -> Mapping[tuple[str, str], int]:
        if self._ledger._stale_held:
            self._ledger._refresh_held()
        return self._held

    @property
    def done_steps(self) -> Mapping[tuple[str, Side], int]:
        return self._done

    @property
    def pnl_form(self) -> PnlForm:
        return self._ledger.pnl_form()

    @property
    def drift_breached(self) -> bool:
        return self._ledger._reconciler.breached

    @property
    def drift_reason(self) -> str:
        return self._ledger._reconciler.breach_reason


class Ledger:
    """Positions, fees, PnL, order states and done steps built from :class:`ExecReport`s.

    ``board`` (optional) prices a fee paid in a third asset at the fill; without it such fees are unvalued.
    It also values a drift against a venue's account, which breaches beyond ``max_drift`` in quote currency
    (0, the default, = never; ``RISK_MAX_DRIFT`` in the daemon).
    """

    __slots__ = (
        "_board",
        "_books",
        "_done",
        "_exposure_factors",
        "_fee_shown",
        "_fee_total",
        "_fee_units",
        "_form",
        "_gaps",
        "_half_factors",
        "_instruments",
        "_mark_digits",
        "_mark_terms",
        "_max_terminal",
        "_max_trades",
        "_net",
        "_net_steps",
        "_notes",
        "_open",
        "_orders",
        "_pnl_factors",
        "_realized_shown",
        "_realized_total",
        "_reconciler",
        "_snapshot",
        "_stale",
        "_stale_held",
        "_terminal",
        "_trade_order",
        "_trades",
        "_units",
        "_views",
        "last_fill_steps",
        "stats",
    )

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        board: MarketBoard | None = None,
        max_terminal_orders: int = DEFAULT_MAX_TERMINAL_ORDERS,
        max_trade_ids: int = DEFAULT_MAX_TRADE_IDS,
        max_drift: Decimal = _ZERO,
    ) -> None:
        if max_terminal_orders <= 0 or max_trade_ids <= 0:
            raise ValueError(
                f"ledger bounds: must be positive, was {max_terminal_orders=} {max_trade_ids=}"
            )
        self._instruments = dict(instruments)
        self._units = {
            symbol: _EXACT.multiply(instrument.tick_size, instrument.step_size)
            for symbol, instrument in self._instruments.items()
        }
        units_e9 = {symbol: _EXACT.scaleb(unit, -9) for symbol, unit in self._units.items()}  # per SUBUNIT
        half_units = {symbol: _EXACT.divide(unit, _TWO) for symbol, unit in self._units.items()}
        # mark() sums in integers of 10**-mark_digits quote units: one exact Decimal per figure, not one per symbol
        digits = max((-int(unit.as_tuple().exponent) for unit in (*units_e9.values(), *half_units.values())),
                     default=0)
        self._mark_digits = digits
        self._pnl_factors = {symbol: int(_EXACT.scaleb(unit, digits)) for symbol, unit in units_e9.items()}
        self._exposure_factors = {symbol: int(_EXACT.scaleb(half, digits)) for symbol, half in half_units.items()}
        self._half_factors = {symbol: factor * _HALF_SUBUNITS for symbol, factor in self._pnl_factors.items()}
        # kept as fills are applied, in those integers: the books' realized PnL, and per symbol the traded steps and
        # open cost (SUBUNITS) summed over its venues (what mark() and the snapshot's PnlForm read)
        self._realized_total = 0
        self._open: dict[str, list[int]] = {}
        self._form: PnlForm | None = None  # the snapshot's PnlForm, until the next fill
        # per held symbol (symbol, PnL coefficient of mid2, PnL constant, exposure coefficient of mid2), until the
        # next fill: what a mark multiplies the mids by
        self._mark_terms: tuple[tuple[str, int, int, int], ...] | None = None
        self._realized_shown = (0, _ZERO)  # (_realized_total, its tidy Decimal)
        self._fee_total = _ZERO  # the sum of every book's fee_value (kept as fees are booked)
        self._fee_shown = (_ZERO, _ZERO)  # (_fee_total, its tidy Decimal)
        self._fee_units = (_ZERO, 0, self._mark_digits)  # (_fee_total, it in 10**-digits units, digits)
        self._board = board
        self._max_terminal = max_terminal_orders
        self._max_trades = max_trade_ids
        self._books: dict[tuple[str, str], _Book] = {}
        self._views: dict[tuple[str, str], _View] = {}
        self._stale: set[tuple[str, str]] = set()  # books whose VenuePosition the next snapshot captures
        self._stale_held: set[tuple[str, str]] = set()  # books whose held steps are not in _net yet
        self._net: dict[tuple[str, str], int] = {}  # (symbol, venue) -> held steps, rounded down
        self._net_steps: dict[str, int] = {}  # symbol -> the sum of its venues' held steps
        self._done: dict[tuple[str, Side], int] = {}
        self._orders: dict[str, _Order] = {}
        self._gaps: set[str] = set()  # client order ids whose applied fills differ from the venue's cum_qty
        self._terminal: deque[str] = deque()
        self._trades: set[tuple[str, str, str, str]] = set()  # (venue, symbol, client order id, trade id)
        self._trade_order: deque[tuple[str, str, str, str]] = deque()
        self._notes: list[Note] = []
        self._snapshot: PositionSnapshot | None = None
        self._reconciler = Reconciler(self._instruments, max_drift=max_drift, board=board)
        self.stats = LedgerStats()
        self.last_fill_steps = 0  # the steps the last apply() booked (0: none)

    # -- applying reports ---------------------------------------------------------------------------------
    def apply(self, report: ExecReport) -> bool:
        """Fold one report in. True when it changed what :meth:`snapshot` shows.

        A report with ``last_qty > 0`` carries a fill whatever its status (an IOC may report its last trade
        with EXPIRED); the fill is applied once per (venue, symbol, order, trade id), or by ``cum_qty`` difference
        when it has no trade id, before and independently of the order's state. ``last_fill_steps`` is then
        the steps it booked (0 when none)."""
        self.last_fill_steps = 0
        symbol = report.symbol
        if symbol not in self._instruments:
            self.stats.unknown_symbols += 1
            self._note(NoteKind.UNKNOWN_SYMBOL, report, f"execution report for unknown symbol {symbol!r} skipped")
            return False
        client_order_id = report.client_order_id
        order = self._orders.get(client_order_id)
        if order is None:
            order = self._orders[client_order_id] = _Order(report)
        elif report.order_qty > order.order_qty:
            order.order_qty = report.order_qty  # we never amend an order down: the largest quantity reported
        changed = report.last_qty > 0 and self._fill(order, report)
        self._advance(order, report)
        if order.filled != order.cum_qty:
            self._gaps.add(client_order_id)
        else:
            self._gaps.discard(client_order_id)
        done = order.order_qty if order.status in TERMINAL_STATUSES else min(order.filled, order.order_qty)
        if done != order.done:
            done_key = (order.symbol, order.side)
            self._done[done_key] = self._done.get(done_key, 0) + done - order.done
            order.done = done
            changed = True
        if changed:
            self._snapshot = None
        return changed

    def _fill(self, order: _Order, report: ExecReport) -> bool:
        """Apply the report's fill unless it is already applied; True when it was applied."""
        last_qty = report.last_qty
        trade_id = report.trade_id
        if trade_id is not None:
            trade_key = (report.venue, report.symbol, report.client_order_id, trade_id)
            if trade_key in self._trades:
                self.stats.duplicate_fills += 1
                self._note(NoteKind.DUPLICATE_FILL, report, f"trade {trade_id} already applied")
                return False
            self._remember_trade(trade_key)
            steps = last_qty
        else:
            steps = report.cum_qty - order.filled
            if steps <= 0:
                self.stats.duplicate_fills += 1
                self._note(NoteKind.DUPLICATE_FILL, report,
                           f"fill without trade id at cum_qty {report.cum_qty} steps, already applied {order.filled}")
                return False
            if steps != last_qty:
                self.stats.fills_by_cum_qty += 1
                self._note(NoteKind.FILL_BY_CUM_QTY, report,
                           f"fill without trade id: applied {steps} steps (cum_qty {report.cum_qty} - applied "
                           f"{order.filled}), last_qty was {last_qty}")
        self._apply_fill(report, steps)
        self.last_fill_steps = steps
        order.filled += steps
        ceiling = min(order.order_qty, max(order.cum_qty, report.cum_qty))
        if order.filled > ceiling:
            self.stats.fill_overruns += 1
            self._note(NoteKind.FILL_OVERRUN, report,
                       f"fills applied {order.filled} steps exceed cum_qty {max(order.cum_qty, report.cum_qty)} "
                       f"or order_qty {order.order_qty}")
        return True

    def book_fill(self, report: ExecReport, steps: int) -> None:
        """Book ``steps`` of ``report``'s fill as money only: the position, cost, PnL and fees, with no order
        lifecycle and no duplicate check (for a ledger that follows another's decisions: the steps that one's
        :meth:`apply` booked, ``last_fill_steps``)."""
        if report.symbol not in self._instruments:
            raise ValueError(f"book_fill: symbol {report.symbol!r} has no instrument")
        if steps > 0:
            self._apply_fill(report, steps)
            self._snapshot = None

    def _advance(self, order: _Order, report: ExecReport) -> None:
        """Move the order's state when the lifecycle table allows it; else count a late or illegal report."""
        current = order.status
        status = report.status
        if (current, status) in ORDER_TRANSITIONS:  # is_legal_transition, inlined
            order.status = status
            if status in TERMINAL_STATUSES:
                self._ended(report.client_order_id)
        elif report.cum_qty <= order.cum_qty:
            self.stats.late_reports += 1
            self._note(NoteKind.LATE_REPORT, report,
                       f"{status} (cum_qty {report.cum_qty}) after {current} (cum_qty {order.cum_qty}): state kept")
        else:
            self.stats.illegal_transitions += 1
            detail = (f"illegal order transition {current} -> {status} (cum_qty {order.cum_qty} -> {report.cum_qty}) "
                      f"not applied: venue_order_id={report.venue_order_id} trade_id={report.trade_id}")
            self._note(NoteKind.ILLEGAL_TRANSITION, report, detail)
            _log.warning("%s: venue=%s client_order_id=%s", detail, report.venue, report.client_order_id)
        if report.cum_qty > order.cum_qty:
            order.cum_qty = report.cum_qty

    def _apply_fill(self, report: ExecReport, steps: int) -> None:
        key = (report.symbol, report.venue)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _Book()
        quantity, cost, realized = book.quantity, book.cost, book.realized
        book.fill(1 if report.side == _BUY else -1, steps, report.last_price)
        symbol = report.symbol
        if book.realized != realized:
            self._realized_total += (book.realized - realized) * self._pnl_factors[symbol]
        held = self._open.get(symbol)
        if held is None:
            held = self._open[symbol] = [0, 0]
        held[0] += book.quantity - quantity
        held[1] += book.cost - cost
        fee = report.fee
        if fee:
            self._book_fee(book, report)
        self.stats.fills += 1
        self._form = None
        self._mark_terms = None
        self._stale.add(key)  # its VenuePosition (Decimal average and PnL) is rebuilt once, at the next snapshot
        self._stale_held.add(key)

    def _book_fee(self, book: _Book, report: ExecReport) -> None:
        fee, asset = report.fee, report.fee_asset
        instrument = self._instruments[report.symbol]
        _add(book.fees, asset, fee)
        value: Decimal | None = None
        if asset == instrument.quote_asset:
            value = fee
        elif asset == instrument.base_asset:
            book.base_fees = _EXACT.add(book.base_fees, fee)
            value = _EXACT.multiply(fee, instrument.ticks_to_price(report.last_price))
        elif self._board is not None:
            cross = f"{asset}{instrument.quote_asset}"
            cross_instrument = self._instruments.get(cross)
            mid2 = self._board.mid2(cross)
            if cross_instrument is not None and mid2 is not None:
                value = _EXACT.multiply(fee, _EXACT.divide(cross_instrument.ticks_to_price(mid2), _TWO))
        if value is None:
            _add(book.unvalued, asset, fee)
        else:
            book.fee_value = _EXACT.add(book.fee_value, value)
            self._fee_total = _EXACT.add(self._fee_total, value)

    def apply_account(self, account: AccountSnapshot) -> bool:
        """Reconcile with a venue's account read (see :mod:`dma_bot.positions.drift`); True: the drift shown
        by :meth:`snapshot` is that of this read from now on."""
        venue = account.venue
        orders = {cid: (order.symbol, order.status) for cid, order in self._orders.items() if order.venue == venue}
        notes = self._reconciler.reconcile(account, self.asset_flows(venue), orders)
        for note in notes:
            if note.kind is NoteKind.POSITION_DRIFT:
                self.stats.position_drifts += 1
            else:
                self.stats.open_order_mismatches += 1
        self._notes += notes
        self._snapshot = None
        return True

    def _note(self, kind: NoteKind, report: ExecReport, detail: str) -> None:
        self._notes.append(Note(kind=kind, venue=report.venue, symbol=report.symbol,
                                client_order_id=report.client_order_id, detail=detail, ts_ns=report.ts_ns))

    def _refresh_held(self) -> None:
        """Each changed book's held steps (traded, less the base-asset fees rounded up to a step) into ``_net``
        and their sum per symbol into ``_net_steps``: what risk and the router read."""
        for key in self._stale_held:
            symbol = key[0]
            book = self._books[key]
            held_steps = book.quantity
            if book.base_fees:
                step = self._instruments[symbol].step_size
                held_steps -= int(_EXACT.divide(book.base_fees, step).to_integral_value(ROUND_CEILING))
            net = self._net_steps
            net[symbol] = net.get(symbol, 0) + held_steps - self._net.get(key, 0)
            self._net[key] = held_steps
        self._stale_held.clear()

    def _refresh_views(self) -> None:
        """The held steps, and each changed book's VenuePosition captured for later: the Decimal figures are
        built the first time a snapshot's ``positions`` is read for it (risk and the router read the integers;
        a report or a metrics scrape reads the views)."""
        if self._stale_held:
            self._refresh_held()
        for key in self._stale:
            symbol, venue = key
            book = self._books[key]
            self._views[key] = _View((self._instruments[symbol], self._units[symbol], venue, self._net[key],
                                      book.quantity, book.cost, book.realized, book.base_fees, book.fee_value,
                                      dict(book.fees), dict(book.unvalued)))
        self._stale.clear()

    def view(self) -> LedgerView:
        """A read-only view of this ledger as it is at each read (see :class:`LedgerView`)."""
        return LedgerView(self, MappingProxyType(self._net_steps), MappingProxyType(self._net),
                          MappingProxyType(self._done))

    def _ended(self, client_order_id: str) -> None:
        terminal = self._terminal
        terminal.append(client_order_id)
        if len(terminal) > self._max_terminal:
            forgotten = terminal.popleft()
            order = self._orders.get(forgotten)
            if order is not None and order.status.is_terminal:
                del self._orders[forgotten]
                self._gaps.discard(forgotten)
                self.stats.forgotten_orders += 1

    def _remember_trade(self, trade_key: tuple[str, str, str, str]) -> None:
        self._trades.add(trade_key)
        order = self._trade_order
        order.append(trade_key)
        if len(order) > self._max_trades:
            self._trades.discard(order.popleft())

    # -- reading ------------------------------------------------------------------------------------------
    def take_notes(self) -> list[Note]:
        """The Notes made since the last call, oldest first (the caller records them)."""
        notes = self._notes
        if notes:
            self._notes = []
        return notes

    def order_status(self, client_order_id: str) -> ExecStatus | None:
        """The order's current state, or None when never seen (or forgotten after it ended)."""
        order = self._orders.get(client_order_id)
        return None if order is None else order.status

    @property
    def open_orders(self) -> int:
        """Orders seen and not yet in a terminal state."""
        return sum(1 for order in self._orders.values() if not order.status.is_terminal)

    def open_order_ids(self) -> list[str]:
        """The client order ids of the orders seen and not yet in a terminal state, in first-seen order."""
        return [cid for cid, order in self._orders.items() if not order.status.is_terminal]

    def fill_gaps(self) -> list[FillGap]:
        """Orders whose applied fills differ from the largest cum_qty their venue reported."""
        orders = self._orders
        return [
            FillGap(order.venue, order.symbol, cid, order.status, order.filled, order.cum_qty)
            for cid, order in orders.items()
            if cid in self._gaps
        ]

    @property
    def fill_gap_count(self) -> int:
        """How many orders :meth:`fill_gaps` lists (cheap: for metrics)."""
        return len(self._gaps)

    def _in_quote(self, total: int) -> Decimal:
        """An amount in integers of ``10**-mark_digits`` quote units as one exact tidy Decimal."""
        return _tidy(_EXACT.scaleb(Decimal(total), -self._mark_digits))

    def realized_pnl(self) -> Decimal:
        """Realized PnL of the traded quantities, in quote currency, before fees."""
        total, shown = self._realized_shown
        if total != self._realized_total:
            total = self._realized_total
            shown = self._in_quote(total)
            self._realized_shown = (total, shown)
        return shown

    def unrealized_pnl(self, board: MarketBoard) -> Decimal:
        """Open traded quantities marked at mid = (bid + ask) / 2, exactly; a symbol with no tick yet adds 0."""
        pnl, _ = self._marked(board, exposure=False)
        return self._in_quote(pnl - self._realized_total)

    def fee_value(self) -> Decimal:
        """The quote value of every fee that has a price (see the module docstring)."""
        total, shown = self._fee_shown
        if total is not self._fee_total:
            total = self._fee_total
            shown = _tidy(total)
            self._fee_shown = (total, shown)
        return shown

    def fees(self) -> dict[str, Decimal]:
        """Commissions per asset over every position."""
        return self._per_asset(lambda book: book.fees)

    def unvalued_fees(self) -> dict[str, Decimal]:
        """Commissions per asset that have no price here (excluded from every PnL figure)."""
        return self._per_asset(lambda book: book.unvalued)

    def _per_asset(self, amounts: Callable[[_Book], Mapping[str, Decimal]]) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for book in self._books.values():
            for asset, amount in amounts(book).items():
                _add(totals, asset, amount)
        return totals

    def asset_flows(self, venue: str) -> dict[str, Decimal]:
        """What our fills moved in the account at ``venue``, per asset, exactly: base bought - sold, quote
        received - paid, each commission out of its own asset (a base-asset fee out of the base, a BNB fee
        out of BNB)."""
        flows: dict[str, Decimal] = {}
        for (symbol, book_venue), book in self._books.items():
            if book_venue != venue:
                continue
            instrument = self._instruments[symbol]
            _add(flows, instrument.base_asset, instrument.steps_to_qty(book.quantity))
            _add(flows, instrument.quote_asset, _EXACT.multiply(Decimal(book.cash), self._units[symbol]))
            for asset, fee in book.fees.items():
                _add(flows, asset, _EXACT.minus(fee))
        return {asset: _tidy(amount) for asset, amount in flows.items()}

    def net_pnl(self, board: MarketBoard) -> Decimal:
        """Realized + unrealized PnL - the value of the priced fees, in quote currency."""
        return _tidy(self.mark(board)[0])

    def book_pnl(self, board: MarketBoard) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
        """Per (symbol, venue) book: realized PnL and unrealized PnL at mid (0 without a mid), quote currency,
        before fees."""
        out: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        for key, book in self._books.items():
            unit = self._units[key[0]]
            mid2 = board.mid2(key[0]) if book.quantity else None
            unrealized = 0 if mid2 is None else book.quantity * mid2 * _HALF_SUBUNITS - book.cost
            out[key] = (_quote(book.realized, unit), _quote(unrealized, unit))
        return out

    def mark(self, board: MarketBoard) -> tuple[Decimal, Decimal]:
        """``(net PnL, net exposure)`` at the board's mids, exactly and cheaply (for an equity curve marked
        after every fill): :meth:`net_pnl`'s value (not tidied: compare it, :func:`tidy` it to show it), and
        the traded quantities' value at mid summed over symbols, quote currency (a symbol without a mid
        counts 0 in both, as in :meth:`unrealized_pnl`)."""
        net, net_digits, exposure, exposure_digits = self.mark_units(board)
        return _EXACT.scaleb(Decimal(net), -net_digits), _EXACT.scaleb(Decimal(exposure), -exposure_digits)

    def mark_units(self, board: MarketBoard) -> tuple[int, int, int, int]:
        """:meth:`mark` in integers, for a curve marked after every fill without a Decimal operation:
        ``(net, net_digits, exposure, exposure_digits)``, each figure ``integer * 10**-digits`` exactly (the
        net has the decimal places of subtracting the priced fees' Decimal total from the marks)."""
        pnl, exposure = self._marked(board, exposure=True)
        net, digits = self._less_fees(pnl)
        return net, digits, exposure, self._mark_digits

    def net_units(self, board: MarketBoard) -> tuple[int, int]:
        """:meth:`mark_units`' net PnL alone (a drawdown needs no exposure): ``(net, digits)``."""
        pnl, _ = self._marked(board, exposure=False)
        return self._less_fees(pnl)

    def _less_fees(self, pnl: int) -> tuple[int, int]:
        """``pnl`` (``10**-mark_digits`` units) less the priced fees' total, as ``(integer, digits)``: digits the
        larger of the marks' and the total's decimal places (what subtracting the Decimals gives)."""
        total, fees, digits = self._fee_units
        if total is not self._fee_total:
            total = self._fee_total
            exponent = total.as_tuple().exponent
            digits = max(self._mark_digits, -exponent if isinstance(exponent, int) else 0)
            fees = int(_EXACT.scaleb(total, digits))
            self._fee_units = (total, fees, digits)
        if digits != self._mark_digits:
            pnl *= 10 ** (digits - self._mark_digits)
        return pnl - fees, digits

    def _marked(self, board: MarketBoard, *, exposure: bool) -> tuple[int, int]:
        """Net PnL before fees and (when asked) exposure at the board's mids, in ``10**-mark_digits`` units."""
        pnl = self._realized_total
        value = 0
        mid2s = board.mid2s
        for symbol, coefficient, constant, exposure_coefficient in self._terms_of_marks():
            mid2 = mid2s.get(symbol)
            if mid2 is not None:
                pnl += coefficient * mid2 + constant
                if exposure:
                    value += exposure_coefficient * mid2
        return pnl, value

    def _terms_of_marks(self) -> tuple[tuple[str, int, int, int], ...]:
        """Per held symbol, the integers that marks and the PnlForm multiply the mids by: PnL ``steps * mid2 *
        half - cost * factor`` as a coefficient of mid2 and a constant, exposure ``steps * mid2 * exposure
        factor`` as a coefficient; made once per fill, kept until the next."""
        terms = self._mark_terms
        if terms is None:
            terms = self._mark_terms = self._make_terms_of_marks()
        return terms

    def _make_terms_of_marks(self) -> tuple[tuple[str, int, int, int], ...]:
        half_factors = self._half_factors
        pnl_factors = self._pnl_factors
        exposure_factors = self._exposure_factors
        terms = []
        for symbol, (steps, cost) in self._open.items():
            if steps or cost:
                terms.append((symbol, steps * half_factors[symbol], -cost * pnl_factors[symbol],
                              steps * exposure_factors[symbol]))
        return tuple(terms)

    def pnl_form(self) -> PnlForm:
        """Net PnL as an exact integer form linear in the mids (see :class:`PnlForm`): :meth:`net_pnl` at any
        board, exactly; one object until the next fill."""
        form = self._form
        if form is None:
            symbols = []
            terms = []
            for symbol, coefficient, constant, _ in self._terms_of_marks():
                symbols.append(symbol)
                terms.append((coefficient, constant))
            # PnlForm(digits=, realized=, symbols=, terms=, fee_value=), built in C (one per fill)
            form = self._form = _new_tuple(PnlForm, (self._mark_digits, self._realized_total, tuple(symbols),
                                                     tuple(terms), self.fee_value()))
        return form

    def snapshot(self) -> PositionSnapshot:
        """An immutable view (read-only mappings over copies); cached until the next change. Its ``positions``
        hold each changed book as it is now and build the VenuePosition's Decimals when first read."""
        snapshot = self._snapshot
        if snapshot is None:
            self._refresh_views()
            form = self.pnl_form()
            snapshot = self._snapshot = PositionSnapshot(
                positions=_Views(dict(self._views)),
                net_steps=MappingProxyType(dict(self._net_steps)),
                held_steps=MappingProxyType(dict(self._net)),
                done_steps=MappingProxyType(dict(self._done)),
                realized_pnl=self.realized_pnl(),
                fee_value=form.fee_value,
                fills=self.stats.fills,
                drift=self._reconciler.drift,
                drift_breached=self._reconciler.breached,
                drift_reason=self._reconciler.breach_reason,
                pnl_form=form,
            )
        return snapshot
