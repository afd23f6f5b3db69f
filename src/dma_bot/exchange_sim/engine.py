"""The exchange's matching engine: order lifecycle, balances, ids and user-data events. Pure and seeded.

:class:`Exchange` owns every listed symbol's :class:`SymbolBook`, the account's :class:`Balances`, the
order, trade and execution id counters, and the outbox of user-data events (``executionReport`` then
``outboundAccountPosition``, as wire dicts) that the socket layer drains after each call. Status moves
as Binance's: NEW -> PARTIALLY_FILLED -> FILLED, CANCELED by the user, EXPIRED for IOC/FOK/MARKET
leftovers, REJECTED (with an executionReport and a -2010 answer) for insufficient balance or a
LIMIT_MAKER that would take. :meth:`Exchange.wipe_open_orders` forgets the open orders silently (a venue
restarted without them). Time comes in as ``now_ms`` arguments; nothing here reads a clock or a socket.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from dma_bot.exchange_sim.accounts import Balances, FeeAsset, InsufficientBalance, commission
from dma_bot.exchange_sim.book import Fill, SimOrder, SymbolBook
from dma_bot.exchange_sim.market import QuoteWalk, SymbolConfig, assets_of
from dma_bot.exchange_sim.validation import ApiError, OrderRequest, check_filters
from dma_bot.exchange_sim.wire import FillRecord, TradeRecord, account_position, execution_report
from dma_bot.model.enums import Side

__all__ = ["Exchange", "SymbolStats"]

_ZERO: Final = Decimal(0)
_ONE_UNIT: Final = Decimal("0.00000001")
_ID_ALPHABET: Final = string.ascii_letters + string.digits
_EXPIRY: Final = {"IOC": "UNFILLED_IOC_QUANTITY_EXPIRED", "FOK": "UNFILLED_FOK_ORDER_EXPIRED"}


@dataclass(slots=True)
class SymbolStats:
    """What ``ticker/24hr`` reports: since the exchange started, not a rolling day."""

    open_ticks: int
    high_ticks: int
    low_ticks: int
    last_ticks: int
    last_qty: int = 0
    volume_steps: int = 0
    quote_volume: Decimal = _ZERO
    first_trade_id: int = -1
    last_trade_id: int = -1
    count: int = 0


class Exchange:
    """Orders, fills and balances of one simulated account on a set of symbols."""

    def __init__(
        self,
        symbols: Sequence[SymbolConfig],
        *,
        balances: Mapping[str, Decimal] | None = None,
        maker_rate: Decimal = Decimal("0.001"),
        taker_rate: Decimal = Decimal("0.001"),
        fee_asset: FeeAsset = FeeAsset.RECEIVED,
        seed: int = 0,
        start_ms: int = 0,
    ) -> None:
        if not symbols:
            raise ValueError("symbols: at least one symbol, was none")
        self.configs: dict[str, SymbolConfig] = {c.symbol: c for c in symbols}
        self.maker_rate = maker_rate
        self.taker_rate = taker_rate
        self.fee_asset = fee_asset
        self._walk = QuoteWalk(seed)
        self._id_rng = random.Random(seed + 1)
        self.books: dict[str, SymbolBook] = {}
        self.stats: dict[str, SymbolStats] = {}
        for config in symbols:
            top = self._walk.first(config)
            self.books[config.symbol] = SymbolBook(top.bid, top.ask, top.bid_qty, top.ask_qty)
            self.stats[config.symbol] = SymbolStats(top.bid, top.bid, top.bid, top.bid)
        assets = assets_of(symbols)
        if balances is None:
            quotes = {c.quote_asset for c in symbols}
            balances = {a: Decimal(100000) if a in quotes else Decimal(10) for a in assets}
        self.balances = Balances(balances, assets)
        self.balances.take_changed()
        self.start_ms = start_ms
        self._orders: dict[int, SimOrder] = {}
        self._by_client: dict[tuple[str, str], SimOrder] = {}
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_execution_id = 1
        self.trades: dict[str, list[TradeRecord]] = {c.symbol: [] for c in symbols}
        self.events: list[dict[str, Any]] = []
        self.quote_updates: dict[str, None] = {}

    # -- outbox --------------------------------------------------------------------------------------------
    def take_events(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

    def take_quote_updates(self) -> list[str]:
        symbols = list(self.quote_updates)
        self.quote_updates.clear()
        return symbols

    def _report(self, order: SimOrder, exec_type: str, now_ms: int, **fields: Any) -> None:
        config = self.configs[order.symbol]
        report = execution_report(
            order,
            config.instrument,
            event_ms=now_ms,
            exec_type=exec_type,
            execution_id=self._next_execution_id,
            **fields,
        )
        self._next_execution_id += 1
        self.events.append(report)

    def account_event(self, now_ms: int) -> None:
        changed = self.balances.take_changed()
        if changed:
            self.balances.update_ms = now_ms
            self.events.append(account_position(self.balances, changed, now_ms))

    # -- queries -------------------------------------------------------------------------------------------
    def config(self, symbol: str) -> SymbolConfig:
        config = self.configs.get(symbol)
        if config is None:
            raise ApiError(-1121, "Invalid symbol.")
        return config

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self._orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def orders(self, symbol: str) -> list[SimOrder]:
        """Every accepted order of ``symbol``, open or closed, oldest first."""
        return [o for o in self._orders.values() if o.symbol == symbol]

    def my_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[TradeRecord]:
        """The account's trades of ``symbol``, oldest first: from ``from_id`` on, else the newest ``limit``."""
        trades = [
            t
            for t in self.trades[self.config(symbol).symbol]
            if (order_id is None or t.order_id == order_id)
            and (start_ms is None or t.time_ms >= start_ms)
            and (end_ms is None or t.time_ms <= end_ms)
            and (from_id is None or t.fill.trade_id >= from_id)
        ]
        return trades[:limit] if from_id is not None else trades[-limit:]

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        """By orderId (then the client id, if given, must match) or else by the latest such client id."""
        self.config(symbol)
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.symbol != symbol:
                return None
            if client_order_id is not None and order.client_order_id != client_order_id:
                raise ApiError(-2039, "Client order ID is not correct for this order ID.")
            return order
        if client_order_id is None:
            raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return self._by_client.get((symbol, client_order_id))

    def new_client_order_id(self) -> str:
        return "".join(self._id_rng.choices(_ID_ALPHABET, k=22))

    # -- new orders ----------------------------------------------------------------------------------------
    def validate(self, request: OrderRequest) -> None:
        """Every check of :meth:`place` that needs no balance (``order/test``)."""
        config = self.configs[request.symbol]
        book = self.books[request.symbol]
        check_filters(request, config, book.mid2, len(self.open_orders(request.symbol)))
        if config.status != "TRADING":
            raise ApiError(-2010, "Market is closed.")
        client_id = request.client_order_id
        if client_id is not None:
            existing = self._by_client.get((request.symbol, client_id))
            if existing is not None and existing.is_open:
                raise ApiError(-2010, "Duplicate order sent.")

    def place(self, request: OrderRequest, now_ms: int) -> tuple[SimOrder, list[FillRecord]]:
        """Accept, match and maybe rest a new order; :class:`ApiError` when Binance would answer an error."""
        self.validate(request)
        config = self.configs[request.symbol]
        book = self.books[request.symbol]
        quantity = request.quantity or self._quote_quantity(request, config, book)
        order = SimOrder(
            order_id=self._next_order_id,
            symbol=request.symbol,
            client_order_id=request.client_order_id or self.new_client_order_id(),
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force if request.order_type == "LIMIT" else "GTC",
            price=request.price,
            quantity=quantity,
            quote_order_qty=request.quote_order_qty,
            time_ms=now_ms,
            update_ms=now_ms,
        )
        self._next_order_id += 1
        if request.order_type == "LIMIT_MAKER" and book.crosses(order.side, order.price):
            self._reject(order, "WOULD_MATCH_IMMEDIATELY", now_ms)
            raise ApiError(-2010, "Order would immediately match and take.")
        asset, amount = self._reservation(order, config, book)
        try:
            self.balances.lock(asset, amount)
        except InsufficientBalance:
            self._reject(order, "INSUFFICIENT_BALANCES", now_ms)
            raise ApiError(-2010, "Account has insufficient balance for requested action.") from None
        order.reserved = amount
        self._orders[order.order_id] = order
        self._by_client[(order.symbol, order.client_order_id)] = order

        limit = None if order.order_type == "MARKET" else order.price
        fill: Fill | None = None
        if order.time_in_force != "FOK" or book.available(order.side, limit) >= quantity:
            fill = book.take(order.side, limit, quantity)
        filled_now = fill.qty if fill else 0
        rests = order.order_type != "MARKET" and order.time_in_force == "GTC" and filled_now < quantity
        if rests:
            order.working_ms = now_ms
        self._report(order, "NEW", now_ms)
        records = [self._apply_fill(order, fill, now_ms)] if fill else []
        if rests:
            book.rest(order)
        elif order.remaining:
            order.expiry_reason = _EXPIRY.get(order.time_in_force, "INSUFFICIENT_LIQUIDITY")
            if order.order_type == "MARKET":
                order.expiry_reason = "INSUFFICIENT_LIQUIDITY"
            self._finish(order, "EXPIRED", now_ms)
            self._report(order, "EXPIRED", now_ms)
        self.account_event(now_ms)
        return order, records

    def _quote_quantity(self, request: OrderRequest, config: SymbolConfig, book: SymbolBook) -> int:
        """Steps a quoteOrderQty MARKET order buys or sells at the touch (rounded down to the step)."""
        price = book.ask if request.side is Side.BUY else book.bid
        unit = config.instrument.notional(price, 1)
        steps = int(request.quote_order_qty // unit)
        if steps <= 0:
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        return steps

    def _reservation(self, order: SimOrder, config: SymbolConfig, book: SymbolBook) -> tuple[str, Decimal]:
        instrument = config.instrument
        if order.side is Side.SELL:
            return config.base_asset, instrument.steps_to_qty(order.quantity)
        price = order.price if order.order_type != "MARKET" else book.ask
        notional = instrument.notional(price, order.quantity)
        if self.fee_asset is FeeAsset.QUOTE:
            rate = max(self.maker_rate, self.taker_rate)
            notional += commission(notional, rate) + _ONE_UNIT * order.quantity
        return config.quote_asset, notional

    def _reject(self, order: SimOrder, reason: str, now_ms: int) -> None:
        order.status = "REJECTED"
        self._report(order, "REJECTED", now_ms, reject_reason=reason)

    # -- fills, cancels, market moves ----------------------------------------------------------------------
    def _apply_fill(self, order: SimOrder, fill: Fill, now_ms: int) -> FillRecord:
        config = self.configs[order.symbol]
        instrument = config.instrument
        quote_amount = instrument.notional(fill.price, fill.qty)
        base_amount = instrument.steps_to_qty(fill.qty)
        rate = self.maker_rate if fill.maker else self.taker_rate
        balances = self.balances
        if order.side is Side.BUY:
            if self.fee_asset is FeeAsset.QUOTE:
                fee, fee_asset = commission(quote_amount, rate), config.quote_asset
                spent, received = quote_amount + fee, base_amount
            else:
                fee, fee_asset = commission(base_amount, rate), config.base_asset
                spent, received = quote_amount, base_amount - fee
            balances.consume_locked(config.quote_asset, spent)
            balances.credit(config.base_asset, received)
        else:
            fee, fee_asset = commission(quote_amount, rate), config.quote_asset
            spent = base_amount
            balances.consume_locked(config.base_asset, spent)
            balances.credit(config.quote_asset, quote_amount - fee)
        order.reserved -= spent
        order.filled += fill.qty
        order.cum_quote += quote_amount
        order.update_ms = now_ms
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        record = FillRecord(fill.price, fill.qty, fee, fee_asset, self._next_trade_id)
        self._next_trade_id += 1
        self._record_trade(order.symbol, record)
        trade = TradeRecord(order.symbol, order.order_id, order.side, record, fill.maker, now_ms)
        self.trades[order.symbol].append(trade)
        if order.status == "FILLED":
            self._finish(order, "FILLED", now_ms)
        self._report(order, "TRADE", now_ms, fill=record, maker=fill.maker)
        return record

    def _finish(self, order: SimOrder, status: str, now_ms: int) -> None:
        """Make ``order`` terminal: off the book, its remaining reservation released."""
        order.status = status
        order.update_ms = now_ms
        self._take_off_book(order)

    def _take_off_book(self, order: SimOrder) -> None:
        """Remove ``order`` from its book (if it rests there) and release what it still reserves."""
        book = self.books[order.symbol]
        if order in book.resting:
            book.remove(order)
        if order.reserved:
            config = self.configs[order.symbol]
            asset = config.quote_asset if order.side is Side.BUY else config.base_asset
            self.balances.release(asset, order.reserved)
            order.reserved = _ZERO

    def _record_trade(self, symbol: str, record: FillRecord) -> None:
        stats = self.stats[symbol]
        stats.last_ticks, stats.last_qty = record.price, record.qty
        stats.high_ticks = max(stats.high_ticks, record.price)
        stats.low_ticks = min(stats.low_ticks, record.price)
        stats.volume_steps += record.qty
        stats.quote_volume += self.configs[symbol].instrument.notional(record.price, record.qty)
        if stats.first_trade_id < 0:
            stats.first_trade_id = record.trade_id
        stats.last_trade_id = record.trade_id
        stats.count += 1

    def cancel(
        self,
        order: SimOrder | None,
        now_ms: int,
        *,
        cancel_client_id: str | None = None,
        restriction: str | None = None,
    ) -> tuple[SimOrder, str]:
        """Cancel an open order; -2011 when it is unknown or already closed. Returns it and the cancel's id."""
        if order is None or not order.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        if (restriction == "ONLY_NEW" and order.status != "NEW") or (
            restriction == "ONLY_PARTIALLY_FILLED" and order.status != "PARTIALLY_FILLED"
        ):
            raise ApiError(-2011, "Order was not canceled due to cancel restrictions.")
        cancel_id = cancel_client_id or self.new_client_order_id()
        self._finish(order, "CANCELED", now_ms)
        self._report(order, "CANCELED", now_ms, client_order_id=cancel_id, orig_client_order_id=order.client_order_id)
        self.account_event(now_ms)
        return order, cancel_id

    def wipe_open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Forget every open order (of ``symbol``) with no event, as a venue restarted without them would.

        Their reservations are released (the next account event shows it); their past fills stay in
        ``myTrades``. Afterwards a query answers -2013 and a cancel -2011, as for an id never seen."""
        wiped = self.open_orders(symbol)
        for order in wiped:
            self._take_off_book(order)
            del self._orders[order.order_id]
            key = (order.symbol, order.client_order_id)
            if self._by_client.get(key) is order:
                del self._by_client[key]
        return wiped

    def set_quote(self, symbol: str, bid: int, ask: int, bid_qty: int, ask_qty: int, now_ms: int) -> None:
        """Install a quote (ticks, steps) and fill the resting orders it reaches."""
        book = self.books[symbol]
        for order, fill in book.set_quote(bid, ask, bid_qty, ask_qty):
            self._apply_fill(order, fill, now_ms)
        stats = self.stats[symbol]
        if not stats.count:
            stats.last_ticks = bid
        self.quote_updates[symbol] = None
        self.account_event(now_ms)

    def step(self, now_ms: int) -> None:
        """One random-walk move of every trading symbol's quote."""
        for symbol, config in self.configs.items():
            if config.status != "TRADING":
                continue
            top = self._walk.next(config, self.books[symbol].bid)
            self.set_quote(symbol, top.bid, top.ask, top.bid_qty, top.ask_qty, now_ms)

    def set_status(self, symbol: str, status: str) -> None:
        self.configs[symbol] = self.config(symbol).with_status(status)
