"""PositionSnapshot: the read-only view of positions that the positions stage publishes.

Risk and the router read it through a ``Latest`` (typed by what they read of it, :class:`PositionsView`); they
never reach into the ledger. The backtest, one thread, gives them the ledger read in place instead
(:class:`~dma_bot.positions.ledger.LedgerView`): what a snapshot taken before each decision would show.
Quantities are integer steps of the symbol's instrument; money is Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple, Protocol

from dma_bot.model.enums import Side

__all__ = ["EMPTY_PNL_FORM", "EMPTY_SNAPSHOT", "PnlForm", "PositionSnapshot", "PositionsView", "VenuePosition"]


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class VenuePosition:
    """One symbol at one venue, as the venue's account holds it.

    ``holdings`` is the exact base quantity the account gained (bought minus sold, net of every commission
    charged in the base asset: a BUY on Binance pays its commission in the asset received). ``quantity`` is
    the same in whole steps, rounded down (what can be sold; a short is rounded away from zero).
    ``traded_quantity`` is bought minus sold in steps, gross of commissions; ``average_price`` and
    ``realized_pnl`` are the average-cost book of the traded quantity, before fees. ``fees`` are the
    commissions per asset, never added across assets; ``fee_value`` is the quote-asset value of those that
    have a price (quote at face, base at the fill price, another asset at its ``<ASSET><QUOTE>`` mid when that
    symbol is traded here) and ``unvalued_fees`` the rest, which no PnL figure includes.
    """

    symbol: str
    venue: str
    quantity: int
    holdings: Decimal
    traded_quantity: int
    average_price: Decimal
    realized_pnl: Decimal
    fees: Mapping[str, Decimal] = field(default_factory=_empty)
    fee_value: Decimal = Decimal(0)
    unvalued_fees: Mapping[str, Decimal] = field(default_factory=_empty)


class PnlForm(NamedTuple):
    """Net PnL as an exact linear function of the board mids, in integers of ``10**-digits`` quote units.

    ``net PnL * 10**digits = realized + sum(coefficient * mid2 + constant) - fee_value * 10**digits``, the sum
    over the held ``symbols`` that have a mid2 (bid + ask) on the board, ``terms[i]`` being ``symbols[i]``'s
    ``(coefficient, constant)``: a symbol without a mid adds no unrealized PnL. ``realized`` is the realized
    PnL before fees (the snapshot's ``realized_pnl``, exactly), ``fee_value`` the snapshot's. The ledger keeps
    it as fills arrive (:meth:`dma_bot.positions.ledger.Ledger.pnl_form`); the loss limit reads it. A NamedTuple
    (build it with keywords): one is made after every fill, and a tuple is built in C.
    """

    digits: int = 0
    realized: int = 0
    symbols: tuple[str, ...] = ()
    terms: tuple[tuple[int, int], ...] = ()
    fee_value: Decimal = Decimal(0)


EMPTY_PNL_FORM = PnlForm()
"""No position, no PnL (the form of a snapshot built without a ledger)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot:
    """Positions after the ``fills``-th applied fill.

    ``net_steps[symbol]`` adds the venues' ``quantity`` (held, net of base-asset commissions); ``realized_pnl``
    and ``fee_value`` add the venues' figures (quote currency): net PnL = realized + unrealized - fee_value.

    ``done_steps[(symbol, side)]`` counts steps of our orders on that side that can no longer fill
    (filled, or cancelled/rejected/expired leaves): risk subtracts it from what it sent to know the
    quantity still open at the venues.

    ``drift[(venue, asset)]`` is the venue's balance of the asset minus what the ledger expects it to be, at
    that venue's newest account read (exact; only venues that report an account: see ``positions.drift``).
    ``drift_breached`` is True when a drift beyond one step is worth more than the configured bound
    (``RISK_MAX_DRIFT``), with ``drift_reason`` saying which; risk then moves the kill switch to reducing.

    ``held_steps[(symbol, venue)]`` is ``positions[(symbol, venue)].quantity`` as a plain int (what the router
    reads for every order; the ledger builds ``positions``' Decimal figures only when they are read).

    ``pnl_form`` is the same net PnL as an exact integer linear form in the mids (:class:`PnlForm`), what the
    loss limit reads; a snapshot built without a ledger has :data:`EMPTY_PNL_FORM` (flat, zero PnL).
    """

    positions: Mapping[tuple[str, str], VenuePosition] = field(default_factory=_empty)
    net_steps: Mapping[str, int] = field(default_factory=_empty)
    done_steps: Mapping[tuple[str, Side], int] = field(default_factory=_empty)
    realized_pnl: Decimal = Decimal(0)
    fee_value: Decimal = Decimal(0)
    fills: int = 0
    drift: Mapping[tuple[str, str], Decimal] = field(default_factory=_empty)
    drift_breached: bool = False
    drift_reason: str = ""
    pnl_form: PnlForm = EMPTY_PNL_FORM
    held_steps: Mapping[tuple[str, str], int] = field(default_factory=_empty)

    def venue_steps(self, symbol: str, venue: str) -> int:
        return self.held_steps.get((symbol, venue), 0)


EMPTY_SNAPSHOT = PositionSnapshot()


class PositionsView(Protocol):
    """What risk and the router read of positions: a published :class:`PositionSnapshot` (the daemon), or the
    ledger read in place (:class:`~dma_bot.positions.ledger.LedgerView`: the backtest, one thread)."""

    @property
    def net_steps(self) -> Mapping[str, int]: ...

    @property
    def held_steps(self) -> Mapping[tuple[str, str], int]: ...

    @property
    def done_steps(self) -> Mapping[tuple[str, Side], int]: ...

    @property
    def pnl_form(self) -> PnlForm: ...

    @property
    def drift_breached(self) -> bool: ...

    @property
    def drift_reason(self) -> str: ...
