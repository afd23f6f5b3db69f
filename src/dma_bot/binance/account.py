"""Binance account reads for reconciliation: ``GET /api/v3/account`` balances and ``GET /api/v3/openOrders``;
and ``GET /api/v3/ticker/price``, the start-up reference price that order sizes are checked against.

Both are signed (USER_DATA). The account read asks ``omitZeroBalances=true`` (an asset it leaves out holds
0) and gives each asset's total, free + locked, exactly: an order's reservation is still the account's.
The open-orders read without ``symbol`` lists every open order of the account (weight 80, once per
subscription) and is grouped by symbol. Pure: no I/O; a body that breaks the documented shape raises
:class:`~dma_bot.errors.ProtocolError` naming the field.

    account:    {"makerCommission":10, ..., "updateTime":1699000000000, "accountType":"SPOT",
                 "balances":[{"asset":"BTC","free":"4723846.89208129","locked":"0.00000000"}, ...], ...}
    openOrders: [{"symbol":"LTCBTC","orderId":1,"orderListId":-1,"clientOrderId":"myOrder1","price":"0.1",
                 "origQty":"1.0","executedQty":"0.0","status":"NEW", ...}, ...]
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any, Final

from dma_bot.binance.wire import _clip, _decimal, _list, _loads, _str
from dma_bot.errors import ProtocolError

__all__ = [
    "ACCOUNT_PATH",
    "OPEN_ORDERS_PATH",
    "TICKER_PRICE_PATH",
    "build_account_params",
    "parse_account",
    "parse_open_orders",
    "parse_ticker_price",
]

ACCOUNT_PATH: Final = "/api/v3/account"
OPEN_ORDERS_PATH: Final = "/api/v3/openOrders"
_EXACT: Final = Context(prec=80)


def build_account_params() -> list[tuple[str, str]]:
    """``GET /api/v3/account`` parameters (sign them): zero balances left out."""
    return [("omitZeroBalances", "true")]


def parse_account(body: bytes | str | Mapping) -> dict[str, Decimal]:
    """``GET /api/v3/account`` body -> {asset: free + locked}, in the venue's order.

    A missing ``balances`` list, a row without ``asset``, a ``free``/``locked`` that is not a non-negative
    decimal string, or an asset listed twice raises ProtocolError naming it."""
    where = "account"
    account = body if isinstance(body, Mapping) else _loads(body, where)
    rows = account.get("balances")
    if type(rows) is not list:
        raise ProtocolError(f"{where}.balances: a JSON list, was {_clip(rows)}")
    balances: dict[str, Decimal] = {}
    for row in rows:
        if type(row) is not dict:
            raise ProtocolError(f"{where}.balances[]: objects, was {_clip(row)}")
        asset = _str(row, "asset", f"{where}.balances[]")
        at = f"{where}.balances[{asset}]"
        if asset in balances:
            raise ProtocolError(f"{at}: each asset once, was listed twice")
        free, locked = _decimal(row, "free", at), _decimal(row, "locked", at)
        for key, value in (("free", free), ("locked", locked)):
            if value < 0:
                raise ProtocolError(f"{at}.{key}: a non-negative decimal string, was {row[key]!r}")
        balances[asset] = _EXACT.add(free, locked)
    return balances


def parse_open_orders(body: bytes | str | list[Any]) -> dict[str, tuple[str, ...]]:
    """``GET /api/v3/openOrders`` body -> {symbol: client order ids open there}, ids in the venue's order.

    Not a list, an entry that is not an object, or one without ``symbol``/``clientOrderId`` raises
    ProtocolError."""
    where = "openOrders"
    orders = _list(body, where)
    by_symbol: dict[str, list[str]] = {}
    for entry in orders:
        if type(entry) is not dict:
            raise ProtocolError(f"{where}[]: objects, was {_clip(entry)}")
        symbol = _str(entry, "symbol", f"{where}[]")
        by_symbol.setdefault(symbol, []).append(_str(entry, "clientOrderId", f"{where}[{symbol}]"))
    return {symbol: tuple(ids) for symbol, ids in by_symbol.items()}


TICKER_PRICE_PATH: Final = "/api/v3/ticker/price"


def parse_ticker_price(body: bytes | str | Mapping, symbol: str) -> Decimal:
    """``GET /api/v3/ticker/price?symbol=S`` body ``{"symbol": "BTCUSDT", "price": "50000.00"}`` -> the price;
    another symbol or a price that is not a positive decimal string raises ProtocolError naming it."""
    where = f"ticker/price[{symbol}]"
    ticker = body if isinstance(body, Mapping) else _loads(body, where)
    if _str(ticker, "symbol", where) != symbol:
        raise ProtocolError(f"{where}.symbol: {symbol}, was {_clip(ticker.get('symbol'))}")
    price = _decimal(ticker, "price", where)
    if not price > 0:
        raise ProtocolError(f"{where}.price: a positive decimal string, was {ticker['price']!r}")
    return price
