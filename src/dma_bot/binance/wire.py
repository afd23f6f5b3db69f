"""Shared parsing helpers of the Binance codec: exact decimal strings -> integer grid units, typed field access,
status and side tables. Private to ``dma_bot.binance``; the public API is re-exported by :mod:`dma_bot.binance.codec`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

import orjson

from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.instrument import Instrument

__all__ = ["CLIENT_ORDER_ID_PATTERN"]


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


def _list(raw: object, what: str) -> list:
    """A JSON list body (bytes or text, or an already decoded list) -> the list; anything else a ProtocolError."""
    try:
        value = orjson.loads(raw) if isinstance(raw, (bytes, str)) else raw
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{what}: a JSON list, was {_clip(raw)}") from None
    if type(value) is not list:
        raise ProtocolError(f"{what}: a JSON list, was {_clip(value)}")
    return value


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
