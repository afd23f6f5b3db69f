"""``python -m dma_bot backtest RECORDING... [--env FILE] [--out DIR] [--strict] [--record-md]``.

Owns the command: it reads the configuration as the daemon does (``--env`` preset, else ``./.env``, then the
process environment), takes the instruments from the first recording's Start record (the Rust original's
recordings: cents with ``MOCK_STEP_SIZE``), sizes orders at each symbol's first recorded mid, replays the
recordings merged by time through :class:`~dma_bot.backtest.Backtest` and writes ``DIR/events.jsonl`` (the
usual schema; ``Md`` lines only with ``--record-md``) and ``DIR/report.json`` (input, counts, books: the same
bytes for the same input and configuration), then prints a summary with the wall time and quotes/s (kept out of
report.json, which stays deterministic; they go to ``DIR/run.json``). A missing or unreadable recording, one
without a quote, or (``--strict``) its first bad line is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from dma_bot.backtest import Backtest
from dma_bot.config import Config, load_config, preset_values
from dma_bot.errors import ConfigError
from dma_bot.feed.recording import ReadStats, RecordingError
from dma_bot.feed.recording_columns import merge_columns
from dma_bot.params import replay_columns, replay_instruments, replay_prices
from dma_bot.recorder.jsonl import instrument_fields

__all__ = ["main"]

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dma_bot backtest",
                                     description="Replay recordings through the engine's cores as fast as possible.")
    parser.add_argument("recordings", nargs="+", metavar="RECORDING",
                        help="JSONL recordings (.gz, .zst), merged by time")
    parser.add_argument("--env", metavar="FILE", help="preset file (default ./.env, else the mock preset)")
    parser.add_argument("--out", metavar="DIR", default="backtest", help="output directory (default ./backtest)")
    parser.add_argument("--strict", action="store_true", help="the first bad line is an error (exit 2)")
    parser.add_argument("--record-md", action="store_true", help="also write the Md records to events.jsonl")
    return parser


def _config(env: str | None, first: str) -> Config:
    overrides = {**os.environ, "FEED_MODE": "replay", "REPLAY_FILE": first, "VENUE_MODE": "mock"}
    return load_config(preset_values(env), overrides)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    missing = [path for path in args.recordings if not Path(path).is_file()]
    if missing:
        print(f"dma_bot backtest: RECORDING: existing recording files, was {' '.join(missing)} (not found)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        config = _config(args.env, args.recordings[0])
        instruments = replay_instruments(config)
        prices = replay_prices(config, instruments)
    except (ConfigError, RecordingError) as e:
        print(f"dma_bot backtest: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = ReadStats()
    sources = [replay_columns(config, instruments, stats, path, strict=args.strict) for path in args.recordings]
    backtest = Backtest(config, instruments, prices, record_md=args.record_md)
    started = time.perf_counter()
    try:
        with open(out / "events.jsonl", "wb") as events:
            fields = {"recordings": args.recordings, "config": config.redacted(),
                      "instruments": instrument_fields(instruments)}
            backtest.run_columns(merge_columns(sources), events, fields)
    except RecordingError as e:
        print(f"dma_bot backtest: {e}", file=sys.stderr)
        return EXIT_USAGE
    wall_s = time.perf_counter() - started
    if stats.quotes == 0:
        print(f"dma_bot backtest: RECORDING: recordings with at least one quote of {','.join(config['SYMBOLS'])}, "
              f"was none in {' '.join(args.recordings)}", file=sys.stderr)
        return EXIT_USAGE
    report = _report(args.recordings, stats, backtest)
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    run = {"wall_s": round(wall_s, 3), "quotes_per_s": round(stats.quotes / wall_s) if wall_s > 0 else None}
    (out / "run.json").write_bytes(orjson.dumps(run) + b"\n")
    _print_summary(report, run, out)
    return 0


def _report(recordings: list[str], stats: ReadStats, backtest: Backtest) -> dict[str, Any]:
    counts = backtest.counts
    stop = backtest.stop_fields()
    return {
        "input": {
            "files": recordings,
            "lines": stats.lines,
            "quotes": stats.quotes,
            "skipped": {str(reason): n for reason, n in stats.skipped.items()},
            "first_problems": [[path, line, str(reason), detail] for path, line, reason, detail in stats.problems],
            "first_ts_ns": stats.first_ns,
            "last_ts_ns": stats.last_ns,
        },
        "totals": {
            "signals": counts.signals,
            "orders": counts.orders,
            "rejects": counts.rejects,
            "rejects_by_reason": dict(sorted(counts.by_reason.items())),
            "routes": counts.routes,
            "reports": counts.reports,
            "fills": backtest.ledger.stats.fills,
            "fees": stop["fees"],
            "realized_pnl": stop["realized_pnl"],
            "unrealized_pnl": stop["unrealized_pnl"],
            "fee_value": stop["fee_value"],
            "net_pnl": stop["net_pnl"],
            "max_drawdown": stop["max_drawdown"],
        },
        "by_strategy": _by_strategy(backtest),
        "by_position": [
            {"symbol": p.symbol, "venue": p.venue, "quantity": str(p.holdings),
             "traded_quantity": backtest.instruments[p.symbol].format_qty(p.traded_quantity),
             "average_price": str(p.average_price), "realized_pnl": str(p.realized_pnl),
             "fees": {asset: str(amount) for asset, amount in sorted(p.fees.items())}, "fee_value": str(p.fee_value)}
            for p in sorted(backtest.ledger.snapshot().positions.values(), key=lambda p: (p.symbol, p.venue))
        ],
    }


def _by_strategy(backtest: Backtest) -> list[dict[str, Any]]:
    """Per strategy: its signals, orders and rejects (also per symbol) and its books (fills, volume, fees, PnL,
    max drawdown; also per symbol and venue)."""
    money = backtest.books.report()
    names = sorted({*backtest.config["STRATEGIES"], *money})
    rows = []
    for name in names:
        symbols = [(symbol, c) for (strategy, symbol), c in sorted(backtest.counts.by_strategy.items())
                   if strategy == name]
        rejects: dict[str, int] = {}
        for _, c in symbols:
            for reason, n in c.rejects.items():
                rejects[reason] = rejects.get(reason, 0) + n
        books = money.get(name) or {"fills": 0, "notional": "0", "fees": {}, "fee_value": "0", "realized_pnl": "0",
                                    "unrealized_pnl": "0", "net_pnl": "0", "max_drawdown": "0", "by_symbol_venue": []}
        rows.append({
            "strategy": name,
            "signals": sum(c.signals for _, c in symbols),
            "orders": sum(c.orders for _, c in symbols),
            "rejects": dict(sorted(rejects.items())),
            **{key: value for key, value in books.items() if key != "by_symbol_venue"},
            "by_symbol": [{"symbol": symbol, "signals": c.signals, "orders": c.orders,
                           "rejects": dict(sorted(c.rejects.items()))} for symbol, c in symbols],
            "by_symbol_venue": books["by_symbol_venue"],
        })
    return rows


def _short(amount: str) -> str:
    """A money string cut to 2 decimals for the table (report.json keeps it exact)."""
    return f"{Decimal(amount):,.2f}"


def _print_summary(report: dict[str, Any], run: dict[str, Any], out: Path) -> None:
    given, totals = report["input"], report["totals"]
    skipped = sum(n for reason, n in given["skipped"].items() if reason != "not_md")
    print(f"quotes {given['quotes']:,} (lines {given['lines']:,}, skipped {skipped:,}) in {run['wall_s']} s: "
          f"{run['quotes_per_s']:,} quotes/s")
    print(f"signals {totals['signals']:,}  orders {totals['orders']:,}  rejects {totals['rejects']:,}  "
          f"fills {totals['fills']:,}")
    print(f"realized {totals['realized_pnl']}  unrealized {totals['unrealized_pnl']}  fees {totals['fee_value']}  "
          f"net {totals['net_pnl']}  max drawdown {totals['max_drawdown']}")
    print(f"  {'strategy':<16} {'symbol':<10} {'signals':>8} {'orders':>7} {'rejects':>8} {'fills':>7} "
          f"{'net PnL':>16} {'max drawdown':>16}")
    for row in report["by_strategy"]:
        print(f"  {row['strategy']:<16} {'(all)':<10} {row['signals']:>8,} {row['orders']:>7,} "
              f"{sum(row['rejects'].values()):>8,} {row['fills']:>7,} {_short(row['net_pnl']):>16} "
              f"{_short(row['max_drawdown']):>16}")
        for line in row["by_symbol"]:
            print(f"  {'':<16} {line['symbol']:<10} {line['signals']:>8,} {line['orders']:>7,} "
                  f"{sum(line['rejects'].values()):>8,}")
    print(f"events: {out / 'events.jsonl'}  report: {out / 'report.json'}")
