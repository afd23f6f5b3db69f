"""Market-data WebSockets of the simulated exchange: raw ``/ws/<stream>``, combined ``/stream``, and
the live control messages (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY).

It owns the stream connections and what each is subscribed to, and it publishes a
``<symbol>@bookTicker`` event (Spot shape: ``u, s, b, B, a, A``) to every subscriber each time the
engine's quote for that symbol changes. Raw connections get bare events; combined ones get
``{"stream": name, "data": event}``. ``/ws/<n>`` with a non-stream tail (ccxt.pro's ``/ws/0``) opens an
empty raw connection for SUBSCRIBE. Other well-formed stream names are accepted and listed but carry
no data. Each connection has a bounded outbox drained by its own writer; a client too slow to keep up
is disconnected, as Binance does. The server sends a ping frame every ``ping_interval`` seconds. Every
bookTicker event and every new connection goes through the simulator's
:class:`~dma_bot.exchange_sim.faults.FaultPlan`, which may silence, break, repeat or reorder frames, or
cut the connection right after its handshake.
:class:`Peer` (a socket with its outbox) is shared with :mod:`dma_bot.exchange_sim.ws_api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.faults import Channel, FaultPlan, MarketFrame, render_market_frame
from dma_bot.exchange_sim.views import book_ticker_event

__all__ = ["Peer", "StreamHub"]

log = logging.getLogger(__name__)
_CLOSE: Final = object()
_STREAM_RE: Final = re.compile(r"^[A-Za-z0-9_!]+@[A-Za-z0-9_@]+$")
_METHODS: Final = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"


class Peer:
    """One accepted WebSocket and its bounded outbox, drained by :meth:`pump`."""

    __slots__ = ("_queue", "request", "ws")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, outbox_size: int) -> None:
        self.request = request
        self.ws = ws
        self._queue: asyncio.Queue[object] = asyncio.Queue(outbox_size)

    def send(self, text: str) -> None:
        """Queue a text frame; a peer whose outbox is full is cut off (it cannot keep up)."""
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("disconnecting a WebSocket client whose outbox is full (%s)", self.request.path)
            self.abort()

    def send_json(self, body: Any) -> None:
        self.send(orjson.dumps(body).decode())

    def close_after_queued(self) -> None:
        """Close the socket once what is already queued has been sent."""
        try:
            self._queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure, as the client sees it)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def pump(self) -> None:
        """Write queued frames until told to close (or the socket is gone)."""
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                return
            assert isinstance(item, str)
            try:
                await self.ws.send_str(item)
            except ConnectionError:
                return

    async def serve(self, on_text: Callable[[str], None]) -> None:
        """Run the writer and read frames, handing text to ``on_text``, until the client goes away."""
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(self.pump())
            try:
                async for message in self.ws:
                    if message.type is WSMsgType.TEXT:
                        on_text(message.data)
                    elif message.type is WSMsgType.ERROR:
                        break
            finally:
                writer.cancel()


def _error(code: int, msg: str, request_id: object = None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


class _StreamPeer(Peer):
    __slots__ = ("combined", "streams")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, outbox_size: int, combined: bool) -> None:
        super().__init__(request, ws, outbox_size)
        self.combined = combined
        self.streams: list[str] = []


class StreamHub:
    """Every market-stream connection, their subscriptions, and the bookTicker publisher."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        ping_interval: float,
        outbox_size: int,
        faults: FaultPlan,
        monotonic_ns: Callable[[], int],
    ) -> None:
        self._exchange = exchange
        self._faults = faults
        self._monotonic_ns = monotonic_ns
        self._ping_interval = ping_interval
        self._outbox_size = outbox_size
        self._peers: set[_StreamPeer] = set()
        self._changed = asyncio.Event()

    # -- connections ---------------------------------------------------------------------------------------
    async def handle_raw(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        streams = [part for part in tail.split("/") if "@" in part]
        return await self._serve(request, streams, combined=False)

    async def handle_combined(self, request: web.Request) -> web.StreamResponse:
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        return await self._serve(request, streams, combined=True)

    async def _serve(self, request: web.Request, streams: list[str], *, combined: bool) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=self._ping_interval)
        await ws.prepare(request)
        peer = _StreamPeer(request, ws, self._outbox_size, combined)
        peer.streams.extend(s for s in streams if _STREAM_RE.match(s))
        self._peers.add(peer)
        self._notify()
        if self._faults.cut_connection(Channel.MARKET, self._monotonic_ns()):
            peer.abort()
        try:
            await peer.serve(lambda text: peer.send_json(self._control(peer, text)))
        finally:
            self._peers.discard(peer)
            self._notify()
        return ws

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- control messages ----------------------------------------------------------------------------------
    def _control(self, peer: _StreamPeer, text: str) -> dict[str, Any]:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _error(3, "Invalid JSON: expected value at line 1 column 1")
        if not isinstance(message, dict):
            return _error(2, "Invalid request: expected an object")
        request_id = message.get("id")
        if not (request_id is None or isinstance(request_id, str | int)) or isinstance(request_id, bool):
            return _error(2, "Invalid request: request ID must be an unsigned integer")
        if isinstance(request_id, str) and len(request_id) > 36:
            return _error(2, "Invalid request: request ID must be an unsigned integer")
        method = message.get("method")
        params = message.get("params", [])
        if method is None:
            return _error(2, "Invalid request: missing field `method` at line 1 column 1", request_id)
        if not isinstance(params, list):
            return _error(2, "Invalid request: too many parameters", request_id)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(s, str) and _STREAM_RE.match(s) for s in params):
                return _error(2, "Invalid request: invalid stream name", request_id)
            for stream in params:
                if method == "SUBSCRIBE" and stream not in peer.streams:
                    peer.streams.append(stream)
                elif method == "UNSUBSCRIBE" and stream in peer.streams:
                    peer.streams.remove(stream)
            self._notify()
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(peer.streams), "id": request_id}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(peer, method, params, request_id)
        return _error(2, f"Invalid request: unknown variant `{method}`, expected one of {_METHODS}", request_id)

    @staticmethod
    def _property(peer: _StreamPeer, method: str, params: list[Any], request_id: object) -> dict[str, Any]:
        if not params or not isinstance(params[0], str):
            return _error(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            return _error(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            return {"result": peer.combined, "id": request_id}
        if len(params) != 2 or not isinstance(params[1], bool):
            return _error(1, "Invalid value type: expected Boolean", request_id)
        peer.combined = params[1]
        return {"result": None, "id": request_id}

    # -- publishing ----------------------------------------------------------------------------------------
    def publish(self, symbols: list[str]) -> None:
        """Send the current bookTicker of each symbol to its subscribers (as the fault plan says)."""
        if not symbols or not self._peers:
            return
        for symbol in symbols:
            stream = f"{symbol.lower()}@bookTicker"
            peers = [peer for peer in self._peers if stream in peer.streams]
            if not peers:
                continue
            event = book_ticker_event(self._exchange, symbol)
            frames = self._faults.market_frames(symbol, event, self._monotonic_ns())
            if frames is None:
                self._send_event(peers, stream, event)
                continue
            for frame in frames:
                raw, wrapped = render_market_frame(frame, stream, False), render_market_frame(frame, stream, True)
                for peer in peers:
                    peer.send(wrapped if peer.combined else raw)

    def _send_event(self, peers: list[_StreamPeer], stream: str, event: dict[str, Any]) -> None:
        raw: str | None = None
        wrapped: str | None = None
        for peer in peers:
            if peer.combined:
                wrapped = wrapped or orjson.dumps({"stream": stream, "data": event}).decode()
                peer.send(wrapped)
            else:
                raw = raw or orjson.dumps(event).decode()
                peer.send(raw)

    def send_held(self, symbol: str, frame: MarketFrame) -> None:
        """Send a frame the fault plan held back (it was cleared before the next frame of ``symbol``)."""
        stream = f"{symbol.lower()}@bookTicker"
        for peer in list(self._peers):
            if stream in peer.streams:
                peer.send(render_market_frame(frame, stream, peer.combined))

    def subscribers(self, stream: str) -> int:
        return sum(stream in peer.streams for peer in self._peers)

    @property
    def connections(self) -> int:
        return len(self._peers)

    async def wait_subscribers(self, stream: str, count: int = 1) -> None:
        """Return once at least ``count`` connections are subscribed to ``stream``."""
        while self.subscribers(stream) < count:
            await self._changed.wait()

    async def wait_connections(self, count: int) -> None:
        """Return once exactly ``count`` stream connections are open."""
        while self.connections != count:
            await self._changed.wait()

    # -- test hooks ----------------------------------------------------------------------------------------
    def server_shutdown(self, now_ms: int) -> None:
        """Send ``serverShutdown`` to every connection, then close each."""
        event = {"e": "serverShutdown", "E": now_ms}
        for peer in list(self._peers):
            peer.send_json({"stream": "!serverShutdown", "data": event} if peer.combined else event)
            peer.close_after_queued()

    def drop(self) -> int:
        """Cut every connection with no close frame; how many there were."""
        peers = list(self._peers)
        for peer in peers:
            peer.abort()
        return len(peers)

    async def close(self) -> None:
        for peer in list(self._peers):
            with contextlib.suppress(ConnectionError):
                await peer.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
