"""Binance Spot symbol rules from exchangeInfo, and the local pre-send check of a LIMIT order against them.

Owns :class:`SymbolRules` (status, assets, the :class:`Instrument` grid and the PRICE_FILTER, LOT_SIZE,
MIN_NOTIONAL/NOTIONAL, PERCENT_PRICE(_BY_SIDE) and MAX_NUM_ORDERS limits as exact Decimals),
:func:`parse_exchange_info`, and :func:`prepare_limit_order`, which rounds an order onto the grid (quantity
down, price to the passive side, both through ``Instrument``) and refuses locally, with the filter's name,
what Binance would refuse with ``-1013 Filter failure: <name>``. It does no I/O and keeps no state; other
filters (ICEBERG_PARTS, MAX_POSITION, TRAILING_DELTA, ...) are not checked.

exchangeInfo symbol entry (abridged)::

    {"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","orderTypes":["LIMIT",...],
     "filters":[{"filterType":"PRICE_FILTER","minPrice":"0.00000100","maxPrice":"100000.00000000",
                 "tickSize":"0.00000100"}, {"filterType":"LOT_SIZE", ...}, ...]}
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from dma_bot.binance.errors import LocalFilterReject
from dma_bot.errors import ProtocolError
from dma_bot.model.enums import Side
from dma_bot.model.instrument import Instrument

__all__ = [
    "TRADING",
    "LocalFilterReject",
    "NotionalLimit",
    "PercentPrice",
    "PercentPriceBySide",
    "SymbolRules",
    "parse_exchange_info",
    "prepare_limit_order",
]

TRADING: Final = "TRADING"
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class NotionalLimit:
    """``minNotional <= price * quantity [<= maxNotional]`` from MIN_NOTIONAL (no max) or NOTIONAL."""

    filter_name: str
    min_notional: Decimal
    max_notional: Decimal | None


@dataclass(frozen=True, slots=True)
class PercentPriceBySide:
    bid_multiplier_up: Decimal
    bid_multiplier_down: Decimal
    ask_multiplier_up: Decimal
    ask_multiplier_down: Decimal
    avg_price_mins: int

    def band(self, side: Side, reference: Decimal) -> tuple[Decimal, Decimal]:
        if side is Side.BUY:
            return reference * self.bid_multiplier_down, reference * self.bid_multiplier_up
        return reference * self.ask_multiplier_down, reference * self.ask_multiplier_up


@dataclass(frozen=True, slots=True)
class PercentPrice:
    multiplier_up: Decimal
    multiplier_down: Decimal
    avg_price_mins: int

    def band(self, side: Side, reference: Decimal) -> tuple[Decimal, Decimal]:
        return reference * self.multiplier_down, reference * self.multiplier_up


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolRules:
    """One symbol's trading rules. A ``min_price``/``max_price`` of 0 means that check is off (filters.md)."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    instrument: Instrument
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    notional_limits: tuple[NotionalLimit, ...]
    percent_price_by_side: PercentPriceBySide | None
    percent_price: PercentPrice | None
    max_num_orders: int | None
    order_types: frozenset[str]

    @property
    def is_trading(self) -> bool:
        return self.status == TRADING

    @property
    def min_notional(self) -> Decimal:
        return max((limit.min_notional for limit in self.notional_limits), default=_ZERO)

    @property
    def max_notional(self) -> Decimal | None:
        return min((lim.max_notional for lim in self.notional_limits if lim.max_notional is not None), default=None)


# -- parsing ------------------------------------------------------------------------------------------------


def _text(obj: Mapping, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{where}.{key}: a non-empty string, was {value!r}")
    return value


def _decimal(obj: Mapping, key: str, where: str) -> Decimal:
    raw = obj.get(key)
    try:
        if not isinstance(raw, str):
            raise TypeError
        value = Decimal(raw)
    except (TypeError, InvalidOperation):
        raise ProtocolError(f"{where}.{key}: a decimal string, was {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ProtocolError(f"{where}.{key}: a finite non-negative decimal string, was {raw!r}")
    return value


def _count(obj: Mapping, key: str, where: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise ProtocolError(f"{where}.{key}: a non-negative integer, was {value!r}")
    return value


def _filters(entry: Mapping, where: str) -> dict[str, Mapping]:
    raw = entry.get("filters")
    if not isinstance(raw, list):
        raise ProtocolError(f"{where}.filters: a list, was {type(raw).__name__}")
    found: dict[str, Mapping] = {}
    for item in raw:
        name = item.get("filterType") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ProtocolError(f"{where}.filters: objects with a filterType, was {item!r}")
        found[name] = item
    return found


def _required(filters: Mapping[str, Mapping], name: str, where: str) -> Mapping:
    try:
        return filters[name]
    except KeyError:
        raise ProtocolError(f"{where}.filters.{name}: required, was missing") from None


def _parse_symbol(entry: Mapping) -> SymbolRules:
    symbol = _text(entry, "symbol", "exchangeInfo.symbols[]")
    status = _text(entry, "status", symbol)
    base_asset = _text(entry, "baseAsset", symbol)
    quote_asset = _text(entry, "quoteAsset", symbol)
    order_types = entry.get("orderTypes")
    if not isinstance(order_types, list) or not all(isinstance(t, str) for t in order_types):
        raise ProtocolError(f"{symbol}.orderTypes: a list of strings, was {order_types!r}")
    filters = _filters(entry, symbol)

    where = f"{symbol}.PRICE_FILTER"
    price = _required(filters, "PRICE_FILTER", symbol)
    tick_size = _decimal(price, "tickSize", where)
    min_price, max_price = _decimal(price, "minPrice", where), _decimal(price, "maxPrice", where)
    where = f"{symbol}.LOT_SIZE"
    lot = _required(filters, "LOT_SIZE", symbol)
    step_size = _decimal(lot, "stepSize", where)
    min_qty, max_qty = _decimal(lot, "minQty", where), _decimal(lot, "maxQty", where)
    for name, size in (("PRICE_FILTER.tickSize", tick_size), ("LOT_SIZE.stepSize", step_size)):
        if size == 0:
            raise ProtocolError(f"{symbol}.{name}: a positive grid size, was '0' (no grid)")

    limits: list[NotionalLimit] = []
    if (legacy := filters.get("MIN_NOTIONAL")) is not None:
        limits.append(NotionalLimit("MIN_NOTIONAL", _decimal(legacy, "minNotional", f"{symbol}.MIN_NOTIONAL"), None))
    if (notional := filters.get("NOTIONAL")) is not None:
        where = f"{symbol}.NOTIONAL"
        max_notional = _decimal(notional, "maxNotional", where) if "maxNotional" in notional else None
        limits.append(NotionalLimit("NOTIONAL", _decimal(notional, "minNotional", where), max_notional))

    by_side = None
    if (pps := filters.get("PERCENT_PRICE_BY_SIDE")) is not None:
        where = f"{symbol}.PERCENT_PRICE_BY_SIDE"
        by_side = PercentPriceBySide(
            *(_decimal(pps, key, where) for key in ("bidMultiplierUp", "bidMultiplierDown")),
            *(_decimal(pps, key, where) for key in ("askMultiplierUp", "askMultiplierDown")),
            _count(pps, "avgPriceMins", where),
        )
    percent = None
    if (pp := filters.get("PERCENT_PRICE")) is not None:
        where = f"{symbol}.PERCENT_PRICE"
        up, down = _decimal(pp, "multiplierUp", where), _decimal(pp, "multiplierDown", where)
        percent = PercentPrice(up, down, _count(pp, "avgPriceMins", where))
    max_orders = filters.get("MAX_NUM_ORDERS")
    max_num_orders = None if max_orders is None else _count(max_orders, "maxNumOrders", f"{symbol}.MAX_NUM_ORDERS")

    instrument = Instrument(
        symbol=symbol,
        tick_size=tick_size,
        step_size=step_size,
        min_qty=min_qty,
        min_notional=max((limit.min_notional for limit in limits), default=_ZERO),
        base_asset=base_asset,
        quote_asset=quote_asset,
    )
    return SymbolRules(
        symbol=symbol,
        status=status,
        base_asset=base_asset,
        quote_asset=quote_asset,
        instrument=instrument,
        min_price=min_price,
        max_price=max_price,
        min_qty=min_qty,
        max_qty=max_qty,
        notional_limits=tuple(limits),
        percent_price_by_side=by_side,
        percent_price=percent,
        max_num_orders=max_num_orders,
        order_types=frozenset(order_types),
    )


def parse_exchange_info(body: Mapping, *, symbols: Collection[str] | None = None) -> dict[str, SymbolRules]:
    """``GET /api/v3/exchangeInfo`` body -> rules per symbol, exact Decimals from the venue's strings.

    With ``symbols`` only those entries are parsed (and each must be present), so a garbled entry for a
    symbol we never trade does not stop start-up; without it every entry is parsed. A missing or garbled
    field raises :class:`ProtocolError` naming the symbol and field.
    """
    entries = body.get("symbols") if isinstance(body, Mapping) else None
    if not isinstance(entries, list):
        raise ProtocolError(f"exchangeInfo.symbols: a list, was {type(entries).__name__}")
    wanted = None if symbols is None else frozenset(symbols)
    rules: dict[str, SymbolRules] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ProtocolError(f"exchangeInfo.symbols[]: objects, was {type(entry).__name__}")
        if wanted is not None and entry.get("symbol") not in wanted:
            continue
        parsed = _parse_symbol(entry)
        rules[parsed.symbol] = parsed
    if wanted is not None and (missing := wanted.difference(rules)):
        raise ProtocolError(f"exchangeInfo.symbols: must include {', '.join(sorted(missing))}, was missing")
    return rules


# -- the local pre-send check --------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _to_ticks(rules: SymbolRules, side: Side, price: Decimal | int) -> int:
    if type(price) is int:
        return price
    if not isinstance(price, Decimal) or not price.is_finite():
        raise ValueError(f"price: int ticks or a finite Decimal, was {price!r}")
    return rules.instrument.price_to_ticks(price, passive_for=side)


def _to_steps(rules: SymbolRules, quantity: Decimal | int) -> int:
    if type(quantity) is int:
        return quantity
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise ValueError(f"quantity: int steps or a finite Decimal, was {quantity!r}")
    return rules.instrument.qty_to_steps(quantity)


def prepare_limit_order(
    rules: SymbolRules,
    side: Side,
    price: Decimal | int,
    quantity: Decimal | int,
    *,
    reference_price: Decimal | None,
    order_type: str = "LIMIT",
    open_orders: int | None = None,
) -> tuple[int, int]:
    """``(price_ticks, qty_steps)`` of a LIMIT (or LIMIT_MAKER) order that passes the symbol's filters.

    An int ``price``/``quantity`` is already ticks/steps; a Decimal is rounded onto the grid: quantity down
    to the step, price to the passive side of the tick (buy down, sell up). What still breaks a filter
    raises :class:`LocalFilterReject` with Binance's filter name: ``status`` (symbol not TRADING),
    ``orderTypes``, ``PRICE_FILTER``, ``LOT_SIZE``, ``MIN_NOTIONAL``/``NOTIONAL``, ``PERCENT_PRICE_BY_SIDE`` and
    ``PERCENT_PRICE`` (only with a ``reference_price``), ``MAX_NUM_ORDERS`` (only with ``open_orders``).
    """
    if not rules.is_trading:
        raise LocalFilterReject("status", f"{rules.symbol} is {rules.status}, orders need TRADING")
    if order_type not in rules.order_types:
        raise LocalFilterReject("orderTypes", f"{order_type} is not allowed on {rules.symbol}")
    instrument = rules.instrument
    ticks, steps = _to_ticks(rules, side, price), _to_steps(rules, quantity)
    px, qty = instrument.ticks_to_price(ticks), instrument.steps_to_qty(steps)

    if ticks <= 0:
        raise LocalFilterReject("PRICE_FILTER", f"price must be positive, was {_plain(px)}")
    if rules.min_price and px < rules.min_price:
        raise LocalFilterReject("PRICE_FILTER", f"price {_plain(px)} is below minPrice {_plain(rules.min_price)}")
    if rules.max_price and px > rules.max_price:
        raise LocalFilterReject("PRICE_FILTER", f"price {_plain(px)} is above maxPrice {_plain(rules.max_price)}")
    if steps <= 0:
        raise LocalFilterReject("LOT_SIZE", f"quantity rounds to 0 at stepSize {_plain(instrument.step_size)}")
    if qty < rules.min_qty:
        raise LocalFilterReject("LOT_SIZE", f"quantity {_plain(qty)} is below minQty {_plain(rules.min_qty)}")
    if qty > rules.max_qty:
        raise LocalFilterReject("LOT_SIZE", f"quantity {_plain(qty)} is above maxQty {_plain(rules.max_qty)}")
    notional = instrument.notional(ticks, steps)
    for limit in rules.notional_limits:
        if notional < limit.min_notional:
            detail = f"notional {_plain(notional)} is below minNotional {_plain(limit.min_notional)}"
            raise LocalFilterReject(limit.filter_name, detail)
        if limit.max_notional is not None and notional > limit.max_notional:
            detail = f"notional {_plain(notional)} is above maxNotional {_plain(limit.max_notional)}"
            raise LocalFilterReject(limit.filter_name, detail)
    if reference_price is not None:
        bands = (("PERCENT_PRICE_BY_SIDE", rules.percent_price_by_side), ("PERCENT_PRICE", rules.percent_price))
        for name, band in bands:
            if band is None:
                continue
            low, high = band.band(side, reference_price)
            if not low <= px <= high:
                band_text = f"{_plain(low)}..{_plain(high)}"
                detail = f"{side} price {_plain(px)} is outside {band_text} (reference {reference_price})"
                raise LocalFilterReject(name, detail)
    if open_orders is not None and rules.max_num_orders is not None and open_orders >= rules.max_num_orders:
        raise LocalFilterReject("MAX_NUM_ORDERS", f"{open_orders} orders already open, limit {rules.max_num_orders}")
    return ticks, steps
