"""The loss limit of pre-trade risk: is net PnL (realized + unrealized - fees) at or below ``-max_loss``?

Net PnL is the ledger's (:meth:`dma_bot.positions.ledger.Ledger.net_pnl`): realized PnL less the value of the
fees that have a price, plus every traded quantity marked at the board mid (a symbol without a mid yet adds no
unrealized PnL). The ledger publishes it with every snapshot as an exact integer form linear in the mids
(:class:`~dma_bot.model.positions.PnlForm`), so ``pnl <= -max_loss`` is a half-space: when the snapshot's
form changes it is turned into one integer threshold (one exact floor of ``(fee value - max_loss) *
10**digits``); a check then only sums ``coefficient * mid2 + constant`` over the held symbols that have a mid
and compares (a few integer terms: cheaper than telling whether the quotes changed since the last check).
Pure: no clock, no I/O; the RiskEngine owns when to ask.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, Rounded
from fractions import Fraction
from typing import Final

from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PnlForm, PositionsView

__all__ = ["LossLimit"]

# exact or an error, never a rounded difference
_EXACT: Final = Context(prec=80, traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow])


class LossLimit:
    """``breached(snapshot)`` against ``max_loss`` (> 0), at the mids of ``board``."""

    def __init__(self, max_loss: Decimal, board: MarketBoard) -> None:
        self._max_loss = max_loss
        self._loss_ratio = max_loss.as_integer_ratio()
        self._board = board
        self._form: PnlForm | None = None
        self._held: tuple[tuple[str, int, int], ...] = ()  # per held symbol: (symbol, mid2 coefficient, constant)
        self._threshold = 0
        self._fee: Decimal | None = None  # the fee value and digits _fee_bound was computed for
        self._digits = 0
        self._fee_bound = 0

    def breached(self, snapshot: PositionsView) -> bool:
        """True when net PnL (unrealized marked at the board's mids) is at or below -max_loss."""
        form = snapshot.pnl_form
        if form is not self._form:
            self._prepare(form)
        if not self._held:
            return self._threshold >= 0  # nothing held: realized PnL and fees alone
        mid2s = self._board.mid2s
        total = 0
        for symbol, coefficient, constant in self._held:
            mid2 = mid2s.get(symbol)
            if mid2 is not None:
                total += coefficient * mid2 + constant
        return total <= self._threshold

    def _prepare(self, form: PnlForm) -> None:
        """``realized + S - fee * 10**digits <= -max_loss * 10**digits`` with S the integer sum over the terms
        is ``S <= floor((fee - max_loss) * 10**digits) - realized``: one exact floor, in integer ratios, redone
        only when the fee value changed."""
        fee = form.fee_value
        digits = form.digits
        if fee is not self._fee or digits != self._digits:
            self._fee_bound = self._floor_scaled(fee, digits)
            self._fee = fee
            self._digits = digits
        self._threshold = self._fee_bound - form.realized
        symbols, terms = form.symbols, form.terms
        held = []
        for index in range(len(symbols)):  # no zip(strict=...): a keyword call is the slow path compiled
            coefficient, constant = terms[index]
            held.append((symbols[index], coefficient, constant))
        self._held = tuple(held)
        self._form = form

    def _floor_scaled(self, fee: Decimal, digits: int) -> int:
        """``floor((fee - max_loss) * 10**digits)``, exactly: Decimal arithmetic that may not round (it raises
        Inexact instead), or integer ratios for a difference too long for it."""
        try:
            difference = _EXACT.scaleb(_EXACT.subtract(fee, self._max_loss), digits)
        except (Inexact, Rounded):
            fee_numerator, fee_denominator = fee.as_integer_ratio()
            loss_numerator, loss_denominator = self._loss_ratio
            return ((fee_numerator * loss_denominator - loss_numerator * fee_denominator) * 10**digits
                    // (fee_denominator * loss_denominator))
        return int(difference.to_integral_value(ROUND_FLOOR))

    def pnl(self) -> Decimal:
        """Net PnL at the current mids (for the kill-switch reason only)."""
        form = self._form
        if form is None:
            return Decimal(0)
        total = form.realized
        for symbol, (coefficient, constant) in zip(form.symbols, form.terms, strict=True):
            mid2 = self._board.mid2(symbol)
            if mid2 is not None:
                total += coefficient * mid2 + constant
        value = Fraction(total, 10**form.digits) - Fraction(form.fee_value)
        return Decimal(value.numerator) / Decimal(value.denominator)
