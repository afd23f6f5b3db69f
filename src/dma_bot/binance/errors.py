"""What a Binance Spot failure means for the caller: one table from error code (and HTTP status) to a disposition.

Owns the :class:`Disposition` vocabulary, the code table, :func:`classify`, and the two exceptions this
package raises for the venue: :class:`VenueError` (Binance answered ``{"code":..,"msg":..}``) and
:class:`LocalFilterReject` (an order that would break a symbol filter, refused before it is sent). It does
not retry, sleep or query anything: the gateway reads the disposition and acts. Codes and meanings are
those of ``errors.md`` and ``rest-api.md`` "HTTP Return Codes" in binance-spot-api-docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import orjson

from dma_bot.errors import DmaBotError, OrderRejected

__all__ = ["CODE_DISPOSITIONS", "Disposition", "LocalFilterReject", "VenueError", "classify", "parse_error"]


class Disposition(StrEnum):
    """What to do after a failed request."""

    RETRYABLE = "retryable"  # the venue did not act; the same request may be sent again after a backoff
    FINAL = "final"  # the venue refused; resending the same request cannot succeed
    UNKNOWN_OUTCOME = "unknown_outcome"  # may have executed: query by client order id, never resend blindly
    RATE_LIMITED = "rate_limited"  # 429/418: wait for Retry-After (REST) or error.data.retryAfter (WS API)
    CLOCK = "clock"  # -1021: resynchronise with /api/v3/time, then retry


_D = Disposition
_FINAL_CODES: Final = (
    -1002,  # UNAUTHORIZED
    -1013,  # INVALID_MESSAGE: "Filter failure: <filterType>" and other pre-engine refusals
    -1014,  # UNKNOWN_ORDER_COMPOSITION
    -1020,  # UNSUPPORTED_OPERATION
    -1022,  # INVALID_SIGNATURE (a bug on our side, never a transient)
    -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1108, -1111, -1112, -1114, -1115, -1116, -1117,
    -1118, -1119, -1121, -1122, -1125, -1128, -1130, -1145,
    -2010,  # NEW_ORDER_REJECTED ("Duplicate order sent.", "Market is closed.", insufficient balance, ...)
    -2011,  # CANCEL_REJECTED ("Unknown order sent.": already closed; reconcile by query)
    -2013,  # NO_SUCH_ORDER (can be lag right after placing: the caller decides whether to ask again)
    -2014,  # BAD_API_KEY_FMT
    -2015,  # REJECTED_MBX_KEY
    -2016,  # NO_TRADING_WINDOW
    -2026,  # ORDER_ARCHIVED
    -2035,  # SUBSCRIPTION_ACTIVE
    -2036,  # SUBSCRIPTION_INACTIVE
    -2039,  # CLIENT_ORDER_ID_INVALID
    -2042,  # MAXIMUM_SUBSCRIPTION_IDS
    -2043,  # NO_REFERENCE_PRICE
)  # fmt: skip

CODE_DISPOSITIONS: Final[Mapping[int, Disposition]] = MappingProxyType(
    {
        -1000: _D.UNKNOWN_OUTCOME,  # UNKNOWN
        # DISCONNECTED "Internal error; unable to process your request": the reference says "query if order";
        # a blind resend after an internal error is how duplicate orders happen, so it is not RETRYABLE.
        -1001: _D.UNKNOWN_OUTCOME,
        -1006: _D.UNKNOWN_OUTCOME,  # UNEXPECTED_RESP "Execution status unknown."
        -1007: _D.UNKNOWN_OUTCOME,  # TIMEOUT "Send status unknown; execution status unknown."
        -1008: _D.RETRYABLE,  # SERVER_BUSY: refused before the engine
        -1016: _D.RETRYABLE,  # SERVICE_SHUTTING_DOWN
        -1003: _D.RATE_LIMITED,  # TOO_MANY_REQUESTS (429, or 418 when banned)
        -1015: _D.RATE_LIMITED,  # TOO_MANY_ORDERS
        -1034: _D.RATE_LIMITED,  # TOO_MANY_CONNECTIONS
        -1021: _D.CLOCK,  # INVALID_TIMESTAMP
        **dict.fromkeys(_FINAL_CODES, _D.FINAL),
    }
)
"""Every Binance Spot code we know, by disposition. A code not listed here is FINAL on a 4xx."""


def classify(http_status: int | None, code: int | None) -> Disposition:
    """Disposition of a failed request.

    ``http_status`` is the HTTP status (or the WS API ``status``); None means no answer arrived after the
    request was sent (read timeout, dropped connection), which is as unknown as a 5xx. HTTP 429/418 and
    5xx decide on their own, whatever the code says (a 5xx "may have succeeded", rest-api.md); otherwise
    the code table decides, and an unlisted code is FINAL (4xx: the request was at fault).
    """
    if http_status is None or http_status >= 500:
        return _D.UNKNOWN_OUTCOME
    if http_status in (429, 418):
        return _D.RATE_LIMITED
    if code is None:
        return _D.FINAL
    return CODE_DISPOSITIONS.get(code, _D.FINAL)


class VenueError(DmaBotError):
    """Binance answered with an error body ``{"code": -2010, "msg": "..."}``.

    ``retry_after_s`` is the REST ``Retry-After`` header (seconds, relative); ``retry_at_ms`` is the WS API
    ``error.data.retryAfter`` (epoch milliseconds, absolute). ``code`` is None when the body was not a
    Binance error object (an HTML 502 from a proxy, say); ``msg`` then holds the start of the body.
    """

    def __init__(
        self,
        code: int | None,
        msg: str,
        http_status: int | None,
        *,
        retry_after_s: int | None = None,
        retry_at_ms: int | None = None,
    ) -> None:
        if code is None and http_status is None:
            text = f"no answer from the venue: {msg}"  # a transport failure: there is no code or status to show
        elif code is None:
            text = f"venue answered HTTP {http_status} without a Binance error code: {msg}"
        elif http_status is None:
            text = f"Binance error {code}: {msg}"
        else:
            text = f"Binance error {code} (HTTP {http_status}): {msg}"
        super().__init__(text)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.retry_at_ms = retry_at_ms

    @property
    def disposition(self) -> Disposition:
        return classify(self.http_status, self.code)

    def __repr__(self) -> str:
        return f"VenueError(code={self.code!r}, msg={self.msg!r}, http_status={self.http_status!r})"


class LocalFilterReject(OrderRejected):
    """An order refused locally because it would break the symbol's ``filter_name`` (never sent).

    ``filter_name`` is Binance's spelling (``PRICE_FILTER``, ``LOT_SIZE``, ``NOTIONAL``, ...) or ``status``
    when the symbol is not TRADING, so a local reject reads like the venue's "Filter failure: <name>".
    """

    def __init__(self, filter_name: str, detail: str) -> None:
        super().__init__(f"{filter_name}: {detail}")
        self.filter_name = filter_name
        self.detail = detail


def parse_error(status: int, body: bytes | str, *, retry_after: str | None = None) -> VenueError:
    """An error response ``{"code":-1013,"msg":"Filter failure: LOT_SIZE"}`` -> :class:`VenueError`.

    A body that is not a Binance error object keeps (the start of) its text as ``msg`` with ``code`` None.
    ``retry_after`` is the ``Retry-After`` header (seconds) that comes with 429/418.
    """
    retry_after_s = int(retry_after) if retry_after is not None and retry_after.strip().isdigit() else None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is dict and type(obj.get("code")) is int and type(obj.get("msg")) is str:
        return VenueError(obj["code"], obj["msg"], status, retry_after_s=retry_after_s)
    text = body.decode(errors="replace") if isinstance(body, bytes | bytearray) else str(body)
    return VenueError(None, text[:200], status, retry_after_s=retry_after_s)
