"""Mock feed: a seeded random walk on integer ticks; the shell paces it and closes its outputs on stop."""

from __future__ import annotations

import asyncio

from dma_bot.bus import Channel, fanout
from dma_bot.clock import LiveClock, ManualClock
from dma_bot.feed.mock import MockFeed, RandomWalk, RandomWalkParams
from dma_bot.model.events import Tick, TickBatch
from dma_bot.model.market import MarketBoard

PARAMS = RandomWalkParams(start_ticks=10_000, min_ticks=5_000, max_spread_ticks=3)


def test_random_walk_is_deterministic_for_a_seed() -> None:
    a = RandomWalk(["X", "Y"], PARAMS, seed=5)
    b = RandomWalk(["X", "Y"], PARAMS, seed=5)
    c = RandomWalk(["X", "Y"], PARAMS, seed=6)
    ticks_a = [a.next(i % 2, i) for i in range(10_000)]
    assert ticks_a == [b.next(i % 2, i) for i in range(10_000)]
    assert ticks_a != [c.next(i % 2, i) for i in range(10_000)]


def test_random_walk_quotes_are_sane() -> None:
    """Spread 1..max ticks, step within +-3 ticks per symbol, floor respected, sizes positive."""
    walk = RandomWalk(["X", "Y"], RandomWalkParams(start_ticks=5_010, min_ticks=5_000), seed=1)
    last = {"X": 5_010, "Y": 5_010}
    floors = 0
    for i in range(20_000):
        tick = walk.next(i % 2, i)
        assert 1 <= tick.ask - tick.bid <= 3
        assert tick.bid >= 5_000
        assert abs(tick.bid - last[tick.symbol]) <= 3
        assert tick.bid_qty > 0 and tick.ask_qty > 0
        floors += tick.bid == 5_000
        last[tick.symbol] = tick.bid
    assert floors > 0  # the floor was actually exercised


async def test_mock_feed_unthrottled_stops_and_closes_outputs() -> None:
    """On stop, the feed closes each output once; the board holds the last tick of each symbol."""
    stop = asyncio.Event()
    board = MarketBoard()
    xs: Channel[Tick] = Channel("x", 64, producers=0)
    both: Channel[Tick] = Channel("both", 64, producers=0)
    routes = {"X": fanout(xs, both), "Y": fanout(both)}
    feed = MockFeed(RandomWalk(["X", "Y"], PARAMS, 3), routes, board, ManualClock(), 0, stop, batch=8)
    received: dict[str, list[Tick]] = {"x": [], "both": []}

    async def consume(name: str, channel: Channel[Tick]) -> None:
        while (batch := await channel.get_batch()) is not None:
            received[name].extend(batch)
            if len(received["both"]) >= 200:
                stop.set()

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(feed.run())
        group.create_task(consume("x", xs))
        group.create_task(consume("both", both))
    assert len(received["both"]) == sum(feed.ticks_by_symbol.values())
    assert [t for t in received["both"] if t.symbol == "X"] == received["x"]
    assert board.last["X"] == received["x"][-1]
    assert board.mid2("Y") is not None


async def test_mock_feed_paced_rate_is_bounded() -> None:
    """A paced feed does not run ahead of its rate (loose bound: correctness, not timing precision)."""
    stop = asyncio.Event()
    out: Channel[Tick] = Channel("out", 10_000, producers=0)
    clock = LiveClock()
    feed = MockFeed(RandomWalk(["X"], PARAMS, 3), {"X": fanout(out)}, MarketBoard(), clock, 100, stop)
    start = clock.monotonic_ns()

    async def stop_after_some() -> None:
        seen = 0
        while (batch := await out.get_batch()) is not None:
            seen += len(batch)
            if seen >= 5:
                stop.set()

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(feed.run())
        group.create_task(stop_after_some())
    elapsed_s = (clock.monotonic_ns() - start) / 1e9
    assert feed.ticks_by_symbol["X"] <= 100 * elapsed_s + 2


async def test_mock_feed_batched_rounds_keep_emission_order_in_every_channel_under_backpressure() -> None:
    """Rounds handed on together through tiny channels: from 16 rounds on each symbol's quotes go out as one
    TickBatch, so a shared channel sees per emission X's rows then Y's rows, a per-symbol one its symbol's
    quotes; the rows are the walk's quotes in order, nothing is lost and the board holds the last."""
    stop = asyncio.Event()
    board = MarketBoard()
    xs: Channel[Tick | TickBatch] = Channel("x", 3, producers=0)
    both: Channel[Tick | TickBatch] = Channel("both", 5, producers=0)
    feed = MockFeed(
        RandomWalk(["X", "Y"], PARAMS, 3), {"X": fanout(xs, both), "Y": fanout(both)}, board, ManualClock(), 0,
        stop, batch=16,
    )
    received: dict[str, list[Tick | TickBatch]] = {"x": [], "both": []}

    async def consume(name: str, channel: Channel[Tick | TickBatch]) -> None:
        while (batch := await channel.get_batch(limit=2)) is not None:
            received[name].extend(batch)
            if len(received["both"]) >= 12:
                stop.set()

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(feed.run())
        group.create_task(consume("x", xs))
        group.create_task(consume("both", both))

    assert all(type(item) is TickBatch and len(item) == 16 for item in received["both"])
    assert [item.symbol for item in received["both"]] == ["X", "Y"] * (len(received["both"]) // 2)
    reference = RandomWalk(["X", "Y"], PARAMS, 3)
    expected: list[Tick] = []
    for emission in received["both"][::2]:
        rounds = [[reference.next(i, emission.ts_ns) for i in range(2)] for _ in range(16)]
        expected += [r[0] for r in rounds] + [r[1] for r in rounds]
    both_rows = _rows(received["both"])
    assert both_rows == expected
    assert _rows(received["x"]) == [t for t in both_rows if t.symbol == "X"]
    assert feed.ticks_by_symbol == {"X": len(_rows(received["x"])), "Y": len(both_rows) - len(_rows(received["x"]))}
    assert board.last == {"X": both_rows[-17], "Y": both_rows[-1]}


async def test_mock_feed_paced_hands_on_one_tick_per_quote_stamped_when_made() -> None:
    """A paced feed emits a few rounds per wake-up as Ticks (not batches), each stamped by the clock."""
    stop = asyncio.Event()
    out: Channel[Tick | TickBatch] = Channel("out", 10_000, producers=0)
    feed = MockFeed(RandomWalk(["X", "Y"], PARAMS, 3), {"X": fanout(out), "Y": fanout(out)}, MarketBoard(),
                    LiveClock(), 2_000, stop)
    items: list[Tick | TickBatch] = []

    async def take() -> None:
        while (batch := await out.get_batch()) is not None:
            items.extend(batch)
            if len(items) >= 20:
                stop.set()

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(feed.run())
        group.create_task(take())
    assert all(type(item) is Tick for item in items)
    reference = RandomWalk(["X", "Y"], PARAMS, 3)
    assert items == [reference.next(i % 2, item.ts_ns) for i, item in enumerate(items)]


def test_next_rounds_gives_the_quotes_of_next_from_the_same_draws() -> None:
    """Batched rounds equal round-robin next() calls, across block refills and where the floor bends the
    walk, and the two can be interleaved on one walk."""
    for floor in (5_000, 9_990):  # the second floor is hit often
        params = RandomWalkParams(start_ticks=10_000, min_ticks=floor)
        batched = RandomWalk(["X", "Y", "Z"], params, 7)
        reference = RandomWalk(["X", "Y", "Z"], params, 7)
        for rounds in (1, 5, 300, 2_000, 7, 4_096, 3):
            batches = batched.next_rounds(rounds, 42)
            assert [b.symbol for b in batches] == ["X", "Y", "Z"]
            expected: dict[str, list[Tick]] = {"X": [], "Y": [], "Z": []}
            for _ in range(rounds):
                for i, symbol in enumerate("XYZ"):
                    expected[symbol].append(reference.next(i, 42))
            assert {b.symbol: b.rows() for b in batches} == expected
            assert batched.next(1, 43) == reference.next(1, 43)
        assert min(t.bid for b in batched.next_rounds(500, 1) for t in b.rows()) >= floor


def _rows(items: list[Tick | TickBatch]) -> list[Tick]:
    rows: list[Tick] = []
    for item in items:
        rows += item.rows() if type(item) is TickBatch else [item]
    return rows
