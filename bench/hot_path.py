"""Hot-path benchmark: the real pipeline end to end, and the same cores in one plain loop as the ceiling.

Runs (each on the mock preset with all three strategies on 4 symbols; the latency run goes first):

* ``pipeline``: the real daemon in-process (``run_daemon``) with the feed unthrottled, the recorder writing a
  temp file and the metrics endpoint bound (and scraped once): end-to-end ticks/s.
* ``latency``: the same daemon with the feed paced at ``--offered`` ticks/s in total; tick-to-order latency is
  read back from the JSONL audit trail: for every Ord (and every risk decision, Ord or Reject), the time from
  the receipt of the tick that caused its signal (Sig.ts_event_ns) to the decision (Ord/Reject.ts_ns).
  ``p99_us`` is over every order of the run, including the start-up burst (the full token bucket lets ~40
  orders through within milliseconds, and their ~250 execution reports load the loop); ``steady_p99_us``
  leaves out the first second. The run lasts 15 s (``--latency-seconds``): ~800 orders, so the p99 rests on
  the 8 orders above it; in a 5 s run (~300 orders) it is the 3rd worst, usually one of the start-up
  clusters decided together, and swings with a single slow loop turn.
* ``pure``: the same cores without queues or asyncio, on the same columnar batches as the unthrottled feed
  (feed walk -> board -> strategies -> risk -> router -> JSONL encoding into memory): the ceiling, so the
  cost of the plumbing is visible.

Prints human-readable lines; with ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from dma_bot.config import load_config
from dma_bot.feed.mock import RandomWalk, RandomWalkParams
from dma_bot.main import Engine, run_daemon
from dma_bot.model.events import Order
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT
from dma_bot.params import mock_instruments
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.risk.limits import RiskEngine, RiskParams
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.router.scoring import Router, RouterParams
from dma_bot.strategies import StrategyParams, make_strategy

SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT"


def _config(record: Path, rate: int) -> Any:
    return load_config(
        {},
        {
            "SYMBOLS": SYMBOLS,
            "MOCK_RATE": str(rate),
            "RECORD_FILE": str(record),
            "METRICS_PORT": "0",
            "METRICS_HOST": "127.0.0.1",
            "LOG_LEVEL": "warning",
            "STATUS_INTERVAL_S": "0",  # the benchmark prints its own results
        },
    )


async def _run_pipeline(record: Path, rate: int, seconds: float) -> dict[str, Any]:
    holder: dict[str, Any] = {}
    started = asyncio.Event()

    def ready(engine: Engine, port: int) -> None:
        holder["engine"] = engine
        holder["port"] = port
        holder["start"] = time.perf_counter()
        started.set()

    async def scrape_once() -> int:
        await started.wait()
        await asyncio.sleep(seconds / 2)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{holder['port']}/metrics") as r:
            return len(await r.read())

    async with asyncio.TaskGroup() as group:
        daemon = group.create_task(run_daemon(_config(record, rate), duration=seconds, on_ready=ready))
        scrape = group.create_task(scrape_once())
    elapsed = time.perf_counter() - holder["start"]
    engine: Engine = holder["engine"]
    ticks = sum(engine.feed.ticks_by_symbol.values())
    return {
        "status": daemon.result(),
        "ticks": ticks,
        "elapsed_s": elapsed,
        "ticks_per_s": ticks / elapsed,
        "orders": engine.risk_engine.stats.orders_total,
        "fills": engine.ledger.snapshot().fills,
        "metrics_bytes": scrape.result(),
    }


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] / 1000.0  # ns -> us


def _latencies(record: Path, warm_up_ns: int) -> tuple[list[int], list[int], list[int]]:
    """Sorted latencies in ns, joined through the Sig records, in one pass over the file: tick-to-order,
    tick-to-decision (orders and rejects), and tick-to-order of the orders made at least ``warm_up_ns``
    after the Start record (steady state, without the start-up burst)."""
    tick_of_signal: dict[tuple[str, str, int], int] = {}
    orders: list[int] = []
    decisions: list[int] = []
    steady_orders: list[int] = []
    start_ns = None
    with record.open("rb") as f:
        for line in f:
            r = orjson.loads(line)
            kind = r["type"]
            if kind == "Start":
                start_ns = r["ts_ns"]
            elif kind == "Sig":
                tick_of_signal[(r["strategy"], r["symbol"], r["ts_ns"])] = r["ts_event_ns"]
            elif kind in ("Ord", "Reject"):
                tick_ns = tick_of_signal.get((r["strategy"], r["symbol"], r["ts_signal_ns"]))
                if tick_ns is None or start_ns is None:
                    continue
                latency = r["ts_ns"] - tick_ns
                decisions.append(latency)
                if kind == "Ord":
                    orders.append(latency)
                    if r["ts_ns"] - start_ns >= warm_up_ns:
                        steady_orders.append(latency)
    for values in (orders, decisions, steady_orders):
        values.sort()
    return orders, decisions, steady_orders


def _run_pure(ticks: int) -> dict[str, Any]:
    config = load_config({}, {"SYMBOLS": SYMBOLS})
    instruments = mock_instruments(config)
    symbols = config["SYMBOLS"]
    inst = instruments[symbols[0]]
    walk = RandomWalk(
        symbols,
        RandomWalkParams(
            start_ticks=inst.price_to_ticks(config["MOCK_START_PRICE"]),
            min_ticks=inst.price_to_ticks(config["MOCK_MIN_PRICE"]),
        ),
        config["MOCK_SEED"],
    )
    quantity = inst.qty_to_steps(config["STRATEGY_QTY"])
    params = StrategyParams()
    per_symbol = [
        [make_strategy(name, params, symbol, quantity) for name in config["STRATEGIES"]] for symbol in symbols
    ]
    board = MarketBoard()
    from dma_bot.bus import Latest

    risk = RiskEngine(RiskParams(), instruments, board, Latest(EMPTY_SNAPSHOT), ClientOrderIds("bench"))
    router = Router(RouterParams(), instruments)
    encoder = JsonlEncoder(instruments)
    out = io.BytesIO()
    write, encode = out.write, encoder.encode
    rounds = 256  # the unthrottled feed's rounds per emission: one TickBatch per symbol
    now = time.time_ns()
    done = 0
    start = time.perf_counter()
    while done < ticks:
        now += 1000 * rounds * len(symbols)  # 1 us of simulated time per tick, as the token bucket sees it
        for index, batch in enumerate(walk.next_rounds(rounds, now)):
            board.update(batch.last())
            write(encode(batch))
            for strategy in per_symbol[index]:
                signals = strategy.on_batch(batch, now)
                if signals is None:
                    continue
                write(encode(signals))
                for decision in risk.check_batch(signals, now):
                    write(encode(decision))
                    if type(decision) is Order:
                        for route in router.route(decision, EMPTY_SNAPSHOT, now):
                            write(encode(route))
        done += rounds * len(symbols)
        out.seek(0)
        out.truncate()
    ticks = done
    elapsed = time.perf_counter() - start
    return {"ticks": ticks, "elapsed_s": elapsed, "ticks_per_s": ticks / elapsed, "orders": risk.stats.orders_total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the unthrottled run (default 5)")
    parser.add_argument(
        "--latency-seconds", type=float, default=15.0,
        help="duration of the paced latency run (default 15: ~800 orders, so p99 rests on 8 orders above it)",
    )
    parser.add_argument("--offered", type=int, default=20_000, help="total ticks/s for the latency run")
    parser.add_argument("--pure-ticks", type=int, default=400_000, help="ticks for the pure in-process run")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        # Latency first: the unthrottled run leaves ~0.5 GB of dirty page cache whose write-back would land
        # in the middle of the latency run (a harness artifact, not the daemon's).
        rate_per_symbol = max(1, args.offered // len(SYMBOLS.split(",")))
        latency_record = Path(tmp) / "latency.jsonl"
        latency_run = asyncio.run(_run_pipeline(latency_record, rate_per_symbol, args.latency_seconds))
        os.sync()
        throughput = asyncio.run(_run_pipeline(Path(tmp) / "throughput.jsonl", 0, args.seconds))
        size_mb = (Path(tmp) / "throughput.jsonl").stat().st_size / 1e6
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the daemon runs, not the parsing
        orders, decisions, steady_orders = _latencies(latency_record, warm_up_ns=1_000_000_000)
    pure = _run_pure(args.pure_ticks)

    result = {
        "ticks_per_s": round(throughput["ticks_per_s"]),
        "pipeline_ticks": throughput["ticks"],
        "pipeline_orders": throughput["orders"],
        "pipeline_fills": throughput["fills"],
        "record_mb": round(size_mb, 1),
        "offered_ticks_per_s": args.offered,
        "latency_seconds": args.latency_seconds,
        "achieved_ticks_per_s_at_offered": round(latency_run["ticks_per_s"]),
        "p50_us": _percentile(orders, 0.50),
        "p99_us": _percentile(orders, 0.99),
        "p999_us": _percentile(orders, 0.999),
        "orders_sampled": len(orders),
        "decision_p50_us": _percentile(decisions, 0.50),
        "decision_p99_us": _percentile(decisions, 0.99),
        "decision_p999_us": _percentile(decisions, 0.999),
        "decisions_sampled": len(decisions),
        "steady_p50_us": _percentile(steady_orders, 0.50),
        "steady_p99_us": _percentile(steady_orders, 0.99),
        "steady_orders_sampled": len(steady_orders),
        "pure_ticks_per_s": round(pure["ticks_per_s"]),
        "plumbing_cost_pct": round(100 * (1 - throughput["ticks_per_s"] / pure["ticks_per_s"]), 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"pipeline (feed unthrottled, 3 strategies x 2 workers, 4 symbols, recorder + metrics on, "
          f"{args.seconds:g}s):")
    print(f"  {result['ticks_per_s']:,} ticks/s end to end ({throughput['ticks']:,} ticks, "
          f"{throughput['orders']:,} orders, {throughput['fills']:,} fills, {result['record_mb']} MB of JSONL)")
    print(f"latency at {args.offered:,} ticks/s offered for {args.latency_seconds:g}s "
          f"(achieved {result['achieved_ticks_per_s_at_offered']:,}):")
    print(f"  tick-to-order    p50 {result['p50_us']:.1f} us  p99 {result['p99_us']:.1f} us  "
          f"p99.9 {result['p999_us']:.1f} us  ({len(orders):,} orders)")
    print(f"  tick-to-decision p50 {result['decision_p50_us']:.1f} us  p99 {result['decision_p99_us']:.1f} us  "
          f"p99.9 {result['decision_p999_us']:.1f} us  ({len(decisions):,} orders + rejects)")
    print(f"  tick-to-order after the first second (no start-up burst): p50 {result['steady_p50_us']:.1f} us  "
          f"p99 {result['steady_p99_us']:.1f} us  ({len(steady_orders):,} orders)")
    print(f"pure cores in one loop (no queues): {result['pure_ticks_per_s']:,} ticks/s "
          f"-> plumbing costs {result['plumbing_cost_pct']}% of throughput")
    print(f"peak RSS {result['peak_rss_mb']} MB")
    if args.json:
        print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
