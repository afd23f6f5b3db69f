"""Tests for dma_bot.strategies.workers (shard, StrategyWorker over real channels) and the strategy factory."""

from __future__ import annotations

import asyncio
import random

import pytest

from dma_bot.bus import Channel, Fanout
from dma_bot.clock import ManualClock
from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, SignalBatch, Tick, TickBatch, tick_batch
from dma_bot.strategies import (
    STRATEGY_NAMES,
    Strategy,
    StrategyParams,
    StrategyWorker,
    VolBreakoutParams,
    make_strategy,
    shard,
)

CLOCK_NS = 1_700_000_000_000_000_000
PARAMS = StrategyParams(vol_breakout=VolBreakoutParams(window=3, edge_ticks=1, cooldown_ticks=1))


def _tick(symbol: str, mid: int, index: int) -> Tick:
    return Tick(symbol, mid - 1, mid + 1, 1, 1, 1_000 + index, 2_000 + index)


def _strategies(*symbols: str) -> dict[str, Strategy]:
    return {symbol: make_strategy("vol_breakout", PARAMS, symbol, 2) for symbol in symbols}


async def _drain(channel: Channel[Signal]) -> list[Signal]:
    out: list[Signal] = []
    while (batch := await channel.get_batch()) is not None:
        out.extend(batch)
    return out


def test_shard_round_robin_by_index() -> None:
    """Symbol i goes to shard i % workers, each shard keeping the input order."""
    assert shard(["A", "B", "C", "D", "E"], 2) == [["A", "C", "E"], ["B", "D"]]
    assert shard(["A", "B", "C"], 1) == [["A", "B", "C"]]


@pytest.mark.parametrize("seed", range(5))
def test_shard_every_symbol_exactly_once_and_deterministic(seed: int) -> None:
    """Across random symbol counts and worker counts, the shards partition the symbols, identically each call."""
    rng = random.Random(seed)
    symbols = [f"SYM{i}USDT" for i in rng.sample(range(1_000), rng.randint(1, 40))]
    workers = rng.randint(1, 50)

    shards = shard(symbols, workers)

    assert sorted(s for group in shards for s in group) == sorted(symbols)
    assert all(shards)
    assert len(shards) == min(workers, len(symbols))
    assert shard(list(symbols), workers) == shards


def test_shard_more_workers_than_symbols_returns_only_non_empty_shards() -> None:
    """Eight workers for three symbols: three one-symbol shards; no symbols: no shards."""
    assert shard(["A", "B", "C"], 8) == [["A"], ["B"], ["C"]]
    assert shard([], 4) == []


@pytest.mark.parametrize(
    ("symbols", "workers", "message"),
    [
        (["A"], 0, r"^workers: an integer >= 1, was 0$"),
        (["A", "B", "A"], 2, r"^symbols: each symbol once, was \['A', 'B', 'A'\] \(repeated: \['A'\]\)$"),
    ],
)
def test_shard_invalid_input_raises(symbols: list[str], workers: int, message: str) -> None:
    """Zero workers or a symbol listed twice cannot be partitioned."""
    with pytest.raises(ValueError, match=message):
        shard(symbols, workers)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_make_strategy_builds_each_name_for_its_symbol(name: str) -> None:
    """The factory returns a strategy carrying the requested name and symbol."""
    strategy = make_strategy(name, StrategyParams(), "ETHUSDT", 1)

    assert (strategy.name, strategy.symbol) == (name, "ETHUSDT")


def test_make_strategy_unknown_name_raises_listing_names() -> None:
    """The factory names every strategy it knows when given another name."""
    with pytest.raises(ValueError, match=r"^strategy: one of mean_reversion, ma_crossover, vol_breakout, was 'x'$"):
        make_strategy("x", StrategyParams(), "BTCUSDT", 1)


async def test_strategy_worker_run_emits_signals_in_order_and_counts() -> None:
    """Two symbols, small channels, a concurrent producer and consumer: signals match the pure cores, in order."""
    mids = {"BTCUSDT": [101, 101, 101, 103, 105, 99, 90], "ETHUSDT": [50, 50, 50, 50, 48, 46, 60]}
    ticks = [_tick(symbol, series[i], i) for i in range(7) for symbol, series in mids.items()]
    reference = _strategies("BTCUSDT", "ETHUSDT")
    expected = [s for t in ticks if (s := reference[t.symbol].on_tick(t, CLOCK_NS)) is not None]
    inbox: Channel[Tick] = Channel("ticks", 2)
    signals: Channel[Signal] = Channel("signals", 1)
    worker = StrategyWorker(
        "vol_breakout", _strategies("BTCUSDT", "ETHUSDT"), inbox, Fanout([signals]), ManualClock(CLOCK_NS)
    )

    async def produce() -> None:
        for tick in ticks:
            await inbox.put(tick)
        await inbox.close()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        group.create_task(worker.run())
        received = group.create_task(_drain(signals))

    assert received.result() == expected
    assert [(s.symbol, s.side, s.price) for s in expected] == [
        ("BTCUSDT", Side.BUY, 104),
        ("BTCUSDT", Side.BUY, 106),
        ("ETHUSDT", Side.SELL, 47),
        ("BTCUSDT", Side.SELL, 98),
        ("ETHUSDT", Side.SELL, 45),
        ("BTCUSDT", Side.SELL, 89),
        ("ETHUSDT", Side.BUY, 61),
    ]
    assert all(s.ts_ns == CLOCK_NS for s in expected)
    assert worker.ticks_seen == 14
    assert worker.signals_by_symbol == {"BTCUSDT": 4, "ETHUSDT": 3}


async def test_strategy_worker_end_of_inbox_closes_every_output_once() -> None:
    """When the inbox ends, each fan-out channel sees the end: get_batch returns None after the signals."""
    inbox: Channel[Tick] = Channel("ticks", 16)
    first: Channel[Signal] = Channel("signals-risk", 16)
    second: Channel[Signal] = Channel("signals-recorder", 16)
    worker = StrategyWorker("vol_breakout", _strategies("BTCUSDT"), inbox, Fanout([first, second]), ManualClock())
    for index, mid in enumerate([101, 101, 101, 103]):
        await inbox.put(_tick("BTCUSDT", mid, index))
    await inbox.close()

    async with asyncio.timeout(5):
        await worker.run()
        batches = [await first.get_batch(), await first.get_batch(), await second.get_batch()]

    assert [len(b) if b is not None else None for b in batches] == [1, None, 1]
    assert await second.get_batch() is None
    assert worker.ticks_seen == 4


async def test_strategy_worker_no_ticks_closes_output_with_zero_counters() -> None:
    """An inbox closed with nothing in it still closes the output; counters stay zero."""
    inbox: Channel[Tick] = Channel("ticks", 4)
    signals: Channel[Signal] = Channel("signals", 4)
    worker = StrategyWorker("vol_breakout", _strategies("BTCUSDT"), inbox, Fanout([signals]), ManualClock())
    await inbox.close()

    async with asyncio.timeout(5):
        await worker.run()
        assert await signals.get_batch() is None

    assert (worker.ticks_seen, worker.signals_by_symbol) == (0, {"BTCUSDT": 0})


async def test_strategy_worker_tick_of_unowned_symbol_raises() -> None:
    """A tick for a symbol this worker does not own is a wiring bug: run() raises instead of skipping."""
    inbox: Channel[Tick] = Channel("ticks", 4)
    signals: Channel[Signal] = Channel("signals", 4)
    worker = StrategyWorker("vol_breakout", _strategies("BTCUSDT"), inbox, Fanout([signals]), ManualClock())
    await inbox.put(_tick("XRPUSDT", 50, 0))
    await inbox.close()

    async with asyncio.timeout(5):
        with pytest.raises(ValueError, match="was a tick of 'XRPUSDT'"):
            await worker.run()


@pytest.mark.parametrize(
    ("name", "strategies"),
    [
        ("vol_breakout", {}),
        ("vol_breakout", {"ETHUSDT": make_strategy("vol_breakout", PARAMS, "BTCUSDT", 1)}),
        ("ma_crossover", {"BTCUSDT": make_strategy("vol_breakout", PARAMS, "BTCUSDT", 1)}),
    ],
)
def test_strategy_worker_inconsistent_strategies_raise(name: str, strategies: dict[str, Strategy]) -> None:
    """No symbols, a strategy keyed under another symbol, or one of another name are refused at wiring time."""
    with pytest.raises(ValueError, match=f"^{name} worker: "):
        StrategyWorker(name, strategies, Channel("ticks", 1), Fanout([Channel("signals", 1)]), ManualClock())


async def test_strategy_worker_unowned_tick_mid_batch_hands_on_the_signals_before_it() -> None:
    """Signals are put once per batch; a wiring bug in the middle of a batch still hands on those before it."""
    inbox: Channel[Tick] = Channel("ticks", 8)
    signals: Channel[Signal] = Channel("signals", 8)
    worker = StrategyWorker("vol_breakout", _strategies("BTCUSDT"), inbox, Fanout([signals]), ManualClock())
    for index, mid in enumerate([101, 101, 101, 103]):
        await inbox.put(_tick("BTCUSDT", mid, index))
    await inbox.put(_tick("XRPUSDT", 50, 4))
    await inbox.close()

    async with asyncio.timeout(5):
        with pytest.raises(ValueError, match="was a tick of 'XRPUSDT'"):
            await worker.run()
        handed_on = await signals.get_batch()

    assert handed_on is not None and [(s.symbol, s.side) for s in handed_on] == [("BTCUSDT", Side.BUY)]


async def test_strategy_worker_batches_give_the_signals_of_their_rows() -> None:
    """TickBatches and single Ticks mixed in one inbox: each TickBatch goes through on_batch and its signals
    come out as one SignalBatch; the rows of what comes out equal the pure cores fed tick by tick."""
    rng = random.Random(4)
    series = {symbol: [100 + rng.randrange(-3, 4) * i % 17 for i in range(400)] for symbol in ("BTCUSDT", "ETHUSDT")}
    items: list[Tick | TickBatch] = []
    reference = _strategies("BTCUSDT", "ETHUSDT")
    expected: list[Signal] = []
    start = 0
    while start < 400:
        size = rng.choice([1, 5, 120])
        for symbol, mids in series.items():
            chunk = [_tick(symbol, mid, start) for mid in mids[start : start + size]]
            expected += [s for t in chunk if (s := reference[symbol].on_tick(t, CLOCK_NS)) is not None]
            if size == 1:
                items += chunk
            else:
                items.append(tick_batch(symbol, [t.bid for t in chunk], [t.ask for t in chunk], [1] * len(chunk),
                                        [1] * len(chunk), chunk[0].ts_event_ns, chunk[0].ts_ns))
        start += size
    inbox: Channel[Tick | TickBatch] = Channel("ticks", 4)
    signals: Channel[Signal | SignalBatch] = Channel("signals", 2)
    worker = StrategyWorker(
        "vol_breakout", _strategies("BTCUSDT", "ETHUSDT"), inbox, Fanout([signals]), ManualClock(CLOCK_NS)
    )

    async def produce() -> None:
        for item in items:
            await inbox.put(item)
        await inbox.close()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        group.create_task(worker.run())
        received = group.create_task(_drain(signals))  # type: ignore[arg-type]

    rows: list[Signal] = []
    for item in received.result():
        rows += item.rows() if type(item) is SignalBatch else [item]
    assert rows == expected and len(expected) > 20
    assert any(type(item) is SignalBatch for item in received.result())
    assert worker.ticks_seen == 800
    assert sum(worker.signals_by_symbol.values()) == len(expected)
