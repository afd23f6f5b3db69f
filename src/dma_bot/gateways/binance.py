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
Every decision about what to report (one ACK, fills once, reconciliation after a stream gap) belongs to
:class:`~dma_bot.gateways.binance_orders.OrderTable`; every report leaves through one ordered outbox, so
the reports of an order keep their order. After every (re)subscription, once the open orders are
reconciled, it reads the account's balances and open orders ("account.read") and puts one
:class:`~dma_bot.model.events.AccountSnapshot` on ``out`` for the ledger to reconcile against. When the
inbox ends it cancels its open orders (if ``cancel_on_shutdown``), waits, bounded, until each is terminal,
unsubscribes, and closes ``out`` once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping
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
from dma_bot.gateways.base import GatewayStats
from dma_bot.gateways.binance_orders import OrderTable, OrderTableStats, local_reject
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.gateways.binance_stream import UserDataStream
from dma_bot.model.events import AccountSnapshot, ExecReport, Route
from dma_bot.model.market import MarketBoard
from dma_bot.retry import Backoff, RetryPolicy

__all__ = ["BinanceGateway"]

log = logging.getLogger(__name__)

_ORDER: Final = "/api/v3/order"
_MY_TRADES: Final = "/api/v3/myTrades"
_NO_SUCH_ORDER: Final = -2013
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
        stream_wait_s: float = 30.0,
        shutdown_timeout_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        if time_in_force not in _TIME_IN_FORCE:
            raise ValueError(f"time_in_force: one of {', '.join(_TIME_IN_FORCE)}, was {time_in_force!r}")
        if max_in_flight < 1 or query_attempts < 1 or order_attempts < 1:
            raise ValueError("max_in_flight, query_attempts and order_attempts: at least 1")
        self.venue = venue
        self.stats = GatewayStats()
        self.unknown_outcomes = 0  # POSTs whose answer was lost: resolved by querying, never by resending
        self.query_failures = 0  # queries that never got an answer after every attempt
        self.bad_answers = 0  # order snapshots that contradict what we sent (skipped, logged)
        self.trade_query_failures = 0  # myTrades never answered: the unheard quantity was reported id-less
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
        self._stream_wait_s = stream_wait_s
        self._shutdown_timeout_s = shutdown_timeout_s
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
        }
        for name, count in self.retries_by_policy.items():
            counts[f"retry.{name}"] = count
        for name, count in self.gave_up_by_policy.items():
            counts[f"gave_up.{name}"] = count
        return counts

    # -- the stage ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Start (clock, subscription), place routes until the inbox ends, finish the orders, close ``out``."""
        try:
            await self._rest.sync_clock()
        except (VenueError, ProtocolError) as e:
            raise StartupError(f"{self.venue} REST: an answer from /api/v3/time, was {e}") from e
        await self.stream.start(self._startup_timeout_s)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.stream.run())
            try:
                await self._take_routes()
                await self._finish_orders()
            finally:
                await self.stream.stop()
        await self._out.close()

    async def _take_routes(self) -> None:
        slots = asyncio.Semaphore(self._max_in_flight)
        async with asyncio.TaskGroup() as placing:
            while (batch := await self._inbox.get_batch()) is not None:
                for route in batch:
                    self.stats.routes_received += 1
                    await slots.acquire()
                    placing.create_task(self._release_after(self._place(route), slots))

    @staticmethod
    async def _release_after(job: Coroutine[Any, Any, None], slots: asyncio.Semaphore) -> None:
        try:
            await job
        finally:
            slots.release()

    async def _bounded(self, jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
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
        if not self.stream.subscribed:
            try:
                async with asyncio.timeout(self._stream_wait_s):
                    await self.stream.wait_subscribed()
            except TimeoutError:
                reason = f"local stream: the user-data stream subscribed within {self._stream_wait_s}s, was not"
                await self._emit([local_reject(route, reason, self._clock.time_ns())])
                return
        self._orders.register(route, rules.instrument)
        self._idle.clear()
        await self._post(route, rules)

    def _reference_price(self, rules: SymbolRules) -> Decimal | None:
        mid2 = self._board.mid2(rules.symbol) if self._board is not None else None
        return None if mid2 is None else rules.instrument.tick_size * mid2 / 2

    async def _post(self, route: Route, rules: SymbolRules) -> None:
        orders, cid = self._orders, route.client_order_id
        params = build_new_order_params(route, rules.instrument, time_in_force=self._time_in_force, resp_type="ACK")
        policy = self._send_policy
        clock_synced = False
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        while True:
            attempt += 1
            try:
                body = await self._rest.request("POST", _ORDER, params, signed=True)
                reports = parse_order_response(body, self.venue, self._instruments, self._clock.time_ns(), route=route)
            except VenueError as e:
                if e.disposition is Disposition.UNKNOWN_OUTCOME:
                    break
                if e.disposition is Disposition.CLOCK and not clock_synced:
                    clock_synced = True
                    self.retries_by_policy[policy.name] += 1
                    await self._resync_clock()
                    continue
                wait_s = None
                if e.disposition in (Disposition.RATE_LIMITED, Disposition.RETRYABLE):
                    wait_s = self._retry_delay(policy, attempt, started_ns, e, cid)
                if wait_s is None:
                    await self._emit(orders.on_post_rejected(cid, e.code, e.msg, self._clock.time_ns()))
                    return
                await asyncio.sleep(wait_s)
                continue
            except ProtocolError as e:
                log.warning("%s order %s: unreadable answer to the POST, querying: %s", self.venue, cid, e)
                break
            await self._emit(orders.on_post_answered(cid, reports))
            if orders.needs_query(cid):
                await self._query(route.symbol, cid)
            return
        self.unknown_outcomes += 1
        await self._emit(orders.on_post_unknown(cid))
        await self._query(route.symbol, cid)

    def _retry_delay(
        self, policy: RetryPolicy, attempt: int, started_ns: int, error: Exception | None, cid: str
    ) -> float | None:
        """``policy``'s wait before attempt ``attempt + 1`` of a request first sent at ``started_ns``
        (monotonic), or None to give up; counted either way."""
        elapsed_s = (self._clock.monotonic_ns() - started_ns) / 1e9
        retry_after_s = error.retry_after_s if isinstance(error, VenueError) else None
        delay = policy.next_delay(attempt, elapsed_s, self._rng, retry_after_s=retry_after_s)
        if delay is None:
            self.gave_up_by_policy[policy.name] += 1
            log.warning("%s order %s: %s gave up after %d attempts in %.2fs (deadline %ss, Retry-After %s): %s",
                        self.venue, cid, policy.name, attempt, elapsed_s, policy.deadline_s, retry_after_s, error)
        else:
            self.retries_by_policy[policy.name] += 1
        return delay

    async def _resync_clock(self) -> None:
        try:
            await self._rest.sync_clock()
        except (VenueError, ProtocolError) as e:
            log.warning("%s: clock resynchronisation failed: %s", self.venue, e)

    async def _query(
        self, symbol: str, cid: str, *, full: bool | None = None, policy: RetryPolicy | None = None
    ) -> None:
        """``GET /api/v3/order`` by client id, retried by ``policy`` (default "order.query"), and report what
        the venue says."""
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
                return
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
                await self._apply_state(state, full)
                return
            delay = self._retry_delay(policy, attempt, started_ns, error, cid)
            if delay is None:
                break
            await asyncio.sleep(delay)
        if not_found:
            await self._emit(orders.on_not_found(cid, self._clock.time_ns()))
        else:
            self.query_failures += 1
            log.warning("%s order %s: no answer to the order query after %d attempts: %s", self.venue, cid,
                        attempt, error)

    async def _apply_state(self, state: OrderState, full: bool | None) -> None:
        trades: list[Trade] | None = None
        if self._orders.wants_trades(state, full=full):
            trades = await self._my_trades(state)
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
            return
        await self._emit(reports)

    async def _my_trades(self, state: OrderState) -> list[Trade] | None:
        """``GET /api/v3/myTrades`` of one order, retried by "order.trades"; None when it never answered."""
        params = build_my_trades_params(state.symbol, state.venue_order_id)
        policy, cid = self._trades_policy, state.client_order_id
        error: Exception | None = None
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        while True:
            attempt += 1
            try:
                return parse_my_trades(await self._rest.request("GET", _MY_TRADES, params, signed=True),
                                       self._instruments)
            except VenueError as e:
                error = e
                if e.disposition is Disposition.CLOCK:
                    await self._resync_clock()
                elif e.disposition is Disposition.FINAL:
                    break
            except ProtocolError as e:
                error = e
            delay = self._retry_delay(policy, attempt, started_ns, error, cid)
            if delay is None:
                break
            await asyncio.sleep(delay)
        self.trade_query_failures += 1
        log.warning("%s order %s: no trades from myTrades (%s); reporting the unheard quantity from executedQty",
                    self.venue, state.client_order_id, error)
        return None

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

    async def _signed_get(self, path: str, params: list[tuple[str, str]], policy: RetryPolicy) -> Any:
        """One signed GET retried by ``policy``; its JSON body, or None when it never answered."""
        error: Exception | None = None
        attempt = 0
        started_ns = self._clock.monotonic_ns()
        while True:
            attempt += 1
            try:
                return await self._rest.request("GET", path, params, signed=True)
            except VenueError as e:
                error = e
                if e.disposition is Disposition.CLOCK:
                    await self._resync_clock()
                elif e.disposition is Disposition.FINAL:
                    break
            except ProtocolError as e:
                error = e
            delay = self._retry_delay(policy, attempt, started_ns, error, path)
            if delay is None:
                break
            await asyncio.sleep(delay)
        log.warning("%s: no answer from %s after %d attempts: %s", self.venue, path, attempt, error)
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

    # -- UserStreamHandler (called by the stream only) ---------------------------------------------------
    async def on_subscribed(self) -> None:
        """Reconcile every order we believe open (the venue does not replay what the stream missed), then read
        the account for the ledger to reconcile against (at start-up too: this is the first subscription)."""
        await self._bounded(self._query(symbol, cid) for symbol, cid in self._orders.stream_subscribed())
        await self._read_account()

    def on_disconnected(self) -> None:
        self._orders.stream_lost()

    async def on_execution(self, report: ExecReport) -> None:
        await self._emit(self._orders.on_execution(report))
        for symbol, cid in self._orders.take_queries():
            await self._query(symbol, cid)
