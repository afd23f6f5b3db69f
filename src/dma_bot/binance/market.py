"""Binance market-stream frames (raw and combined bookTicker, control replies, serverShutdown) -> Ticks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from dma_bot.binance.wire import _MS, _clip, _grid, _int, _loads
from dma_bot.errors import ProtocolError
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument

__all__ = ["MarketControl", "MarketControlKind", "parse_market_frame"]


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
