"""The WebSocket API of the simulated exchange (``/ws-api/v3``): sessions and user-data subscriptions.

It owns each connection's session (logged-on key, user-data subscriptions) and delivers the engine's
user-data events to every subscription as ``{"subscriptionId": N, "event": {...}}``. Methods: ``ping``,
``time``, ``session.logon`` (Ed25519 keys only, verified in pure Python; an HMAC key is answered -1022
like Binance, whose logon treats every signature as Ed25519), ``session.status``, ``session.logout``,
``session.subscriptions``, ``userDataStream.subscribe`` (needs a logon),
``userDataStream.subscribe.signature`` (any key type; payload = sorted parameters), and
``userDataStream.unsubscribe`` (sends ``eventStreamTerminated`` first). The listenKey methods
``userDataStream.start/ping/stop``, switched off on 2026-02-20, answer -1020. Every response echoes the
request ``id`` with its JSON type and carries ``rateLimits`` unless ``returnRateLimits`` is false.
Every request and new connection goes through the simulator's
:class:`~dma_bot.exchange_sim.faults.FaultPlan` first: a matching rule answers a Binance error instead
(5xx, 429 or 418 with ``error.data.retryAfter``, -1021), answers late, or cuts the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, web

from dma_bot.exchange_sim.auth import Credentials, check_timestamp, ws_payload
from dma_bot.exchange_sim.faults import Channel, Fault, FaultKind, FaultPlan, Surface, Then, fault_error
from dma_bot.exchange_sim.limits import RateLimiter
from dma_bot.exchange_sim.validation import ApiError
from dma_bot.exchange_sim.ws import Peer

__all__ = ["WsApiHub"]

_WEIGHTS: Final = {"ping": 1, "time": 1}
_LISTEN_KEY_METHODS: Final = frozenset({"userDataStream.start", "userDataStream.ping", "userDataStream.stop"})
_MAX_SUBSCRIPTIONS: Final = 1000
_INVALID_JSON: Final = object()


class _Session(Peer):
    __slots__ = (
        "api_key",
        "authorized_since",
        "connected_ms",
        "logon_subscription",
        "next_subscription_id",
        "return_rate_limits",
        "subscriptions",
    )

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, outbox_size: int, now_ms: int) -> None:
        super().__init__(request, ws, outbox_size)
        self.connected_ms = now_ms
        self.api_key: str | None = None
        self.authorized_since: int | None = None
        self.subscriptions: dict[int, str] = {}  # subscriptionId -> api key of the account
        self.logon_subscription: int | None = None
        self.next_subscription_id = 0
        self.return_rate_limits = request.query.get("returnRateLimits", "true") != "false"


class WsApiHub:
    """Every WebSocket API session and the fan-out of user-data events to their subscriptions."""

    def __init__(
        self,
        credentials: Credentials,
        limiter: RateLimiter,
        now_ms: Callable[[], int],
        *,
        ping_interval: float,
        outbox_size: int,
        faults: FaultPlan,
        monotonic_ns: Callable[[], int],
    ) -> None:
        self._faults = faults
        self._monotonic_ns = monotonic_ns
        self._timers: set[asyncio.TimerHandle] = set()
        self._credentials = credentials
        self._limiter = limiter
        self._now_ms = now_ms
        self._ping_interval = ping_interval
        self._outbox_size = outbox_size
        self._sessions: set[_Session] = set()
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=self._ping_interval)
        await ws.prepare(request)
        session = _Session(request, ws, self._outbox_size, self._now_ms())
        with contextlib.suppress(ApiError):
            self._limiter.add_weight(2, session.connected_ms)
        self._sessions.add(session)
        self._notify()
        if self._faults.cut_connection(Channel.USER, self._monotonic_ns()):
            session.abort()
        try:
            await session.serve(lambda text: self._on_request(session, text))
        finally:
            self._sessions.discard(session)
            self._notify()
        return ws

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- requests ------------------------------------------------------------------------------------------
    def _on_request(self, session: _Session, text: str) -> None:
        try:
            message: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = _INVALID_JSON
        fault = None
        if isinstance(message, dict) and isinstance(message.get("method"), str):
            params = message.get("params")
            signed = isinstance(params, dict) and "timestamp" in params
            fault = self._faults.request_fault(Surface.WS_API, message["method"], None, signed, self._monotonic_ns())
        if fault is None:
            session.send_json(self._respond(session, message))
        else:
            self._answer_fault(session, message, fault)
        self._notify()

    def _respond(self, session: _Session, message: Any) -> dict[str, Any]:
        now_ms = self._now_ms()
        request_id: Any = None
        rate_limits = session.return_rate_limits
        try:
            if message is _INVALID_JSON or not isinstance(message, dict):
                raise ApiError(-1135, "Invalid JSON Request")
            request_id = message.get("id")
            method = message.get("method")
            params = message.get("params") or {}
            if not isinstance(method, str) or not isinstance(params, dict):
                raise ApiError(-1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            if params.get("returnRateLimits") is False:
                rate_limits = False
            self._limiter.add_weight(_WEIGHTS.get(method, 2), now_ms)
            result = self._call(session, method, params, now_ms)
            response: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        except ApiError as error:
            response = {"id": request_id, "status": error.status, "error": error.body()}
        if rate_limits:
            response["rateLimits"] = self._limiter.ws_api(now_ms)
        return response

    def _answer_fault(self, session: _Session, message: dict[str, Any], fault: Fault) -> None:
        """Answer as ``fault`` says: an error now, a late answer, or a cut connection."""
        if fault.kind is FaultKind.REQUEST_TIMEOUT:
            assert fault.hold_ns is not None
            if fault.then is Then.ANSWER:
                self._later(fault.hold_ns, lambda: self._late_answer(session, message))
                return
            if fault.executed:
                self._respond(session, message)
            self._later(fault.hold_ns, session.abort)
            return
        if fault.executed:
            self._respond(session, message)
        now_ms = self._now_ms()
        limits = self._limiter.limits
        error = fault_error(fault, now_ms, weight_limit=limits.weight_per_minute, orders_per_10s=limits.orders_per_10s)
        body: dict[str, Any] = error.body()
        if error.retry_after_s is not None:
            body["data"] = {"serverTime": now_ms, "retryAfter": now_ms + error.retry_after_s * 1000}
        response: dict[str, Any] = {"id": message.get("id"), "status": error.status, "error": body}
        if session.return_rate_limits:
            response["rateLimits"] = self._limiter.ws_api(now_ms)
        session.send_json(response)
        if fault.kind is FaultKind.REQUEST_BANNED:
            session.close_after_queued()  # Binance disconnects a banned IP's WebSocket API connections

    def _late_answer(self, session: _Session, message: dict[str, Any]) -> None:
        session.send_json(self._respond(session, message))
        self._notify()

    def _later(self, delay_ns: int, callback: Callable[[], None]) -> None:
        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay_ns / 1e9, run)
        self._timers.add(handle)

    def _call(self, session: _Session, method: str, params: dict[str, Any], now_ms: int) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": now_ms}
        if method == "session.logon":
            self._logon(session, params, now_ms)
            return self._status(session, now_ms)
        if method == "session.status":
            return self._status(session, now_ms)
        if method == "session.logout":
            if session.logon_subscription is not None:
                self._end_subscription(session, session.logon_subscription, now_ms)
            session.api_key = session.authorized_since = None
            return self._status(session, now_ms)
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in session.subscriptions]
        if method == "userDataStream.subscribe":
            if session.api_key is None:
                raise ApiError(-1002, "You are not authorized to execute this request.", status=401)
            subscription_id = self._subscribe(session, session.api_key)
            session.logon_subscription = subscription_id
            return {"subscriptionId": subscription_id}
        if method == "userDataStream.subscribe.signature":
            api_key = self._verify_signed(params, now_ms)
            return {"subscriptionId": self._subscribe(session, api_key)}
        if method == "userDataStream.unsubscribe":
            return self._unsubscribe(session, params.get("subscriptionId"), now_ms)
        if method in _LISTEN_KEY_METHODS:
            raise ApiError(-1020, "This operation is not supported.", status=410)
        raise ApiError(-1020, "This operation is not supported.")

    def _verify_signed(self, params: dict[str, Any], now_ms: int) -> str:
        api_key = params.get("apiKey")
        signature = params.get("signature")
        if not isinstance(api_key, str) or not api_key:
            raise ApiError(-1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
        if not self._credentials.knows(api_key):
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        if "timestamp" not in params:
            raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not isinstance(signature, str) or not signature:
            raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        if not self._credentials.verify(api_key, ws_payload(params), signature):
            raise ApiError(-1022, "Signature for this request is not valid.")
        check_timestamp(params, now_ms)
        return api_key

    def _logon(self, session: _Session, params: dict[str, Any], now_ms: int) -> None:
        api_key = params.get("apiKey")
        if isinstance(api_key, str) and self._credentials.knows(api_key) and not self._credentials.is_ed25519(api_key):
            raise ApiError(-1022, "Signature for this request is not valid.")
        session.api_key = self._verify_signed(params, now_ms)
        session.authorized_since = now_ms

    def _status(self, session: _Session, now_ms: int) -> dict[str, Any]:
        return {
            "apiKey": session.api_key,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_ms,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now_ms,
            "userDataStream": bool(session.subscriptions),
        }

    def _subscribe(self, session: _Session, api_key: str) -> int:
        if session.subscriptions:  # the simulator has one account, whichever of its keys subscribed
            raise ApiError(-2035, "User Data Stream subscription already active.")
        if len(session.subscriptions) >= _MAX_SUBSCRIPTIONS or session.next_subscription_id > 65535:
            raise ApiError(-2042, "Maximum subscription ID reached for this connection.")
        subscription_id = session.next_subscription_id
        session.next_subscription_id += 1
        session.subscriptions[subscription_id] = api_key
        return subscription_id

    def _unsubscribe(self, session: _Session, subscription_id: Any, now_ms: int) -> dict[str, Any]:
        if subscription_id is None:
            targets = list(session.subscriptions)
        elif isinstance(subscription_id, int) and subscription_id in session.subscriptions:
            targets = [subscription_id]
        else:
            targets = []
        if not targets:
            raise ApiError(-2036, "User Data Stream subscription not active.")
        for target in targets:
            self._end_subscription(session, target, now_ms)
        return {}

    def _end_subscription(self, session: _Session, subscription_id: int, now_ms: int) -> None:
        del session.subscriptions[subscription_id]
        if session.logon_subscription == subscription_id:
            session.logon_subscription = None
        event = {"e": "eventStreamTerminated", "E": now_ms}
        session.send_json({"subscriptionId": subscription_id, "event": event})

    def expire_subscriptions(self) -> int:
        """End every user-data subscription with ``eventStreamTerminated``; how many there were."""
        now_ms = self._now_ms()
        count = 0
        for session in list(self._sessions):
            for subscription_id in list(session.subscriptions):
                self._end_subscription(session, subscription_id, now_ms)
                count += 1
        self._notify()
        return count

    # -- delivery ------------------------------------------------------------------------------------------
    def dispatch(self, events: list[dict[str, Any]]) -> None:
        """Send each user-data event to every active subscription, in order."""
        if not events:
            return
        for session in list(self._sessions):
            for subscription_id in session.subscriptions:
                for event in events:
                    session.send_json({"subscriptionId": subscription_id, "event": event})

    @property
    def subscriptions(self) -> int:
        return sum(len(session.subscriptions) for session in self._sessions)

    @property
    def connections(self) -> int:
        return len(self._sessions)

    async def wait_subscriptions(self, count: int = 1) -> None:
        """Return once at least ``count`` user-data subscriptions are active."""
        while self.subscriptions < count:
            await self._changed.wait()

    async def wait_connections(self, count: int) -> None:
        while self.connections != count:
            await self._changed.wait()

    # -- test hooks ----------------------------------------------------------------------------------------
    def server_shutdown(self, now_ms: int) -> None:
        for session in list(self._sessions):
            session.send_json({"event": {"e": "serverShutdown", "E": now_ms}})
            session.close_after_queued()

    def drop(self) -> int:
        """Cut every connection with no close frame; how many there were."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        return len(sessions)

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for session in list(self._sessions):
            with contextlib.suppress(ConnectionError):
                await session.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
