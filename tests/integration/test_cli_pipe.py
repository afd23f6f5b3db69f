"""A command whose reader goes away (``python -m dma_bot backtest ... | head -1``) ends quietly: no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dma_bot.config import load_config, preset_values
from dma_bot.feed.mock import RandomWalk
from dma_bot.params import mock_instruments, random_walk_params
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields

ROOT = Path(__file__).resolve().parents[2]


def test_backtest_into_a_closed_pipe_exits_without_a_traceback(tmp_path: Path) -> None:
    config = load_config(preset_values(str(ROOT / ".env.mock")), {"SYMBOLS": "BTCUSDT"})
    instruments = mock_instruments(config)
    walk = RandomWalk(config["SYMBOLS"], random_walk_params(config, instruments), 1)
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=1)]
    lines += [encoder.encode(walk.next(0, 10**18 + i * 1_000_000)) for i in range(5_000)]
    recording = tmp_path / "md.jsonl"
    recording.write_bytes(b"".join(lines))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes its summary
    try:
        done = subprocess.run([sys.executable, "-m", "dma_bot", "backtest", str(recording), "--env",
                               str(ROOT / ".env.mock"), "--out", str(tmp_path / "out")],
                              stdout=write, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120, check=False,
                              env={**os.environ, "SYMBOLS": "BTCUSDT"})
    finally:
        os.close(write)
    assert done.returncode == 1, done.stderr
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr
    assert (tmp_path / "out" / "report.json").is_file()  # the files were written all the same
