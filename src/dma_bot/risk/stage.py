"""RiskStage: the asyncio shell around :class:`RiskEngine`.

Moves signals from its inbox through ``engine.check`` (a SignalBatch through ``engine.check_batch``) with
the wall-clock time of each check, and puts each result on the matching output: orders or risk rejects
(a RejectBatch is a run of them) (rejections are data: they reach the recorder
and metrics like any order). Consecutive results of one kind go out together in one ``put_many``, so a
shared output (the recorder's copy) still sees them in signal order. It makes no decision of its own, and
closes both outputs exactly once when the inbox ends.
"""

from __future__ import annotations

from typing import Any

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.model.events import Order, RejectBatch, RiskReject, Signal, SignalBatch
from dma_bot.risk.limits import RiskEngine

__all__ = ["RiskStage"]


class RiskStage:
    def __init__(
        self,
        engine: RiskEngine,
        inbox: Channel[Signal | SignalBatch],
        orders: Fanout[Order],
        rejects: Fanout[RiskReject | RejectBatch],
        clock: Clock,
    ) -> None:
        self.engine = engine
        self._inbox = inbox
        self._orders = orders
        self._rejects = rejects
        self._clock = clock

    async def run(self) -> None:
        check = self.engine.check
        check_batch = self.engine.check_batch
        time_ns = self._clock.time_ns
        orders = self._orders
        rejects = self._rejects
        outputs: tuple[Fanout[Any], Fanout[Any]] = (orders, rejects)  # indexed by "rejected"
        while (batch := await self._inbox.get_batch()) is not None:
            run: list[Order | RiskReject | RejectBatch] = []
            run_rejected = False
            for item in batch:
                results = check_batch(item, time_ns()) if type(item) is SignalBatch else (check(item, time_ns()),)
                for result in results:
                    rejected = type(result) is not Order
                    if rejected is not run_rejected and run:
                        await outputs[run_rejected].put_many(run)
                        run = []
                    run_rejected = rejected
                    run.append(result)
            if run:
                await outputs[run_rejected].put_many(run)
        await orders.close()
        await rejects.close()
