"""SimVenue: a simulated exchange as a pure, seeded, synchronous core.

It owns the venue's behaviour: when an order is acknowledged, whether and in how many parts it fills,
its fees, its ids and its rejects. It owns no asyncio, no clock and no queues: it is driven by ``now_ns``
arguments, so the live mock gateway and a backtest loop share every decision. ``submit()`` schedules an
order's whole life (ACK, then one FILLED or 2-3 PARTIALLY_FILLED..FILLED; or one REJECTED) with latencies
drawn from ``random.Random(seed)``; ``pop_due(now_ns)`` hands out the reports that are due. The sim fills
passively at the route's limit price and never infers a fact: side, symbol and venue come from the route.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from heapq import heappop, heappush, heapreplace
from itertools import pairwise
from typing import Final

from dma_bot.errors import ConfigError
from dma_bot.model.enums import ExecStatus
from dma_bot.model.events import ExecReport, Route
from dma_bot.model.instrument import Instrument

__all__ = ["SimVenue", "SimVenueParams"]

_NS_PER_MS: Final = 1_000_000
_ZERO: Final = Decimal(0)
_ACK: Final = ExecStatus.ACK
_PARTIAL: Final = ExecStatus.PARTIALLY_FILLED
_FILLED: Final = ExecStatus.FILLED
_REJECTED: Final = ExecStatus.REJECTED


def _latency_ns(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ConfigError(f"{key}: must be an int or Decimal number of milliseconds, was {value!r}")
    if (isinstance(value, Decimal) and not value.is_finite()) or value < 0:
        raise ConfigError(f"{key}: must be a finite number of milliseconds >= 0, was {value!r}")
    return int((Decimal(value) * _NS_PER_MS).to_integral_value())


def _check_int(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: must be an integer in {low}..{high}, was {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimVenueParams:
    """How one simulated venue behaves. Latencies are means in milliseconds (int or Decimal, never float).

    ``ack_latency_ms`` is normally the venue's latency from the router's venue table (config supplies
    it). Each drawn latency is uniform within +-``jitter_pct`` percent of its mean, in integer ns.
    ``partial_fill_pct`` is the probability (percent) that an order fills in 2-3 parts,
    ``reject_pct`` the probability that the venue rejects it, ``fee_bps`` the fee on each fill's notional.
    """

    ack_latency_ms: Decimal | int
    fill_latency_ms: Decimal | int
    jitter_pct: int = 50
    partial_fill_pct: int = 30
    reject_pct: int = 0
    fee_bps: int
    ack_latency_ns: int = field(init=False, repr=False)
    fill_latency_ns: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ack_latency_ns", _latency_ns("ack_latency_ms", self.ack_latency_ms))
        object.__setattr__(self, "fill_latency_ns", _latency_ns("fill_latency_ms", self.fill_latency_ms))
        _check_int("jitter_pct", self.jitter_pct, 0, 100)
        _check_int("partial_fill_pct", self.partial_fill_pct, 0, 100)
        _check_int("reject_pct", self.reject_pct, 0, 100)
        _check_int("fee_bps", self.fee_bps, 0, 10_000)


class _Order:
    """One submitted order and its scheduled reports ``(due_ns, status, last_qty)``, in time order."""

    __slots__ = ("cum_qty", "events", "index", "instrument", "reason", "route", "venue_order_id")

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


class SimVenue:
    """The simulated venue ``name``: deterministic for a given seed and sequence of ``(route, now_ns)``."""

    __slots__ = (
        "_accepted",
        "_ack_jitter",
        "_ack_mean",
        "_fee_rate",
        "_fill_jitter",
        "_fill_mean",
        "_heap",
        "_instruments",
        "_open",
        "_partial_pct",
        "_reject_pct",
        "_rng",
        "_submitted",
        "_trades",
        "name",
        "params",
    )

    def __init__(self, name: str, params: SimVenueParams, instruments: Mapping[str, Instrument], seed: int):
        self.name = name
        self.params = params
        self._instruments = dict(instruments)
        self._rng = random.Random(seed)
        self._ack_mean = params.ack_latency_ns
        self._ack_jitter = params.ack_latency_ns * params.jitter_pct // 100
        self._fill_mean = params.fill_latency_ns
        self._fill_jitter = params.fill_latency_ns * params.jitter_pct // 100
        self._partial_pct = params.partial_fill_pct
        self._reject_pct = params.reject_pct
        self._fee_rate = Decimal(params.fee_bps).scaleb(-4) if params.fee_bps else _ZERO
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
        """Accept ``route`` at ``now_ns`` and schedule every report of its life."""
        if route.venue != self.name:
            raise ValueError(f"route {route.client_order_id}: venue must be {self.name!r}, was {route.venue!r}")
        rng = self._rng
        due = now_ns + self._draw(self._ack_mean, self._ack_jitter)
        instrument = self._instruments.get(route.symbol)
        reason = self._refusal(route, instrument)
        if not reason and self._reject_pct and rng.randrange(100) < self._reject_pct:
            reason = "simulated reject"
        if reason:
            order = _Order(route, instrument, "", [(due, _REJECTED, 0)], reason)
        else:
            self._accepted += 1
            events = [(due, _ACK, 0)]
            parts = self._split(route.quantity)
            last = len(parts) - 1
            for index, part in enumerate(parts):
                due += max(self._draw(self._fill_mean, self._fill_jitter), 1)
                events.append((due, _FILLED if index == last else _PARTIAL, part))
            order = _Order(route, instrument, f"{self.name}-{self._accepted}", events, "")
        heappush(self._heap, (order.events[0][0], self._submitted, order))
        self._submitted += 1
        self._open += 1

    def pop_due(self, now_ns: int) -> list[ExecReport]:
        """Every report due at or before ``now_ns``, in time order (ties in submit order); ``ts_ns = now_ns``."""
        heap = self._heap
        reports: list[ExecReport] = []
        while heap and heap[0][0] <= now_ns:
            due, seq, order = heap[0]
            events = order.events
            _, status, last_qty = events[order.index]
            order.index += 1
            if order.index < len(events):
                heapreplace(heap, (events[order.index][0], seq, order))
            else:
                heappop(heap)
                self._open -= 1
            reports.append(self._report(order, due, status, last_qty, now_ns))
        return reports

    def _draw(self, mean: int, jitter: int) -> int:
        if not jitter:
            return mean
        return max(mean - jitter + self._rng.randrange(2 * jitter + 1), 0)

    def _split(self, quantity: int) -> list[int]:
        """Fill sizes in steps, each > 0, summing exactly to ``quantity``."""
        if not self._partial_pct or quantity < 2 or self._rng.randrange(100) >= self._partial_pct:
            return [quantity]
        rng = self._rng
        parts = min(2 + rng.randrange(2), quantity)
        bounds = [0, *sorted(rng.sample(range(1, quantity), parts - 1)), quantity]
        return [high - low for low, high in pairwise(bounds)]

    @staticmethod
    def _refusal(route: Route, instrument: Instrument | None) -> str:
        """Why a venue's order checks refuse ``route`` ('' when they pass)."""
        if instrument is None:
            return f"unknown symbol {route.symbol}"
        if route.quantity <= 0:
            return f"quantity: must be positive steps, was {route.quantity}"
        if route.price <= 0:
            return f"price: must be positive ticks, was {route.price}"
        if instrument.min_qty and instrument.steps_to_qty(route.quantity) < instrument.min_qty:
            return f"quantity: must be at least min_qty {instrument.min_qty}, was {route.quantity} steps"
        if instrument.min_notional and instrument.notional(route.price, route.quantity) < instrument.min_notional:
            return f"notional: must be at least min_notional {instrument.min_notional}"
        return ""

    def _report(self, order: _Order, due: int, status: ExecStatus, last_qty: int, now_ns: int) -> ExecReport:
        route = order.route
        instrument = order.instrument
        fee = _ZERO
        trade_id = None
        last_price = 0
        if last_qty:
            order.cum_qty += last_qty
            self._trades += 1
            trade_id = f"{self.name}-t{self._trades}"
            last_price = route.price
            if self._fee_rate:
                fee = self._fee_rate * instrument.notional(last_price, last_qty)  # type: ignore[union-attr]
        return ExecReport(
            venue=self.name,
            symbol=route.symbol,
            client_order_id=route.client_order_id,
            venue_order_id=order.venue_order_id,
            side=route.side,
            status=status,
            last_qty=last_qty,
            last_price=last_price,
            order_qty=route.quantity,
            cum_qty=order.cum_qty,
            leaves_qty=0 if status is _REJECTED else route.quantity - order.cum_qty,
            fee=fee,
            fee_asset=instrument.quote_asset if instrument is not None else "",
            trade_id=trade_id,
            reason=order.reason,
            ts_event_ns=due,
            ts_ns=now_ns,
        )
