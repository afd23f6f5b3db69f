"""`python -m dma_bot backtest` on zstd recordings (dma_bot.feed.recording): the same run as on the plain file,
and a truncated one is one line naming the file, exit 2."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import zstandard

from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))


def _recording(path: Path, quotes: int) -> bytes:
    """A seeded random walk of BTCUSDT quotes, one a millisecond, in our recording format."""
    encoder = JsonlEncoder({"BTCUSDT": BTC})
    grid = {"BTCUSDT": {"tick_size": str(BTC.tick_size), "step_size": str(BTC.step_size)}}
    lines = [encoder.encode_control("Start", {"instruments": grid}, ts_ns=1)]
    rng, bid = random.Random(7), 6_500_000
    for n in range(quotes):
        bid += rng.choice((-3, -1, 0, 1, 3))
        lines.append(encoder.encode(Tick("BTCUSDT", bid, bid + 2, 100_000, 100_000, 1_000_000 * n, 1_000_000 * n)))
    path.write_bytes(b"".join(lines))
    return path.read_bytes()


async def _backtest(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", "backtest", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(cwd),
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("DMA_", "MOCK_", "RECORD_", "METRICS_"))},
             "SYMBOLS": "BTCUSDT"},
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_backtest_command_reads_a_zstd_recording_as_the_plain_one(tmp_path: Path) -> None:
    data = _recording(tmp_path / "quotes.jsonl", 5_000)
    packed = zstandard.ZstdCompressor().compress(data)
    (tmp_path / "quotes.jsonl.zst").write_bytes(packed)
    (tmp_path / "cut.jsonl.zst").write_bytes(packed[: len(packed) // 2])

    reports = []
    for name in ("quotes.jsonl", "quotes.jsonl.zst"):
        code, _, err = await _backtest(name, "--out", f"out-{name}", cwd=tmp_path)
        assert code == 0, err
        report = orjson.loads((tmp_path / f"out-{name}" / "report.json").read_bytes())
        report["input"].pop("files")
        reports.append(report)
    code, _, err = await _backtest("cut.jsonl.zst", "--out", "out-cut", cwd=tmp_path)

    assert reports[0] == reports[1] and reports[0]["input"]["quotes"] == 5_000
    assert reports[0]["totals"]["signals"] > 0
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "cut.jsonl.zst: a readable recording, was zstd" in err
