"""Smart order routing: venue scoring and child split (pure core) and the asyncio stage."""

from dma_bot.router.scoring import DEFAULT_VENUES, Router, RouterParams, RouterStats, VenueSpec
from dma_bot.router.stage import RouterStage

__all__ = ["DEFAULT_VENUES", "Router", "RouterParams", "RouterStage", "RouterStats", "VenueSpec"]
