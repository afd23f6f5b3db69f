"""ExchangeSim: the simulated Binance Spot exchange as one aiohttp app on one port.

It wires the pure engine to the sockets: REST under ``/api/v3``, market streams under ``/ws`` and
``/stream``, the WebSocket API under ``/ws-api/v3``. After every engine call it hands the engine's
outbox to the sockets (user-data events to the WebSocket API subscriptions, changed quotes to the
bookTicker subscribers). With ``quote_interval`` set, a market task moves every quote by the seeded
random walk at that period; without it (the default) the market moves only when told to, through
:meth:`ExchangeSim.set_quote` and :meth:`ExchangeSim.step`, so tests stay deterministic. It also offers
the helpers tests need: balances and orders, waits for subscriptions, and hooks that drop every
connection, announce ``serverShutdown`` or end the user-data subscriptions with ``eventStreamTerminated``.
Faults are injected through ``sim.faults`` (:class:`~dma_bot.exchange_sim.admin.Faults`), through the
``/_sim`` admin routes on the same port, or by a ``fault_script`` played from start. Usage::

    async with ExchangeSim(symbols=["BTCUSDT"], port=0) as sim:
        client = ccxt.binance(...)  # urls -> sim.api_url; keys sim.api_key / sim.api_secret
        sim.faults.add({"kind": "request.rate_limited", "retry_after_s": 3, "path": "/api/v3/order"})
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Final, Self

from aiohttp import web

from dma_bot.clock import Clock, LiveClock
from dma_bot.exchange_sim.accounts import FeeAsset
from dma_bot.exchange_sim.admin import Faults, admin_routes
from dma_bot.exchange_sim.auth import Credentials, ed25519_public_key_from_pem
from dma_bot.exchange_sim.book import SimOrder
from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.faults import FaultPlan, Held, ScheduledFault
from dma_bot.exchange_sim.limits import RateLimiter, RateLimits
from dma_bot.exchange_sim.market import SymbolConfig, symbol_config
from dma_bot.exchange_sim.rest import RestContext, build_routes, json_response
from dma_bot.exchange_sim.ws import StreamHub
from dma_bot.exchange_sim.ws_api import WsApiHub

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "ExchangeSim"]

# The key pair of Binance's own signing example (rest-api.md): any client's test vectors work here too.
DEFAULT_API_KEY: Final = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEFAULT_API_SECRET: Final = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@web.middleware
async def _json_not_found(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
        return json_response({"code": -1020, "msg": "This operation is not supported."}, status=error.status)


class ExchangeSim:
    """A local Binance-Spot-compatible exchange; ``async with`` starts and stops it."""

    def __init__(
        self,
        symbols: Sequence[str | SymbolConfig] = ("BTCUSDT", "ETHUSDT"),
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        ed25519_api_key: str | None = None,
        ed25519_public_key: str | bytes | None = None,
        seed: int = 0,
        balances: Mapping[str, Decimal] | None = None,
        maker_rate: Decimal = Decimal("0.001"),
        taker_rate: Decimal = Decimal("0.001"),
        fee_asset: FeeAsset = FeeAsset.RECEIVED,
        quote_interval: float | None = None,
        ping_interval: float = 20.0,
        rate_limits: RateLimits | None = None,
        outbox_size: int = 10_000,
        clock: Clock | None = None,
        fault_script: Sequence[ScheduledFault] = (),
    ) -> None:
        configs = [s if isinstance(s, SymbolConfig) else symbol_config(s) for s in symbols]
        public_key: bytes | None = None
        if ed25519_public_key is not None:
            is_raw = isinstance(ed25519_public_key, bytes) and len(ed25519_public_key) == 32
            public_key = ed25519_public_key if is_raw else ed25519_public_key_from_pem(ed25519_public_key)
        if quote_interval is not None and quote_interval <= 0:
            raise ValueError(f"quote_interval: seconds > 0 or None, was {quote_interval}")
        self._clock = clock or LiveClock()
        self._host = host
        self._port = port
        self._quote_interval = quote_interval
        self.credentials = Credentials(api_key, api_secret, ed25519_api_key, public_key)
        self.exchange = Exchange(
            configs,
            balances=balances,
            maker_rate=maker_rate,
            taker_rate=taker_rate,
            fee_asset=fee_asset,
            seed=seed,
            start_ms=self.now_ms(),
        )
        self.limiter = RateLimiter(rate_limits or RateLimits())
        self._plan = FaultPlan()
        monotonic_ns = self._clock.monotonic_ns
        self.faults = Faults(self._plan, self, monotonic_ns, self.exchange.configs)
        self._fault_script = sorted(fault_script, key=lambda entry: entry.at_ns)
        self.streams = StreamHub(
            self.exchange,
            ping_interval=ping_interval,
            outbox_size=outbox_size,
            faults=self._plan,
            monotonic_ns=monotonic_ns,
        )
        self.ws_api = WsApiHub(
            self.credentials,
            self.limiter,
            self.now_ms,
            ping_interval=ping_interval,
            outbox_size=outbox_size,
            faults=self._plan,
            monotonic_ns=monotonic_ns,
        )
        self._runner: web.AppRunner | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[None]] = []

    def now_ms(self) -> int:
        return self._clock.time_ns() // 1_000_000

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_json_not_found])
        context = RestContext(
            self.exchange,
            self.credentials,
            self.limiter,
            self.now_ms,
            self.publish,
            self._plan,
            self._clock.monotonic_ns,
        )
        app.add_routes(build_routes(context))
        app.add_routes(admin_routes(self.faults, self))
        app.router.add_get("/ws", self.streams.handle_raw)
        app.router.add_get("/ws/{tail:.*}", self.streams.handle_raw)
        app.router.add_get("/stream", self.streams.handle_combined)
        app.router.add_get("/ws-api/v3", self.ws_api.handle)
        return app

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self._app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self._port = self._runner.addresses[0][1]
        if self._quote_interval is not None or self._fault_script:
            self._tasks = asyncio.TaskGroup()
            await self._tasks.__aenter__()
            if self._quote_interval is not None:
                self._background.append(self._tasks.create_task(self._run_market(self._quote_interval)))
            if self._fault_script:
                start = asyncio.get_running_loop().time()
                due = [entry for entry in self._fault_script if entry.at_ns == 0]
                for entry in due:  # in force before anyone can connect
                    self.faults.apply(entry)
                later = self._fault_script[len(due) :]
                self._background.append(self._tasks.create_task(self.faults.play(later, start)))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if self._tasks is not None:
                for task in self._background:
                    task.cancel()
                await self._tasks.__aexit__(kind, error, trace)
        finally:
            await self.streams.close()
            await self.ws_api.close()
            if self._runner is not None:
                await self._runner.cleanup()

    async def _run_market(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # the market's own pace, not a synchronisation
            self.exchange.step(self.now_ms())
            self.publish()

    def publish(self) -> None:
        """Hand the engine's outbox to the sockets, through the fault plan: user-data events, then quotes."""
        events = self.exchange.take_events()
        if events and (self.ws_api.subscriptions or self._plan.holds_user_events):
            events = self._plan.user_events(events, self._clock.monotonic_ns())
        self.ws_api.dispatch(events)
        self.streams.publish(self.exchange.take_quote_updates())

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_url(self) -> str:
        """Base URL without ``/api`` (the official SDK's ``base_path``)."""
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """``rest_url`` + ``/api/v3`` (ccxt's ``urls['api']['public'|'private']``)."""
        return f"{self.rest_url}/api/v3"

    @property
    def ws_url(self) -> str:
        """Raw market streams base: ``ws_url + '/btcusdt@bookTicker'``, or ccxt.pro's ``ws_url + '/0'``."""
        return f"ws://{self._host}:{self._port}/ws"

    @property
    def stream_url(self) -> str:
        """Combined streams: ``stream_url + '?streams=a/b'``, or bare plus SUBSCRIBE (the SDK's ``stream_url``)."""
        return f"ws://{self._host}:{self._port}/stream"

    @property
    def ws_api_url(self) -> str:
        return f"ws://{self._host}:{self._port}/ws-api/v3"

    @property
    def fault_script(self) -> list[ScheduledFault]:
        """The fault script played from start, in time order."""
        return list(self._fault_script)

    @property
    def api_key(self) -> str:
        return self.credentials.api_key

    @property
    def api_secret(self) -> str:
        return self.credentials.api_secret

    # -- driving the market --------------------------------------------------------------------------------
    def set_quote(
        self,
        symbol: str,
        bid: Decimal | str,
        ask: Decimal | str,
        bid_qty: Decimal | str | None = None,
        ask_qty: Decimal | str | None = None,
    ) -> None:
        """Install a top of book (sizes default to the symbol's touch size) and fill what it reaches."""
        config = self.exchange.config(symbol)
        instrument = config.instrument

        def steps(qty: Decimal | str | None) -> int:
            return instrument.qty_to_steps(Decimal(qty) if qty is not None else config.touch_qty)

        bid_ticks = instrument.price_to_ticks(Decimal(bid))
        ask_ticks = instrument.price_to_ticks(Decimal(ask))
        self.exchange.set_quote(symbol, bid_ticks, ask_ticks, steps(bid_qty), steps(ask_qty), self.now_ms())
        self.publish()

    async def step(self, count: int = 1) -> None:
        """Move every trading symbol's quote ``count`` times by the seeded random walk."""
        for _ in range(count):
            self.exchange.step(self.now_ms())
            self.publish()
            await asyncio.sleep(0)

    def set_symbol_status(self, symbol: str, status: str) -> None:
        self.exchange.set_status(symbol, status)

    def set_balance(self, asset: str, free: Decimal | str) -> None:
        self.exchange.balances.set_free(asset, Decimal(free))
        self.exchange.account_event(self.now_ms())
        self.publish()

    # -- inspecting ----------------------------------------------------------------------------------------
    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of ``asset``."""
        balances = self.exchange.balances
        return balances.free(asset), balances.locked(asset)

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return self.exchange.open_orders(symbol)

    def order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None) -> SimOrder | None:
        return self.exchange.find(symbol, order_id, client_order_id)

    async def wait_stream_subscribers(self, stream: str, count: int = 1) -> None:
        """Return once ``count`` market-stream connections subscribe to ``stream`` (bound it with a timeout)."""
        await self.streams.wait_subscribers(stream, count)

    async def wait_user_subscriptions(self, count: int = 1) -> None:
        """Return once ``count`` user-data subscriptions are active (bound it with a timeout)."""
        await self.ws_api.wait_subscriptions(count)

    # -- failure hooks -------------------------------------------------------------------------------------
    def server_shutdown(self) -> None:
        """Send ``serverShutdown`` on every stream and WebSocket API connection, then close them."""
        now_ms = self.now_ms()
        self.streams.server_shutdown(now_ms)
        self.ws_api.server_shutdown(now_ms)

    def terminate_user_streams(self) -> None:
        """End every user-data subscription with ``eventStreamTerminated`` (test hook; the fault user.expire)."""
        self.expire_user_streams()

    def expire_user_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every active user-data subscription and end it; how many.

        The event is all a client sees when Binance ends its subscription; the connection stays open, and a
        client that subscribes again (on it or on a new one) is served as usual."""
        return self.ws_api.expire_subscriptions()

    def drop_connections(self) -> None:
        """Cut every WebSocket's TCP connection with no close frame, as a network failure would."""
        self.streams.drop()
        self.ws_api.drop()

    def drop_market_connections(self) -> int:
        """Cut every market-stream connection with no close frame; how many there were."""
        return self.streams.drop()

    def drop_user_connections(self) -> int:
        """Cut every WebSocket API connection with no close frame; how many there were."""
        return self.ws_api.drop()

    def wipe_open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Forget every open order (of ``symbol``) with no event: the venue restarted without them.

        Afterwards GET /api/v3/order answers -2013 "Order does not exist." and DELETE -2011 "Unknown order
        sent."; the reserved balances are free again. ``sim.faults.add({"kind": "orders.wipe"})`` does
        the same and records it as a rule."""
        return self.exchange.wipe_open_orders(symbol)

    def send_held(self, held: Held) -> None:
        """Send the frames and events the fault plan still held when its rules were removed."""
        for symbol, frame in held.market:
            self.streams.send_held(symbol, frame)
        self.ws_api.dispatch(held.user)

    def connection_counts(self) -> dict[str, int]:
        """Open market-stream and WebSocket API connections, and active user-data subscriptions."""
        return {
            "market": self.streams.connections,
            "user": self.ws_api.connections,
            "user_subscriptions": self.ws_api.subscriptions,
        }
