"""A sweep's rows on disk and on the screen: DIR/results.jsonl, DIR/results.csv and the ranked table.

Owns the files' format and the ranking. While the sweep runs, ``results.jsonl`` gets each row as it finishes
(completion order, flushed per row: a watcher, or a killed sweep, sees every finished task); at the end both
files are rewritten in task order (task = combination x recording, the last recording varying fastest), so the
same sweep gives the same bytes wherever it ran, ``run_s`` aside. JSONL rather than Parquet: Parquet would need
pyarrow (about 100 MB) as a dependency; JSONL is one ``json.loads`` per line, and pandas/polars read both files
(``pd.read_json(path, lines=True)``). Money columns are exact decimal strings; a failed task has its ``error``
and empty numbers. The table ranks combinations by their net PnL summed over the recordings; a combination with
more failed tasks is listed after those with fewer (its sums cover fewer recordings: the ``ok`` column).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from dma_bot.sweep.task import columns

__all__ = ["Combination", "ResultsWriter", "format_table", "rank"]


class ResultsWriter:
    """``DIR/results.jsonl`` appended row by row, then :meth:`finish` writes both files in task order."""

    __slots__ = ("_columns", "_live", "out")

    def __init__(self, out: Path, swept: Sequence[str]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self._columns = columns(swept)
        self._live: IO[bytes] | None = open(out / "results.jsonl", "wb")  # noqa: SIM115 - closed by finish()

    def add(self, row: Mapping[str, Any]) -> None:
        live = self._live
        if live is not None:
            live.write(orjson.dumps(row) + b"\n")
            live.flush()

    def finish(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Both files with ``rows`` in task order (replacing the live file); the sorted rows."""
        if self._live is not None:
            self._live.close()
            self._live = None
        ordered = sorted(rows, key=lambda row: row["task"])
        partial = self.out / "results.jsonl.partial"
        partial.write_bytes(b"".join(orjson.dumps({key: row[key] for key in self._columns}) + b"\n"
                                     for row in ordered))
        os.replace(partial, self.out / "results.jsonl")
        with open(self.out / "results.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(self._columns)
            for row in ordered:
                writer.writerow("" if row[key] is None else row[key] for key in self._columns)
        return ordered


@dataclass(frozen=True, slots=True)
class Combination:
    """One combination's rows summed over its recordings."""

    params: tuple[str, ...]
    tasks: int
    failed: int
    net_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal
    max_drawdown: Decimal  # the worst of its recordings
    sharpe: Decimal | None  # the mean over the recordings that have one
    fills: int
    first_error: str | None


def rank(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> list[Combination]:
    """Combinations by their failed tasks (fewest first), then by net PnL over the tasks that ran (best first),
    then in grid order."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=lambda row: row["task"]):
        groups.setdefault(tuple(row[key] for key in swept), []).append(row)
    out = []
    for params, members in groups.items():
        ok = [row for row in members if row["error"] is None]
        sharpes = [Decimal(row["sharpe"]) for row in ok if row["sharpe"] is not None]
        errors = [row["error"] for row in members if row["error"] is not None]
        out.append(Combination(
            params=params, tasks=len(members), failed=len(errors),
            net_pnl=sum((Decimal(row["net_pnl"]) for row in ok), Decimal(0)),
            realized_pnl=sum((Decimal(row["realized_pnl"]) for row in ok), Decimal(0)),
            fees=sum((Decimal(row["fees"]) for row in ok), Decimal(0)),
            max_drawdown=max((Decimal(row["max_drawdown"]) for row in ok), default=Decimal(0)),
            sharpe=(sum(sharpes, Decimal(0)) / len(sharpes)).quantize(Decimal("0.01")) if sharpes else None,
            fills=sum(row["fills"] for row in ok), first_error=errors[0] if errors else None,
        ))
    order = {c.params: index for index, c in enumerate(out)}
    return sorted(out, key=lambda c: (c.failed, -c.net_pnl, order[c.params]))


def format_table(ranked: Sequence[Combination], swept: Sequence[str], top: int) -> str:
    """The first ``top`` combinations as a text table (net PnL, realized, fees, worst drawdown, mean Sharpe,
    fills, tasks ok/all); a combination whose every task failed shows its first error instead of numbers."""
    head = ["#", *swept, "net_pnl", "realized", "fees", "max_dd", "sharpe", "fills", "ok"]
    rows: list[list[str]] = []
    failures: dict[int, str] = {}
    for place, c in enumerate(ranked[:top], start=1):
        ok = f"{c.tasks - c.failed}/{c.tasks}"
        if c.failed == c.tasks:
            failures[len(rows)] = f"failed ({ok} ok): {c.first_error}"
            rows.append([str(place), *c.params])
        else:
            rows.append([str(place), *c.params, str(c.net_pnl), str(c.realized_pnl), str(c.fees),
                         str(c.max_drawdown), "-" if c.sharpe is None else str(c.sharpe), f"{c.fills:,}", ok])
    widths = [max(len(row[i]) for row in [head, *rows] if i < len(row)) for i in range(len(head))]
    text = ["  ".join(cell.rjust(width) for cell, width in zip(head, widths, strict=True))]
    for index, row in enumerate(rows):
        line = "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False))
        text.append(f"{line}  {failures[index]}" if index in failures else line)
    if len(ranked) > top:
        text.append(f"... {len(ranked) - top} more combinations in results.csv")
    return "\n".join(text)
