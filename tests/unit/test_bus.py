"""bus: bounded channels with multi-producer END, fan-out, backpressure, and the Latest cell."""

from __future__ import annotations

import asyncio

import pytest

from dma_bot.bus import END, Channel, Fanout, Latest, fanout, put_each


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


async def test_channel_put_many_waits_for_room_and_keeps_order() -> None:
    """put_many of more items than fit waits for the consumer; all arrive in order and the bound holds."""
    channel: Channel[int] = Channel("c", 4)
    received: list[int] = []

    async def produce() -> None:
        await channel.put_many(list(range(50)))
        await channel.put_many([])
        await channel.put_many(list(range(50, 100)))
        await channel.close()

    async def consume() -> None:
        while (batch := await channel.get_batch(limit=3)) is not None:
            assert channel.qsize() <= 4
            received.extend(batch)

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        group.create_task(consume())

    assert received == list(range(100))


async def test_fanout_put_many_gives_each_channel_every_item_in_order_under_backpressure() -> None:
    """A tight and a roomy channel both get every item in order; the tight one throttles the producer."""
    tight: Channel[int] = Channel("tight", 2, producers=0)
    roomy: Channel[int] = Channel("roomy", 1000, producers=0)
    out = fanout(tight, roomy)

    async def produce() -> None:
        for start in range(0, 300, 30):
            await out.put_many(list(range(start, start + 30)))
        await out.close()

    async def consume(channel: Channel[int]) -> list[int]:
        items: list[int] = []
        while (batch := await channel.get_batch()) is not None:
            items.extend(batch)
        return items

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce())
        from_tight = group.create_task(consume(tight))
        from_roomy = group.create_task(consume(roomy))

    assert from_tight.result() == list(range(300))
    assert from_roomy.result() == list(range(300))


async def test_put_each_with_room_lands_every_batch_without_yielding() -> None:
    """When all fit, put_each is one step: the consumer's next get_batch sees each channel's whole batch."""
    a: Channel[str] = Channel("a", 8)
    b: Channel[str] = Channel("b", 8)

    await put_each((a, b), (["a1", "a2", "a3"], ["b1"]))

    assert (a.qsize(), b.qsize()) == (3, 1)
    assert await a.get_batch() == ["a1", "a2", "a3"]
    assert await b.get_batch() == ["b1"]


async def test_put_many_from_two_producers_keeps_each_producers_order() -> None:
    """Two producers blocking on one small channel: nothing is lost and each one's items stay in order."""
    channel: Channel[tuple[str, int]] = Channel("c", 3, producers=2)
    received: list[tuple[str, int]] = []

    async def produce(name: str) -> None:
        for start in range(0, 40, 8):
            await channel.put_many([(name, i) for i in range(start, start + 8)])
        await channel.close()

    async def consume() -> None:
        while (batch := await channel.get_batch()) is not None:
            received.extend(batch)

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(produce("p"))
        group.create_task(produce("q"))
        group.create_task(consume())

    assert [i for name, i in received if name == "p"] == list(range(40))
    assert [i for name, i in received if name == "q"] == list(range(40))


async def test_get_batch_cancelled_while_waiting_takes_nothing() -> None:
    """A get_batch cut short by a timeout, even one woken by a put first, leaves every item queued."""
    channel: Channel[int] = Channel("c", 8)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await channel.get_batch()
    waiting = asyncio.ensure_future(channel.get_batch())
    await asyncio.sleep(0)
    await channel.put(1)
    waiting.cancel()  # woken by the put but not yet resumed
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await channel.put(2)

    assert await channel.get_batch() == [1, 2]


async def test_get_batch_refuses_a_second_waiting_consumer() -> None:
    """A channel has one consumer: a second concurrent get_batch is a wiring bug and raises."""
    channel: Channel[int] = Channel("c", 8)
    first = asyncio.ensure_future(channel.get_batch())
    await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="one consumer"):
        await channel.get_batch()
    await channel.put(7)

    assert await first == [7]


async def test_blocked_producer_cancelled_leaves_the_channel_usable() -> None:
    """Cancelling a producer waiting on a full channel puts nothing and later producers still get room."""
    channel: Channel[int] = Channel("c", 1)
    await channel.put(1)
    blocked = asyncio.ensure_future(channel.put_many([2, 3]))
    await asyncio.sleep(0)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked

    first = await channel.get_batch()
    await channel.put(4)

    assert first == [1]
    assert await channel.get_batch() == [4]


async def test_get_batch_defer_lets_tasks_woken_with_it_run_first() -> None:
    """A deferring consumer woken by the same producer step as a plain one (and woken first) takes its items
    only after the plain one ran; without defer it would go first. Nothing is lost either way."""
    for defer, expected in ((True, ["hot [1]", "books [1]"]), (False, ["books [1]", "hot [1]"])):
        hot: Channel[int] = Channel("hot", 8)
        books: Channel[int] = Channel("books", 8)
        order: list[str] = []

        async def consume(name: str, channel: Channel[int], deferring: bool, order: list[str] = order) -> None:
            while (batch := await channel.get_batch(defer=deferring)) is not None:
                order.append(f"{name} {batch}")

        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            group.create_task(consume("books", books, defer))
            group.create_task(consume("hot", hot, False))
            await asyncio.sleep(0)  # both wait on their channels
            await put_each((books, hot), ([1], [1]))  # books is woken first
            await books.close()
            await hot.close()
        assert order == expected
