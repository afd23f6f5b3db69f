"""BinanceGateway: the Binance Spot venue adapter, composing the REST shell, the user-data stream and the core.

It owns the requests and the waiting: it starts by measuring the clock offset and subscribing the
user-data stream (orders are never sent before their fills can be heard), then places each Route
(``prepare_limit_order`` first: a local filter failure is one REJECTED "local <FILTER>: detail", never
sent) with ``POST /api/v3/order`` (our client id, ``newOrderRespType=ACK``), up to ``max_in_flight`` at
once. A final REST error is one REJECTED with the venue's code and message; an unknown outcome (5xx,
timeout, -1007, transport) is never resent but queried by client id with backoff; 429/418 waits
Retry-After and resends (the order was not accepted); -1021 resynchronises the clock and resends once.
Every retried request follows its named :class:`~dma_bot.retry.RetryPolicy` ("order.send", "order.query",
"order.trades", "order.cancel"): capped jittered backoff, a number of attempts and an overall deadline
measured on the injected clock; each retry and each give-up is counted by policy name.
After a stream gap, quantity the order query shows but the stream never told is fetched trade by trade
from ``GET /api/v3/myTrades`` (so each fill keeps its trade id and commission), falling back to one fill
from executedQty only when that fails after retries.
An order the venue acknowledged and then no longer knows (-2013 to a query, asked again by "order.query"
in case the query lags; also after a cancel answered -2011) is settled from its ``myTrades``: its unreported
trades are fills, then CANCELED "not known at venue (-2013): ...". That is found by the queries after every
(re)subscription and by the cancels at shutdown.
A route is refused locally, never queued, when it is older than ``max_order_age_ms`` since its signal at
the moment it would be sent (also before a resend after 429 or -1021) ("stale: ..."), or while the
user-data stream is not subscribed ("venue unreachable: ...": its fills could not be heard; routes flow
again as soon as it is resubscribed, while the reconciliation runs: the new subscription holds its events).
Every decision about what to report (one ACK, fills once, reconciliation after a stream gap) belongs to
:class:`~dma_bot.gateways.binance_orders.OrderTable`; every report leaves through one ordered outbox, so
the reports of an order keep their order. After every (re)subscription, once the open orders are
reconciled, it reads the account's balances and open orders ("account.read") and puts one
:class:`~dma_bot.model.events.AccountSnapshot` on ``out`` for the ledger to reconcile against; after a
resubscription it reads again ``account_recheck_s`` later, in a task of its own while the stream's events flow,
so a fill whose report was in flight at the first read is booked by the second (the ledger breaches on a drift
only when two reads in a row show it: ``positions.drift``). A stream that stays open but goes silent (its events
lost: Binance never replays them) is dropped and resubscribed when an order acknowledged over REST has not been
told of by it for ``user_stream_silence_s``.
Connection facts go to the optional ``notes`` as
:class:`~dma_bot.model.events.Note` s: the stream lost (why), resubscribed (after how long), the
reconciliation that followed (orders queried, fills found), each order unknown at the venue. When the
inbox ends it cancels its open orders (if ``cancel_on_shutdown``), waits, bounded, until each is terminal,
unsubscribes, and closes ``out`` once, then ``notes`` once (build it with its own ``fanout(...)``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal

from dma_bot.binance.codec import (
    ACCOUNT_PATH,
    OPEN_ORDERS_PATH,
    OrderState,
    Trade,
    build_account_params,
    build_cancel_order_params,
    build_my_trades_params,
    build_new_order_params,
    build_query_order_params,
    parse_account,
    parse_cancel_response,
    parse_my_trades,
    parse_open_orders,
    parse_order_response,
    parse_query_order,
)
from dma_bot.binance.errors import Disposition, LocalFilterReject, VenueError
from dma_bot.binance.filters import SymbolRules, prepare_limit_order
from dma_bot.binance.signing import HmacSigner
from dma_bot.bus import Channel, Fanout
from dma_bot.clock import Clock
from dma_bot.errors import ProtocolError, StartupError
from dma_bot.gateways.base import GatewayStats, local_reject, route_too_old
from dma_bot.gateways.binance_orders import OrderTable, OrderTableStats
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.gateways.binance_stream import UserDataStream
from dma_bot.model.enums import NoteKind
from dma_bot.model.events import AccountSnapshot, ExecReport, Note, Route
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff, RetryPolicy

__all__ = ["BinanceGateway"]

log = logging.getLogger(__name__)

_ORDER: Final = "/api/v3/order"
_MY_TRADES: Final = "/api/v3/myTrades"
_NO_SUCH_ORDER: Final = -2013
_NS_PER_MS: Final = 1_000_000
_TIME_IN_FORCE: Final = ("GTC", "IOC", "LIMIT_MAKER")


class BinanceGateway:
    """The gateway of venue ``venue`` (Gateway protocol); health attributes are read by metrics."""

    def __init__(
        self,
        *,
        venue: str = "BINANCE",
        rules: Mapping[str, SymbolRules],
        rest: BinanceRest,
        ws_api_url: str,
        signer: HmacSigner,
        inbox: Channel[Route],
        out: Fanout[ExecReport | AccountSnapshot],
        clock: Clock,
        time_in_force: Literal["GTC", "IOC", "LIMIT_MAKER"] = "GTC",
        cancel_on_shutdown: bool = True,
        board: MarketBoard | None = None,
        recv_window_ms: int = 5000,
        max_in_flight: int = 8,
        reconnect_backoff: Backoff | None = None,
        retry_backoff: Backoff | None = None,
        query_attempts: int = 5,
        order_attempts: int = 5,
        max_retry_after_s: float = 30.0,
        order_deadline_s: float = 30.0,
        query_deadline_s: float = 30.0,
        startup_timeout_s: float = 30.0,
        shutdown_timeout_s: float = 10.0,
        max_order_age_ms: int = 0,
        account_recheck_s: float = 2.0,
        user_stream_silence_s: float = 10.0,
        notes: Fanout[Note] | None = None,
        seed: int = 0,
    ) -> None:
        if time_in_force not in _TIME_IN_FORCE:
            raise ValueError(f"time_in_force: one of {', '.join(_TIME_IN_FORCE)}, was {time_in_force!r}")
        if max_in_flight < 1 or query_attempts < 1 or order_attempts < 1:
            raise ValueError("max_in_flight, query_attempts and order_attempts: at least 1")
        if isinstance(max_order_age_ms, bool) or not isinstance(max_order_age_ms, int) or max_order_age_ms < 0:
            raise ValueError(f"max_order_age_ms: an integer >= 0 (0 = off), was {max_order_age_ms!r}")
        if not account_recheck_s > 0:
            raise ValueError(f"account_recheck_s: seconds > 0, was {account_recheck_s!r}")
        if not user_stream_silence_s > 0:
            raise ValueError(f"user_stream_silence_s: seconds > 0, was {user_stream_silence_s!r}")
        self.venue = venue
        self.stats = GatewayStats()
        self.unknown_outcomes = 0  # POSTs whose answer was lost: resolved by querying, never by resending
        self.query_failures = 0  # queries that never got an answer after every attempt
        self.bad_answers = 0  # order snapshots that contradict what we sent (skipped, logged)
        self.trade_query_failures = 0  # myTrades never answered: the unheard quantity was reported id-less
        self.silent_stream_drops = 0  # user-data sessions dropped: open, but silent about an acknowledged order
        self.stale_routes = 0  # routes older than max_order_age_ms when they would have been sent: rejected
        self.unreachable_rejects = 0  # routes rejected at once because the user-data stream was down
        self._started = False
        self.account_read_failures = 0  # account or open orders never answered: no AccountSnapshot that time
        self._rules = dict(rules)
        self._instruments = {symbol: rule.instrument for symbol, rule in self._rules.items()}
        self._rest = rest
        self._inbox = inbox
        self._out = out
        self._clock = clock
        self._time_in_force = time_in_force
        self._order_type = "LIMIT_MAKER" if time_in_force == "LIMIT_MAKER" else "LIMIT"
        self.cancel_on_shutdown = cancel_on_shutdown  # settable: a recording failure turns it on
        self._board = board
        self._max_in_flight = max_in_flight
        backoff = retry_backoff or Backoff(initial_s=0.2, max_s=2.0)
        self._send_policy = RetryPolicy(name="order.send", backoff=backoff, max_attempts=order_attempts,
                                        deadline_s=order_deadline_s, max_retry_after_s=max_retry_after_s)
        self._cancel_policy = RetryPolicy(name="order.cancel", backoff=backoff, max_attempts=order_attempts,
                                          deadline_s=order_deadline_s, max_retry_after_s=max_retry_after_s)
        self._query_policy = RetryPolicy(name="order.query", backoff=backoff, max_attempts=query_attempts,
                                         deadline_s=query_deadline_s, max_retry_after_s=max_retry_after_s)
        self._trades_policy = RetryPolicy(name="order.trades", backoff=backoff, max_attempts=query_attempts,
                                          deadline_s=query_deadline_s, max_retry_after_s=max_retry_after_s)
        self._last_query_policy = RetryPolicy(name="order.query.shutdown", backoff=backoff, max_attempts=1,
                                              deadline_s=query_deadline_s, max_retry_after_s=max_retry_after_s)
        self._account_policy = RetryPolicy(name="account.read", backoff=backoff, max_attempts=query_attempts,
                                           deadline_s=query_deadline_s, max_retry_after_s=max_retry_after_s)
        names = [p.name for p in (self._send_policy, self._cancel_policy, self._query_policy, self._trades_policy,
                                  self._last_query_policy, self._account_policy)]
        self.retries_by_policy: dict[str, int] = dict.fromkeys(names, 0)  # requests sent again, by policy name
        self.gave_up_by_policy: dict[str, int] = dict.fromkeys(names, 0)  # retryable failures not retried
        self._startup_timeout_s = startup_timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._max_order_age_ns = max_order_age_ms * _NS_PER_MS
        self._account_recheck_s = account_recheck_s
        self._user_stream_silence_s = user_stream_silence_s
        self._tasks: asyncio.TaskGroup | None = None  # run()'s group, for the account recheck
        self._recheck: asyncio.Task[None] | None = None  # the pending account recheck
        self._notes = notes
        self._subscribed = False  # the venue accepted our user-data subscription and it has not been lost since
        self._down_since_ns: int | None = None  # monotonic: when the user-data stream was lost (None: never lost)
        self._rng = random.Random(seed)
        self._orders = OrderTable(venue)
        self._outbox: deque[ExecReport] = deque()
        self._emit_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self.stream = UserDataStream(
            url=ws_api_url,
            signer=signer,
            rest=rest,
            instruments=self._instruments,
            handler=self,
            clock=clock,
            venue=venue,
            backoff=reconnect_backoff,
            seed=seed,
            recv_window_ms=recv_window_ms,
        )

    # -- health (read-only, for metrics) -----------------------------------------------------------------
    @property
    def stream_connected(self) -> bool:
        return self.stream.connected

    @property
    def stream_reconnects(self) -> int:
        return self.stream.reconnects

    @property
    def last_event_ns(self) -> int | None:
        return self.stream.last_event_ns

    @property
    def subscriptions_ok(self) -> int:
        return self.stream.subscriptions_ok

    @property
    def subscriptions_err(self) -> int:
        return self.stream.subscriptions_err

    @property
    def order_stats(self) -> OrderTableStats:
        return self._orders.stats

    @property
    def rest(self) -> BinanceRest:
        """The REST client (read-only use: health reads its last answer and oldest waiting request)."""
        return self._rest

    @property
    def open_orders(self) -> int:
        return self._orders.open_count()

    def counters(self) -> dict[str, int]:
        """What the gateway repaired, reconciled or gave up on, by event name (metric ``gateway_events_total``)."""
        stats = self._orders.stats
        counts = {
            "unknown_outcome": self.unknown_outcomes,
            "query_failure": self.query_failures,
            "trade_query_failure": self.trade_query_failures,
            "bad_answer": self.bad_answers,
            "account_read_failure": self.account_read_failures,
            "reconciled_ack": stats.reconciled_acks,
            "reconciled_fill": stats.reconciled_fills,
            "reconciled_trade": stats.reconciled_trades,
            "late_execution": stats.late_executions,
            "foreign_execution": stats.foreign_executions,
            "cumulative_gap": stats.cumulative_gaps,
            "unknown_at_venue": stats.unknown_at_venue,
            "stale_route": self.stale_routes,
            "silent_stream_drop": self.silent_stream_drops,
            "unreachable_reject": self.unreachable_rejects,
        }
        for name, count in self.retries_by_policy.items():
            counts[f"retry.{name}"] = count
        for name, count in self.gave_up_by_policy.items():
            counts[f"gave_up.{name}"] = count
        return counts

    # -- the stage ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Synchronise the clock and make the first user-data subscription (its reconciliation and account read
        included); a StartupError names what failed. The wiring calls it before any stage runs, so a bad key
        stops the daemon before an order can be sent; :meth:`run` calls it when it was not called."""
        if self._started:
            return
        try:
            await self._rest.sync_clock()
        except (VenueError, ProtocolError) as e:
            raise StartupError(f"{self.venue} REST: an answer from /api/v3/time, was {e}") from e
        await self.stream.start(self._startup_timeout_s)
        self._started = True

    async def run(self) -> None:
        """Start (unless started), place routes until the inbox ends, finish the orders, close ``out``."""
        await self.start()
        async with asyncio.TaskGroup() as group:
            self._tasks = group
            group.create_task(self.stream.run())
            watchdog = group.create_task(self._watch_stream())
            try:
                await self._take_routes()
                await self._finish_orders()
            finally:
                self._tasks = None
                watchdog.cancel()
                self._cancel_recheck()
                await self.stream.stop()
        await self._out.close()
        if self._notes is not None:
            await self._notes.close()

    async def _take_routes(self) -> None:
        slots = asyncio.Semaphore(self._max_in_flight)
        async with asyncio.TaskGroup() as placing:
            while (batch := await self._inbox.get_batch()) is not None:
                for route in batch:
                    self.stats.routes_received += 1
                    await slots.acquire()
                    placing.create_task(self._release_after(self._place(route), slots))

    @staticmethod
    async def _release_after(job: Coroutine[Any, Any, object], slots: asyncio.Semaphore) -> None:
        try:
            await job
        finally:
            slots.release()

    async def _bounded(self, jobs: Iterable[Coroutine[Any, Any, object]]) -> None:
        slots = asyncio.Semaphore(self._max_in_flight)
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                await slots.acquire()
                group.create_task(self._release_after(job, slots))

    # -- one order ---------------------------------------------------------------------------------------
    async def _place(self, route: Route) -> None:
        if route.venue != self.venue:
            raise ValueError(f"route {route.client_order_id}: venue {self.venue}, was {route.venue}")
        rules = self._rules.get(route.symbol)
        if rules is None:
            reason = f"local symbol: one of {', '.join(self._rules)}, was {route.symbol}"
            await self._emit([local_reject(route, reason, self._clock.time_ns())])
            return
        now_ns = self._clock.time_ns()
        stale = route_too_old(route, now_ns, self._max_order_age_ns)
        if stale:
            self.stale_routes += 1
            await self._emit([local_reject(route, stale, now_ns)])
            return
        if not self._subscribed:
            # Without the stream its fills could not be heard, and a route kept until it is back would go
            # out at an old price: refused now, so the engine decides again with what it knows then. (While
            # the reconciliation after a resubscription runs, the stream is live: its events wait for us.)
            self.unreachable_rejects += 1
            await self._emit([local_reject(route, self._unreachable_reason(), now_ns)])
            return
        try:
            price, quantity = prepare_limit_order(
                rules,
                route.side,
                route.price,
                route.quantity,
                reference_price=self._reference_price(rules),
                order_type=self._order_type,
                open_orders=self._orders.open_count(route.symbol),
            )
        except LocalFilterReject as e:
            reason = f"local {e.filter_name}: {e.detail}"
            await self._emit([local_reject(route, reason, self._clock.time_ns())])
            return
        if (price, quantity) != (route.price, route.quantity):
            route = route._replace(price=price, quantity=quantity)
        self._orders.register(route, rules.instrument)
        self._idle.clear()
        await self._post(route, rules)

    def _unreachable_reason(self) -> str:
        since = self._down_since_ns
        if since is None:  # before the first subscription, or after stop(): no route is taken then
            return "venue unreachable: user-data stream not subscribed"
        return f"venue unreachable: user-data stream down since {(self._clock.monotonic_ns() - since) // _NS_PER_MS} ms"

    def _reference_price(self, rules: SymbolRules) -> Decimal | None:
        mid2 = self._board.mid2(rules.symbol) if self._board is not None else None
        return None if mid2 is None else rules.instrument.tick_size * mid2 / 2

    async def _post(self, route: Route, rules: SymbolRules) -> None:
        orders, cid = self._orders, route.client_order_id
        params = build_new_order_params(route, rules.instrument, time_in_force=self._time_in_force, resp_type="ACK")
        policy = self._send_policy
        clock_synced = False
        attempt = 0
        refused = ""  # the venue's last refusal: the order was not taken, so sending it again is a new decision
        started_ns = self._clock.monotonic_ns()
        while True:
            attempt += 1
            if refused:
                if await self._reject_if_stale(route, self._clock.time_ns(), f"; not sent again after {refused}"):
                    return
                self.retries_by_policy[policy.name] += 1
            try:
                body = await self._rest.request("POST", _ORDER, params, signed=True)
                reports = parse_order_response(body, self.venue, self._instruments, self._clock.time_ns(), route=route)
            except VenueError as e:
                if e.disposition is Disposition.UNKNOWN_OUTCOME:
                    break
                refused = f"{e.code} {e.msg}"
                if e.disposition is Disposition.CLOCK and not clock_synced:
                    clock_synced = True
                    await self._resync_clock()
                    continue
                wait_s = None
                if e.disposition in (Disposition.RATE_LIMITED, Disposition.RETRYABLE):
                    wait_s = self._retry_delay(policy, attempt, started_ns, e, cid, count=False)
                if wait_s is None:
                    await self._emit(orders.on_post_rejected(cid, e.code, e.msg, self._clock.time_ns()))
                    return
                resend_ns = self._clock.time_ns() + int(wait_s * 1e9)
                if await self._reject_if_stale(route, resend_ns, f" at its resend in {wait_s:.3f}s; not sent again "
                                                                 f"after {refused}"):
                    return  # no point waiting out a Retry-After for a price that will be too old by then
                await asyncio.sleep(wait_s)
                continue
            except ProtocolError as e:
                log.warning("%s order %s: unreadable answer to the POST, querying: %s", self.venue, cid, e)
                break
            await self._emit(orders.on_post_answered(cid, reports))
            orders.awaiting_stream(cid, self._clock.monotonic_ns())
            if orders.needs_query(cid):
                await self._query(route.symbol, cid)
            return
        self.unknown_outcomes += 1
        await self._emit(orders.on_post_unknown(cid))
        await self._query(route.symbol, cid)

    async def _reject_if_stale(self, route: Route, at_ns: int, why: str) -> bool:
        """A registered order the venue refused: REJECTED (True) when a resend at ``at_ns`` would be too old."""
        stale = route_too_old(route, at_ns, self._max_order_age_ns)
        if not stale:
            return False
        self.stale_routes += 1
        now_ns = self._clock.time_ns()
        await self._emit(self._orders.on_post_rejected(route.client_order_id, None, stale + why, now_ns))
        return True

    def _retry_delay(
        self, policy: RetryPolicy, attempt: int, started_ns: int, error: Exception | None, cid: str, *,
        count: bool = True,
    ) -> float | None:
        """``policy``'s wait before attempt ``attempt + 1`` of a request first sent at ``started_ns``
        (monotonic), or None to give up; a give-up is counted, a retry too unless ``count`` is False (the
        caller counts it when it does send again)."""
        elapsed_s = (self._clock.monotonic_ns() - started_ns) / 1e9
        retry_after_s = error.retry_after_s if isinstance(error, VenueError) else None
        delay = policy.next_delay(attempt, elapsed_s, self._rng, retry_after_s=retry_after_s)
        if delay is None:
            self.gave_up_by_policy[policy.name] += 1
            log.warning("%s order %s: %s gave up after %d attempts in %.2fs (deadline %ss, Retry-After %s): %s",
                        self.venue, cid, policy.name, attempt, elapsed_s, policy.deadline_s, retry_after_s, error)
        elif count:
            self.retries_by_policy[policy.name] += 1
        return delay

    async def _resync_clock(self) -> None:
        try:
            await self._rest.sync_clock()
        except (VenueError, ProtocolError) as e:
            log.warning("%s: clock resynchronisation failed: %s", self.venue, e)

    async def _query(
        self, symbol: str, cid: str, *, full: bool | None = None, policy: RetryPolicy | None = None
    ) -> list[ExecReport]:
        """``GET /api/v3/order`` by client id, retried by ``policy`` (default "order.query"), and report what
        the venue says; returns the reports emitted."""
        orders = self._orders
        params = build_query_order_params(symbol, cid)
        policy = policy or self._query_policy
        error: Exception | None = None
        not_found = False
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        while True:
            status = orders.status(cid)
            if status is None or status.is_terminal:
                return []
            attempt += 1
            try:
                state = parse_query_order(await self._rest.request("GET", _ORDER, params, signed=True))
            except VenueError as e:
                error, not_found = e, e.code == _NO_SUCH_ORDER
                if not_found and not orders.retry_not_found(cid):
                    break
                if e.disposition is Disposition.CLOCK:
                    await self._resync_clock()
                elif e.disposition is Disposition.FINAL and not not_found:
                    break
            except ProtocolError as e:
                error, not_found = e, False
            else:
                return await self._apply_state(state, full)
            delay = self._retry_delay(policy, attempt, started_ns, error, cid)
            if delay is None:
                break
            await asyncio.sleep(delay)
        if not_found:
            return await self._not_found(symbol, cid)
        self.query_failures += 1
        log.warning("%s order %s: no answer to the order query after %d attempts: %s", self.venue, cid,
                    attempt, error)
        return []

    async def _not_found(self, symbol: str, cid: str) -> list[ExecReport]:
        """The venue says the order does not exist. One it had acknowledged was lost (a restart, a wipe):
        its trades are read first, so every fill it made is reported before the order is settled."""
        orders = self._orders
        order_id = orders.acknowledged_order_id(cid)
        if not order_id:
            reports = orders.on_not_found(cid, self._clock.time_ns())
            await self._emit(reports)
            return reports
        before = orders.status(cid)
        trades = await self._my_trades(symbol, order_id, cid) if order_id.isdigit() else None
        reassigned = False
        try:
            reports = orders.on_not_found(cid, self._clock.time_ns(), trades=trades)
        except ProtocolError as e:
            # the venue lists trades of another order under this orderId: it restarted and numbers orders anew
            self.bad_answers += 1
            log.warning("%s order %s: myTrades of order %s belong to another order now: %s", self.venue, cid,
                        order_id, e)
            reassigned = True
            reports = orders.on_not_found(cid, self._clock.time_ns(), reassigned=True)
        await self._emit(reports)
        if reassigned:
            detail = (f"not known at venue (-2013) while {before} and orderId {order_id} names another order "
                      f"(the venue restarted): ended {orders.status(cid)} with the fills reported before")
        elif trades is None:
            detail = f"not known at venue (-2013) while {before}; its trades unknown (no usable myTrades): left open"
        else:
            fills = sum(1 for r in reports if r.last_qty > 0)
            detail = (f"not known at venue (-2013) while {before}: {fills} unreported fills in myTrades, "
                      f"ended {orders.status(cid)}")
        log.warning("%s order %s: %s", self.venue, cid, detail)
        await self._note(NoteKind.UNKNOWN_AT_VENUE, detail, symbol=symbol, client_order_id=cid)
        return reports

    async def _apply_state(self, state: OrderState, full: bool | None) -> list[ExecReport]:
        trades: list[Trade] | None = None
        if self._orders.wants_trades(state, full=full):
            trades = await self._my_trades(state.symbol, state.venue_order_id, state.client_order_id)
            if trades is None:
                log.warning("%s order %s: reporting the unheard quantity from executedQty", self.venue,
                            state.client_order_id)
        try:
            try:
                reports = self._orders.on_order_state(state, self._clock.time_ns(), full=full, trades=trades)
            except ProtocolError as e:
                if trades is None:
                    raise
                self.bad_answers += 1
                log.warning("%s order %s: myTrades answer skipped: %s", self.venue, state.client_order_id, e)
                reports = self._orders.on_order_state(state, self._clock.time_ns(), full=full)
        except ProtocolError as e:
            self.bad_answers += 1
            log.warning("%s order %s: answer skipped: %s", self.venue, state.client_order_id, e)
            return []
        await self._emit(reports)
        return reports

    async def _my_trades(self, symbol: str, order_id: str, cid: str) -> list[Trade] | None:
        """``GET /api/v3/myTrades`` of venue order ``order_id``, retried by "order.trades"; None when it never
        answered (counted)."""
        instruments = self._instruments
        trades = await self._signed_get(_MY_TRADES, build_my_trades_params(symbol, order_id), self._trades_policy,
                                        cid, parse=lambda body: parse_my_trades(body, instruments))
        if trades is None:
            self.trade_query_failures += 1
        return trades

    async def _cancel(self, symbol: str, cid: str) -> None:
        """``DELETE /api/v3/order``, retried by "order.cancel"; whatever it answers, what the venue says ends up
        reported."""
        params = build_cancel_order_params(symbol, cid)
        policy = self._cancel_policy
        error: Exception | None = None
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        while True:
            status = self._orders.status(cid)
            if status is None or status.is_terminal:
                return
            attempt += 1
            try:
                state = parse_cancel_response(await self._rest.request("DELETE", _ORDER, params, signed=True))
            except VenueError as e:
                error = e
                if e.disposition is Disposition.FINAL:  # -2011: already closed (or never there)
                    break
                if e.disposition is Disposition.CLOCK:
                    await self._resync_clock()
            except ProtocolError as e:
                error = e
                break
            else:
                await self._apply_state(state, None)
                return
            delay = self._retry_delay(policy, attempt, started_ns, error, cid)
            if delay is None:
                break
            await asyncio.sleep(delay)
        log.info("%s order %s: cancel answered %s; querying", self.venue, cid, error)
        await self._query(symbol, cid)

    async def _finish_orders(self) -> None:
        orders = self._orders
        if self.cancel_on_shutdown:
            await self._bounded(self._cancel(symbol, cid) for symbol, cid in orders.open_orders())
        elif self._time_in_force != "IOC":
            left = orders.open_orders()
            if left:
                log.warning("%s: %d orders left working at the venue (cancel_on_shutdown is off): %s",
                            self.venue, len(left), ", ".join(cid for _, cid in left))
            return
        try:
            async with asyncio.timeout(self._shutdown_timeout_s):
                await self._idle.wait()
        except TimeoutError:
            last = self._last_query_policy
            await self._bounded(self._query(s, cid, full=True, policy=last) for s, cid in orders.open_orders())
            left = orders.open_orders()
            if left:
                log.error("%s: %d orders not terminal after %ss: %s", self.venue, len(left),
                          self._shutdown_timeout_s, ", ".join(cid for _, cid in left))

    # -- account read (reconciliation) --------------------------------------------------------------------
    async def _read_account(self) -> None:
        """``GET /api/v3/account`` and ``GET /api/v3/openOrders``, put on ``out`` as one AccountSnapshot behind
        the reports emitted before it; a read that never answers (or answers nonsense) is counted and logged,
        and nothing is sent: the ledger compares again at the next subscription."""
        bodies = []
        for path, params in ((ACCOUNT_PATH, build_account_params()), (OPEN_ORDERS_PATH, [])):
            body = await self._signed_get(path, params, self._account_policy)
            if body is None:
                self.account_read_failures += 1
                return
            bodies.append(body)
        try:
            balances, open_orders = parse_account(bodies[0]), parse_open_orders(bodies[1])
        except ProtocolError as e:
            self.bad_answers += 1
            self.account_read_failures += 1
            log.warning("%s: account read skipped: %s", self.venue, e)
            return
        ids = tuple(sorted(cid for symbol, cids in open_orders.items() if symbol in self._rules for cid in cids))
        account = AccountSnapshot(venue=self.venue, balances=MappingProxyType(balances), open_order_ids=ids,
                                  ts_ns=self._clock.time_ns())
        async with self._emit_lock:
            await self._out.put(account)

    async def _signed_get(
        self,
        path: str,
        params: list[tuple[str, str]],
        policy: RetryPolicy,
        what: str = "",
        *,
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """One signed GET retried by ``policy`` (an answer ``parse`` refuses is retried too); the parsed (or
        JSON) body, or None when it never answered. ``what`` names the order it is about, for the logs."""
        error: Exception | None = None
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        what = what or path
        while True:
            attempt += 1
            try:
                body = await self._rest.request("GET", path, params, signed=True)
                return body if parse is None else parse(body)
            except VenueError as e:
                error = e
                if e.disposition is Disposition.CLOCK:
                    await self._resync_clock()
                elif e.disposition is Disposition.FINAL:
                    break
            except ProtocolError as e:
                error = e
            delay = self._retry_delay(policy, attempt, started_ns, error, what)
            if delay is None:
                break
            await asyncio.sleep(delay)
        log.warning("%s %s: no answer from %s after %d attempts: %s", self.venue, what, path, attempt, error)
        return None

    # -- reports -----------------------------------------------------------------------------------------
    async def _emit(self, reports: list[ExecReport]) -> None:
        """Reports leave in the order the core decided them, whichever task decided them."""
        if reports:
            self._outbox.extend(reports)
            async with self._emit_lock:
                outbox, out, count = self._outbox, self._out, self.stats.count_report
                while outbox:
                    report = outbox[0]
                    await out.put(report)
                    outbox.popleft()
                    count(report)
        if self._orders.open_count() == 0:
            self._idle.set()
        else:
            self._idle.clear()

    # -- notes -------------------------------------------------------------------------------------------
    async def _note(self, kind: NoteKind, detail: str, *, symbol: str = "", client_order_id: str = "") -> None:
        if self._notes is not None:
            await self._notes.put(Note(kind=kind, venue=self.venue, symbol=symbol, client_order_id=client_order_id,
                                       detail=detail, ts_ns=self._clock.time_ns()))

    # -- UserStreamHandler (called by the stream only) ---------------------------------------------------
    async def on_subscribed(self) -> None:
        """Reconcile every order we believe open (the venue does not replay what the stream missed), then read
        the account for the ledger to reconcile against (at start-up too: this is the first subscription).

        After a loss (not at the first subscription) the facts go to ``notes``: resubscribed after how long,
        then how many orders were queried and what they showed."""
        open_orders = self._orders.stream_subscribed()
        self._subscribed = True
        since, self._down_since_ns = self._down_since_ns, None
        if since is None:
            await self._bounded(self._query(symbol, cid) for symbol, cid in open_orders)
            await self._read_account()
            return
        down_ms = (self._clock.monotonic_ns() - since) // _NS_PER_MS
        await self._note(NoteKind.USER_STREAM_UP, f"user-data stream resubscribed after {down_ms} ms down; "
                                                  f"reconciling {len(open_orders)} open orders")
        found: list[ExecReport] = []
        lost_before = self._orders.stats.unknown_at_venue

        async def reconcile(symbol: str, cid: str) -> None:
            found.extend(await self._query(symbol, cid))

        await self._bounded(reconcile(symbol, cid) for symbol, cid in open_orders)
        fills = sum(1 for r in found if r.last_qty > 0)
        lost = self._orders.stats.unknown_at_venue - lost_before
        detail = (f"{len(open_orders)} open orders queried after the resubscription: {fills} fills found, "
                  f"{lost} unknown at venue, {self._orders.open_count()} open now")
        log.info("%s: %s", self.venue, detail)
        await self._note(NoteKind.RECONCILED, detail)
        await self._read_account()
        self._cancel_recheck()
        if self._tasks is not None:
            self._recheck = self._tasks.create_task(self._recheck_account())

    async def _recheck_account(self) -> None:
        """The read after the read: reports in flight at the first one have arrived by now."""
        await asyncio.sleep(self._account_recheck_s)
        if self._subscribed:
            await self._read_account()

    def _cancel_recheck(self) -> None:
        task, self._recheck = self._recheck, None
        if task is not None:
            task.cancel()

    async def on_disconnected(self, reason: str) -> None:
        self._orders.stream_lost()
        self._subscribed = False
        self._cancel_recheck()  # the reconciliation after the resubscription reads again
        if self.stream.stopping:
            return
        self._down_since_ns = self._clock.monotonic_ns()
        await self._note(NoteKind.USER_STREAM_DOWN, f"user-data stream lost: {reason}")

    async def _watch_stream(self) -> None:
        """A stream that stays open but silent loses every event (Binance never replays them): when an order
        the venue acknowledged over REST has not been told of and the stream has delivered nothing for
        ``user_stream_silence_s`` while we listened (not while a frame, or the reconciliation, was being
        handled: the socket holds what came meanwhile), drop the stream; its resubscription reconciles every
        open order."""
        silence_ns = int(self._user_stream_silence_s * 1e9)
        while True:
            await asyncio.sleep(self._user_stream_silence_s / 4)
            listening_ns = self.stream.listening_since_ns  # None while a frame is handled or no session pumps
            if listening_ns is None:
                continue
            now_ns = self._clock.monotonic_ns()
            silent = self._orders.silent_about(now_ns, listening_ns, silence_ns)
            if silent is None:
                continue
            cid, since_ns = silent
            self.silent_stream_drops += 1
            reason = (f"silent: nothing for {(now_ns - max(since_ns, listening_ns)) // _NS_PER_MS} ms, order {cid} "
                      f"acknowledged {(now_ns - since_ns) // _NS_PER_MS} ms ago and never told of "
                      f"(BINANCE_USER_SILENCE_S {self._user_stream_silence_s:g})")
            log.warning("%s user-data stream %s; resubscribing", self.venue, reason)
            await self.stream.drop(reason)

    async def on_execution(self, report: ExecReport) -> None:
        self._orders.stream_heard(report.client_order_id)
        await self._emit(self._orders.on_execution(report))
        for symbol, cid in self._orders.take_queries():
            await self._query(symbol, cid)
