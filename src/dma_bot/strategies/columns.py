"""What the strategies' column-wise ``on_batch`` paths share: the int64 safety bound, the window-plus-batch
array of mids, and the per-row fallback. Pure functions, no state of their own."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from dma_bot.model.enums import Side
from dma_bot.model.events import BoolArray, IntArray, Signal, SignalBatch, Tick, TickBatch, signal_batch

__all__ = ["INT64_SAFE", "Rows", "batch_of", "rows_by_ticks", "window_and_mid2s"]

Rows = tuple[npt.NDArray[np.intp], BoolArray]
"""The rows of a column of quotes that signal, in order, and whether each is a buy (at the ask; else a sell at
the bid): what a strategy's ``signal_rows`` gives."""

INT64_SAFE: Final = 1 << 62
"""A column-wise path runs only if every intermediate provably stays below this (exactness over speed)."""


def window_and_mid2s(window: deque[int], bid: IntArray, ask: IntArray) -> tuple[IntArray, int] | None:
    """``window`` followed by the batch's ``bid + ask`` as one int64 array, and the largest magnitude of a
    window value, bid or ask (so no value of the array exceeds twice it); None if a value may not fit int64."""
    try:
        previous = np.fromiter(window, np.int64, len(window))
    except OverflowError:  # an earlier on_tick stored a mid2 beyond int64
        return None
    inputs = np.concatenate((previous, bid, ask))
    bound = max(int(inputs.max()), -int(inputs.min()))
    if 2 * bound >= INT64_SAFE:
        return None
    return np.concatenate((previous, bid + ask)), bound


def rows_by_ticks(on_tick: Callable[[Tick, int], Signal | None], bid: IntArray, ask: IntArray) -> Rows:
    """The per-row path: ``on_tick`` over the quotes (a strategy reads only bid and ask; the Tick's other fields
    are placeholders), as signalling rows."""
    rows: list[int] = []
    buys: list[bool] = []
    buy = Side.BUY
    for row, (b, a) in enumerate(zip(bid.tolist(), ask.tolist(), strict=True)):
        signal = on_tick(Tick("", b, a, 0, 0, 0, 0), 0)
        if signal is not None:
            rows.append(row)
            buys.append(signal.side is buy)
    return np.array(rows, dtype=np.intp), np.array(buys, dtype=np.bool_)


def batch_of(name: str, symbol: str, quantity: int, batch: TickBatch, rows: Rows, now_ns: int) -> SignalBatch | None:
    """The signals of ``rows`` of ``batch`` as one SignalBatch (None for none): a buy at the row's ask, a sell
    at its bid."""
    index, buy = rows
    if not len(index):
        return None
    return signal_batch(name, symbol, buy, np.where(buy, batch.ask[index], batch.bid[index]), quantity,
                        batch.ts_event_ns, now_ns)
