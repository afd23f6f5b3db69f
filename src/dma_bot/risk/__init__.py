"""Pre-trade risk: limits, kill switch and rate limit (pure core), client order ids, and the asyncio stage."""

from dma_bot.risk.limits import KillSwitch, RiskEngine, RiskParams, RiskStats, TokenBucket
from dma_bot.risk.order_ids import MAX_PARENT_ID_LENGTH, ClientOrderIds, run_prefix
from dma_bot.risk.stage import RiskStage

__all__ = [
    "MAX_PARENT_ID_LENGTH",
    "ClientOrderIds",
    "KillSwitch",
    "RiskEngine",
    "RiskParams",
    "RiskStage",
    "RiskStats",
    "TokenBucket",
    "run_prefix",
]
