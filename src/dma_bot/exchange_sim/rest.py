"""The ``/api/v3`` REST routes of the simulated exchange (aiohttp handlers over the pure engine).

It owns what is HTTP: reading parameters from the raw query string and form body (query wins, as on
Binance), authenticating signed calls with :mod:`dma_bot.exchange_sim.auth`, charging request weight
and order counts (headers ``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``/``-1D``), and answering
errors as ``application/json`` ``{"code","msg"}``; since 2026-04-02 a successful order place or cancel
costs no weight, a failed one still does. Matching and balances are the engine's; the JSON
shapes are :mod:`dma_bot.exchange_sim.wire`'s and :mod:`dma_bot.exchange_sim.views`'. The listenKey
endpoints (``/api/v3/userDataStream``) were switched off for Spot on 2026-02-20: they answer HTTP 410
with -1020 "This operation is not supported.", so a client still built on them fails loudly. Every
request goes through the simulator's :class:`~dma_bot.exchange_sim.faults.FaultPlan` first: a matching
rule answers a Binance error instead (5xx, 429/418 with ``Retry-After``, -1021), answers late, or cuts
the connection, having carried the request out or not as the rule says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

import orjson
from aiohttp import web

from dma_bot.exchange_sim import views
from dma_bot.exchange_sim.auth import Credentials, check_timestamp, split_signature
from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.faults import BAD_GATEWAY_HTML, Fault, FaultKind, FaultPlan, Surface, Then, fault_error
from dma_bot.exchange_sim.limits import RateLimiter
from dma_bot.exchange_sim.validation import ApiError, mandatory, parse_client_order_id, parse_int, parse_new_order
from dma_bot.exchange_sim.wire import cancel_response, my_trade, new_order_response, order_status

__all__ = ["RestContext", "build_routes"]

Handler = Callable[[web.Request, dict[str, str]], Awaitable[Any]]
_PUBLIC: Final = "NONE"
_SIGNED: Final = "SIGNED"
_KEY_ONLY: Final = "USER_STREAM"
_DAY_MS: Final = 24 * 60 * 60 * 1000


@dataclass(slots=True)
class RestContext:
    """What the handlers share with the rest of the server."""

    exchange: Exchange
    credentials: Credentials
    limiter: RateLimiter
    now_ms: Callable[[], int]
    after_change: Callable[[], None]  # publish the engine's outbox to the sockets
    faults: FaultPlan
    monotonic_ns: Callable[[], int]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def _parse(raw: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in params:
            raise ApiError(-1101, "Duplicate values for a parameter detected.")
        params[key] = value
    return params


class _Endpoint:
    """One route: its security type, its weight (or a function of the parameters), and its handler."""

    __slots__ = ("context", "handler", "is_order", "security", "weight")

    def __init__(
        self,
        context: RestContext,
        handler: Handler,
        security: str,
        weight: int | Callable[[dict[str, str]], int],
        is_order: bool,
    ) -> None:
        self.context, self.handler, self.security, self.weight = context, handler, security, weight
        self.is_order = is_order  # place or cancel: free when it succeeds, and reports the order counts

    async def handle(self, request: web.Request) -> web.Response:
        context = self.context
        signed = self.security == _SIGNED
        fault = context.faults.request_fault(Surface.REST, request.method, request.path, signed, context.monotonic_ns())
        if fault is None:
            return await self._answer(request)
        return await self._answer_fault(request, fault)

    async def _answer_fault(self, request: web.Request, fault: Fault) -> web.Response:
        """Answer as ``fault`` says: an error now, a late answer, or a cut connection."""
        context = self.context
        if fault.kind is FaultKind.REQUEST_TIMEOUT:
            assert fault.hold_ns is not None
            if fault.then is Then.ANSWER:
                await asyncio.sleep(fault.hold_ns / 1e9)  # the fault itself: an answer that comes late
                return await self._answer(request)
            if fault.executed:
                await self._answer(request)
            await asyncio.sleep(fault.hold_ns / 1e9)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=504)  # never reaches the client: its connection is gone
        if fault.executed:
            await self._answer(request)
        if fault.status == 502:
            return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
        now_ms = context.now_ms()
        limits = context.limiter.limits
        error = fault_error(fault, now_ms, weight_limit=limits.weight_per_minute, orders_per_10s=limits.orders_per_10s)
        headers = {"X-MBX-USED-WEIGHT-1M": str(context.limiter.used_weight(now_ms))}
        if error.retry_after_s is not None:
            headers["Retry-After"] = str(error.retry_after_s)
        return json_response(error.body(), error.status, headers)

    async def _answer(self, request: web.Request) -> web.Response:
        context = self.context
        now_ms = context.now_ms()
        weight = 1
        headers: dict[str, str] = {}
        try:
            query_raw = request.raw_path.partition("?")[2]
            body_raw = (await request.read()).decode() if request.can_read_body else ""
            params = _parse(body_raw)
            params.update(_parse(query_raw))
            weight = self.weight(params) if callable(self.weight) else self.weight
            context.limiter.add_weight(weight, now_ms)
            if self.security != _PUBLIC:
                self._authenticate(request, params, query_raw, body_raw, now_ms)
            params.pop("signature", None)
            body = await self.handler(request, params)
            if self.is_order:
                context.limiter.refund_weight(weight, now_ms)
                ten_seconds, day = context.limiter.order_counts(now_ms)
                headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"] = str(ten_seconds), str(day)
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
            if error.retry_after_s is not None:
                headers["Retry-After"] = str(error.retry_after_s)
        finally:
            context.after_change()
        headers["X-MBX-USED-WEIGHT-1M"] = str(context.limiter.used_weight(now_ms))
        return json_response(body, status, headers)

    def _authenticate(
        self, request: web.Request, params: dict[str, str], query_raw: str, body_raw: str, now_ms: int
    ) -> None:
        credentials = self.context.credentials
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise ApiError(-2014, "API-key format invalid.", status=401)
        if not credentials.knows(api_key):
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        if self.security == _KEY_ONLY:
            return
        query_unsigned, query_signature = split_signature(query_raw)
        body_unsigned, body_signature = split_signature(body_raw)
        signature = query_signature if query_signature is not None else body_signature
        if "timestamp" not in params:
            raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not signature:
            raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        if not credentials.verify(api_key, query_unsigned + body_unsigned, unquote(signature)):
            raise ApiError(-1022, "Signature for this request is not valid.")
        check_timestamp(params, now_ms)


def _order_ids(params: dict[str, str], client_key: str) -> tuple[int | None, str | None]:
    return parse_int(params, "orderId"), parse_client_order_id(params, client_key)


def build_routes(context: RestContext) -> list[web.RouteDef]:
    """Every ``/api/v3`` route, bound to ``context``."""
    exchange = context.exchange

    async def ping(request: web.Request, params: dict[str, str]) -> Any:
        return {}

    async def server_time(request: web.Request, params: dict[str, str]) -> Any:
        return {"serverTime": context.now_ms()}

    async def exchange_info(request: web.Request, params: dict[str, str]) -> Any:
        return views.exchange_info(exchange, context.limiter, params, context.now_ms())

    async def depth(request: web.Request, params: dict[str, str]) -> Any:
        return views.depth(exchange, mandatory(params, "symbol"), parse_int(params, "limit") or 100)

    async def ticker_24hr(request: web.Request, params: dict[str, str]) -> Any:
        return views.tickers(exchange, params, context.now_ms(), views.ticker_24hr)

    async def book_ticker(request: web.Request, params: dict[str, str]) -> Any:
        return views.tickers(exchange, params, context.now_ms(), views.book_ticker)

    async def price_ticker(request: web.Request, params: dict[str, str]) -> Any:
        return views.tickers(exchange, params, context.now_ms(), views.price_ticker)

    async def new_order(request: web.Request, params: dict[str, str]) -> Any:
        now_ms = context.now_ms()
        order_request = parse_new_order(params, exchange.configs)
        context.limiter.add_order(now_ms)
        order, fills = exchange.place(order_request, now_ms)
        config = exchange.configs[order.symbol]
        return new_order_response(order, config.instrument, order_request.response_type, fills, now_ms)

    async def test_order(request: web.Request, params: dict[str, str]) -> Any:
        exchange.validate(parse_new_order(params, exchange.configs))
        if params.get("computeCommissionRates") == "true":
            return views.commission_rates(exchange)
        return {}

    async def get_order(request: web.Request, params: dict[str, str]) -> Any:
        symbol = mandatory(params, "symbol")
        order = exchange.find(symbol, *_order_ids(params, "origClientOrderId"))
        if order is None or order.status == "REJECTED":
            raise ApiError(-2013, "Order does not exist.")
        return order_status(order, exchange.configs[symbol].instrument)

    async def cancel_order(request: web.Request, params: dict[str, str]) -> Any:
        symbol = mandatory(params, "symbol")
        restriction = params.get("cancelRestrictions")
        if restriction not in (None, "ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise ApiError(-1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.")
        cancel_id = parse_client_order_id(params, "newClientOrderId")
        found = exchange.find(symbol, *_order_ids(params, "origClientOrderId"))
        now_ms = context.now_ms()
        order, cancel_id = exchange.cancel(found, now_ms, cancel_client_id=cancel_id, restriction=restriction)
        return cancel_response(order, exchange.configs[symbol].instrument, cancel_id, now_ms)

    async def open_orders(request: web.Request, params: dict[str, str]) -> Any:
        symbol = params.get("symbol")
        if symbol is not None:
            exchange.config(symbol)
        return [order_status(o, exchange.configs[o.symbol].instrument) for o in exchange.open_orders(symbol)]

    async def cancel_open_orders(request: web.Request, params: dict[str, str]) -> Any:
        symbol = mandatory(params, "symbol")
        instrument = exchange.config(symbol).instrument
        orders = exchange.open_orders(symbol)
        if not orders:
            raise ApiError(-2011, "Unknown order sent.")
        now_ms = context.now_ms()
        answers = []
        for order in orders:
            _, cancel_id = exchange.cancel(order, now_ms)
            answers.append(cancel_response(order, instrument, cancel_id, now_ms))
        return answers

    async def all_orders(request: web.Request, params: dict[str, str]) -> Any:
        symbol = mandatory(params, "symbol")
        instrument = exchange.config(symbol).instrument
        return [order_status(o, instrument) for o in exchange.orders(symbol)]

    async def my_trades(request: web.Request, params: dict[str, str]) -> Any:
        symbol = mandatory(params, "symbol")
        instrument = exchange.config(symbol).instrument
        limit = parse_int(params, "limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise ApiError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..1000'.")
        start_ms, end_ms = parse_int(params, "startTime"), parse_int(params, "endTime")
        if start_ms is not None and end_ms is not None and not 0 <= end_ms - start_ms <= _DAY_MS:
            raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
        trades = exchange.my_trades(
            symbol,
            order_id=parse_int(params, "orderId"),
            start_ms=start_ms,
            end_ms=end_ms,
            from_id=parse_int(params, "fromId"),
            limit=limit,
        )
        return [my_trade(t, instrument) for t in trades]

    async def account(request: web.Request, params: dict[str, str]) -> Any:
        return views.account(exchange, omit_zero=params.get("omitZeroBalances") == "true")

    async def listen_key(request: web.Request, params: dict[str, str]) -> Any:
        raise ApiError(-1020, "This operation is not supported.", status=410)

    def route(
        method: str, path: str, handler: Handler, security: str, weight: Any, is_order: bool = False
    ) -> web.RouteDef:
        return web.route(method, f"/api/v3/{path}", _Endpoint(context, handler, security, weight, is_order).handle)

    return [
        route("GET", "ping", ping, _PUBLIC, 1),
        route("GET", "time", server_time, _PUBLIC, 1),
        route("GET", "exchangeInfo", exchange_info, _PUBLIC, 20),
        route("GET", "depth", depth, _PUBLIC, views.depth_weight),
        route("GET", "ticker/24hr", ticker_24hr, _PUBLIC, lambda p: 2 if "symbol" in p else 80),
        route("GET", "ticker/bookTicker", book_ticker, _PUBLIC, lambda p: 2 if "symbol" in p else 4),
        route("GET", "ticker/price", price_ticker, _PUBLIC, lambda p: 2 if "symbol" in p else 4),
        route("POST", "order", new_order, _SIGNED, 1, is_order=True),
        route("POST", "order/test", test_order, _SIGNED, lambda p: 20 if "computeCommissionRates" in p else 1),
        route("GET", "order", get_order, _SIGNED, 4),
        route("DELETE", "order", cancel_order, _SIGNED, 1, is_order=True),
        route("GET", "openOrders", open_orders, _SIGNED, lambda p: 6 if "symbol" in p else 80),
        route("DELETE", "openOrders", cancel_open_orders, _SIGNED, 1, is_order=True),
        route("GET", "allOrders", all_orders, _SIGNED, 20),
        route("GET", "account", account, _SIGNED, 20),
        route("GET", "myTrades", my_trades, _SIGNED, lambda p: 5 if "orderId" in p else 20),
        *(route(m, "userDataStream", listen_key, _KEY_ONLY, 2) for m in ("POST", "PUT", "DELETE")),
    ]
