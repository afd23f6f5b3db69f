"""A 2-parameter sweep as DIR/heatmap.png: net PnL (summed over the recordings) per cell of the grid.

Owns drawing only, as :mod:`dma_bot.report_plot` does: matplotlib (the ``report`` extra) is imported inside
:func:`write_heatmap_png`, without pyplot, on the Agg canvas; :func:`dma_bot.report_plot.plot_available` says
whether it can be. The first swept key is the x axis, the second the y axis, in the grid's order; a cell with a
cell whose every task failed is grey and marked "failed"; one with some failed tasks shows the sum of the
others and how many ran. Decimal becomes float here, for colours only; the printed
values are the exact sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from dma_bot.sweep.results import Combination

__all__ = ["HEATMAP_HINT", "write_heatmap_png"]

HEATMAP_HINT: Final = "heatmap.png: not written; pip install 'dma_bot[report]' (matplotlib) for the heatmap"
_ANNOTATE_MAX: Final = 400  # cells; beyond this the numbers would not fit


def write_heatmap_png(path: Path, combinations: Sequence[Combination], x_values: Sequence[str],
                      y_values: Sequence[str], keys: tuple[str, str], *, title: str) -> None:
    """Draw the grid ``x_values`` x ``y_values`` (``combinations`` keyed by ``(x, y)`` params) to ``path``."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = {c.params: c for c in combinations}
    values = np.full((len(y_values), len(x_values)), np.nan)
    for row, y in enumerate(y_values):
        for column, x in enumerate(x_values):
            cell = cells.get((x, y))
            if cell is not None and cell.failed < cell.tasks:
                values[row, column] = float(cell.net_pnl)
    width = min(4.0 + 0.8 * len(x_values), 24.0)
    height = min(3.0 + 0.5 * len(y_values), 18.0)
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    finite = values[np.isfinite(values)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    image = axes.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-limit or -1.0, vmax=limit or 1.0,
                        origin="lower", aspect="auto")
    axes.set_facecolor("#dddddd")
    axes.set_xticks(range(len(x_values)), labels=list(x_values), rotation=45 if len(x_values) > 8 else 0)
    axes.set_yticks(range(len(y_values)), labels=list(y_values))
    axes.set_xlabel(keys[0])
    axes.set_ylabel(keys[1])
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="net PnL (sum over recordings)")
    if len(x_values) * len(y_values) <= _ANNOTATE_MAX:
        for row, y in enumerate(y_values):
            for column, x in enumerate(x_values):
                cell = cells.get((x, y))
                if cell is None or cell.failed == cell.tasks:
                    text = "failed"
                else:
                    text = f"{float(cell.net_pnl):.4g}"
                    if cell.failed:
                        text += f"\n{cell.tasks - cell.failed}/{cell.tasks} ok"
                axes.text(column, row, text, ha="center", va="center", fontsize=8)
    figure.savefig(path, format="png", metadata={"Software": None})
