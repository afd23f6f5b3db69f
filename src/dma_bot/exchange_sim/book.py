"""Matching for one symbol: a simulated top of book plus our own resting orders. Pure: no I/O, no clock.

The market outside is one price level per side (the *touch*) with a size that the quote sets; an incoming
order takes liquidity only from the touch on the opposite side, at the touch price, and only as much as
is left there since the last quote update (so partial fills happen). A resting order fills, as maker at
its own price, when a new quote reaches it (a buy when the ask is at or below its price, a sell when the
bid is at or above), again only up to the touch size, in price then time priority. Prices are integer
ticks and quantities integer steps. Balances, ids, statuses and the wire live in
:mod:`dma_bot.exchange_sim.engine`, which owns the order lifecycle; this module only says who trades
how much at what price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NamedTuple

from dma_bot.model.enums import Side

__all__ = ["OPEN_STATUSES", "Fill", "SimOrder", "SymbolBook"]

OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})
_ZERO: Final = Decimal(0)


class Fill(NamedTuple):
    """One execution: ``qty`` steps at ``price`` ticks; ``maker`` when the order was resting."""

    price: int
    qty: int
    maker: bool


@dataclass(slots=True, eq=False, kw_only=True)
class SimOrder:
    """An order as the exchange keeps it. ``reserved`` is the balance still locked for it."""

    order_id: int
    symbol: str
    client_order_id: str
    side: Side
    order_type: str  # LIMIT, LIMIT_MAKER, MARKET
    time_in_force: str  # GTC, IOC, FOK (GTC for LIMIT_MAKER and MARKET, as Binance reports them)
    price: int  # ticks; 0 for MARKET
    quantity: int  # steps
    quote_order_qty: Decimal
    time_ms: int
    update_ms: int
    working_ms: int = -1
    filled: int = 0
    cum_quote: Decimal = _ZERO
    status: str = "NEW"
    reserved: Decimal = _ZERO
    expiry_reason: str = ""

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_working(self) -> bool:
        return self.working_ms >= 0 and self.is_open


class SymbolBook:
    """Top of book (ticks/steps) and resting orders of one symbol."""

    __slots__ = ("_ask_left", "_bid_left", "_resting", "ask", "ask_qty", "bid", "bid_qty", "update_id")

    def __init__(self, bid: int, ask: int, bid_qty: int, ask_qty: int) -> None:
        self.bid = bid
        self.ask = ask
        self.bid_qty = bid_qty
        self.ask_qty = ask_qty
        self._bid_left = bid_qty
        self._ask_left = ask_qty
        self.update_id = 1
        self._resting: list[SimOrder] = []

    # -- the simulated market ------------------------------------------------------------------------------
    def set_quote(self, bid: int, ask: int, bid_qty: int, ask_qty: int) -> list[tuple[SimOrder, Fill]]:
        """Install a new touch (fresh liquidity) and return the resting orders' fills it causes."""
        if bid <= 0 or ask <= bid:
            raise ValueError(f"quote: needs 0 < bid < ask, was bid={bid} ask={ask} ticks")
        if bid_qty < 0 or ask_qty < 0:
            raise ValueError(f"quote: sizes must be >= 0, was bid_qty={bid_qty} ask_qty={ask_qty} steps")
        self.bid, self.ask, self.bid_qty, self.ask_qty = bid, ask, bid_qty, ask_qty
        self._bid_left, self._ask_left = bid_qty, ask_qty
        self.update_id += 1
        return self.match_resting()

    @property
    def mid2(self) -> int:
        return self.bid + self.ask

    def crosses(self, side: Side, price: int) -> bool:
        """True when a limit order at ``price`` would take liquidity now."""
        return price >= self.ask if side is Side.BUY else price <= self.bid

    def available(self, side: Side, price: int | None) -> int:
        """Steps an incoming order may take now (``price`` None: any price, a MARKET order)."""
        if price is not None and not self.crosses(side, price):
            return 0
        return self._ask_left if side is Side.BUY else self._bid_left

    def take(self, side: Side, price: int | None, qty: int) -> Fill | None:
        """Take up to ``qty`` steps from the touch for an incoming order; None when nothing trades."""
        taken = min(qty, self.available(side, price))
        if taken <= 0:
            return None
        if side is Side.BUY:
            self._ask_left -= taken
            return Fill(self.ask, taken, False)
        self._bid_left -= taken
        return Fill(self.bid, taken, False)

    # -- resting orders -----------------------------------------------------------------------------------
    def rest(self, order: SimOrder) -> None:
        self._resting.append(order)

    def remove(self, order: SimOrder) -> None:
        self._resting.remove(order)

    @property
    def resting(self) -> list[SimOrder]:
        """Resting orders in arrival order (a copy)."""
        return list(self._resting)

    def match_resting(self) -> list[tuple[SimOrder, Fill]]:
        """Fill resting orders the touch has reached, as maker at their own price, up to the touch size.

        Filled orders stay in the book; the caller removes those that became terminal."""
        fills: list[tuple[SimOrder, Fill]] = []
        if not self._resting:
            return fills
        buys = sorted(
            (o for o in self._resting if o.side is Side.BUY and o.price >= self.ask),
            key=lambda o: (-o.price, o.order_id),
        )
        for order in buys:
            taken = min(order.remaining, self._ask_left)
            if taken <= 0:
                break
            self._ask_left -= taken
            fills.append((order, Fill(order.price, taken, True)))
        sells = sorted(
            (o for o in self._resting if o.side is Side.SELL and o.price <= self.bid),
            key=lambda o: (o.price, o.order_id),
        )
        for order in sells:
            taken = min(order.remaining, self._bid_left)
            if taken <= 0:
                break
            self._bid_left -= taken
            fills.append((order, Fill(order.price, taken, True)))
        return fills
