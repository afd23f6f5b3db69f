"""Positions: the exact ledger (pure) and the stage that publishes its snapshots."""

from dma_bot.positions.ledger import DEFAULT_MAX_TERMINAL_ORDERS, DEFAULT_MAX_TRADE_IDS, Ledger, LedgerStats
from dma_bot.positions.stage import PositionsStage

__all__ = ["DEFAULT_MAX_TERMINAL_ORDERS", "DEFAULT_MAX_TRADE_IDS", "Ledger", "LedgerStats", "PositionsStage"]
