"""RiskStage: the asyncio shell around :class:`RiskEngine`.

Moves signals from its inbox through ``engine.check`` with the wall-clock time of each check, and puts
each result on the matching output: orders or risk rejects (rejections are data: they reach the recorder
and metrics like any order). It makes no decision of its own, and closes both outputs exactly once when
the inbox ends.
"""

from __future__ import annotations

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.model.events import Order, RiskReject, Signal
from dma_bot.risk.limits import RiskEngine

__all__ = ["RiskStage"]


class RiskStage:
    def __init__(
        self,
        engine: RiskEngine,
        inbox: Channel[Signal],
        orders: Fanout[Order],
        rejects: Fanout[RiskReject],
        clock: Clock,
    ) -> None:
        self.engine = engine
        self._inbox = inbox
        self._orders = orders
        self._rejects = rejects
        self._clock = clock

    async def run(self) -> None:
        check = self.engine.check
        time_ns = self._clock.time_ns
        orders = self._orders
        rejects = self._rejects
        while (batch := await self._inbox.get_batch()) is not None:
            for signal in batch:
                result = check(signal, time_ns())
                if type(result) is RiskReject:
                    await rejects.put(result)
                else:
                    await orders.put(result)  # type: ignore[arg-type]
        await orders.close()
        await rejects.close()
