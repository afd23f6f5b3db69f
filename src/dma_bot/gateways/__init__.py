"""Gateways: one adapter per venue, turning Routes into the ExecReports that venue sent.

``base`` holds the Gateway protocol and its counters, ``sim_venue`` the pure simulated exchange, ``mock``
the asyncio shell that runs it live. Venue-specific wire code (Binance) lives in its own modules here.
"""

from dma_bot.gateways.base import Gateway, GatewayStats
from dma_bot.gateways.mock import MockGateway
from dma_bot.gateways.sim_venue import SimVenue, SimVenueParams

__all__ = ["Gateway", "GatewayStats", "MockGateway", "SimVenue", "SimVenueParams"]
