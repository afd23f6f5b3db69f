"""Typed bounded channels between stages, the END marker, fan-out and the Latest cell.

No domain knowledge lives here. A :class:`Channel` joins N producers to one consumer: each producer
closes it once, and the consumer sees the end only after every producer closed and every queued item
was handed out (Python 3.11 has no ``Queue.shutdown``). Producers ``await put`` and take the
backpressure: nothing is ever dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final, Generic, TypeVar, final

__all__ = ["END", "Channel", "Fanout", "Latest", "fanout"]

T = TypeVar("T")


@final
class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = _End()
"""The end-of-stream marker, compared by identity."""


class Channel(Generic[T]):
    """A bounded queue of ``T`` from ``producers`` producers to one consumer."""

    __slots__ = ("_open", "_queue", "name", "producers")

    def __init__(self, name: str, maxsize: int, producers: int = 1) -> None:
        if maxsize <= 0:
            raise ValueError(f"{name}: maxsize must be positive (bounded), was {maxsize}")
        self.name = name
        self.producers = producers
        self._open = producers
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue(maxsize)

    def add_producer(self) -> None:
        """Register one more producer (call while wiring, before anything runs)."""
        self.producers += 1
        self._open += 1

    async def put(self, item: T) -> None:
        queue = self._queue
        if queue.full():
            await queue.put(item)
        else:
            queue.put_nowait(item)

    async def close(self) -> None:
        """One producer is done. Never call twice from the same producer."""
        await self._queue.put(END)

    async def get_batch(self, limit: int = 512) -> list[T] | None:
        """Wait for at least one item, then take what is queued (up to ``limit``).

        Returns None once every producer has closed and the queue is drained."""
        queue = self._queue
        out: list[T] = []
        while not out:
            if self._open == 0:
                return None
            item = await queue.get()
            while True:
                if item is END:
                    self._open -= 1
                    if self._open == 0:
                        break
                else:
                    out.append(item)  # type: ignore[arg-type]
                    if len(out) >= limit:
                        break
                if queue.empty():
                    break
                item = queue.get_nowait()
        return out

    def qsize(self) -> int:
        return self._queue.qsize()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize


class Fanout(Generic[T]):
    """One producer's view of several consumers' channels: every item goes to each of them."""

    __slots__ = ("_channels",)

    def __init__(self, channels: Sequence[Channel[T]]) -> None:
        self._channels = tuple(channels)

    async def put(self, item: T) -> None:
        for channel in self._channels:
            queue = channel._queue
            if queue.full():
                await queue.put(item)
            else:
                queue.put_nowait(item)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    @property
    def channels(self) -> tuple[Channel[T], ...]:
        return self._channels


def fanout(*channels: Channel[T]) -> Fanout[T]:
    """A Fanout over ``channels`` that registers itself as one producer of each (its close() counts once).

    Wiring builds channels with ``producers=0`` and lets every fan-out register itself."""
    for channel in channels:
        channel.add_producer()
    return Fanout(channels)


class Latest(Generic[T]):
    """A cell holding the newest value one owner published; readers only read."""

    __slots__ = ("_value", "version")

    def __init__(self, initial: T) -> None:
        self._value = initial
        self.version = 0

    def publish(self, value: T) -> None:
        self._value = value
        self.version += 1

    @property
    def value(self) -> T:
        return self._value
