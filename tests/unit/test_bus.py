"""bus: bounded channels with multi-producer END, fan-out, backpressure, and the Latest cell."""

from __future__ import annotations

import asyncio

import pytest

from dma_bot.bus import END, MAX_DEFERRALS, Channel, Fanout, Latest, any_waiting, fanout, put_each


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


async def test_background_channel_lets_tasks_woken_with_it_run_first() -> None:
    """A background consumer woken by the same producer step as a plain one (and woken first) takes its
    items only after the plain one ran; without defer_while it would go first. Nothing is lost either way."""
    for background, expected in ((True, ["hot [1]", "books [1]"]), (False, ["books [1]", "hot [1]"])):
        hot: Channel[int] = Channel("hot", 8)
        books: Channel[int] = Channel("books", 8)
        if background:
            books.defer_while(lambda: False)
        order: list[str] = []

        async def consume(name: str, channel: Channel[int], order: list[str] = order) -> None:
            while (batch := await channel.get_batch()) is not None:
                order.append(f"{name} {batch}")

        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            group.create_task(consume("books", books))
            group.create_task(consume("hot", hot))
            await asyncio.sleep(0)  # both wait on their channels
            await put_each((books, hot), ([1], [1]))  # books is woken first
            await books.close()
            await hot.close()
        assert order == expected


async def test_background_channel_waits_for_the_whole_hot_path_but_not_forever() -> None:
    """While any hot channel holds items the background consumer keeps yielding, so a two-hop hot path
    (strategy -> risk) finishes first; a hot path that never drains delays it by MAX_DEFERRALS turns only."""
    hot: Channel[int] = Channel("hot", 8)
    downstream: Channel[int] = Channel("downstream", 8)
    books: Channel[int] = Channel("books", 8)
    books.defer_while(any_waiting([hot, downstream]))
    order: list[str] = []

    async def consume(name: str, channel: Channel[int], out: Channel[int] | None = None) -> None:
        while (batch := await channel.get_batch()) is not None:
            order.append(f"{name} {batch}")
            if out is not None:
                await out.put_many(batch)
        if out is not None:
            await out.close()

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(consume("books", books))
        group.create_task(consume("hot", hot, downstream))
        group.create_task(consume("risk", downstream))
        await asyncio.sleep(0)
        await put_each((books, hot), ([1], [1]))
        await books.close()
        await hot.close()
    assert order == ["hot [1]", "risk [1]", "books [1]"]

    stuck: Channel[int] = Channel("stuck", 8)
    await stuck.put(1)  # nobody drains it: the hot path looks busy forever
    lagging: Channel[int] = Channel("lagging", 8)
    lagging.defer_while(any_waiting([stuck]))
    await lagging.put(7)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async with asyncio.timeout(5):
        counter = asyncio.create_task(count_turns())
        assert await lagging.get_batch() == [7]
        counter.cancel()
    assert MAX_DEFERRALS <= turns <= MAX_DEFERRALS + 2 <= 64  # bounded, and by a few turns only

    idle: Channel[int] = Channel("idle", 8)
    idle.defer_while(any_waiting([Channel("empty", 8)]))
    await idle.put(8)
    turns = 0
    async with asyncio.timeout(5):
        counter = asyncio.create_task(count_turns())
        assert await idle.get_batch() == [8]
        counter.cancel()
    assert turns <= 2  # an idle hot path costs one turn, not MAX_DEFERRALS


async def test_take_queued_takes_everything_without_waiting_and_consumes_ends() -> None:
    channel: Channel[int] = Channel("c", 2, producers=2)
    await channel.put(1)
    await channel.close()  # one producer done
    blocked = asyncio.create_task(channel.put_many([2, 3]))  # waits for room
    await asyncio.sleep(0)
    assert channel.take_queued() == [1]
    await asyncio.wait_for(blocked, 1)  # the taker made room and woke the producer
    assert channel.take_queued() == [2, 3]
    assert channel.take_queued() == []
    await channel.close()
    assert channel.take_queued() == []
    assert await channel.get_batch() is None  # both ENDs consumed: the channel is over
