"""Market data sources: each produces Ticks for the strategies, the recorder and the MarketBoard."""

from dma_bot.feed.mock import MockFeed, RandomWalk, RandomWalkParams

__all__ = ["MockFeed", "RandomWalk", "RandomWalkParams"]
