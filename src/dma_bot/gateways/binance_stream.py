"""The Binance Spot user-data stream: one WebSocket API connection with a signed subscription, kept alive.

It owns the connection and its lifecycle only: connect, ``userDataStream.subscribe.signature`` (counted
ok/err; a -1021 resynchronises the clock first), pump messages through :func:`parse_ws_message`, hand
each ``executionReport`` to its :class:`UserStreamHandler`, and reconnect after a drop,
``eventStreamTerminated`` or ``serverShutdown`` with capped jittered backoff
(:class:`~dma_bot.retry.Backoff`; at once after ``serverShutdown``). After every successful
(re)subscription it awaits ``handler.on_subscribed()`` (the gateway reconciles there: Binance does not
replay missed events) and only then reports itself subscribed. On stop it unsubscribes (bounded) and
closes. It decides nothing about orders. A malformed message is counted, logged (first few) and skipped.
Secrets never leave the signer: signed params are sent, never logged.

    {"id":1,"method":"userDataStream.subscribe.signature","params":{"apiKey":"..","timestamp":..,"signature":".."}}
    -> {"id":1,"status":200,"result":{"subscriptionId":0},"rateLimits":[..]}; then {"subscriptionId":0,"event":{..}}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from typing import Final, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from dma_bot.binance.codec import (
    ServerShutdown,
    StreamTerminated,
    UserEvent,
    WsResponse,
    build_ws_request,
    parse_ws_message,
)
from dma_bot.binance.errors import Disposition, VenueError
from dma_bot.binance.signing import HmacSigner
from dma_bot.clock import Clock
from dma_bot.errors import ProtocolError, StartupError
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.model.events import ExecReport
from dma_bot.model.instrument import Instrument
from dma_bot.retry import Backoff

__all__ = ["UserDataStream", "UserStreamHandler"]

log = logging.getLogger(__name__)

_LOGGED_BAD_MESSAGES: Final = 10
_SERVER_SHUTDOWN: Final = "serverShutdown"


class UserStreamHandler(Protocol):
    """What the stream calls; the gateway implements it."""

    async def on_subscribed(self) -> None:
        """A (re)subscription succeeded: reconcile before the stream reports itself subscribed."""
        ...

    async def on_disconnected(self, reason: str) -> None:
        """The subscription is gone (``reason``: why): events are being missed until the next on_subscribed.

        Also called once when :meth:`UserDataStream.stop` ends it (``stopping`` is then True)."""
        ...

    async def on_execution(self, report: ExecReport) -> None: ...


class _Refused(Exception):
    """The venue answered the subscription with an error."""

    def __init__(self, error: VenueError) -> None:
        super().__init__(str(error))
        self.error = error


class _Interrupted(Exception):
    """The session ended before the subscription was answered."""


class UserDataStream:
    """The user-data subscription of one account; ``start()``, then ``run()`` in a TaskGroup, then ``stop()``."""

    def __init__(
        self,
        *,
        url: str,
        signer: HmacSigner,
        rest: BinanceRest,
        instruments: Mapping[str, Instrument],
        handler: UserStreamHandler,
        clock: Clock,
        venue: str = "BINANCE",
        backoff: Backoff | None = None,
        seed: int = 0,
        recv_window_ms: int = 5000,
        open_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
        ping_interval_s: float = 20.0,
    ) -> None:
        self.url = url
        self.venue = venue
        self._signer = signer
        self._rest = rest
        self._instruments = dict(instruments)
        self._handler = handler
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._rng = random.Random(seed)
        self._recv_window_ms = recv_window_ms
        self._open_timeout_s = open_timeout_s
        self._request_timeout_s = request_timeout_s
        self._ping_interval_s = ping_interval_s
        self._ws: ClientConnection | None = None
        self._subscription_id: int | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[WsResponse]] = {}
        self._attempt = 0
        self._session_started_ns = 0
        self._stopping = False
        self._stop = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._changed = asyncio.Event()
        self.connected = False
        self.reconnects = 0
        self.subscriptions_ok = 0
        self.subscriptions_err = 0
        self.bad_messages = 0
        self.ignored_events = 0
        self.last_event_ns: int | None = None
        self.last_close_reason = ""
        self._drop_reason = ""  # why drop() closed the session, for run() to tell
        # monotonic: since when the pump has been waiting for a frame (None while it handles one, or is not pumping)
        self.listening_since_ns: int | None = None

    # -- waiting ------------------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called: the session ends because we asked it to."""
        return self._stopping

    @property
    def subscribed(self) -> bool:
        """Subscribed, and the reconciliation that follows a subscription has finished."""
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    async def wait_subscriptions(self, count: int) -> None:
        """Return once ``count`` subscriptions (the first plus re-subscriptions) have succeeded."""
        while self.subscriptions_ok < count:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self, timeout_s: float) -> None:
        """The first subscription, before anything trades: retried until ``timeout_s``; a refusal that no
        retry can fix (a bad key, a bad signature) is a StartupError at once."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    try:
                        if await self._open():
                            return
                    except _Refused as e:
                        if e.error.disposition is Disposition.FINAL:
                            raise StartupError(
                                f"{self.venue} user-data stream: a subscription the venue accepts, was refused "
                                f"({e.error.code} {e.error.msg}): check BINANCE_API_KEY, BINANCE_API_SECRET and the "
                                f"key's permissions"
                            ) from None
                    await self._pause()
        except TimeoutError:
            raise StartupError(
                f"{self.venue} user-data stream: subscribed within {timeout_s}s, was not ({self.last_close_reason})"
            ) from None

    async def run(self) -> None:
        """Pump the subscribed connection; reconnect, resubscribe (and let the handler reconcile) until stop."""
        try:
            while not self._stopping:
                ws = self._ws
                if ws is None:
                    with contextlib.suppress(_Refused):
                        await self._open()
                    if self._ws is None:
                        if not self._stopping:
                            await self._pause()
                        continue
                    ws = self._ws
                reason = await self._pump(ws)
                await self._end_session(ws, reason)
                if self._stopping:
                    break
                self.reconnects += 1
                log.warning("%s user-data stream lost (%s); reconnecting", self.venue, reason)
                if reason != _SERVER_SHUTDOWN:
                    await self._pause()
        finally:
            if self._ws is not None:
                await self._end_session(self._ws, "stopped")

    async def stop(self) -> None:
        """Unsubscribe (bounded by the request timeout), close the socket, and end :meth:`run`."""
        if self._stopping:
            return
        self._stopping = True
        self._stop.set()
        ws = self._ws
        if ws is None:
            return
        if self._subscription_id is not None:
            request_id = self._new_request_id()
            answer: asyncio.Future[WsResponse] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = answer
            params = {"subscriptionId": self._subscription_id}
            try:
                await ws.send(build_ws_request(request_id, "userDataStream.unsubscribe", params).decode())
                async with asyncio.timeout(self._request_timeout_s):
                    response = await answer
                if not response.ok:
                    log.warning("%s user-data stream: unsubscribe refused: %s", self.venue, response.error)
            except (ConnectionClosed, TimeoutError) as e:
                log.warning("%s user-data stream: unsubscribe not confirmed: %s", self.venue, type(e).__name__)
            finally:
                self._pending.pop(request_id, None)
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()

    async def drop(self, reason: str) -> None:
        """Close the subscribed session because it is broken although open (``reason``: why, as the session's
        end); :meth:`run` reconnects and resubscribes as after any loss, and the handler reconciles."""
        ws = self._ws
        if ws is None or self._stopping or not self._subscribed.is_set():
            return
        self._drop_reason = reason
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()

    # -- one session --------------------------------------------------------------------------------------
    async def _open(self) -> bool:
        """Connect and subscribe; True once subscribed and reconciled. _Refused when the venue says no."""
        try:
            ws = await connect(
                self.url,
                open_timeout=self._open_timeout_s,
                ping_interval=self._ping_interval_s,
                ping_timeout=self._ping_interval_s,
                close_timeout=2,
                max_size=2**22,
                compression=None,
            )
        except (OSError, TimeoutError, WebSocketException) as e:
            self.last_close_reason = f"connect: {type(e).__name__}: {e}"
            return False
        try:
            if self._stopping:
                raise _Interrupted("stopping")
            await self._subscribe(ws)
        except (_Refused, _Interrupted, ConnectionClosed, TimeoutError, ProtocolError, OSError) as e:
            if not isinstance(e, _Refused):
                self.subscriptions_err += 1
                self.last_close_reason = f"subscribe: {type(e).__name__}: {e}"
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()
            self._notify()
            if isinstance(e, _Refused):
                raise
            return False
        self._ws = ws
        self.connected = True
        self._session_started_ns = self._clock.monotonic_ns()
        log.info("%s user-data stream subscribed (subscription %s)", self.venue, self._subscription_id)
        await self._handler.on_subscribed()
        self._subscribed.set()
        self._notify()
        return True

    async def _subscribe(self, ws: ClientConnection) -> None:
        request_id = self._new_request_id()
        params = self._signer.ws({}, timestamp_ms=self._rest.now_ms(), recv_window_ms=self._recv_window_ms)
        await ws.send(build_ws_request(request_id, "userDataStream.subscribe.signature", params).decode())
        async with asyncio.timeout(self._request_timeout_s):
            while True:
                message = self._parse(await ws.recv())
                if isinstance(message, WsResponse) and message.id == request_id:
                    break
                if isinstance(message, ServerShutdown):
                    raise _Interrupted("serverShutdown before the subscription was answered")
        if message.error is not None or not message.ok:
            self.subscriptions_err += 1
            error = message.error or VenueError(None, f"status {message.status}", message.status)
            self.last_close_reason = f"subscribe refused: {error.code} {error.msg}"
            log.warning("%s user-data stream: subscription refused: %s %s", self.venue, error.code, error.msg)
            if error.disposition is Disposition.CLOCK:
                with contextlib.suppress(VenueError, ProtocolError):
                    await self._rest.sync_clock()
            raise _Refused(error)
        result = message.result
        subscription = result.get("subscriptionId") if isinstance(result, dict) else None
        self._subscription_id = subscription if type(subscription) is int else None
        self.subscriptions_ok += 1

    async def _pump(self, ws: ClientConnection) -> str:
        """Hand events to the handler until the session ends; returns why it ended."""
        handler = self._handler
        while True:
            self.listening_since_ns = self._clock.monotonic_ns()
            try:
                raw = await ws.recv()
            except ConnectionClosed as e:
                return "stopped" if self._stopping else (self._drop_reason or f"closed: {e}")
            finally:
                self.listening_since_ns = None
            message = self._parse(raw)
            if message is None:
                continue
            if type(message) is ExecReport:
                await handler.on_execution(message)
            elif type(message) is WsResponse:
                answer = self._pending.pop(message.id, None) if type(message.id) is int else None
                if answer is not None and not answer.done():
                    answer.set_result(message)
            elif type(message) is StreamTerminated:
                if not self._stopping:
                    return "eventStreamTerminated"
            elif type(message) is ServerShutdown:
                return _SERVER_SHUTDOWN
            else:
                self.ignored_events += 1

    async def _end_session(self, ws: ClientConnection, reason: str) -> None:
        self.last_close_reason = reason
        self._drop_reason = ""
        was_connected = self.connected
        self.connected = False
        self._ws = None
        self._subscription_id = None
        self._subscribed.clear()
        if self._clock.monotonic_ns() - self._session_started_ns >= self._backoff.reset_after_s * 1e9:
            self._attempt = 0
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()
        if was_connected:
            await self._handler.on_disconnected(reason)
        self._notify()

    async def _pause(self) -> None:
        """The backoff delay before the next attempt; returns early on stop."""
        self._attempt += 1
        delay = self._backoff.delay(self._attempt, self._rng)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    def _new_request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _parse(self, raw: str | bytes) -> WsResponse | UserEvent | None:
        recv_ns = self._clock.time_ns()
        try:
            message = parse_ws_message(raw, self.venue, self._instruments, recv_ns)
        except ProtocolError as e:
            self.bad_messages += 1
            if self.bad_messages <= _LOGGED_BAD_MESSAGES:
                log.warning("%s user-data stream: skipped a bad message (%d so far): %s", self.venue,
                            self.bad_messages, e)
            return None
        if type(message) is not WsResponse:
            self.last_event_ns = recv_ns
        return message
