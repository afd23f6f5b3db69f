"""SimVenue: a simulated exchange as a pure, seeded, synchronous core.

It owns the venue's behaviour: when an order is acknowledged, when and at what price it fills, its fees,
its ids and its rejects. It owns no asyncio, no clock and no queues: it is driven by ``now_ns`` arguments
and reads the prevailing quotes from a :class:`MarketBoard`, so the live mock gateway and a backtest loop
share every decision. It never infers a fact: side, symbol and venue come from the route.

The fill model, in two halves:

* The schedule is decided at ``submit()`` from ``random.Random(seed)`` alone, never from quotes: one
  REJECTED (a failed order check, or ``reject_pct``), or an ACK after the ack latency, then one fill
  attempt of the whole quantity, or (``partial_fill_pct``) 2-3 attempts of random parts summing to it,
  each a fill latency after the one before. The same seed and routes give the same schedule and draws.
* Each attempt, when ``pop_due()`` reaches it, trades against the quote prevailing then,
  ``board.last[route.symbol]`` (the driver keeps the board current): a BUY fills iff the ask is at or
  below its limit (an ask of 0 is no ask), at the ask; a SELL iff the bid is at or above its limit, at the
  bid (the touch, so price improvement goes to the order). The fill is capped at the displayed size on that
  side when that size is > 0 (0 = depth unknown, e.g. the Rust recordings: the whole attempt fills).
  Whatever an attempt does not fill (no quote yet, not marketable, capped) is added to the next attempt;
  an attempt that fills nothing reports nothing. A fill that completes the order is FILLED, any other
  PARTIALLY_FILLED; what is left after the last attempt ends the order with one EXPIRED (``last_qty`` 0,
  ``leaves_qty`` 0) whose reason says why. Fees are ``fee_bps`` of each fill's notional at its fill price.

Limits: L1 only (no queue position, no depth beyond the touch), nothing rests beyond the last attempt, and
no market impact: the displayed size one order took is there again for the next.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from heapq import heappop, heappush, heapreplace
from itertools import pairwise
from typing import Final

from dma_bot.gateways.sim_venue_params import SimVenueParams
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard

__all__ = ["SimVenue", "SimVenueParams"]

_ZERO: Final = Decimal(0)
_ACK: Final = ExecStatus.ACK
_PARTIAL: Final = ExecStatus.PARTIALLY_FILLED
_FILLED: Final = ExecStatus.FILLED
_REJECTED: Final = ExecStatus.REJECTED
_EXPIRED: Final = ExecStatus.EXPIRED
_ATTEMPT: Final = ExecStatus.PARTIALLY_FILLED  # marks a scheduled fill attempt; its status is decided when due
_BUY: Final = Side.BUY
_new_tuple: Final = tuple.__new__
_WINDOW: Final = "not filled within the venue's fill window"


class _Order:
    """One submitted order and its schedule ``(due_ns, kind, part_qty)`` in time order: kind ACK or REJECTED
    (part 0), or ``_ATTEMPT`` for a fill attempt of ``part_qty`` steps plus the carried-over ``pending``."""

    __slots__ = ("cum_qty", "events", "index", "instrument", "pending", "reason", "route", "venue_order_id")

    def __init__(
        self,
        route: Route,
        instrument: Instrument | None,
        venue_order_id: str,
        events: list[tuple[int, ExecStatus, int]],
        reason: str,
    ) -> None:
        self.route = route
        self.instrument = instrument
        self.venue_order_id = venue_order_id
        self.events = events
        self.reason = reason
        self.index = 0
        self.cum_qty = 0
        self.pending = 0  # steps earlier attempts did not fill: added to the next one


class SimVenue:
    """The simulated venue ``name``: deterministic for a given seed, sequence of ``(route, now_ns)`` and the
    quotes on ``board`` at each ``pop_due``."""

    __slots__ = (
        "_accepted",
        "_ack_jitter",
        "_ack_mean",
        "_bits",
        "_board",
        "_fee_rate",
        "_fee_units",
        "_fill_jitter",
        "_fill_mean",
        "_heap",
        "_instruments",
        "_min_steps",
        "_min_units",
        "_open",
        "_partial_pct",
        "_reject_pct",
        "_rng",
        "_submitted",
        "_trades",
        "name",
        "params",
    )

    def __init__(
        self, name: str, params: SimVenueParams, instruments: Mapping[str, Instrument], seed: int, *,
        board: MarketBoard,
    ) -> None:
        self.name = name
        self._board = board
        self.params = params
        self._instruments = dict(instruments)
        self._rng = random.Random(seed)
        self._bits = self._rng.getrandbits
        self._ack_mean = params.ack_latency_ns
        self._ack_jitter = params.ack_latency_ns * params.jitter_pct // 100
        self._fill_mean = params.fill_latency_ns
        self._fill_jitter = params.fill_latency_ns * params.jitter_pct // 100
        self._partial_pct = params.partial_fill_pct
        self._reject_pct = params.reject_pct
        self._fee_rate = Decimal(params.fee_bps).scaleb(-4) if params.fee_bps else _ZERO
        self._fee_units = {symbol: self._fee_rate * instrument.tick_size * instrument.step_size
                           for symbol, instrument in self._instruments.items()}  # per tick*step of notional
        # the order checks in integers: the fewest steps of min_qty, the fewest ticks*steps of min_notional
        self._min_steps = {symbol: math.ceil(Fraction(instrument.min_qty) / Fraction(instrument.step_size))
                           for symbol, instrument in self._instruments.items()}
        self._min_units = {symbol: math.ceil(Fraction(instrument.min_notional)
                                             / (Fraction(instrument.tick_size) * Fraction(instrument.step_size)))
                           for symbol, instrument in self._instruments.items()}
        self._heap: list[tuple[int, int, _Order]] = []
        self._open = 0
        self._submitted = 0
        self._accepted = 0
        self._trades = 0

    @property
    def open_orders(self) -> int:
        """Orders whose terminal report has not been handed out yet."""
        return self._open

    def next_due_ns(self) -> int | None:
        """When the next report is due, or None when nothing is scheduled."""
        heap = self._heap
        return heap[0][0] if heap else None

    def submit(self, route: Route, now_ns: int) -> None:
        """Accept ``route`` at ``now_ns`` and schedule its life: one REJECTED, or the ACK and its fill attempts."""
        if route.venue != self.name:
            raise ValueError(f"route {route.client_order_id}: venue must be {self.name!r}, was {route.venue!r}")
        due = now_ns + self._draw(self._ack_mean, self._ack_jitter)
        instrument = self._instruments.get(route.symbol)
        reason = self._refusal(route, instrument)
        if not reason and self._reject_pct and self._below(100) < self._reject_pct:
            reason = "simulated reject"
        if reason:
            order = _Order(route, instrument, "", [(due, _REJECTED, 0)], reason)
        else:
            self._accepted += 1
            events = [(due, _ACK, 0)]
            parts = self._split(route.quantity)
            for part in parts:
                due += max(self._draw(self._fill_mean, self._fill_jitter), 1)
                events.append((due, _ATTEMPT, part))
            order = _Order(route, instrument, f"{self.name}-{self._accepted}", events, "")
        heappush(self._heap, (order.events[0][0], self._submitted, order))
        self._submitted += 1
        self._open += 1

    def pop_due(self, now_ns: int, prepare: Callable[[str], object] | None = None) -> list[ExecReport]:
        """Every report due at or before ``now_ns``, in time order (ties in submit order); ``ts_ns = now_ns``.

        Fill attempts trade against ``board.last`` as it is now: the driver calls this with the board holding
        the quotes that prevail at the reports' due times, or gives ``prepare``, called with the order's symbol
        before each attempt reads that symbol's quote (a driver that brings its board up to date only where it
        is read)."""
        heap = self._heap
        quotes = self._board.last
        reports: list[ExecReport] = []
        while heap and heap[0][0] <= now_ns:
            due, seq, order = heap[0]
            events = order.events
            _, kind, part = events[order.index]
            order.index += 1
            last = order.index == len(events)
            if last:
                heappop(heap)
                self._open -= 1
            else:
                heapreplace(heap, (events[order.index][0], seq, order))
            if kind is _ATTEMPT:
                symbol = order.route.symbol
                if prepare is not None:
                    prepare(symbol)
                self._attempt(order, due, part, last, quotes.get(symbol), now_ns, reports)
            else:
                reports.append(self._report(order, due, kind, 0, 0, now_ns))
        return reports

    def _attempt(
        self, order: _Order, due: int, part: int, last: bool, tick: Tick | None, now_ns: int,
        reports: list[ExecReport],
    ) -> None:
        """One fill attempt of ``part`` + the carried-over steps against ``tick``: its fill report (if it
        filled anything), and the EXPIRED report when it is the ``last`` attempt and steps are left."""
        want = order.pending + part
        filled = 0
        if tick is not None:
            route = order.route
            if route.side is _BUY:
                price, size = tick.ask, tick.ask_qty
                marketable = 0 < price <= route.price
            else:
                price, size = tick.bid, tick.bid_qty
                marketable = price >= route.price
            if marketable:
                filled = want if size <= 0 or size >= want else size
                status = _FILLED if order.cum_qty + filled == route.quantity else _PARTIAL
                reports.append(self._report(order, due, status, filled, price, now_ns))
        order.pending = want - filled
        if last and order.pending:
            order.reason = self._expiry_reason(order, tick)
            reports.append(self._report(order, due, _EXPIRED, 0, 0, now_ns))

    @staticmethod
    def _expiry_reason(order: _Order, tick: Tick | None) -> str:
        """Why the last attempt left ``order.pending`` steps unfilled."""
        route = order.route
        if tick is None:
            return f"{_WINDOW}: no quote for {route.symbol}"
        buy = route.side is _BUY
        touch, price, size = ("ask", tick.ask, tick.ask_qty) if buy else ("bid", tick.bid, tick.bid_qty)
        if (0 < price <= route.price) if buy else (price >= route.price):
            return (f"{_WINDOW}: the {touch} displayed {size} steps, {order.pending} steps left "
                    f"(filled {order.cum_qty} of {route.quantity})")
        return (f"{_WINDOW}: limit not marketable against the quote ({route.side} limit {route.price} ticks, "
                f"{touch} {price} ticks)")

    def _draw(self, mean: int, jitter: int) -> int:
        if not jitter:
            return mean
        return max(mean - jitter + self._below(2 * jitter + 1), 0)

    def _below(self, n: int) -> int:
        """A uniform int in [0, n), n > 0: ``random.randrange(n)``'s draw (rejection sampling on
        ``getrandbits(n.bit_length())``, the same numbers from the same state) without its argument checks."""
        getrandbits = self._bits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r

    def _split(self, quantity: int) -> list[int]:
        """Fill sizes in steps, each > 0, summing exactly to ``quantity``."""
        if not self._partial_pct or quantity < 2 or self._below(100) >= self._partial_pct:
            return [quantity]
        parts = min(2 + self._below(2), quantity)
        bounds = [0, *sorted(self._cuts(quantity, parts - 1)), quantity]
        return [high - low for low, high in pairwise(bounds)]

    def _cuts(self, quantity: int, count: int) -> list[int]:
        """``random.sample(range(1, quantity), count)``'s draw for ``count <= min(5, quantity - 1)``: CPython's
        algorithm (3.11), the same numbers from the same state, without its argument checks."""
        n = quantity - 1
        below = self._below
        cuts: list[int] = []
        if n <= 21:  # sample's pool branch: an n-list is smaller than a k-set
            pool = list(range(1, quantity))
            for i in range(count):
                j = below(n - i)
                cuts.append(pool[j])
                pool[j] = pool[n - i - 1]
        else:
            selected: set[int] = set()
            for _ in range(count):
                j = below(n)
                while j in selected:
                    j = below(n)
                selected.add(j)
                cuts.append(1 + j)
        return cuts

    def _refusal(self, route: Route, instrument: Instrument | None) -> str:
        """Why a venue's order checks refuse ``route`` ('' when they pass): exactly ``steps_to_qty(quantity) <
        min_qty`` and ``notional(price, quantity) < min_notional``, in integers."""
        if instrument is None:
            return f"unknown symbol {route.symbol}"
        quantity, price = route.quantity, route.price
        if quantity <= 0:
            return f"quantity: must be positive steps, was {quantity}"
        if price <= 0:
            return f"price: must be positive ticks, was {price}"
        if quantity < self._min_steps[route.symbol]:
            return f"quantity: must be at least min_qty {instrument.min_qty}, was {quantity} steps"
        if price * quantity < self._min_units[route.symbol]:
            return f"notional: must be at least min_notional {instrument.min_notional}"
        return ""

    def _report(
        self, order: _Order, due: int, status: ExecStatus, last_qty: int, last_price: int, now_ns: int,
    ) -> ExecReport:
        route = order.route
        instrument = order.instrument
        fee = _ZERO
        trade_id = None
        if last_qty:
            order.cum_qty += last_qty
            self._trades += 1
            trade_id = f"{self.name}-t{self._trades}"
            if self._fee_rate:  # fee rate * tick * step * (ticks * steps): the notional's fee, one multiply
                fee = self._fee_units[route.symbol] * (last_price * last_qty)
        # positionally, in ExecReport's field order (tuple.__new__: a keyword build costs ~10x, per report)
        return _new_tuple(ExecReport, (
            self.name, route.symbol, route.client_order_id, order.venue_order_id, route.side, status,
            route.quantity, last_qty, last_price, order.cum_qty,
            0 if status is _REJECTED or status is _EXPIRED else route.quantity - order.cum_qty,
            fee, instrument.quote_asset if instrument is not None else "", trade_id, order.reason, due, now_ns,
        ))
