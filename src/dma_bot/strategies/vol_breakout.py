"""Volatility breakout on one symbol: buy when the mid breaks above the rolling high, sell when it breaks below the low.

Owns :class:`VolBreakoutParams` and :class:`VolBreakout`, a pure synchronous core: exact integer arithmetic on
ticks, no I/O, no clock reads, no queues. It does not size, risk-check or route the signal.

Port of ``VolBreakoutState`` in the Rust PoC's ``src/strategy.rs``, with its bugs fixed:

- The PoC kept one state per worker across all symbols, mixing symbols into one window. Here one instance
  serves exactly one (strategy, symbol); the worker routes ticks by symbol.
- The PoC's mid was ``(bid + ask) / 2``, truncating. Here the window holds ``bid + ask`` (twice the mid) and
  the edge is doubled to match: ``mid > high + edge`` is evaluated as ``mid2 > high2 + 2 * edge``.
- The PoC pushed the current mid into the window *before* comparing it with the window's high and low, so
  ``mid > high + edge`` could never hold and the strategy never fired. Here the new mid is compared with the
  high and low of the *previous* ``window`` mids, then pushed.
- The PoC rescanned the whole window on every tick (O(window)). Here two monotonic deques keep the rolling
  high and low in O(1) amortised per tick.

Semantics kept from the PoC: silent until ``window`` earlier mids exist (the earliest signal is at tick index
``window``); at least ``cooldown_ticks`` ticks between two signals, counted on every tick including warm-up
and starting elapsed (``cooldown_ticks=1`` means no cooldown); the buy test comes first; a buy is priced at
the ask, a sell at the bid.

``on_batch`` takes a :class:`TickBatch` and gives exactly what ``on_tick`` over its rows gives (signals and
state), computed on the int64 columns: each row's high and low come from a sliding-window view, Python only
steps from one signal to the next, and the monotonic deques are rebuilt from the final window. Batches below
``_VECTOR_MIN`` rows, or whose values could overflow int64, take the per-row loop instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from dma_bot.model.enums import Side
from dma_bot.model.events import IntArray, Signal, SignalBatch, Tick, TickBatch
from dma_bot.strategies.columns import INT64_SAFE, Rows, batch_of, rows_by_ticks, window_and_mid2s

__all__ = ["VOL_BREAKOUT", "VolBreakout", "VolBreakoutParams"]

VOL_BREAKOUT: Final = "vol_breakout"
_BUY: Final = Side.BUY  # Side.BUY is an enum-metaclass lookup (~90 ns on 3.11)
_SELL: Final = Side.SELL
_new_tuple: Final = tuple.__new__  # builds the Signal NamedTuple without its Python-level __new__
_VECTOR_MIN: Final = 96  # rows: below this the per-row loop is faster (numpy's fixed cost is ~80 us a batch)


def _require_int(field: str, value: object, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{field}: an integer >= {minimum}, was {value!r}")


def _monotonic(values: npt.NDArray[np.int64], highs: bool) -> list[int]:
    """What ``on_tick``'s deque holds after pushing ``values`` in order: for ``highs`` each value >= every later
    one (non-increasing), else each value <= every later one (non-decreasing); oldest first."""
    newest_first = values[::-1]
    keep = np.ones(len(values), dtype=bool)
    if highs:
        keep[1:] = newest_first[1:] >= np.maximum.accumulate(newest_first)[:-1]
    else:
        keep[1:] = newest_first[1:] <= np.minimum.accumulate(newest_first)[:-1]
    return newest_first[keep][::-1].tolist()


@dataclass(frozen=True, slots=True)
class VolBreakoutParams:
    """Range length in ticks (>= 1), breakout buffer in price ticks (>= 0), cooldown in ticks (>= 1)."""

    window: int = 100
    edge_ticks: int = 2  # the original had 5: never fires on the mock walk (at most 4 ticks a quote)
    cooldown_ticks: int = 20

    def __post_init__(self) -> None:
        _require_int("vol_breakout.window", self.window, 1)
        _require_int("vol_breakout.edge_ticks", self.edge_ticks, 0)
        _require_int("vol_breakout.cooldown_ticks", self.cooldown_ticks, 1)


class VolBreakout:
    """Signals a buy at the ask when ``mid > high + edge``, a sell at the bid when ``mid < low - edge``.

    ``high`` and ``low`` are over the ``window`` mids before the current one. ``_window`` holds those mids; the
    other two deques hold the candidates for the maximum (non-increasing) and minimum (non-decreasing), oldest first.
    Equal values are kept, so the mid leaving ``_window`` is a deque's front exactly when it equals that front.
    """

    __slots__ = (
        "_cooldown",
        "_edge2",
        "_highs",
        "_lows",
        "_since_last",
        "_warmup",
        "_window",
        "name",
        "params",
        "quantity",
        "symbol",
    )

    def __init__(self, symbol: str, params: VolBreakoutParams, quantity: int) -> None:
        _require_int("quantity", quantity, 1)
        self.name = VOL_BREAKOUT
        self.symbol = symbol
        self.params = params
        self.quantity = quantity
        self._edge2 = 2 * params.edge_ticks
        self._cooldown = params.cooldown_ticks
        self._window: deque[int] = deque(maxlen=params.window)
        self._warmup = params.window
        self._highs: deque[int] = deque()
        self._lows: deque[int] = deque()
        self._since_last = params.cooldown_ticks

    @property
    def warmed_up(self) -> bool:
        """True once ``window`` mids were seen, so the next tick may fire."""
        return self._warmup == 0

    @property
    def rolling_high(self) -> int | None:
        """The highest of the last ``window`` mids, in half ticks (bid + ask); None before the first tick."""
        return self._highs[0] if self._highs else None

    @property
    def rolling_low(self) -> int | None:
        """The lowest of the last ``window`` mids, in half ticks (bid + ask); None before the first tick."""
        return self._lows[0] if self._lows else None

    def on_tick(self, tick: Tick, now_ns: int) -> Signal | None:
        mid2 = tick.bid + tick.ask
        if self._since_last < self._cooldown:
            self._since_last += 1
        highs = self._highs
        lows = self._lows
        window = self._window
        signal = None
        if self._warmup:
            self._warmup -= 1
        else:
            if self._since_last >= self._cooldown:
                if mid2 > highs[0] + self._edge2:
                    self._since_last = 0
                    fields = (self.name, self.symbol, _BUY, tick.ask, self.quantity, tick.ts_event_ns, now_ns)
                    signal = _new_tuple(Signal, fields)
                elif mid2 < lows[0] - self._edge2:
                    self._since_last = 0
                    fields = (self.name, self.symbol, _SELL, tick.bid, self.quantity, tick.ts_event_ns, now_ns)
                    signal = _new_tuple(Signal, fields)
            leaving = window[0]
            if highs[0] == leaving:
                highs.popleft()
            if lows[0] == leaving:
                lows.popleft()
        window.append(mid2)
        while highs and highs[-1] < mid2:
            highs.pop()
        highs.append(mid2)
        while lows and lows[-1] > mid2:
            lows.pop()
        lows.append(mid2)
        return signal

    def on_batch(self, batch: TickBatch, now_ns: int) -> SignalBatch | None:
        """The signals, in order, and the state that ``on_tick`` over ``batch.rows()`` would give."""
        return batch_of(self.name, self.symbol, self.quantity, batch, self.signal_rows(batch.bid, batch.ask), now_ns)

    def signal_rows(self, bid: IntArray, ask: IntArray) -> Rows:
        """The rows of these quotes (in order) that signal and the state ``on_tick`` over them would give."""
        n = len(bid)
        window = self._window
        width = self.params.window
        edge2 = self._edge2
        prepared = window_and_mid2s(window, bid, ask) if n >= _VECTOR_MIN else None
        if prepared is None:
            return rows_by_ticks(self.on_tick, bid, ask)
        values, bound = prepared
        if 2 * bound + edge2 >= INT64_SAFE:
            return rows_by_ticks(self.on_tick, bid, ask)
        warm = self._warmup  # rows 0 .. warm - 1 only fill the window; row i >= warm compares
        candidates: list[int] = []
        up = np.zeros(0, dtype=bool)
        if n > warm:
            previous = sliding_window_view(values[:-1], width)  # row warm + k: the `width` mids before it
            mid2s = values[width:]
            up = mid2s > previous.max(axis=1) + edge2
            down = mid2s < previous.min(axis=1) - edge2
            candidates = (np.flatnonzero(up | down) + warm).tolist()
        cooldown = self._cooldown
        since_last = self._since_last
        fired: list[int] = []
        k = bisect_left(candidates, cooldown - since_last - 1)  # the first row whose since_last reaches cooldown
        while k < len(candidates):
            row = candidates[k]
            fired.append(row)
            k = bisect_left(candidates, row + cooldown, k + 1)
        rows = np.array(fired, dtype=np.intp)
        is_up = up[rows - warm] if fired else np.zeros(0, dtype=np.bool_)
        if fired:
            since_last = n - 1 - fired[-1]
        else:
            since_last += n
        final = values[-width:]
        window.extend(final[-n:].tolist())
        self._highs.clear()
        self._highs.extend(_monotonic(final, highs=True))
        self._lows.clear()
        self._lows.extend(_monotonic(final, highs=False))
        self._warmup = max(warm - n, 0)
        self._since_last = min(since_last, cooldown)
        return rows, is_up
