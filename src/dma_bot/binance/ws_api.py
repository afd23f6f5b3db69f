"""Binance WebSocket API envelopes: requests, responses with rateLimits, and the subscription event wrapper."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import orjson

from dma_bot.binance.errors import VenueError
from dma_bot.binance.user import UserEvent, parse_user_event
from dma_bot.binance.wire import _clip, _int, _loads, _object, _str
from dma_bot.errors import ProtocolError
from dma_bot.model.instrument import Instrument

__all__ = ["RateLimit", "WsResponse", "build_ws_request", "parse_ws_message", "parse_ws_response"]


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
