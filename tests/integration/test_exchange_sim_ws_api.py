"""The simulator's WebSocket API over real sockets with a plain aiohttp client: id echo, rateLimits,
signed user-data subscriptions, their events and termination, and the errors Binance answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from dma_bot.exchange_sim import ExchangeSim
from dma_bot.exchange_sim.auth import ed25519_verify, hmac_hex, ws_payload


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(["BTCUSDT"], port=0) as running:
        yield running


@pytest.fixture
async def ws(sim: ExchangeSim) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_api_url) as socket:
        yield socket


async def request(
    ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any] | None = None, request_id: Any = "r1"
) -> Any:
    await ws.send_json({"id": request_id, "method": method, "params": params or {}})
    return await receive(ws)


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    async with asyncio.timeout(5):
        return await ws.receive_json()


def signed_params(sim: ExchangeSim, secret: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": sim.api_key, "timestamp": time.time_ns() // 1_000_000, "recvWindow": 10000}
    params["signature"] = hmac_hex(secret or sim.api_secret, ws_payload(params))
    return params


async def place_order(sim: ExchangeSim) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "51000",
        "timestamp": time.time_ns() // 1_000_000,
    }
    query = urlencode(params)
    query += f"&signature={hmac_hex(sim.api_secret, query)}"
    headers = {"X-MBX-APIKEY": sim.api_key}
    async with (
        aiohttp.ClientSession() as http,
        asyncio.timeout(5),
        http.post(f"{sim.api_url}/order?{query}", headers=headers) as response,
    ):
        assert response.status == 200


def test_ws_api_payload_matches_binance_documented_vector() -> None:
    """The sorted-parameter payload of the WebSocket API doc example signs to the documented signature."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "signature": "x",
    }

    signature = hmac_hex("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", ws_payload(params))

    assert signature == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_ws_api_ed25519_verification_matches_rfc8032_vector() -> None:
    """The pure-Python Ed25519 check accepts RFC 8032 test vector 1 and refuses a changed message."""
    public_key = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )

    assert ed25519_verify(public_key, b"", signature)
    assert not ed25519_verify(public_key, b"x", signature)


async def test_ws_api_ping_and_time_echo_ids_and_carry_rate_limits(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Responses echo the id with its JSON type and carry REQUEST_WEIGHT rateLimits."""
    ping = await request(ws, "ping", request_id=7)
    server_time = await request(ws, "time", request_id="uuid-like")

    assert (ping["id"], ping["status"], ping["result"]) == (7, 200, {})
    assert server_time["id"] == "uuid-like" and isinstance(server_time["result"]["serverTime"], int)
    assert ping["rateLimits"][0] | {"count": 0} == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
        "count": 0,
    }


async def test_ws_api_rate_limits_can_be_switched_off(ws: aiohttp.ClientWebSocketResponse) -> None:
    """returnRateLimits=false leaves rateLimits out of the response."""
    answer = await request(ws, "ping", {"returnRateLimits": False})

    assert answer["status"] == 200 and "rateLimits" not in answer


async def test_ws_api_signed_subscription_delivers_wrapped_events(
    sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse
) -> None:
    """userDataStream.subscribe.signature answers a subscriptionId; orders' events arrive wrapped with it."""
    answer = await request(ws, "userDataStream.subscribe.signature", signed_params(sim))
    await place_order(sim)

    report, position = await receive(ws), await receive(ws)

    assert answer["result"] == {"subscriptionId": 0} and "rateLimits" in answer
    assert report["subscriptionId"] == 0 and report["event"]["e"] == "executionReport"
    assert (report["event"]["x"], report["event"]["S"]) == ("NEW", "SELL")
    assert position["event"]["e"] == "outboundAccountPosition"
    assert position["event"]["B"] == [{"a": "BTC", "f": "9.99000000", "l": "0.01000000"}]


async def test_ws_api_unsubscribe_sends_event_stream_terminated_first(
    sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse
) -> None:
    """Unsubscribing sends eventStreamTerminated for the subscription, then the empty result."""
    await request(ws, "userDataStream.subscribe.signature", signed_params(sim))

    await ws.send_json({"id": "u", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}})
    terminated, answer = await receive(ws), await receive(ws)
    listing = await request(ws, "session.subscriptions")

    assert terminated["subscriptionId"] == 0 and terminated["event"]["e"] == "eventStreamTerminated"
    assert (answer["id"], answer["result"]) == ("u", {}) and listing["result"] == []


@pytest.mark.parametrize(
    ("method", "params_of", "status", "code"),
    [
        ("userDataStream.subscribe.signature", lambda sim: signed_params(sim, "wrong"), 400, -1022),
        ("userDataStream.subscribe.signature", lambda sim: signed_params(sim) | {"apiKey": "who"}, 401, -2015),
        ("userDataStream.subscribe", lambda sim: {}, 401, -1002),
        ("session.logon", signed_params, 400, -1022),
        ("userDataStream.unsubscribe", lambda sim: {}, 400, -2036),
        ("userDataStream.start", lambda sim: {"apiKey": sim.api_key}, 410, -1020),
    ],
)
async def test_ws_api_refusals_answer_binance_errors(
    sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse, method: str, params_of: Any, status: int, code: int
) -> None:
    """Bad signature, unknown key, subscribe without logon, HMAC logon, nothing to unsubscribe, listenKey methods."""
    answer = await request(ws, method, params_of(sim))

    assert (answer["id"], answer["status"], answer["error"]["code"]) == ("r1", status, code)


async def test_ws_api_second_subscription_on_a_connection_is_refused(
    sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse
) -> None:
    """One subscription per account per connection: the second answers -2035."""
    await request(ws, "userDataStream.subscribe.signature", signed_params(sim))

    again = await request(ws, "userDataStream.subscribe.signature", signed_params(sim))

    assert again["error"] == {"code": -2035, "msg": "User Data Stream subscription already active."}


async def test_ws_api_server_shutdown_hook(sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse) -> None:
    """server_shutdown() sends {"event": {"e": "serverShutdown"}} and then closes the WebSocket API connection."""
    await request(ws, "ping")
    sim.server_shutdown()

    event = await receive(ws)
    async with asyncio.timeout(5):
        closing = await ws.receive()

    assert event["event"]["e"] == "serverShutdown" and closing.type is aiohttp.WSMsgType.CLOSE
