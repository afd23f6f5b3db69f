"""Reconciliation: the ledger against a venue's own account, per asset and per open order. Pure.

A Binance venue reads its account (free + locked per asset) and its open orders at start-up and after
every user-data resubscription, and sends an :class:`AccountSnapshot` behind the execution reports it
decided before the read, so the ledger has applied those when the snapshot arrives. Per venue:

* The first snapshot is the baseline: its balances, and the ledger's asset flows at that moment (what our
  fills moved at that venue: base bought - sold, quote received - paid, every commission out of its own
  asset; nothing yet when the read is the start-up one).
* For every snapshot (the first trivially) and each tracked asset (the base and quote assets of the
  instruments, and any asset a commission was paid in): expected = baseline balance + (flows now - flows at
  the baseline), drift = actual - expected. Every tracked asset's drift is kept (:attr:`Reconciler.drift`,
  exported as ``position_drift``); one beyond the asset's tolerance is a ``position_drift`` Note. The
  tolerance is one step of the asset: the largest step of the symbols with that base asset, for a quote
  asset one tick x step of its symbols (the smallest quote amount a fill moves), never under 10**-8
  (the precision of Binance balances).
* Open orders, compared by the ids the ledger has seen: an order open in our books that the venue does
  not list, and one the venue lists that our books say ended, are ``open_order_mismatch`` Notes. An order
  the ledger never saw (another session's, a manual one, or ours whose first report is still on its way)
  is not judged.
* Breach: the part of a drift that two reads in a row show (the venue's previous read and this one: drifts of
  the same sign, the smaller in size; the baseline read shows none), when it is beyond the asset's tolerance
  and its value exceeds ``max_drift`` (0 = never), or it has no price to value it. A drift only one read shows
  is noted and judged again at the next read, which the gateway takes soon after each read that follows a
  resubscription (``BINANCE_ACCOUNT_RECHECK_S``). The value is in quote currency: a base asset at the mid of a
  symbol with that base on the board, a quote asset at face. One bound in quote money covers every asset
  alike (a missed fill shows in the base and in the quote asset, a stray transfer in either); a bound in steps
  would differ per symbol and could not speak of the quote asset at all. :attr:`Reconciler.breached` reflects
  the newest read of every venue; risk moves the kill switch to reducing on it (and it stays there).

Timing, honestly. The read comes after the stream is subscribed, so a fill after the read reaches us as a
report behind the snapshot, and neither side has it at the comparison. A fill between the subscription and
the read is in the balance while its report is still behind the snapshot: it shows as drift of its size
(and an order that ended in that window as open in our books only) until the next read. That is why one
read never breaches: the recheck a moment later has those reports, so the drift is gone there, while a fill
we really missed (or a transfer) shows in both. Two reads can each catch a fill in flight; only what both
show of the same sign counts. A baseline taken late (the start-up read failed) carries such a fill into every
later comparison of that venue. Drift says the two sides disagree, not why: a deposit, a withdrawal or
another session trading the same account shows exactly like a missed fill.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from types import MappingProxyType
from typing import Final

from dma_bot.model.enums import ExecStatus, NoteKind
from dma_bot.model.events import AccountSnapshot, Note
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard

__all__ = ["BALANCE_PRECISION", "Reconciler"]

BALANCE_PRECISION: Final = Decimal("0.00000001")
"""The smallest amount a Binance balance shows: the tolerance no asset goes under."""

_EXACT: Final = Context(prec=80)
_ZERO: Final = Decimal(0)


def _text(value: Decimal) -> str:
    """Plain decimal text without trailing zeros or an exponent."""
    return f"{value.normalize(_EXACT):f}"


def _lasting(before: Decimal, now: Decimal) -> Decimal:
    """What two drifts in a row have in common: the smaller of two of the same sign, else nothing."""
    if before > 0 and now > 0:
        return min(before, now)
    if before < 0 and now < 0:
        return max(before, now)
    return _ZERO


def _signed(value: Decimal) -> str:
    text = _text(value)
    return text if text.startswith("-") else f"+{text}"


class _Venue:
    """One venue's baseline and its newest comparison."""

    __slots__ = ("balances", "breaches", "drift", "flows")

    def __init__(self, balances: Mapping[str, Decimal], flows: Mapping[str, Decimal]) -> None:
        self.balances = dict(balances)
        self.flows = dict(flows)
        self.drift: dict[str, Decimal] = {}
        self.breaches: list[str] = []


class Reconciler:
    """Compares each :class:`AccountSnapshot` with the ledger's flows and orders (see the module docstring).

    ``max_drift`` is the quote value beyond which a drift breaches (0 = never); ``board`` prices base assets.
    """

    __slots__ = ("_assets", "_board", "_by_base", "_drift", "_max_drift", "_quotes", "_tolerance", "_venues",
                 "breach_reason", "breached")

    def __init__(
        self, instruments: Mapping[str, Instrument], *, max_drift: Decimal, board: MarketBoard | None = None
    ) -> None:
        if not isinstance(max_drift, Decimal) or not max_drift.is_finite() or max_drift < 0:
            raise ValueError(f"max_drift: a finite Decimal >= 0, was {max_drift!r}")
        self._max_drift = max_drift
        self._board = board
        self._by_base: dict[str, list[Instrument]] = {}
        self._quotes: set[str] = set()
        tolerance: dict[str, Decimal] = {}
        for instrument in instruments.values():
            base, quote = instrument.base_asset, instrument.quote_asset
            if base:
                self._by_base.setdefault(base, []).append(instrument)
                tolerance[base] = max(tolerance.get(base, BALANCE_PRECISION), instrument.step_size)
            if quote:
                self._quotes.add(quote)
                unit = _EXACT.multiply(instrument.tick_size, instrument.step_size)
                tolerance[quote] = max(tolerance.get(quote, BALANCE_PRECISION), unit)
        self._tolerance = tolerance
        self._assets = frozenset(tolerance)
        self._venues: dict[str, _Venue] = {}
        self._drift: Mapping[tuple[str, str], Decimal] = MappingProxyType({})
        self.breached = False
        self.breach_reason = ""

    @property
    def drift(self) -> Mapping[tuple[str, str], Decimal]:
        """(venue, asset) -> drift at that venue's newest snapshot, sorted; read-only."""
        return self._drift

    def tolerance(self, asset: str) -> Decimal:
        """One step of ``asset`` (see the module docstring)."""
        return self._tolerance.get(asset, BALANCE_PRECISION)

    def reconcile(
        self,
        account: AccountSnapshot,
        flows: Mapping[str, Decimal],
        orders: Mapping[str, tuple[str, ExecStatus]],
    ) -> list[Note]:
        """Compare ``account`` with the ledger: ``flows`` per asset at that venue now, ``orders`` every order
        of that venue the ledger remembers (client id -> (symbol, status)). Returns the Notes, in asset then
        order order; updates :attr:`drift`, :attr:`breached` and :attr:`breach_reason`."""
        venue_name = account.venue
        balances = account.balances
        venue = self._venues.get(venue_name)
        if venue is None:
            venue = self._venues[venue_name] = _Venue(balances, flows)
        notes: list[Note] = []
        previous = venue.drift  # the venue's previous read (none for the baseline: no drift there)
        venue.drift = {}
        venue.breaches = []
        maximum = self._max_drift
        for asset in sorted(asset for asset in self._assets.union(flows, venue.flows) if asset):
            actual = balances.get(asset, _ZERO)
            change = _EXACT.subtract(flows.get(asset, _ZERO), venue.flows.get(asset, _ZERO))
            baseline = venue.balances.get(asset, _ZERO)
            expected = _EXACT.add(baseline, change)
            drift = _EXACT.subtract(actual, expected)
            venue.drift[asset] = drift
            tolerance = self.tolerance(asset)
            if abs(drift) <= tolerance:
                continue
            detail = (f"{asset}: account {_text(actual)}, expected {_text(expected)} (baseline {_text(baseline)}, "
                      f"ledger {_signed(change)}): drift {_signed(drift)}, beyond one step {_text(tolerance)}")
            value = self._value(asset, drift)
            if value is not None:
                detail += f", worth {_text(value)}"
            if maximum and (value is None or value > maximum):
                lasting = _lasting(previous.get(asset, _ZERO), drift)
                lasting_value = self._value(asset, lasting)
                if abs(lasting) > tolerance and (lasting_value is None or lasting_value > maximum):
                    worth = "has no price to value it" if lasting_value is None else f"worth {_text(lasting_value)}"
                    venue.breaches.append(f"{venue_name} {asset} drift {_signed(lasting)} {worth} in two reads, "
                                          f"beyond max {_text(maximum)}")
                    detail += f"; beyond the bound {_text(maximum)} in two reads: breached"
                elif not lasting:
                    detail += f"; beyond the bound {_text(maximum)}, not in the read before: judged at the next read"
                else:
                    detail += (f"; beyond the bound {_text(maximum)}, the read before showed {_signed(lasting)} of it: "
                               f"judged at the next read")
            notes.append(Note(kind=NoteKind.POSITION_DRIFT, venue=venue_name, symbol="", client_order_id="",
                              detail=detail, ts_ns=account.ts_ns))
        notes += self._orders(account, orders)
        self._publish()
        return notes

    def _orders(self, account: AccountSnapshot, orders: Mapping[str, tuple[str, ExecStatus]]) -> list[Note]:
        listed = set(account.open_order_ids)
        notes: list[Note] = []
        for cid, (symbol, status) in orders.items():
            if not status.is_terminal and cid not in listed:
                detail = f"open in our books ({status}) but not among the venue's {len(listed)} open orders"
            elif status.is_terminal and cid in listed:
                detail = f"open at the venue but {status} in our books"
            else:
                continue
            notes.append(Note(kind=NoteKind.OPEN_ORDER_MISMATCH, venue=account.venue, symbol=symbol,
                              client_order_id=cid, detail=detail, ts_ns=account.ts_ns))
        return notes

    def _value(self, asset: str, amount: Decimal) -> Decimal | None:
        """|amount| of ``asset`` in quote currency: at a mid for a base asset, at face for a quote asset."""
        size = abs(amount)
        board = self._board
        if board is not None:
            for instrument in self._by_base.get(asset, ()):
                mid2 = board.mid2(instrument.symbol)
                if mid2 is not None:
                    return _EXACT.divide(_EXACT.multiply(size, instrument.ticks_to_price(mid2)), Decimal(2))
        return size if asset in self._quotes else None

    def _publish(self) -> None:
        self._drift = MappingProxyType({
            (venue_name, asset): drift
            for venue_name, venue in sorted(self._venues.items())
            for asset, drift in venue.drift.items()
        })
        reasons = [reason for _, venue in sorted(self._venues.items()) for reason in venue.breaches]
        self.breached = bool(reasons)
        self.breach_reason = "; ".join(reasons)
