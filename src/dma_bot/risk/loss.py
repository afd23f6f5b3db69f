"""The loss limit of pre-trade risk: is net PnL (realized + unrealized - fees) at or below ``-max_loss``?

Realized PnL is ``PositionSnapshot.realized_pnl`` less ``PositionSnapshot.fee_value`` (the fees that have
a price, valued in the quote asset; unvalued fees are not counted); unrealized PnL marks every venue's
traded quantity at the board mid. ``pnl <= -max_loss`` is a half-space that is
linear in the mids, so when the snapshot changes (its ``fills`` count or its ``positions`` mapping) it is
turned once, with exact Fractions, into integer coefficients per held symbol and one integer threshold; a
check then only sums ``coefficient * mid2`` over the held symbols and compares, and not even that while the
held symbols' quotes are the ones it last summed (the signals of one risk batch all see the same board). A
held symbol without a mid yet is marked at its entry price (an exact Fraction fallback). Pure: no clock,
no I/O; the RiskEngine owns when to ask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from dma_bot.model.events import Tick
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PositionSnapshot

__all__ = ["LossLimit"]


class LossLimit:
    """``breached(snapshot)`` against ``max_loss`` (> 0); ``units[symbol]`` is (tick * step / 2, step) as
    Fractions: the PnL per step held per unit of mid2 (bid + ask), and the step size."""

    def __init__(self, max_loss: Decimal, units: Mapping[str, tuple[Fraction, Fraction]], board: MarketBoard) -> None:
        self._max_loss = Fraction(max_loss)
        self._max_loss_ratio = max_loss.as_integer_ratio()
        self._units = dict(units)
        self._board = board
        self._snapshot: PositionSnapshot | None = None
        self._terms: tuple[tuple[str, int, tuple[int, int]], ...] = ()  # (symbol, mid2 coefficient, cost ratio)
        self._held: tuple[str, ...] = ()
        self._quotes: tuple[Tick | None, ...] | None = None  # the held symbols' ticks last evaluated
        self._result = False
        self._base = (0, 1)
        self._threshold = 0
        self._scale = 1

    def breached(self, snapshot: PositionSnapshot) -> bool:
        """True when net PnL (unrealized marked at the board's mids) is at or below -max_loss."""
        cached = self._snapshot
        if snapshot is not cached:
            if cached is None or snapshot.fills != cached.fills or snapshot.positions is not cached.positions:
                self._prepare(snapshot)
            self._snapshot = snapshot
        symbols = self._held
        if not symbols:
            return self._threshold >= 0  # nothing held: realized PnL alone
        quotes = tuple(map(self._board.last.get, symbols))
        if quotes == self._quotes:
            return self._result  # same terms, same quotes (a risk batch sees one board): same answer
        if None in quotes:
            result = self._breached_partial()
        else:
            total = 0
            for (_symbol, coefficient, _cost), tick in zip(self._terms, quotes, strict=True):
                total += coefficient * (tick.bid + tick.ask)  # type: ignore[union-attr]
            result = total <= self._threshold
        self._quotes = quotes
        self._result = result
        return result

    def _breached_partial(self) -> bool:
        """Some held symbol has no mid: mark it at its entry prices (no unrealized PnL for it)."""
        bound = Fraction(*self._base)
        total = 0
        for symbol, coefficient, cost in self._terms:
            mid2 = self._board.mid2(symbol)
            if mid2 is not None:
                total += coefficient * mid2
                bound += Fraction(*cost)
        return total <= bound

    def _prepare(self, snapshot: PositionSnapshot) -> None:
        """pnl = realized - fee value + sum over symbols (net * step * tick / 2 * mid2 - step * sum(q * avg)).

        Scaled by the common denominator of the per-symbol ``step * tick / 2`` the mid2 coefficients are
        integers; the breach test ``sum(coefficient * mid2) <= floor(threshold)`` is then exact. Every other
        term is an exact integer ratio (``as_integer_ratio`` of the Decimals) added over a common denominator
        in plain ints (no Fraction: this runs after every fill); the threshold is their floor."""
        held: dict[str, list[int]] = {}  # symbol -> [net steps, cost numerator, cost denominator]
        lcm = math.lcm
        for (symbol, _venue), position in snapshot.positions.items():
            quantity = position.traded_quantity
            if quantity:
                numerator, denominator = position.average_price.as_integer_ratio()
                entry = held.get(symbol)
                if entry is None:
                    held[symbol] = [quantity, quantity * numerator, denominator]
                else:
                    common = lcm(entry[2], denominator)
                    entry[0] += quantity
                    entry[1] = entry[1] * (common // entry[2]) + quantity * numerator * (common // denominator)
                    entry[2] = common
        symbols = self._units
        scale = 1
        for symbol in held:
            if symbol not in symbols:
                raise ValueError(f"positions: symbol {symbol!r} has no instrument")
            scale = lcm(scale, symbols[symbol][0].denominator)
        # base = (-max_loss - realized + fee value) * scale, as numerator / denominator
        loss_n, loss_d = self._max_loss_ratio
        realized_n, realized_d = snapshot.realized_pnl.as_integer_ratio()
        fee_n, fee_d = snapshot.fee_value.as_integer_ratio()
        denominator = lcm(loss_d, realized_d, fee_d)
        numerator = (fee_n * (denominator // fee_d) - loss_n * (denominator // loss_d)
                     - realized_n * (denominator // realized_d)) * scale
        self._base = (numerator, denominator)  # a Fraction only on the rare paths (partial, pnl)
        terms = []
        for symbol, (net, cost_numerator, cost_denominator) in held.items():
            unit, step = symbols[symbol]
            coefficient = net * unit.numerator * (scale // unit.denominator)
            cost = (cost_numerator * step.numerator * scale, cost_denominator * step.denominator)
            terms.append((symbol, coefficient, cost))
            common = lcm(denominator, cost[1])
            numerator = numerator * (common // denominator) + cost[0] * (common // cost[1])
            denominator = common
        self._terms = tuple(terms)
        self._held = tuple(symbol for symbol, _, _ in terms)
        self._quotes = None
        self._threshold = numerator // denominator  # floor(base + sum of the costs)
        self._scale = scale

    def pnl(self) -> Decimal:
        """Net PnL at the current mids (for the kill-switch reason only)."""
        scale = self._scale
        value = -Fraction(*self._base) / scale - self._max_loss
        for symbol, coefficient, cost in self._terms:
            mid2 = self._board.mid2(symbol)
            if mid2 is not None:
                value += Fraction(coefficient * mid2, scale) - Fraction(*cost) / scale
        return Decimal(value.numerator) / Decimal(value.denominator)
