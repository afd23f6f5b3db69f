"""Reading the JSONL audit trail back: a line to its record dict, a record to the exact event it was made from.

The inverse of :mod:`dma_bot.recorder.jsonl` (which owns the layout): ``to_event(decode_record(line),
instruments) == event`` for every line the encoder writes (a column batch's lines give its rows one by one).
Off-grid prices, mistyped fields and unknown types are a ProtocolError naming the field.

``decode_record`` is strict: one bad line is an error. A file, though, may hold a line cut short by a full
disk or a crash (``recorder.writer`` then starts the next section on a new line, its ``Start`` saying
``"previous_section": {"torn_line": true, ...}``), so :func:`iter_records` and :func:`read_records` skip a
line that is not a record and count it in :class:`SkippedLines` with its line number and a
:class:`SkipReason`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import orjson

from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, NoteKind, RejectReason, Side
from dma_bot.model.events import AccountSnapshot, ExecReport, Note, Order, RiskReject, Route, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import EVENT_TYPES, RECORD_TYPES, SCHEMA_VERSION, Event

__all__ = [
    "MAX_SKIPPED_LINE_NUMBERS",
    "SkipReason",
    "SkippedLines",
    "decode_record",
    "grid_places",
    "grid_units",
    "iter_records",
    "read_records",
    "to_event",
]

_PARSE_CONTEXT: Final = Context(prec=60)
MAX_SKIPPED_LINE_NUMBERS: Final = 1000
"""Skipped lines whose numbers :class:`SkippedLines` keeps (the counts go on)."""


def decode_record(line: bytes | str) -> dict[str, Any]:
    """One JSONL line -> its record dict, checked for a known ``type`` and schema version 1."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(f"JSONL line: must be one JSON object, was {line[:80]!r}") from e
    problem = _record_problem(record, line)
    if problem is not None:
        raise ProtocolError(problem)
    return record


def _record_problem(record: object, line: bytes | str) -> str | None:
    """Why a parsed line is not a record of this schema (the ProtocolError text), None if it is one."""
    if not isinstance(record, dict):
        return f"JSONL line: must be one JSON object, was {line[:80]!r}"
    type_ = record.get("type")
    if type_ not in RECORD_TYPES:
        return f"JSONL type: must be one of {', '.join(RECORD_TYPES)}, was {type_!r}"
    if record.get("v") != SCHEMA_VERSION:
        return f"JSONL v: must be {SCHEMA_VERSION}, was {record.get('v')!r}"
    return None


class SkipReason(StrEnum):
    TORN = "torn"
    """Not JSON, and cut short: the file's last line without its newline, or the line just before a
    ``Start`` whose ``previous_section`` says ``torn_line``."""
    NOT_JSON = "not_json"
    """Any other line that is not JSON (an empty line included)."""
    NOT_A_RECORD = "not_a_record"
    """JSON, but not an object with a known ``type`` and ``v`` 1."""


@dataclass(slots=True)
class SkippedLines:
    """The lines a reader skipped: ``counts`` per reason, and ``lines``, the (1-based line number, reason)
    of the first :data:`MAX_SKIPPED_LINE_NUMBERS` of them, in file order."""

    counts: dict[SkipReason, int] = field(default_factory=lambda: dict.fromkeys(SkipReason, 0))
    lines: list[tuple[int, SkipReason]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, line_number: int, reason: SkipReason) -> None:
        self.counts[reason] += 1
        if len(self.lines) < MAX_SKIPPED_LINE_NUMBERS:
            self.lines.append((line_number, reason))


def _says_torn_before(record: object) -> bool:
    """``record`` is a Start whose previous section ended inside a line."""
    if not isinstance(record, dict) or record.get("type") != "Start":
        return False
    previous = record.get("previous_section")
    return isinstance(previous, dict) and previous.get("torn_line") is True


def iter_records(lines: Iterable[bytes], skipped: SkippedLines) -> Iterator[dict[str, Any]]:
    """The records of ``lines`` in order, as :func:`decode_record` checks them; a line that is not a record
    is skipped and counted in ``skipped``. Lines keep their b"\\n" (a file opened ``"rb"`` gives them so,
    or ``splitlines(keepends=True)``): a last line without it was cut short. A line that is not JSON is
    classified once the next line has been read."""
    unparsed: int | None = None  # number of the last line that was not JSON, waiting for the next line
    unterminated = False
    for number, line in enumerate(lines, 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if unparsed is not None:
                skipped.add(unparsed, SkipReason.NOT_JSON)
            unparsed, unterminated = number, not line.endswith(b"\n")
            continue
        if unparsed is not None:
            skipped.add(unparsed, SkipReason.TORN if _says_torn_before(record) else SkipReason.NOT_JSON)
            unparsed = None
        if _record_problem(record, line) is not None:
            skipped.add(number, SkipReason.NOT_A_RECORD)
            continue
        yield record
    if unparsed is not None:
        skipped.add(unparsed, SkipReason.TORN if unterminated else SkipReason.NOT_JSON)


def read_records(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], SkippedLines]:
    """Every record of the file at ``path`` and the lines skipped (see :func:`iter_records`); the file is
    streamed line by line, the records are returned as one list."""
    skipped = SkippedLines()
    with open(path, "rb") as file:
        records = list(iter_records(file, skipped))
    return records, skipped


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
def grid_places(size: Decimal) -> int | None:
    """Decimal places of a grid size that is exactly 10**-k, else None."""
    sign, digits, exponent = size.normalize().as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        return None
    return -exponent


def grid_units(text: object, size: Decimal, places: int | None, field: str) -> int:
    """A grid string -> its exact count of ``size`` (``places`` = grid_places(size)); off-grid is an error."""
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
        self.price_places = grid_places(instrument.tick_size)
        self.qty_places = grid_places(instrument.step_size)

    def price(self, record: Mapping[str, Any], field: str) -> int:
        return grid_units(record[field], self.tick_size, self.price_places, field)

    def qty(self, record: Mapping[str, Any], field: str) -> int:
        return grid_units(record[field], self.step_size, self.qty_places, field)


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


def _amount(text: object, field: str) -> Decimal:
    try:
        if not isinstance(text, str):
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation as e:
        raise ProtocolError(f"JSONL {field}: must be a decimal string, was {text!r}") from e
    if not value.is_finite():
        raise ProtocolError(f"JSONL {field}: must be a finite decimal string, was {text!r}")
    return value


def _account_event(r: _Record, instruments: _Instruments) -> AccountSnapshot:
    venue, balances, ids = r["venue"], r["balances"], r["open_order_ids"]
    if not isinstance(venue, str):
        raise ProtocolError(f"JSONL Account venue: must be a string, was {venue!r}")
    if not isinstance(balances, dict):
        raise ProtocolError(f"JSONL Account balances: must be an object of asset -> decimal string, was {balances!r}")
    if not isinstance(ids, list) or not all(isinstance(cid, str) for cid in ids):
        raise ProtocolError(f"JSONL Account open_order_ids: must be a list of strings, was {ids!r}")
    amounts = {asset: _amount(text, f"Account balances.{asset}") for asset, text in balances.items()}
    return AccountSnapshot(venue=venue, balances=MappingProxyType(amounts), open_order_ids=tuple(ids),
                           ts_ns=_int(r, "ts_ns"))


_BUILDERS: Final[dict[str, Callable[[_Record, _Instruments], Event]]] = {
    "Md": _md_event,
    "Sig": _sig_event,
    "Ord": _ord_event,
    "Route": _route_event,
    "Exec": _exec_event,
    "Reject": _reject_event,
    "Note": _note_event,
    "Account": _account_event,
}
