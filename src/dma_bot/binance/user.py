"""Binance user-data events (executionReport, account updates, stream termination) -> ExecReports and friends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeAlias

from dma_bot.binance.wire import _EXECUTION_TYPES, _MS, _clip, _decimal, _exec_status, _grid, _int, _object, _side, _str
from dma_bot.errors import ProtocolError
from dma_bot.model.events import ExecReport
from dma_bot.model.instrument import Instrument

__all__ = [
    "AccountUpdate",
    "AccountUpdateKind",
    "AssetBalance",
    "Ignored",
    "ServerShutdown",
    "StreamTerminated",
    "UserEvent",
    "parse_user_event",
]


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
