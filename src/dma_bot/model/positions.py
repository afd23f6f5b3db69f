"""PositionSnapshot: the read-only view of positions that the positions stage publishes.

Risk and the router read it through a ``Latest[PositionSnapshot]``; they never reach into the ledger.
Quantities are integer steps of the symbol's instrument; money is Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from dma_bot.model.enums import Side

__all__ = ["EMPTY_SNAPSHOT", "PositionSnapshot", "VenuePosition"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VenuePosition:
    symbol: str
    venue: str
    quantity: int  # signed steps: > 0 long, < 0 short
    average_price: Decimal  # average entry price of the open quantity (0 when flat)
    realized_pnl: Decimal
    fees: Decimal  # commissions paid, in the fee asset's units (summed as reported)


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot:
    """Positions after the ``fills``-th applied fill.

    ``done_steps[(symbol, side)]`` counts steps of our orders on that side that can no longer fill
    (filled, or cancelled/rejected/expired leaves): risk subtracts it from what it sent to know the
    quantity still open at the venues.
    """

    positions: Mapping[tuple[str, str], VenuePosition] = field(default_factory=_empty)
    net_steps: Mapping[str, int] = field(default_factory=_empty)
    done_steps: Mapping[tuple[str, Side], int] = field(default_factory=_empty)
    realized_pnl: Decimal = Decimal(0)
    fills: int = 0

    def venue_steps(self, symbol: str, venue: str) -> int:
        position = self.positions.get((symbol, venue))
        return 0 if position is None else position.quantity


EMPTY_SNAPSHOT = PositionSnapshot()
