"""RouterStage: the asyncio shell around :class:`Router`.

Takes orders from its inbox, routes each against the newest published PositionSnapshot and the
wall-clock time, and puts every child Route on its venue's output. It makes no decision of its own, and
closes every venue output exactly once when the inbox ends.
"""

from __future__ import annotations

from collections.abc import Mapping

from dma_bot.bus import Channel, Fanout, Latest
from dma_bot.clock import Clock
from dma_bot.model.events import Order, Route
from dma_bot.model.positions import PositionSnapshot
from dma_bot.router.scoring import Router

__all__ = ["RouterStage"]


class RouterStage:
    def __init__(
        self,
        router: Router,
        inbox: Channel[Order],
        venues: Mapping[str, Fanout[Route]],
        positions: Latest[PositionSnapshot],
        clock: Clock,
    ) -> None:
        missing = [name for name in router.venue_names if name not in venues]
        if missing:
            raise ValueError(
                f"venues: an output for every routed venue {list(router.venue_names)}, was {sorted(venues)}"
            )
        self.router = router
        self._inbox = inbox
        self._venues = dict(venues)
        self._positions = positions
        self._clock = clock

    async def run(self) -> None:
        route = self.router.route
        time_ns = self._clock.time_ns
        positions = self._positions
        venues = self._venues
        while (batch := await self._inbox.get_batch()) is not None:
            for order in batch:
                for child in route(order, positions.value, time_ns()):
                    await venues[child.venue].put(child)
        for output in venues.values():
            await output.close()
