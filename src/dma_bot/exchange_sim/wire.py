"""Binance Spot JSON shapes the exchange answers with, built from its own state. Pure.

Every decimal goes out as a string with 8 places, ids and times as integers, flags as booleans, exactly
as ``api.binance.com`` does (clients such as the official SDK validate these types strictly). Shapes:
order responses (ACK, RESULT, FULL), order queries and cancels, ``myTrades`` entries, ``executionReport``
and ``outboundAccountPosition`` events, and the symbol entries of exchangeInfo. Sample executionReport::

    {"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY",
     "o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,
     "C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000",
     "L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"I":8641984,"w":true,"m":false,
     "M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000",
     "W":1499405658657,"V":"NONE"}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Final, NamedTuple

from dma_bot.exchange_sim.accounts import Balances
from dma_bot.exchange_sim.book import SimOrder
from dma_bot.exchange_sim.market import SymbolConfig
from dma_bot.model.enums import Side
from dma_bot.model.instrument import Instrument

__all__ = [
    "FillRecord",
    "TradeRecord",
    "account_position",
    "cancel_response",
    "d8",
    "execution_report",
    "my_trade",
    "new_order_response",
    "order_status",
    "symbol_info",
]

_ZERO: Final = Decimal(0)
Json = dict[str, Any]


def d8(value: Decimal) -> str:
    """A decimal with exactly 8 places, never in exponent form."""
    return f"{value:.8f}"


class FillRecord(NamedTuple):
    """One fill of an order as the FULL response lists it."""

    price: int  # ticks
    qty: int  # steps
    commission: Decimal
    commission_asset: str
    trade_id: int


class TradeRecord(NamedTuple):
    """One fill as the account's trade history keeps it (``GET /api/v3/myTrades``)."""

    symbol: str
    order_id: int
    side: Side
    fill: FillRecord
    maker: bool
    time_ms: int


def _price(instrument: Instrument, ticks: int) -> str:
    return d8(instrument.ticks_to_price(ticks))


def _qty(instrument: Instrument, steps: int) -> str:
    return d8(instrument.steps_to_qty(steps))


def execution_report(
    order: SimOrder,
    instrument: Instrument,
    *,
    event_ms: int,
    exec_type: str,
    execution_id: int,
    fill: FillRecord | None = None,
    maker: bool = False,
    reject_reason: str = "NONE",
    client_order_id: str | None = None,
    orig_client_order_id: str = "",
) -> Json:
    """The executionReport for ``order`` in its state after this execution."""
    last_qty = fill.qty if fill else 0
    last_price = fill.price if fill else 0
    report: Json = {
        "e": "executionReport",
        "E": event_ms,
        "s": order.symbol,
        "c": client_order_id if client_order_id is not None else order.client_order_id,
        "S": order.side.value,
        "o": order.order_type,
        "f": order.time_in_force,
        "q": _qty(instrument, order.quantity),
        "p": _price(instrument, order.price),
        "P": d8(_ZERO),
        "F": d8(_ZERO),
        "g": -1,
        "C": orig_client_order_id,
        "x": exec_type,
        "X": order.status,
        "r": reject_reason,
        "i": order.order_id,
        "l": _qty(instrument, last_qty),
        "z": _qty(instrument, order.filled),
        "L": _price(instrument, last_price),
        "n": d8(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": event_ms,
        "t": fill.trade_id if fill else -1,
        "I": execution_id,
        "w": order.is_working,
        "m": maker,
        "M": False,
        "O": order.time_ms,
        "Z": d8(order.cum_quote),
        "Y": d8(instrument.notional(last_price, last_qty)),
        "Q": d8(order.quote_order_qty),
        "V": "NONE",
    }
    if order.working_ms >= 0:
        report["W"] = order.working_ms
    if exec_type == "EXPIRED" and order.expiry_reason:
        report["eR"] = order.expiry_reason
    return report


def account_position(balances: Balances, assets: Iterable[str], event_ms: int) -> Json:
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": balances.update_ms,
        "B": [{"a": a, "f": d8(balances.free(a)), "l": d8(balances.locked(a))} for a in assets],
    }


def _result_fields(order: SimOrder, instrument: Instrument) -> Json:
    fields: Json = {
        "price": _price(instrument, order.price),
        "origQty": _qty(instrument, order.quantity),
        "executedQty": _qty(instrument, order.filled),
        "origQuoteOrderQty": d8(order.quote_order_qty),
        "cummulativeQuoteQty": d8(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.order_type,
        "side": order.side.value,
    }
    return fields


def new_order_response(
    order: SimOrder, instrument: Instrument, response_type: str, fills: Sequence[FillRecord], transact_ms: int
) -> Json:
    """ACK, RESULT or FULL answer to ``POST /api/v3/order``."""
    body: Json = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": transact_ms,
    }
    if response_type == "ACK":
        return body
    body.update(_result_fields(order, instrument))
    body["workingTime"] = order.working_ms
    body["selfTradePreventionMode"] = "NONE"
    if order.status == "EXPIRED" and order.expiry_reason:
        body["expiryReason"] = order.expiry_reason
    if response_type == "FULL":
        body["fills"] = [
            {
                "price": _price(instrument, f.price),
                "qty": _qty(instrument, f.qty),
                "commission": d8(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in fills
        ]
    return body


def order_status(order: SimOrder, instrument: Instrument) -> Json:
    """``GET /api/v3/order`` and each entry of ``GET /api/v3/openOrders``."""
    body: Json = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1}
    body["clientOrderId"] = order.client_order_id
    body.update(_result_fields(order, instrument))
    del body["origQuoteOrderQty"]
    body.update(
        {
            "stopPrice": d8(_ZERO),
            "icebergQty": d8(_ZERO),
            "time": order.time_ms,
            "updateTime": order.update_ms,
            "isWorking": order.working_ms >= 0,
            "workingTime": order.working_ms,
            "origQuoteOrderQty": d8(order.quote_order_qty),
            "selfTradePreventionMode": "NONE",
        }
    )
    return body


def cancel_response(order: SimOrder, instrument: Instrument, cancel_client_id: str, transact_ms: int) -> Json:
    """``DELETE /api/v3/order``: ``clientOrderId`` is the cancel's own id."""
    body: Json = {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_ms,
    }
    body.update(_result_fields(order, instrument))
    body["selfTradePreventionMode"] = "NONE"
    return body


def symbol_info(config: SymbolConfig) -> Json:
    """One entry of exchangeInfo ``symbols``, with the filters the engine enforces."""
    return {
        "symbol": config.symbol,
        "status": config.status,
        "baseAsset": config.base_asset,
        "baseAssetPrecision": 8,
        "quoteAsset": config.quote_asset,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(config.order_types),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": "MARKET" in config.order_types,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": d8(config.min_price),
                "maxPrice": d8(config.max_price),
                "tickSize": d8(config.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": d8(config.min_qty),
                "maxQty": d8(config.max_qty),
                "stepSize": d8(config.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": d8(config.min_notional),
                "applyMinToMarket": True,
                "maxNotional": d8(config.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(config.bid_multiplier_up),
                "bidMultiplierDown": str(config.bid_multiplier_down),
                "askMultiplierUp": str(config.ask_multiplier_up),
                "askMultiplierDown": str(config.ask_multiplier_down),
                "avgPriceMins": 0,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": config.max_num_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def my_trade(trade: TradeRecord, instrument: Instrument) -> Json:
    """One entry of ``GET /api/v3/myTrades``; ``id`` is the ``t`` of the fill's executionReport."""
    fill = trade.fill
    return {
        "symbol": trade.symbol,
        "id": fill.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": _price(instrument, fill.price),
        "qty": _qty(instrument, fill.qty),
        "quoteQty": d8(instrument.notional(fill.price, fill.qty)),
        "commission": d8(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side is Side.BUY,
        "isMaker": trade.maker,
        "isBestMatch": True,
    }
