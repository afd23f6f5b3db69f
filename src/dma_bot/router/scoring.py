"""Smart order routing, the pure core: venue scores, ranking and the child-order split.

Owns the venue table (:class:`VenueSpec`), the score of each venue for an order, the choice of the top
venues and how a parent order's quantity is divided among them. It reads positions from the snapshot it
is handed and the order's own fields; it does no I/O, reads no clock (``now_ns`` is an argument) and never
sends anything: the router stage does that.

Score = ``liquidity - fee_bps - latency_ms + inventory bias``. The original charged the fee as
``fee_bps * px / 10000`` in cent ticks, which equals ``fee_bps`` at its mock price of 100.00 and grows with
the price scale; ours is scale-free, so the same venue table ranks the same way on every symbol. The bias
is ``-sign(venue position) * side.sign * weight``: a venue where this order would shrink our position
scores ``+weight``, one where it would grow it ``-weight`` (the original penalised any venue holding
inventory, whatever the order's side).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from dma_bot.model.enums import Side
from dma_bot.model.events import Order, Route
from dma_bot.model.instrument import Instrument
from dma_bot.model.positions import PositionsView
from dma_bot.router.venue_specs import DEFAULT_VENUES, RouterParams, VenueSpec

__all__ = ["DEFAULT_VENUES", "Router", "RouterParams", "RouterStats", "VenueSpec"]

_new_tuple: Final = tuple.__new__
_BUY: Final = Side.BUY


def _score_then_name(item: tuple[int, str, VenueSpec]) -> tuple[int, str]:
    return item[0], item[1]


class RouterStats:
    """Child orders sent per venue (every configured venue present, from 0)."""

    __slots__ = ("routes_by_venue",)

    def __init__(self, venues: tuple[VenueSpec, ...]) -> None:
        self.routes_by_venue: dict[str, int] = {venue.name: 0 for venue in venues}


def _min_child_steps(instrument: Instrument, quantity: Decimal) -> int:
    steps = instrument.qty_to_steps(quantity)
    return steps + 1 if instrument.steps_to_qty(steps) < quantity else steps


class Router:
    """``route(order, snapshot, now_ns)`` -> child Routes. Venues rank by score, ties by name ascending;
    the top ``top_n`` split the quantity by liquidity and the children never sum past the parent."""

    def __init__(self, params: RouterParams, instruments: Mapping[str, Instrument]) -> None:
        self.params = params
        self.stats = RouterStats(params.venues)
        by_name = sorted(params.venues, key=lambda venue: venue.name)
        self._venues = tuple((venue.name, venue.base_score, venue) for venue in by_name)
        self._unbiased = sorted(((venue.base_score, venue) for venue in by_name), key=lambda item: -item[0])
        self._unbiased_scores = {venue.name: venue.base_score for venue in by_name}
        self.last_scores: dict[str, int] = dict(self._unbiased_scores)
        self._biased_last = False
        self._top_n = params.top_n
        self._weight = params.inventory_bias_weight
        self._min_child = {
            symbol: _min_child_steps(instrument, params.min_child_qty) for symbol, instrument in instruments.items()
        }

    @property
    def venue_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self._venues)

    def rank(self, order: Order, snapshot: PositionsView) -> list[tuple[int, VenueSpec]]:
        """(score, venue) for every venue, best first (ties by name); also refreshes ``last_scores``.

        Without inventory (or with the bias off) the ranking is the one precomputed at construction."""
        weight = self._weight
        held = snapshot.held_steps
        if not weight or not held:
            if self._biased_last:
                self.last_scores.update(self._unbiased_scores)
                self._biased_last = False
            return self._unbiased
        side_weight = weight if order.side == _BUY else -weight
        symbol = order.symbol
        last_scores = self.last_scores
        keyed = []
        for name, score, venue in self._venues:
            steps = held.get((symbol, name), 0)
            if steps > 0:
                score -= side_weight
            elif steps < 0:
                score += side_weight
            last_scores[name] = score
            keyed.append((-score, name, venue))
        keyed.sort(key=_score_then_name)
        self._biased_last = True
        return [(-negative, venue) for negative, _, venue in keyed]

    def route(self, order: Order, snapshot: PositionsView, now_ns: int) -> list[Route]:
        try:
            min_child = self._min_child[order.symbol]
        except KeyError:
            raise ValueError(f"order.symbol: one of {sorted(self._min_child)}, was {order.symbol!r}") from None
        top = self.rank(order, snapshot)[: self._top_n]
        total_liquidity = 0
        for _, venue in top:
            total_liquidity += venue.liquidity
        quantity = order.quantity
        remaining = quantity
        last = len(top) - 1
        routes: list[Route] = []
        counts = self.stats.routes_by_venue
        parent = order.client_order_id
        for index, (_, venue) in enumerate(top):
            if index == last:
                share = remaining
            else:
                share = quantity * venue.liquidity // total_liquidity
                if share < min_child:
                    share = min_child
                if share > remaining:
                    share = remaining
            if share <= 0:
                continue
            remaining -= share
            counts[venue.name] += 1
            name = venue.name
            # positionally, in Route's field order (tuple.__new__: a keyword build costs several times more)
            routes.append(_new_tuple(Route, (name, f"{parent}-{name}", parent, order.strategy, order.symbol,
                                             order.side, order.price, share, order.ts_signal_ns, now_ns)))
        return routes
