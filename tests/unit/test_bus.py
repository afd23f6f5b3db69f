"""bus: bounded channels with multi-producer END, fan-out, backpressure, and the Latest cell."""

from __future__ import annotations

import asyncio

import pytest

from dma_bot.bus import END, Channel, Fanout, Latest, fanout


async def test_channel_end_only_after_every_producer_closed() -> None:
    """END from one of two producers does not end the stream; items after it still arrive."""
    channel: Channel[int] = Channel("c", 16, producers=2)
    await channel.put(1)
    await channel.close()
    await channel.put(2)
    await channel.close()
    assert await channel.get_batch() == [1, 2]
    assert await channel.get_batch() is None
    assert await channel.get_batch() is None


async def test_channel_batch_limit_keeps_the_rest() -> None:
    channel: Channel[int] = Channel("c", 16)
    for i in range(10):
        await channel.put(i)
    assert await channel.get_batch(limit=4) == [0, 1, 2, 3]
    assert await channel.get_batch(limit=100) == [4, 5, 6, 7, 8, 9]


async def test_put_applies_backpressure_and_drops_nothing() -> None:
    """A full channel makes the producer wait; every item arrives, in order."""
    channel: Channel[int] = Channel("c", 4)

    async def produce() -> None:
        for i in range(100):
            await channel.put(i)
        await channel.close()

    received: list[int] = []

    async def consume() -> None:
        while (batch := await channel.get_batch()) is not None:
            assert channel.qsize() <= 4
            received.extend(batch)

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        group.create_task(consume())
    assert received == list(range(100))


async def test_fanout_registers_producers_and_copies_to_each() -> None:
    a: Channel[str] = Channel("a", 8, producers=0)
    b: Channel[str] = Channel("b", 8, producers=0)
    first = fanout(a, b)
    second = fanout(a)
    assert (a.producers, b.producers) == (2, 1)
    await first.put("x")
    await second.put("y")
    await first.close()
    await second.close()
    assert await a.get_batch() == ["x", "y"]
    assert await a.get_batch() is None
    assert await b.get_batch() == ["x"]
    assert await b.get_batch() is None


async def test_empty_fanout_is_a_valid_sink() -> None:
    sink: Fanout[int] = Fanout([])
    await sink.put(1)
    await sink.close()


def test_channel_must_be_bounded() -> None:
    with pytest.raises(ValueError, match="maxsize must be positive"):
        Channel("c", 0)


def test_latest_publish() -> None:
    cell = Latest(1)
    cell.publish(2)
    assert (cell.value, cell.version) == (2, 1)
    assert repr(END) == "END"
