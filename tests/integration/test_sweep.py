"""`python -m dma_bot sweep`: the same rows serially, on a process pool and on a Dask LocalCluster; the command's
files, table, heatmap, failing tasks, progress bar on a terminal, and Ctrl-C keeping the finished rows."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import importlib.util
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from dma_bot.sweep.cli import make_tasks, our_environment
from dma_bot.sweep.grid import load_grid
from dma_bot.sweep.run import SerialExecutor, process_pool, run_sweep
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
SPACING_NS = 250_000_000  # 250 ms between two quotes of a symbol: 12.5 recorded minutes, so Sharpe has a value
GRID = """
strategy = "ma_crossover"
[params]
MA_FAST = [8, 16]
MA_SLOW = { start = 16, stop = 48, step = 16 }
[fixed]
RISK_MAX_POSITION = 1000
"""


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_backtest", ROOT / "bench" / "backtest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two mock-walk recordings (different seeds), a corrupt one and the grid."""
    folder = tmp_path_factory.mktemp("sweep")
    bench = _bench()
    for name, seed in (("a.jsonl", "42"), ("b.jsonl", "43")):
        bench.write_recording(folder / name, bench._preset({"MOCK_SEED": seed}), 12_000, spacing_ns=SPACING_NS)
    lines = (folder / "a.jsonl").read_bytes().splitlines(keepends=True)
    (folder / "corrupt.jsonl").write_bytes(b"".join(lines[:50]) + b"{not json\n" + b"".join(lines[50:]))
    (folder / "grid.toml").write_text(GRID)
    return folder


def _environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("DMA_", "MOCK_", "RECORD_"))}


def _rows(folder: Path, executor: Any) -> list[dict[str, Any]]:
    grid = load_grid(folder / "grid.toml")
    recordings = [str(folder / "a.jsonl"), str(folder / "b.jsonl"), str(folder / "missing.jsonl")]
    tasks = make_tasks(grid, recordings, {}, our_environment(_environ()))
    outcome = run_sweep(tasks, executor)
    assert not outcome.interrupted and len(outcome.rows) == len(tasks)
    return sorted(({k: v for k, v in row.items() if k != "run_s"} for row in outcome.rows), key=lambda r: r["task"])


def test_sweep_rows_are_identical_serially_on_a_process_pool_and_on_a_dask_cluster(data: Path) -> None:
    """One code path, three executors: every row (run time aside) the same, failed tasks included."""
    from distributed import Client, LocalCluster

    serial = _rows(data, SerialExecutor())
    with process_pool(2) as pool:
        pooled = _rows(data, pool)
    saved = dict(os.environ)  # the nannies put MALLOC_TRIM_THRESHOLD_ there: not for later tests' subprocesses
    try:
        with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None) as cluster,
              Client(cluster, set_as_default=False) as client):
            executor = client.get_executor(pure=False)
            clustered = _rows(data, executor)
            executor.shutdown()
    finally:
        os.environ.clear()
        os.environ.update(saved)

    assert serial == pooled == clustered
    assert len(serial) == 6 * 3
    ok = [row for row in serial if row["error"] is None]
    assert len(ok) == 5 * 2  # every combination but MA_FAST 16 / MA_SLOW 16, on the two recordings that exist
    assert all(row["fills"] > 0 and row["sharpe"] is not None for row in ok)
    assert len({(row["recording"], row["net_pnl"]) for row in ok}) == len(ok)  # the parameters change the outcome
    refused = [row for row in serial if row["MA_FAST"] == "16" and row["MA_SLOW"] == "16"]
    assert refused and all(row["error"] == "MA_FAST: less than MA_SLOW (16), was 16" for row in refused)
    missing = [row for row in serial if row["recording"].endswith("missing.jsonl") and row not in refused]
    assert len(missing) == 5 and all(row["error"].startswith("REPLAY_FILE: an existing recording") for row in missing)


async def _command(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "sweep", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(cwd), env=_environ())
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


async def test_sweep_command_writes_results_table_and_heatmap_and_failed_tasks_are_rows(data: Path,
                                                                                       tmp_path: Path) -> None:
    """A 2-key grid over a good and a corrupt recording (--strict): every task a row in task order, in both files;
    the corrupt recording's tasks and the refused combination carry their error; the table ranks by net PnL; a
    heatmap.png; exit 0."""
    out = tmp_path / "out"
    code, stdout, err = await _command(str(data / "grid.toml"), str(data / "a.jsonl"), str(data / "corrupt.jsonl"),
                                       "--strict", "--workers", "2", "--out", str(out), cwd=tmp_path)

    assert code == 0, err
    rows = _csv(out / "results.csv")
    lines = [orjson.loads(line) for line in (out / "results.jsonl").read_bytes().splitlines()]
    assert [row["task"] for row in rows] == [str(i) for i in range(12)] == [str(line["task"]) for line in lines]
    assert list(rows[0]) == ["task", "recording", "MA_FAST", "MA_SLOW", "error", "quotes", "signals", "orders",
                             "rejects", "fills", "fees", "realized_pnl", "net_pnl", "max_drawdown", "sharpe", "run_s"]
    refused = "MA_FAST: less than MA_SLOW (16), was 16"
    corrupt = [row for row in rows if row["recording"].endswith("corrupt.jsonl") and row["error"] != refused]
    assert len(corrupt) == 5 and all(":51" in row["error"] and row["net_pnl"] == "" for row in corrupt)
    good = [row for row in rows if not row["error"]]
    assert len(good) == 5 and all(int(row["fills"]) > 0 for row in good)
    for row, line in zip(rows, lines, strict=True):
        assert {k: "" if v is None else str(v) for k, v in line.items()} == row
    table = stdout.splitlines()
    assert table[0].split() == ["#", "MA_FAST", "MA_SLOW", "net_pnl", "realized", "fees", "max_dd", "sharpe",
                                "fills", "ok"]
    ranked = [line.split() for line in table[1:7]]
    assert [row[3] for row in ranked[:5]] == sorted((row["net_pnl"] for row in good), key=float, reverse=True)
    assert all(row[-1] == "1/2" for row in ranked[:5])  # the corrupt recording's half failed
    assert ranked[5][:3] == ["6", "16", "16"] and table[6].endswith(f"failed (0/2 ok): {refused}")
    assert "tasks 12 of 12" in stdout and "5 ok, 7 failed" in stdout
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_sweep_command_refuses_a_bad_grid_or_a_missing_recording_in_one_line(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GRID.replace("MA_FAST = [8, 16]", "MA_FASTT = [8, 16]"))
    code, _, err = await _command(str(bad), str(data / "a.jsonl"), cwd=tmp_path)
    assert code == 2 and err.strip() == f"dma_bot sweep: {bad}: params.MA_FASTT: a configuration key (did you mean " \
                                       "MA_FAST?), was 'MA_FASTT'"
    bad.write_text(GRID.replace("MA_FAST = [8, 16]", "MA_FAST = [0, 16]"))
    code, _, err = await _command(str(bad), str(data / "a.jsonl"), cwd=tmp_path)
    assert code == 2 and err.strip() == f"dma_bot sweep: {bad}: params.MA_FAST: an integer from 1 to 100000, was '0'"
    code, _, err = await _command(str(data / "grid.toml"), str(tmp_path / "nowhere.jsonl"), cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nowhere.jsonl (not found)" in err
    assert not (tmp_path / "sweep").exists()


def test_sweep_command_draws_a_progress_bar_on_a_terminal(data: Path, tmp_path: Path) -> None:
    """stderr a pty: tqdm's bar of tasks (done/total, rate, ETA) reaches 12/12."""

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    process = subprocess.Popen(
        [sys.executable, "-m", "dma_bot", "sweep", str(data / "grid.toml"), str(data / "a.jsonl"),
         str(data / "b.jsonl"), "--workers", "0", "--out", str(tmp_path / "out")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, cwd=tmp_path, env=_environ())
    os.close(follower)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO once the child closed the terminal
        while chunk := os.read(leader, 65536):
            drawn += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = drawn.decode(errors="replace")
    assert "sweep: 100%" in text and "12/12" in text and "task/s" in text and "2 failed" in text


def _count_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


async def test_sweep_command_on_sigint_cancels_the_rest_and_writes_what_finished(data: Path, tmp_path: Path) -> None:
    """SIGINT once a first row is written (read from results.jsonl, no sleeping): exit 130, every finished task a
    complete row in task order, the tasks not run absent, the pool's workers gone."""
    recordings = [str(data / "a.jsonl")] * 20
    out = tmp_path / "out"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "sweep", str(data / "grid.toml"), *recordings, "--workers", "1", "--out",
        str(out), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(tmp_path), env=_environ())

    async def a_row_finished() -> bool:
        return _count_lines(out / "results.jsonl") >= 1

    await eventually(a_row_finished, timeout=60, what="a first row in results.jsonl")
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        stdout, err = await process.communicate()

    assert process.returncode == 130, err.decode()
    rows = _csv(out / "results.csv")
    assert 1 <= len(rows) < 120
    assert [row["task"] for row in rows] == sorted((row["task"] for row in rows), key=int)
    assert all(row["error"] or row["net_pnl"] for row in rows)
    assert _count_lines(out / "results.jsonl") == len(rows)
    assert f"tasks {len(rows)} of 120" in stdout.decode()
    assert f"interrupted: {120 - len(rows)} tasks not run" in err.decode()


async def test_a_sweep_row_is_the_backtest_commands_report_for_the_same_keys(data: Path, tmp_path: Path) -> None:
    """A task is `python -m dma_bot backtest` with the grid's keys: its row's numbers are that command's
    report.json totals (the configuration is layered in one place, params.backtest_config)."""
    grid = load_grid(data / "grid.toml")
    recording = str(data / "b.jsonl")
    tasks = make_tasks(grid, [recording], {}, our_environment(_environ()))
    task = next(task for task in tasks if task.params["MA_FAST"] == "8" and task.params["MA_SLOW"] == "32")
    (row,) = run_sweep([task], SerialExecutor()).rows
    assert row["error"] is None and row["orders"] > 0

    env = {**_environ(), **task.params}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "backtest", recording, "--out", str(tmp_path / "bt"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(tmp_path), env=env)
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    totals = orjson.loads((tmp_path / "bt" / "report.json").read_bytes())["totals"]
    for key in ("signals", "orders", "rejects", "fills", "realized_pnl", "net_pnl", "max_drawdown"):
        assert row[key] == totals[key], key
    assert row["fees"] == totals["fee_value"]


_FAULTS = """
import ctypes, resource, sys
# Count base pages: with transparent huge pages (or the kernel's smaller multi-size ones, say 16 KiB set to always)
# one fault maps several pages and the counts shrink with the machine's policy, not with malloc's tuning.
assert ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0) == 0, "prctl(PR_SET_THP_DISABLE)"
from dma_bot.sweep.cli import make_tasks
from dma_bot.sweep.grid import parse_grid
from dma_bot.sweep.task import _run, run_task

task = make_tasks(parse_grid({"strategy": "ma_crossover", "params": {"MA_FAST": [8]}}, "grid"), [sys.argv[1]], {},
                  {})[0]

def faults(run):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    assert run(task)["error"] is None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

run_task(task)  # imports, first allocations
print(faults(_run), faults(run_task))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc, page faults from getrusage")
def test_a_task_under_dasks_malloc_trim_threshold_does_not_page_fault_per_block(tmp_path: Path) -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which pins glibc's mmap threshold at 128 KiB:
    the backtest alone (``_run``) then mmaps each column block afresh, a page fault every one to four quotes;
    run_task raises the thresholds for the task and faults as rarely as an adaptive process does."""
    quotes = 100_000  # most of it in full-size chunks (the reader's first chunks are smaller)
    recording = tmp_path / "walk.jsonl"
    bench = _bench()
    bench.write_recording(recording, bench._preset({"MOCK_SEED": "42"}), quotes)
    env = {key: value for key, value in _environ().items() if not key.startswith("MALLOC_")}
    env |= {"MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", _FAULTS, str(recording)], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    pinned, tuned = map(int, done.stdout.split())
    # The counts move with the memory layout (seen here: 24,945 to 87,618 pinned, 739 to 5,633 tuned, by the
    # environment's size and the kernel's huge-page policy); the tuning's effect, a factor of 16 to 37, does not.
    assert pinned > quotes // 10, f"the variable did not pin malloc here ({pinned} faults)"
    assert tuned * 5 < pinned, f"{tuned} page faults in the task, {pinned} without the malloc tuning"
