"""Soak benchmark: the real daemon process for a long run, watched from outside; nothing may grow or be lost.

Two runs, each a real ``python -m dma_bot`` process scraped over HTTP every ``--interval`` seconds:

* ``mock``: the mock preset (``.env.mock``) with the feed unthrottled (``MOCK_RATE=0``) until ``--ticks`` ticks
  (10 million by default), recording to a temporary file.
* ``sim``: the ``.env.sim`` preset against a real ``python -m dma_bot.exchange_sim`` process on a free port for
  ``--sim-seconds`` (600 by default), with a fault script that drops the market and user-data connections,
  answers 429 (Retry-After), 5xx and -1021, holds a request past its timeout, duplicates and reorders
  execution reports and delivers a trade after its cancel, again and again.

Each sample reads the daemon's RSS (``/proc/<pid>/status``), the summed and largest ``queue_depth``, and the
open orders (``routes_total`` minus the terminal ``exec_reports_total``). At the end SIGTERM drains the daemon;
the JSONL is streamed once (never loaded whole) to check that every Route has a final Exec and the section ends
in a clean Stop. Prints start / end / max per quantity; with ``--json`` the last line is one JSON object.
RSS "flat" is judged by comparing the last quarter of the run with the second quarter (after warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("filled", "canceled", "rejected", "expired")
_PORT = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")


@dataclass
class Sample:
    elapsed_s: float
    rss_mb: float
    ticks: int
    queue_total: int
    queue_max: int
    open_orders: int


@dataclass
class Run:
    name: str
    samples: list[Sample] = field(default_factory=list)
    exit_code: int | None = None
    routes: int = 0
    routes_without_final_exec: int = 0
    stop_clean: bool | None = None
    jsonl_bytes: int = 0
    wall_s: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        first, last = self.samples[0], self.samples[-1]
        quarter = max(len(self.samples) // 4, 1)
        warm = self.samples[quarter : 2 * quarter] or self.samples[:1]
        late = self.samples[-quarter:]
        return {
            "samples": len(self.samples),
            "wall_s": round(self.wall_s, 1),
            "ticks": last.ticks,
            "ticks_per_s": round(last.ticks / max(last.elapsed_s, 1e-9)),
            "rss_mb_start": round(first.rss_mb, 1),
            "rss_mb_end": round(last.rss_mb, 1),
            "rss_mb_max": round(max(s.rss_mb for s in self.samples), 1),
            "rss_mb_warm_mean": round(sum(s.rss_mb for s in warm) / len(warm), 1),
            "rss_mb_late_mean": round(sum(s.rss_mb for s in late) / len(late), 1),
            "queue_total_start": first.queue_total,
            "queue_total_end": last.queue_total,
            "queue_max": max(s.queue_max for s in self.samples),
            "open_orders_start": first.open_orders,
            "open_orders_end": last.open_orders,
            "open_orders_max": max(s.open_orders for s in self.samples),
            "exit_code": self.exit_code,
            "routes": self.routes,
            "routes_without_final_exec": self.routes_without_final_exec,
            "stop_clean": self.stop_clean,
            "jsonl_mb": round(self.jsonl_bytes / 1e6, 1),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _values(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _sample(values: dict[str, float], pid: int, elapsed_s: float) -> Sample:
    depths = [v for k, v in values.items() if k.startswith("queue_depth{")]
    routes = sum(v for k, v in values.items() if k.startswith("routes_total{"))
    terminal = sum(
        v for k, v in values.items() if k.startswith("exec_reports_total{") and any(f'"{s}"' in k for s in TERMINAL)
    )
    return Sample(
        elapsed_s=elapsed_s,
        rss_mb=_rss_mb(pid),
        ticks=int(values.get("ticks_total", 0)),
        queue_total=int(sum(depths)),
        queue_max=int(max(depths, default=0)),
        open_orders=int(routes - terminal),
    )


async def _stderr_lines(stream: asyncio.StreamReader, lines: list[str], port: asyncio.Future[int]) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        lines.append(text)
        del lines[:-200]
        match = _PORT.search(text)
        if match and not port.done():
            port.set_result(int(match.group(1)))


def _check_jsonl(path: Path, run: Run) -> None:
    """One streaming pass: every Route has a final Exec; the last section ends in a clean Stop."""
    open_routes: set[str] = set()
    final: set[str] = set()
    routes = 0
    last_stop: dict[str, Any] | None = None
    with open(path, "rb") as file:
        for line in file:
            if line.startswith(b'{"type":"Route"'):
                routes += 1
                open_routes.add(orjson.loads(line)["client_order_id"])
            elif line.startswith(b'{"type":"Exec"'):
                record = orjson.loads(line)
                if record["status"] in TERMINAL:
                    final.add(record["client_order_id"])
            elif line.startswith(b'{"type":"Stop"'):
                last_stop = orjson.loads(line)
    run.routes = routes
    run.routes_without_final_exec = len(open_routes - final)
    run.stop_clean = None if last_stop is None else bool(last_stop.get("clean"))
    run.jsonl_bytes = path.stat().st_size


async def _watch(
    name: str, args: list[str], env: dict[str, str], record: Path, interval: float, done: Any
) -> Run:
    """Run the daemon until ``done(sample, elapsed)`` says so, sampling every ``interval`` s; then SIGTERM."""
    run = Run(name)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DMA_", "MOCK_", "RECORD_", "METRICS_"))}
    full_env.update(env, RECORD_FILE=str(record), METRICS_HOST="127.0.0.1", METRICS_PORT="0")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=full_env, cwd=str(ROOT),
    )
    assert process.stderr is not None
    port_seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    reader = asyncio.ensure_future(_stderr_lines(process.stderr, run.stderr_tail, port_seen))
    started = time.monotonic()
    try:
        port = await asyncio.wait_for(port_seen, 60)
        async with aiohttp.ClientSession() as session:
            while process.returncode is None:
                elapsed = time.monotonic() - started
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    sample = _sample(_values(await response.text()), process.pid, elapsed)
                run.samples.append(sample)
                print(f"  {name} {elapsed:7.1f}s ticks {sample.ticks:>11,} rss {sample.rss_mb:6.1f} MB "
                      f"queues {sample.queue_total:>5} (max {sample.queue_max:>4}) open orders {sample.open_orders}",
                      file=sys.stderr, flush=True)
                if done(sample, elapsed):
                    break
                await asyncio.sleep(interval)
        process.send_signal(signal.SIGTERM)
        run.exit_code = await asyncio.wait_for(process.wait(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader
    run.wall_s = time.monotonic() - started
    _check_jsonl(record, run)
    return run


def _fault_script(path: Path, seconds: float) -> None:
    """Faults every few seconds over the whole run, cycling through the kinds exchange_sim offers."""
    cycle = [
        {"kind": "user.drop"},
        {"kind": "request.rate_limited", "retry_after_s": 1, "method": "POST", "path": "/api/v3/order", "times": 2},
        {"kind": "market.drop"},
        {"kind": "request.server_error", "status": 503, "path": "/api/v3/order", "method": "POST", "times": 1},
        {"kind": "user.duplicate", "exec_type": "TRADE", "times": 3},
        {"kind": "user.out_of_order", "mode": "trade_after_terminal", "times": 1},
        {"kind": "request.timestamp", "times": 1},
        {"kind": "market.duplicate", "times": 5},
        {"kind": "request.timeout", "hold_s": 2, "then": "answer", "method": "POST", "path": "/api/v3/order",
         "times": 1},
        {"kind": "user.expire"},
    ]
    lines = []
    at = 5.0
    index = 0
    while at < seconds - 10:
        lines.append(orjson.dumps({"at_s": at, "fault": cycle[index % len(cycle)]}).decode())
        index += 1
        at += 7.0
    path.write_text("\n".join(lines) + "\n")


async def _sim_run(seconds: float, interval: float, workdir: Path) -> Run:
    port = _free_port()
    script = workdir / "faults.jsonl"
    _fault_script(script, seconds)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot.exchange_sim", "--port", str(port), "--symbols", "BTCUSDT,ETHUSDT",
        "--quote-interval", "0.05", "--faults", str(script), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT),
    )
    assert sim.stdout is not None
    try:
        await asyncio.wait_for(sim.stdout.readline(), 30)  # the banner's first line: it is serving
        env = {
            "BINANCE_WS_URL": f"ws://127.0.0.1:{port}/ws",
            "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
            "BINANCE_WS_API_URL": f"ws://127.0.0.1:{port}/ws-api/v3",
        }
        return await _watch("sim", ["--env", ".env.sim"], env, workdir / "sim.jsonl", interval,
                            lambda sample, elapsed: elapsed >= seconds)
    finally:
        with contextlib.suppress(ProcessLookupError):
            sim.send_signal(signal.SIGTERM)
        await sim.wait()


def _report(run: Run) -> None:
    s = run.summary()
    print(f"{run.name}: {s['ticks']:,} ticks in {s['wall_s']} s ({s['ticks_per_s']:,}/s), exit {s['exit_code']}, "
          f"JSONL {s['jsonl_mb']} MB")
    print(f"  RSS MB       start {s['rss_mb_start']:>8}  end {s['rss_mb_end']:>8}  max {s['rss_mb_max']:>8}  "
          f"(2nd-quarter mean {s['rss_mb_warm_mean']}, last-quarter mean {s['rss_mb_late_mean']})")
    print(f"  queue depth  start {s['queue_total_start']:>8}  end {s['queue_total_end']:>8}  "
          f"max one queue {s['queue_max']:>5}")
    print(f"  open orders  start {s['open_orders_start']:>8}  end {s['open_orders_end']:>8}  "
          f"max {s['open_orders_max']:>8}")
    print(f"  routes {s['routes']:,}, without a final Exec {s['routes_without_final_exec']}, "
          f"Stop clean {s['stop_clean']}")
    if run.exit_code != 0:
        print("  last stderr lines:\n    " + "\n    ".join(run.stderr_tail[-10:]))


async def _main(options: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dma_bot_soak_") as tmp:
        workdir = Path(tmp)
        if not options.skip_mock:
            target = options.ticks
            run = await _watch("mock", ["--env", ".env.mock"], {"MOCK_RATE": "0", "STATUS_INTERVAL_S": "0"},
                               workdir / "mock.jsonl", options.interval,
                               lambda sample, elapsed: sample.ticks >= target)
            _report(run)
            results["mock"] = run.summary()
            (workdir / "mock.jsonl").unlink()
        if not options.skip_sim:
            run = await _sim_run(options.sim_seconds, options.interval, workdir)
            _report(run)
            results["sim"] = run.summary()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=10_000_000, help="ticks of the mock run (default 10,000,000)")
    parser.add_argument("--sim-seconds", type=float, default=600.0, help="length of the exchange_sim run (600)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples (2)")
    parser.add_argument("--skip-mock", action="store_true")
    parser.add_argument("--skip-sim", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    options = parser.parse_args()
    results = asyncio.run(_main(options))
    if options.json:
        print(orjson.dumps(results).decode())


if __name__ == "__main__":
    main()
