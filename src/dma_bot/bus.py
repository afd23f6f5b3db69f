"""Typed bounded channels between stages, the END marker, fan-out and the Latest cell.

No domain knowledge lives here. A :class:`Channel` joins N producers to one consumer: each producer
closes it once, and the consumer sees the end only after every producer closed and every queued item
was handed out (Python 3.11 has no ``Queue.shutdown``). Producers ``await put`` (or ``put_many``) and
take the backpressure: nothing is ever dropped, and each producer's items arrive in the order it put them.

A Channel is a deque with one waiter future for its consumer and a list of waiter futures for producers
blocked on a full channel, instead of an ``asyncio.Queue``: a queue costs two Python-level calls per item
on each side, while a batch moves through a Channel with one ``extend`` and one wake-up. The consumer
side keeps the property the gateways rely on: the only suspension point of :meth:`Channel.get_batch` is
the wait for the first item, and everything after it is synchronous, so a cancelled ``get_batch`` (e.g.
by ``asyncio.timeout``) has taken nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar, final

__all__ = ["END", "MAX_DEFERRALS", "Channel", "Fanout", "Latest", "any_waiting", "fanout", "put_each", "yield_while"]

MAX_DEFERRALS: Final = 16
"""Turns of the loop a background consumer yields at most before taking its items (see Channel.defer_while)."""

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

    __slots__ = ("_defer_while", "_ends", "_getter", "_items", "_maxsize", "_open", "_putters", "name", "producers")

    def __init__(self, name: str, maxsize: int, producers: int = 1) -> None:
        if maxsize <= 0:
            raise ValueError(f"{name}: maxsize must be positive (bounded), was {maxsize}")
        self.name = name
        self.producers = producers
        self._open = producers
        self._maxsize = maxsize
        self._items: deque[T | _End] = deque()
        self._ends = 0  # END markers currently in _items
        self._getter: asyncio.Future[None] | None = None
        self._putters: list[asyncio.Future[None]] = []
        self._defer_while: Callable[[], bool] | None = None

    def add_producer(self) -> None:
        """Register one more producer (call while wiring, before anything runs)."""
        self.producers += 1
        self._open += 1

    async def put(self, item: T) -> None:
        items = self._items
        while len(items) >= self._maxsize:
            await self._wait_room()
        items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def put_many(self, items: Sequence[T]) -> None:
        """Put every item of ``items`` in order; waits (never drops) whenever the channel is full."""
        await put_each((self,), (items,))

    async def close(self) -> None:
        """One producer is done. Never call twice from the same producer."""
        items = self._items
        while len(items) >= self._maxsize:
            await self._wait_room()
        items.append(END)
        self._ends += 1
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def defer_while(self, busy: Callable[[], bool]) -> None:
        """Make this a background channel: its consumer, once woken, lets the tasks made ready with it run
        first and then keeps yielding while ``busy()`` (at most ``MAX_DEFERRALS`` turns of the loop) before
        it takes its items. The wiring gives the bookkeeping consumers (recorder, positions, metrics) a
        ``busy`` that reports items waiting on the hot path, so ticks, signals and orders go first; the
        bound, and backpressure from a full background channel, keep the background from starving."""
        self._defer_while = busy

    async def get_batch(self, limit: int = 512) -> list[T] | None:
        """Wait for at least one item, then take what is queued (up to ``limit``); a background channel
        first lets the hot path go (see :meth:`defer_while`).

        Returns None once every producer has closed and the queue is drained."""
        items = self._items
        deferred = self._defer_while is None
        while True:
            if items:
                if not deferred:
                    deferred = True
                    await self._defer()
                    continue
                if self._ends:
                    out = self._take_through_ends(limit)
                elif len(items) <= limit:
                    out = list(items)  # type: ignore[arg-type]
                    items.clear()
                else:
                    popleft = items.popleft
                    out = [popleft() for _ in range(limit)]  # type: ignore[misc]
                if self._putters:
                    self._wake_putters()
                if out:
                    return out
            if self._open == 0:
                return None
            if self._getter is not None:
                raise RuntimeError(f"{self.name}: get_batch() while another get_batch() waits (one consumer)")
            getter = self._getter = asyncio.get_running_loop().create_future()
            try:
                await getter
            finally:
                self._getter = None

    async def _defer(self) -> None:
        """One turn of the loop for the tasks made ready with this consumer, more while the hot path is busy."""
        await asyncio.sleep(0)
        if self._defer_while is not None:
            await yield_while(self._defer_while)

    def take_queued(self) -> list[T]:
        """Every item queued right now, without waiting (END markers are consumed, not returned): for a
        consumer that is being torn down and must not lose what was already handed to it."""
        out = self._take_through_ends(len(self._items))
        if self._putters:
            self._wake_putters()
        return out

    def _take_through_ends(self, limit: int) -> list[T]:
        """Take up to ``limit`` items, consuming the END markers met on the way."""
        items = self._items
        out: list[T] = []
        while items and len(out) < limit:
            item = items.popleft()
            if item is END:
                self._ends -= 1
                self._open -= 1
                if self._open == 0:
                    break
            else:
                out.append(item)  # type: ignore[arg-type]
        return out

    async def _wait_room(self) -> None:
        putter = asyncio.get_running_loop().create_future()
        self._putters.append(putter)
        try:
            await putter
        except BaseException:
            putter.cancel()
            with contextlib.suppress(ValueError):
                self._putters.remove(putter)
            raise

    def _wake_putters(self) -> None:
        """Room was made: wake every blocked producer (each rechecks the room; none is left waiting)."""
        putters, self._putters = self._putters, []
        for putter in putters:
            if not putter.done():
                putter.set_result(None)

    def qsize(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._maxsize


async def put_each(channels: Sequence[Channel[Any]], batches: Sequence[Sequence[Any]]) -> None:
    """Put ``batches[i]`` on ``channels[i]`` for every i, each in order, as one step while all fit.

    When every channel has room for its whole batch (the usual case) this is one ``extend`` and at most
    one wake-up per channel, with no suspension. Otherwise the channels are filled one after the other,
    each as far as its room allows, waiting for its consumer whenever it is full: backpressure, never a
    drop."""
    for channel, batch in zip(channels, batches, strict=True):
        if len(channel._items) + len(batch) > channel._maxsize:
            break
    else:
        for channel, batch in zip(channels, batches, strict=True):
            if batch:
                channel._items.extend(batch)
                getter = channel._getter
                if getter is not None and not getter.done():
                    getter.set_result(None)
        return
    for channel, batch in zip(channels, batches, strict=True):
        await _put_slowly(channel, batch)


async def _put_slowly(channel: Channel[Any], batch: Sequence[Any]) -> None:
    items = channel._items
    start = 0
    end = len(batch)
    while start < end:
        room = channel._maxsize - len(items)
        if room <= 0:
            await channel._wait_room()
            continue
        items.extend(batch[start : start + room])
        start += room
        getter = channel._getter
        if getter is not None and not getter.done():
            getter.set_result(None)


class Fanout(Generic[T]):
    """One producer's view of several consumers' channels: every item goes to each of them."""

    __slots__ = ("_channels",)

    def __init__(self, channels: Sequence[Channel[T]]) -> None:
        self._channels = tuple(channels)

    async def put(self, item: T) -> None:
        for channel in self._channels:
            items = channel._items
            if len(items) < channel._maxsize:
                items.append(item)
                getter = channel._getter
                if getter is not None and not getter.done():
                    getter.set_result(None)
            else:
                await channel.put(item)

    async def put_many(self, items: Sequence[T]) -> None:
        """Put every item of ``items`` on each channel, in order (see :func:`put_each`)."""
        if items:
            channels = self._channels
            await put_each(channels, (items,) * len(channels))

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
    """A cell holding the newest value one owner published; readers only read ``value``.

    ``value`` is a plain slot rather than a property: risk reads it for every signal."""

    __slots__ = ("value", "version")

    def __init__(self, initial: T) -> None:
        self.value = initial
        self.version = 0

    def publish(self, value: T) -> None:
        self.value = value
        self.version += 1


async def yield_while(busy: Callable[[], bool]) -> None:
    """Give the loop a turn while ``busy()``, at most ``MAX_DEFERRALS`` turns (low priority, never starved)."""
    for _ in range(MAX_DEFERRALS):
        if not busy():
            return
        await asyncio.sleep(0)


def any_waiting(channels: Sequence[Channel[Any]]) -> Callable[[], bool]:
    """A ``busy`` for :meth:`Channel.defer_while`: True while any of ``channels`` holds items."""
    queues = tuple(channel._items for channel in channels)

    def busy() -> bool:
        return any(queues)  # a deque is true when it holds items

    return busy
