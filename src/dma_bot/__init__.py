"""dma_bot: an asyncio trading daemon.

feed -> strategies -> risk -> router -> gateways -> positions / recorder / metrics.
"""

from dma_bot._native import CORES  # first: it decides whether the compiled cores or their sources are imported

__all__ = ["CORES", "__version__"]

__version__ = "0.1.0"
