"""``python -m dma_bot sweep GRID.toml RECORDING... [--env FILE] [--out DIR] [--workers N] [--cluster ADDRESS]``.

Owns the command: reads the grid (:mod:`~dma_bot.sweep.grid`) and the preset as ``backtest`` does (``--env``,
else ``./.env``; then the process environment's dma_bot keys), makes one task per combination x recording,
runs them on a process pool of ``--workers`` (default: the CPU count; 0 = in this process) or, with
``--cluster tcp://host:8786`` or ``DASK_SCHEDULER_ADDRESS``, on that Dask cluster, and writes
``DIR/results.jsonl``, ``DIR/results.csv``, for a 2-key grid ``DIR/heatmap.png`` (with the ``report`` extra),
and the ranked table on stdout; a progress bar on stderr when it is a terminal. Recordings are read by path
where each task runs: on a cluster the paths must name the same files on every worker (shared storage).

Exit status: 0 when every task ran (a failed task is a row with its error), 1 when none succeeded, 2 for a bad
command line, grid or preset (one line on stderr), 130 after Ctrl-C (pending tasks cancelled, running ones
stopped, the finished rows written; a second Ctrl-C exits at once).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from dma_bot.config import ALIASES, KEYS, OWN_PREFIXES, preset_values
from dma_bot.errors import ConfigError
from dma_bot.progress import progress_enabled
from dma_bot.report_plot import plot_available
from dma_bot.sweep.grid import Grid, load_grid
from dma_bot.sweep.heatmap import HEATMAP_HINT, write_heatmap_png
from dma_bot.sweep.results import ResultsWriter, format_table, rank
from dma_bot.sweep.run import SweepOutcome, TaskProgress, open_executor, run_sweep
from dma_bot.sweep.task import SweepTask

__all__ = ["main", "make_tasks", "our_environment"]

EXIT_OK: Final = 0
EXIT_NONE_SUCCEEDED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_KEY_NAMES: Final = frozenset(spec.name for spec in KEYS)


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer from 0 to 1024, was {raw!r}") from None
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"an integer from 0 to 1024, was {raw!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dma_bot sweep",
                                     description="Backtest every combination of a parameter grid on every recording.")
    parser.add_argument("grid", metavar="GRID.toml", help="the strategy and the parameters to sweep")
    parser.add_argument("recordings", nargs="+", metavar="RECORDING",
                        help="JSONL recordings (.gz, .zst); each combination runs on each one")
    parser.add_argument("--env", metavar="FILE", help="preset file (default ./.env, else the mock preset)")
    parser.add_argument("--out", metavar="DIR", default="sweep", help="output directory (default ./sweep)")
    parser.add_argument("--workers", metavar="N", type=_workers, default=os.cpu_count() or 1,
                        help="processes of the local pool (default: the CPU count; 0 = in this process)")
    parser.add_argument("--cluster", metavar="ADDRESS", default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
                        help="a Dask scheduler, e.g. tcp://host:8786 (default DASK_SCHEDULER_ADDRESS); "
                             "needs the cluster extra and the recordings on storage the workers share")
    parser.add_argument("--strict", action="store_true", help="a recording's first bad line fails its task")
    parser.add_argument("--top", metavar="N", type=_workers, default=10, help="combinations in the table (10)")
    return parser


def our_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment variables ``load_config`` looks at (dma_bot's keys and prefixes): what a task carries."""
    return {key: value for key, value in environ.items()
            if key in _KEY_NAMES or key in ALIASES or key.startswith(OWN_PREFIXES)}


def make_tasks(grid: Grid, recordings: Sequence[str], preset: dict[str, str], environ: dict[str, str],
               *, strict: bool = False) -> list[SweepTask]:
    """One task per combination x recording, the recordings varying fastest."""
    tasks = []
    for params in grid.combinations():
        for recording in recordings:
            tasks.append(SweepTask(index=len(tasks), recording=recording, params=params, swept=grid.keys,
                                   preset=preset, environ=environ, strict=strict))
    return tasks


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        grid = load_grid(args.grid)
        preset = preset_values(args.env)
    except ConfigError as e:
        print(f"dma_bot sweep: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not args.cluster:  # on a cluster the paths are the workers' to read
        missing = [path for path in args.recordings if not Path(path).is_file()]
        if missing:
            print(f"dma_bot sweep: RECORDING: existing recording files, was {' '.join(missing)} (not found)",
                  file=sys.stderr)
            return EXIT_USAGE
    tasks = make_tasks(grid, args.recordings, preset, our_environment(os.environ), strict=args.strict)
    out = Path(args.out)
    writer = ResultsWriter(out, grid.keys)
    progress = TaskProgress(len(tasks), enabled=progress_enabled(sys.stderr))

    def row_done(row: dict[str, Any]) -> None:
        writer.add(row)
        progress.done(row)

    started = time.perf_counter()
    outcome: SweepOutcome | None = None
    try:
        with open_executor(args.workers, args.cluster) as executor:
            outcome = run_sweep(tasks, executor, row_done)
            if outcome.interrupted:
                signal.signal(signal.SIGINT, _forced_exit)
    except ConfigError as e:
        progress.close()
        print(f"dma_bot sweep: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # while the executor started or stopped
        signal.signal(signal.SIGINT, _forced_exit)
        outcome = outcome or SweepOutcome()
        outcome.interrupted = True
    progress.close()
    wall_s = time.perf_counter() - started
    rows = writer.finish(outcome.rows)
    ranked = rank(rows, grid.keys)
    if rows:
        print(format_table(ranked, grid.keys, args.top))
    failed = sum(row["error"] is not None for row in rows)
    where = args.cluster or (f"{args.workers} processes" if args.workers else "this process")
    print(f"tasks {len(rows)} of {len(tasks)} in {wall_s:.1f} s on {where}: {len(rows) - failed} ok, {failed} failed; "
          f"results: {out / 'results.csv'} {out / 'results.jsonl'}")
    if len(grid.keys) == 2 and rows:
        _heatmap(out, grid, ranked)
    if outcome.interrupted:
        print(f"dma_bot sweep: interrupted: {len(tasks) - len(rows)} tasks not run", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if failed < len(rows) else EXIT_NONE_SUCCEEDED


def _forced_exit(signum: int, frame: object) -> None:
    os._exit(EXIT_INTERRUPTED)


def _heatmap(out: Path, grid: Grid, ranked: Sequence[Any]) -> None:
    if not plot_available():
        print(HEATMAP_HINT, file=sys.stderr)
        return
    (x_key, x_values), (y_key, y_values) = grid.dimensions
    write_heatmap_png(out / "heatmap.png", ranked, x_values, y_values, (x_key, y_key),
                      title=f"{grid.strategy}: net PnL by {x_key} and {y_key}")
    print(f"heatmap: {out / 'heatmap.png'}")
