"""Backtest benchmark: ``python -m dma_bot backtest`` against NautilusTrader on the same quotes, in one run.

Data sets, written by our own cores (the mock feed's :class:`~dma_bot.feed.mock.RandomWalk`, seeded by the mock
preset's MOCK_SEED, encoded by :class:`~dma_bot.recorder.jsonl.JsonlEncoder`) as our usual recording: a Start
record naming the instruments, one ``Md`` line per quote (each symbol's quotes 1 ms apart, the symbols of a round
spread evenly inside its millisecond), a Stop record:

* ``A``: ``--quotes`` (default 1,000,000) quotes of BTCUSDT;
* ``B``: ``--quotes`` quotes over the mock preset's 4 symbols;
* ``C`` (``--big`` only): 10x ``--quotes`` of BTCUSDT, to see that memory stays flat (peak RSS of C vs A).

Runs, one after the other, each in its own process (wall time and peak RSS measured by a tiny wrapper process):

* ``ours``: ``python -m dma_bot backtest FILE --env ENV --out DIR``; quotes/s and the loop's wall time from its
  ``run.json``, orders and fills from its ``report.json``, and the process's wall time (start-up, reading the
  Start record and the first prices, writing the report) measured here. A and C: mean reversion alone on BTCUSDT,
  MR_COOLDOWN_TICKS=1000 (about one order per 1000 quotes; position and loss limits opened so risk does not
  throttle it); B: the mock preset (.env.mock) as it is: three strategies on 4 symbols.
* ``nautilus``: ``bench/nautilus_side.py`` under ``--nautilus-python`` (NautilusTrader is never our dependency) on
  A: a BacktestEngine with a market order every 1000 quotes; only ``engine.run()`` is timed for quotes/s.
* ``hot_path``: ``bench/hot_path.py --json``, for its ``pure`` figure (our cores in one plain loop, no I/O):
  the ceiling that B's quotes/s is compared with.

Our runs use the cores as built: compiled by mypyc when ``make`` built them (each run says which), or with
``--pure`` their Python sources.

Targets: A ours >= 3x Nautilus; A ours >= 600k quotes/s (and its ratio to hftbacktest's 1.1M/s mark); B >= 400k
quotes/s; with ``--big``, peak RSS of C within 1.5x of A's. Also, as ratios only: B to hot_path's pure loop, and B
to NautilusTrader's A in the same run (this VM's speed moves 3-4x from day to day; the issue set 400k where
NautilusTrader did 0.16-0.23 M quotes/s, i.e. at 1.74-2.5x it). Prints human-readable lines; with ``--json``
the last line is one JSON object. It first times a fixed pure-Python loop (``machine_loop_s``), so runs of
different days can be set side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from dma_bot.config import ALIASES, OWN_PREFIXES, PROCESS_SWITCHES, Config, load_config, read_env_file
from dma_bot.feed.mock import RandomWalk
from dma_bot.model.events import Tick
from dma_bot.params import mock_instruments, random_walk_params
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields

ROOT = Path(__file__).resolve().parents[1]
MOCK_PRESET = ROOT / ".env.mock"
NAUTILUS_SIDE = Path(__file__).resolve().with_name("nautilus_side.py")
HOT_PATH = Path(__file__).resolve().with_name("hot_path.py")
DEFAULT_NAUTILUS_PYTHON = "/work/nt-venv/bin/python"
T0_NS = 1_700_000_000_000_000_000  # the recordings' first timestamp (fixed: the same bytes every run)
QUOTE_SPACING_NS = 1_000_000  # 1 ms between two quotes of one symbol
ROUNDS_PER_CHUNK = 8192
ORDER_EVERY = 1000  # quotes between orders: our A's MR_COOLDOWN_TICKS and Nautilus's strategy

# A and C: one strategy on one symbol, an order about every 1000 quotes; position and loss limits out of the way.
A_PRESET = {
    "SYMBOLS": "BTCUSDT",
    "STRATEGIES": "mean_reversion",
    "MR_COOLDOWN_TICKS": str(ORDER_EVERY),
    "RISK_MAX_POSITION": "1000000",
    "RISK_MAX_LOSS": "0",
}

TARGET_VS_NAUTILUS = 3.0
TARGET_A_FLOOR = 600_000
HFTBACKTEST_MARK = 1_100_000
TARGET_B = 400_000
# what the issue measured NautilusTrader at on this machine when it set the targets (A's quotes/s)
NAUTILUS_REFERENCE_LOW, NAUTILUS_REFERENCE_HIGH = 160_000, 230_000
NAUTILUS_REFERENCE = "0.16-0.23 M/s"
TARGET_RSS_RATIO = 1.5


def _preset(extra: dict[str, str]) -> dict[str, str]:
    """The mock preset's keys with ``extra`` on top."""
    return {**read_env_file(MOCK_PRESET), **extra}


def _write_env(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def write_recording(path: Path, preset: dict[str, str], quotes: int,
                    spacing_ns: int = QUOTE_SPACING_NS) -> dict[str, Any]:
    """``quotes`` quotes of the preset's SYMBOLS (round by round, ``spacing_ns`` apart) from its mock walk, as our
    JSONL recording."""
    config: Config = load_config(preset, {})
    instruments = mock_instruments(config)
    symbols = config["SYMBOLS"]
    n = len(symbols)
    walk = RandomWalk(symbols, random_walk_params(config, instruments), config["MOCK_SEED"])
    encoder = JsonlEncoder(instruments)
    offsets = [index * spacing_ns // n for index in range(n)]
    make = Tick._make
    started = time.perf_counter()
    written = 0
    rounds_done = 0
    last_ns = T0_NS
    with path.open("wb") as out:
        out.write(encoder.encode_control(
            "Start", {"source": "bench/backtest.py", "feed": "mock random walk", "seed": config["MOCK_SEED"],
                      "instruments": instrument_fields(instruments)}, ts_ns=T0_NS))
        while written < quotes:
            rounds = min(ROUNDS_PER_CHUNK, -(-(quotes - written) // n))
            first_ns = T0_NS + rounds_done * spacing_ns
            per_symbol = []
            for index, batch in enumerate(walk.next_rounds(rounds, first_ns)):
                start = first_ns + offsets[index]
                stamps = range(start, start + rounds * spacing_ns, spacing_ns)
                per_symbol.append(map(make, zip(itertools.repeat(batch.symbol), batch.bid.tolist(), batch.ask.tolist(),
                                                batch.bid_qty.tolist(), batch.ask_qty.tolist(), stamps, stamps,
                                                strict=False)))
            ticks = list(itertools.chain.from_iterable(zip(*per_symbol, strict=True)))
            del ticks[quotes - written:]
            lines: list[bytes] = []
            encoder.encode_batch(ticks, lines)
            out.write(b"".join(lines))
            written += len(ticks)
            rounds_done += rounds
            last_ns = ticks[-1].ts_ns
        out.write(encoder.encode_control("Stop", {"clean": True}, ts_ns=last_ns))
    return {"file": str(path), "symbols": list(symbols), "quotes": written,
            "mb": round(path.stat().st_size / 1e6, 1), "write_s": round(time.perf_counter() - started, 2)}


def _child_env() -> dict[str, str]:
    """This environment without any of dma_bot's keys (they would override the env file) but its process
    switches (DMA_BOT_PURE), dma_bot importable."""
    env = {key: value for key, value in os.environ.items()
           if key in PROCESS_SWITCHES or (not key.startswith(OWN_PREFIXES) and key not in ALIASES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return env


# Runs a command and writes its wall time and peak RSS to a file: a child's ru_maxrss starts at its parent's RSS at
# fork (it survives the exec), so a child of this process would report at least this process's size; a tiny
# wrapper's child starts from the wrapper's ~10 MB instead.
_WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall_s = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{wall_s} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(code)
"""


def _run_measured(argv: Sequence[str], log: Path, cwd: Path) -> tuple[int, float, float]:
    """Run ``argv`` with stdout+stderr to ``log``: exit code, wall seconds and the child's peak RSS in MB."""
    usage = log.with_suffix(".usage")
    with log.open("wb") as out:
        code = subprocess.call([sys.executable, "-c", _WRAPPER, str(usage), *argv], stdout=out,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=_child_env())
    wall_s, maxrss_kib = usage.read_text().split()
    return code, float(wall_s), int(maxrss_kib) / 1024  # Linux: ru_maxrss in KiB


def _tail(log: Path, lines: int = 5) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_ours(name: str, recording: Path, env_values: dict[str, str], work: Path) -> dict[str, Any]:
    env_file = work / f"{name}.env"
    _write_env(env_file, env_values)
    out = work / f"out_{name}"
    shutil.rmtree(out, ignore_errors=True)
    log = work / f"ours_{name}.log"
    argv = [sys.executable, "-m", "dma_bot", "backtest", str(recording), "--env", str(env_file), "--out", str(out)]
    code, wall_s, rss_mb = _run_measured(argv, log, work)
    if code != 0:
        raise SystemExit(f"bench/backtest.py: ours on {name} exited {code}:\n{_tail(log)}")
    run = orjson.loads((out / "run.json").read_bytes())
    report = orjson.loads((out / "report.json").read_bytes())
    totals = report["totals"]
    with (out / "events.jsonl").open("rb") as events_file:  # every event is one line; Start and Stop are not
        events = sum(chunk.count(b"\n") for chunk in iter(lambda: events_file.read(1 << 20), b"")) - 2
    result = {
        "data_set": name, "engine": "ours", "quotes": report["input"]["quotes"], "orders": totals["orders"],
        "fills": totals["fills"], "signals": totals["signals"], "rejects": totals["rejects"],
        "run_s": run["wall_s"], "quotes_per_s": run["quotes_per_s"], "process_s": round(wall_s, 2),
        "peak_rss_mb": round(rss_mb, 1), "strategies": env_values.get("STRATEGIES"),
        "events": events, "us_per_event": round(run["wall_s"] * 1e6 / events, 2) if events else None,
        "cores": run["cores"],
    }
    print(f"  ours {name} ({result['cores']} cores): {result['quotes']:,} quotes, {result['orders']:,} orders "
          f"({result['fills']:,} fills, {result['rejects']:,} rejects), {result['quotes_per_s']:,} quotes/s "
          f"(loop {result['run_s']} s, process {result['process_s']} s), peak RSS {result['peak_rss_mb']} MB",
          flush=True)
    if events:  # what the loop's time goes to: the events it makes (Sig, Ord, Reject, Route, Exec lines)
        print(f"    {events:,} events ({events / result['quotes']:.3f} per quote), "
              f"{result['us_per_event']} us of loop per event", flush=True)
    return result


def run_nautilus(python: str, recording: Path, work: Path) -> dict[str, Any]:
    log = work / "nautilus_A.log"
    argv = [python, str(NAUTILUS_SIDE), str(recording), "--symbol", "BTCUSDT", "--every", str(ORDER_EVERY)]
    code, wall_s, rss_mb = _run_measured(argv, log, work)
    if code != 0:
        raise SystemExit(f"bench/backtest.py: nautilus_side.py exited {code}:\n{_tail(log, 20)}")
    side = orjson.loads(log.read_text().splitlines()[-1])
    result = {
        "data_set": "A", "engine": "nautilus", "quotes": side["quotes"], "orders": side["orders"],
        "fills": side["fill_events"], "run_s": side["run_s"], "quotes_per_s": side["quotes_per_s"],
        "process_s": round(wall_s, 2), "peak_rss_mb": round(rss_mb, 1), "read_s": side["read_s"],
        "build_s": side["build_s"], "load_s": side["load_s"], "version": side["version"], "parser": side["parser"],
    }
    print(f"  nautilus {side['version']} A: {result['quotes']:,} quotes, {result['orders']:,} orders "
          f"({result['fills']:,} fills), {result['quotes_per_s']:,} quotes/s (engine.run {result['run_s']} s; "
          f"read {side['read_s']} s with {side['parser']}, build {side['build_s']} s, add_data {side['load_s']} s; "
          f"process {result['process_s']} s), peak RSS {result['peak_rss_mb']} MB", flush=True)
    return result


def run_hot_path(work: Path) -> dict[str, Any]:
    log = work / "hot_path.log"
    code, _, _ = _run_measured([sys.executable, str(HOT_PATH), "--json"], log, work)
    if code != 0:
        raise SystemExit(f"bench/backtest.py: hot_path.py exited {code}:\n{_tail(log)}")
    result: dict[str, Any] = orjson.loads(log.read_text().splitlines()[-1])
    print(f"  hot_path: pure {result['pure_ticks_per_s']:,} ticks/s, pipeline {result['ticks_per_s']:,} ticks/s",
          flush=True)
    return result


def machine_loop_s(rounds: int = 3) -> float:
    """The best of ``rounds`` timings of a fixed pure-Python loop (10**7 additions) in this process: how fast
    this machine is right now, to compare runs of different days (lower is faster)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for value in range(10_000_000):
            total += value
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def _verdict(ok: bool | None) -> str:
    return "info" if ok is None else "PASS" if ok else "BELOW"


def _targets(runs: dict[str, dict[str, Any]], hot: dict[str, Any] | None) -> list[dict[str, Any]]:
    a, b, c, nt = runs.get("ours A"), runs.get("ours B"), runs.get("ours C"), runs.get("nautilus A")
    targets: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, ok: bool | None) -> None:
        targets.append({"target": name, "value": value, "goal": goal, "verdict": _verdict(ok)})

    if a is not None and nt is not None:
        ratio = a["quotes_per_s"] / nt["quotes_per_s"]
        add("A ours / Nautilus quotes/s", round(ratio, 2), f">= {TARGET_VS_NAUTILUS:g}x", ratio >= TARGET_VS_NAUTILUS)
    else:
        targets.append({"target": "A ours / Nautilus quotes/s", "value": None,
                        "goal": f">= {TARGET_VS_NAUTILUS:g}x (Nautilus skipped)", "verdict": "n/a"})
    if a is not None:
        add("A ours quotes/s", a["quotes_per_s"], f">= {TARGET_A_FLOOR:,}", a["quotes_per_s"] >= TARGET_A_FLOOR)
        add("A ours / hftbacktest 1.1M/s mark", round(a["quotes_per_s"] / HFTBACKTEST_MARK, 2), "ratio only", None)
    if b is not None:
        add("B ours quotes/s", b["quotes_per_s"], f">= {TARGET_B:,}", b["quotes_per_s"] >= TARGET_B)
        if hot is not None:
            add("B ours / hot_path pure ticks/s", round(b["quotes_per_s"] / hot["pure_ticks_per_s"], 2),
                "ratio only (pure = ceiling of our cores)", None)
        if nt is not None:  # the machine's yardstick: the issue set 400k where Nautilus did 0.16-0.23 M/s on A
            add("B ours / Nautilus A quotes/s", round(b["quotes_per_s"] / nt["quotes_per_s"], 2),
                f"ratio only ({TARGET_B:,} at Nautilus' {NAUTILUS_REFERENCE}: "
                f"{TARGET_B / NAUTILUS_REFERENCE_HIGH:.2f}-{TARGET_B / NAUTILUS_REFERENCE_LOW:.2f}x)", None)
    if a is not None and c is not None:
        ratio = c["peak_rss_mb"] / a["peak_rss_mb"]
        add("C / A peak RSS", round(ratio, 2), f"<= {TARGET_RSS_RATIO:g}x", ratio <= TARGET_RSS_RATIO)
    return targets


def _print_table(rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    head = f"{'data set':<9}{'engine':<10}{'quotes':>12}{'orders':>9}{'run s':>9}{'process s':>11}" \
           f"{'quotes/s':>12}{'peak RSS MB':>13}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['data_set']:<9}{r['engine']:<10}{r['quotes']:>12,}{r['orders']:>9,}{r['run_s']:>9.2f}"
              f"{r['process_s']:>11.2f}{r['quotes_per_s']:>12,}{r['peak_rss_mb']:>13.1f}")
    print("(run s: ours the replay loop from run.json, Nautilus engine.run(); process s: the whole child process "
          "incl. start-up and data loading)")
    print("targets:")
    for t in targets:
        value = "-" if t["value"] is None else f"{t['value']:,}"
        print(f"  {t['verdict']:<6} {t['target']:<36} {value:>12}   ({t['goal']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quotes", type=int, default=1_000_000, help="quotes in A and B (default 1,000,000)")
    parser.add_argument("--big", action="store_true", help="also data set C: 10x --quotes of BTCUSDT (peak RSS)")
    parser.add_argument("--nautilus-python", default=DEFAULT_NAUTILUS_PYTHON, metavar="PATH",
                        help=f"Python of a venv with NautilusTrader (default {DEFAULT_NAUTILUS_PYTHON})")
    parser.add_argument("--keep", metavar="DIR", help="write the data sets and outputs here and keep them")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--pure", action="store_true",
                        help="run our backtests on the pure-Python cores (DMA_BOT_PURE=1), not the compiled ones")
    args = parser.parse_args(argv)
    if args.pure:
        os.environ["DMA_BOT_PURE"] = "1"  # inherited by our runs (and hot_path)
    if args.quotes < 1:
        print(f"bench/backtest.py: --quotes: a positive number of quotes, was {args.quotes}", file=sys.stderr)
        return 2

    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep).resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_backtest_")))
        a_preset, b_preset = _preset(A_PRESET), _preset({})
        sets = {"A": (a_preset, args.quotes), "B": (b_preset, args.quotes)}
        if args.big:
            sets["C"] = (a_preset, 10 * args.quotes)
        machine_s = machine_loop_s()
        print(f"machine: 10**7 pure-Python additions in {machine_s} s (best of 3; lower is faster)", flush=True)
        print(f"data sets in {work}:", flush=True)
        data: dict[str, dict[str, Any]] = {}
        for name, (preset, quotes) in sets.items():
            data[name] = write_recording(work / f"{name}.jsonl", preset, quotes)
            d = data[name]
            print(f"  {name}: {d['quotes']:,} quotes of {','.join(d['symbols'])}, {d['mb']} MB, "
                  f"written in {d['write_s']} s", flush=True)

        print("runs:", flush=True)
        runs: dict[str, dict[str, Any]] = {}
        runs["ours A"] = run_ours("A", work / "A.jsonl", a_preset, work)
        nautilus_note = None
        if Path(args.nautilus_python).is_file():
            runs["nautilus A"] = run_nautilus(args.nautilus_python, work / "A.jsonl", work)
        else:
            nautilus_note = f"skipped: --nautilus-python {args.nautilus_python} does not exist"
            print(f"  nautilus A: {nautilus_note}", flush=True)
        runs["ours B"] = run_ours("B", work / "B.jsonl", b_preset, work)
        if args.big:
            runs["ours C"] = run_ours("C", work / "C.jsonl", a_preset, work)
        hot = run_hot_path(work)

    rows = list(runs.values())
    targets = _targets(runs, hot)
    print()
    _print_table(rows, targets)
    if nautilus_note:
        print(f"Nautilus {nautilus_note}")
    if args.json:
        result = {
            "data_sets": data,
            "runs": rows,
            "targets": targets,
            "nautilus": nautilus_note or "ran",
            "hot_path_pure_ticks_per_s": hot["pure_ticks_per_s"],
            "b_vs_pure": round(runs["ours B"]["quotes_per_s"] / hot["pure_ticks_per_s"], 3),
            "machine_loop_s": machine_s,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
        print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
