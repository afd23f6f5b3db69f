"""ccxt (an independent Binance client) against the simulator over real sockets, configured as the reference
says for a local exchange: spot only, no currencies or margin calls, REST URLs pointed at the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro
import pytest

from dma_bot.exchange_sim import ExchangeSim, parse_symbols


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    async with ExchangeSim(parse_symbols("BTCUSDT,ETHUSDT,LTCUSDT:HALT"), port=0) as running:
        yield running


def options() -> dict[str, object]:
    """Spot only, and no currency or margin calls (those would go to the real hosts)."""
    return {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}


def make_client(sim: ExchangeSim, secret: str | None = None) -> ccxt.binance:
    client = ccxt.binance(
        {
            "apiKey": sim.api_key,
            "secret": secret or sim.api_secret,
            "options": options(),
        }
    )
    client.urls["api"]["public"] = sim.api_url
    client.urls["api"]["private"] = sim.api_url
    return client


def make_pro_client(sim: ExchangeSim) -> ccxtpro.binance:
    """ccxt.pro ignores the REST overrides for its sockets: streams and WS API URLs are set apart."""
    client = ccxtpro.binance({"apiKey": sim.api_key, "secret": sim.api_secret, "options": options()})
    client.urls["api"]["public"] = client.urls["api"]["private"] = sim.api_url
    client.urls["api"]["ws"]["spot"] = sim.ws_url
    client.urls["api"]["ws"]["ws-api"]["spot"] = sim.ws_api_url
    return client


@pytest.fixture
async def client(sim: ExchangeSim) -> AsyncIterator[ccxt.binance]:
    exchange = make_client(sim)
    try:
        async with asyncio.timeout(10):
            await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


async def test_ccxt_load_markets_reads_grid_limits_and_status(client: ccxt.binance) -> None:
    """load_markets parses the tick and step, the notional minimum, and a halted symbol as inactive."""
    btc = client.market("BTC/USDT")

    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5.0 and btc["active"] is True
    assert client.market("LTC/USDT")["active"] is False


async def test_ccxt_fetch_ticker_and_order_book_show_the_simulated_quote(
    sim: ExchangeSim, client: ccxt.binance
) -> None:
    """fetch_ticker and fetch_order_book show the quote the simulator was given."""
    sim.set_quote("BTCUSDT", "50100.00", "50100.50", "0.20000", "0.30000")

    async with asyncio.timeout(5):
        ticker = await client.fetch_ticker("BTC/USDT")
        book = await client.fetch_order_book("BTC/USDT", limit=5)

    assert (ticker["bid"], ticker["ask"], ticker["askVolume"]) == (50100.0, 50100.5, 0.3)
    assert book["bids"][0] == [50100.0, 0.2] and book["asks"][0] == [50100.5, 0.3]


async def test_ccxt_order_lifecycle_create_fetch_list_cancel(sim: ExchangeSim, client: ccxt.binance) -> None:
    """A resting limit order is created, fetched, listed as open, cancelled, and then fetched as canceled."""
    async with asyncio.timeout(10):
        created = await client.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
        fetched = await client.fetch_order(created["id"], "BTC/USDT")
        listed = await client.fetch_open_orders("BTC/USDT")
        canceled = await client.cancel_order(created["id"], "BTC/USDT")
        after = await client.fetch_order(created["id"], "BTC/USDT")

    assert created["status"] == "open" and created["clientOrderId"].startswith("x-TKT5PX2F")
    assert (fetched["price"], fetched["amount"], fetched["remaining"]) == (49000.0, 0.01, 0.01)
    assert [o["id"] for o in listed] == [created["id"]]
    assert canceled["status"] == "canceled" and after["status"] == "canceled"
    assert sim.balance("USDT") == (Decimal(100000), Decimal(0))


async def test_ccxt_marketable_order_reports_fill_fee_and_balance(sim: ExchangeSim, client: ccxt.binance) -> None:
    """A buy through the ask fills at the ask with the commission in base, and fetch_balance agrees."""
    async with asyncio.timeout(10):
        order = await client.create_order("BTC/USDT", "limit", "buy", 0.02, 50010)
        balance = await client.fetch_balance()

    assert order["status"] == "closed" and order["filled"] == 0.02 and order["average"] == 50000.01
    assert order["fee"] == {"currency": "BTC", "cost": 0.00002}
    assert balance["BTC"]["free"] == 10.01998 and sim.balance("BTC") == (Decimal("10.01998"), Decimal(0))


async def test_ccxt_errors_map_to_its_exception_classes(sim: ExchangeSim, client: ccxt.binance) -> None:
    """Binance codes from the simulator become ccxt's exceptions: InvalidOrder, InsufficientFunds,
    OrderNotFound, AuthenticationError."""
    sim.set_balance("USDT", "10")
    wrong_secret = make_client(sim, secret="not-the-secret")
    wrong_secret.markets, wrong_secret.markets_by_id = client.markets, client.markets_by_id
    try:
        async with asyncio.timeout(10):
            with pytest.raises(ccxt.InvalidOrder):
                await client.create_order("BTC/USDT", "limit", "buy", 0.000001, 50000)
            with pytest.raises(ccxt.InsufficientFunds):
                await client.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
            with pytest.raises(ccxt.OrderNotFound):
                await client.fetch_order("424242", "BTC/USDT")
            with pytest.raises(ccxt.AuthenticationError):
                await wrong_secret.fetch_open_orders("BTC/USDT")
    finally:
        await wrong_secret.close()


async def test_ccxt_pro_watches_book_ticker_and_own_orders(sim: ExchangeSim) -> None:
    """ccxt.pro over /ws/<n> and the WebSocket API: watch_bids_asks sees the quote, watch_orders its own order."""
    client = make_pro_client(sim)
    try:
        async with asyncio.timeout(15):
            await client.load_markets()
            async with asyncio.TaskGroup() as tasks:
                quotes = tasks.create_task(client.watch_bids_asks(["BTC/USDT"]))
                await sim.wait_stream_subscribers("btcusdt@bookTicker")
                sim.set_quote("BTCUSDT", "50100.00", "50100.50")
            async with asyncio.TaskGroup() as tasks:
                orders = tasks.create_task(client.watch_orders("BTC/USDT"))
                await sim.wait_user_subscriptions()
                created = await client.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
    finally:
        await client.close()

    assert (quotes.result()["BTC/USDT"]["bid"], quotes.result()["BTC/USDT"]["ask"]) == (50100.0, 50100.5)
    assert [(o["id"], o["status"]) for o in orders.result()] == [(created["id"], "open")]
