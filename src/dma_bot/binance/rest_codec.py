"""Binance REST bodies: order parameters we send, order/cancel/query and myTrades answers we receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from dma_bot.binance.user import _reason
from dma_bot.binance.wire import (
    _MS,
    _RESPONSE_TYPES,
    _TIME_IN_FORCE,
    CLIENT_ORDER_ID_PATTERN,
    _clip,
    _decimal,
    _exec_status,
    _grid,
    _instrument,
    _int,
    _list,
    _object,
    _side,
    _str,
)
from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Route
from dma_bot.model.instrument import Instrument

__all__ = [
    "OrderState",
    "Trade",
    "build_cancel_order_params",
    "build_my_trades_params",
    "build_new_order_params",
    "build_query_order_params",
    "parse_cancel_response",
    "parse_my_trades",
    "parse_order_response",
    "parse_query_order",
]


# -- REST ----------------------------------------------------------------------------------------------------


def _check_client_order_id(value: object, where: str) -> str:
    if type(value) is not str or CLIENT_ORDER_ID_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{where}: 1 to 36 characters of [A-Za-z0-9_-], was {_clip(value)}")
    return value


def build_new_order_params(
    route: Route,
    instrument: Instrument,
    *,
    time_in_force: Literal["GTC", "IOC", "FOK", "LIMIT_MAKER"],
    resp_type: Literal["ACK", "RESULT", "FULL"] = "ACK",
) -> list[tuple[str, str]]:
    """``POST /api/v3/order`` parameters for a child order, in send order (sign them with ``signing``).

    ``LIMIT_MAKER`` selects the post-only order type, which takes no ``timeInForce``; anything else is a
    LIMIT order with that ``timeInForce``. Price and quantity are the Instrument's exact plain decimals.
    """
    if time_in_force not in _TIME_IN_FORCE:
        raise ValueError(f"time_in_force: one of {', '.join(sorted(_TIME_IN_FORCE))}, was {time_in_force!r}")
    if resp_type not in _RESPONSE_TYPES:
        raise ValueError(f"resp_type: one of ACK, RESULT, FULL, was {resp_type!r}")
    if route.symbol != instrument.symbol:
        raise ValueError(f"instrument: the route's symbol {route.symbol}, was {instrument.symbol}")
    if route.price <= 0 or route.quantity <= 0:
        raise ValueError(f"route: positive price and quantity, was {route.price} ticks x {route.quantity} steps")
    params = [("symbol", route.symbol), ("side", route.side.value)]
    if time_in_force == "LIMIT_MAKER":
        params.append(("type", "LIMIT_MAKER"))
    else:
        params += [("type", "LIMIT"), ("timeInForce", time_in_force)]
    return [
        *params,
        ("quantity", instrument.format_qty(route.quantity)),
        ("price", instrument.format_price(route.price)),
        ("newClientOrderId", _check_client_order_id(route.client_order_id, "newClientOrderId")),
        ("newOrderRespType", resp_type),
    ]


def build_cancel_order_params(symbol: str, client_order_id: str) -> list[tuple[str, str]]:
    """``DELETE /api/v3/order`` by our client order id."""
    return [("symbol", symbol), ("origClientOrderId", _check_client_order_id(client_order_id, "origClientOrderId"))]


def build_query_order_params(symbol: str, client_order_id: str) -> list[tuple[str, str]]:
    """``GET /api/v3/order`` by our client order id (reconciliation after an unknown outcome)."""
    return build_cancel_order_params(symbol, client_order_id)


def _report(body: Mapping, venue: str, symbol: str, **fields: object) -> ExecReport:
    return ExecReport(
        venue=venue,
        symbol=symbol,
        client_order_id=_str(body, "clientOrderId", "order response"),
        venue_order_id=str(_int(body, "orderId", "order response")),
        ts_event_ns=_int(body, "transactTime", "order response") * _MS,
        **fields,  # type: ignore[arg-type]
    )


def parse_order_response(
    body: bytes | str | Mapping,
    venue: str,
    symbols: Mapping[str, Instrument],
    recv_ns: int,
    *,
    route: Route | None = None,
) -> list[ExecReport]:
    """``POST /api/v3/order`` 200 body (ACK, RESULT or FULL) -> what Binance said, as reports in order.

    ACK body: ``{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP",
    "transactTime":1507725176595}``; RESULT adds ``status``, ``side``, ``origQty``, ``executedQty``, ...; FULL
    adds ``"fills":[{"price":"4000.00000000","qty":"1.00000000","commission":"4.00000000",
    "commissionAsset":"USDT","tradeId":56}]``.

    The first report is the ACK (the order exists: it has an orderId), except for a REJECTED status, which
    is the only report. FULL adds one PARTIALLY_FILLED/FILLED report per ``fills[]`` entry, each with its
    trade id, price, quantity and commission (so the user-data stream's copies dedupe by trade id). A
    terminal non-fill status (CANCELED, EXPIRED, EXPIRED_IN_MATCH) ends the list. RESULT has no per-fill
    detail, so its fills are left to the user-data stream; no REST report claims a fill without a trade id.
    An ACK body carries no side or quantity: ``route`` (the order it answers) supplies them and is required.
    """
    where = "order response"
    obj = _object(body, where)
    symbol = _str(obj, "symbol", where)
    instrument = _instrument(symbols, symbol, where)
    if route is not None and (route.symbol, route.client_order_id) != (symbol, obj.get("clientOrderId")):
        raise ProtocolError(f"{where}.clientOrderId: {route.client_order_id} on {route.symbol}, was {_clip(obj)}")
    zero = Decimal(0)
    common = {"last_price": 0, "fee": zero, "fee_asset": "", "trade_id": None, "reason": "", "ts_ns": recv_ns}
    if "status" not in obj:
        if route is None:
            raise ProtocolError(f"{where}: an ACK body has no side or quantity; pass the route it answers")
        q = route.quantity
        fields = {"side": route.side, "order_qty": q, "last_qty": 0, "cum_qty": 0, "leaves_qty": q, **common}
        return [_report(obj, venue, symbol, status=ExecStatus.ACK, **fields)]
    side = _side(obj.get("side"))
    if side is None or (route is not None and route.side is not side):
        raise ProtocolError(f"{where}.side: {route.side if route else 'BUY or SELL'}, was {_clip(obj.get('side'))}")
    status = _exec_status(obj.get("status"), f"{where}.status")
    qty, price = _grid(instrument.step_size), _grid(instrument.tick_size)
    order_qty = qty.units(obj.get("origQty"), where, "origQty")
    executed = qty.units(obj.get("executedQty"), where, "executedQty")
    base = {"side": side, "order_qty": order_qty, **common}
    if status is ExecStatus.REJECTED:
        return [_report(obj, venue, symbol, status=status, last_qty=0, cum_qty=executed, leaves_qty=0, **base)]
    reports = [_report(obj, venue, symbol, status=ExecStatus.ACK, last_qty=0, cum_qty=0, leaves_qty=order_qty, **base)]
    fills = obj.get("fills")
    if fills is not None:
        if type(fills) is not list:
            raise ProtocolError(f"{where}.fills: a list, was {_clip(fills)}")
        cum = 0
        for fill in fills:
            if type(fill) is not dict:
                raise ProtocolError(f"{where}.fills[]: objects, was {_clip(fill)}")
            last = qty.units(fill.get("qty"), f"{where}.fills[]", "qty")
            cum += last
            fill_status = ExecStatus.FILLED if cum == order_qty else ExecStatus.PARTIALLY_FILLED
            fee_asset = _str(fill, "commissionAsset", f"{where}.fills[]")
            fields = {**base, "last_price": price.units(fill.get("price"), f"{where}.fills[]", "price")}
            fields |= {"fee": _decimal(fill, "commission", f"{where}.fills[]"), "fee_asset": fee_asset}
            fields |= {"trade_id": str(_int(fill, "tradeId", f"{where}.fills[]"))}
            fields |= {"last_qty": last, "cum_qty": cum, "leaves_qty": order_qty - cum}
            reports.append(_report(obj, venue, symbol, status=fill_status, **fields))
        if cum != executed:
            raise ProtocolError(f"{where}.fills: summing to executedQty {obj['executedQty']}, was {cum} steps")
    if status.is_terminal and status is not ExecStatus.FILLED:
        base["reason"] = _reason(obj.get("expiryReason"), None)
        reports.append(_report(obj, venue, symbol, status=status, last_qty=0, cum_qty=executed, leaves_qty=0, **base))
    return reports


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """An order as ``GET /api/v3/order`` (or a cancel response) states it, for reconciliation.

    Quantities and price are the venue's exact Decimals (no grid needed to read them); ``venue_status`` is
    Binance's spelling (``EXPIRED_IN_MATCH`` stays visible), ``status`` its ExecStatus.
    """

    symbol: str
    client_order_id: str
    venue_order_id: str
    side: Side
    status: ExecStatus
    venue_status: str
    price: Decimal
    order_qty: Decimal
    executed_qty: Decimal
    cum_quote_qty: Decimal
    ts_event_ns: int


def _order_state(obj: Mapping, where: str, id_key: str, time_key: str) -> OrderState:
    side = _side(obj.get("side"))
    if side is None:
        raise ProtocolError(f"{where}.side: BUY or SELL, was {_clip(obj.get('side'))}")
    return OrderState(
        symbol=_str(obj, "symbol", where),
        client_order_id=_str(obj, id_key, where),
        venue_order_id=str(_int(obj, "orderId", where)),
        side=side,
        status=_exec_status(obj.get("status"), f"{where}.status"),
        venue_status=obj["status"],
        price=_decimal(obj, "price", where),
        order_qty=_decimal(obj, "origQty", where),
        executed_qty=_decimal(obj, "executedQty", where),
        cum_quote_qty=_decimal(obj, "cummulativeQuoteQty", where),
        ts_event_ns=_int(obj, time_key, where) * _MS,
    )


def parse_query_order(body: bytes | str | Mapping) -> OrderState:
    """``GET /api/v3/order`` body -> :class:`OrderState` (``ts_event_ns`` from ``updateTime``)."""
    return _order_state(_object(body, "query order"), "query order", "clientOrderId", "updateTime")


def parse_cancel_response(body: bytes | str | Mapping) -> OrderState:
    """``DELETE /api/v3/order`` body -> :class:`OrderState` of the canceled order.

    ``client_order_id`` is ``origClientOrderId`` (the order's id): the body's ``clientOrderId`` is the
    cancel request's own id.
    """
    return _order_state(_object(body, "cancel response"), "cancel response", "origClientOrderId", "transactTime")


# -- myTrades ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One entry of ``GET /api/v3/myTrades``: a fill of one of the account's orders, with its trade id.

    ``price`` in ticks and ``qty`` in steps of the symbol's Instrument; ``commission`` exact in
    ``commission_asset``; ``side`` is BUY when ``isBuyer``; ``ts_event_ns`` from ``time``.
    """

    symbol: str
    trade_id: str
    venue_order_id: str
    side: Side
    price: int
    qty: int
    commission: Decimal
    commission_asset: str
    is_maker: bool
    ts_event_ns: int


def build_my_trades_params(symbol: str, order_id: str | int) -> list[tuple[str, str]]:
    """``GET /api/v3/myTrades`` for every trade of one order (by the venue's orderId)."""
    text = str(order_id)
    if not text.isdigit():
        raise ValueError(f"orderId: the venue's decimal order id, was {order_id!r}")
    return [("symbol", symbol), ("orderId", text)]


def _bool(obj: Mapping, key: str, where: str) -> bool:
    value = obj.get(key)
    if type(value) is not bool:
        raise ProtocolError(f"{where}.{key}: a boolean, was {_clip(value)}")
    return value


def parse_my_trades(body: bytes | str | list | Mapping, symbols: Mapping[str, Instrument]) -> list[Trade]:
    """``GET /api/v3/myTrades`` body -> :class:`Trade` s, in the venue's order (oldest first).

    Entry: ``{"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100",
    "qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB",
    "time":1499865549590,"isBuyer":true,"isMaker":false,"isBestMatch":true}``. A symbol not in ``symbols``,
    an off-grid price or quantity, a non-positive quantity or a missing field raises ProtocolError naming it.
    """
    where = "myTrades"
    trades = _list(body, where)
    out: list[Trade] = []
    for entry in trades:
        if type(entry) is not dict:
            raise ProtocolError(f"{where}[]: objects, was {_clip(entry)}")
        symbol = _str(entry, "symbol", f"{where}[]")
        instrument = _instrument(symbols, symbol, f"{where}[]")
        trade_id = _int(entry, "id", f"{where}[]")
        at = f"{where}[{trade_id}]"
        qty = _grid(instrument.step_size).units(entry.get("qty"), at, "qty")
        if qty <= 0:
            raise ProtocolError(f"{at}.qty: a positive quantity, was {entry['qty']!r}")
        out.append(
            Trade(
                symbol=symbol,
                trade_id=str(trade_id),
                venue_order_id=str(_int(entry, "orderId", at)),
                side=Side.BUY if _bool(entry, "isBuyer", at) else Side.SELL,
                price=_grid(instrument.tick_size).units(entry.get("price"), at, "price"),
                qty=qty,
                commission=_decimal(entry, "commission", at),
                commission_asset=_str(entry, "commissionAsset", at),
                is_maker=_bool(entry, "isMaker", at),
                ts_event_ns=_int(entry, "time", at) * _MS,
            )
        )
    return out
