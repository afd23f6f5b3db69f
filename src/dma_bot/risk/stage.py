"""RiskStage: the asyncio shell around :class:`RiskEngine`.

Moves signals from its inbox through ``engine.check`` (a SignalBatch through ``engine.check_batch``) with
the wall-clock time of each check, and puts each result on the matching output: orders or risk rejects
(a RejectBatch is a run of them) (rejections are data: they reach the recorder
and metrics like any order). Consecutive results of one kind go out together in one ``put_many``, so a
shared output (the recorder's copy) still sees them in signal order. It makes no decision of its own, and
closes both outputs exactly once when the inbox ends.

Under replay (``order`` given) the inbox holds ``(quote, signal)`` pairs and the workers' watermarks instead:
the stage hands them to the :class:`~dma_bot.risk.replay_order.ReplayOrder`, and decides what it releases, in
that order, with ``engine.check_replayed`` (the rest when the inbox ends).
"""

from __future__ import annotations

from typing import Any

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.model.events import Order, RejectBatch, RiskReject, Signal, SignalBatch, Tick, Watermark
from dma_bot.risk.limits import RiskEngine
from dma_bot.risk.replay_order import ReplayOrder

__all__ = ["RiskStage"]


class RiskStage:
    def __init__(
        self,
        engine: RiskEngine,
        inbox: Channel[Signal | SignalBatch] | Channel[tuple[Tick, Signal] | Watermark],
        orders: Fanout[Order],
        rejects: Fanout[RiskReject | RejectBatch],
        clock: Clock,
        *,
        order: ReplayOrder | None = None,
    ) -> None:
        self.engine = engine
        self._inbox: Channel[Any] = inbox
        self._orders = orders
        self._rejects = rejects
        self._clock = clock
        self._order = order

    async def run(self) -> None:
        if self._order is not None:
            await self._run_replayed(self._order)
            return
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

    async def _run_replayed(self, order: ReplayOrder) -> None:
        check = self.engine.check_replayed
        time_ns = self._clock.time_ns
        while (batch := await self._inbox.get_batch()) is not None:
            released: list[tuple[Tick, Signal]] = []
            for item in batch:
                if type(item) is Watermark:
                    released += order.advance(item.source, item.ts_ns)
                else:
                    order.add(*item)
            if released:
                await self._put([check(signal, quote, time_ns()) for quote, signal in released])
        await self._put([check(signal, quote, time_ns()) for quote, signal in order.drain()])
        await self._orders.close()
        await self._rejects.close()

    async def _put(self, results: list[Order | RiskReject]) -> None:
        """``results`` in order, each run of one kind with one ``put_many``."""
        start = 0
        for end in range(1, len(results) + 1):
            if end == len(results) or (type(results[end]) is Order) is not (type(results[start]) is Order):
                output: Fanout[Any] = self._orders if type(results[start]) is Order else self._rejects
                await output.put_many(results[start:end])
                start = end
