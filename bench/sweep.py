"""Sweep benchmark: the same 32 backtests serially, on a process pool and on a Dask LocalCluster.

The grid: the mock preset (.env.mock: three strategies on 4 symbols) with MR_WINDOW x MA_FAST swept (4 x 4) over
two recordings of the mock walk (``--quotes`` quotes each, seeds 42 and 43, written by ``bench/backtest.py``'s
writer): 32 tasks of about a second each on this machine's cores. Three runs of the same tasks through
:func:`dma_bot.sweep.run.run_sweep`, the sweep command's code path:

* ``serial``: in this process (``SerialExecutor``, ``--workers 0``);
* ``pool``: ``ProcessPoolExecutor(--workers)`` (spawned workers; their start-up is in the wall time);
* ``dask``: a ``LocalCluster(n_workers=--workers, threads_per_worker=1)`` on 127.0.0.1, dashboard off, through
  ``Client.get_executor()``; the cluster's start-up is in the wall time and also reported on its own;
* ``dask-tuned``: the same, but the nannies do not set ``MALLOC_TRIM_THRESHOLD_=65536`` for their workers
  (Dask's default ``distributed.nanny.pre-spawn-environ``: a fixed trim threshold turns off glibc's adaptive
  thresholds, and this allocation-heavy loop then runs ~40% slower unless the task raises them again, which
  ``sweep.malloc_tuning`` does) and the workers' statistical profiler (a 10 ms stack sampler) is off: what a
  cluster configured for CPU-bound work gives, to compare ``dask`` (a cluster as users find it) with. A nanny
  writes its pre-spawn variables into this process's ``os.environ`` and leaves them there (later workers would
  inherit them), so each cluster runs with this process's environment put back afterwards.

For each: wall time, speed-up over serial, and the per-task overhead: (wall time x workers - the tasks' own run
time) / tasks, i.e. what each task costs beyond its backtest (shipping, scheduling, idle tail, start-up). The
rows of the three runs must be identical (run time aside), or the benchmark fails. Prints human-readable lines;
with ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from dma_bot.config import read_env_file
from dma_bot.sweep.cli import make_tasks
from dma_bot.sweep.grid import parse_grid
from dma_bot.sweep.run import SerialExecutor, process_pool, run_sweep
from dma_bot.sweep.task import SweepTask

ROOT = Path(__file__).resolve().parents[1]
MOCK_PRESET = ROOT / ".env.mock"
NANNY_ENVIRON = "distributed.nanny.pre-spawn-environ"
GRID = {
    "strategy": "mean_reversion,ma_crossover,vol_breakout",
    "params": {"MR_WINDOW": [32, 64, 128, 256], "MA_FAST": [8, 12, 16, 24]},
}


def _writer() -> Callable[..., dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("bench_backtest", ROOT / "bench" / "backtest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.write_recording  # type: ignore[no-any-return]


@contextmanager
def _environ_restored() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _timed(tasks: Sequence[SweepTask], executor: Executor) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    outcome = run_sweep(tasks, executor)
    wall_s = time.perf_counter() - started
    if outcome.interrupted:
        raise KeyboardInterrupt
    return wall_s, sorted(outcome.rows, key=lambda row: row["task"])


def _result(name: str, workers: int, wall_s: float, rows: list[dict[str, Any]], serial_s: float | None,
            **extra: Any) -> dict[str, Any]:
    busy_s = sum(row["run_s"] for row in rows)
    failed = [row["error"] for row in rows if row["error"] is not None]
    if failed:
        raise SystemExit(f"bench/sweep.py: {name}: {len(failed)} tasks failed, first: {failed[0]}")
    result = {
        "mode": name, "workers": workers, "tasks": len(rows), "wall_s": round(wall_s, 2),
        "task_run_s_mean": round(busy_s / len(rows), 3),
        "speedup": round(serial_s / wall_s, 2) if serial_s else 1.0,
        "overhead_ms_per_task": round((wall_s * workers - busy_s) / len(rows) * 1000, 1), **extra,
    }
    print(f"  {name:<10} {workers} worker{'s' if workers > 1 else ' '}: {result['wall_s']:6.2f} s  "
          f"speed-up {result['speedup']:.2f}x  overhead {result['overhead_ms_per_task']:7.1f} ms/task  "
          f"(tasks {result['task_run_s_mean']} s each)"
          + "".join(f"  {key} {value}" for key, value in extra.items()), flush=True)
    return result


def _stripped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "run_s"} for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=200_000, help="quotes per recording (default 200,000)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes and Dask workers (default 2)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    import dask
    from distributed import Client, LocalCluster

    preset = read_env_file(MOCK_PRESET)
    write_recording = _writer()
    with tempfile.TemporaryDirectory(prefix="dma_bot_bench_sweep_") as folder:
        recordings = []
        for seed in ("42", "43"):
            path = Path(folder) / f"walk_{seed}.jsonl"
            write_recording(path, {**preset, "MOCK_SEED": seed}, args.quotes)
            recordings.append(str(path))
        tasks = make_tasks(parse_grid(GRID, "bench grid"), recordings, preset, {})
        print(f"sweep: {len(tasks)} tasks (MR_WINDOW x MA_FAST x 2 recordings of {args.quotes:,} quotes, "
              f"three strategies on 4 symbols)", flush=True)
        serial_s, serial = _timed(tasks, SerialExecutor())
        results = [_result("serial", 1, serial_s, serial, None)]
        with process_pool(args.workers) as pool:
            pool_s, pooled = _timed(tasks, pool)
        results.append(_result("pool", args.workers, pool_s, pooled, serial_s))
        untrimmed = {key: value for key, value in dask.config.get(NANNY_ENVIRON).items()
                     if key != "MALLOC_TRIM_THRESHOLD_"}
        tuned = {NANNY_ENVIRON: untrimmed, "distributed.worker.profile.enabled": False}
        clustered = {}
        for name, settings in (("dask", {}), ("dask-tuned", tuned)):
            with dask.config.set(settings), _environ_restored():
                started = time.perf_counter()
                with (LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None) as cluster,
                      Client(cluster, set_as_default=False) as client):
                    start_s = time.perf_counter() - started
                    executor = client.get_executor(pure=False)
                    run_s, clustered[name] = _timed(tasks, executor)
                    executor.shutdown()
            results.append(_result(name, args.workers, start_s + run_s, clustered[name], serial_s,
                                   start_s=round(start_s, 2)))
    identical = all(_stripped(serial) == _stripped(rows) for rows in (pooled, *clustered.values()))
    print(f"rows identical across serial, pool and both dask runs: {identical}")
    if args.json:
        print(orjson.dumps({"bench": "sweep", "tasks": len(tasks), "quotes_per_recording": args.quotes,
                            "identical_rows": identical, "runs": results}).decode())
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
