"""Reading the JSONL audit trail back: a line to its record dict, a record to the exact event it was made from.

The inverse of :mod:`dma_bot.recorder.jsonl` (which owns the layout): ``to_event(decode_record(line),
instruments) == event`` for every line the encoder writes (a column batch's lines give its rows one by one).
Off-grid prices, mistyped fields and unknown types are a ProtocolError naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final

import orjson

from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, NoteKind, RejectReason, Side
from dma_bot.model.events import ExecReport, Note, Order, RiskReject, Route, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import EVENT_TYPES, RECORD_TYPES, SCHEMA_VERSION, Event

__all__ = ["decode_record", "to_event"]

_PARSE_CONTEXT: Final = Context(prec=60)


def decode_record(line: bytes | str) -> dict[str, Any]:
    """One JSONL line -> its record dict, checked for a known ``type`` and schema version 1."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(f"JSONL line: must be one JSON object, was {line[:80]!r}") from e
    if not isinstance(record, dict):
        raise ProtocolError(f"JSONL line: must be one JSON object, was {line[:80]!r}")
    type_ = record.get("type")
    if type_ not in RECORD_TYPES:
        raise ProtocolError(f"JSONL type: must be one of {', '.join(RECORD_TYPES)}, was {type_!r}")
    if record.get("v") != SCHEMA_VERSION:
        raise ProtocolError(f"JSONL v: must be {SCHEMA_VERSION}, was {record.get('v')!r}")
    return record


def to_event(record: Mapping[str, Any], instruments: Mapping[str, Instrument]) -> Event:
    """A decoded event record -> the exact event it was encoded from (control records are refused)."""
    type_ = record.get("type")
    build = _BUILDERS.get(type_)
    if build is None:
        raise ProtocolError(f"JSONL type: must be an event type ({', '.join(EVENT_TYPES)}), was {type_!r}")
    try:
        return build(record, instruments)
    except KeyError as e:
        raise ProtocolError(f"JSONL {type_} record seq={record.get('seq')}: missing field {e}") from e
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"JSONL {type_} record seq={record.get('seq')}: {e}") from e


@functools.lru_cache(maxsize=256)
def _places(size: Decimal) -> int | None:
    """Decimal places of a grid size that is exactly 10**-k, else None."""
    sign, digits, exponent = size.normalize().as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        return None
    return -exponent


def _units(text: object, size: Decimal, places: int | None, field: str) -> int:
    """A grid string -> its exact count of ``size`` (``places`` = _places(size)); off-grid is an error."""
    if not isinstance(text, str):
        raise ProtocolError(f"JSONL {field}: must be a decimal string, was {text!r}")
    if places == 0:
        digits = text
    elif places is not None and len(text) > places + 1 and text[-places - 1] == ".":
        digits = text.replace(".", "", 1)
    else:
        digits = ""
    if digits:
        try:
            return int(digits)
        except ValueError:
            pass
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise ProtocolError(f"JSONL {field}: must be a decimal string, was {text!r}") from e
    units = _PARSE_CONTEXT.divide(value, size) if value.is_finite() else value
    if not units.is_finite() or units != units.to_integral_value():
        raise ProtocolError(f"JSONL {field}: must be a multiple of {size}, was {text!r}")
    return int(units)


def _int(record: Mapping[str, Any], field: str) -> int:
    value = record[field]
    if type(value) is not int:
        raise ProtocolError(f"JSONL {field}: must be an integer, was {value!r}")
    return value


def _instrument(record: Mapping[str, Any], instruments: Mapping[str, Instrument]) -> Instrument:
    symbol = record["symbol"]
    instrument = instruments.get(symbol)
    if instrument is None:
        raise ProtocolError(f"JSONL symbol: must be a known instrument, was {symbol!r}")
    return instrument


class _Grid:
    """One record's instrument with its grid sizes and their decimal places, looked up once."""

    __slots__ = ("price_places", "qty_places", "step_size", "tick_size")

    def __init__(self, record: Mapping[str, Any], instruments: Mapping[str, Instrument]) -> None:
        instrument = _instrument(record, instruments)
        self.tick_size = instrument.tick_size
        self.step_size = instrument.step_size
        self.price_places = _places(instrument.tick_size)
        self.qty_places = _places(instrument.step_size)

    def price(self, record: Mapping[str, Any], field: str) -> int:
        return _units(record[field], self.tick_size, self.price_places, field)

    def qty(self, record: Mapping[str, Any], field: str) -> int:
        return _units(record[field], self.step_size, self.qty_places, field)


_Record = Mapping[str, Any]
_Instruments = Mapping[str, Instrument]


def _md_event(r: _Record, instruments: _Instruments) -> Tick:
    grid = _Grid(r, instruments)
    return Tick(r["symbol"], grid.price(r, "bid"), grid.price(r, "ask"), grid.qty(r, "bid_qty"),
                grid.qty(r, "ask_qty"), _int(r, "ts_event_ns"), _int(r, "ts_ns"))


def _sig_event(r: _Record, instruments: _Instruments) -> Signal:
    grid = _Grid(r, instruments)
    return Signal(r["strategy"], r["symbol"], Side(r["side"]), grid.price(r, "price"), grid.qty(r, "quantity"),
                  _int(r, "ts_event_ns"), _int(r, "ts_ns"))


def _reject_event(r: _Record, instruments: _Instruments) -> RiskReject:
    grid = _Grid(r, instruments)
    return RiskReject(r["strategy"], r["symbol"], Side(r["side"]), grid.price(r, "price"),
                      grid.qty(r, "quantity"), RejectReason(r["reason"]), r["detail"], _int(r, "ts_signal_ns"),
                      _int(r, "ts_ns"))


def _ord_event(r: _Record, instruments: _Instruments) -> Order:
    grid = _Grid(r, instruments)
    return Order(client_order_id=r["client_order_id"], strategy=r["strategy"], symbol=r["symbol"],
                 side=Side(r["side"]), price=grid.price(r, "price"), quantity=grid.qty(r, "quantity"),
                 ts_signal_ns=_int(r, "ts_signal_ns"), ts_ns=_int(r, "ts_ns"))


def _route_event(r: _Record, instruments: _Instruments) -> Route:
    grid = _Grid(r, instruments)
    return Route(venue=r["venue"], client_order_id=r["client_order_id"], parent_order_id=r["parent_order_id"],
                 strategy=r["strategy"], symbol=r["symbol"], side=Side(r["side"]), price=grid.price(r, "price"),
                 quantity=grid.qty(r, "quantity"), ts_signal_ns=_int(r, "ts_signal_ns"), ts_ns=_int(r, "ts_ns"))


def _exec_event(r: _Record, instruments: _Instruments) -> ExecReport:
    grid = _Grid(r, instruments)
    fee_text = r["fee"]
    try:
        if not isinstance(fee_text, str):
            raise InvalidOperation
        fee = Decimal(fee_text)
    except InvalidOperation as e:
        raise ProtocolError(f"JSONL fee: must be a decimal string, was {fee_text!r}") from e
    return ExecReport(
        venue=r["venue"], symbol=r["symbol"], client_order_id=r["client_order_id"],
        venue_order_id=r["venue_order_id"], side=Side(r["side"]), status=ExecStatus(r["status"]),
        order_qty=grid.qty(r, "order_qty"), last_qty=grid.qty(r, "last_qty"), last_price=grid.price(r, "last_px"),
        cum_qty=grid.qty(r, "cum_qty"),
        leaves_qty=grid.qty(r, "leaves_qty"), fee=fee, fee_asset=r["fee_asset"], trade_id=r["trade_id"],
        reason=r["reason"], ts_event_ns=_int(r, "ts_event_ns"), ts_ns=_int(r, "ts_ns"),
    )


def _note_event(r: _Record, instruments: _Instruments) -> Note:
    texts = {name: r[name] for name in ("venue", "symbol", "client_order_id", "detail")}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise ProtocolError(f"JSONL Note {name}: must be a string, was {value!r}")
    return Note(kind=NoteKind(r["kind"]), ts_ns=_int(r, "ts_ns"), **texts)


_BUILDERS: Final[dict[str, Callable[[_Record, _Instruments], Event]]] = {
    "Md": _md_event,
    "Sig": _sig_event,
    "Ord": _ord_event,
    "Route": _route_event,
    "Exec": _exec_event,
    "Reject": _reject_event,
    "Note": _note_event,
}
