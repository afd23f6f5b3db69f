"""Mean reversion on one symbol: buy when the ask sits below the rolling fair value, sell when the bid sits above.

Owns :class:`MeanReversionParams` and :class:`MeanReversion`, a pure synchronous core: exact integer
arithmetic on ticks, no I/O, no clock reads, no queues. It does not size, risk-check or route the signal.

Port of ``StratState`` in the Rust PoC's ``src/strategy.rs``, with its bugs fixed:

- The PoC kept one state per worker across all symbols, mixing symbols into one window. Here one instance
  serves exactly one (strategy, symbol); the worker routes ticks by symbol.
- The PoC's mid was ``(bid + ask) / 2`` and its fair value ``sum / window``, both truncating. Here the window
  holds ``bid + ask`` (twice the mid) and the comparisons are scaled by ``2 * window``, so nothing is rounded:
  ``ask < fair - edge`` is evaluated as ``2 * window * (ask + edge) < sum(bid + ask)``.

Semantics kept from the PoC: fair is the mean of the last ``window`` mids *including* the current tick's; no
signal until ``window`` ticks were seen (first possible signal at tick index ``window - 1``); the buy test comes
first (it wins only on a crossed book); a buy is priced at the ask, a sell at the bid.

Added: ``cooldown_ticks``, the ticks after a signal on which no signal fires (0 is the PoC: it re-signals on
every tick while the edge holds, so a backtest would measure the rate limiter rather than the strategy).

``on_batch`` takes a :class:`TickBatch` and gives exactly what ``on_tick`` over its rows gives (signals and
state), computed on the int64 columns: every window total comes from one cumulative sum. Batches below
``_VECTOR_MIN`` rows, or whose values could overflow int64, take the per-row loop instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from dma_bot.model.enums import Side
from dma_bot.model.events import IntArray, Signal, SignalBatch, Tick, TickBatch
from dma_bot.strategies.columns import INT64_SAFE, Rows, batch_of, rows_by_ticks, window_and_mid2s

__all__ = ["MEAN_REVERSION", "MeanReversion", "MeanReversionParams"]

MEAN_REVERSION: Final = "mean_reversion"
_BUY: Final = Side.BUY  # Side.BUY is an enum-metaclass lookup (~90 ns on 3.11)
_SELL: Final = Side.SELL
_new_tuple: Final = tuple.__new__  # builds the Signal NamedTuple without its Python-level __new__
_VECTOR_MIN: Final = 48  # rows: below this the per-row loop is faster (numpy's fixed cost is ~40 us a batch)


def _require_int(field: str, value: object, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{field}: an integer >= {minimum}, was {value!r}")


@dataclass(frozen=True, slots=True)
class MeanReversionParams:
    """Window length in ticks (>= 1), the edge in price ticks (>= 0) the touch must clear, and the ticks after a
    signal on which none fires (>= 0)."""

    window: int = 64
    edge_ticks: int = 3
    cooldown_ticks: int = 0

    def __post_init__(self) -> None:
        _require_int("mean_reversion.window", self.window, 1)
        _require_int("mean_reversion.edge_ticks", self.edge_ticks, 0)
        _require_int("mean_reversion.cooldown_ticks", self.cooldown_ticks, 0)


class MeanReversion:
    """Signals a buy at the ask when ``ask < fair - edge``, a sell at the bid when ``bid > fair + edge``."""

    __slots__ = (
        "_cooldown",
        "_edge",
        "_quiet",
        "_scale",
        "_sum2",
        "_warmup",
        "_window",
        "name",
        "params",
        "quantity",
        "symbol",
    )

    def __init__(self, symbol: str, params: MeanReversionParams, quantity: int) -> None:
        _require_int("quantity", quantity, 1)
        self.name = MEAN_REVERSION
        self.symbol = symbol
        self.params = params
        self.quantity = quantity
        self._edge = params.edge_ticks
        self._scale = 2 * params.window
        # Pre-filled with zeros so the value leaving the sum is always window[0]; the zeros leave first.
        self._window = deque([0] * params.window, maxlen=params.window)
        self._warmup = params.window
        self._sum2 = 0
        self._cooldown = params.cooldown_ticks
        self._quiet = 0  # ticks still to pass before a signal may fire again

    @property
    def warmed_up(self) -> bool:
        """True once the window is full and a signal may fire."""
        return self._warmup == 0

    def on_tick(self, tick: Tick, now_ns: int) -> Signal | None:
        bid = tick.bid
        ask = tick.ask
        mid2 = bid + ask
        window = self._window
        total = self._sum2 + mid2 - window[0]
        window.append(mid2)
        self._sum2 = total
        if self._warmup:
            self._warmup -= 1
            if self._warmup:
                return None
        if self._quiet:
            self._quiet -= 1
            return None
        scale = self._scale
        if scale * (ask + self._edge) < total:
            self._quiet = self._cooldown
            return _new_tuple(Signal, (self.name, self.symbol, _BUY, ask, self.quantity, tick.ts_event_ns, now_ns))
        if scale * (bid - self._edge) > total:
            self._quiet = self._cooldown
            return _new_tuple(Signal, (self.name, self.symbol, _SELL, bid, self.quantity, tick.ts_event_ns, now_ns))
        return None

    def on_batch(self, batch: TickBatch, now_ns: int) -> SignalBatch | None:
        """The signals, in order, and the state that ``on_tick`` over ``batch.rows()`` would give."""
        return batch_of(self.name, self.symbol, self.quantity, batch, self.signal_rows(batch.bid, batch.ask), now_ns)

    def signal_rows(self, bid: IntArray, ask: IntArray) -> Rows:
        """The rows of these quotes (in order) that signal and the state ``on_tick`` over them would give."""
        n = len(bid)
        window = self._window
        width = len(window)
        scale = self._scale
        edge = self._edge
        prepared = window_and_mid2s(window, bid, ask) if n >= _VECTOR_MIN else None
        if prepared is None:
            return rows_by_ticks(self.on_tick, bid, ask)
        values, bound = prepared
        if (width + n) * 2 * bound >= INT64_SAFE or scale * (bound + edge) >= INT64_SAFE:
            return rows_by_ticks(self.on_tick, bid, ask)
        sums = np.cumsum(values)
        totals = sums[width:] - sums[:n]  # row i: values[i + 1 : i + 1 + width], its window after the append
        warm = self._warmup
        start = warm - 1 if warm else 0
        live = totals[start:]
        buy = scale * (ask[start:] + edge) < live
        hits = np.flatnonzero(buy | (scale * (bid[start:] - edge) > live))
        quiet = self._quiet
        cooldown = self._cooldown
        if quiet or cooldown:
            hits = self._fired(hits, quiet, cooldown)
        if len(hits):
            self._quiet = max(0, cooldown - (n - 1 - start - int(hits[-1])))
        else:
            self._quiet = max(0, quiet - max(0, n - start))  # rows still warming up do not count
        hit_buys = buy[hits]
        hits += start
        window.extend(values[-min(n, width) :].tolist())
        self._sum2 = int(totals[-1])
        self._warmup = max(warm - n, 0)
        return hits, hit_buys

    @staticmethod
    def _fired(hits: npt.NDArray[np.intp], quiet: int, cooldown: int) -> npt.NDArray[np.intp]:
        """The rows of ``hits`` (offsets from the first comparing row) that fire: none of the first ``quiet``,
        then at least ``cooldown`` rows between two that fire."""
        candidates = hits.tolist()
        fired: list[int] = []
        k = bisect_left(candidates, quiet)
        while k < len(candidates):
            row = candidates[k]
            fired.append(row)
            k = bisect_left(candidates, row + cooldown + 1, k + 1)
        return np.array(fired, dtype=np.intp)
