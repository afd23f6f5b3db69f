"""dma_bot.sweep.results: files in task order whatever order rows finished in; ranking and the table."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from dma_bot.sweep.results import ResultsWriter, format_table, rank
from dma_bot.sweep.task import METRIC_COLUMNS


def _row(task: int, fast: str, recording: str, net: str | None, error: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"task": task, "recording": recording, "MA_FAST": fast, **dict.fromkeys(METRIC_COLUMNS)}
    if error is not None:
        row["error"] = error
        return row
    row.update(quotes=10, signals=3, orders=2, rejects=1, fills=4, fees="0.5", realized_pnl=net, net_pnl=net,
               max_drawdown="1.5", sharpe="2.0", run_s=0.1)
    return row


ROWS = [_row(0, "4", "a", "1.5"), _row(1, "4", "b", "-0.5"), _row(2, "8", "a", "3"), _row(3, "8", "b", None, "boom"),
        _row(4, "16", "a", "0.25"), _row(5, "16", "b", "0.5")]


def test_results_are_written_live_then_in_task_order(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path / "out", ("MA_FAST",))
    for row in reversed(ROWS):
        writer.add(row)
    live = [orjson.loads(line)["task"] for line in (tmp_path / "out" / "results.jsonl").read_bytes().splitlines()]
    assert live == [5, 4, 3, 2, 1, 0]  # completion order while running

    writer.finish(list(reversed(ROWS)))

    lines = [orjson.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_bytes().splitlines()]
    assert [line["task"] for line in lines] == list(range(6))
    assert lines[3]["error"] == "boom" and lines[3]["net_pnl"] is None
    with (tmp_path / "out" / "results.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["task"] for row in rows] == [str(i) for i in range(6)]
    assert rows[3]["error"] == "boom" and rows[3]["net_pnl"] == "" and rows[0]["error"] == ""
    assert not (tmp_path / "out" / "results.jsonl.partial").exists()


def test_rank_sums_recordings_and_lists_combinations_with_failures_after() -> None:
    ranked = rank(ROWS, ("MA_FAST",))

    assert [c.params for c in ranked] == [("4",), ("16",), ("8",)]
    assert ranked[0].net_pnl == Decimal("1.0") and ranked[1].net_pnl == Decimal("0.75")
    assert ranked[2].failed == 1 and ranked[2].net_pnl == Decimal(3) and ranked[2].first_error == "boom"
    assert ranked[0].fills == 8 and ranked[0].sharpe == Decimal("2.00")


def test_table_shows_the_top_and_a_completely_failed_combination_s_error() -> None:
    rows = [*ROWS, _row(6, "32", "a", None, "MA_FAST: less than MA_SLOW (16), was 32"),
            _row(7, "32", "b", None, "MA_FAST: less than MA_SLOW (16), was 32")]
    table = format_table(rank(rows, ("MA_FAST",)), ("MA_FAST",), top=10).splitlines()

    assert table[0].split() == ["#", "MA_FAST", "net_pnl", "realized", "fees", "max_dd", "sharpe", "fills", "ok"]
    assert table[1].split() == ["1", "4", "1.0", "1.0", "1.0", "1.5", "2.00", "8", "2/2"]
    assert table[3].split()[-1] == "1/2"
    assert table[4].endswith("failed (0/2 ok): MA_FAST: less than MA_SLOW (16), was 32")
    short = format_table(rank(rows, ("MA_FAST",)), ("MA_FAST",), top=2).splitlines()
    assert len(short) == 4 and short[-1] == "... 2 more combinations in results.csv"
