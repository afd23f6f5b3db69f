"""Replay order: ReplayOrder (pure), the replay feed's stamps and watermarks, the workers' and the risk stage's
replay loops, and the replayed RiskEngine (recorded clock, the signal's own quote)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from dma_bot.bus import Channel, Fanout, Latest, fanout
from dma_bot.clock import ManualClock
from dma_bot.feed.recording import ReadStats
from dma_bot.feed.replay import ReplayFeed
from dma_bot.model.enums import RejectReason, Side
from dma_bot.model.events import Order, RiskReject, Signal, Tick, Watermark
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT
from dma_bot.risk.limits import RiskEngine, RiskParams
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.risk.replay_order import ReplayOrder
from dma_bot.risk.stage import RiskStage
from dma_bot.strategies import StrategyParams, StrategyWorker, VolBreakoutParams, make_strategy

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def _quote(symbol: str, stamp: int, bid: int = 9_999, ask: int = 10_001, event_ns: int = NOW) -> Tick:
    return Tick(symbol, bid, ask, 1, 1, event_ns, stamp)


def _signal(strategy: str, quote: Tick, price: int = 10_000) -> Signal:
    return Signal(strategy, quote.symbol, Side.BUY, price, 1, quote.ts_event_ns, quote.ts_ns + 7)


def test_release_waits_for_every_source_then_sorts_by_quote_then_strategy_order() -> None:
    """Pairs come out only once both workers' watermarks reached their quote, by (quote stamp, STRATEGIES order),
    whatever order they arrived in; ``drain`` hands out the rest in the same order."""
    order = ReplayOrder(["mr", "ma"], ["w0", "w1"])
    q1, q2, q3 = _quote("BTCUSDT", 11), _quote("ETHUSDT", 12), _quote("BTCUSDT", 13)
    order.add(q3, _signal("ma", q3))
    order.add(q2, _signal("ma", q2))
    order.add(q1, _signal("ma", q1))
    order.add(q1, _signal("mr", q1))
    order.add(q2, _signal("mr", q2))

    assert order.advance("w0", 12) == []  # w1 may still send a pair of quote <= 12
    released = order.advance("w1", 12)
    assert [(q.ts_ns, s.strategy) for q, s in released] == [(11, "mr"), (11, "ma"), (12, "mr"), (12, "ma")]
    assert order.advance("w1", 20) == [] and len(order) == 1  # w0 is still at 12
    assert [(q.ts_ns, s.strategy) for q, s in order.drain()] == [(13, "ma")] and len(order) == 0


def test_random_arrivals_come_out_in_the_backtests_order() -> None:
    """Three workers interleaving at random, watermarks from each after its own pairs: the released sequence is
    the sorted one, and nothing comes out before its time."""
    rng = random.Random(5)
    strategies = ["a", "b", "c"]
    wanted = [(stamp, s) for stamp in range(1, 301) for s in strategies if rng.random() < 0.4]
    per_worker: dict[str, list[tuple[int, str] | int]] = {s: [] for s in strategies}
    for stamp, s in wanted:
        per_worker[s].append((stamp, s))
    for s in strategies:  # each worker's stream: its pairs in order, a watermark every 25 stamps
        stream: list[tuple[int, str] | int] = []
        pairs = iter(per_worker[s])
        pending = next(pairs, None)
        for mark in range(25, 301, 25):
            while pending is not None and isinstance(pending, tuple) and pending[0] <= mark:
                stream.append(pending)
                pending = next(pairs, None)
            stream.append(mark)
        per_worker[s] = stream
    order = ReplayOrder(strategies, strategies)
    out: list[tuple[int, str]] = []
    while any(per_worker.values()):
        s = rng.choice([s for s in strategies if per_worker[s]])
        item = per_worker[s].pop(0)
        if isinstance(item, int):
            released = order.advance(s, item)
            assert all(q.ts_ns <= item for q, _ in released)
            out.extend((q.ts_ns, signal.strategy) for q, signal in released)
        else:
            quote = _quote("BTCUSDT", item[0])
            order.add(quote, _signal(item[1], quote))
    assert out == wanted and len(order) == 0


def test_unknown_strategy_or_source_is_a_wiring_error() -> None:
    order = ReplayOrder(["mr"], ["w0"])
    with pytest.raises(ValueError, match=r"signal\.strategy"):
        order.add(_quote("BTCUSDT", 1), _signal("ma", _quote("BTCUSDT", 1)))
    with pytest.raises(ValueError, match="watermark source"):
        order.advance("w9", 1)
    with pytest.raises(ValueError, match="sources"):
        ReplayOrder(["mr"], ["w0", "w0"])


def _engine(replayed: bool, board: MarketBoard | None = None, burst: int = 2) -> RiskEngine:
    params = RiskParams(max_orders_per_second=1, burst=burst, max_deviation_bps=1, max_loss=Decimal(0))
    return RiskEngine(params, {BTC.symbol: BTC, ETH.symbol: ETH}, board or MarketBoard(), Latest(EMPTY_SNAPSHOT),
                      ClientOrderIds("t"), replayed=replayed)


def test_replayed_engine_spends_tokens_on_the_recorded_clock_and_stamps_with_the_local_one() -> None:
    """The bucket refills by the signals' ts_event_ns, whatever ``now_ns`` says; results carry ``now_ns``."""
    engine = _engine(replayed=True, burst=1)
    first, same, later = (_quote("BTCUSDT", i, event_ns=NOW + d) for i, d in ((1, 0), (2, 0), (3, SECOND)))

    results = [engine.check_replayed(_signal("mr", q), q, NOW + 5 * SECOND + i) for i, q in
               enumerate((first, same, later))]

    assert [type(r) for r in results] == [Order, RiskReject, Order]  # a second of recorded time refilled one
    assert isinstance(results[1], RiskReject) and results[1].reason is RejectReason.RATE_LIMIT
    assert [r.ts_ns for r in results] == [NOW + 5 * SECOND, NOW + 5 * SECOND + 1, NOW + 5 * SECOND + 2]
    board = MarketBoard()
    board.update(first)
    live = _engine(replayed=False, board=board, burst=1)
    assert type(live.check(_signal("mr", later), NOW)) is Order
    assert type(live.check(_signal("mr", later), NOW)) is RiskReject  # live: the wall clock did not move


def test_replayed_engine_checks_the_band_against_the_signals_own_quote_not_the_shared_board() -> None:
    """The shared board already shows a later quote (the feed runs ahead): the band uses the quote the signal was
    made on; a live engine reads the board and check_replayed refuses to run on it."""
    board = MarketBoard()
    board.update(_quote("BTCUSDT", 9, bid=10_400, ask=10_402))  # 4% above: every price below is far from it
    engine = _engine(replayed=True, board=board)
    own = _quote("BTCUSDT", 2, bid=9_999, ask=10_001)
    wide = _quote("BTCUSDT", 3, bid=9_990, ask=10_010)

    assert type(engine.check_replayed(_signal("mr", own, price=10_001), own, NOW)) is Order
    refused = engine.check_replayed(_signal("mr", wide, price=10_010), wide, NOW)
    assert isinstance(refused, RiskReject) and refused.reason is RejectReason.PRICE_DEVIATION
    assert "mid 100.00" in refused.detail and board.last["BTCUSDT"].bid == 10_400  # the shared board untouched
    live = _engine(replayed=False, board=board)
    refused = live.check(_signal("mr", own, price=10_001), NOW)
    assert isinstance(refused, RiskReject) and refused.reason is RejectReason.PRICE_DEVIATION
    with pytest.raises(RuntimeError, match=r"replayed=True"):
        live.check_replayed(_signal("mr", own), own, NOW)


async def _drain(channel: Channel) -> list:
    items: list = []
    while (batch := await channel.get_batch()) is not None:
        items.extend(batch)
    return items


async def test_replay_feed_stamps_strictly_increasing_and_marks_the_progress_channels_only() -> None:
    """A clock that stands still still gives every quote its own stamp, in file order; each chunk ends with a
    Watermark of its last stamp on the workers' inboxes and never on the recorder's copy."""
    ticks = [_quote("BTCUSDT" if i % 2 else "ETHUSDT", 0) for i in range(600)]
    btc_inbox, eth_inbox, record = Channel("btc", 10_000, 0), Channel("eth", 10_000, 0), Channel("record", 10_000, 0)
    routes = {"BTCUSDT": fanout(btc_inbox, record), "ETHUSDT": fanout(eth_inbox, record)}
    feed = ReplayFeed(iter(ticks), ReadStats(), routes, MarketBoard(), ManualClock(NOW), Decimal(0),
                      asyncio.Event(), progress=[btc_inbox, eth_inbox])

    async with asyncio.timeout(5):
        await feed.run()
        recorded, btc, eth = await _drain(record), await _drain(btc_inbox), await _drain(eth_inbox)

    assert [t.ts_ns for t in recorded] == list(range(NOW, NOW + 600)) and not any(
        type(t) is Watermark for t in recorded)
    marks = [item.ts_ns for item in btc if type(item) is Watermark]
    assert marks == [item.ts_ns for item in eth if type(item) is Watermark] == [NOW + 255, NOW + 511, NOW + 599]
    last = 0
    for item in btc:  # every quote sits before the first watermark at or after its stamp
        if type(item) is Watermark:
            assert item.ts_ns >= last
        else:
            assert item.ts_ns > last
            last = item.ts_ns
    with pytest.raises(ValueError, match="progress"):
        ReplayFeed(iter(()), ReadStats(), routes, MarketBoard(), ManualClock(NOW), Decimal(0), asyncio.Event(),
                   progress=[Channel("elsewhere", 1)])


async def test_replay_worker_pairs_each_signal_with_its_quote_and_passes_watermarks_on_in_order() -> None:
    """``ordered`` gets (quote, signal) pairs and the feed's watermarks renamed to the worker, in inbox order;
    ``out`` gets the plain signals; both close."""
    params = StrategyParams(vol_breakout=VolBreakoutParams(window=3, edge_ticks=1, cooldown_ticks=1))
    strategy = make_strategy("vol_breakout", params, "BTCUSDT", 2)
    inbox: Channel = Channel("ticks", 100)
    record, signals = Channel("record", 100, 0), Channel("signals", 100, 0)
    worker = StrategyWorker("vol_breakout", {"BTCUSDT": strategy}, inbox, fanout(record), ManualClock(NOW),
                            ordered=fanout(signals), source="strategy.vol_breakout.0")
    mids = [100, 100, 100, 110, 100, 90, 100, 120]
    for stamp, mid in enumerate(mids):
        await inbox.put(_quote("BTCUSDT", stamp, bid=mid - 1, ask=mid + 1))
        if stamp in (3, 7):
            await inbox.put(Watermark("feed", stamp))
    await inbox.close()

    async with asyncio.timeout(5):
        await worker.run()
        plain, ordered = await _drain(record), await _drain(signals)

    pairs = [item for item in ordered if type(item) is not Watermark]
    assert plain and [signal for _, signal in pairs] == plain
    assert all(quote.ts_event_ns == signal.ts_event_ns and quote.symbol == signal.symbol for quote, signal in pairs)
    shape = [("mark", item.source, item.ts_ns) if type(item) is Watermark else ("pair", item[0].ts_ns)
             for item in ordered]
    assert shape[-1] == ("mark", "strategy.vol_breakout.0", 7) and ("mark", "strategy.vol_breakout.0", 3) in shape
    marks_at = [i for i, s in enumerate(shape) if s[0] == "mark"]
    assert all(shape[i][1] <= 3 for i in range(marks_at[0]) if shape[i][0] == "pair")
    assert worker.ticks_seen == len(mids)


async def test_replay_risk_stage_decides_in_the_merged_order_and_flushes_at_the_end() -> None:
    """Pairs of two workers arriving out of order are decided by (quote, strategy) once both watermarks passed
    them (the token bucket shows it: with a burst of 1 only the first in that order passes); the rest when the
    inbox ends."""
    inbox: Channel = Channel("signals", 100)
    orders, rejects = Channel("orders", 100), Channel("rejects", 100)
    engine = _engine(replayed=True, burst=1)
    stage = RiskStage(engine, inbox, Fanout([orders]), Fanout([rejects]), ManualClock(NOW),
                      order=ReplayOrder(["mr", "ma"], ["w0", "w1"]))
    q1, q2 = _quote("BTCUSDT", 1), _quote("ETHUSDT", 2, event_ns=NOW + 10 * SECOND)
    for item in ((q1, _signal("ma", q1)), (q2, _signal("mr", q2)), Watermark("w1", 1), (q1, _signal("mr", q1)),
                 Watermark("w0", 1)):
        await inbox.put(item)
    await inbox.close()

    async with asyncio.timeout(5):
        await stage.run()
        sent, refused = await _drain(orders), await _drain(rejects)

    assert [(o.strategy, o.symbol) for o in sent] == [("mr", "BTCUSDT"), ("mr", "ETHUSDT")]
    assert [(r.strategy, r.reason) for r in refused] == [("ma", RejectReason.RATE_LIMIT)]
