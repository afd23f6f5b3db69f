"""StrategyBooks: a backtest's money per strategy, and per symbol and venue inside it.

Owns the attribution of fills to strategies and nothing else: every child order the router sends carries its
strategy (``Route.strategy``); its client order id is remembered until the order's terminal report, and the fill
each execution report of it brought (as the total ledger judged it: a duplicate or an order state is decided
once, there) goes into that strategy's own :class:`~dma_bot.positions.ledger.Ledger` (``book_fill``: the same
money core as the total ledger, so realized PnL, fees per asset and unrealized PnL at mid are computed the same
way) and marks that strategy's :class:`~dma_bot.equity.Drawdown` (its peak and max drawdown). It also counts
fills and traded volume (base steps and quote notional) per (strategy, symbol, venue). Pure: no I/O, no clock.

Every route has a strategy, so fills, volume, fees and net PnL (cash, holdings at mid, fees) add up over the
strategies to the total ledger's; realized PnL need not: in the total book one strategy's buy can close another
strategy's short, while in their own books it opens a position. A report for an order this class never saw
routed is counted under ``unattributed`` and kept out of every strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from dma_bot.equity import Drawdown
from dma_bot.model.enums import TERMINAL_STATUSES
from dma_bot.model.events import ExecReport, Route
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.positions.ledger import Ledger, tidy

__all__ = ["StrategyBooks"]

_ZERO: Final = Decimal(0)


@dataclass(slots=True)
class _Flow:
    """One (strategy, symbol, venue): fills, base steps traded (both sides) and their notional, tick*step units."""

    fills: int = 0
    steps: int = 0
    notional: int = 0


class StrategyBooks:
    def __init__(self, instruments: Mapping[str, Instrument], board: MarketBoard) -> None:
        self._instruments = dict(instruments)
        self._board = board
        self._owner: dict[str, str] = {}  # open child client order id -> strategy
        self.ledgers: dict[str, Ledger] = {}
        self.drawdowns: dict[str, Drawdown] = {}
        self.flows: dict[tuple[str, str, str], _Flow] = {}
        self.unattributed = 0

    def routed(self, route: Route) -> None:
        strategy = route.strategy
        self._owner[route.client_order_id] = strategy
        if strategy not in self.ledgers:
            self.ledgers[strategy] = Ledger(self._instruments, board=self._board)
            self.drawdowns[strategy] = Drawdown()

    def apply(self, report: ExecReport, changed: bool, steps: int) -> str | None:
        """Book the report in its strategy's ledger as the total ledger applied it: ``changed`` is what its
        ``apply`` returned and ``steps`` the fill it booked (``last_fill_steps``), so duplicates and order
        states are judged once, by the total ledger; the strategy when its books changed, else None."""
        cid = report.client_order_id
        strategy = self._owner.pop(cid, None) if report.status in TERMINAL_STATUSES else self._owner.get(cid)
        if strategy is None:
            self.unattributed += 1
            return None
        if steps > 0:
            key = (strategy, report.symbol, report.venue)
            flow = self.flows.get(key)
            if flow is None:
                flow = self.flows[key] = _Flow()
            flow.fills += 1
            flow.steps += steps
            flow.notional += steps * report.last_price
            self.ledgers[strategy].book_fill(report, steps)
        return strategy if changed else None

    def mark(self, strategy: str) -> None:
        """The strategy's net PnL at the board's mids into its drawdown."""
        net, digits = self.ledgers[strategy].net_units(self._board)
        self.drawdowns[strategy].add_units(net, digits)

    def mark_all(self) -> None:
        for strategy in self.ledgers:
            self.mark(strategy)

    def report(self, strategies: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Per strategy of ``strategies`` (and any that traded): fills, volume, fees per asset, realized /
        unrealized / net PnL, max drawdown; and the same per symbol and venue inside it (``by_symbol_venue``). A
        strategy that never traded shows an empty book. Money as exact decimal strings."""
        board = self._board
        out: dict[str, dict[str, Any]] = {}
        for strategy in sorted({*strategies, *self.ledgers}):
            ledger = self.ledgers.get(strategy) or Ledger(self._instruments, board=board)
            drawdown = self.drawdowns.get(strategy) or Drawdown()
            snapshot = ledger.snapshot()
            rows = []
            volume = _ZERO
            fills = 0
            for (symbol, venue), (realized, unrealized) in sorted(ledger.book_pnl(board).items()):
                flow = self.flows[(strategy, symbol, venue)]  # a book exists only after a fill
                instrument = self._instruments[symbol]
                notional = tidy(instrument.ticks_to_price(flow.notional) * instrument.step_size)
                position = snapshot.positions[(symbol, venue)]
                rows.append({
                    "symbol": symbol, "venue": venue, "fills": flow.fills,
                    "volume": instrument.format_qty(flow.steps), "notional": str(notional),
                    "fees": {asset: str(tidy(amount)) for asset, amount in sorted(position.fees.items())},
                    "realized_pnl": str(realized), "unrealized_pnl": str(unrealized),
                    "position": str(position.holdings),
                })
                volume += notional
                fills += flow.fills
            out[strategy] = {
                "fills": fills,
                "notional": str(tidy(volume)),
                "fees": {asset: str(tidy(amount)) for asset, amount in sorted(ledger.fees().items())},
                "fee_value": str(snapshot.fee_value),
                "realized_pnl": str(snapshot.realized_pnl),
                "unrealized_pnl": str(ledger.unrealized_pnl(board)),
                "net_pnl": str(ledger.net_pnl(board)),
                "max_drawdown": str(tidy(drawdown.max_drawdown)),
                "by_symbol_venue": rows,
            }
        return out
