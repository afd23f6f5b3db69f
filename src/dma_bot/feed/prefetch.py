"""Reading recordings on the second core: a reader's QuoteBlocks made in a child process, handed out in order.

Owns :class:`Prefetch`, ``with Prefetch(make_blocks, stats) as blocks: ...``: ``make_blocks()`` (the reader,
e.g. :func:`~dma_bot.feed.recording_columns.merge_columns` of the recordings, all of them counting into
``stats``) runs in a child process forked on entry, and ``blocks`` yields its blocks in the parent, in the
same order, while the parent works on the previous ones: a backtest's wall time is about the longer of
reading and looping instead of their sum.

* Exactly what reading in-process gives: before each block is handed out, the parent's ``stats`` is made what
  the child's was when the reader yielded that block (and after the last block, what it was at the end), so a
  progress bar reading ``stats`` after each block and the report after the run see the same counts. A
  :class:`~dma_bot.feed.recording.RecordingError` of the reader (``strict``, an unreadable file) is raised in
  the parent by ``next(blocks)`` at the same point in the block sequence, with the same text. Any other
  exception in the child, or the child's end without a word, is a :class:`PrefetchError` with the child's
  traceback or exit code: never a hang.
* Transfer: each block is pickled with protocol 5, its columns as out-of-band buffers, and written to a pipe
  (enlarged to 1 MiB where Linux allows) behind a small header; the parent reads each buffer straight into
  its own writable memory and unpickles over it (no further copy). The pipe is the bounded queue: the
  child's write blocks while the pipe is full, so it is at most one block and the pipe's content ahead
  (memory stays flat for any size of input).
* Lifetime: the child ignores SIGINT (a Ctrl-C at the terminal, sent to the whole process group, is the
  parent's to handle: no traceback from the child); leaving the ``with`` block (the end, an error, a
  KeyboardInterrupt) terminates the child if it still runs and reaps it, and the child dies of a broken pipe
  if the parent vanishes. Enter it before any thread is started (the fork copies only the calling thread).
* The items need not be QuoteBlocks: anything picklable goes (numpy arrays in it travel out of band), e.g. a
  block with what can be worked out from it ahead of the loop.
* ``enabled=False``, or no ``fork`` start method on the platform: ``blocks`` is ``make_blocks()`` itself,
  read in-process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import multiprocessing
import os
import pickle
import signal
import struct
import traceback
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

import numpy as np

from dma_bot.feed.recording import ReadStats, RecordingError

__all__ = ["Prefetch", "PrefetchError", "prefetch_available"]

_PIPE_BYTES: Final = 1 << 20  # Linux's default pipe-max-size: fewer, larger writes and reads per block
_FRAME: Final = struct.Struct("<BII")  # kind, pickle bytes, out-of-band buffers; then one <Q length per buffer
_BLOCK, _END, _FAILED, _CRASHED = range(4)
_REAP_S: Final = 5.0  # a child that said it is done gets this long to exit before it is killed
T = TypeVar("T")  # what the reader yields: QuoteBlocks for a backtest; anything picklable works


class PrefetchError(Exception):
    """The reader process failed other than with a RecordingError (its traceback), or died without a word."""


def prefetch_available() -> bool:
    """Whether a child process can be forked here (else :class:`Prefetch` reads in-process)."""
    return "fork" in multiprocessing.get_all_start_methods()


class Prefetch(Generic[T]):
    """``with Prefetch(make_blocks, stats) as blocks``: ``make_blocks()``'s blocks, made in a child process
    (see the module's docstring). ``make_blocks`` must count into ``stats`` (the child's copy of it)."""

    __slots__ = ("_blocks", "_enabled", "_fd", "_finished", "_pid", "_process", "_stats")

    def __init__(self, make_blocks: Callable[[], Iterator[T]], stats: ReadStats, *,
                 enabled: bool = True) -> None:
        self._blocks = make_blocks
        self._stats = stats
        self._enabled = enabled and prefetch_available()
        self._process: Any = None  # multiprocessing's fork Process (its class is not public)
        self._fd = -1
        self._pid: int | None = None
        self._finished = False  # the child said its last word (end, error or crash)

    @property
    def pid(self) -> int | None:
        """The child's process id, also after it ended (None: reading in-process, or not started)."""
        return self._pid

    def __enter__(self) -> Iterator[T]:
        if not self._enabled:
            return self._blocks()
        read_fd, write_fd = os.pipe()
        # another kernel's limit, or not Linux: the default size works too
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        context = multiprocessing.get_context("fork")
        process = context.Process(target=_serve, args=(self._blocks, self._stats, read_fd, write_fd),
                                  name="dma_bot-reader", daemon=True)
        # SIGINT is blocked across the fork, so the child ignores it before one can reach it; the parent gets a
        # Ctrl-C that came meanwhile when the mask is restored.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(write_fd)  # the child's end only: its exit is the pipe's end
        self._process, self._fd, self._pid = process, read_fd, process.pid
        return self._receive()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it; later calls do nothing."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if not self._finished:
                process.terminate()
            process.join(_REAP_S)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        finally:
            os.close(self._fd)
            self._fd = -1

    def _receive(self) -> Iterator[T]:
        stats = self._stats
        while True:
            kind, snapshot, payload = self._message()
            if snapshot is not None:
                _apply(snapshot, stats)
            if kind == _BLOCK:
                yield payload
                continue
            self._finished = True
            if kind == _END:
                return
            if kind == _FAILED:
                raise RecordingError(payload)
            raise PrefetchError(f"the recording reader process failed:\n{payload}")

    def _message(self) -> tuple[int, ReadStats | None, Any]:
        head = self._read(_FRAME.size)
        if head is None:
            process = self._process
            process.join(_REAP_S)
            self._finished = True
            raise PrefetchError(f"the recording reader process ended without a word (exit code {process.exitcode})")
        kind, size, count = _FRAME.unpack(head)
        lengths = struct.unpack(f"<{count}Q", self._exact(8 * count)) if count else ()
        data = self._exact(size)
        buffers = [self._exact(length) for length in lengths]
        return kind, *pickle.loads(data, buffers=buffers)

    def _exact(self, size: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        buffer = self._read(size)
        if buffer is None:
            raise PrefetchError("the recording reader process ended in the middle of a message")
        return buffer

    def _read(self, size: int) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        """``size`` bytes of the pipe into new writable memory (None: the pipe ended before the first byte)."""
        buffer = np.empty(size, dtype=np.uint8)  # not zeroed: every byte is read into
        view = memoryview(buffer)
        done = 0
        while done < size:
            got = os.readv(self._fd, [view[done:]])
            if not got:
                if done:
                    raise PrefetchError("the recording reader process ended in the middle of a message")
                return None
            done += got
        return buffer


def _apply(snapshot: ReadStats, stats: ReadStats) -> None:
    """``stats`` made equal to ``snapshot``, its dicts and lists kept (updated in place)."""
    for spec in dataclasses.fields(ReadStats):
        value, current = getattr(snapshot, spec.name), getattr(stats, spec.name)
        if isinstance(current, dict):
            current.clear()
            current.update(value)
        elif isinstance(current, list):
            current[:] = value
        else:
            setattr(stats, spec.name, value)


def _serve(make_blocks: Callable[[], Iterator[Any]], stats: ReadStats, read_fd: int, write_fd: int) -> None:
    """The child: every block with the counts so far, then the end (or the RecordingError's text, or the
    traceback of anything else). A parent that is gone (broken pipe) ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    os.close(read_fd)
    try:
        try:
            for block in make_blocks():
                _send(write_fd, _BLOCK, (stats, block))
        except RecordingError as e:
            _send(write_fd, _FAILED, (stats, str(e)))
        else:
            _send(write_fd, _END, (stats, None))
    except BrokenPipeError:
        return
    except BaseException:  # anything else is the parent's to show, with where it happened
        try:
            _send(write_fd, _CRASHED, (None, traceback.format_exc()))
        except BrokenPipeError:
            return
    finally:
        os.close(write_fd)


def _send(fd: int, kind: int, message: tuple[ReadStats | None, Any]) -> None:
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    parts = [_FRAME.pack(kind, len(data), len(raws)), struct.pack(f"<{len(raws)}Q", *(len(r) for r in raws)),
             data, *raws]
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            view = view[os.write(fd, view):]
