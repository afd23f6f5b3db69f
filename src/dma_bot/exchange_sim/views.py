"""Read-only answers built from the engine's state: exchangeInfo, depth, tickers, account. Pure.

These are the market-data and account shapes of Binance Spot (decimals as 8-place strings, ids and times
as integers): ``GET /api/v3/exchangeInfo``, ``depth``, ``ticker/24hr``, ``ticker/bookTicker``,
``ticker/price``, ``account``, the commission rates of ``order/test``, and the ``<symbol>@bookTicker``
stream event (``{"u","s","b","B","a","A"}``: no ``e``, ``E`` or ``T`` in Spot). Order shapes are in
:mod:`dma_bot.exchange_sim.wire`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import orjson

from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.limits import RateLimiter
from dma_bot.exchange_sim.market import SYMBOL_STATUSES
from dma_bot.exchange_sim.validation import ApiError
from dma_bot.exchange_sim.wire import d8, symbol_info
from dma_bot.model.enums import Side

__all__ = [
    "account",
    "book_ticker",
    "book_ticker_event",
    "commission_rates",
    "depth",
    "depth_weight",
    "exchange_info",
    "price_ticker",
    "ticker_24hr",
    "tickers",
]

Json = dict[str, Any]
_DEPTH_WEIGHTS: Final = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_ACCOUNT_UID: Final = 354937868


def _symbols_param(exchange: Exchange, params: Mapping[str, str]) -> list[str]:
    if "symbol" in params:
        exchange.config(params["symbol"])
        return [params["symbol"]]
    if "symbols" in params:
        try:
            names = orjson.loads(params["symbols"])
        except orjson.JSONDecodeError:
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.")
        for name in names:
            exchange.config(name)
        return names
    return list(exchange.configs)


def exchange_info(exchange: Exchange, limiter: RateLimiter, params: Mapping[str, str], now_ms: int) -> Json:
    names = _symbols_param(exchange, params)
    status = params.get("symbolStatus")
    if status is not None and status not in SYMBOL_STATUSES:
        raise ApiError(-1122, "Invalid symbolStatus.")
    configs = [exchange.configs[n] for n in names if status is None or exchange.configs[n].status == status]
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": limiter.exchange_info(),
        "exchangeFilters": [],
        "symbols": [symbol_info(c) for c in configs],
        "sors": [],
    }


def depth_weight(params: Mapping[str, str]) -> int:
    limit = int(params["limit"]) if params.get("limit", "").isdigit() else 100
    return next((w for bound, w in _DEPTH_WEIGHTS if limit <= bound), 250)


def depth(exchange: Exchange, symbol: str, limit: int) -> Json:
    """The touch plus our resting orders that do not cross it, aggregated by price, best first."""
    if not 1 <= limit <= 5000:
        raise ApiError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..5000'.")
    instrument = exchange.config(symbol).instrument
    book = exchange.books[symbol]
    bids: dict[int, int] = {book.bid: book.bid_qty} if book.bid_qty else {}
    asks: dict[int, int] = {book.ask: book.ask_qty} if book.ask_qty else {}
    for order in book.resting:
        if order.side is Side.BUY and order.price < book.ask:
            bids[order.price] = bids.get(order.price, 0) + order.remaining
        elif order.side is Side.SELL and order.price > book.bid:
            asks[order.price] = asks.get(order.price, 0) + order.remaining

    def levels(side: dict[int, int], reverse: bool) -> list[list[str]]:
        return [
            [d8(instrument.ticks_to_price(p)), d8(instrument.steps_to_qty(q))]
            for p, q in sorted(side.items(), reverse=reverse)[:limit]
        ]

    return {"lastUpdateId": book.update_id, "bids": levels(bids, True), "asks": levels(asks, False)}


def book_ticker_event(exchange: Exchange, symbol: str) -> Json:
    """The ``<symbol>@bookTicker`` stream payload."""
    instrument = exchange.configs[symbol].instrument
    book = exchange.books[symbol]
    return {
        "u": book.update_id,
        "s": symbol,
        "b": d8(instrument.ticks_to_price(book.bid)),
        "B": d8(instrument.steps_to_qty(book.bid_qty)),
        "a": d8(instrument.ticks_to_price(book.ask)),
        "A": d8(instrument.steps_to_qty(book.ask_qty)),
    }


def book_ticker(exchange: Exchange, symbol: str, now_ms: int) -> Json:
    event = book_ticker_event(exchange, symbol)
    return {
        "symbol": symbol,
        "bidPrice": event["b"],
        "bidQty": event["B"],
        "askPrice": event["a"],
        "askQty": event["A"],
    }


def price_ticker(exchange: Exchange, symbol: str, now_ms: int) -> Json:
    instrument = exchange.configs[symbol].instrument
    return {"symbol": symbol, "price": d8(instrument.ticks_to_price(exchange.stats[symbol].last_ticks))}


def ticker_24hr(exchange: Exchange, symbol: str, now_ms: int) -> Json:
    """Statistics since the exchange started (it keeps no rolling 24 h window)."""
    instrument = exchange.configs[symbol].instrument
    stats = exchange.stats[symbol]
    book = exchange.books[symbol]
    price = instrument.ticks_to_price
    open_price, last_price = price(stats.open_ticks), price(stats.last_ticks)
    change = last_price - open_price
    volume = instrument.steps_to_qty(stats.volume_steps)
    average = stats.quote_volume / volume if volume else last_price
    return {
        "symbol": symbol,
        "priceChange": d8(change),
        "priceChangePercent": f"{change * 100 / open_price:.3f}",
        "weightedAvgPrice": d8(average.quantize(Decimal("0.00000001"))),
        "prevClosePrice": d8(open_price),
        "lastPrice": d8(last_price),
        "lastQty": d8(instrument.steps_to_qty(stats.last_qty)),
        "bidPrice": d8(price(book.bid)),
        "bidQty": d8(instrument.steps_to_qty(book.bid_qty)),
        "askPrice": d8(price(book.ask)),
        "askQty": d8(instrument.steps_to_qty(book.ask_qty)),
        "openPrice": d8(open_price),
        "highPrice": d8(price(stats.high_ticks)),
        "lowPrice": d8(price(stats.low_ticks)),
        "volume": d8(volume),
        "quoteVolume": d8(stats.quote_volume),
        "openTime": exchange.start_ms,
        "closeTime": now_ms,
        "firstId": stats.first_trade_id,
        "lastId": stats.last_trade_id,
        "count": stats.count,
    }


def tickers(
    exchange: Exchange, params: Mapping[str, str], now_ms: int, view: Callable[[Exchange, str, int], Json]
) -> Json | list[Json]:
    """One ticker for ``symbol``, a list for ``symbols`` or for every symbol."""
    names = _symbols_param(exchange, params)
    if "symbol" in params:
        return view(exchange, names[0], now_ms)
    return [view(exchange, name, now_ms) for name in names]


def commission_rates(exchange: Exchange) -> Json:
    maker, taker = d8(exchange.maker_rate), d8(exchange.taker_rate)
    zero = d8(Decimal(0))
    return {
        "standardCommissionForOrder": {"maker": maker, "taker": taker},
        "specialCommissionForOrder": {"maker": zero, "taker": zero},
        "taxCommissionForOrder": {"maker": zero, "taker": zero},
        "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB", "discount": zero},
    }


def account(exchange: Exchange, *, omit_zero: bool) -> Json:
    balances = exchange.balances
    maker_bps = int(exchange.maker_rate * 10000)
    taker_bps = int(exchange.taker_rate * 10000)
    rows = [
        {"asset": a, "free": d8(balances.free(a)), "locked": d8(balances.locked(a))}
        for a in balances.assets
        if not omit_zero or balances.free(a) or balances.locked(a)
    ]
    return {
        "makerCommission": maker_bps,
        "takerCommission": taker_bps,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": d8(exchange.maker_rate),
            "taker": d8(exchange.taker_rate),
            "buyer": d8(Decimal(0)),
            "seller": d8(Decimal(0)),
        },
        "canTrade": True,
        "canWithdraw": False,
        "canDeposit": False,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": balances.update_ms,
        "accountType": "SPOT",
        "balances": rows,
        "permissions": ["SPOT"],
        "uid": _ACCOUNT_UID,
    }
