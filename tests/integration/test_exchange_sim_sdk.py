"""Binance's official ``binance-sdk-spot`` against the simulator over real sockets: REST orders, a market
stream, and the WebSocket API user-data subscription delivering the executionReports of its own orders.
The SDK's REST client is blocking (requests), so its calls run in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import BadRequestError
from binance_sdk_spot.spot import Spot
from Crypto.PublicKey import ECC

from dma_bot.exchange_sim import ExchangeSim

# binance-common 4.7 passes aiohttp a float WebSocket timeout, which aiohttp 3.14 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:parameter 'timeout' of type 'float' is deprecated:DeprecationWarning")


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(["BTCUSDT", "ETHUSDT"], port=0) as running:
        yield running


def make_client(sim: ExchangeSim) -> Spot:
    return Spot(
        config_rest_api=ConfigurationRestAPI(api_key=sim.api_key, api_secret=sim.api_secret, base_path=sim.rest_url),
        config_ws_api=ConfigurationWebSocketAPI(
            api_key=sim.api_key, api_secret=sim.api_secret, stream_url=sim.ws_api_url
        ),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=sim.stream_url),
    )


async def next_event(queue: asyncio.Queue[Any], kind: type) -> Any:
    """The next user-data event of ``kind`` (the SDK wraps each in a one-of model)."""
    async with asyncio.timeout(5):
        while True:
            event = (await queue.get()).actual_instance
            if isinstance(event, kind):
                return event


async def test_sdk_rest_new_get_delete_order(sim: ExchangeSim) -> None:
    """new_order (Decimal params, everything in the query), get_order and delete_order round-trip."""
    rest = make_client(sim).rest_api

    placed = await asyncio.to_thread(
        rest.new_order,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        time_in_force="GTC",
        quantity=Decimal("0.01"),
        price=Decimal("49000"),
        new_client_order_id="sdk-1",
    )
    queried = await asyncio.to_thread(rest.get_order, symbol="BTCUSDT", order_id=placed.data().order_id)
    deleted = await asyncio.to_thread(rest.delete_order, symbol="BTCUSDT", orig_client_order_id="sdk-1")

    assert (placed.data().status, placed.data().client_order_id) == ("NEW", "sdk-1")
    assert (queried.data().status, queried.data().price) == ("NEW", "49000.00000000")
    assert deleted.data().status == "CANCELED" and sim.open_orders() == []


async def test_sdk_rest_rejection_raises_bad_request_with_binance_message(sim: ExchangeSim) -> None:
    """A filter failure reaches the SDK as BadRequestError carrying Binance's message."""
    rest = make_client(sim).rest_api

    with pytest.raises(BadRequestError, match="Filter failure: LOT_SIZE"):
        await asyncio.to_thread(
            rest.new_order,
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            time_in_force="GTC",
            quantity=Decimal("0.000001"),
            price=Decimal("51000"),
        )


async def test_sdk_market_stream_receives_book_ticker(sim: ExchangeSim) -> None:
    """The SDK's stream client (bare /stream + SUBSCRIBE with a UUID id) gets the simulated quote."""
    connection = await make_client(sim).websocket_streams.create_connection()
    received: asyncio.Queue[Any] = asyncio.Queue()
    try:
        handle = await connection.book_ticker(symbol="btcusdt")
        handle.on("message", received.put_nowait)
        async with asyncio.timeout(5):
            await sim.wait_stream_subscribers("btcusdt@bookTicker")
        sim.set_quote("BTCUSDT", "50100.00", "50100.50", "0.12000", "0.34000")

        async with asyncio.timeout(5):
            ticker = await received.get()
    finally:
        await connection.close_connection()

    assert (ticker.s, ticker.b, ticker.B, ticker.a, ticker.A) == (
        "BTCUSDT",
        "50100.00000000",
        "0.12000000",
        "50100.50000000",
        "0.34000000",
    )


async def test_sdk_user_data_subscription_receives_its_orders_reports(sim: ExchangeSim) -> None:
    """userDataStream.subscribe.signature (HMAC) delivers NEW, then TRADE when the market reaches the order."""
    client = make_client(sim)
    connection = await client.websocket_api.create_connection()
    events: asyncio.Queue[Any] = asyncio.Queue()
    try:
        subscription = await connection.user_data_stream_subscribe_signature()
        subscription.stream.on("message", events.put_nowait)
        placed = await asyncio.to_thread(
            client.rest_api.new_order,
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            time_in_force="GTC",
            quantity=Decimal("0.03"),
            price=Decimal("49990"),
            new_client_order_id="sdk-user-1",
        )
        new = await next_event(events, _execution_report())
        sim.set_quote("BTCUSDT", "49980.00", "49990.00", "1", "0.01")
        partial = await next_event(events, _execution_report())
        position = await next_event(events, _account_position())
    finally:
        await connection.close_connection()

    assert subscription.response.data().result.subscription_id == 0
    assert (new.x, new.X, new.c, new.i) == ("NEW", "NEW", "sdk-user-1", placed.data().order_id)
    assert (partial.x, partial.X, partial.l, partial.z, partial.m) == (
        "TRADE",
        "PARTIALLY_FILLED",
        "0.01000000",
        "0.01000000",
        True,
    )
    assert {b.a for b in position.B} == {"BTC", "USDT"}


async def test_sdk_ed25519_session_logon_then_subscribe(sim: ExchangeSim) -> None:
    """With an Ed25519 key, session.logon then userDataStream.subscribe work and deliver balance events."""
    key = ECC.generate(curve="Ed25519")
    async with ExchangeSim(
        ["BTCUSDT"],
        port=0,
        ed25519_api_key="ed25519-key",
        ed25519_public_key=key.public_key().export_key(format="PEM"),
    ) as ed_sim:
        config = ConfigurationWebSocketAPI(
            api_key="ed25519-key", private_key=key.export_key(format="PEM"), stream_url=ed_sim.ws_api_url
        )
        connection = await Spot(config_ws_api=config).websocket_api.create_connection()
        events: asyncio.Queue[Any] = asyncio.Queue()
        try:
            logon = await connection.session_logon()
            subscription = await connection.user_data_stream_subscribe()
            subscription.stream.on("message", events.put_nowait)
            ed_sim.set_balance("USDT", "123.45")
            position = await next_event(events, _account_position())
        finally:
            await connection.close_connection()

    assert logon.data().result.api_key == "ed25519-key"
    assert [(b.a, b.f) for b in position.B] == [("USDT", "123.45000000")]


def _execution_report() -> type:
    from binance_sdk_spot.websocket_api.models import ExecutionReport

    return ExecutionReport


def _account_position() -> type:
    from binance_sdk_spot.websocket_api.models import OutboundAccountPosition

    return OutboundAccountPosition
