"""Live and backtest agree: the same recorded quotes through the real daemon (FEED_MODE=replay, REPLAY_SPEED=0,
several strategy workers) and through ``python -m dma_bot backtest`` make the same signals, decided in the same
order with the same risk decisions (orders, and rejects with their reasons and details)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from dma_bot.config import load_config, read_env_file
from dma_bot.feed.mock import RandomWalk
from dma_bot.model.events import Tick
from dma_bot.params import mock_instruments, random_walk_params
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields
from tests.conftest import ROOT, Daemon, start_daemon

T0_NS = 1_700_000_000_000_000_000
ROUND_NS = 1_000_000  # every symbol quotes once per round, all at the round's time (ties broken by file order)
ROUNDS = 15_000  # x 2 symbols: 30,000 quotes, 15 s of recorded time

# Position and loss limits depend on when fills come back, which follows the pipeline's pace in the daemon and
# the recorded clock in the backtest (README, replay): out of the way. The rate limit binds on the recorded
# clock (5/s over 15 s against thousands of signals), the deviation band on wide spreads (a 3-tick spread is
# ~1.5 bps of a ~100.00 mid), PX_MAX (set from the data) on the upper part of the walk.
PRESET = {
    "SYMBOLS": "BTCUSDT,ETHUSDT",
    "STRATEGIES": "mean_reversion,ma_crossover,vol_breakout",
    "STRATEGY_WORKERS": "2",
    "MAX_QPS": "5",
    "RISK_BURST": "3",
    "RISK_MAX_DEVIATION_BPS": "1",
    "RISK_MAX_POSITION": "1000000000",
    "RISK_MAX_LOSS": "0",
    "VB_WINDOW": "20",
    "VB_EDGE_TICKS": "1",
    "STATUS_INTERVAL_S": "0",
    "LOG_LEVEL": "warning",
}


def _write_recording(path: Path, preset: dict[str, str]) -> list[Tick]:
    """ROUNDS rounds of the mock walk (the real mock feed's core), one quote per symbol per round sharing its
    ``ts_event_ns``, as our JSONL recording (Start with the instruments, Md lines, Stop)."""
    config = load_config(preset, {})
    instruments = mock_instruments(config)
    symbols = config["SYMBOLS"]
    walk = RandomWalk(symbols, random_walk_params(config, instruments), config["MOCK_SEED"])
    ticks = [walk.next(index, T0_NS + r * ROUND_NS) for r in range(ROUNDS) for index in range(len(symbols))]
    encoder = JsonlEncoder(instruments)
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=T0_NS)]
    encoder.encode_batch(ticks, lines)
    lines.append(encoder.encode_control("Stop", {"clean": True}, ts_ns=ticks[-1].ts_ns))
    path.write_bytes(b"".join(lines))
    return ticks


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _decided(records: list[dict[str, Any]]) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(signal, decision) in the order risk decided: the Ord/Reject records in file order, each joined to its Sig
    record by (strategy, symbol, ts_ns = the decision's ts_signal_ns)."""
    signals: dict[tuple[str, str, int], tuple[Any, ...]] = {}
    sig_count = 0
    for r in records:
        if r["type"] == "Sig":
            sig_count += 1
            signals[(r["strategy"], r["symbol"], r["ts_ns"])] = (
                r["strategy"], r["symbol"], r["side"], r["price"], r["quantity"], r["ts_event_ns"])
    assert len(signals) == sig_count  # the join key is unique
    decided = []
    for r in records:
        if r["type"] in ("Ord", "Reject"):
            decision = ("Ord",) if r["type"] == "Ord" else ("Reject", r["reason"], r["detail"])
            decided.append((signals.pop((r["strategy"], r["symbol"], r["ts_signal_ns"])), decision))
    assert not signals  # every signal was decided once
    return decided


async def _run(daemons: list[Daemon], env: dict[str, str], *args: str) -> None:
    process = await start_daemon(env, *args)
    daemons.append(process)
    assert await process.finish(timeout=240) == 0, process.stderr


async def test_replayed_daemon_makes_the_backtests_signals_and_risk_decisions(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Four strategy workers (3 strategies x 2 shards) racing, the token bucket shared by all symbols, quotes of
    both symbols tied on ts_event_ns: the daemon's risk decides exactly the backtest's (signal, decision)
    sequence, and every kind of decision the data can trigger occurs, so a disagreement would show."""
    preset = {**read_env_file(ROOT / ".env.mock"), **PRESET}
    recording = tmp_path / "recording.jsonl"
    ticks = _write_recording(recording, preset)
    asks = sorted(tick.ask for tick in ticks)
    preset["PX_MAX"] = str(Decimal(asks[len(asks) * 3 // 4]) / 100)  # the upper quarter of the walk is out of band
    env_file = tmp_path / "agree.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in preset.items()))
    replayed, out = tmp_path / "replayed.jsonl", tmp_path / "bt"

    await _run(daemons, {"FEED_MODE": "replay", "REPLAY_FILE": str(recording), "REPLAY_SPEED": "0",
                         "RECORD_FILE": str(replayed), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0"},
               "--env", str(env_file))
    await _run(daemons, {}, "backtest", str(recording), "--env", str(env_file), "--out", str(out))

    live, backtest = _decided(_records(replayed)), _decided(_records(out / "events.jsonl"))
    assert len(live) == len(backtest) > 1000
    first_difference = next((i for i, (a, b) in enumerate(zip(live, backtest, strict=True)) if a != b), None)
    assert first_difference is None, (first_difference, live[first_difference], backtest[first_difference])
    kinds = Counter(decision[1] if decision[0] == "Reject" else "order" for _, decision in backtest)
    assert {"order", "rate_limit", "price_band", "price_deviation"} <= set(kinds), kinds
    assert set(kinds) == {"order", "rate_limit", "price_band", "price_deviation"}, kinds
    assert {signal[0] for signal, _ in backtest} == {"mean_reversion", "ma_crossover", "vol_breakout"}
    assert {signal[1] for signal, _ in backtest} == {"BTCUSDT", "ETHUSDT"}
