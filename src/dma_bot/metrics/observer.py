"""ExecutionObserver: the asyncio shell that feeds Route and ExecReport copies into ExecutionMetrics.

A venue's account reads (:class:`AccountSnapshot`) travel on the same channel as its reports; they are no
execution and are skipped here (the drift they give is exported from the positions snapshot).
"""

from __future__ import annotations

from dma_bot.bus import Channel
from dma_bot.metrics.executions import ExecutionMetrics
from dma_bot.model.events import AccountSnapshot, ExecReport, Route

__all__ = ["ExecutionObserver"]


class ExecutionObserver:
    def __init__(self, core: ExecutionMetrics, inbox: Channel[Route | ExecReport | AccountSnapshot]) -> None:
        self.core = core
        self._inbox = inbox

    async def run(self) -> None:
        on_route, on_exec = self.core.on_route, self.core.on_exec
        while (batch := await self._inbox.get_batch()) is not None:
            for event in batch:
                if type(event) is ExecReport:
                    on_exec(event)
                elif type(event) is Route:
                    on_route(event)
