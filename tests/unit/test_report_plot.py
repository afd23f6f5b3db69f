"""The backtest's equity curve (dma_bot.report_plot): a PNG for some samples and for none, the hint without
matplotlib, and a downsampling that keeps every panel's extremes."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from dma_bot.report_plot import MAX_POINTS, MISSING_HINT, EquitySample, downsample, plot_available, write_equity_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _samples(count: int, seed: int = 3) -> list[EquitySample]:
    rng = random.Random(seed)
    pnl, position, out = Decimal(0), Decimal(0), []
    for n in range(count):
        pnl += Decimal(rng.randint(-500, 520)) / 100
        position += Decimal(rng.choice((-1, 1))) / 1000
        out.append(EquitySample(ts_ns=1_767_225_600_000_000_000 + n * 250_000_000, net_pnl=pnl, net_position=position))
    return out


def test_plot_available_and_the_hint_is_one_line_naming_the_extra() -> None:
    assert plot_available() is True  # matplotlib is in the dev extras
    assert "\n" not in MISSING_HINT and "dma_bot[report]" in MISSING_HINT and MISSING_HINT.startswith("equity.png")


@pytest.mark.skipif(not plot_available(), reason="matplotlib is not installed")
@pytest.mark.parametrize("count", [0, 1, 200, 30_000])
def test_write_equity_png_writes_a_png_for_any_number_of_samples(tmp_path: Path, count: int) -> None:
    path = tmp_path / "equity.png"

    write_equity_png(path, _samples(count), title=f"backtest: {count} fills")

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 800)


def test_downsample_keeps_everything_up_to_the_limit_and_the_extremes_beyond_it() -> None:
    rng = np.random.default_rng(5)
    count = 1_000_000
    pnl = np.cumsum(rng.normal(size=count))
    drawdown = pnl - np.maximum.accumulate(pnl)
    position = np.cumsum(rng.choice((-1.0, 1.0), size=count))

    kept = downsample(pnl, drawdown, position)

    assert np.array_equal(downsample(pnl[:MAX_POINTS], drawdown[:MAX_POINTS], position[:MAX_POINTS]),
                          np.arange(MAX_POINTS))
    assert len(kept) <= MAX_POINTS + 2 and np.all(np.diff(kept) > 0) and kept[0] == 0 and kept[-1] == count - 1
    for series, pick in ((pnl, np.argmax), (pnl, np.argmin), (drawdown, np.argmin), (position, np.argmax),
                         (position, np.argmin)):
        assert pick(series) in kept
