"""Binance Spot wire <-> model types: market frames, user-data events, REST bodies and WS API envelopes.

Owns the translation between what Binance sends (JSON bytes, decimal strings, millisecond times) and the
engine's vocabulary (:class:`Tick`, :class:`ExecReport` in integer ticks/steps and nanoseconds), plus the
Binance-only result types (:class:`MarketControl`, :class:`AccountUpdate`, :class:`OrderState`,
:class:`WsResponse`, ...) that never leave ``dma_bot.binance`` and the ``*binance*`` I/O modules. Pure
functions, no I/O, no clock, no state: the feed, the gateway, the exchange simulator and replay share them.
Anything that breaks the documented shapes raises :class:`ProtocolError` naming the field; a status this
module does not know is an error, never a default. Filters and signing live next door.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, Literal, NamedTuple, TypeAlias

import orjson

from dma_bot.binance.errors import VenueError, parse_error
from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument

__all__ = [
    "CLIENT_ORDER_ID_PATTERN",
    "AccountUpdate",
    "AccountUpdateKind",
    "AssetBalance",
    "Ignored",
    "MarketControl",
    "MarketControlKind",
    "OrderState",
    "RateLimit",
    "ServerShutdown",
    "StreamTerminated",
    "UserEvent",
    "WsResponse",
    "build_cancel_order_params",
    "build_new_order_params",
    "build_query_order_params",
    "build_ws_request",
    "parse_cancel_response",
    "parse_error",
    "parse_market_frame",
    "parse_order_response",
    "parse_query_order",
    "parse_user_event",
    "parse_ws_message",
    "parse_ws_response",
]

CLIENT_ORDER_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,36}")
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_MAX_TEXT: Final = 40  # characters of a decimal string on the wire; Binance sends at most ~20
_POW10: Final = tuple(10**k for k in range(_MAX_TEXT + 1))
_MS: Final = 1_000_000
_MEMO_LIMIT: Final = 4096

# Order status X / status -> our ExecStatus. PENDING_NEW (a pending order-list leg) and PENDING_CANCEL
# ("currently unused", enums.md) are deliberately absent: see _exec_status.
_STATUS: Final[Mapping[str, ExecStatus]] = {
    "NEW": ExecStatus.ACK,
    "PARTIALLY_FILLED": ExecStatus.PARTIALLY_FILLED,
    "FILLED": ExecStatus.FILLED,
    "CANCELED": ExecStatus.CANCELED,
    "REJECTED": ExecStatus.REJECTED,
    "EXPIRED": ExecStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExecStatus.EXPIRED,  # expired by self-trade prevention
}
_EXECUTION_TYPES: Final = frozenset({"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION"})
_SIDES: Final[Mapping[str, Side]] = {"BUY": Side.BUY, "SELL": Side.SELL}
_TIME_IN_FORCE: Final = frozenset({"GTC", "IOC", "FOK", "LIMIT_MAKER"})
_RESPONSE_TYPES: Final = frozenset({"ACK", "RESULT", "FULL"})


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _loads(raw: bytes | str, what: str) -> dict:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{what}: a JSON object, was {_clip(raw)}") from None
    if type(obj) is not dict:
        raise ProtocolError(f"{what}: a JSON object, was {_clip(obj)}")
    return obj


def _object(raw: bytes | str | Mapping, what: str) -> Mapping:
    return raw if isinstance(raw, Mapping) else _loads(raw, what)


# -- exact decimal strings -> integer grid units -------------------------------------------------------------


class _Grid:
    """Decimal strings -> integer multiples of one grid size, exactly.

    For a power-of-ten size (0.01, 0.00000100, 1) the text is read with one ``int()`` after dropping the
    point, and scaled: no Decimal on the hot path. Other sizes (0.5, 25) go through Decimal. Results are
    memoised per text (prices near the touch repeat); the memo is bounded and cleared when full. Off-grid,
    negative or malformed text raises ProtocolError naming ``where.key``.
    """

    __slots__ = ("_memo", "places", "size")

    def __init__(self, size: Decimal) -> None:
        self.size = size
        sign, digits, exponent = size.normalize().as_tuple()
        power_of_ten = not sign and digits == (1,) and isinstance(exponent, int) and -_MAX_TEXT <= exponent <= 0
        self.places: int | None = -exponent if power_of_ten else None  # type: ignore[operator]
        self._memo: dict[str, int] = {}

    def units(self, text: object, where: str, key: str) -> int:
        if type(text) is not str:
            raise ProtocolError(f"{where}.{key}: a decimal string, was {_clip(text)}")
        memo = self._memo
        units = memo.get(text)
        if units is None:
            units = self._parse(text, where, key)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[text] = units
        return units

    def _parse(self, text: str, where: str, key: str) -> int:
        if len(text) > _MAX_TEXT:
            raise ProtocolError(f"{where}.{key}: a decimal string of at most {_MAX_TEXT} characters, was {_clip(text)}")
        places = self.places
        digits = text.replace(".", "", 1)
        if places is not None and digits.isdigit() and digits.isascii() and text[0] != ".":
            dot = text.find(".")
            extra = len(digits) - dot - places if dot > 0 else -places
            if extra <= 0:
                return int(digits) * _POW10[-extra]
            units, rest = divmod(int(digits), _POW10[extra])
            if rest:
                raise ProtocolError(f"{where}.{key}: a multiple of {self.size}, was {text!r}")
            return units
        if _NUMBER.fullmatch(text) is None:
            raise ProtocolError(f"{where}.{key}: a non-negative decimal string, was {_clip(text)}")
        units_decimal = Decimal(text) / self.size
        if units_decimal != units_decimal.to_integral_value():
            raise ProtocolError(f"{where}.{key}: a multiple of {self.size}, was {text!r}")
        return int(units_decimal)


_GRIDS: Final[dict[Decimal, _Grid]] = {}


def _grid(size: Decimal) -> _Grid:
    grid = _GRIDS.get(size)
    if grid is None:
        if len(_GRIDS) >= _MEMO_LIMIT:
            _GRIDS.clear()
        grid = _GRIDS[size] = _Grid(size)
    return grid


def _int(obj: Mapping, key: str, where: str) -> int:
    value = obj.get(key)
    if type(value) is not int:
        raise ProtocolError(f"{where}.{key}: an integer, was {_clip(value)}")
    return value


def _str(obj: Mapping, key: str, where: str) -> str:
    value = obj.get(key)
    if type(value) is not str or not value:
        raise ProtocolError(f"{where}.{key}: a non-empty string, was {_clip(value)}")
    return value


def _decimal(obj: Mapping, key: str, where: str) -> Decimal:
    raw = obj.get(key)
    try:
        if type(raw) is not str:
            raise TypeError
        value = Decimal(raw)
    except (TypeError, InvalidOperation):
        raise ProtocolError(f"{where}.{key}: a decimal string, was {_clip(raw)}") from None
    if not value.is_finite():
        raise ProtocolError(f"{where}.{key}: a finite decimal string, was {raw!r}")
    return value


def _side(value: object) -> Side | None:
    return _SIDES.get(value) if type(value) is str else None


def _instrument(symbols: Mapping[str, Instrument], symbol: str, where: str) -> Instrument:
    instrument = symbols.get(symbol)
    if instrument is None:
        raise ProtocolError(f"{where}.symbol: one of the configured symbols, was {symbol!r}")
    return instrument


def _exec_status(value: object, where: str) -> ExecStatus:
    status = _STATUS.get(value) if type(value) is str else None
    if status is None:
        raise ProtocolError(f"{where}: one of {', '.join(_STATUS)}, was {_clip(value)}")
    return status


# -- market streams ------------------------------------------------------------------------------------------


class MarketControlKind(StrEnum):
    REPLY = "reply"  # {"result": null, "id": 1}: SUBSCRIBE/UNSUBSCRIBE ok, or a LIST/GET_PROPERTY result
    ERROR = "error"  # {"code": 2, "msg": "Invalid request: ...", "id": 1}
    SERVER_SHUTDOWN = "server_shutdown"  # {"e": "serverShutdown", "E": ...}: reconnect as soon as possible


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketControl:
    """A market-stream frame that is not data: a control reply, a control error, or serverShutdown."""

    kind: MarketControlKind
    request_id: int | str | None = None
    result: object = None
    code: int | None = None
    message: str = ""
    ts_event_ns: int
    ts_ns: int


def parse_market_frame(
    raw: bytes | str, symbols: Mapping[str, Instrument], recv_ns: int
) -> Tick | MarketControl | None:
    """One market-stream frame, raw (``/ws/<s>``) or combined (``{"stream":..,"data":..}``).

    ``<symbol>@bookTicker`` ``{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",
    "a":"25.36520000","A":"40.66000000"}`` -> ``Tick`` in the symbol's ticks/steps; Spot bookTicker has no
    event time, so ``ts_event_ns == ts_ns == recv_ns`` (``u`` is not kept). Returns a
    :class:`MarketControl` for control replies, control errors and ``serverShutdown``, and None for a
    market payload this codec does not decode (trades, depth). An unknown symbol, an off-grid price or
    quantity, or an unrecognisable frame raises ProtocolError.
    """
    obj = _loads(raw, "market frame")
    data = obj.get("data")
    if data is not None:
        if type(data) is not dict or type(obj.get("stream")) is not str:
            raise ProtocolError(f"market frame.data: an object under a stream name, was {_clip(data)}")
        obj = data
    event = obj.get("e")
    if event is None:
        if "u" in obj:
            return _book_ticker(obj, symbols, recv_ns)
        return _market_control(obj, recv_ns)
    if event == "serverShutdown":
        ts = _int(obj, "E", "serverShutdown") * _MS
        return MarketControl(kind=MarketControlKind.SERVER_SHUTDOWN, ts_event_ns=ts, ts_ns=recv_ns)
    if type(event) is str:
        return None
    raise ProtocolError(f"market frame.e: an event name, was {_clip(event)}")


def _book_ticker(obj: dict, symbols: Mapping[str, Instrument], recv_ns: int) -> Tick:
    symbol = obj.get("s")
    instrument = symbols.get(symbol) if type(symbol) is str else None
    if instrument is None:
        raise ProtocolError(f"bookTicker.s: one of the configured symbols, was {_clip(symbol)}")
    price, qty = _grid(instrument.tick_size), _grid(instrument.step_size)
    get = obj.get
    bid, ask = price.units(get("b"), symbol, "b"), price.units(get("a"), symbol, "a")
    bid_qty, ask_qty = qty.units(get("B"), symbol, "B"), qty.units(get("A"), symbol, "A")
    return Tick._make((symbol, bid, ask, bid_qty, ask_qty, recv_ns, recv_ns))


def _market_control(obj: dict, recv_ns: int) -> MarketControl | None:
    request_id = obj.get("id")
    if request_id is not None and type(request_id) not in (int, str):
        raise ProtocolError(f"market control.id: an integer, a string or null, was {_clip(request_id)}")
    if "code" in obj:
        message = obj.get("msg")
        return MarketControl(
            kind=MarketControlKind.ERROR,
            request_id=request_id,
            code=_int(obj, "code", "market control"),
            message=message if type(message) is str else "",
            ts_event_ns=recv_ns,
            ts_ns=recv_ns,
        )
    if "result" in obj and "id" in obj:
        kind = MarketControlKind.REPLY
        return MarketControl(kind=kind, request_id=request_id, result=obj["result"], ts_event_ns=recv_ns, ts_ns=recv_ns)
    if "lastUpdateId" in obj:
        return None  # partial book depth: not decoded here
    raise ProtocolError(f"market frame: a bookTicker, a control reply or an event, was keys {sorted(obj)[:8]}")


# -- user data stream ----------------------------------------------------------------------------------------


class AccountUpdateKind(StrEnum):
    POSITION = "position"  # outboundAccountPosition: absolute free/locked of the assets that changed
    BALANCE_DELTA = "balance_delta"  # balanceUpdate: deposit, withdrawal, transfer (not trades)
    EXTERNAL_LOCK_DELTA = "external_lock_delta"  # externalLockUpdate: locked by an external system


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """``free``/``locked`` for POSITION; ``delta`` for the two delta kinds (other fields 0)."""

    asset: str
    free: Decimal
    locked: Decimal
    delta: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdate:
    venue: str
    kind: AccountUpdateKind
    balances: tuple[AssetBalance, ...]
    ts_event_ns: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTerminated:
    """``eventStreamTerminated``: the subscription ended (logout/unsubscribe); resubscribe and reconcile."""

    venue: str
    ts_event_ns: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerShutdown:
    """``serverShutdown`` on the WS API connection: open a new one as soon as possible."""

    venue: str
    ts_event_ns: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """A well-formed user event the engine does not act on, with the reason (record it, count it)."""

    venue: str
    event_type: str
    reason: str
    ts_ns: int


UserEvent: TypeAlias = ExecReport | AccountUpdate | StreamTerminated | ServerShutdown | Ignored


def parse_user_event(
    raw: bytes | str | Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int
) -> UserEvent:
    """One user-data event, bare or in the WS API wrapper ``{"subscriptionId":0,"event":{...}}``.

    ``executionReport`` -> :class:`ExecReport`: status from ``X`` (NEW->ACK, EXPIRED_IN_MATCH->EXPIRED),
    quantities in steps (``l`` this fill, ``z`` cumulative, leaves ``q - z``, 0 once terminal), ``L`` in
    ticks, side from ``S``, fee ``n`` in ``N`` (null -> ""), trade id ``str(t)`` or None for -1, reason ``r``
    (or ``eR`` when ``r`` is NONE; NONE -> ""), client id ``C`` when non-empty (a cancel's own id is ``c``)
    else ``c``, ``ts_event_ns = E`` ms. A report for a symbol not in ``symbols`` and a ``PENDING_NEW`` order
    list leg are :class:`Ignored`; ``PENDING_CANCEL`` or any unknown status raises ProtocolError.
    """
    obj = _object(raw, "user event")
    if "event" in obj:
        event = obj["event"]
        if type(event) is not dict:
            raise ProtocolError(f"user event.event: an object, was {_clip(event)}")
    elif "status" in obj and "id" in obj:
        raise ProtocolError("user event: an event, was a WS API response (use parse_ws_response)")
    else:
        event = obj
    kind = event.get("e")
    handler = _USER_HANDLERS.get(kind) if type(kind) is str else None
    if handler is not None:
        return handler(event, venue, symbols, recv_ns)
    if type(kind) is str and kind:
        return Ignored(venue=venue, event_type=kind, reason="event type not decoded by dma_bot", ts_ns=recv_ns)
    raise ProtocolError(f"user event.e: an event name, was {_clip(kind)}")


def _execution_report(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
    where = "executionReport"
    symbol = _str(ev, "s", where)
    instrument = symbols.get(symbol)
    if instrument is None:
        return Ignored(venue=venue, event_type=where, reason=f"symbol {symbol} is not traded here", ts_ns=recv_ns)
    execution_type = ev.get("x")
    if type(execution_type) is not str or execution_type not in _EXECUTION_TYPES:
        raise ProtocolError(f"{where}.x: one of {', '.join(sorted(_EXECUTION_TYPES))}, was {_clip(execution_type)}")
    if ev.get("X") == "PENDING_NEW":
        return Ignored(venue=venue, event_type=where, reason="PENDING_NEW: a pending order-list leg", ts_ns=recv_ns)
    status = _exec_status(ev.get("X"), f"{where}.X")
    side = _side(ev.get("S"))
    if side is None:
        raise ProtocolError(f"{where}.S: BUY or SELL, was {_clip(ev.get('S'))}")
    where = f"{where} {symbol}"
    qty, price = _grid(instrument.step_size), _grid(instrument.tick_size)
    order_qty = qty.units(ev.get("q"), where, "q")
    last_qty = qty.units(ev.get("l"), where, "l")
    cum_qty = qty.units(ev.get("z"), where, "z")
    if not last_qty <= cum_qty <= order_qty:
        raise ProtocolError(f"{where}.z: l <= z <= q, was l={ev['l']} z={ev['z']} q={ev['q']}")
    trade = _int(ev, "t", where)
    if execution_type == "TRADE" and (trade < 0 or last_qty == 0):
        raise ProtocolError(f"{where}.t: a trade (x=TRADE) has a trade id and l > 0, was t={trade} l={ev['l']}")
    fee_asset = ev.get("N")
    if fee_asset is not None and type(fee_asset) is not str:
        raise ProtocolError(f"{where}.N: an asset or null, was {_clip(fee_asset)}")
    original_id = ev.get("C")
    client_order_id = original_id if type(original_id) is str and original_id else _str(ev, "c", where)
    return ExecReport(
        venue=venue,
        symbol=symbol,
        client_order_id=client_order_id,
        venue_order_id=str(_int(ev, "i", where)),
        side=side,
        status=status,
        order_qty=order_qty,
        last_qty=last_qty,
        last_price=price.units(ev.get("L"), where, "L"),
        cum_qty=cum_qty,
        leaves_qty=0 if status.is_terminal else order_qty - cum_qty,
        fee=_decimal(ev, "n", where),
        fee_asset=fee_asset or "",
        trade_id=None if trade == -1 else str(trade),
        reason=_reason(ev.get("r"), ev.get("eR")),
        ts_event_ns=_int(ev, "E", where) * _MS,
        ts_ns=recv_ns,
    )


def _reason(reject: object, expiry: object) -> str:
    for value in (reject, expiry):
        if type(value) is str and value != "NONE":
            return value
    return ""


def _account_position(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
    where = "outboundAccountPosition"
    rows = ev.get("B")
    if type(rows) is not list:
        raise ProtocolError(f"{where}.B: a list, was {_clip(rows)}")
    zero = Decimal(0)
    balances = []
    for row in rows:
        if type(row) is not dict:
            raise ProtocolError(f"{where}.B[]: objects, was {_clip(row)}")
        asset = _str(row, "a", f"{where}.B[]")
        row_where = f"{where}.B[{asset}]"
        balances.append(AssetBalance(asset, _decimal(row, "f", row_where), _decimal(row, "l", row_where), zero))
    ts = _int(ev, "E", where) * _MS
    kind = AccountUpdateKind.POSITION
    return AccountUpdate(venue=venue, kind=kind, balances=tuple(balances), ts_event_ns=ts, ts_ns=recv_ns)


_Handler: TypeAlias = Callable[[Mapping, str, Mapping[str, Instrument], int], UserEvent]


def _delta(kind: AccountUpdateKind, where: str) -> _Handler:
    def handler(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
        zero = Decimal(0)
        balance = AssetBalance(_str(ev, "a", where), zero, zero, _decimal(ev, "d", where))
        ts = _int(ev, "E", where) * _MS
        return AccountUpdate(venue=venue, kind=kind, balances=(balance,), ts_event_ns=ts, ts_ns=recv_ns)

    return handler


def _terminated(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
    return StreamTerminated(venue=venue, ts_event_ns=_int(ev, "E", "eventStreamTerminated") * _MS, ts_ns=recv_ns)


def _shutdown(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
    return ServerShutdown(venue=venue, ts_event_ns=_int(ev, "E", "serverShutdown") * _MS, ts_ns=recv_ns)


def _order_list(ev: Mapping, venue: str, symbols: Mapping[str, Instrument], recv_ns: int) -> UserEvent:
    return Ignored(venue=venue, event_type="listStatus", reason="order lists are not used by dma_bot", ts_ns=recv_ns)


_USER_HANDLERS: Final[Mapping[str, _Handler]] = {
    "executionReport": _execution_report,
    "outboundAccountPosition": _account_position,
    "balanceUpdate": _delta(AccountUpdateKind.BALANCE_DELTA, "balanceUpdate"),
    "externalLockUpdate": _delta(AccountUpdateKind.EXTERNAL_LOCK_DELTA, "externalLockUpdate"),
    "eventStreamTerminated": _terminated,
    "serverShutdown": _shutdown,
    "listStatus": _order_list,
}


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


# -- WebSocket API -------------------------------------------------------------------------------------------


class RateLimit(NamedTuple):
    rate_limit_type: str  # REQUEST_WEIGHT, ORDERS, RAW_REQUESTS
    interval: str  # SECOND, MINUTE, HOUR, DAY
    interval_num: int
    limit: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WsResponse:
    """``{"id":..,"status":200,"result":{..},"rateLimits":[..]}`` or the same with ``"error"`` instead."""

    id: int | str | None
    status: int
    result: object
    error: VenueError | None
    rate_limits: tuple[RateLimit, ...]

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


def _ws_default(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    raise TypeError(f"WS API params: str, int, bool or finite Decimal, was {type(value).__name__}")


def build_ws_request(request_id: int | str, method: str, params: Mapping[str, object] | None = None) -> bytes:
    """``{"id":..,"method":..,"params":{..}}`` as bytes; Decimals are sent as plain decimal strings."""
    if type(request_id) is str:
        if not 0 < len(request_id) <= 36:
            raise ValueError(f"request id: 1 to 36 characters, was {request_id!r}")
    elif type(request_id) is not int:
        raise ValueError(f"request id: an int or a string, was {request_id!r}")
    if type(method) is not str or not method:
        raise ValueError(f"method: a WS API method name, was {method!r}")
    message: dict[str, object] = {"id": request_id, "method": method}
    if params is not None:
        for key, value in params.items():
            if type(value) is float:
                raise ValueError(f"params.{key}: money is never a float (use str or Decimal), was {value!r}")
        message["params"] = dict(params)
    return orjson.dumps(message, default=_ws_default)


def parse_ws_response(raw: bytes | str | Mapping) -> WsResponse:
    """A WS API response; an error response carries a :class:`VenueError` (with ``retry_at_ms`` when given)."""
    where = "WS API response"
    obj = _object(raw, where)
    request_id = obj.get("id")
    if request_id is not None and type(request_id) not in (int, str):
        raise ProtocolError(f"{where}.id: an integer, a string or null, was {_clip(request_id)}")
    status = _int(obj, "status", where)
    rows = obj.get("rateLimits", [])
    if type(rows) is not list:
        raise ProtocolError(f"{where}.rateLimits: a list, was {_clip(rows)}")
    limits = []
    for row in rows:
        if type(row) is not dict:
            raise ProtocolError(f"{where}.rateLimits[]: objects, was {_clip(row)}")
        w = f"{where}.rateLimits[]"
        kind, interval = _str(row, "rateLimitType", w), _str(row, "interval", w)
        numbers = (_int(row, key, w) for key in ("intervalNum", "limit", "count"))
        limits.append(RateLimit(kind, interval, *numbers))
    error = None
    if "error" in obj:
        body = obj["error"]
        if type(body) is not dict:
            raise ProtocolError(f"{where}.error: an object, was {_clip(body)}")
        data = body.get("data")
        retry_at = data.get("retryAfter") if type(data) is dict else None
        error = VenueError(
            _int(body, "code", f"{where}.error"),
            _str(body, "msg", f"{where}.error"),
            status,
            retry_at_ms=retry_at if type(retry_at) is int else None,
        )
    elif not 200 <= status < 300:
        raise ProtocolError(f"{where}.error: present when status is {status}, was missing")
    return WsResponse(id=request_id, status=status, result=obj.get("result"), error=error, rate_limits=tuple(limits))


def parse_ws_message(
    raw: bytes | str, venue: str, symbols: Mapping[str, Instrument], recv_ns: int
) -> WsResponse | UserEvent:
    """Anything the WS API connection sends: a response to one of our requests, or a pushed event."""
    obj = _loads(raw, "WS API message")
    if "event" in obj:
        return parse_user_event(obj, venue, symbols, recv_ns)
    if "status" in obj:
        return parse_ws_response(obj)
    raise ProtocolError(f"WS API message: a response or an event, was keys {sorted(obj)[:8]}")
