"""The backtest's equity curve as a PNG: net PnL, its drawdown and the net position over time.

Owns drawing only: the backtest gives :class:`EquitySample` s (net PnL and net position, sampled after each
fill) and a path. matplotlib is an optional extra (``pip install 'dma_bot[report]'``): it is imported only by
:func:`write_equity_png`, and :func:`plot_available` says, without importing it, whether it can be; without it
the caller prints :data:`MISSING_HINT` and writes no picture. Three panels share the time axis (UTC, from
``ts_ns``): equity (net PnL), drawdown (net PnL minus its running peak, never above 0, filled) and the net
position, all drawn as steps (a value holds until the next fill). Decimal becomes float here and only here,
for plotting. Millions of samples are cut to at most :data:`MAX_POINTS`: the samples are split into equal
runs, and each run keeps its highest and lowest net PnL, its deepest drawdown and its highest and lowest
position, in time order (the shape of every panel, extremes included, rather than a stride that could step
over the worst drawdown). Matplotlib's figure is built without pyplot (no global state) on the Agg canvas.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MAX_POINTS", "MISSING_HINT", "EquitySample", "downsample", "plot_available", "write_equity_png"]

MISSING_HINT: Final[str] = "equity.png: not written; pip install 'dma_bot[report]' (matplotlib) for the equity curve"
MAX_POINTS: Final = 5_000  # drawn per panel at most: 1,000 runs of up to 5 kept samples
_RUNS: Final = MAX_POINTS // 5
_SIZE_IN: Final = (11.0, 8.0)
_DPI: Final = 100


class EquitySample(NamedTuple):
    """Net PnL (quote currency, fees included) and net position at ``ts_ns`` (UTC ns): the traded quantities'
    value at mid, quote currency (base quantities of several symbols do not add up). A NamedTuple: one is
    made after every batch of fills."""

    ts_ns: int
    net_pnl: Decimal
    net_position: Decimal


def plot_available() -> bool:
    """Whether matplotlib can be imported (it is not imported here)."""
    return importlib.util.find_spec("matplotlib") is not None


def downsample(pnl: npt.NDArray[Any], drawdown: npt.NDArray[Any], position: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The indices to draw, ascending: all of them up to :data:`MAX_POINTS`, else per run of equal length its
    highest and lowest ``pnl``, lowest ``drawdown`` and highest and lowest ``position``."""
    import numpy as np

    count = len(pnl)
    if count <= MAX_POINTS:
        return np.arange(count)
    edges = np.linspace(0, count, _RUNS + 1).astype(np.int64)
    kept = []
    for start, stop in itertools.pairwise(edges.tolist()):
        kept += [start + int(np.argmax(pnl[start:stop])), start + int(np.argmin(pnl[start:stop])),
                 start + int(np.argmin(drawdown[start:stop])),
                 start + int(np.argmax(position[start:stop])), start + int(np.argmin(position[start:stop]))]
    kept += [0, count - 1]
    return np.unique(np.array(kept, dtype=np.int64))


def write_equity_png(path: Path, samples: Sequence[EquitySample], *, title: str) -> None:
    """Draw ``samples`` (in time order) to ``path`` as a PNG; without samples, a figure saying there were no
    fills. Requires matplotlib (see :func:`plot_available`)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE_IN, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    if not samples:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(0.5, 0.5, "no fills: no equity curve", ha="center", va="center", fontsize=16,
                  transform=axes.transAxes)
        figure.savefig(path, format="png", metadata={"Software": None})
        return

    times = np.array([sample.ts_ns for sample in samples], dtype=np.int64)
    pnl = np.array([float(sample.net_pnl) for sample in samples], dtype=np.float64)
    position = np.array([float(sample.net_position) for sample in samples], dtype=np.float64)
    drawdown = pnl - np.maximum.accumulate(pnl)
    kept = downsample(pnl, drawdown, position)
    when = times[kept].astype("datetime64[ns]")
    marker = "o" if len(samples) == 1 else None

    equity_axes, drawdown_axes, position_axes = figure.subplots(3, 1, sharex=True, height_ratios=(3, 2, 2))
    equity_axes.plot(when, pnl[kept], drawstyle="steps-post", marker=marker, color="tab:blue")
    equity_axes.set_ylabel("net PnL")
    drawdown_axes.fill_between(when, drawdown[kept], 0.0, step="post", color="tab:red", alpha=0.4, linewidth=0)
    drawdown_axes.plot(when, drawdown[kept], drawstyle="steps-post", marker=marker, color="tab:red", linewidth=0.8)
    drawdown_axes.set_ylabel("drawdown")
    position_axes.plot(when, position[kept], drawstyle="steps-post", marker=marker, color="tab:green")
    position_axes.set_ylabel("net position (quote)")
    position_axes.set_xlabel("time (UTC)")
    for axes in (equity_axes, drawdown_axes, position_axes):
        axes.grid(True, alpha=0.3)
    if len(samples) == 1:  # matplotlib would span years around a single date
        position_axes.set_xlim(when[0] - np.timedelta64(1, "s"), when[0] + np.timedelta64(1, "s"))
    shown = f"{len(kept):,} of {len(samples):,}" if len(kept) < len(samples) else f"{len(samples):,}"
    equity_axes.set_title(f"{shown} sample{'s' if len(samples) > 1 else ''}; max drawdown {abs(drawdown.min()):g}",
                          fontsize=9, loc="right")
    figure.savefig(path, format="png", metadata={"Software": None})
