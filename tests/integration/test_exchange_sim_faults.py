"""Fault injection in the simulator, observed on the wire with plain aiohttp clients over 127.0.0.1: the
admin endpoint, every fault kind on REST, the WebSocket API and market streams, the wipe, and the CLI's
--faults script."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from dma_bot.clock import ManualClock
from dma_bot.exchange_sim import ExchangeSim
from dma_bot.exchange_sim.auth import hmac_hex, ws_payload

STREAM = "btcusdt@bookTicker"
CUT = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(["BTCUSDT", "ETHUSDT"], port=0) as running:
        running.set_quote("BTCUSDT", "49999.00", "50001.00")
        yield running


@pytest.fixture
async def manual_sim() -> AsyncIterator[tuple[ExchangeSim, ManualClock]]:
    clock = ManualClock(time.time_ns())
    async with ExchangeSim(["BTCUSDT"], port=0, clock=clock) as running:
        running.set_quote("BTCUSDT", "49999.00", "50001.00")
        yield running, clock


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ------------------------------------------------------------------------------------------------
async def admin(http: aiohttp.ClientSession, sim: ExchangeSim, method: str, path: str, body: Any = None) -> Any:
    """Call a /_sim route; JSON answers come back parsed, error lines as (status, text)."""
    data = None if body is None else (body if isinstance(body, str) else orjson.dumps(body))
    async with asyncio.timeout(5), http.request(method, f"{sim.rest_url}/_sim/{path}", data=data) as response:
        if response.content_type == "application/json":
            assert response.status == 200
            return await response.json()
        return response.status, response.content_type, await response.text()


async def rest(
    http: aiohttp.ClientSession, sim: ExchangeSim, method: str, path: str, params: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    """A REST call, signed when ``params`` is given (timestamp from the simulator's clock)."""
    url = f"{sim.api_url}/{path}"
    headers = {}
    if params is not None:
        query = urlencode(params | {"timestamp": sim.now_ms()})
        url += f"?{query}&signature={hmac_hex(sim.api_secret, query)}"
        headers["X-MBX-APIKEY"] = sim.api_key
    async with asyncio.timeout(5), http.request(method, url, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, dict(response.headers), body


def buy(price: str = "49990.00", client_id: str = "b1", quantity: str = "0.01") -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": quantity,
        "price": price,
        "newClientOrderId": client_id,
    }


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> Any:
    async with asyncio.timeout(timeout):
        return await ws.receive_json()


async def assert_nothing_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            message = await ws.receive()
            pytest.fail(f"expected silence, got {message.type} {message.data!r}")


async def registered(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    """LIST_SUBSCRIPTIONS round trip: once answered, the server holds this connection and its streams."""
    await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 99})
    answer = await receive(ws)
    assert answer["id"] == 99
    return answer["result"]


async def is_cut(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """True once the connection ends (frames already on their way are skipped)."""
    async with asyncio.timeout(5):
        message = await ws.receive()
        while message.type is aiohttp.WSMsgType.TEXT:
            message = await ws.receive()
    return message.type in CUT


async def subscribe_user(sim: ExchangeSim, ws: aiohttp.ClientWebSocketResponse) -> None:
    params: dict[str, Any] = {"apiKey": sim.api_key, "timestamp": sim.now_ms(), "recvWindow": 10000}
    params["signature"] = hmac_hex(sim.api_secret, ws_payload(params))
    await ws.send_json({"id": "sub", "method": "userDataStream.subscribe.signature", "params": params})
    answer = await receive(ws)
    assert answer["status"] == 200, answer


async def reports(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` executionReports (account updates skipped)."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        event = (await receive(ws))["event"]
        if event["e"] == "executionReport":
            found.append(event)
    return found


# -- the admin endpoint -------------------------------------------------------------------------------------
async def test_admin_faults_round_trip_add_list_get_remove_clear(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """POST answers the rule with defaults filled in; GET lists it with its count; DELETE removes one or all."""
    added = await admin(http, sim, "POST", "faults", {"kind": "market.duplicate", "symbol": "BTCUSDT"})
    second = await admin(http, sim, "POST", "faults", {"kind": "user.silent", "for_s": 30})
    listed = await admin(http, sim, "GET", "faults")
    one = await admin(http, sim, "GET", f"faults/{added['id']}")
    removed = await admin(http, sim, "DELETE", f"faults/{added['id']}")
    missing = await admin(http, sim, "GET", f"faults/{added['id']}")
    cleared = await admin(http, sim, "DELETE", "faults")
    after = await admin(http, sim, "GET", "faults")

    assert added == {
        "id": 1,
        "fault": {"kind": "market.duplicate", "symbol": "BTCUSDT", "times": 1},
        "fired": 0,
        "active": True,
    }
    assert second["fault"] == {"kind": "user.silent", "for_s": 30.0} and 29 < second["remaining_s"] <= 30
    assert [rule["id"] for rule in listed["faults"]] == [1, 2] and one == added and removed == added
    assert missing == (404, "text/plain", "id: one of the rule ids (2), was 1\n")
    assert cleared == {"cleared": 1} and after == {"faults": []} and sim.faults.rules == []


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ({"kind": "market.silent"}, "for_s: required for market.silent, was absent"),
        ({"kind": "request.rate_limited", "retry_after_s": "5"}, 'retry_after_s: an integer from 1 to 259200, was "5"'),
        ({"kind": "market.drop", "symbol": "BTCUSDT"}, "symbol: not a field of market.drop (it takes for_s, times)"),
        ({"kind": "orders.wipe", "symbol": "DOGEUSDT"}, 'symbol: one of BTCUSDT, ETHUSDT, was "DOGEUSDT"'),
        ("not json", "body: a JSON object, was 'not json'"),
    ],
)
async def test_admin_refuses_a_bad_spec_with_400_and_one_line(
    sim: ExchangeSim, http: aiohttp.ClientSession, body: Any, line: str
) -> None:
    """A bad spec is refused: HTTP 400, text/plain, one line naming the field, what is allowed and what was given."""
    status, content_type, text = await admin(http, sim, "POST", "faults", body)

    assert (status, content_type) == (400, "text/plain")
    assert text.startswith(line) and text.endswith("\n") and text.count("\n") == 1
    assert sim.faults.rules == []


async def test_admin_quote_and_connection_counts(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """POST /_sim/quote moves the market (decimal strings only); /_sim/connections counts sockets."""
    async with http.ws_connect(f"{sim.ws_url}/{STREAM}") as ws:
        await asyncio.wait_for(sim.wait_stream_subscribers(STREAM), 5)
        counts = await admin(http, sim, "GET", "connections")
        answer = await admin(http, sim, "POST", "quote", {"symbol": "BTCUSDT", "bid": "50010.00", "ask": "50011.00"})
        event = await receive(ws)
        refused = await admin(http, sim, "POST", "quote", {"symbol": "BTCUSDT", "bid": 50010.5, "ask": "50011.00"})
        crossed = await admin(http, sim, "POST", "quote", {"symbol": "BTCUSDT", "bid": "50012.00", "ask": "50011.00"})

    assert counts == {"market": 1, "user": 0, "user_subscriptions": 0}
    assert answer == {"symbol": "BTCUSDT", "bid": "50010.00", "ask": "50011.00"}
    assert (event["b"], event["a"]) == ("50010.00000000", "50011.00000000")
    assert refused[0] == 400 and refused[2].startswith('bid: a decimal string >= 0 such as "50000.00", was 50010.5')
    assert crossed[0] == 400 and crossed[2].startswith("quote: needs 0 < bid < ask")


# -- REST requests ------------------------------------------------------------------------------------------
async def test_rest_rate_limited_only_for_its_endpoint_with_retry_after_and_1003(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """429 with Retry-After and -1003 on POST /api/v3/order, once; other endpoints and the next order pass."""
    spec = {"kind": "request.rate_limited", "retry_after_s": 7, "method": "POST", "path": "/api/v3/order"}
    sim.faults.add(spec)

    server_time = await rest(http, sim, "GET", "time")
    limited = await rest(http, sim, "POST", "order", buy(client_id="r1"))
    placed = await rest(http, sim, "POST", "order", buy(client_id="r2"))

    assert server_time[0] == 200
    status, headers, body = limited
    assert (status, headers["Retry-After"]) == (429, "7") and "X-MBX-USED-WEIGHT-1M" in headers
    assert body == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    assert placed[0] == 200 and [o.client_order_id for o in sim.open_orders()] == ["r2"]
    assert sim.faults.rules[0].fired == 1


async def test_rest_banned_418_and_timestamp_1021_spare_public_time(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """418 carries Retry-After and the ban's end in ms; -1021 hits signed calls only, so /time still answers."""
    sim.faults.add({"kind": "request.banned", "retry_after_s": 120, "path": "/api/v3/account"})
    sim.faults.add({"kind": "request.timestamp", "times": 2})
    before_ms = sim.now_ms()

    banned = await rest(http, sim, "GET", "account", {})
    stale = await rest(http, sim, "GET", "openOrders", {"symbol": "BTCUSDT"})
    server_time = await rest(http, sim, "GET", "time")
    still_stale = await rest(http, sim, "POST", "order", buy())

    status, headers, body = banned
    until_ms = int(body["msg"].split("IP banned until ")[1].split(".")[0])
    assert (status, headers["Retry-After"], body["code"]) == (418, "120", -1003)
    assert body["msg"].endswith(". Please use WebSocket Streams for live updates to avoid bans.")
    assert before_ms + 120_000 <= until_ms <= sim.now_ms() + 120_000
    expected = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    assert (stale[0], stale[2]) == (400, expected) and (still_stale[0], still_stale[2]) == (400, expected)
    assert server_time[0] == 200 and sim.open_orders() == []


async def test_rest_server_errors_503_json_502_html_and_executed(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """503 answers -1008 JSON; 502 an edge's HTML page; executed=true places the order behind the 5xx."""
    sim.faults.add({"kind": "request.server_error", "status": 503, "path": "/api/v3/time"})
    sim.faults.add({"kind": "request.server_error", "status": 502, "path": "/api/v3/ping"})
    sim.faults.add({"kind": "request.server_error", "status": 500, "executed": True, "path": "/api/v3/order"})

    busy = await rest(http, sim, "GET", "time")
    gateway = await rest(http, sim, "GET", "ping")
    unknown = await rest(http, sim, "POST", "order", buy(client_id="x5"))
    query = await rest(http, sim, "GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "x5"})

    assert busy[:1] == (503,) and busy[2] == {
        "code": -1008,
        "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
    }
    assert gateway[0] == 502 and gateway[1]["Content-Type"].startswith("text/html") and "502 Bad Gateway" in gateway[2]
    assert unknown[0] == 500 and unknown[2]["code"] == -1000
    assert query[0] == 200 and query[2]["status"] == "NEW" and query[2]["clientOrderId"] == "x5"


async def test_rest_timeout_drop_cuts_the_connection_after_the_hold(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """then=drop: no answer for hold_s, then the connection is cut; executed=true left the order placed."""
    spec = {"kind": "request.timeout", "hold_s": 0.3, "then": "drop", "executed": True}
    sim.faults.add(spec | {"surface": "rest", "method": "POST"})
    loop = asyncio.get_running_loop()
    start = loop.time()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await rest(http, sim, "POST", "order", buy(client_id="t1"))
    held = loop.time() - start
    query = await rest(http, sim, "GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "t1"})

    assert held >= 0.29 and query[0] == 200 and query[2]["status"] == "NEW"


async def test_rest_timeout_answer_comes_late_and_unexecuted_drop_places_nothing(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """then=answer: the normal answer after hold_s; then=drop without executed: the order never reaches the book."""
    sim.faults.add({"kind": "request.timeout", "hold_s": 0.3, "then": "answer", "path": "/api/v3/time"})
    sim.faults.add({"kind": "request.timeout", "hold_s": 0.05, "then": "drop", "path": "/api/v3/order"})
    loop = asyncio.get_running_loop()
    start = loop.time()

    late = await rest(http, sim, "GET", "time")
    took = loop.time() - start
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await rest(http, sim, "POST", "order", buy(client_id="t2"))
    query = await rest(http, sim, "GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "t2"})

    assert late[0] == 200 and "serverTime" in late[2] and took >= 0.29
    assert query[2] == {"code": -2013, "msg": "Order does not exist."}


# -- WebSocket API requests ---------------------------------------------------------------------------------
async def test_ws_api_rate_limit_and_ban_carry_retry_after_ms_and_the_ban_closes(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """429 and 418 carry error.data.retryAfter (epoch ms) and serverTime; after a 418 the server closes."""
    sim.faults.add({"kind": "request.rate_limited", "retry_after_s": 3, "surface": "ws_api", "method": "ping"})
    sim.faults.add({"kind": "request.banned", "retry_after_s": 60, "surface": "ws_api", "method": "time"})
    async with http.ws_connect(sim.ws_api_url) as ws:
        await ws.send_json({"id": 1, "method": "ping", "params": {}})
        limited = await receive(ws)
        await ws.send_json({"id": 2, "method": "time", "params": {}})
        banned = await receive(ws)
        closed = await is_cut(ws)

    assert (limited["id"], limited["status"], limited["error"]["code"]) == (1, 429, -1003)
    data = limited["error"]["data"]
    assert data["retryAfter"] == data["serverTime"] + 3000 and "rateLimits" in limited
    assert (banned["id"], banned["status"], banned["error"]["code"]) == (2, 418, -1003)
    until = banned["error"]["data"]["retryAfter"]
    assert f"IP banned until {until}." in banned["error"]["msg"] and closed


async def test_ws_api_late_answer_comes_after_later_requests_and_drop_cuts(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """A held WebSocket API answer arrives after the answers to later requests; then=drop cuts the socket."""
    sim.faults.add({"kind": "request.timeout", "hold_s": 0.2, "then": "answer", "surface": "ws_api", "method": "time"})
    async with http.ws_connect(sim.ws_api_url) as ws:
        await ws.send_json({"id": "slow", "method": "time", "params": {}})
        await ws.send_json({"id": "fast", "method": "ping", "params": {}})
        first, second = await receive(ws), await receive(ws)
    sim.faults.add({"kind": "request.timeout", "hold_s": 0.05, "then": "drop", "surface": "ws_api"})
    async with http.ws_connect(sim.ws_api_url) as ws:
        await ws.send_json({"id": "lost", "method": "ping", "params": {}})
        cut = await is_cut(ws)

    assert (first["id"], second["id"]) == ("fast", "slow") and "serverTime" in second["result"] and cut


# -- market streams -----------------------------------------------------------------------------------------
async def test_market_drop_cuts_open_connections_and_then_reconnects_until_times(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """market.drop times 2: the open stream is cut, the first reconnection too, the second one is served."""
    async with http.ws_connect(f"{sim.ws_url}/{STREAM}") as first:
        await asyncio.wait_for(sim.wait_stream_subscribers(STREAM), 5)
        rule = await admin(http, sim, "POST", "faults", {"kind": "market.drop", "times": 2})
        first_cut = await is_cut(first)
    async with http.ws_connect(f"{sim.ws_url}/{STREAM}") as second:
        second_cut = await is_cut(second)
    async with http.ws_connect(f"{sim.stream_url}?streams={STREAM}") as third:
        assert await registered(third) == [STREAM]
        sim.set_quote("BTCUSDT", "50000.00", "50000.50")
        served = await receive(third)
    final = await admin(http, sim, "GET", f"faults/{rule['id']}")

    assert rule["fired"] == 1 and rule["active"] is True and first_cut and second_cut
    assert served["stream"] == STREAM and served["data"]["b"] == "50000.00000000"
    assert (final["fired"], final["active"]) == (2, False)


async def test_market_silent_sends_nothing_in_the_window_then_resumes(
    manual_sim: tuple[ExchangeSim, ManualClock], http: aiohttp.ClientSession
) -> None:
    """market.silent 0.3 s on the simulator's clock: quotes are not sent (the socket stays open), then flow again."""
    sim, clock = manual_sim
    async with http.ws_connect(f"{sim.ws_url}/{STREAM}") as ws:
        await asyncio.wait_for(sim.wait_stream_subscribers(STREAM), 5)
        sim.faults.add({"kind": "market.silent", "for_s": 0.3})
        sim.set_quote("BTCUSDT", "50000.00", "50000.50")
        await assert_nothing_within(ws, 0.3)
        clock.advance(300_000_000)
        sim.set_quote("BTCUSDT", "50001.00", "50001.50")
        resumed = await receive(ws)

    assert resumed["b"] == "50001.00000000" and sim.faults.rules[0].fired == 1


async def test_market_malformed_duplicate_and_out_of_order_frames_on_the_wire(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """A truncated frame (not JSON), a frame sent twice, and an older update arriving after a newer one."""
    async with http.ws_connect(f"{sim.ws_url}/{STREAM}") as ws:
        await asyncio.wait_for(sim.wait_stream_subscribers(STREAM), 5)
        sim.faults.add({"kind": "market.malformed"})
        sim.set_quote("BTCUSDT", "50000.00", "50000.50")
        async with asyncio.timeout(5):
            broken = await ws.receive_str()
        sim.faults.add({"kind": "market.duplicate"})
        sim.set_quote("BTCUSDT", "50001.00", "50001.50")
        twice = [await receive(ws), await receive(ws)]
        sim.faults.add({"kind": "market.out_of_order"})
        sim.set_quote("BTCUSDT", "50002.00", "50002.50")
        sim.set_quote("BTCUSDT", "50003.00", "50003.50")
        swapped = [await receive(ws), await receive(ws)]

    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken)
    assert broken.startswith('{"u":')
    assert twice[0] == twice[1] and twice[0]["b"] == "50001.00000000"
    assert [e["b"] for e in swapped] == ["50003.00000000", "50002.00000000"] and swapped[0]["u"] > swapped[1]["u"]
    assert [rule.fired for rule in sim.faults.rules] == [1, 1, 1]


# -- user data ----------------------------------------------------------------------------------------------
async def test_user_trade_after_cancel_and_duplicate_reports(sim: ExchangeSim, http: aiohttp.ClientSession) -> None:
    """trade_after_terminal: a partial fill's report arrives after the cancel's; user.duplicate repeats a report."""
    sim.faults.add({"kind": "user.out_of_order", "mode": "trade_after_terminal"})
    sim.faults.add({"kind": "user.duplicate", "exec_type": "NEW"})
    async with http.ws_connect(sim.ws_api_url) as ws:
        await subscribe_user(sim, ws)
        placed = await rest(http, sim, "POST", "order", buy())
        sim.set_quote("BTCUSDT", "49980.00", "49985.00", ask_qty="0.004")
        canceled = await rest(http, sim, "DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "b1"})
        events = await reports(ws, 4)

    assert placed[0] == 200 and canceled[0] == 200
    assert [(e["x"], e["X"]) for e in events] == [
        ("NEW", "NEW"),
        ("NEW", "NEW"),
        ("CANCELED", "CANCELED"),
        ("TRADE", "PARTIALLY_FILLED"),
    ]
    assert events[3]["l"] == "0.00400000" and events[3]["t"] > 0 and events[0] == events[1]


async def test_user_silent_loses_events_then_delivers_again(
    manual_sim: tuple[ExchangeSim, ManualClock], http: aiohttp.ClientSession
) -> None:
    """user.silent: events in the window are not delivered (lost, no replay); after it they flow again."""
    sim, clock = manual_sim
    async with http.ws_connect(sim.ws_api_url) as ws:
        await subscribe_user(sim, ws)
        sim.faults.add({"kind": "user.silent", "for_s": 0.3})
        await rest(http, sim, "POST", "order", buy(client_id="s1"))
        await assert_nothing_within(ws, 0.3)
        clock.advance(300_000_000)
        await rest(http, sim, "POST", "order", buy(client_id="s2"))
        after = await reports(ws, 1)

    assert after[0]["c"] == "s2" and sim.faults.rules[0].fired == 2  # s1's report and its account update


async def test_user_expire_ends_the_subscription_and_drop_cuts_the_connection(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """user.expire: eventStreamTerminated, no more events on it, a new subscription works; user.drop cuts."""
    async with http.ws_connect(sim.ws_api_url) as ws:
        await subscribe_user(sim, ws)
        rule = await admin(http, sim, "POST", "faults", {"kind": "user.expire"})
        terminated = await receive(ws)
        await rest(http, sim, "POST", "order", buy(client_id="e1"))
        await assert_nothing_within(ws, 0.2)
        await subscribe_user(sim, ws)
        await rest(http, sim, "POST", "order", buy(client_id="e2", price="49980.00"))
        again = await reports(ws, 1)
        dropped = await admin(http, sim, "POST", "faults", {"kind": "user.drop"})
        cut = await is_cut(ws)

    assert terminated == {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": terminated["event"]["E"]}}
    assert (rule["fired"], rule["active"]) == (1, False)
    assert again[0]["c"] == "e2" and (dropped["fired"], dropped["active"]) == (1, False) and cut


async def test_wipe_forgets_open_orders_silently_then_query_2013_and_cancel_2011(
    sim: ExchangeSim, http: aiohttp.ClientSession
) -> None:
    """The venue restarted without our resting orders: no event; query -2013, cancel -2011; funds free again."""
    async with http.ws_connect(sim.ws_api_url) as ws:
        await subscribe_user(sim, ws)
        placed = await rest(http, sim, "POST", "order", buy(client_id="w1"))
        await reports(ws, 1)
        await receive(ws)  # its outboundAccountPosition
        locked = sim.balance("USDT")[1]
        wiped = await admin(http, sim, "POST", "wipe", {"symbol": "BTCUSDT"})
        await assert_nothing_within(ws, 0.2)
    query = await rest(http, sim, "GET", "order", {"symbol": "BTCUSDT", "orderId": placed[2]["orderId"]})
    cancel = await rest(http, sim, "DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "w1"})
    open_orders = await rest(http, sim, "GET", "openOrders", {"symbol": "BTCUSDT"})

    assert wiped["wiped"] == [{"symbol": "BTCUSDT", "orderId": placed[2]["orderId"], "clientOrderId": "w1"}]
    assert wiped["fault"] == {"kind": "orders.wipe", "symbol": "BTCUSDT"} and wiped["fired"] == 1
    assert (query[0], query[2]) == (400, {"code": -2013, "msg": "Order does not exist."})
    assert (cancel[0], cancel[2]) == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert open_orders[2] == [] and locked > 0 and sim.balance("USDT")[1] == 0


# -- the command line ---------------------------------------------------------------------------------------
async def test_cli_faults_script_applies_on_schedule_and_a_bad_script_exits_2(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """--faults FILE: an at_s 0 line is in force before the banner is printed; a bad line exits 2 naming
    file:line and the field."""
    script = tmp_path / "faults.jsonl"
    script.write_text(
        "# rate-limit the first order\n"
        '{"at_s": 0, "fault": {"kind": "request.rate_limited", "retry_after_s": 4, "path": "/api/v3/time"}}\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dma_bot.exchange_sim",
        "--port",
        "0",
        "--quote-interval",
        "0",
        "--faults",
        str(script),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner: dict[str, str] = {}
        async with asyncio.timeout(20):
            while "api secret" not in banner:
                line = (await proc.stdout.readline()).decode()
                assert line, "exchange_sim exited before printing its banner"
                name, _, value = line.rstrip("\n").partition("  ")
                banner[name] = value.strip()
        rest_url = banner["REST"].split()[0]
        async with asyncio.timeout(5):
            async with http.get(f"{rest_url}/api/v3/time") as response:
                limited = (response.status, response.headers["Retry-After"], await response.json())
            async with http.get(f"{rest_url}/api/v3/time") as response:
                served = response.status
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.communicate()
    script.write_text('{"at_s": 1, "fault": {"kind": "market.drop"}}\n{"at_s": 2, "fault": {"kind": "user.silent"}}\n')
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot.exchange_sim", "--port", "0", "--faults", str(script),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        _, stderr = await bad.communicate()

    assert banner["admin"] == f"{rest_url}/_sim/faults" and banner["faults"].startswith("1 scheduled")
    assert limited[:2] == (429, "4") and limited[2]["code"] == -1003 and served == 200
    assert bad.returncode == 2
    assert stderr.decode() == f"exchange_sim: {script}:2: for_s: required for user.silent, was absent\n"
