"""`python -m dma_bot backtest` reading in a second process: the same events.jsonl and report.json as with
--no-prefetch (corrupt lines, several files, many blocks), a --strict error through the child as the same one
line and exit 2, a crash of the reader surfacing in the parent, no child left after a run, and Ctrl-C ending
both processes with the parent's usual KeyboardInterrupt and nothing from the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from dma_bot import backtest_cli
from dma_bot.feed import prefetch, recording_columns
from dma_bot.feed.prefetch import Prefetch, PrefetchError, prefetch_available
from dma_bot.feed.recording import ReadStats
from tests.unit.test_prefetch import _children, _write

ROOT = Path(__file__).resolve().parents[2]
PRESET = str(ROOT / ".env.mock")

pytestmark = pytest.mark.skipif(not prefetch_available(), reason="no fork start method here")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("prefetch_cli")
    return [str(_write(folder / f"r{seed}.jsonl", seed, 4_000, corrupt=True)) for seed in (1, 2, 3)]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Prefetch]:
    """Every Prefetch the command makes, to look at its child (and many blocks per file)."""
    made: list[Prefetch] = []

    class Spy(Prefetch):
        __slots__ = ()

        def __enter__(self) -> Any:
            made.append(self)
            return super().__enter__()

    monkeypatch.setattr(backtest_cli, "Prefetch", Spy)
    monkeypatch.setattr(recording_columns, "CHUNK_BYTES", 32 << 10)
    return made


def _main(*args: str) -> int:
    return backtest_cli.main([*args, "--env", PRESET])


def test_the_output_is_byte_identical_with_and_without_prefetch(recordings: list[str], tmp_path: Path,
                                                                started: list[Prefetch]) -> None:
    assert _main(*recordings, "--out", str(tmp_path / "in"), "--no-prefetch") == 0
    assert _main(*recordings, "--out", str(tmp_path / "child")) == 0

    pids = [p.pid for p in started]
    assert pids[0] is None and pids[1] is not None  # --no-prefetch read here; the default in a child
    for name in ("events.jsonl", "report.json"):
        assert (tmp_path / "child" / name).read_bytes() == (tmp_path / "in" / name).read_bytes()
    given = orjson.loads((tmp_path / "child" / "report.json").read_bytes())["input"]
    assert given["quotes"] > 10_000 and given["first_problems"]
    assert given["skipped"]["bad_line"] and given["skipped"]["out_of_order"]
    assert _children() == []  # reaped: no zombie either


def test_a_strict_error_in_the_child_is_the_same_line_and_exit_2(recordings: list[str], tmp_path: Path,
                                                                 started: list[Prefetch],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(*recordings, "--out", str(tmp_path / "in"), "--strict", "--no-prefetch") == 2
    here = capsys.readouterr().err
    assert _main(*recordings, "--out", str(tmp_path / "child"), "--strict") == 2
    there = capsys.readouterr().err

    assert started[1].pid is not None
    assert there == here and there.count("\n") == 1 and there.startswith(f"dma_bot backtest: {recordings[0]}:")
    assert _children() == []


def test_a_crash_of_the_reader_surfaces_in_the_parent(recordings: list[str], tmp_path: Path,
                                                      started: list[Prefetch], monkeypatch: pytest.MonkeyPatch) -> None:
    real = backtest_cli.merge_columns

    def crashing(sources: Any) -> Any:
        blocks = real(sources)
        yield next(blocks)
        raise ZeroDivisionError("injected into the reader")

    monkeypatch.setattr(backtest_cli, "merge_columns", crashing)
    with pytest.raises(PrefetchError, match=r"(?s)Traceback.*ZeroDivisionError: injected into the reader"):
        _main(*recordings, "--out", str(tmp_path / "out"))
    assert started[0].pid is not None and _children() == []


def test_a_child_killed_from_outside_surfaces_in_the_parent(recordings: list[str], tmp_path: Path,
                                                            started: list[Prefetch],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = backtest_cli.merge_columns

    def killed(sources: Any) -> Any:
        blocks = real(sources)
        yield next(blocks)
        os.kill(os.getpid(), signal.SIGKILL)
        yield next(blocks)

    monkeypatch.setattr(backtest_cli, "merge_columns", killed)
    with pytest.raises(PrefetchError, match=rf"exit code -{int(signal.SIGKILL)}"):
        _main(*recordings, "--out", str(tmp_path / "out"))
    assert _children() == []


_STALLING = """
import os, signal, sys
from dma_bot import backtest_cli
real = backtest_cli.merge_columns
def stalling(sources):
    blocks = real(sources)
    yield next(blocks)
    print(f"reader {os.getpid()}", flush=True)  # the child is up and has handed out a block
    while True:
        signal.pause()  # SIGINT is ignored here; only the parent's SIGTERM ends it
backtest_cli.merge_columns = stalling
sys.exit(backtest_cli.main(sys.argv[1:]))
"""


def test_ctrl_c_ends_the_parent_as_before_and_the_child_quietly(recordings: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMA_", "MOCK_", "RECORD_", "SYMBOL"))}
    process = subprocess.Popen([sys.executable, "-c", _STALLING, *recordings, "--env", PRESET, "--out", "out"],
                               cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("reader "), line
        child = int(line.split()[1])
        os.killpg(process.pid, signal.SIGINT)  # a Ctrl-C at the terminal: the whole process group
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGINT  # Python's own end on an uncaught KeyboardInterrupt
    assert err.count("Traceback") == 1 and err.rstrip().endswith("KeyboardInterrupt"), err
    assert "dma_bot-reader" not in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # reaped by the parent before it ended


def test_without_fork_the_command_reads_in_process(recordings: list[str], tmp_path: Path, started: list[Prefetch],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert _main(*recordings, "--out", str(tmp_path / "out")) == 0
    assert started[0].pid is None
    stats = ReadStats()
    assert Prefetch(lambda: iter(()), stats).pid is None
