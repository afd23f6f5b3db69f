"""`python -m dma_bot backtest` options as a real process: --from/--to/--symbols, the progress bar on a terminal
(and nothing extra off one), equity.png with matplotlib and the one-line hint without it."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from dma_bot import backtest_cli
from dma_bot.config import load_config, preset_values
from dma_bot.feed.mock import RandomWalk
from dma_bot.params import mock_instruments, random_walk_params, sizes
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields
from dma_bot.report_plot import MISSING_HINT

ROOT = Path(__file__).resolve().parents[2]
PRESET = str(ROOT / ".env.mock")
T0 = 1_796_083_200_000_000_000  # 2026-12-01T00:00:00Z
QUOTES = 20_000  # 1 ms apart: 20 s
_NO_MATPLOTLIB = ("import runpy, sys; sys.modules['matplotlib'] = None; sys.argv[0] = 'dma_bot'; "
                  "runpy.run_module('dma_bot', run_name='__main__', alter_sys=True)")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mock walk of the preset's four symbols, round robin."""
    path = tmp_path_factory.mktemp("recording") / "quotes.jsonl"
    config = load_config(preset_values(PRESET), {})
    instruments = mock_instruments(config)
    walk = RandomWalk(config["SYMBOLS"], random_walk_params(config, instruments), 7)
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=T0)]
    count = len(config["SYMBOLS"])
    lines += [encoder.encode(walk.next(i % count, T0 + i * 1_000_000)) for i in range(QUOTES)]
    path.write_bytes(b"".join(lines))
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DMA_", "MOCK_", "RECORD_", "METRICS_", "SYMBOL"))}


def _run(*args: str, cwd: Path, python: tuple[str, ...] = ("-m", "dma_bot"),
         stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python, "backtest", *args, "--env", PRESET], cwd=cwd, env=_env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120,
                          check=False)


def test_a_window_and_a_selection_replay_only_those_quotes_and_stop_reading(recording: Path, tmp_path: Path) -> None:
    done = _run(str(recording), "--out", "out", "--from", "2026-12-01T00:00:05Z", "--to", str(T0 + 12_000_000_000),
                "--symbols", "ethusdt,BTCUSDT", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    given = orjson.loads((tmp_path / "out" / "report.json").read_bytes())["input"]
    assert (given["from_ns"], given["to_ns"]) == (T0 + 5_000_000_000, T0 + 12_000_000_000)
    assert given["symbols"] == ["ETHUSDT", "BTCUSDT"] and given["symbols_selected"] is True
    # quotes 5,000 .. 11,999 of BTCUSDT (i % 4 == 0) and ETHUSDT (i % 4 == 1); the 12,000th (BTCUSDT) ends it
    assert given["quotes"] == 7_000 // 2
    assert given["lines"] == 1 + 12_001 < QUOTES  # the Start, then up to the quote that ends the window
    assert given["skipped"]["outside_window"] == 5_000 // 2 + 1
    assert given["skipped"]["not_selected"] == 12_000 // 2
    assert given["skipped"]["unknown_symbol"] == 0 and given["first_problems"] == []
    assert (given["first_ts_ns"], given["last_ts_ns"]) == (T0 + 5_000_000_000, T0 + 11_997_000_000)
    events = [orjson.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_bytes().splitlines()]
    signals = [r for r in events if r["type"] == "Sig"]
    assert signals and {r["symbol"] for r in signals} == {"BTCUSDT", "ETHUSDT"}
    assert all(T0 + 5_000_000_000 <= r["ts_event_ns"] < T0 + 12_000_000_000 for r in signals)
    assert "outside the window 2,501, not selected 6,000" in done.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["--from", "x"], "dma_bot backtest: --from: ISO-8601 UTC time or epoch ns, was 'x'"),
    (["--to", "2026-12-01T25:00:00Z"], "dma_bot backtest: --to: ISO-8601 UTC time or epoch ns, was "
                                       "'2026-12-01T25:00:00Z'"),
    (["--from", "2026-12-01T00:00:10Z", "--to", "2026-12-01T00:00:05Z"],
     "dma_bot backtest: --to: a time after --from ('2026-12-01T00:00:10Z' = 1796083210000000000 ns), was "
     "'2026-12-01T00:00:05Z' = 1796083205000000000 ns"),
    (["--from", "2026-12-01", "--to", str(T0)], "dma_bot backtest: --to: a time after --from"),
    (["--symbols", "BTCUSDT,XRPUSDT"], "dma_bot backtest: --symbols: symbols the recording names "
                                       "(BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT), was XRPUSDT"),
    (["--symbols", "BTC-USDT"], "dma_bot backtest: --symbols: symbols of 2-20 letters/digits"),
    (["--from", "2027-01-01"], "dma_bot backtest: RECORDING: recordings with at least one quote of "
                               "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT inside the --from/--to window, was none in"),
])
def test_a_bad_option_value_is_one_line_and_exit_2(recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], args: list[str],
                                                   expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("SYMBOLS", "SYMBOL"):
        monkeypatch.delenv(key, raising=False)

    code = backtest_cli.main([str(recording), "--env", PRESET, "--out", "out", *args])

    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith(expected), err


@pytest.mark.parametrize(("value", "ns"), [
    ("2026-12-01", T0), ("2026-12-01T00:00:01Z", T0 + 10**9), ("2026-12-01T00:00:01.000000002Z", T0 + 10**9 + 2),
    ("2026-12-01T02:00+02:00", T0), ("2026-12-01 00:01", T0 + 60 * 10**9), (str(T0 + 5), T0 + 5),
])
def test_times_are_epoch_ns_or_iso_8601_utc(value: str, ns: int) -> None:
    assert backtest_cli.parse_time("--from", value) == ns


def _pty_run(recording: Path, cwd: Path) -> tuple[int, str, str]:
    """The command with stderr a pseudo-terminal (120 columns): exit status, stdout, what the terminal got."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        done = _run(str(recording), "--out", "out", cwd=cwd, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    try:
        while data := os.read(master, 65536):
            chunks.append(data)
    except OSError:  # EIO: the terminal's other side is closed and everything was read
        pass
    finally:
        os.close(master)
    return done.returncode, done.stdout, b"".join(chunks).decode(errors="replace")


def test_a_progress_bar_is_drawn_on_a_terminal_and_nothing_extra_off_it(recording: Path, tmp_path: Path) -> None:
    (tmp_path / "tty").mkdir()
    code, out, terminal = _pty_run(recording, tmp_path / "tty")
    piped = _run(str(recording), "--out", "out", cwd=tmp_path)

    assert code == 0, terminal
    size = recording.stat().st_size
    assert "100%|" in terminal and f"{QUOTES:,} records" in terminal and "records/s" in terminal, terminal
    assert f"{size / 1024 / 1024:.2f}M/{size / 1024 / 1024:.2f}M" in terminal, terminal  # bytes of the recording
    assert "\r" in terminal
    assert piped.returncode == 0 and piped.stderr == ""  # a pipe: no bar, no hint (matplotlib is installed)
    assert [line.split(" in ")[0] for line in piped.stdout.splitlines()] == [
        line.split(" in ")[0] for line in out.splitlines()]  # the same summary either way


def test_equity_png_is_written_with_matplotlib_and_the_hint_printed_without(recording: Path, tmp_path: Path) -> None:
    done = _run(str(recording), "--out", "out", "--symbols", "BTCUSDT", cwd=tmp_path)
    png = tmp_path / "out" / "equity.png"
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"equity: {Path('out') / 'equity.png'}" in done.stdout

    hidden = _run(str(recording), "--out", "out", "--symbols", "BTCUSDT", cwd=tmp_path, python=("-c", _NO_MATPLOTLIB))

    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stderr == MISSING_HINT + "\n"
    assert not png.exists()  # the older picture is not left to pass for this run's
    assert (tmp_path / "out" / "report.json").is_file() and "equity:" not in hidden.stdout
    assert hidden.stdout.splitlines()[0].split(" in ")[0] == done.stdout.splitlines()[0].split(" in ")[0]


def test_orders_are_sized_at_the_first_mid_inside_the_window(tmp_path: Path) -> None:
    """STRATEGY_NOTIONAL turns into a quantity at the first mid the run replays: with --from, the window's, not
    the file's (here the price doubles between the two)."""
    config = load_config(preset_values(PRESET), {"SYMBOLS": "BTCUSDT"})
    instruments = mock_instruments(config)
    walk = RandomWalk(("BTCUSDT",), random_walk_params(config, instruments), 7)
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=T0)]
    first_mids = []
    for i in range(4_000):
        tick = walk.next(0, T0 + i * 1_000_000)
        if i >= 2_000:  # the second half trades at twice the price
            tick = tick._replace(bid=2 * tick.bid, ask=2 * tick.ask)
        if i in (0, 2_000):
            first_mids.append(instruments["BTCUSDT"].ticks_to_price(tick.bid + tick.ask) / 2)
        lines.append(encoder.encode(tick))
    path = tmp_path / "doubling.jsonl"
    path.write_bytes(b"".join(lines))
    preset = tmp_path / "notional.env"  # the mock preset, sized by notional instead of quantity
    preset.write_text("".join(line for line in Path(PRESET).read_text().splitlines(keepends=True)
                              if not line.startswith("STRATEGY_QTY=")) + "STRATEGY_NOTIONAL=1000\n")
    env = {**_env(), "SYMBOLS": "BTCUSDT", "PX_MAX": "100000", "MR_EDGE_TICKS": "1"}

    def quantities(*window: str) -> set[str]:
        out = tmp_path / f"out{len(window)}"
        done = subprocess.run([sys.executable, "-m", "dma_bot", "backtest", str(path), "--out", str(out), "--env",
                               str(preset), *window], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        records = [orjson.loads(line) for line in (out / "events.jsonl").read_bytes().splitlines()]
        return {r["quantity"] for r in records if r["type"] == "Ord"}

    sized = load_config(preset_values(str(preset)), env)
    expected = [instruments["BTCUSDT"].format_qty(sizes(sized, instruments, {"BTCUSDT": mid}).quantities["BTCUSDT"])
                for mid in first_mids]
    assert quantities() == {expected[0]}
    assert quantities("--from", str(T0 + 2_000_000_000)) == {expected[1]}
    assert Decimal(expected[0]) > Decimal("1.9") * Decimal(expected[1])  # about half the quantity at twice the price


def test_a_window_in_the_second_recording_is_sized_there(recording: Path, tmp_path: Path) -> None:
    """Two recordings, the window inside the second one only: the run finds its first mids there (not an error
    about the first file, and not the first file's prices)."""
    lines = recording.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: 1 + QUOTES // 2]))
    second.write_bytes(lines[0] + b"".join(lines[1 + QUOTES // 2:]))
    done = _run(str(first), str(second), "--out", "out", "--from", str(T0 + (QUOTES // 2 + 100) * 1_000_000),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    given = orjson.loads((tmp_path / "out" / "report.json").read_bytes())["input"]
    assert given["quotes"] == QUOTES // 2 - 100
