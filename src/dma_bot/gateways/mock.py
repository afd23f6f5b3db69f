"""MockGateway: the thin asyncio shell that runs a :class:`SimVenue` in real time.

It owns only timing and queue traffic: it submits each route from its inbox to the simulated venue at
the clock's current time, waits until the venue's next report is due or the next routes arrive,
whichever comes first, and puts each due report on its output. With ``defer_reports_while`` (the wiring passes
"the engine's hot path has work waiting") due reports wait for that work, at most ``MAX_DEFERRALS`` turns:
the simulated venue stands for a remote one, so its report generation must not delay the engine's own path
from a tick to an order (routes are still taken at once). Every decision (latency, partial fills, fill
prices against the quotes on the venue's MarketBoard, fees, rejects, ids) is the venue core's, except the one
every gateway shares: a route older than ``max_order_age_ms`` since its signal when it arrives is REJECTED
locally ("stale: ..."), never submitted (:func:`~dma_bot.gateways.base.route_too_old`). It needs a clock that
moves with the event loop (``LiveClock``); a backtest drives ``SimVenue`` directly in its own loop instead.

Waiting for "routes or a deadline" uses ``asyncio.timeout`` around ``Channel.get_batch()`` and starts no
task. That cannot lose a route: a routes channel is never a background one, so the only suspension point of
``get_batch`` is its wait for the first item, which takes nothing when it is cancelled (even when cancelled
after being woken by a put), and everything ``get_batch`` does after that await is synchronous, so a timeout
either interrupts it before it took anything or finds it already returned. (A background channel's consumer
also suspends while deferring, before it takes anything, which is just as safe.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from dma_bot.bus import Channel, Fanout, yield_while
from dma_bot.clock import Clock
from dma_bot.gateways.base import GATEWAY_EVENTS, GatewayStats, local_reject, route_too_old
from dma_bot.gateways.sim_venue import SimVenue
from dma_bot.model.events import ExecReport, Route

__all__ = ["MockGateway"]

_NS_PER_S: Final = 1_000_000_000
_NS_PER_MS: Final = 1_000_000


class MockGateway:
    """Gateway for the simulated venue ``venue``; ``self.venue`` is its name, as the Gateway protocol says."""

    __slots__ = ("_clock", "_inbox", "_max_age_ns", "_out", "_yield_while", "sim_venue", "stale_routes", "stats",
                 "venue")

    def __init__(
        self, venue: SimVenue, inbox: Channel[Route], out: Fanout[ExecReport], clock: Clock, *,
        max_order_age_ms: int = 0,
    ) -> None:
        if isinstance(max_order_age_ms, bool) or not isinstance(max_order_age_ms, int) or max_order_age_ms < 0:
            raise ValueError(f"max_order_age_ms: an integer >= 0 (0 = off), was {max_order_age_ms!r}")
        self.venue = venue.name
        self.sim_venue = venue
        self.stats = GatewayStats()
        self._inbox = inbox
        self._out = out
        self._clock = clock
        self._yield_while: Callable[[], bool] | None = None
        self._max_age_ns = max_order_age_ms * _NS_PER_MS
        self.stale_routes = 0  # routes older than max_order_age_ms on arrival: rejected, never submitted

    @property
    def inbox(self) -> Channel[Route]:
        return self._inbox

    def defer_reports_while(self, busy: Callable[[], bool]) -> None:
        """Let due reports wait while ``busy()`` (at most ``MAX_DEFERRALS`` turns of the loop each time)."""
        self._yield_while = busy

    def counters(self) -> dict[str, int]:
        """The shared gateway events: stale routes, and 0 for the rest (a simulated venue answers every order
        and loses no report)."""
        counts = dict.fromkeys(GATEWAY_EVENTS, 0)
        counts["stale_route"] = self.stale_routes
        return counts

    async def run(self) -> None:
        """Submit routes and emit due reports until the inbox ended and no order is open; then close."""
        sim = self.sim_venue
        clock = self._clock
        stats = self.stats
        inbox_open = True
        busy = self._yield_while
        while inbox_open or sim.open_orders:
            now = clock.time_ns()
            due = sim.next_due_ns()
            if due is not None and due <= now:
                if busy is not None:
                    # The simulated venue stands for a remote one: its reports do not cut in front of the
                    # engine's own quotes and decisions; they go out when those are through (bounded).
                    await yield_while(busy)
                await self._emit(sim.pop_due(clock.time_ns()))
                continue
            if not inbox_open:
                assert due is not None, "an open order always has a report scheduled"
                await asyncio.sleep((due - now) / _NS_PER_S)
                continue
            batch = await self._next_batch(None if due is None else due - now)
            if batch is None:
                inbox_open = False
            elif batch:
                now = clock.time_ns()
                stats.routes_received += len(batch)
                stale: list[ExecReport] = []
                for route in batch:
                    reason = route_too_old(route, now, self._max_age_ns)
                    if reason:
                        stale.append(local_reject(route, reason, now))
                    else:
                        sim.submit(route, now)
                if stale:
                    self.stale_routes += len(stale)
                    await self._emit(stale)
        await self._out.close()

    async def _next_batch(self, wait_ns: int | None) -> list[Route] | None:
        """The next inbox batch; [] when ``wait_ns`` passed first; None once the inbox ended."""
        if wait_ns is None:
            return await self._inbox.get_batch()
        try:
            async with asyncio.timeout(wait_ns / _NS_PER_S):
                return await self._inbox.get_batch()
        except TimeoutError:
            return []

    async def _emit(self, reports: list[ExecReport]) -> None:
        out = self._out
        count = self.stats.count_report
        for report in reports:
            count(report)
            await out.put(report)
