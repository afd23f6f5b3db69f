"""BinanceRest: the aiohttp shell around Binance Spot's REST API. It moves bytes; decisions live elsewhere.

It builds signed requests with :mod:`dma_bot.binance.signing` (signing exactly the string it sends),
decodes answers with :mod:`dma_bot.binance.codec` / :mod:`dma_bot.binance.filters`, and raises
:class:`~dma_bot.binance.errors.VenueError` (with its disposition: final, retryable, unknown outcome, rate
limited, clock) for any non-2xx answer; a transport failure is a VenueError with no HTTP status, whose
disposition is "unknown outcome" (an order may or may not have reached the venue). It keeps the venue's
used weight from ``X-MBX-USED-WEIGHT-1M`` and a clock offset from ``/api/v3/time``.

:func:`tradable_rules` is the start-up check: every configured symbol must exist and be TRADING.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from dma_bot.binance.account import TICKER_PRICE_PATH, parse_ticker_price
from dma_bot.binance.errors import VenueError, parse_error
from dma_bot.binance.filters import TRADING, SymbolRules, parse_exchange_info
from dma_bot.binance.signing import HmacSigner
from dma_bot.clock import Clock
from dma_bot.errors import ProtocolError, StartupError

__all__ = ["BinanceRest", "tradable_rules"]

log = logging.getLogger(__name__)


def tradable_rules(rules: Mapping[str, SymbolRules], symbols: Sequence[str]) -> dict[str, SymbolRules]:
    """The rules of ``symbols``; a symbol that is unknown or not TRADING is a StartupError naming it."""
    unknown = [symbol for symbol in symbols if symbol not in rules]
    if unknown:
        raise StartupError(f"SYMBOLS: symbols listed by the venue's exchangeInfo, was {','.join(unknown)} (unknown)")
    halted = [f"{symbol} ({rules[symbol].status})" for symbol in symbols if rules[symbol].status != TRADING]
    if halted:
        raise StartupError(f"SYMBOLS: symbols with status TRADING, was {', '.join(halted)}")
    return {symbol: rules[symbol] for symbol in symbols}


class BinanceRest:
    """``async with BinanceRest(base_url, clock=...) as rest:``; the signer is needed for private endpoints."""

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock,
        signer: HmacSigner | None = None,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._signer = signer
        self._recv_window_ms = recv_window_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.used_weight_1m = 0
        self.clock_offset_ms = 0
        self.last_answer_ns: int | None = None  # wall clock of the last HTTP answer, whatever its status
        self._waiting: dict[int, int] = {}  # request number -> wall clock it was sent
        self._sent = 0

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(timeout=self._timeout, json_serialize=lambda o: orjson.dumps(o).decode())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def oldest_waiting_since_ns(self) -> int | None:
        """Wall clock at which the oldest request still without an answer was sent (None: none waiting)."""
        return min(self._waiting.values(), default=None)

    def now_ms(self) -> int:
        """The venue's time as we believe it: local wall clock plus the measured offset."""
        return self._clock.time_ns() // 1_000_000 + self.clock_offset_ms

    async def request(
        self, method: str, path: str, params: Sequence[tuple[str, str]] = (), *, signed: bool = False
    ) -> Any:
        """One request; the decoded JSON body of a 2xx answer, else VenueError."""
        if self._session is None:
            raise RuntimeError("BinanceRest: use it inside 'async with'")
        headers = {"Accept": "application/json"}
        if signed:
            if self._signer is None:
                raise RuntimeError(f"BinanceRest: {path} needs API keys")
            query = self._signer.rest(params, timestamp_ms=self.now_ms(), recv_window_ms=self._recv_window_ms)
            headers.update(self._signer.headers())
        else:
            query = "&".join(f"{key}={value}" for key, value in params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        self._sent += 1
        number = self._sent
        self._waiting[number] = self._clock.time_ns()
        try:
            async with self._session.request(method, url, headers=headers) as response:
                body = await response.read()
                self.last_answer_ns = self._clock.time_ns()
                weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
                if weight is not None and weight.isdigit():
                    self.used_weight_1m = int(weight)
                if response.status >= 300:
                    raise parse_error(response.status, body, retry_after=response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as e:
            raise VenueError(None, f"{method} {path}: {type(e).__name__}: {e}", None) from e
        finally:
            del self._waiting[number]
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ProtocolError(f"{path}: a JSON body, was {body[:80]!r}") from e

    async def sync_clock(self) -> int:
        """Measure the venue clock offset from ``/api/v3/time`` (midpoint of the round trip); returns it in ms."""
        sent_ns = self._clock.time_ns()
        body = await self.request("GET", "/api/v3/time")
        received_ns = self._clock.time_ns()
        server_ms = body.get("serverTime") if isinstance(body, dict) else None
        if type(server_ms) is not int:
            raise ProtocolError(f"time.serverTime: an integer, was {server_ms!r}")
        self.clock_offset_ms = server_ms - (sent_ns + received_ns) // 2_000_000
        return self.clock_offset_ms

    async def last_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """Each symbol's last trade price (``GET /api/v3/ticker/price``, one request per symbol: weight 2)."""
        return {
            symbol: parse_ticker_price(await self.request("GET", TICKER_PRICE_PATH, [("symbol", symbol)]), symbol)
            for symbol in symbols
        }

    async def exchange_info(self, symbols: Sequence[str]) -> dict[str, SymbolRules]:
        """Rules of ``symbols`` (StartupError if one is unknown or not TRADING)."""
        try:
            body = await self.request("GET", "/api/v3/exchangeInfo")
        except VenueError as e:
            if e.code == -1121:
                raise StartupError(f"SYMBOLS: symbols listed by the venue, was {','.join(symbols)} ({e})") from e
            raise
        listed = {entry.get("symbol") for entry in body.get("symbols", []) if isinstance(entry, dict)}
        missing = [symbol for symbol in symbols if symbol not in listed]
        if missing:
            listed_text = ",".join(missing)
            raise StartupError(f"SYMBOLS: symbols listed by the venue's exchangeInfo, was {listed_text} (unknown)")
        return tradable_rules(parse_exchange_info(body, symbols=symbols), symbols)
