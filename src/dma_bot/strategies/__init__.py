"""Strategies: Tick -> Signal, one synchronous instance per (strategy, symbol), plus their asyncio worker shell.

Re-exports the public API. Sizing, risk and routing of the signals belong to later stages.
"""

from dma_bot.strategies.base import STRATEGY_NAMES, Strategy, StrategyParams, make_strategy
from dma_bot.strategies.ma_crossover import MACrossover, MACrossoverParams
from dma_bot.strategies.mean_reversion import MeanReversion, MeanReversionParams
from dma_bot.strategies.vol_breakout import VolBreakout, VolBreakoutParams
from dma_bot.strategies.workers import StrategyWorker, shard

__all__ = [
    "STRATEGY_NAMES",
    "MACrossover",
    "MACrossoverParams",
    "MeanReversion",
    "MeanReversionParams",
    "Strategy",
    "StrategyParams",
    "StrategyWorker",
    "VolBreakout",
    "VolBreakoutParams",
    "make_strategy",
    "shard",
]
