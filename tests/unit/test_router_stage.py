"""RouterStage over real channels: children reach their venue's queue, positions are read live, all close."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from dma_bot.bus import Channel, Fanout, Latest
from dma_bot.clock import ManualClock
from dma_bot.model.enums import Side
from dma_bot.model.events import Order, Route
from dma_bot.model.instrument import Instrument
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot, VenuePosition
from dma_bot.router.scoring import Router, RouterParams
from dma_bot.router.stage import RouterStage

WHOLE = Instrument(symbol="XYZUSDT", tick_size=Decimal("0.01"), step_size=Decimal(1))
NOW = 1_700_000_000_000_000_000


def order(client_order_id: str, quantity: int = 100, side: Side = Side.BUY) -> Order:
    return Order(
        client_order_id=client_order_id,
        strategy="mr",
        symbol=WHOLE.symbol,
        side=side,
        price=10_000,
        quantity=quantity,
        ts_signal_ns=NOW - 10,
        ts_ns=NOW - 5,
    )


def venue_channels(maxsize: int = 8) -> dict[str, Channel[Route]]:
    return {name: Channel(f"routes_{name}", maxsize) for name in ("A", "B", "C")}


async def drain(channel: Channel) -> list:
    items: list = []
    while (batch := await channel.get_batch()) is not None:
        items.extend(batch)
    return items


async def test_router_stage_puts_children_on_their_venue_and_closes_all() -> None:
    """Each child lands on its own venue's queue, stamped with the clock; unused venues are closed too."""
    orders: Channel[Order] = Channel("orders", 8)
    channels = venue_channels()
    outputs = {name: Fanout([channel]) for name, channel in channels.items()}
    router = Router(RouterParams(), {WHOLE.symbol: WHOLE})
    stage = RouterStage(router, orders, outputs, Latest(EMPTY_SNAPSHOT), ManualClock(NOW + 7))
    await orders.put(order("d1", 100))
    await orders.put(order("d2", 1))
    await orders.close()

    async with asyncio.timeout(5):
        await stage.run()
        received = {name: await drain(channel) for name, channel in channels.items()}

    assert [(r.client_order_id, r.quantity) for r in received["C"]] == [("d1-C", 56), ("d2-C", 1)]
    assert [(r.client_order_id, r.quantity) for r in received["A"]] == [("d1-A", 44)]
    assert received["B"] == []
    assert all(route.ts_ns == NOW + 7 for route in received["C"] + received["A"])


async def test_router_stage_reads_the_newest_positions() -> None:
    """A snapshot published while the stage runs changes the next order's ranking (inventory bias)."""
    orders: Channel[Order] = Channel("orders", 1)
    channels = venue_channels(maxsize=1)
    outputs = {name: Fanout([channel]) for name, channel in channels.items()}
    positions = Latest(EMPTY_SNAPSHOT)
    router = Router(RouterParams(top_n=1, inventory_bias_weight=30), {WHOLE.symbol: WHOLE})
    stage = RouterStage(router, orders, outputs, positions, ManualClock(NOW))
    long_on_c = PositionSnapshot(
        positions={
            (WHOLE.symbol, "C"): VenuePosition(
                symbol=WHOLE.symbol,
                venue="C",
                quantity=10,
                average_price=Decimal(100),
                realized_pnl=Decimal(0),
                holdings=WHOLE.steps_to_qty(10),
                traded_quantity=10,
            )
        },
        net_steps={WHOLE.symbol: 10},
        fills=1,
        held_steps={(WHOLE.symbol, "C"): 10},
    )

    async def produce_and_watch_c() -> tuple[list[Route] | None, list[Route]]:
        await orders.put(order("d1"))
        first = await channels["C"].get_batch()
        positions.publish(long_on_c)
        await orders.put(order("d2"))
        await orders.close()
        return first, await drain(channels["C"])

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(stage.run())
        watched = group.create_task(produce_and_watch_c())
        on_a = group.create_task(drain(channels["A"]))
        group.create_task(drain(channels["B"]))

    first_on_c, rest_on_c = watched.result()
    assert [route.client_order_id for route in first_on_c or []] == ["d1-C"]
    assert [route.client_order_id for route in on_a.result()] == ["d2-A"]
    assert rest_on_c == []


def test_router_stage_missing_venue_output_raises() -> None:
    """Every venue the router may choose needs an output, or the stage refuses to start."""
    channels = venue_channels()
    outputs = {name: Fanout([channel]) for name, channel in channels.items() if name != "B"}
    router = Router(RouterParams(), {WHOLE.symbol: WHOLE})

    with pytest.raises(ValueError, match="venues: an output for every routed venue"):
        RouterStage(router, Channel("orders", 1), outputs, Latest(EMPTY_SNAPSHOT), ManualClock(NOW))
