"""Ledger: the pure core of the positions stage, folding execution reports into positions and PnL.

Owns, per (symbol, venue), the signed quantity in steps, the average entry price, the realized PnL and
the fees; per client order id the order's lifecycle state (checked against ``ORDER_TRANSITIONS``); the set
of trade ids already applied; and the per (symbol, side) ``done_steps`` that risk subtracts from what it
sent. It reads the side and ``last_qty`` from each report and never infers either. It does no per-tick
work: marks are read from a :class:`MarketBoard` only when :meth:`Ledger.unrealized_pnl` is asked.

Exactness: an average-cost book's average price and realized PnL are rationals (buys at 1, 2 and 2
average 5/3), and exact Fractions grow without bound over a long run. So each position keeps its open
cost (average price * signed quantity) and its realized PnL as integers of 10**-9 tick*step units;
fills add exactly, and only the cost share that a partial close removes is rounded half-even to that
unit. Realized minus open cost therefore always equals the exact cash flow of the fills, so realized +
unrealized PnL is exact at every mark; a partial close can move at most 0.5e-9 tick*step between the
two. The average price shown is cost / quantity rounded to 40 significant digits. Decimal is built only
at the border (:meth:`Ledger.snapshot`, the PnL readers), once per fill. No I/O, clock or asyncio.

Memory bound: orders are forgotten ``max_terminal_orders`` terminal orders after they ended (a later
report for one starts again from PENDING_NEW), and trade ids are remembered for the last
``max_trade_ids`` applied fills (an older replay is no longer recognised as a duplicate).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from types import MappingProxyType
from typing import Final

from dma_bot.model.enums import ExecStatus, Side, is_legal_transition
from dma_bot.model.events import ExecReport
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PositionSnapshot, VenuePosition

__all__ = ["DEFAULT_MAX_TERMINAL_ORDERS", "DEFAULT_MAX_TRADE_IDS", "SUBUNITS", "Ledger", "LedgerStats"]

_log = logging.getLogger(__name__)

DEFAULT_MAX_TERMINAL_ORDERS: Final = 65_536
DEFAULT_MAX_TRADE_IDS: Final = 262_144

SUBUNITS: Final = 10**9
"""Integer units per tick*step in which open cost and realized PnL are kept."""

_EXACT: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
_DIVIDE: Final = Context(prec=40, rounding=ROUND_HALF_EVEN)
_HALF_SUBUNITS: Final = SUBUNITS // 2
_PENDING_NEW: Final = ExecStatus.PENDING_NEW
_RELEASES_REST: Final = frozenset({ExecStatus.CANCELED, ExecStatus.REJECTED, ExecStatus.EXPIRED})


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
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1), context=_EXACT) if isinstance(exponent, int) and exponent > 0 else value


def _quote(subunits: int, unit: Decimal) -> Decimal:
    """Integer 10**-9 tick*step units -> quote currency, exactly."""
    return _tidy(_EXACT.multiply(_EXACT.scaleb(Decimal(subunits), -9), unit))


@dataclass(slots=True)
class LedgerStats:
    """Counters of what the ledger applied and refused (read by metrics)."""

    fills: int = 0
    duplicate_fills: int = 0
    illegal_transitions: int = 0
    unknown_symbols: int = 0
    forgotten_orders: int = 0


class _Book:
    """One (symbol, venue) position: signed steps, and open cost and realized PnL in SUBUNITS."""

    __slots__ = ("cost", "fees", "quantity", "realized")

    def __init__(self) -> None:
        self.quantity = 0
        self.cost = 0
        self.realized = 0
        self.fees = Decimal(0)

    def fill(self, sign: int, steps: int, price_ticks: int) -> None:
        held = self.quantity
        signed = sign * steps
        after = held + signed
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

    def average_price(self, tick_size: Decimal) -> Decimal:
        if not self.quantity:
            return Decimal(0)
        return _tidy(_DIVIDE.divide(_EXACT.multiply(Decimal(self.cost), tick_size),
                                    Decimal(self.quantity * SUBUNITS)))


class Ledger:
    """Positions, PnL, order states and done steps built from :class:`ExecReport`s."""

    __slots__ = (
        "_books",
        "_done",
        "_instruments",
        "_max_terminal",
        "_max_trades",
        "_net",
        "_orders",
        "_snapshot",
        "_stale",
        "_terminal",
        "_trade_order",
        "_trades",
        "_units",
        "_views",
        "stats",
    )

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        max_terminal_orders: int = DEFAULT_MAX_TERMINAL_ORDERS,
        max_trade_ids: int = DEFAULT_MAX_TRADE_IDS,
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
        self._max_terminal = max_terminal_orders
        self._max_trades = max_trade_ids
        self._books: dict[tuple[str, str], _Book] = {}
        self._views: dict[tuple[str, str], VenuePosition] = {}
        self._stale: set[tuple[str, str]] = set()
        self._net: dict[str, int] = {}
        self._done: dict[tuple[str, Side], int] = {}
        self._orders: dict[str, ExecStatus] = {}
        self._terminal: deque[str] = deque()
        self._trades: set[tuple[str, str, str]] = set()  # (venue, symbol, trade id): Binance ids are per symbol
        self._trade_order: deque[tuple[str, str, str]] = deque()
        self._snapshot: PositionSnapshot | None = None
        self.stats = LedgerStats()

    # -- applying reports ---------------------------------------------------------------------------------
    def apply(self, report: ExecReport) -> bool:
        """Fold one report in. True when it changed what :meth:`snapshot` shows.

        A report with ``last_qty > 0`` is a fill whatever its status (an IOC may report its last trade
        with EXPIRED). A duplicate (venue, trade_id) or an illegal order transition changes nothing and
        is counted; a fill without a trade id cannot be deduplicated and is applied."""
        symbol = report.symbol
        if symbol not in self._instruments:
            self.stats.unknown_symbols += 1
            _log.warning(
                "execution report for unknown symbol %r skipped: venue=%s client_order_id=%s",
                symbol, report.venue, report.client_order_id,
            )
            return False
        last_qty = report.last_qty
        trade_key = None
        if last_qty > 0 and report.trade_id is not None:
            trade_key = (report.venue, report.symbol, report.trade_id)
            if trade_key in self._trades:
                self.stats.duplicate_fills += 1
                return False
        client_order_id = report.client_order_id
        current = self._orders.get(client_order_id, _PENDING_NEW)
        status = report.status
        if not is_legal_transition(current, status):
            self.stats.illegal_transitions += 1
            _log.warning(
                "illegal order transition %s -> %s not applied: venue=%s client_order_id=%s "
                "venue_order_id=%s trade_id=%s",
                current, status, report.venue, client_order_id, report.venue_order_id, report.trade_id,
            )
            return False
        self._set_state(client_order_id, status)
        done = last_qty if last_qty > 0 else 0
        if status in _RELEASES_REST:
            done += report.order_qty - report.cum_qty
        changed = False
        if last_qty > 0:
            if trade_key is not None:
                self._remember_trade(trade_key)
            self._apply_fill(report)
            changed = True
        if done:
            done_key = (symbol, report.side)
            self._done[done_key] = self._done.get(done_key, 0) + done
            changed = True
        if changed:
            self._snapshot = None
        return changed

    def _apply_fill(self, report: ExecReport) -> None:
        key = (report.symbol, report.venue)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _Book()
        book.fill(report.side.sign, report.last_qty, report.last_price)
        book.fees = _EXACT.add(book.fees, report.fee)
        self._net[report.symbol] = self._net.get(report.symbol, 0) + report.side.sign * report.last_qty
        self.stats.fills += 1
        self._stale.add(key)  # its VenuePosition (Decimal average and PnL) is rebuilt once, at the next snapshot

    def _refresh_views(self) -> None:
        for key in self._stale:
            symbol, venue = key
            book = self._books[key]
            self._views[key] = VenuePosition(
                symbol=symbol,
                venue=venue,
                quantity=book.quantity,
                average_price=book.average_price(self._instruments[symbol].tick_size),
                realized_pnl=_quote(book.realized, self._units[symbol]),
                fees=book.fees,
            )
        self._stale.clear()

    def _set_state(self, client_order_id: str, status: ExecStatus) -> None:
        self._orders[client_order_id] = status
        if status.is_terminal:
            terminal = self._terminal
            terminal.append(client_order_id)
            if len(terminal) > self._max_terminal:
                forgotten = terminal.popleft()
                if self._orders.get(forgotten, _PENDING_NEW).is_terminal:
                    del self._orders[forgotten]
                    self.stats.forgotten_orders += 1

    def _remember_trade(self, trade_key: tuple[str, str, str]) -> None:
        self._trades.add(trade_key)
        order = self._trade_order
        order.append(trade_key)
        if len(order) > self._max_trades:
            self._trades.discard(order.popleft())

    # -- reading ------------------------------------------------------------------------------------------
    def order_status(self, client_order_id: str) -> ExecStatus | None:
        """The order's current state, or None when never seen (or forgotten after it ended)."""
        return self._orders.get(client_order_id)

    @property
    def open_orders(self) -> int:
        """Orders seen and not yet in a terminal state."""
        return sum(1 for status in self._orders.values() if not status.is_terminal)

    def _by_symbol(self, board: MarketBoard | None) -> dict[str, int]:
        """Realized PnL (board None) or unrealized PnL at mid, per symbol, in SUBUNITS."""
        totals: dict[str, int] = {}
        for (symbol, _venue), book in self._books.items():
            if board is None:
                amount = book.realized
            elif book.quantity:
                mid2 = board.mid2(symbol)
                if mid2 is None:
                    continue
                amount = book.quantity * mid2 * _HALF_SUBUNITS - book.cost
            else:
                continue
            totals[symbol] = totals.get(symbol, 0) + amount
        return totals

    def _in_quote(self, totals: dict[str, int]) -> Decimal:
        total = Decimal(0)
        for symbol, amount in totals.items():
            total = _EXACT.add(total, _quote(amount, self._units[symbol]))
        return _tidy(total)

    def realized_pnl(self) -> Decimal:
        """Realized PnL over every position, in quote currency (fees not included)."""
        return self._in_quote(self._by_symbol(None))

    def unrealized_pnl(self, board: MarketBoard) -> Decimal:
        """Open positions marked at mid = (bid + ask) / 2, exactly; a symbol with no tick yet adds 0."""
        return self._in_quote(self._by_symbol(board))

    def snapshot(self) -> PositionSnapshot:
        """An immutable view (read-only mappings over copies); cached until the next change."""
        snapshot = self._snapshot
        if snapshot is None:
            self._refresh_views()
            snapshot = self._snapshot = PositionSnapshot(
                positions=MappingProxyType(dict(self._views)),
                net_steps=MappingProxyType(dict(self._net)),
                done_steps=MappingProxyType(dict(self._done)),
                realized_pnl=self.realized_pnl(),
                fills=self.stats.fills,
            )
        return snapshot
