"""One sweep task: a combination's configuration overrides and one recording -> one result row.

Owns running a single deterministic backtest as ``python -m dma_bot backtest`` does (the same configuration
layers: the preset, then the environment, then the grid's keys, then FEED_MODE=replay, REPLAY_FILE and
VENUE_MODE=mock; the instruments and reference prices from the recording; the column loop), with its events
written to a null sink instead of a file. The preset and the environment's dma_bot keys are resolved once on
the machine that starts the sweep and travel inside the :class:`SweepTask`, so a task gives the same row on
any worker. :func:`run_task` never raises for the task's own failures (a combination the configuration
refuses, a missing or, with ``strict``, corrupt recording, an engine error): they are the row's ``error``.
It is a module-level function of picklable arguments, so a process pool and Dask can ship it. The backtest
runs inside :func:`~dma_bot.sweep.malloc_tuning.task_malloc`: on a Dask worker, whose nanny pins glibc's malloc
thresholds small, it would otherwise run ~40% slower.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Final, cast

from dma_bot.backtest import Backtest
from dma_bot.errors import ConfigError
from dma_bot.feed.recording import ReadStats, RecordingError
from dma_bot.feed.recording_columns import merge_columns
from dma_bot.params import backtest_config, replay_columns, replay_instruments, replay_prices
from dma_bot.sweep.malloc_tuning import task_malloc
from dma_bot.sweep.sharpe import per_minute_sharpe

__all__ = ["METRIC_COLUMNS", "SweepTask", "columns", "error_row", "net", "run_task"]

METRIC_COLUMNS: Final = ("error", "quotes", "signals", "orders", "rejects", "fills", "fees", "realized_pnl",
                         "net_pnl", "max_drawdown", "sharpe", "run_s")
"""A row's columns after ``task``, ``recording`` and the swept keys; ``fees`` is the fee value in quote currency."""


@dataclass(frozen=True, slots=True)
class SweepTask:
    """Task ``index`` of a sweep: ``params`` (the grid's keys of this combination, configuration text, swept keys
    listed in ``swept``) over ``recording`` (a path, read where the task runs)."""

    index: int
    recording: str
    params: Mapping[str, str]
    swept: tuple[str, ...]
    preset: Mapping[str, str]
    environ: Mapping[str, str]
    strict: bool = False


class _NullSink(io.RawIOBase):
    """Events go nowhere: a sweep keeps the numbers, not the event log."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _head(task: SweepTask) -> dict[str, Any]:
    return {"task": task.index, "recording": task.recording, **{key: task.params[key] for key in task.swept}}


def error_row(task: SweepTask, error: str, run_s: float | None = None) -> dict[str, Any]:
    """The row of a task that failed: its head, the error, no numbers."""
    row = _head(task) | dict.fromkeys(METRIC_COLUMNS)
    row["error"] = error
    row["run_s"] = run_s
    return row


def run_task(task: SweepTask) -> dict[str, Any]:
    """Run one backtest; its row (``error`` None) or, when it failed, its error row."""
    started = time.perf_counter()
    try:
        with task_malloc():
            row = _run(task)
    except (ConfigError, RecordingError) as e:
        return error_row(task, str(e), _elapsed(started))
    except Exception as e:  # an engine failure stays this task's: the sweep goes on
        return error_row(task, f"{type(e).__name__}: {e}", _elapsed(started))
    row["run_s"] = _elapsed(started)
    return row


def _elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _run(task: SweepTask) -> dict[str, Any]:
    config = backtest_config(task.preset, task.environ, task.recording, task.params)
    instruments = replay_instruments(config)
    prices = replay_prices(config, instruments)
    stats = ReadStats()
    blocks = merge_columns([replay_columns(config, instruments, stats, task.recording, strict=task.strict)])
    backtest = Backtest(config, instruments, prices)
    backtest.run_columns(blocks, cast(IO[bytes], _NullSink()), {"recordings": [task.recording]})
    counts = backtest.counts
    stop = backtest.stop_fields()
    sharpe = per_minute_sharpe([net for _, net in backtest.equity.minute_closes])
    return _head(task) | {
        "error": None,
        "quotes": stats.quotes,
        "signals": counts.signals,
        "orders": counts.orders,
        "rejects": counts.rejects,
        "fills": backtest.ledger.stats.fills,
        "fees": stop["fee_value"],
        "realized_pnl": stop["realized_pnl"],
        "net_pnl": stop["net_pnl"],
        "max_drawdown": stop["max_drawdown"],
        "sharpe": None if sharpe is None else str(sharpe),
        "run_s": None,
    }


def columns(swept: Sequence[str]) -> list[str]:
    """Every column of a sweep's rows, in order."""
    return ["task", "recording", *swept, *METRIC_COLUMNS]


def net(row: Mapping[str, Any]) -> Decimal | None:
    """A row's net PnL, or None for a failed task."""
    return None if row["error"] is not None else Decimal(row["net_pnl"])
