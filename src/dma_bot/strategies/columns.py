"""What the strategies' column-wise ``on_batch`` paths share: the int64 safety bound, the window-plus-batch
array of mids, and the per-row fallback. Pure functions, no state of their own."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import numpy as np

from dma_bot.model.events import IntArray, Signal, SignalBatch, Tick, TickBatch, signal_batch_of

__all__ = ["INT64_SAFE", "on_ticks", "window_and_mid2s"]

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


def on_ticks(on_tick: Callable[[Tick, int], Signal | None], batch: TickBatch, now_ns: int) -> SignalBatch | None:
    """The per-row path: ``on_tick`` over the rows, the signals as one SignalBatch (None for none)."""
    return signal_batch_of([signal for tick in batch.rows() if (signal := on_tick(tick, now_ns)) is not None])
