"""dma_bot: an asyncio trading daemon.

feed -> strategies -> risk -> router -> gateways -> positions / recorder / metrics.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
