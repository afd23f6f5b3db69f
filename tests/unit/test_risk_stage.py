"""RiskStage over real channels: orders and rejects reach their outputs, nothing is dropped, both close once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np

from dma_bot.bus import Channel, Fanout, Latest
from dma_bot.clock import ManualClock
from dma_bot.model.enums import RejectReason, Side
from dma_bot.model.events import Order, RejectBatch, RiskReject, Signal, SignalBatch, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT
from dma_bot.risk.limits import RiskEngine, RiskParams
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.risk.stage import RiskStage

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
NOW = 1_700_000_000_000_000_000


def engine(burst: int = 1000) -> RiskEngine:
    board = MarketBoard()
    board.update(Tick(BTC.symbol, 9999, 10_001, 1, 1, NOW, NOW))
    params = RiskParams(max_orders_per_second=burst, burst=burst)
    return RiskEngine(params, {BTC.symbol: BTC}, board, Latest(EMPTY_SNAPSHOT), ClientOrderIds("t"))


def signal(price: int = 10_000, quantity: int = 100) -> Signal:
    return Signal("mr", BTC.symbol, Side.BUY, price, quantity, NOW - 2, NOW - 1)


async def drain(channel: Channel) -> list:
    items: list = []
    while (batch := await channel.get_batch()) is not None:
        items.extend(batch)
    return items


async def test_risk_stage_splits_orders_and_rejects_and_closes_both() -> None:
    """Accepted signals go to orders, refused ones to rejects, stamped with the clock; both outputs end."""
    signals: Channel[Signal] = Channel("signals", 8)
    orders: Channel[Order] = Channel("orders", 8)
    rejects: Channel[RiskReject] = Channel("rejects", 8)
    clock = ManualClock(NOW + 1000)
    stage = RiskStage(engine(), signals, Fanout([orders]), Fanout([rejects]), clock)
    for item in (signal(), signal(price=1), signal(quantity=0), signal()):
        await signals.put(item)
    await signals.close()

    async with asyncio.timeout(5):
        await stage.run()
        sent = await drain(orders)
        refused = await drain(rejects)

    assert [order.client_order_id for order in sent] == ["t1", "t2"]
    assert all(order.ts_ns == NOW + 1000 for order in sent)
    assert [reject.reason for reject in refused] == [RejectReason.PRICE_BAND, RejectReason.QUANTITY]


async def test_risk_stage_fans_out_to_every_consumer_under_backpressure() -> None:
    """With size-1 queues and two consumers per output, every order and reject reaches every consumer."""
    signals: Channel[Signal] = Channel("signals", 4)
    router: Channel[Order] = Channel("router_orders", 1)
    recorder: Channel[Order] = Channel("recorder_orders", 1)
    rejects: Channel[RiskReject] = Channel("rejects", 1)
    stage = RiskStage(engine(burst=10), signals, Fanout([router, recorder]), Fanout([rejects]), ManualClock(NOW))

    async def produce() -> None:
        for _ in range(25):
            await signals.put(signal())
        await signals.close()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        group.create_task(stage.run())
        routed = group.create_task(drain(router))
        recorded = group.create_task(drain(recorder))
        refused = group.create_task(drain(rejects))

    assert [order.client_order_id for order in routed.result()] == [f"t{n}" for n in range(1, 11)]
    assert recorded.result() == routed.result()
    assert [reject.reason for reject in refused.result()] == [RejectReason.RATE_LIMIT] * 15


async def test_risk_stage_empty_inbox_still_closes_outputs() -> None:
    """An inbox that ends at once still ends both outputs."""
    signals: Channel[Signal] = Channel("signals", 1)
    orders: Channel[Order] = Channel("orders", 1)
    rejects: Channel[RiskReject] = Channel("rejects", 1)
    stage = RiskStage(engine(), signals, Fanout([orders]), Fanout([rejects]), ManualClock(NOW))
    await signals.close()

    async with asyncio.timeout(5):
        await stage.run()
        ended = (await orders.get_batch(), await rejects.get_batch())

    assert ended == (None, None)


async def test_risk_stage_shared_output_sees_orders_and_rejects_in_signal_order() -> None:
    """Orders and rejects go out in runs, yet a consumer of both (the recorder) gets them in signal order."""
    signals: Channel[Signal] = Channel("signals", 16)
    orders: Channel[Order] = Channel("orders", 16)
    record: Channel[Order | RiskReject] = Channel("record", 16, producers=2)
    stage = RiskStage(engine(), signals, Fanout([orders, record]), Fanout([record]), ManualClock(NOW))
    prices = [10_000, 1, 1, 10_000, 10_000, 1, 10_000]
    for price in prices:
        await signals.put(signal(price=price))
    await signals.close()

    async with asyncio.timeout(5):
        await stage.run()
        recorded = await drain(record)
        sent = await drain(orders)

    assert [type(item) is Order for item in recorded] == [price == 10_000 for price in prices]
    assert [item for item in recorded if type(item) is Order] == sent
    assert [order.client_order_id for order in sent] == ["t1", "t2", "t3", "t4"]


async def test_risk_stage_decides_a_signal_batch_column_wise_in_signal_order() -> None:
    """A SignalBatch between single signals: its decisions (orders and RejectBatch runs) reach the outputs in
    signal order, with the same rows as checking each signal alone."""
    rows = [signal(price=price) for price in [10_000, 1, 10_000, 10_000, 1, 1, 10_000, 1, 10_000, 10_000]]
    batch = SignalBatch("mr", BTC.symbol, np.array([True] * len(rows)),
                        np.array([s.price for s in rows], dtype=np.int64), 100, NOW - 2, NOW - 1)
    reference = engine(burst=3)
    expected = [reference.check(s, NOW) for s in [signal(), *rows, signal()]]
    signals: Channel[Signal | SignalBatch] = Channel("signals", 16)
    orders: Channel[Order] = Channel("orders", 16)
    record: Channel[Order | RiskReject | RejectBatch] = Channel("record", 16, producers=2)
    stage = RiskStage(engine(burst=3), signals, Fanout([orders, record]), Fanout([record]), ManualClock(NOW))
    for item in (signal(), batch, signal()):
        await signals.put(item)
    await signals.close()

    async with asyncio.timeout(5):
        await stage.run()
        recorded = await drain(record)
        sent = await drain(orders)

    flat: list[Order | RiskReject] = []
    for item in recorded:
        flat += item.rows() if type(item) is RejectBatch else [item]
    assert flat == expected
    assert any(type(item) is RejectBatch for item in recorded)
    assert sent == [item for item in expected if type(item) is Order] and len(sent) == 3
