"""RecorderStage: the asyncio shell that appends every event it is handed to the JSONL audit file.

Owns the file. :meth:`RecorderStage.open` runs at start-up, before any loop, so an unopenable path stops
the daemon with a StartupError instead of losing the trail later. It also reads the last 64 KiB of an
existing file (never more) to say how the previous section ended, and warns when the file system has less
than ``min_free_bytes`` free. :meth:`RecorderStage.run` writes a ``Start`` record, then for each inbox
batch encodes every event (the :class:`JsonlEncoder` owns the format and the ``seq`` numbering) and hands
the batch to the OS as one joined write. It ends with a ``Stop`` record carrying the per-type counts,
``stop_fields()`` and ``"clean"`` (false when the stage failed, or when ``stop_fields()`` says
``"clean": false``, e.g. orders still open), fsyncs and closes. On cancellation or an error the ``finally`` still
writes every encoded line and a ``Stop`` with ``"clean": false`` before re-raising. It never drops an event
while the disk takes writes and never closes an output: it is the last sink.

Each process appends one ``Start`` .. ``Stop`` section to the file; ``seq`` restarts at 1 in each, so
a reader splits a file on ``Start`` records, and a section without its ``Stop`` was cut by a crash. The
``Start`` of a section appended to a non-empty file carries ``"previous_section": {"clean", "stop",
"torn_line"}``: ``stop`` is whether the last line is a ``Stop`` (null if that line is longer than the
64 KiB read), ``clean`` whether that ``Stop`` said clean, and ``torn_line`` whether the file ended inside
a line (a write cut short). After a torn line the new section starts on a new line (b"\\n" first), so only
the fragment is lost; ``recorder.jsonl_decode.iter_records`` skips and counts it.

Storage failures (disk full, EIO) never raise out of the stage. The file is unbuffered (``open(path, "ab",
buffering=0)``: each write's return says how many bytes reached the OS), so a failed or short write leaves
a known prefix in the file; the rest is held in memory, in order, and the stage keeps draining its inbox,
so upstream stages never block on it. The first failure is logged once and reported to
``on_write_failure`` (on the loop thread, once per stage). While lines are held, new lines join them and
one write of the held lines is retried at most every ``retry_interval_s``, at the next batch; when it
succeeds everything is written in order with gapless ``seq``, the torn line completed. Held lines are
bounded by ``max_unwritten_bytes``: once that much is held, each further batch is dropped and its lines
counted in ``lines_dropped`` (the ``seq`` gap shows where), until a retry succeeds. The end retries once
more, fsyncs before encoding the ``Stop`` (a failed fsync may have lost written pages, so it makes the
section unclean), and writes a ``Stop`` with ``"clean": false`` and ``"storage": {"write_failures",
"lines_dropped"}`` if anything failed; lines still unwritten then are counted in ``lines_unwritten``.

Threading: a write of at least ``thread_threshold_bytes`` (default 128 KiB) is done by
``asyncio.to_thread``; smaller ones inline. Measured on the 2-core target: an inline write costs 4 us for
1 KiB, 35 us for 64 KiB and 150 us for 256 KiB, while a thread hop costs 130-160 us whatever the size, so
below ~128 KiB the hop costs more than the write it would move off the loop. A full default ``get_batch``
of 512 ``Md`` lines is ~100 KiB and stays inline; a retry of many held lines goes to the thread. A lock
serialises file access, so a thread write cut short by cancellation is either finished or redone by the
``finally``, never twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from dma_bot.bus import Channel
from dma_bot.clock import Clock
from dma_bot.errors import StartupError
from dma_bot.recorder.jsonl import JsonlEncoder

__all__ = [
    "DEFAULT_MAX_UNWRITTEN_BYTES",
    "DEFAULT_MIN_FREE_BYTES",
    "DEFAULT_RETRY_INTERVAL_S",
    "DEFAULT_THREAD_THRESHOLD_BYTES",
    "TAIL_SCAN_BYTES",
    "AppendFile",
    "DiskUsage",
    "RecorderStage",
    "describe_tail",
    "open_append",
]

_log = logging.getLogger(__name__)

DEFAULT_THREAD_THRESHOLD_BYTES: Final = 128 * 1024
DEFAULT_MAX_UNWRITTEN_BYTES: Final = 64 * 1024 * 1024
DEFAULT_RETRY_INTERVAL_S: Final = 1.0
DEFAULT_MIN_FREE_BYTES: Final = 1024**3
TAIL_SCAN_BYTES: Final = 64 * 1024
"""How much of an existing file's end :meth:`RecorderStage.open` reads to describe the previous section."""

_STEP_ITEMS: Final = 64  # events encoded per step: a background step stays short (a few hundred us)
_HELD_BLOCK_BYTES: Final = 64 * 1024  # held lines are merged into blocks of about this size: one write each


class AppendFile(Protocol):
    """What the stage writes to: an unbuffered binary file opened for append (``open_append``).

    ``write`` returns how many bytes of ``data`` reached the OS (a short count is retried with the rest) or
    raises OSError; a buffered file would hide how much of a failed write is in the file."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int | None: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class DiskUsage(Protocol):
    """The part of ``shutil.disk_usage``'s result the stage reads."""

    @property
    def free(self) -> int: ...


def open_append(path: str) -> AppendFile:
    """The default opener: ``open(path, "ab", buffering=0)``."""
    return open(path, "ab", buffering=0)


def describe_tail(tail: bytes, *, whole_file: bool) -> dict[str, Any] | None:
    """How the section at the end of a record file ended, from its last bytes ``tail`` (``whole_file``:
    ``tail`` is the whole file); None for an empty file.

    ``{"clean": bool, "stop": bool | None, "torn_line": bool}``: ``torn_line`` when the file does not end
    with a newline (that section then has no Stop); ``stop`` when the last line is a ``Stop`` record, None
    when the last line does not start inside ``tail``; ``clean`` when that ``Stop`` says ``"clean": true``.
    """
    if not tail:
        return None
    if not tail.endswith(b"\n"):
        return {"clean": False, "stop": False, "torn_line": True}
    begin = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    if begin == 0 and not whole_file:
        return {"clean": False, "stop": None, "torn_line": False}
    try:
        record = orjson.loads(tail[begin:])
    except orjson.JSONDecodeError:
        record = None
    stop = isinstance(record, dict) and record.get("type") == "Stop"
    clean = stop and isinstance(record, dict) and record.get("clean") is True
    return {"clean": clean, "stop": stop, "torn_line": False}


def _read_tail(path: str, limit: int) -> tuple[bytes, bool]:
    """At most the last ``limit`` bytes of the file at ``path``, and whether they start at its first byte;
    nothing for a path that is missing or not a regular file (a device or a pipe has no previous section)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b"", True
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            begin = max(0, size - limit)
            file.seek(begin)
            return file.read(size - begin), begin == 0
    except FileNotFoundError:
        return b"", True


def _written(count: int | None) -> int:
    """A write's return, refusing one that handed nothing to the OS (retrying it would spin)."""
    if not count:
        raise OSError(errno.EIO, f"write accepted {count!r} bytes")
    return count


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


class RecorderStage:
    """Drains ``inbox`` into the JSONL file at ``path`` (append, binary, unbuffered).

    ``records_written`` counts lines handed to the OS (Start and Stop included); ``last_flush_ns`` is
    the wall-clock time (``clock.time_ns``) of the last successful write, 0 before the first. The final
    fsync runs on the loop thread: it happens once, when the recorder is the last stage still draining.

    Storage state, plain attributes for metrics (see the module docstring): ``write_failures`` (failed
    write/fsync/close calls), ``lines_dropped`` (lines discarded at the ``max_unwritten_bytes`` bound),
    ``failed`` (any failure so far), ``failing`` (lines are held, waiting for a retry), ``lines_held`` and
    ``bytes_held`` (in memory now), ``lines_unwritten`` (held + dropped: after :meth:`run`, the lines that
    never reached the file; ``records_written + lines_unwritten`` is every line encoded) and
    ``previous_section`` (what :meth:`open` found, None for a new or empty file).

    Seams for tests: ``opener(path)`` opens the file (:func:`open_append`), ``fsync(fd)`` and
    ``disk_usage(directory)`` default to ``os.fsync`` and ``shutil.disk_usage``."""

    __slots__ = (
        "_backlog",
        "_bytes_held",
        "_clock",
        "_disk_usage",
        "_dropping",
        "_encoder",
        "_failure",
        "_failure_reported",
        "_file",
        "_fsync",
        "_held_newlines",
        "_inbox",
        "_lead_unwritten",
        "_lock",
        "_max_unwritten",
        "_min_free",
        "_on_write_failure",
        "_opener",
        "_pending",
        "_retry_at_ns",
        "_retry_interval_ns",
        "_start_fields",
        "_stop_fields",
        "_thread_threshold",
        "failed",
        "last_flush_ns",
        "lines_dropped",
        "path",
        "previous_section",
        "records_written",
        "write_failures",
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
        on_write_failure: Callable[[OSError], None] | None = None,
        max_unwritten_bytes: int = DEFAULT_MAX_UNWRITTEN_BYTES,
        retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        opener: Callable[[str], AppendFile] = open_append,
        fsync: Callable[[int], None] = os.fsync,
        disk_usage: Callable[[str], DiskUsage] = shutil.disk_usage,
    ) -> None:
        if "previous_section" in start_fields:
            raise ValueError("recorder: start_fields must not set 'previous_section' (open() sets it)")
        if max_unwritten_bytes <= 0:
            raise ValueError(f"recorder: max_unwritten_bytes must be > 0, was {max_unwritten_bytes}")
        if not retry_interval_s >= 0:
            raise ValueError(f"recorder: retry_interval_s must be >= 0, was {retry_interval_s}")
        if min_free_bytes < 0:
            raise ValueError(f"recorder: min_free_bytes must be >= 0, was {min_free_bytes}")
        self.path = path
        self._encoder = encoder
        self._inbox = inbox
        self._clock = clock
        self._start_fields = dict(start_fields)
        self._stop_fields = stop_fields
        self._thread_threshold = thread_threshold_bytes
        self._on_write_failure = on_write_failure
        self._max_unwritten = max_unwritten_bytes
        self._retry_interval_ns = round(retry_interval_s * 1e9)
        self._min_free = min_free_bytes
        self._opener = opener
        self._fsync = fsync
        self._disk_usage = disk_usage
        self._file: AppendFile | None = None
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._backlog: collections.deque[bytearray] = collections.deque()
        self._bytes_held = 0
        self._held_newlines = 0
        self._lead_unwritten = False  # a b"\n" ending a torn line goes before the Start, and is not a line
        self._retry_at_ns = 0
        self._failure: OSError | None = None
        self._failure_reported = False
        self._dropping = False
        self.records_written = 0
        self.last_flush_ns = 0
        self.write_failures = 0
        self.lines_dropped = 0
        self.failed = False
        self.previous_section: dict[str, Any] | None = None

    @property
    def failing(self) -> bool:
        """Lines are held in memory because the last write failed."""
        return bool(self._backlog)

    @property
    def bytes_held(self) -> int:
        return self._bytes_held

    @property
    def lines_held(self) -> int:
        # held data is a suffix of this section's output: while the lead newline is unwritten, it is in it
        return self._held_newlines - (self._lead_unwritten and self._held_newlines > 0)

    @property
    def lines_unwritten(self) -> int:
        return self.lines_held + self.lines_dropped

    def open(self) -> None:
        """Create the parent directory, open the file for append and look at how it ends; call once at
        start-up. Logs one warning if the previous section did not end cleanly, one if free space is low."""
        if self._file is not None:
            raise RuntimeError(f"recorder: {self.path!r} is already open")
        path = self.path
        try:
            directory = Path(path).parent
            if not directory.exists():
                with contextlib.suppress(FileExistsError):
                    directory.mkdir(parents=True)
                _log.info("recorder: created the directory '%s' for RECORD_FILE", directory)
            file = self._opener(path)
        except OSError as e:
            raise StartupError(f"RECORD_FILE: cannot open '{path}': {_reason(e)}") from e
        try:
            tail, whole_file = _read_tail(path, TAIL_SCAN_BYTES)
        except OSError as e:
            file.close()
            raise StartupError(f"RECORD_FILE: cannot read the end of '{path}': {_reason(e)}") from e
        self._file = file
        self.previous_section = previous = describe_tail(tail, whole_file=whole_file)
        if previous is not None and not previous["clean"]:
            self._lead_unwritten = previous["torn_line"]
            if previous["torn_line"]:
                how = "ends inside a line (a write was cut short); the new section starts on a new line"
            elif previous["stop"] is None:
                how = f"ends with a line longer than {TAIL_SCAN_BYTES} bytes (not checked for a Stop record)"
            elif previous["stop"]:
                how = "ends with a Stop record marked unclean"
            else:
                how = "has no Stop record at its end (the last run did not stop)"
            _log.warning("recorder: the previous section of '%s' %s; the new Start records it", path, how)
        self._check_free_space()
        self._write_start()

    def _write_start(self) -> None:
        """The Start record, written by :meth:`open`: a file that takes no write (a full disk, a read-only
        mount) stops the start-up with a StartupError before anything trades."""
        file = self._file
        assert file is not None
        fields = self._start_fields
        if self.previous_section is not None:
            fields = {**fields, "previous_section": self.previous_section}
        start = self._encoder.encode_control("Start", fields, ts_ns=self._clock.time_ns())
        data = b"\n" + start if self._lead_unwritten else start
        try:
            written = _written(file.write(data))
            while written < len(data):
                written += _written(file.write(memoryview(data)[written:]))
        except OSError as e:
            self._file = None
            with contextlib.suppress(OSError):
                file.close()
            raise StartupError(
                f"RECORD_FILE: cannot write to '{self.path}': {_reason(e)} (free disk space, or choose another path)"
            ) from e
        self._lead_unwritten = False
        self.records_written = self._encoder.seq
        self.last_flush_ns = self._clock.time_ns()

    def abandon(self) -> None:
        """After :meth:`open`, when start-up fails before :meth:`run`: a Stop marked unclean, then close (the
        section is complete and says it did not run)."""
        self._finish(False)

    def _check_free_space(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            free = self._disk_usage(directory).free
        except OSError as e:
            _log.warning("recorder: cannot read the free space of '%s': %s", directory, _reason(e))
            return
        if free < self._min_free:
            _log.warning(
                "recorder: only %d bytes free on the file system of '%s', below the %d-byte warning bound",
                free, self.path, self._min_free,
            )

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
        clock = self._clock
        clean = False
        try:
            self._report()
            while (batch := await self._inbox.get_batch(_STEP_ITEMS)) is not None:
                encode_batch(batch, pending)  # type: ignore[arg-type]
                now_ns = clock.monotonic_ns()
                if self._write_size(sum(map(len, pending)), now_ns) >= self._thread_threshold:
                    await asyncio.to_thread(self._write_pending, now_ns)
                else:
                    self._write_pending(now_ns)
                self._report()
            clean = True
        finally:
            if not clean:
                self._encode_leftovers()
            self._finish(clean)

    def _write_size(self, pending_bytes: int, now_ns: int) -> int:
        """Bytes the next :meth:`_write_pending` hands to the OS: 0 while held lines wait for their retry."""
        if not self._backlog:
            return pending_bytes
        if now_ns < self._retry_at_ns:
            return 0
        return self._bytes_held + pending_bytes

    def _encode_leftovers(self) -> None:
        """Encode what is still queued for the recorder when it is torn down (a crash elsewhere, a forced
        stop): events that passed through the engine reach the file even if the recorder was behind."""
        lines: list[bytes] = []
        try:
            self._encoder.encode_batch(self._inbox.take_queued(), lines)  # type: ignore[arg-type]
        except Exception:
            _log.exception("recorder: could not encode the events still queued at shutdown")
        with self._lock:  # a cancelled thread write may still be taking the pending lines
            self._pending.extend(lines)

    def _write_pending(self, now_ns: int) -> None:
        """Hand every encoded line to the OS in order (from the loop or a worker thread); a failure is
        counted and its lines held, never raised."""
        with self._lock:
            file = self._file
            if file is not None:
                self._write_locked(file, now_ns)
                if not self._backlog:
                    self.last_flush_ns = self._clock.time_ns()

    def _write_locked(self, file: AppendFile, now_ns: int | None, *, keep: bool = False) -> bool:
        """Write the held lines (when their retry is due; ``now_ns`` None: now), then the pending ones;
        ``keep``: hold the pending lines even past the bound. True when nothing is left unwritten."""
        pending = self._pending
        data = b"".join(pending)
        pending.clear()
        if self._backlog:
            if now_ns is None or now_ns >= self._retry_at_ns:
                self._retry_held(file, now_ns)
            if self._backlog:
                if data:
                    self._hold(data, keep=keep)
                self.records_written = self._encoder.seq - self.lines_unwritten
                return False
        if data:
            written = 0
            try:
                written = _written(file.write(data))
                if written < len(data):
                    view = memoryview(data)
                    while written < len(data):
                        written += _written(file.write(view[written:]))
            except OSError as e:
                if written:
                    self._lead_unwritten = False
                self._hold(data[written:], keep=True)
                self._failed(e, now_ns)
                self.records_written = self._encoder.seq - self.lines_unwritten
                _log.error(
                    "recorder: cannot write to '%s': %s; holding unwritten lines in memory (up to %d bytes) and "
                    "retrying every %g s", self.path, _reason(e), self._max_unwritten, self._retry_interval_ns / 1e9,
                )
                return False
            self._lead_unwritten = False
        self.records_written = self._encoder.seq - self.lines_dropped
        return True

    def _retry_held(self, file: AppendFile, now_ns: int | None) -> None:
        """One attempt at writing the held lines; a failure is counted and sets the next retry time."""
        lines = self.lines_held
        try:
            self._write_held(file)
        except OSError as e:
            self._failed(e, now_ns)
            return
        self._dropping = False
        _log.warning(
            "recorder: '%s' takes writes again: %d held lines written (%d failed attempts so far, %d lines "
            "dropped)", self.path, lines, self.write_failures, self.lines_dropped,
        )

    def _write_held(self, file: AppendFile) -> None:
        """Write the held blocks in order, each as far as the OS takes it; raises the first failure."""
        backlog = self._backlog
        while backlog:
            block = backlog[0]
            count = _written(file.write(block))
            self._lead_unwritten = False
            self._held_newlines -= block.count(b"\n", 0, count)
            self._bytes_held -= count
            if count == len(block):
                backlog.popleft()
            else:
                del block[:count]

    def _hold(self, data: bytes, *, keep: bool) -> None:
        """Keep ``data`` (whole lines, the first maybe the rest of a line cut short) for a later write; once
        ``max_unwritten_bytes`` are held, drop it and count its lines, unless ``keep``."""
        if not keep and self._bytes_held >= self._max_unwritten:
            self.lines_dropped += data.count(b"\n")
            if not self._dropping:
                self._dropping = True
                _log.error(
                    "recorder: %d bytes held for '%s' (the bound): dropping new lines until it takes writes "
                    "again", self._bytes_held, self.path,
                )
            return
        self._held_newlines += data.count(b"\n")
        self._bytes_held += len(data)
        backlog = self._backlog
        if backlog and len(backlog[-1]) < _HELD_BLOCK_BYTES:
            backlog[-1] += data
        else:
            backlog.append(bytearray(data))

    def _failed(self, error: OSError, now_ns: int | None) -> None:
        self.write_failures += 1
        self.failed = True
        if self._failure is None:
            self._failure = error
        if now_ns is not None:
            self._retry_at_ns = now_ns + self._retry_interval_ns

    def _report(self) -> None:
        """On the loop thread: hand the first failure to ``on_write_failure``, once."""
        if self._failure is not None and not self._failure_reported:
            self._failure_reported = True
            if self._on_write_failure is not None:
                self._on_write_failure(self._failure)

    def _sync(self, file: AppendFile) -> bool:
        try:
            self._fsync(file.fileno())
        except OSError as e:
            self._failed(e, None)
            _log.error("recorder: fsync of '%s' failed: %s; lines written may not be on disk", self.path, _reason(e))
            return False
        return True

    def _stop_line(self, clean: bool) -> tuple[bytes, Exception | None]:
        """The Stop record; if ``stop_fields()`` fails, a bare unclean Stop and the failure."""
        ts_ns = self._clock.time_ns()
        storage: dict[str, Any] = {}
        if self.failed or self.lines_dropped:
            storage["storage"] = {"write_failures": self.write_failures, "lines_dropped": self.lines_dropped}
        try:
            own = self._stop_fields()
            fields = {**own, "clean": clean and own.get("clean", True) is True, **storage}
            return self._encoder.encode_control("Stop", fields, ts_ns=ts_ns), None
        except Exception as e:
            _log.exception("recorder: stop_fields() failed; writing a Stop without its fields")
            return self._encoder.encode_control("Stop", {"clean": False, **storage}, ts_ns=ts_ns), e

    def _finish(self, clean: bool) -> None:
        """Write what is encoded, fsync, then a Stop record; fsync and close, whatever happens.

        Runs on the loop thread; it may wait for one in-flight thread write to finish. Storage failures
        are counted and logged, not raised."""
        failure: Exception | None = None
        with self._lock:
            file, self._file = self._file, None
            if file is None:
                return
            try:
                if self._write_locked(file, None):
                    self._sync(file)
                stop, failure = self._stop_line(clean and not self.failed and not self.lines_dropped)
                self._pending.append(stop)
                if self._write_locked(file, None, keep=True) and self._sync(file):
                    self.last_flush_ns = self._clock.time_ns()
            finally:
                try:
                    file.close()
                except OSError as e:
                    self._failed(e, None)
                    _log.error("recorder: closing '%s' failed: %s", self.path, _reason(e))
        if self.lines_unwritten:
            _log.error(
                "recorder: %d lines never reached '%s' (%d dropped at the memory bound, %d still held at the end)",
                self.lines_unwritten, self.path, self.lines_dropped, self.lines_held,
            )
        self._report()
        if failure is not None and clean:
            raise failure
