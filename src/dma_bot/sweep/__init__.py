"""Parameter sweeps: every combination of a grid x every recording, one deterministic backtest each, on any
``concurrent.futures.Executor`` (this process, a process pool, a Dask cluster): ``python -m dma_bot sweep``.

Modules: :mod:`~dma_bot.sweep.grid` (GRID.toml), :mod:`~dma_bot.sweep.task` (one task -> one row),
:mod:`~dma_bot.sweep.sharpe`, :mod:`~dma_bot.sweep.run` (executors, progress, Ctrl-C),
:mod:`~dma_bot.sweep.results` (files and ranking), :mod:`~dma_bot.sweep.heatmap`, :mod:`~dma_bot.sweep.cli`.
"""

from dma_bot.sweep.grid import Grid, load_grid
from dma_bot.sweep.run import SerialExecutor, SweepOutcome, run_sweep
from dma_bot.sweep.task import SweepTask, run_task

__all__ = ["Grid", "SerialExecutor", "SweepOutcome", "SweepTask", "load_grid", "run_sweep", "run_task"]
