"""RecorderStage: the asyncio shell that appends every event it is handed to the JSONL audit file.

Owns the file. :meth:`RecorderStage.open` runs at start-up, before any loop, so an unwritable path stops
the daemon with a StartupError instead of losing the trail later. :meth:`RecorderStage.run` writes a
``Start`` record, then for each inbox batch encodes every event (the :class:`JsonlEncoder` owns the
format and the ``seq`` numbering) and writes the batch as one joined write followed by a flush to the
OS. It ends with a ``Stop`` record carrying the per-type counts, ``stop_fields()`` and ``"clean"``, then
flushes, fsyncs and closes. On cancellation or an error the ``finally`` still writes every encoded line
and a ``Stop`` with ``"clean": false`` before re-raising. It never drops an event and never closes an
output: it is the last sink.

Each process appends one ``Start`` .. ``Stop`` section to the file; ``seq`` restarts at 1 in each, so
a reader splits a file on ``Start`` records, and a section without its ``Stop`` was cut by a crash.

Threading: a batch of at least ``thread_threshold_bytes`` (default 128 KiB) is written by
``asyncio.to_thread``; smaller ones inline. Measured on the 2-core target: an inline write+flush costs
4 us for 1 KiB, 35 us for 64 KiB and 150 us for 256 KiB, while a thread hop costs 130-160 us whatever the
size, so below ~128 KiB the hop costs more than the write it would move off the loop. A full default
``get_batch`` of 512 ``Md`` lines is ~100 KiB and stays inline. A lock serialises file access, so a
thread write cut short by cancellation is either finished or redone by the ``finally``, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final

from dma_bot.bus import Channel
from dma_bot.clock import Clock
from dma_bot.errors import StartupError
from dma_bot.recorder.jsonl import JsonlEncoder

__all__ = ["DEFAULT_THREAD_THRESHOLD_BYTES", "RecorderStage"]

_log = logging.getLogger(__name__)

DEFAULT_THREAD_THRESHOLD_BYTES: Final = 128 * 1024
_STEP_ITEMS: Final = 64  # events encoded per step: a background step stays short (a few hundred us)


class RecorderStage:
    """Drains ``inbox`` into the JSONL file at ``path`` (append, binary).

    ``records_written`` counts lines handed to the OS (Start and Stop included); ``last_flush_ns`` is
    the wall-clock time (``clock.time_ns``) of the last flush, 0 before the first. The final fsync runs
    on the loop thread: it happens once, when the recorder is the last stage still draining."""

    __slots__ = (
        "_clock",
        "_encoder",
        "_file",
        "_inbox",
        "_lock",
        "_pending",
        "_start_fields",
        "_stop_fields",
        "_thread_threshold",
        "last_flush_ns",
        "path",
        "records_written",
    )

    def __init__(
        self,
        path: str,
        encoder: JsonlEncoder,
        inbox: Channel[object],
        clock: Clock,
        start_fields: Mapping[str, Any],
        stop_fields: Callable[[], Mapping[str, Any]],
        *,
        thread_threshold_bytes: int = DEFAULT_THREAD_THRESHOLD_BYTES,
    ) -> None:
        self.path = path
        self._encoder = encoder
        self._inbox = inbox
        self._clock = clock
        self._start_fields = dict(start_fields)
        self._stop_fields = stop_fields
        self._thread_threshold = thread_threshold_bytes
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self.records_written = 0
        self.last_flush_ns = 0

    def open(self) -> None:
        """Create the parent directory and open the file for append; call once at start-up."""
        if self._file is not None:
            raise RuntimeError(f"recorder: {self.path!r} is already open")
        try:
            with contextlib.suppress(FileExistsError):
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115
        except OSError as e:
            reason = e.strerror or str(e)
            raise StartupError(f"RECORD_FILE: cannot open '{self.path}': {reason}") from e

    def close(self) -> None:
        """Close without writing; idempotent, a no-op once :meth:`run` has ended.

        The wiring calls it in its own ``finally``: a task cancelled before its first step never runs
        the body of :meth:`run`, so nothing was recorded and only the handle needs releasing."""
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()

    async def run(self) -> None:
        if self._file is None:
            raise RuntimeError("recorder: open() must succeed before run()")
        encoder = self._encoder
        encode_batch = encoder.encode_batch
        pending = self._pending
        clean = False
        try:
            pending.append(encoder.encode_control("Start", self._start_fields, ts_ns=self._clock.time_ns()))
            self._write_pending()
            while (batch := await self._inbox.get_batch(_STEP_ITEMS)) is not None:
                encode_batch(batch, pending)  # type: ignore[arg-type]
                size = sum(map(len, pending))
                if size >= self._thread_threshold:
                    await asyncio.to_thread(self._write_pending)
                else:
                    self._write_pending()
                self.last_flush_ns = self._clock.time_ns()
            clean = True
        finally:
            if not clean:
                self._encode_leftovers()
            self._finish(clean)

    def _encode_leftovers(self) -> None:
        """Encode what is still queued for the recorder when it is torn down (a crash elsewhere, a forced
        stop): events that passed through the engine reach the file even if the recorder was behind."""
        try:
            self._encoder.encode_batch(self._inbox.take_queued(), self._pending)  # type: ignore[arg-type]
        except Exception:
            _log.exception("recorder: could not encode the events still queued at shutdown")

    def _write_pending(self) -> None:
        """Write and flush every encoded line not yet written (from the loop or a worker thread)."""
        with self._lock:
            file = self._file
            pending = self._pending
            if file is None or not pending:
                return
            file.write(b"".join(pending))
            file.flush()
            self.records_written = self._encoder.seq  # every encoded line is written (a TickBatch is many)
            pending.clear()

    def _stop_line(self, clean: bool) -> tuple[bytes, Exception | None]:
        """The Stop record; if ``stop_fields()`` fails, a bare unclean Stop and the failure."""
        ts_ns = self._clock.time_ns()
        try:
            fields = {**self._stop_fields(), "clean": clean}
            return self._encoder.encode_control("Stop", fields, ts_ns=ts_ns), None
        except Exception as e:
            _log.exception("recorder: stop_fields() failed; writing a Stop without its fields")
            return self._encoder.encode_control("Stop", {"clean": False}, ts_ns=ts_ns), e

    def _finish(self, clean: bool) -> None:
        """Write what is encoded and a Stop record; flush, fsync and close, whatever happens.

        Runs on the loop thread; it may wait for one in-flight thread write to finish."""
        with self._lock:
            file, self._file = self._file, None
            if file is None:
                return
            try:
                stop, failure = self._stop_line(clean)
                self._pending.append(stop)
                file.write(b"".join(self._pending))
                file.flush()
                os.fsync(file.fileno())
                self.records_written = self._encoder.seq
                self._pending.clear()
                self.last_flush_ns = self._clock.time_ns()
            finally:
                file.close()
        if failure is not None and clean:
            raise failure
