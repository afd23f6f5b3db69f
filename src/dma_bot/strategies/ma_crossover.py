"""Moving-average crossover on one symbol: buy on a golden cross of the fast SMA over the slow, sell on a dead one.

Owns :class:`MACrossoverParams` and :class:`MACrossover`, a pure synchronous core: exact integer arithmetic on
ticks, no I/O, no clock reads, no queues. It does not size, risk-check or route the signal.

Port of ``MACrossState`` in the Rust PoC's ``src/strategy.rs``, with its bugs fixed:

- The PoC kept one state per worker across all symbols, mixing symbols into one window. Here one instance
  serves exactly one (strategy, symbol); the worker routes ticks by symbol.
- The PoC's mid was ``(bid + ask) / 2`` and each SMA ``sum / len``, all truncating, so ``fast - slow`` could be
  off by a tick either way. Here both windows hold ``bid + ask`` (twice the mid) and the difference is kept
  scaled by ``2 * fast * slow``: ``D = sum_fast * slow - sum_slow * fast``, compared with
  ``min_edge * 2 * fast * slow``. Nothing is rounded.
- The PoC's ``prev_diff_sign`` starts at 0 while the cooldown starts elapsed, so its very first full-window
  tick always "crossed" from 0 and fired a signal; the code meant to initialise the sign was unreachable there.
  Here the first full-window sign (with ``|fast - slow| >= min_edge``) only initialises it, as the PoC intended.

Semantics kept from the PoC: ``|fast - slow| < min_edge`` ticks is noise and changes nothing; a signal fires
when the sign of ``fast - slow`` differs from the last signalled (or initial) sign and at least
``cooldown_ticks`` ticks passed since the last signal (the counter starts elapsed). A cross that happens inside
the cooldown is deferred, not dropped: it fires on the first tick after the cooldown where the sign still
differs. Golden cross buys at the ask, dead cross sells at the bid. ``cooldown_ticks=1`` means no cooldown.
Warm-up: silent until ``slow`` ticks were seen; the earliest signal is at tick index ``slow``.

``on_batch`` takes a :class:`TickBatch` and gives exactly what ``on_tick`` over its rows gives (signals and
state), computed on the int64 columns: both sums come from one cumulative sum, and Python only steps from one
signal to the next. Batches below ``_VECTOR_MIN`` rows, or whose values could overflow int64, take the per-row
loop instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from dma_bot.model.enums import Side
from dma_bot.model.events import IntArray, Signal, SignalBatch, Tick, TickBatch
from dma_bot.strategies.columns import INT64_SAFE, Rows, batch_of, rows_by_ticks, window_and_mid2s

__all__ = ["MA_CROSSOVER", "MACrossover", "MACrossoverParams"]

MA_CROSSOVER: Final = "ma_crossover"
_BUY: Final = Side.BUY  # Side.BUY is an enum-metaclass lookup (~90 ns on 3.11)
_SELL: Final = Side.SELL
_new_tuple: Final = tuple.__new__  # builds the Signal NamedTuple without its Python-level __new__
_VECTOR_MIN: Final = 48  # rows: below this the per-row loop is faster (numpy's fixed cost is ~40 us a batch)


def _require_int(field: str, value: object, minimum: int, detail: str = "") -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{field}: an integer >= {minimum}{detail}, was {value!r}")


@dataclass(frozen=True, slots=True)
class MACrossoverParams:
    """SMA lengths in ticks (1 <= fast < slow), noise filter in price ticks and cooldown in ticks (all >= 1)."""

    fast: int = 16
    slow: int = 64
    min_edge_ticks: int = 2
    cooldown_ticks: int = 16

    def __post_init__(self) -> None:
        _require_int("ma_crossover.fast", self.fast, 1)
        _require_int("ma_crossover.slow", self.slow, self.fast + 1, f" (greater than fast={self.fast})")
        _require_int("ma_crossover.min_edge_ticks", self.min_edge_ticks, 1)
        _require_int("ma_crossover.cooldown_ticks", self.cooldown_ticks, 1)


class MACrossover:
    """Signals on a sign change of ``SMA(fast) - SMA(slow)`` of the mids, filtered by edge and cooldown."""

    __slots__ = (
        "_cooldown",
        "_fast",
        "_fast_sum2",
        "_prev_sign",
        "_since_last",
        "_slow",
        "_slow_sum2",
        "_threshold",
        "_warmup",
        "_window",
        "name",
        "params",
        "quantity",
        "symbol",
    )

    def __init__(self, symbol: str, params: MACrossoverParams, quantity: int) -> None:
        _require_int("quantity", quantity, 1)
        self.name = MA_CROSSOVER
        self.symbol = symbol
        self.params = params
        self.quantity = quantity
        self._fast = params.fast
        self._slow = params.slow
        self._cooldown = params.cooldown_ticks
        self._threshold = params.min_edge_ticks * 2 * params.fast * params.slow
        # The last `slow` mids serve both SMAs: the fast window is the newest `fast` of them. Pre-filled with
        # zeros, so window[0] and window[-fast] are the values leaving the sums; the zeros leave first.
        self._window = deque([0] * params.slow, maxlen=params.slow)
        self._warmup = params.slow
        self._fast_sum2 = 0
        self._slow_sum2 = 0
        self._prev_sign = 0
        self._since_last = params.cooldown_ticks

    @property
    def warmed_up(self) -> bool:
        """True once the slow window is full."""
        return self._warmup == 0

    def on_tick(self, tick: Tick, now_ns: int) -> Signal | None:
        mid2 = tick.bid + tick.ask
        window = self._window
        slow = self._slow
        fast = self._fast
        self._fast_sum2 += mid2 - window[-fast]
        self._slow_sum2 += mid2 - window[0]
        window.append(mid2)
        if self._since_last < self._cooldown:
            self._since_last += 1
        if self._warmup:
            self._warmup -= 1
            if self._warmup:
                return None
        diff = self._fast_sum2 * slow - self._slow_sum2 * fast
        threshold = self._threshold
        if diff >= threshold:
            sign = 1
        elif diff <= -threshold:
            sign = -1
        else:
            return None
        prev = self._prev_sign
        if sign == prev:
            return None
        if prev == 0:
            self._prev_sign = sign
            return None
        if self._since_last < self._cooldown:
            return None
        self._prev_sign = sign
        self._since_last = 0
        if sign > 0:
            return _new_tuple(Signal, (self.name, self.symbol, _BUY, tick.ask, self.quantity, tick.ts_event_ns, now_ns))
        return _new_tuple(Signal, (self.name, self.symbol, _SELL, tick.bid, self.quantity, tick.ts_event_ns, now_ns))

    def on_batch(self, batch: TickBatch, now_ns: int) -> SignalBatch | None:
        """The signals, in order, and the state that ``on_tick`` over ``batch.rows()`` would give."""
        return batch_of(self.name, self.symbol, self.quantity, batch, self.signal_rows(batch.bid, batch.ask), now_ns)

    def signal_rows(self, bid: IntArray, ask: IntArray) -> Rows:
        """The rows of these quotes (in order) that signal and the state ``on_tick`` over them would give."""
        n = len(bid)
        window = self._window
        slow = self._slow
        fast = self._fast
        threshold = self._threshold
        prepared = window_and_mid2s(window, bid, ask) if n >= _VECTOR_MIN else None
        if prepared is None:
            return rows_by_ticks(self.on_tick, bid, ask)
        values, bound = prepared
        if (slow + n) * 2 * bound >= INT64_SAFE or 4 * fast * slow * bound + threshold >= INT64_SAFE:
            return rows_by_ticks(self.on_tick, bid, ask)
        sums = np.cumsum(values)
        ends = sums[slow:]  # row i's windows end at values[slow + i], its own mid2
        slow_sums = ends - sums[:n]
        fast_sums = ends - sums[slow - fast : slow - fast + n]
        warm = self._warmup
        start = warm - 1 if warm else 0
        diffs = fast_sums[start:] * slow - slow_sums[start:] * fast
        ups = (np.flatnonzero(diffs >= threshold) + start).tolist()
        downs = (np.flatnonzero(diffs <= -threshold) + start).tolist()
        prev = self._prev_sign
        cooldown = self._cooldown
        since_last = self._since_last
        after = start  # the first row whose sign is still to be read
        if prev == 0:
            first_up = ups[0] if ups else n
            first_down = downs[0] if downs else n
            if first_up != first_down:  # else neither exists: no sign to initialise from
                prev = 1 if first_up < first_down else -1
                after = min(first_up, first_down) + 1
        earliest = cooldown - since_last - 1  # the first row whose since_last reaches the cooldown
        fired: list[int] = []  # the rows that signal; their signs alternate, starting at -prev
        side = _SELL if prev > 0 else _BUY
        while prev:
            opposite = downs if prev > 0 else ups
            k = bisect_left(opposite, max(after, earliest))
            if k == len(opposite):
                break
            row = opposite[k]
            fired.append(row)
            prev = -prev
            after = row + 1
            earliest = row + cooldown
        buys = np.zeros(len(fired), dtype=np.bool_)
        if fired:
            buys[0 if side is _BUY else 1 :: 2] = True  # the signs alternate, starting at `side`
            since_last = n - 1 - fired[-1]
        else:
            since_last += n
        window.extend(values[-min(n, slow) :].tolist())
        self._fast_sum2 = int(fast_sums[-1])
        self._slow_sum2 = int(slow_sums[-1])
        self._warmup = max(warm - n, 0)
        self._prev_sign = prev
        self._since_last = min(since_last, cooldown)
        return np.array(fired, dtype=np.intp), buys
