"""Request-weight and order-count limits in fixed windows, as Binance advertises and enforces them. Pure.

It counts weight per minute (``X-MBX-USED-WEIGHT-1M``) and new orders per 10 seconds and per day
(``X-MBX-ORDER-COUNT-10S``/``-1D``), answers HTTP 429 with -1003 or -1015 and a ``Retry-After`` when a
limit is passed, and renders the ``rateLimits`` arrays of exchangeInfo and of WebSocket API responses.
Time comes in as ``now_ms``. It does not know endpoints: the REST layer says what each call weighs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from dma_bot.exchange_sim.validation import ApiError

__all__ = ["RateLimiter", "RateLimits"]

_MINUTE_MS: Final = 60_000
_TEN_SECONDS_MS: Final = 10_000
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """The advertised (and enforced) limits; Binance's defaults."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 50
    orders_per_day: int = 160_000
    raw_requests_per_5m: int = 300_000


@dataclass(slots=True)
class _Window:
    length_ms: int
    start_ms: int = -1
    count: int = 0

    def current(self, now_ms: int) -> int:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.count = start, 0
        return self.count

    def retry_after_s(self, now_ms: int) -> int:
        return max(1, -(-(self.start_ms + self.length_ms - now_ms) // 1000))


@dataclass(slots=True)
class RateLimiter:
    limits: RateLimits = field(default_factory=RateLimits)
    _weight: _Window = field(default_factory=lambda: _Window(_MINUTE_MS))
    _orders_10s: _Window = field(default_factory=lambda: _Window(_TEN_SECONDS_MS))
    _orders_day: _Window = field(default_factory=lambda: _Window(_DAY_MS))

    def add_weight(self, weight: int, now_ms: int) -> int:
        """Charge ``weight``; the minute's total, or 429 -1003 once it passes the limit."""
        used = self._weight.current(now_ms) + weight
        self._weight.count = used
        limit = self.limits.weight_per_minute
        if used > limit:
            raise ApiError(
                -1003,
                f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                status=429,
                retry_after_s=self._weight.retry_after_s(now_ms),
            )
        return used

    def refund_weight(self, weight: int, now_ms: int) -> None:
        self._weight.count = max(0, self._weight.current(now_ms) - weight)

    def used_weight(self, now_ms: int) -> int:
        return self._weight.current(now_ms)

    def add_order(self, now_ms: int) -> tuple[int, int]:
        """Count one new order; (10 s count, day count), or 429 -1015 once a limit is passed."""
        for window, limit, label in (
            (self._orders_10s, self.limits.orders_per_10s, "10 SECOND"),
            (self._orders_day, self.limits.orders_per_day, "1 DAY"),
        ):
            if window.current(now_ms) >= limit:
                raise ApiError(
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {label}.",
                    status=429,
                    retry_after_s=window.retry_after_s(now_ms),
                )
        self._orders_10s.count += 1
        self._orders_day.count += 1
        return self._orders_10s.count, self._orders_day.count

    def order_counts(self, now_ms: int) -> tuple[int, int]:
        return self._orders_10s.current(now_ms), self._orders_day.current(now_ms)

    def exchange_info(self) -> list[dict[str, Any]]:
        limits = self.limits
        return [
            _limit("REQUEST_WEIGHT", "MINUTE", 1, limits.weight_per_minute),
            _limit("ORDERS", "SECOND", 10, limits.orders_per_10s),
            _limit("ORDERS", "DAY", 1, limits.orders_per_day),
            _limit("RAW_REQUESTS", "MINUTE", 5, limits.raw_requests_per_5m),
        ]

    def ws_api(self, now_ms: int) -> list[dict[str, Any]]:
        """The ``rateLimits`` of a WebSocket API response."""
        entry = _limit("REQUEST_WEIGHT", "MINUTE", 1, self.limits.weight_per_minute)
        entry["count"] = self.used_weight(now_ms)
        return [entry]


def _limit(kind: str, interval: str, number: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": number, "limit": limit}
