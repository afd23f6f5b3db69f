"""Fault specs for the simulated exchange: the kinds, their checked fields, and the script format. Pure.

It owns :class:`Fault` (one checked spec), :func:`parse_fault` (a JSON object in, a one-line
:class:`FaultSpecError` naming the field for anything it refuses) and :func:`parse_script` (JSON lines of
``{"at_s": S, "fault": {...}}``). What each kind does, and the plan that applies them, are
:mod:`dma_bot.exchange_sim.faults`'.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

__all__ = [
    "DROP_KINDS",
    "ONE_SHOT_KINDS",
    "REQUEST_KINDS",
    "SERVER_ERROR_MESSAGES",
    "Channel",
    "Fault",
    "FaultKind",
    "FaultSpecError",
    "MalformedStyle",
    "ReorderMode",
    "ScheduledFault",
    "Surface",
    "Then",
    "parse_fault",
    "parse_script",
]

_NS: Final = 1_000_000_000


class FaultSpecError(ValueError):
    """A bad fault spec: one line, ``<field>: <what is allowed>, was <value>``."""


class FaultKind(StrEnum):
    MARKET_DROP = "market.drop"
    MARKET_SILENT = "market.silent"
    MARKET_MALFORMED = "market.malformed"
    MARKET_DUPLICATE = "market.duplicate"
    MARKET_OUT_OF_ORDER = "market.out_of_order"
    USER_DROP = "user.drop"
    USER_SILENT = "user.silent"
    USER_DUPLICATE = "user.duplicate"
    USER_OUT_OF_ORDER = "user.out_of_order"
    USER_EXPIRE = "user.expire"
    REQUEST_SERVER_ERROR = "request.server_error"
    REQUEST_RATE_LIMITED = "request.rate_limited"
    REQUEST_BANNED = "request.banned"
    REQUEST_TIMESTAMP = "request.timestamp"
    REQUEST_TIMEOUT = "request.timeout"
    ORDERS_WIPE = "orders.wipe"


class Channel(StrEnum):
    MARKET = "market"
    USER = "user"


class Surface(StrEnum):
    REST = "rest"
    WS_API = "ws_api"


class MalformedStyle(StrEnum):
    TRUNCATED = "truncated"  # the first half of the frame's text: not JSON
    BAD_PRICE = "bad_price"  # valid JSON, bid price "not-a-price"
    MISSING_FIELD = "missing_field"  # valid JSON without the bid price "b"


class ReorderMode(StrEnum):
    TRADE_AFTER_TERMINAL = "trade_after_terminal"
    SWAP = "swap"


class Then(StrEnum):
    ANSWER = "answer"
    DROP = "drop"


REQUEST_KINDS: Final = frozenset(
    {
        FaultKind.REQUEST_SERVER_ERROR,
        FaultKind.REQUEST_RATE_LIMITED,
        FaultKind.REQUEST_BANNED,
        FaultKind.REQUEST_TIMESTAMP,
        FaultKind.REQUEST_TIMEOUT,
    }
)
ONE_SHOT_KINDS: Final = frozenset({FaultKind.USER_EXPIRE, FaultKind.ORDERS_WIPE})
DROP_KINDS: Final = {Channel.MARKET: FaultKind.MARKET_DROP, Channel.USER: FaultKind.USER_DROP}
_LIMITS: Final = frozenset({"times", "for_s"})
_MATCH: Final = frozenset({"surface", "method", "path"})
_FIELDS: Final[Mapping[FaultKind, frozenset[str]]] = {
    FaultKind.MARKET_DROP: _LIMITS,
    FaultKind.MARKET_SILENT: frozenset({"for_s", "symbol"}),
    FaultKind.MARKET_MALFORMED: _LIMITS | {"symbol", "style"},
    FaultKind.MARKET_DUPLICATE: _LIMITS | {"symbol"},
    FaultKind.MARKET_OUT_OF_ORDER: _LIMITS | {"symbol"},
    FaultKind.USER_DROP: _LIMITS,
    FaultKind.USER_SILENT: frozenset({"for_s"}),
    FaultKind.USER_DUPLICATE: _LIMITS | {"exec_type"},
    FaultKind.USER_OUT_OF_ORDER: _LIMITS | {"mode", "exec_type"},
    FaultKind.USER_EXPIRE: frozenset(),
    FaultKind.REQUEST_SERVER_ERROR: _LIMITS | _MATCH | {"status", "code", "executed"},
    FaultKind.REQUEST_RATE_LIMITED: _LIMITS | _MATCH | {"retry_after_s", "code"},
    FaultKind.REQUEST_BANNED: _LIMITS | _MATCH | {"retry_after_s"},
    FaultKind.REQUEST_TIMESTAMP: _LIMITS | _MATCH | {"ahead"},
    FaultKind.REQUEST_TIMEOUT: _LIMITS | _MATCH | {"hold_s", "then", "executed"},
    FaultKind.ORDERS_WIPE: frozenset({"symbol"}),
}
_REQUIRED: Final[Mapping[FaultKind, tuple[str, ...]]] = {
    FaultKind.MARKET_SILENT: ("for_s",),
    FaultKind.USER_SILENT: ("for_s",),
    FaultKind.USER_OUT_OF_ORDER: ("mode",),
    FaultKind.REQUEST_SERVER_ERROR: ("status",),
    FaultKind.REQUEST_RATE_LIMITED: ("retry_after_s",),
    FaultKind.REQUEST_BANNED: ("retry_after_s",),
    FaultKind.REQUEST_TIMEOUT: ("hold_s", "then"),
}
SERVER_ERROR_MESSAGES: Final = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
}
_DEFAULT_SERVER_CODE: Final = {500: -1000, 503: -1008, 504: -1007}
_HTTP_METHODS: Final = ("GET", "POST", "PUT", "DELETE")
_EXEC_TYPES: Final = ("NEW", "TRADE", "CANCELED", "EXPIRED", "REJECTED")
_SYMBOL_RE: Final = re.compile(r"^[A-Z0-9]{2,20}$")
_MAX_WINDOW_S: Final = 86_400
_MAX_RETRY_AFTER_S: Final = 259_200  # Binance's longest ban: 3 days


# -- specs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One checked fault spec; durations in nanoseconds. Build it with :func:`parse_fault`."""

    kind: FaultKind
    times: int | None = None
    for_ns: int | None = None
    symbol: str | None = None
    style: MalformedStyle | None = None
    mode: ReorderMode | None = None
    exec_type: str | None = None
    surface: Surface | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    code: int | None = None
    retry_after_s: int | None = None
    ahead: bool = False
    hold_ns: int | None = None
    then: Then | None = None
    executed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The spec as :func:`parse_fault` takes it, defaults filled in."""
        allowed = _FIELDS[self.kind]
        spec: dict[str, Any] = {"kind": str(self.kind)}
        for name in sorted(allowed):
            if name == "for_s":
                value: Any = None if self.for_ns is None else self.for_ns / _NS
            elif name == "hold_s":
                value = None if self.hold_ns is None else self.hold_ns / _NS
            elif name == "executed" and self.then is Then.ANSWER:
                value = None  # a late answer is always executed
            else:
                value = getattr(self, name)
            if value is not None:
                spec[name] = str(value) if isinstance(value, StrEnum) else value
        return spec


def _shown(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _error(name: str, allowed: str, value: object) -> FaultSpecError:
    return FaultSpecError(f"{name}: {allowed}, was {_shown(value)}")


def _int(spec: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = spec.get(name)
    if value is None and name not in spec:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _error(name, f"an integer from {low} to {high}", value)
    return value


def _seconds(spec: Mapping[str, Any], name: str, high: int) -> int | None:
    value = spec.get(name)
    if value is None and name not in spec:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= high
    ):
        raise _error(name, f"seconds > 0 and <= {high}", value)
    return round(value * _NS)


def _choice(spec: Mapping[str, Any], name: str, choices: Sequence[object]) -> Any:
    value = spec.get(name)
    if value is None and name not in spec:
        return None
    if isinstance(value, bool) or value not in choices:
        raise _error(name, "one of " + ", ".join(_shown(c) for c in choices), value)
    return value


def _bool(spec: Mapping[str, Any], name: str) -> bool:
    value = spec.get(name, False)
    if not isinstance(value, bool):
        raise _error(name, "true or false", value)
    return value


def _symbol(spec: Mapping[str, Any], symbols: Collection[str] | None) -> str | None:
    value = spec.get("symbol")
    if value is None and "symbol" not in spec:
        return None
    if symbols is not None:
        if not isinstance(value, str) or value not in symbols:
            raise _error("symbol", "one of " + ", ".join(sorted(symbols)), value)
    elif not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise _error("symbol", "an upper-case symbol such as BTCUSDT", value)
    return str(value)


def parse_fault(spec: object, *, symbols: Collection[str] | None = None) -> Fault:
    """Check a JSON fault spec; :class:`FaultSpecError` names the first bad field. ``symbols``: the listed ones."""
    if not isinstance(spec, Mapping):
        raise _error("fault", "a JSON object with a 'kind'", spec)
    kind_name = spec.get("kind")
    if kind_name not in FaultKind.__members__.values():
        raise _error("kind", "one of " + ", ".join(k.value for k in FaultKind), kind_name)
    kind = FaultKind(kind_name)
    allowed = _FIELDS[kind]
    for name in spec:
        if name != "kind" and name not in allowed:
            takes = ", ".join(sorted(allowed)) or "no other field"
            raise _error(str(name), f"not a field of {kind} (it takes {takes})", spec[name])
    for name in _REQUIRED.get(kind, ()):
        if spec.get(name) is None:
            raise FaultSpecError(f"{name}: required for {kind}, was absent")

    times = _int(spec, "times", 1, 1_000_000)
    for_ns = _seconds(spec, "for_s", _MAX_WINDOW_S)
    if times is None and for_ns is None and "times" in allowed and kind not in DROP_KINDS.values():
        times = 1
    status = code = None
    if kind is FaultKind.REQUEST_SERVER_ERROR:
        status = _choice(spec, "status", (500, 502, 503, 504))
        if status == 502:
            if "code" in spec:
                raise _error("code", "absent for status 502 (an edge's HTML page, no Binance body)", spec["code"])
        else:
            code = _choice(spec, "code", tuple(SERVER_ERROR_MESSAGES)) or _DEFAULT_SERVER_CODE[status]
    elif kind is FaultKind.REQUEST_RATE_LIMITED:
        code = _choice(spec, "code", (-1003, -1015)) or -1003
    surface, method, path = _match(spec, status)
    then = _choice(spec, "then", tuple(Then))
    if kind is FaultKind.REQUEST_TIMEOUT and then == Then.ANSWER and "executed" in spec:
        raise _error("executed", "absent for then 'answer' (a late answer is always executed)", spec["executed"])
    style = _choice(spec, "style", tuple(MalformedStyle))
    mode = _choice(spec, "mode", tuple(ReorderMode))
    exec_type = _choice(spec, "exec_type", _EXEC_TYPES)
    if mode == ReorderMode.TRADE_AFTER_TERMINAL and exec_type is not None:
        raise _error("exec_type", "absent for mode 'trade_after_terminal' (it holds TRADE reports)", exec_type)
    return Fault(
        kind=kind,
        times=times,
        for_ns=for_ns,
        symbol=_symbol(spec, symbols),
        style=MalformedStyle(style) if style else MalformedStyle.TRUNCATED if "style" in allowed else None,
        mode=ReorderMode(mode) if mode else None,
        exec_type=exec_type,
        surface=surface,
        method=method,
        path=path,
        status=status,
        code=code,
        retry_after_s=_int(spec, "retry_after_s", 1, _MAX_RETRY_AFTER_S),
        ahead=_bool(spec, "ahead"),
        hold_ns=_seconds(spec, "hold_s", 3600),
        then=Then(then) if then else None,
        executed=_bool(spec, "executed"),
    )


def _match(spec: Mapping[str, Any], status: int | None) -> tuple[Surface | None, str | None, str | None]:
    surface_name = _choice(spec, "surface", tuple(Surface))
    surface = Surface(surface_name) if surface_name else None
    path = spec.get("path")
    if path is not None or "path" in spec:
        if not isinstance(path, str) or not path.startswith("/api/v3/"):
            raise _error("path", "a REST path starting with /api/v3/", path)
        if surface is Surface.WS_API:
            raise _error("surface", "'rest' or absent with a path", surface_name)
        surface = Surface.REST
    method = spec.get("method")
    if method is not None or "method" in spec:
        if surface is None:
            raise _error("method", "given with 'surface' ('rest' or 'ws_api') or a 'path'", method)
        if surface is Surface.REST and method not in _HTTP_METHODS:
            raise _error("method", "one of " + ", ".join(_HTTP_METHODS) + " for surface 'rest'", method)
        if surface is Surface.WS_API and (not isinstance(method, str) or not method):
            raise _error("method", "a WebSocket API method name such as 'userDataStream.subscribe'", method)
    if status == 502:
        if surface is Surface.WS_API:
            raise _error("surface", "'rest' for status 502 (the WebSocket API has no HTML error page)", surface_name)
        surface = Surface.REST
    return surface, method, path


# -- scripts -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """One script line: add ``fault`` (or, when it is None, clear every rule) ``at_ns`` after start."""

    at_ns: int
    fault: Fault | None


def parse_script(text: str, source: str = "faults", *, symbols: Collection[str] | None = None) -> list[ScheduledFault]:
    """JSON lines of ``{"at_s": S, "fault": {...}}`` or ``{"at_s": S, "clear": true}``, ordered by time."""
    entries: list[ScheduledFault] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entries.append(_script_entry(stripped, symbols))
        except FaultSpecError as error:
            raise FaultSpecError(f"{source}:{number}: {error}") from None
    return sorted(entries, key=lambda entry: entry.at_ns)


def _script_entry(line: str, symbols: Collection[str] | None) -> ScheduledFault:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _error("line", 'a JSON object {"at_s": S, "fault": {...}}', line) from None
    if not isinstance(entry, dict):
        raise _error("line", 'a JSON object {"at_s": S, "fault": {...}}', entry)
    extra = set(entry) - {"at_s", "fault", "clear"}
    if extra:
        name = sorted(extra)[0]
        raise _error(name, "not a field of a script line (it takes at_s and fault, or at_s and clear)", entry[name])
    at_s = entry.get("at_s")
    if not isinstance(at_s, int | float) or isinstance(at_s, bool) or not math.isfinite(at_s) or at_s < 0:
        raise _error("at_s", "seconds >= 0 after start", at_s)
    if ("fault" in entry) == ("clear" in entry):
        raise FaultSpecError("fault: exactly one of 'fault' or 'clear': true per line, was " + _shown(entry))
    if "clear" in entry:
        if entry["clear"] is not True:
            raise _error("clear", "true", entry["clear"])
        return ScheduledFault(round(at_s * _NS), None)
    return ScheduledFault(round(at_s * _NS), parse_fault(entry["fault"], symbols=symbols))
