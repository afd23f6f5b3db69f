"""``python -m dma_bot backtest RECORDING... [--env FILE] [--out DIR] [--strict] [--record-md] [--from TS] [--to TS]
[--symbols LIST] [--no-prefetch]``.

Owns the command: it reads the configuration as the daemon does (``--env`` preset, else ``./.env``, then the
process environment; ``--symbols`` overrides SYMBOLS, so the usual validation applies), takes the instruments
from the first recording's Start record (the Rust original's recordings: cents with ``MOCK_STEP_SIZE``), sizes
orders at each symbol's earliest recorded mid inside the window (over all the recordings), replays the
recordings merged by time through :class:`~dma_bot.backtest.Backtest` and writes ``DIR/events.jsonl`` (the
usual schema; ``Md`` lines only with ``--record-md``) and ``DIR/report.json`` (input with the window and
symbols used, counts, books: the same bytes for the same input and configuration), then prints a summary with
the wall time and quotes/s (kept out of report.json, which stays deterministic; they go to ``DIR/run.json``).

* ``--from TS`` / ``--to TS`` (epoch ns, or ISO-8601: ``2026-12-01``, ``2026-12-01T10:00:00Z``, up to 9
  decimals of a second; UTC unless an offset is given): only the quotes with ``from <= ts_event_ns < to`` are
  replayed, the others count as ``outside_window`` (no problem), and each recording is read only up to its
  first quote at or after ``to``.
* ``--symbols BTCUSDT,ETHUSDT``: the other symbols' quotes count as ``not_selected``, which is no problem (not
  in ``first_problems``, never an error with ``--strict``); without it, quotes of symbols outside SYMBOLS are
  ``unknown_symbol`` problems, as in a replay. A symbol the recording has no instrument for is an error.
* A progress bar (bytes of the recordings as stored, quotes, quotes/s, ETA) is drawn on stderr when stderr is a
  terminal, advanced once per block of quotes; off a terminal nothing but the usual lines is written.
* The recordings are read (decoded into blocks of quotes) in a second process while this one runs the
  backtest on the blocks read so far (:mod:`~dma_bot.feed.prefetch`: the same blocks, counts and errors as
  reading in-process); ``--no-prefetch`` reads them in this process (for debugging or profiling).
* ``DIR/equity.png`` (net PnL, drawdown, net position over time) is drawn when matplotlib is importable
  (``pip install 'dma_bot[report]'``); otherwise :data:`~dma_bot.report_plot.MISSING_HINT` is one line on
  stderr, any older equity.png in DIR is removed, and the run still succeeds.

A bad option value, a missing or unreadable recording, one without a quote (in the window), or
(``--strict``) its first bad line is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import orjson

from dma_bot import CORES
from dma_bot.backtest import Backtest
from dma_bot.config import Config, preset_values
from dma_bot.errors import ConfigError
from dma_bot.feed.prefetch import Prefetch
from dma_bot.feed.recording import QUIET_REASONS, ReadStats, RecordingError, SkipReason, Window
from dma_bot.feed.recording_columns import merge_columns
from dma_bot.params import backtest_config, replay_columns, replay_instruments, replay_prices
from dma_bot.progress import Progress, progress_enabled
from dma_bot.recorder.jsonl import instrument_fields
from dma_bot.report_plot import MISSING_HINT, plot_available, write_equity_png

__all__ = ["main", "parse_time"]

EXIT_USAGE = 2
_Unit = TypeVar("_Unit")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ISO: Final = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})"
                         r"(?:[T ](?P<clock>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d{1,9}))?"
                         r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?", re.ASCII)
_NS_MAX: Final = 2**63 - 1


class _Usage(Exception):
    """A bad option value, as the one line to print."""


def parse_time(option: str, raw: str) -> int:
    """``--from``/``--to``: epoch ns (digits), or ISO-8601 (a date is its midnight; UTC unless an offset is
    given; up to 9 decimals of a second) -> epoch ns; anything else is a one-line :class:`ValueError`."""
    text = raw.strip()
    problem = ValueError(f"{option}: ISO-8601 UTC time or epoch ns, was {raw!r}")
    if text.isdigit() and text.isascii():
        value = int(text)
    else:
        match = _ISO.fullmatch(text)
        if match is None:
            raise problem
        try:
            when = datetime.fromisoformat(f"{match['day']}T{match['clock'] or '00:00'}")
        except ValueError:
            raise problem from None
        zone = match["zone"]
        offset = timedelta(0) if zone in (None, "Z") else (
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        if abs(offset) >= timedelta(hours=24):
            raise problem
        delta = when.replace(tzinfo=timezone(offset)) - _EPOCH
        value = (delta.days * 86_400 + delta.seconds) * 10**9 + int((match["fraction"] or "").ljust(9, "0"))
    if not 0 <= value <= _NS_MAX:
        raise problem
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dma_bot backtest",
                                     description="Replay recordings through the engine's cores as fast as possible.")
    parser.add_argument("recordings", nargs="+", metavar="RECORDING",
                        help="JSONL recordings (.gz, .zst), merged by time")
    parser.add_argument("--env", metavar="FILE", help="preset file (default ./.env, else the mock preset)")
    parser.add_argument("--out", metavar="DIR", default="backtest", help="output directory (default ./backtest)")
    parser.add_argument("--strict", action="store_true", help="the first bad line is an error (exit 2)")
    parser.add_argument("--record-md", action="store_true", help="also write the Md records to events.jsonl")
    parser.add_argument("--from", dest="start", metavar="TS",
                        help="replay quotes at or after TS (epoch ns, or ISO-8601 UTC: 2026-12-01T10:00:00Z)")
    parser.add_argument("--to", dest="end", metavar="TS",
                        help="replay quotes before TS (and read each recording only up to it)")
    parser.add_argument("--symbols", metavar="LIST",
                        help="the symbols to replay (overrides SYMBOLS), e.g. BTCUSDT,ETHUSDT")
    parser.add_argument("--no-prefetch", dest="prefetch", action="store_false",
                        help="read the recordings in this process, not in a second one (for debugging)")
    return parser


def _window(args: argparse.Namespace) -> Window:
    try:
        start = None if args.start is None else parse_time("--from", args.start)
        end = None if args.end is None else parse_time("--to", args.end)
    except ValueError as e:
        raise _Usage(str(e)) from None
    if start is not None and end is not None and end <= start:
        raise _Usage(f"--to: a time after --from ({args.start!r} = {start} ns), was {args.end!r} = {end} ns")
    return Window(start, end)


def _config(args: argparse.Namespace) -> Config:
    return backtest_config(preset_values(args.env), os.environ, args.recordings[0], symbols=args.symbols)


def _advancing(blocks: Iterable[_Unit], stats: ReadStats, progress: Progress) -> Iterator[_Unit]:
    """The blocks, moving the bar after each one is done (per block: nothing in the per-quote work)."""
    for block in blocks:
        yield block
        progress.advance(stats.input_bytes, stats.quotes)


def _run(read: Callable[[], Iterator[_Unit]], run: Callable[[Iterable[_Unit], IO[bytes], dict[str, Any]], None],
         stats: ReadStats, total_bytes: int, out: Path, fields: dict[str, Any], prefetch: bool) -> None:
    """``run`` over what ``read`` makes (in the reader's process unless not ``prefetch``: it is forked here,
    before the bar can start a thread, with a copy of the backtest as it is before the run), into
    DIR/events.jsonl."""
    with Prefetch(read, stats, enabled=prefetch) as units, \
            Progress(total_bytes, enabled=progress_enabled(sys.stderr)) as progress, \
            open(out / "events.jsonl", "wb") as events:
        run(_advancing(units, stats, progress), events, fields)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    missing = [path for path in args.recordings if not Path(path).is_file()]
    if missing:
        print(f"dma_bot backtest: RECORDING: existing recording files, was {' '.join(missing)} (not found)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        window = _window(args)
        config = _config(args)
        instruments = replay_instruments(config)
        prices = replay_prices(config, instruments, window, args.recordings)
    except _Usage as e:
        print(f"dma_bot backtest: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, RecordingError) as e:
        text = str(e)
        if args.symbols is not None and text.startswith("SYMBOLS:"):  # SYMBOLS is what --symbols said
            text = "--symbols:" + text.removeprefix("SYMBOLS:")
        print(f"dma_bot backtest: {text}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = ReadStats()
    selected = args.symbols is not None
    sources = [replay_columns(config, instruments, stats, path, strict=args.strict, selected=selected, window=window)
               for path in args.recordings]
    backtest = Backtest(config, instruments, prices, record_md=args.record_md)
    total_bytes = sum(Path(path).stat().st_size for path in args.recordings)
    started = time.perf_counter()
    fields = {"recordings": args.recordings, "config": config.redacted(), "instruments": instrument_fields(instruments)}
    try:
        if args.record_md:  # the per-quote loop, which signals as it goes
            _run(lambda: merge_columns(sources), backtest.run_columns, stats, total_bytes, out, fields, args.prefetch)
        else:  # the reader's process finds each block's signals too (they depend on the quotes alone)
            _run(lambda: map(backtest.signals, merge_columns(sources)), backtest.run_signals, stats, total_bytes,
                 out, fields, args.prefetch)
    except RecordingError as e:
        print(f"dma_bot backtest: {e}", file=sys.stderr)
        return EXIT_USAGE
    wall_s = time.perf_counter() - started
    report = _report(args.recordings, stats, backtest, window, config["SYMBOLS"], selected)
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    run = {"wall_s": round(wall_s, 3), "quotes_per_s": round(stats.quotes / wall_s) if wall_s > 0 else None,
           "cores": CORES.kind}
    (out / "run.json").write_bytes(orjson.dumps(run) + b"\n")
    equity = _equity_png(out, args.recordings, backtest, config["SYMBOLS"])
    _print_summary(report, run, out, equity)
    return 0


def _equity_png(out: Path, recordings: list[str], backtest: Backtest, symbols: Sequence[str]) -> Path | None:
    """DIR/equity.png when matplotlib is importable, else the hint on stderr (and no stale picture left)."""
    path = out / "equity.png"
    if not plot_available():
        path.unlink(missing_ok=True)
        print(MISSING_HINT, file=sys.stderr)
        return None
    title = f"dma_bot backtest: {', '.join(Path(r).name for r in recordings)} ({','.join(symbols)})"
    write_equity_png(path, backtest.equity.samples, title=title)
    return path


def _report(recordings: list[str], stats: ReadStats, backtest: Backtest, window: Window, symbols: Sequence[str],
            selected: bool) -> dict[str, Any]:
    counts = backtest.counts
    stop = backtest.stop_fields()
    return {
        "input": {
            "files": recordings,
            "from_ns": window.start_ns,
            "to_ns": window.end_ns,
            "symbols": list(symbols),
            "symbols_selected": selected,  # --symbols gave them (else SYMBOLS of the configuration)
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
    money = backtest.books.report(backtest.config["STRATEGIES"])
    rows = []
    for name, books in money.items():
        symbols = [(symbol, c) for (strategy, symbol), c in sorted(backtest.counts.by_strategy.items())
                   if strategy == name]
        rejects: dict[str, int] = {}
        for _, c in symbols:
            for reason, n in c.rejects.items():
                rejects[reason] = rejects.get(reason, 0) + n
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


def _print_summary(report: dict[str, Any], run: dict[str, Any], out: Path, equity: Path | None) -> None:
    given, totals = report["input"], report["totals"]
    skipped = sum(n for reason, n in given["skipped"].items() if reason not in QUIET_REASONS)
    left_out = "".join(f", {label} {given['skipped'][reason]:,}"
                       for reason, label in ((SkipReason.OUTSIDE_WINDOW, "outside the window"),
                                             (SkipReason.NOT_SELECTED, "not selected"))
                       if given["skipped"][reason])
    print(f"quotes {given['quotes']:,} (lines {given['lines']:,}, skipped {skipped:,}{left_out}) in "
          f"{run['wall_s']} s: {run['quotes_per_s']:,} quotes/s ({run['cores']} cores)")
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
    print(f"events: {out / 'events.jsonl'}  report: {out / 'report.json'}"
          + (f"  equity: {equity}" if equity is not None else ""))
