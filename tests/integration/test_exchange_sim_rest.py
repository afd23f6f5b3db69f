"""The simulator's REST API over real sockets with a plain aiohttp client: signing, errors, limits, shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from dma_bot.clock import ManualClock
from dma_bot.exchange_sim import ExchangeSim, RateLimits, SymbolConfig, parse_symbols
from dma_bot.exchange_sim.auth import hmac_hex
from dma_bot.exchange_sim.wire import d8

Response = tuple[int, dict[str, str], Any]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(parse_symbols("BTCUSDT,ETHUSDT,LTCUSDT:BREAK"), port=0) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed(params: dict[str, Any], secret: str) -> str:
    payload = urlencode(params)
    return f"{payload}&signature={hmac_hex(secret, payload)}"


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    query: str = "",
    body: str | None = None,
    api_key: str | None = None,
) -> Response:
    headers = {"X-MBX-APIKEY": api_key} if api_key is not None else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with (
        asyncio.timeout(5),
        http.request(method, f"{url}?{query}" if query else url, data=body, headers=headers) as r,
    ):
        assert r.content_type == "application/json"
        return r.status, dict(r.headers), await r.json()


def order_params(**extra: Any) -> dict[str, Any]:
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    return params | {"quantity": "0.01000", "price": "49000.00"} | extra | {"timestamp": now_ms()}


async def test_rest_public_endpoints_answer_binance_shapes(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """ping, time and exchangeInfo answer Binance's shapes, with the used-weight header on every answer."""
    ping = await call(http, "GET", f"{sim.api_url}/ping")
    server_time = await call(http, "GET", f"{sim.api_url}/time")
    status, headers, info = await call(http, "GET", f"{sim.api_url}/exchangeInfo")

    assert ping[2] == {} and isinstance(server_time[2]["serverTime"], int)
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) >= 22
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert {"NOTIONAL", "PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS"} <= set(filters)
    assert {s["symbol"]: s["status"] for s in info["symbols"]}["LTCUSDT"] == "BREAK"
    assert {r["rateLimitType"] for r in info["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"}


async def test_rest_sdk_style_post_signed_in_the_query_is_accepted(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """Everything in the query string of a POST, timestamp last (the official SDK's style), verifies."""
    status, headers, body = await call(
        http, "POST", f"{sim.api_url}/order", query=signed(order_params(), sim.api_secret), api_key=sim.api_key
    )

    assert status == 200 and body["status"] == "NEW" and body["fills"] == []
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and headers["X-MBX-ORDER-COUNT-1D"] == "1"


async def test_rest_ccxt_style_post_signed_in_the_form_body_is_accepted(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """Timestamp first and recvWindow last in a form body (ccxt's style) verifies over the raw body."""
    params = {"timestamp": now_ms()} | order_params() | {"recvWindow": 10000}
    del params["timestamp"]
    params = {"timestamp": now_ms(), **params}

    status, _, body = await call(
        http, "POST", f"{sim.api_url}/order", body=signed(params, sim.api_secret), api_key=sim.api_key
    )

    assert status == 200 and body["orderId"] >= 1


async def test_rest_binance_documented_signature_vector_is_accepted(http: aiohttp.ClientSession) -> None:
    """Binance's own example request (key, payload and signature from rest-api.md) is accepted verbatim."""
    ltcbtc = SymbolConfig(
        symbol="LTCBTC",
        base_asset="LTC",
        quote_asset="BTC",
        tick_size=Decimal("0.000001"),
        step_size=Decimal("0.01"),
        start_price=Decimal("0.1"),
        touch_qty=Decimal("10"),
        min_notional=Decimal("0"),
    )
    clock = ManualClock(1_499_827_319_559 * 1_000_000 + 100_000_000)
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    signature = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

    async with ExchangeSim([ltcbtc], port=0, clock=clock) as sim:
        status, _, body = await call(
            http, "POST", f"{sim.api_url}/order", query=f"{payload}&signature={signature}", api_key=sim.api_key
        )

    assert status == 200 and body["symbol"] == "LTCBTC"


async def test_rest_signature_is_compared_case_insensitively(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """An upper-case hex signature is as good as a lower-case one."""
    payload = urlencode(order_params())

    status, _, _ = await call(
        http,
        "POST",
        f"{sim.api_url}/order",
        query=f"{payload}&signature={hmac_hex(sim.api_secret, payload).upper()}",
        api_key=sim.api_key,
    )

    assert status == 200


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("signature", (400, -1022, "Signature for this request is not valid.")),
        ("key", (401, -2015, "Invalid API-key, IP, or permissions for action.")),
        ("no_key", (401, -2014, "API-key format invalid.")),
        ("old", (400, -1021, "Timestamp for this request is outside of the recvWindow.")),
        ("ahead", (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")),
        ("no_signature", (400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")),
        ("no_timestamp", (400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")),
    ],
)
async def test_rest_authentication_failures_answer_binance_errors(
    sim: ExchangeSim, http: aiohttp.ClientSession, tamper: str, expected: tuple[int, int, str]
) -> None:
    """Each authentication failure gets Binance's HTTP status, code and message as JSON."""
    params = order_params()
    if tamper == "old":
        params["timestamp"] -= 6000
    elif tamper == "ahead":
        params["timestamp"] += 2000
    elif tamper == "no_timestamp":
        del params["timestamp"]
    query = signed(params, sim.api_secret if tamper != "signature" else "wrong-secret")
    if tamper == "no_signature":
        query = urlencode(params)
    api_key = {"key": "unknown-key", "no_key": None}.get(tamper, sim.api_key)

    status, _, body = await call(http, "POST", f"{sim.api_url}/order", query=query, api_key=api_key)

    assert (status, body["code"], body["msg"]) == expected
    assert sim.open_orders() == []


async def test_rest_order_lookup_and_cancel_errors(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """Unknown orders: GET -2013, DELETE -2011; an unknown symbol -1121; a filter failure -1013."""
    ts = now_ms()
    missing = await call(
        http,
        "GET",
        f"{sim.api_url}/order",
        query=signed({"symbol": "BTCUSDT", "orderId": 99, "timestamp": ts}, sim.api_secret),
        api_key=sim.api_key,
    )
    not_open = await call(
        http,
        "DELETE",
        f"{sim.api_url}/order",
        query=signed({"symbol": "BTCUSDT", "origClientOrderId": "x", "timestamp": ts}, sim.api_secret),
        api_key=sim.api_key,
    )
    bad_symbol = await call(
        http,
        "POST",
        f"{sim.api_url}/order",
        query=signed(order_params(symbol="XXXYYY"), sim.api_secret),
        api_key=sim.api_key,
    )
    off_tick = await call(
        http,
        "POST",
        f"{sim.api_url}/order",
        query=signed(order_params(price="49000.001"), sim.api_secret),
        api_key=sim.api_key,
    )

    assert missing[2] == {"code": -2013, "msg": "Order does not exist."}
    assert not_open[2] == {"code": -2011, "msg": "Unknown order sent."}
    assert bad_symbol[2] == {"code": -1121, "msg": "Invalid symbol."}
    assert off_tick[2] == {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}


async def test_rest_order_query_and_cancel_by_client_id(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """An order is found by origClientOrderId, cancelled, and then reported CANCELED by GET."""
    place = signed(order_params(newClientOrderId="mine-7"), sim.api_secret)
    await call(http, "POST", f"{sim.api_url}/order", query=place, api_key=sim.api_key)
    lookup = {"symbol": "BTCUSDT", "origClientOrderId": "mine-7"}

    _, _, canceled = await call(
        http,
        "DELETE",
        f"{sim.api_url}/order",
        query=signed(lookup | {"newClientOrderId": "kill-7", "timestamp": now_ms()}, sim.api_secret),
        api_key=sim.api_key,
    )
    _, _, queried = await call(
        http,
        "GET",
        f"{sim.api_url}/order",
        query=signed(lookup | {"timestamp": now_ms()}, sim.api_secret),
        api_key=sim.api_key,
    )

    assert (canceled["status"], canceled["clientOrderId"], canceled["origClientOrderId"]) == (
        "CANCELED",
        "kill-7",
        "mine-7",
    )
    assert (queried["status"], queried["isWorking"], queried["clientOrderId"]) == ("CANCELED", True, "mine-7")


@pytest.mark.parametrize(
    ("response_type", "keys"),
    [
        ("ACK", {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}),
        ("RESULT", {"status", "executedQty", "cummulativeQuoteQty", "workingTime", "selfTradePreventionMode"}),
        ("FULL", {"status", "fills"}),
    ],
)
async def test_rest_new_order_response_types(
    sim: ExchangeSim, http: aiohttp.ClientSession, response_type: str, keys: set[str]
) -> None:
    """newOrderRespType ACK, RESULT and FULL answer the documented keys (FULL lists the fills)."""
    params = order_params(price="50001.00", newOrderRespType=response_type)

    _, _, body = await call(
        http, "POST", f"{sim.api_url}/order", query=signed(params, sim.api_secret), api_key=sim.api_key
    )

    assert keys <= set(body)
    assert ("fills" in body) is (response_type == "FULL") and ("status" in body) is (response_type != "ACK")
    if response_type == "FULL":
        assert body["fills"][0] == {
            "price": "50000.01000000",
            "qty": "0.01000000",
            "commission": "0.00001000",
            "commissionAsset": "BTC",
            "tradeId": 1,
        }


async def test_rest_successful_orders_cost_no_weight_but_failures_do(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """Since 2026-04-02 a placed order costs 0 weight; a rejected one is still charged."""
    url = f"{sim.api_url}/order"
    _, ok, _ = await call(http, "POST", url, query=signed(order_params(), sim.api_secret), api_key=sim.api_key)
    _, failed, _ = await call(
        http, "POST", url, query=signed(order_params(quantity="0.000001"), sim.api_secret), api_key=sim.api_key
    )

    assert int(failed["X-MBX-USED-WEIGHT-1M"]) == int(ok["X-MBX-USED-WEIGHT-1M"]) + 1


async def test_rest_order_count_limit_answers_429_with_retry_after(http: aiohttp.ClientSession) -> None:
    """Past the ORDERS limit: HTTP 429, -1015 and a Retry-After header."""
    async with ExchangeSim(["BTCUSDT"], port=0, rate_limits=RateLimits(orders_per_10s=2)) as sim:
        for _ in range(2):
            await call(
                http, "POST", f"{sim.api_url}/order", query=signed(order_params(), sim.api_secret), api_key=sim.api_key
            )
        status, headers, body = await call(
            http, "POST", f"{sim.api_url}/order", query=signed(order_params(), sim.api_secret), api_key=sim.api_key
        )

    assert status == 429 and body["code"] == -1015 and int(headers["Retry-After"]) >= 1


async def test_rest_symbol_not_trading_refuses_orders(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """An order on a symbol listed as BREAK: -2010 "Market is closed."."""
    params = order_params(symbol="LTCUSDT", price="1.0000", quantity="10.00")

    status, _, body = await call(
        http, "POST", f"{sim.api_url}/order", query=signed(params, sim.api_secret), api_key=sim.api_key
    )

    assert (status, body) == (400, {"code": -2010, "msg": "Market is closed."})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_rest_listen_key_endpoints_are_switched_off(
    sim: ExchangeSim, http: aiohttp.ClientSession, method: str
) -> None:
    """/api/v3/userDataStream is gone for Spot since 2026-02-20: a JSON error, never a listenKey."""
    status, _, body = await call(http, method, f"{sim.api_url}/userDataStream", api_key=sim.api_key)

    assert status == 410 and body == {"code": -1020, "msg": "This operation is not supported."}


async def test_rest_account_open_orders_and_depth(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """account shows the locked quote, openOrders the resting order, depth the touch and that order."""
    await call(http, "POST", f"{sim.api_url}/order", query=signed(order_params(), sim.api_secret), api_key=sim.api_key)

    _, _, account = await call(
        http,
        "GET",
        f"{sim.api_url}/account",
        query=signed({"timestamp": now_ms()}, sim.api_secret),
        api_key=sim.api_key,
    )
    _, _, open_orders = await call(
        http,
        "GET",
        f"{sim.api_url}/openOrders",
        query=signed({"symbol": "BTCUSDT", "timestamp": now_ms()}, sim.api_secret),
        api_key=sim.api_key,
    )
    _, _, depth = await call(http, "GET", f"{sim.api_url}/depth", query="symbol=BTCUSDT&limit=5")

    usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
    assert (usdt["free"], usdt["locked"]) == ("99510.00000000", "490.00000000")
    assert [o["price"] for o in open_orders] == ["49000.00000000"]
    assert depth["bids"] == [["50000.00000000", "0.05000000"], ["49000.00000000", "0.01000000"]]


async def test_rest_unknown_path_answers_json(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """A path the exchange does not serve still answers JSON."""
    status, _, body = await call(http, "GET", f"{sim.api_url}/nothingHere")

    assert status == 404 and body["code"] == -1020


async def test_rest_my_trades_lists_the_fills_of_an_order_in_binance_shape(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """myTrades: signed only; orderId filters; each entry has Binance's keys and types, id = the fill's tradeId."""
    url = f"{sim.api_url}/order"
    buy = order_params(price="50001.00", newOrderRespType="FULL")
    _, _, first = await call(http, "POST", url, query=signed(buy, sim.api_secret), api_key=sim.api_key)
    sell = order_params(side="SELL", price="49000.00", quantity="0.00500", newOrderRespType="FULL")
    _, _, second = await call(http, "POST", url, query=signed(sell, sim.api_secret), api_key=sim.api_key)
    trades_url = f"{sim.api_url}/myTrades"

    unsigned = await call(http, "GET", trades_url, query=urlencode({"symbol": "BTCUSDT", "timestamp": now_ms()}),
                          api_key=sim.api_key)
    everything = await call(http, "GET", trades_url, api_key=sim.api_key,
                            query=signed({"symbol": "BTCUSDT", "timestamp": now_ms()}, sim.api_secret))
    of_second = await call(http, "GET", trades_url, api_key=sim.api_key, query=signed(
        {"symbol": "BTCUSDT", "orderId": second["orderId"], "timestamp": now_ms()}, sim.api_secret))
    too_many = await call(http, "GET", trades_url, api_key=sim.api_key,
                          query=signed({"symbol": "BTCUSDT", "limit": 1001, "timestamp": now_ms()}, sim.api_secret))

    assert unsigned[0] == 400 and unsigned[2]["code"] == -1102
    assert [t["id"] for t in everything[2]] == [first["fills"][0]["tradeId"], second["fills"][0]["tradeId"]]
    assert int(of_second[1]["X-MBX-USED-WEIGHT-1M"]) - int(everything[1]["X-MBX-USED-WEIGHT-1M"]) == 5
    assert of_second[2] == [
        {
            "symbol": "BTCUSDT",
            "id": second["fills"][0]["tradeId"],
            "orderId": second["orderId"],
            "orderListId": -1,
            "price": second["fills"][0]["price"],
            "qty": "0.00500000",
            "quoteQty": d8(Decimal(second["fills"][0]["price"]) * Decimal("0.005")),
            "commission": second["fills"][0]["commission"],
            "commissionAsset": "USDT",
            "time": of_second[2][0]["time"],
            "isBuyer": False,
            "isMaker": False,
            "isBestMatch": True,
        }
    ]
    assert isinstance(of_second[2][0]["time"], int) and everything[2][0]["isBuyer"] is True
    assert too_many[2]["code"] == -1100
