"""The simulator's market-stream WebSockets over real sockets with a plain aiohttp client: raw and combined
connections, live control messages, the exact bookTicker shape, server pings, and the failure hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from dma_bot.exchange_sim import ExchangeSim


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(["BTCUSDT", "ETHUSDT"], port=0, ping_interval=0.2) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    async with asyncio.timeout(5):
        return await ws.receive_json()


async def test_ws_raw_stream_gets_bare_spot_book_ticker(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """/ws/<stream> delivers the bare Spot bookTicker: exactly u, s, b, B, a, A (no e, E or T), typed as Binance."""
    async with http.ws_connect(f"{sim.ws_url}/btcusdt@bookTicker") as ws:
        async with asyncio.timeout(5):
            await sim.wait_stream_subscribers("btcusdt@bookTicker")
        sim.set_quote("BTCUSDT", "50001.00", "50001.50", "0.25", "0.5")

        event = await receive(ws)

    assert event == {
        "u": event["u"],
        "s": "BTCUSDT",
        "b": "50001.00000000",
        "B": "0.25000000",
        "a": "50001.50000000",
        "A": "0.50000000",
    }
    assert isinstance(event["u"], int)


async def test_ws_numbered_path_subscribes_lists_and_unsubscribes_with_int_ids(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """ccxt.pro's /ws/0: SUBSCRIBE, LIST_SUBSCRIPTIONS and UNSUBSCRIBE answer with the request's integer id."""
    async with http.ws_connect(f"{sim.ws_url}/0") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker", "ethusdt@trade"], "id": 1})
        subscribed = await receive(ws)
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["ethusdt@trade"], "id": 2})
        unsubscribed = await receive(ws)
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        listed = await receive(ws)
        sim.set_quote("ETHUSDT", "3000.00", "3000.01")
        event = await receive(ws)

    assert subscribed == {"result": None, "id": 1} and unsubscribed == {"result": None, "id": 2}
    assert listed == {"result": ["ethusdt@bookTicker"], "id": 3}
    assert event["s"] == "ETHUSDT" and "stream" not in event


async def test_ws_combined_stream_wraps_events(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """/stream?streams=a/b wraps each event as {"stream", "data"}."""
    async with http.ws_connect(f"{sim.stream_url}?streams=btcusdt@bookTicker/ethusdt@bookTicker") as ws:
        async with asyncio.timeout(5):
            await sim.wait_stream_subscribers("ethusdt@bookTicker")
        sim.set_quote("ETHUSDT", "3000.00", "3000.02")

        frame = await receive(ws)

    assert frame["stream"] == "ethusdt@bookTicker" and frame["data"]["a"] == "3000.02000000"


async def test_ws_bare_stream_accepts_uuid_ids(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """Bare /stream plus SUBSCRIBE with a UUID string id (the official SDK's way) echoes the string id."""
    request_id = "0f8e3b5a-4a1c-4d36-9b69-2f0c3c1a7e11"
    async with http.ws_connect(sim.stream_url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": request_id})
        answer = await receive(ws)
        await sim.step()
        frame = await receive(ws)

    assert answer == {"result": None, "id": request_id}
    assert frame["stream"] == "btcusdt@bookTicker"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", 3),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": true}', 2),
        ('{"method": "FLY", "id": 4}', 2),
        ('{"method": "GET_PROPERTY", "params": ["colour"], "id": 5}', 0),
    ],
)
async def test_ws_malformed_control_messages_answer_error_codes(
    sim: ExchangeSim, http: aiohttp.ClientSession, message: str, code: int
) -> None:
    """Bad JSON, a bad id, an unknown method and an unknown property answer Binance's stream error codes."""
    async with http.ws_connect(sim.stream_url) as ws:
        await ws.send_str(message)
        answer = await receive(ws)

    assert answer["error"]["code"] == code


async def test_ws_server_sends_ping_frames(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """The server pings each stream connection on its ping interval."""
    async with http.ws_connect(f"{sim.ws_url}/btcusdt@bookTicker", autoping=False) as ws:
        async with asyncio.timeout(5):
            message = await ws.receive()
        await ws.pong(message.data)

    assert message.type is aiohttp.WSMsgType.PING


async def test_ws_server_shutdown_hook_announces_then_closes(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """server_shutdown() sends serverShutdown (raw and combined shapes) and then closes the connection."""
    async with (
        http.ws_connect(f"{sim.ws_url}/btcusdt@bookTicker") as raw,
        http.ws_connect(f"{sim.stream_url}?streams=btcusdt@bookTicker") as combined,
    ):
        async with asyncio.timeout(5):
            await sim.wait_stream_subscribers("btcusdt@bookTicker", 2)
        sim.server_shutdown()

        raw_event, combined_event = await receive(raw), await receive(combined)
        async with asyncio.timeout(5):
            closing = await raw.receive()

    assert raw_event["e"] == "serverShutdown" and isinstance(raw_event["E"], int)
    assert combined_event["stream"] == "!serverShutdown" and combined_event["data"]["e"] == "serverShutdown"
    assert closing.type is aiohttp.WSMsgType.CLOSE


async def test_ws_drop_hook_cuts_connections(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """drop_connections() ends the client's connection without a serverShutdown event."""
    async with http.ws_connect(f"{sim.ws_url}/btcusdt@bookTicker") as ws:
        async with asyncio.timeout(5):
            await sim.wait_stream_subscribers("btcusdt@bookTicker")
        sim.drop_connections()

        async with asyncio.timeout(5):
            message = await ws.receive()

    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)
