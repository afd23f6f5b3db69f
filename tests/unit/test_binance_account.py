"""Binance account reads (dma_bot.binance.account): balances and open orders, from the documented payloads."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from dma_bot.binance.codec import build_account_params, parse_account, parse_open_orders
from dma_bot.errors import ProtocolError

# GET /api/v3/account, as rest-api.md documents it (fields the parser does not read kept, to show it skips them)
ACCOUNT = (
    b'{"makerCommission":15,"takerCommission":15,"buyerCommission":0,"sellerCommission":0,'
    b'"commissionRates":{"maker":"0.00150000","taker":"0.00150000","buyer":"0.00000000","seller":"0.00000000"},'
    b'"canTrade":true,"canWithdraw":true,"canDeposit":true,"brokered":false,"requireSelfTradePrevention":false,'
    b'"preventSor":false,"updateTime":123456789,"accountType":"SPOT",'
    b'"balances":[{"asset":"BTC","free":"4723846.89208129","locked":"0.00000000"},'
    b'{"asset":"LTC","free":"4763368.68006011","locked":"0.00000001"},'
    b'{"asset":"USDT","free":"0.00000000","locked":"12.50000000"}],'
    b'"permissions":["SPOT"],"uid":354937868}'
)
# GET /api/v3/openOrders: entries shaped like GET /api/v3/order
OPEN_ORDERS = [
    {"symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1", "price": "0.1",
     "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0", "status": "NEW", "timeInForce": "GTC",
     "type": "LIMIT", "side": "BUY", "stopPrice": "0.0", "icebergQty": "0.0", "time": 1499827319559,
     "updateTime": 1499827319559, "isWorking": True, "origQuoteOrderQty": "0.000000",
     "workingTime": 1499827319559, "selfTradePreventionMode": "NONE"},
    {"symbol": "BTCUSDT", "orderId": 7, "clientOrderId": "dtp1-BINANCE", "status": "PARTIALLY_FILLED"},
    {"symbol": "LTCBTC", "orderId": 2, "clientOrderId": "myOrder2", "status": "NEW"},
]


def test_account_params_ask_to_omit_zero_balances() -> None:
    assert build_account_params() == [("omitZeroBalances", "true")]


def test_account_balances_are_free_plus_locked_exactly() -> None:
    """Each asset's total is free + locked, exact to the last satoshi; the venue's order is kept."""
    balances = parse_account(ACCOUNT)
    assert balances == {"BTC": Decimal("4723846.89208129"), "LTC": Decimal("4763368.68006012"),
                        "USDT": Decimal("12.5")}
    assert list(balances) == ["BTC", "LTC", "USDT"]
    assert str(balances["LTC"]) == "4763368.68006012"
    assert parse_account(orjson.loads(ACCOUNT)) == balances  # an already decoded body reads the same


def test_account_without_balances_is_empty_only_when_the_list_is() -> None:
    assert parse_account(b'{"balances":[]}') == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", r"^account: a JSON object"),
        (b'{"accountType":"SPOT"}', r"^account\.balances: a JSON list, was None"),
        (b'{"balances":["BTC"]}', r"^account\.balances\[\]: objects"),
        (b'{"balances":[{"free":"1","locked":"0"}]}', r"^account\.balances\[\]\.asset: a non-empty string"),
        (b'{"balances":[{"asset":"BTC","free":1,"locked":"0"}]}', r"^account\.balances\[BTC\]\.free: a decimal"),
        (b'{"balances":[{"asset":"BTC","free":"1","locked":"NaN"}]}', r"^account\.balances\[BTC\]\.locked: a finite"),
        (b'{"balances":[{"asset":"BTC","free":"-1","locked":"0"}]}', r"^account\.balances\[BTC\]\.free: a non-neg"),
        (b'{"balances":[{"asset":"BTC","free":"1","locked":"0"},{"asset":"BTC","free":"2","locked":"0"}]}',
         r"^account\.balances\[BTC\]: each asset once"),
    ],
)
def test_account_that_breaks_the_shape_is_an_error_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_account(body)


def test_open_orders_are_client_ids_grouped_by_symbol_in_venue_order() -> None:
    expected = {"LTCBTC": ("myOrder1", "myOrder2"), "BTCUSDT": ("dtp1-BINANCE",)}
    assert parse_open_orders(orjson.dumps(OPEN_ORDERS)) == expected
    assert parse_open_orders(OPEN_ORDERS) == expected
    assert parse_open_orders(b"[]") == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", r"^openOrders: a JSON list"),
        (b'{"symbol":"BTCUSDT"}', r"^openOrders: a JSON list"),
        (b"[7]", r"^openOrders\[\]: objects"),
        (b'[{"clientOrderId":"a"}]', r"^openOrders\[\]\.symbol: a non-empty string"),
        (b'[{"symbol":"BTCUSDT","clientOrderId":""}]', r"^openOrders\[BTCUSDT\]\.clientOrderId: a non-empty"),
    ],
)
def test_open_orders_that_break_the_shape_are_an_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_open_orders(body)
