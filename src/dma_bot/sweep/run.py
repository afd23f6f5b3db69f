"""Running a sweep's tasks on any :class:`concurrent.futures.Executor`: one code path for every place it runs.

Owns choosing the executor (in this process, a local process pool, a Dask cluster's executor), submitting
the tasks, turning each finished future into a row (a future that failed outside the task, such as a worker
that died, is that task's error row), the progress bar, and Ctrl-C: a KeyboardInterrupt while tasks run
cancels the pending ones, stops the running ones (the pool's worker processes are ended; Dask cancels its
futures) and returns the rows that finished. Pool workers ignore SIGINT themselves, so a Ctrl-C on the
terminal (sent to the whole process group) reaches only this process, which decides. Nothing here knows what
a task computes.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Final

from tqdm import tqdm

from dma_bot.errors import ConfigError
from dma_bot.sweep.task import SweepTask, error_row, run_task

__all__ = ["SerialExecutor", "SweepOutcome", "TaskProgress", "open_executor", "run_sweep"]

_CONNECT_TIMEOUT_S: Final = 10
CLUSTER_HINT: Final = "pip install 'dma_bot[cluster]' (dask.distributed)"


class SerialExecutor(Executor):
    """Runs each task in this process as it is submitted (``--workers 0``; the reference the tests compare with)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:
            future.set_exception(e)
        return future


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` fresh interpreters (spawned: no state inherited from this process, as on a cluster) that
    ignore SIGINT."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)


@contextmanager
def open_executor(workers: int, cluster: str | None) -> Iterator[Executor]:
    """The executor of ``--workers``/``--cluster``: a Dask client's executor when ``cluster`` is an address,
    else a process pool of ``workers`` (0: this process). On leaving after an interrupt, nothing is awaited."""
    if cluster:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(f"--cluster: {CLUSTER_HINT}, was {cluster} without it installed") from None
        try:
            client = Client(cluster, timeout=_CONNECT_TIMEOUT_S, set_as_default=False)
        except OSError as e:
            raise ConfigError(f"--cluster: the address of a reachable Dask scheduler, was {cluster} ({e})") from e
        executor = client.get_executor(pure=False)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)
            client.close()
        return
    if workers == 0:
        yield SerialExecutor()
        return
    pool = process_pool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # this process's pool workers: a running task is dropped
            child.terminate()
        for child in multiprocessing.active_children():
            child.join()


class _Bar(tqdm):  # type: ignore[type-arg]
    monitor_interval = 0  # no TMonitor thread


class TaskProgress:
    """A bar of tasks done out of the total with their rate and the ETA (tqdm), and the failures so far; off
    (every call returns at once) unless enabled."""

    __slots__ = ("_bar", "_failed")

    def __init__(self, total: int, *, enabled: bool, stream: IO[str] = sys.stderr) -> None:
        self._failed = 0
        self._bar = _Bar(total=total, file=stream, unit="task", mininterval=0.2, dynamic_ncols=True,
                         smoothing=0.1, desc="sweep") if enabled else None

    def done(self, row: dict[str, Any]) -> None:
        bar = self._bar
        if bar is None:
            return
        if row["error"] is not None:
            self._failed += 1
            bar.set_postfix_str(f"{self._failed} failed", refresh=False)
        bar.update(1)

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()


@dataclass(slots=True)
class SweepOutcome:
    """The rows that finished (in completion order) and whether a Ctrl-C cut the sweep short."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


def _row(future: Future[dict[str, Any]], task: SweepTask) -> dict[str, Any]:
    error = future.exception()
    if error is None:
        return future.result()
    return error_row(task, f"{type(error).__name__}: {error}")


def run_sweep(tasks: Sequence[SweepTask], executor: Executor,
              on_row: Callable[[dict[str, Any]], None] = lambda row: None) -> SweepOutcome:
    """Every task on ``executor``; ``on_row`` is called with each row as it finishes. A KeyboardInterrupt is
    caught: pending futures are cancelled and the outcome says ``interrupted``."""
    outcome = SweepOutcome()
    futures: dict[Future[dict[str, Any]], SweepTask] = {}
    seen: set[Future[dict[str, Any]]] = set()

    def take(future: Future[dict[str, Any]]) -> None:
        row = _row(future, futures[future])
        outcome.rows.append(row)
        seen.add(future)
        on_row(row)

    try:
        for task in tasks:
            futures[executor.submit(run_task, task)] = task
        for future in as_completed(futures):
            take(future)
    except KeyboardInterrupt:
        outcome.interrupted = True
        for future in futures:
            future.cancel()
        for future in futures:
            if future not in seen and future.done() and not future.cancelled():
                take(future)
    return outcome
