"""Request checks done before the matching engine, with Binance's error codes and messages. Pure.

It owns :class:`ApiError` (HTTP status, Binance code, message), the parsing of decimal and enum
parameters (-1100, -1102, -1111, -11xx), and the symbol filters of exchangeInfo (-1013 "Filter failure:
X"): PRICE_FILTER, LOT_SIZE, PERCENT_PRICE_BY_SIDE, NOTIONAL and MAX_NUM_ORDERS. Checks the engine does
(balance, duplicate client order id, market closed, LIMIT_MAKER crossing: -2010) live in
:mod:`dma_bot.exchange_sim.engine`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from dma_bot.exchange_sim.market import SymbolConfig
from dma_bot.model.enums import Side

__all__ = [
    "NEW_ORDER_PARAMS",
    "ApiError",
    "OrderRequest",
    "check_filters",
    "mandatory",
    "parse_client_order_id",
    "parse_decimal",
    "parse_int",
    "parse_new_order",
]

_DECIMAL_RE: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_CLIENT_ID_RE: Final = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
_CLIENT_ID_RANGE: Final = "^[a-zA-Z0-9-_]{1,36}$"
_ORDER_TYPES: Final = frozenset(
    {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
_TIME_IN_FORCE: Final = frozenset({"GTC", "IOC", "FOK"})
_RESP_TYPES: Final = frozenset({"ACK", "RESULT", "FULL"})
_UNSUPPORTED_PARAMS: Final = (
    "stopPrice",
    "trailingDelta",
    "icebergQty",
    "pegPriceType",
    "pegOffsetValue",
    "pegOffsetType",
)
NEW_ORDER_PARAMS: Final = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "strategyId",
        "strategyType",
        "newOrderRespType",
        "selfTradePreventionMode",
        "recvWindow",
        "timestamp",
        "computeCommissionRates",
        *_UNSUPPORTED_PARAMS,
    }
)


class ApiError(Exception):
    """A Binance error answer: ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400, retry_after_s: int | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


def mandatory(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if value == "":
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def parse_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    """A non-negative decimal parameter as Binance accepts it (no sign, no exponent, <= 8 places)."""
    raw = params.get(name)
    if raw is None:
        return None
    if not _DECIMAL_RE.match(raw):
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{_DECIMAL_RANGE}'.")
    value = Decimal(raw)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise ApiError(-1111, f"Parameter '{name}' has too much precision.")
    return value


def parse_int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() and not (raw.startswith("-") and raw[1:].isdigit()):
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'.")
    return int(raw)


def parse_client_order_id(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw == "":
        raise ApiError(-1118 if name == "newClientOrderId" else -1119, f"Parameter '{name}' was empty.")
    if not _CLIENT_ID_RE.match(raw):
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{_CLIENT_ID_RANGE}'.")
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A new order after parameter checks: price in ticks (0 for MARKET), quantity in steps."""

    symbol: str
    side: Side
    order_type: str
    time_in_force: str
    price: int
    quantity: int
    quote_order_qty: Decimal
    client_order_id: str | None
    response_type: str


def _not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def _ticks(config: SymbolConfig, price: Decimal) -> int:
    if price <= 0:
        raise ApiError(-1013, "Invalid price.")
    if config.min_price and price < config.min_price:
        raise filter_failure("PRICE_FILTER")
    if config.max_price and price > config.max_price:
        raise filter_failure("PRICE_FILTER")
    if price % config.tick_size:
        raise filter_failure("PRICE_FILTER")
    return config.instrument.price_to_ticks(price)


def _steps(config: SymbolConfig, quantity: Decimal) -> int:
    if quantity <= 0:
        raise ApiError(-1013, "Invalid quantity.")
    if (config.min_qty and quantity < config.min_qty) or (config.max_qty and quantity > config.max_qty):
        raise filter_failure("LOT_SIZE")
    if quantity % config.step_size:
        raise filter_failure("LOT_SIZE")
    return config.instrument.qty_to_steps(quantity)


def parse_new_order(params: Mapping[str, str], configs: Mapping[str, SymbolConfig]) -> OrderRequest:
    """Check a new-order request's parameters and the symbol's price and lot filters."""
    unread = sorted(set(params) - NEW_ORDER_PARAMS)
    if unread:
        raise ApiError(
            -1104,
            f"Not all sent parameters were read; read '{len(params) - len(unread)}' parameter(s) "
            f"but was sent '{len(params)}'.",
        )
    symbol = mandatory(params, "symbol")
    side_raw = mandatory(params, "side")
    order_type = mandatory(params, "type")
    if side_raw not in ("BUY", "SELL"):
        raise ApiError(-1117, "Invalid side.")
    if order_type not in _ORDER_TYPES:
        raise ApiError(-1116, "Invalid orderType.")
    config = configs.get(symbol)
    if config is None:
        raise ApiError(-1121, "Invalid symbol.")
    if order_type not in config.order_types:
        raise ApiError(-1014, "Unsupported order combination.")
    for name in _UNSUPPORTED_PARAMS:
        if name in params:
            raise _not_required(name)
    tif = params.get("timeInForce")
    price = parse_decimal(params, "price")
    quantity = parse_decimal(params, "quantity")
    quote_qty = parse_decimal(params, "quoteOrderQty")
    if order_type == "MARKET":
        for name, value in (("timeInForce", tif), ("price", price)):
            if value is not None:
                raise _not_required(name)
        if quantity is None and quote_qty is None:
            raise ApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        if quantity is not None and quote_qty is not None:
            raise _not_required("quoteOrderQty")
    else:
        if quote_qty is not None:
            raise _not_required("quoteOrderQty")
        if order_type == "LIMIT":
            tif = mandatory(params, "timeInForce")
            if tif not in _TIME_IN_FORCE:
                raise ApiError(-1115, "Invalid timeInForce.")
        elif tif is not None:
            raise _not_required("timeInForce")
        mandatory(params, "quantity")
        mandatory(params, "price")
    response_type = params.get("newOrderRespType", "FULL" if order_type in ("LIMIT", "MARKET") else "ACK")
    if response_type not in _RESP_TYPES:
        raise ApiError(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
    if params.get("selfTradePreventionMode", "NONE") != "NONE":
        raise ApiError(-1130, "Data sent for parameter 'selfTradePreventionMode' is not valid.")
    client_order_id = parse_client_order_id(params, "newClientOrderId")
    ticks = _ticks(config, price) if price is not None else 0
    steps = _steps(config, quantity) if quantity is not None else 0
    if quote_qty is not None and quote_qty <= 0:
        raise ApiError(-1013, "Invalid quoteOrderQty.")
    return OrderRequest(
        symbol=symbol,
        side=Side(side_raw),
        order_type=order_type,
        time_in_force=tif or "GTC",
        price=ticks,
        quantity=steps,
        quote_order_qty=quote_qty or Decimal(0),
        client_order_id=client_order_id,
        response_type=response_type,
    )


def check_filters(request: OrderRequest, config: SymbolConfig, mid2: int, open_orders: int) -> None:
    """PERCENT_PRICE_BY_SIDE (against the current mid), NOTIONAL and MAX_NUM_ORDERS; -1013 on failure.

    ``mid2`` is bid + ask in ticks (twice the mid). A MARKET order is priced at the mid and checked only
    against ``minNotional`` (exchangeInfo says ``applyMinToMarket`` true, ``applyMaxToMarket`` false)."""
    instrument = config.instrument
    mid = instrument.ticks_to_price(mid2) / 2
    if request.order_type != "MARKET":
        price = instrument.ticks_to_price(request.price)
        if request.side is Side.BUY:
            low, high = mid * config.bid_multiplier_down, mid * config.bid_multiplier_up
        else:
            low, high = mid * config.ask_multiplier_down, mid * config.ask_multiplier_up
        if not low <= price <= high:
            raise filter_failure("PERCENT_PRICE_BY_SIDE")
        notional = instrument.notional(request.price, request.quantity)
    elif request.quantity:
        notional = mid * instrument.steps_to_qty(request.quantity)
    else:
        notional = request.quote_order_qty
    too_big = request.order_type != "MARKET" and config.max_notional and notional > config.max_notional
    if (config.min_notional and notional < config.min_notional) or too_big:
        raise filter_failure("NOTIONAL")
    if open_orders >= config.max_num_orders:
        raise filter_failure("MAX_NUM_ORDERS")
