"""Market data out of recordings: our JSONL audit trail and the Rust original's, streamed, never loaded whole.

Owns reading ``Md`` quotes back as :class:`~dma_bot.model.events.Tick` s for a replay feed and a backtest. It
reads no clock and makes no decision: it parses, checks order and counts what it skips.

* Our recordings (``recorder/jsonl.py``): each ``Start`` record names the section's instruments (tick and step
  size), and the section's ``Md`` lines are turned into ticks and steps of those instruments (several Start..Stop
  sections in one file are fine; a symbol's grid must not change between them). Other record types (``Sig``,
  ``Ord``, ``Exec``, ...) are counted as ``not_md`` and skipped.
* The Rust original's: serde's externally tagged form, one ``{"Md":{"ts_ns":..,"symbol":"..","best_bid":..,
  "best_ask":..}}`` a line, prices in integer cents, no sizes: a quote of 1 cent to 1 tick of an instrument whose
  tick size is 0.01 (``rust_instruments`` gives them), and sizes of 0 steps (the book's depth is unknown; the
  simulated venue fills by its own model). ``Sig``, ``Ord``, ``Exec`` and ``Note`` variants count as ``not_md``.
* A file ending in ``.gz`` is read through gzip, ``.zst`` through zstd (the ``zstandard`` package; several
  frames, as ``cat a.zst b.zst`` makes, are fine), transparently. A corrupt or truncated stream is a
  :class:`RecordingError` naming the file. ``ReadStats.input_bytes`` counts the bytes of the files read so far
  (of the compressed file for ``.gz`` and ``.zst``), for a progress bar against the files' sizes.

A line that cannot be parsed (``bad_line``), a quote older than the previous quote of the file
(``out_of_order``) or of a symbol not asked for (``unknown_symbol``) is a problem: counted per reason with the
first :data:`FIRST_PROBLEMS` kept with their line numbers, and skipped; with ``strict`` the first one raises
:class:`RecordingError` naming the file and line. Timestamps: a quote's ``ts_event_ns`` is when it happened
(the venue's time for Binance, the mock feed's emission), and the order checks use it.

What is skipped on purpose is counted but is no problem (:data:`QUIET_REASONS`, never in ``problems``, never
raised by ``strict``): other records (``not_md``); with ``selected`` (the backtest's ``--symbols``) the quotes
of every symbol not in ``symbols`` (``not_selected``, before their fields are read: a broken line of a symbol
left out is no concern of the run); and with a time window ``[start_ns, end_ns)`` the quotes outside it
(``outside_window``; the order check comes first, so a late quote is ``out_of_order`` wherever it falls). A
file is in time order once late quotes are dropped, so the first in-order quote at or after ``end_ns`` ends
the reading of that file: it is counted (one ``outside_window``) and the rest of the file is not read, and
``ReadStats.input_bytes`` then counts the whole file (as stored) as done.
"""

from __future__ import annotations

import gzip
import heapq
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

import orjson
import zstandard

from dma_bot.errors import DmaBotError, ProtocolError
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl_decode import grid_places, grid_units

__all__ = [
    "ALL_TIME",
    "FIRST_PROBLEMS",
    "QUIET_REASONS",
    "ReadStats",
    "RecordingError",
    "SkipReason",
    "Window",
    "merge_ticks",
    "read_ticks",
    "recording_instruments",
    "rust_instruments",
]

FIRST_PROBLEMS: Final = 10
_STOP: Final = object()  # _line's answer for the quote that ends the window
_PROGRESS_LINES: Final = 4096  # input_bytes is brought up to date every this many lines (a power of two)
_ZSTD_CHUNK: Final = 1 << 17  # compressed bytes read at a time
STREAM_ERRORS: Final[tuple[type[BaseException], ...]] = (OSError, EOFError, zstandard.ZstdError)
"""What reading a recording's stream raises when the file is truncated or corrupt (gzip, zstd)."""
_CENT: Final = Decimal("0.01")
_INT64_MAX: Final = 2**63 - 1  # a quote's every number fits int64: the backtest's columns hold them
_RUST_OTHER: Final = frozenset({"Sig", "Ord", "Exec", "Note"})


class RecordingError(DmaBotError):
    """A recording that cannot be read at all, or (``strict``) the first bad line, as one line of text."""


class SkipReason(StrEnum):
    BAD_LINE = "bad_line"  # not JSON, not a record we know, or an Md with a field that does not parse
    OUT_OF_ORDER = "out_of_order"  # older than the previous quote of the file
    UNKNOWN_SYMBOL = "unknown_symbol"  # not asked for, or no instrument for it
    NOT_MD = "not_md"  # another record type (Sig, Ord, Exec, Start, Stop, ...): not market data
    NOT_SELECTED = "not_selected"  # a symbol left out by the selection (``selected``: the backtest's --symbols)
    OUTSIDE_WINDOW = "outside_window"  # in order, but before start_ns or at/after end_ns


QUIET_REASONS: Final = frozenset({SkipReason.NOT_MD, SkipReason.NOT_SELECTED, SkipReason.OUTSIDE_WINDOW})
"""Skips made on purpose: counted, but not problems (never in ``ReadStats.problems``, never raised by strict)."""


@dataclass(slots=True)
class ReadStats:
    """What reading one or more recordings found: lines read, quotes given, skips per reason, the first few
    problems as (file, line number, reason, detail), and the first and last quote's ``ts_event_ns``."""

    lines: int = 0
    quotes: int = 0
    skipped: dict[SkipReason, int] = field(default_factory=lambda: dict.fromkeys(SkipReason, 0))
    problems: list[tuple[str, int, SkipReason, str]] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    input_bytes: int = 0  # of the files as stored (compressed for .gz, .zst), updated every few thousand lines;
    # a file whose reading stopped at the window's end counts whole

    def skip(self, path: str, number: int, reason: SkipReason, detail: str, *, strict: bool) -> None:
        self.skipped[reason] += 1
        if reason in QUIET_REASONS:
            return
        if strict:
            raise RecordingError(f"{path}:{number}: {detail}")
        if len(self.problems) < FIRST_PROBLEMS:
            self.problems.append((path, number, reason, detail))


def rust_instruments(symbols: Iterable[str], step_size: Decimal) -> dict[str, Instrument]:
    """Instruments for the Rust original's recordings: prices in cents (tick 0.01), ``step_size`` as given."""
    return {symbol: Instrument(symbol=symbol, tick_size=_CENT, step_size=step_size) for symbol in symbols}


class _NotSelected(Exception):
    """A quote of a symbol the selection leaves out."""


@dataclass(frozen=True, slots=True)
class Window:
    """The quotes a run wants: ``start_ns <= ts_event_ns < end_ns`` (None: unbounded on that side)."""

    start_ns: int | None = None
    end_ns: int | None = None

    def __post_init__(self) -> None:
        if self.start_ns is not None and self.end_ns is not None and self.end_ns <= self.start_ns:
            raise ValueError(f"end_ns: after start_ns ({self.start_ns}), was {self.end_ns}")

    @property
    def bounded(self) -> bool:
        return self.start_ns is not None or self.end_ns is not None


ALL_TIME: Final = Window()


class _ZstdFrames(io.RawIOBase):
    """A zstd file's frames, one after another, as a raw stream; closing it closes the file. A stream that ends
    inside a frame is a ``ZstdError``: zstandard's own ``stream_reader`` reads a truncated stream as a short one."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False  # bytes of the current frame were given, its end was not
        self._pending = memoryview(b"")
        self._at_end = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._at_end:
                return 0
            self._fill()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _fill(self) -> None:
        data = self._file.read(_ZSTD_CHUNK)
        if not data:
            if self._in_frame:
                raise zstandard.ZstdError("zstd stream truncated: it ends inside a frame")
            self._at_end = True
            return
        chunks = []
        while data:
            self._in_frame = True
            chunks.append(self._frame.decompress(data))
            if not self._frame.eof:
                break
            data = self._frame.unused_data
            self._frame = self._decompressor.decompressobj()
            self._in_frame = False
        self._pending = memoryview(b"".join(chunks))

    def close(self) -> None:
        if not self.closed:
            try:
                self._file.close()
            finally:
                super().close()


def open_recording(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """The file's decompressed bytes, and the file as stored (whose ``tell()`` is how far reading got)."""
    try:
        stored = open(path, "rb")  # noqa: SIM115 - closed with the reader returned
    except OSError as e:
        raise RecordingError(f"{path}: a readable recording, was {e.strerror or e}") from e
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=stored, mode="rb"), stored  # type: ignore[return-value]
    if path.suffix == ".zst":
        return io.BufferedReader(_ZstdFrames(stored)), stored
    return stored, stored


class LineReader:
    """One file's lines -> ticks, with the section's instruments and the skip counts in ``stats``: the reference
    reader (:mod:`dma_bot.feed.recording_columns` parses the recorder's Md lines faster and gives the rest to
    :meth:`parse`)."""

    def __init__(self, path: Path, stats: ReadStats, symbols: frozenset[str] | None,
                 rust: Mapping[str, Instrument] | None, strict: bool, *, selected: bool = False,
                 window: Window = ALL_TIME) -> None:
        if selected and symbols is None:
            raise ValueError("selected: needs symbols, was None")
        self.path = path
        self.name = str(path)
        self.stats = stats
        self.symbols = symbols
        self.rust = rust
        self.strict = strict
        self.selected = selected
        self.window = window
        self.instruments: dict[str, Instrument] = {}
        self.places: dict[str, tuple[int | None, int | None]] = {}  # decimals of each grid (None: not 10**-k)
        self.last_ns = -1

    def ticks(self) -> Iterator[Tick]:
        stats = self.stats
        file, stored = open_recording(self.path)
        counted = 0
        with file, stored:
            try:
                for number, line in enumerate(file, 1):
                    stats.lines += 1
                    if not number & (_PROGRESS_LINES - 1):
                        position = stored.tell()
                        stats.input_bytes += position - counted
                        counted = position
                    tick = self._line(number, line)
                    if tick is _STOP:
                        stats.input_bytes += stored_size(stored) - counted
                        return
                    if tick is not None:
                        yield tick  # type: ignore[misc]
            except STREAM_ERRORS as e:
                raise RecordingError(f"{self.name}: a readable recording, was {e}") from e
            stats.input_bytes += stored.tell() - counted

    def _line(self, number: int, line: bytes) -> Tick | object | None:
        tick = self.parse(number, line)
        if tick is None:
            return None
        if tick.ts_event_ns < self.last_ns:
            self._skip(number, SkipReason.OUT_OF_ORDER, out_of_order_detail(tick.ts_event_ns, self.last_ns))
            return None
        self.last_ns = tick.ts_event_ns
        stats = self.stats
        window = self.window
        if window.end_ns is not None and tick.ts_event_ns >= window.end_ns:
            stats.skipped[SkipReason.OUTSIDE_WINDOW] += 1
            return _STOP
        if window.start_ns is not None and tick.ts_event_ns < window.start_ns:
            stats.skipped[SkipReason.OUTSIDE_WINDOW] += 1
            return None
        stats.quotes += 1
        if stats.first_ns is None or tick.ts_event_ns < stats.first_ns:
            stats.first_ns = tick.ts_event_ns
        if stats.last_ns is None or tick.ts_event_ns > stats.last_ns:
            stats.last_ns = tick.ts_event_ns
        return tick

    def parse(self, number: int, line: bytes) -> Tick | None:
        """One line -> its quote of a wanted symbol, or None (counted in ``stats``); no time-order check."""
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._skip(number, SkipReason.BAD_LINE, f"not JSON: {line[:60]!r}")
            return None
        if not isinstance(record, dict):
            self._skip(number, SkipReason.BAD_LINE, f"not a JSON object: {line[:60]!r}")
            return None
        try:
            if "type" in record:
                tick = self._ours(record)
            elif "Md" in record and self.rust is not None:
                tick = self._rust(record["Md"])
            elif _RUST_OTHER.intersection(record):
                self._skip(number, SkipReason.NOT_MD, "")
                return None
            else:
                self._skip(number, SkipReason.BAD_LINE, f"not a record of a known format: {line[:60]!r}")
                return None
        except _NotSelected:
            self._skip(number, SkipReason.NOT_SELECTED, "")
            return None
        except (KeyError, TypeError, ValueError, ArithmeticError, ProtocolError) as e:
            self._skip(number, SkipReason.BAD_LINE, f"an Md record with fields that parse, was {e!s:.100}")
            return None
        if tick is None:
            self._skip(number, SkipReason.NOT_MD, "")
            return None
        if not all(0 <= value <= _INT64_MAX for value in tick[1:]):
            self._skip(number, SkipReason.BAD_LINE, f"an Md record with prices, sizes and times in 0..2**63-1, was "
                                                   f"{tick[1:]}")
            return None
        if self.symbols is not None and tick.symbol not in self.symbols:
            self._skip(number, SkipReason.UNKNOWN_SYMBOL, unknown_symbol_detail(tick.symbol))
            return None
        return tick

    def _skip(self, number: int, reason: SkipReason, detail: str) -> None:
        self.stats.skip(self.name, number, reason, detail, strict=self.strict)

    def _ours(self, record: dict[str, Any]) -> Tick | None:
        type_ = record["type"]
        if type_ == "Start":
            for symbol, grid in record.get("instruments", {}).items():
                instrument = Instrument(symbol=symbol, tick_size=Decimal(grid["tick_size"]),
                                        step_size=Decimal(grid["step_size"]),
                                        base_asset=grid.get("base_asset", ""), quote_asset=grid.get("quote_asset", ""))
                known = self.instruments.get(symbol)
                if known is not None and (known.tick_size, known.step_size) != (instrument.tick_size,
                                                                                 instrument.step_size):
                    raise ValueError(f"{symbol}'s grid changes between sections")
                self.instruments[symbol] = instrument
                self.places[symbol] = (grid_places(instrument.tick_size), grid_places(instrument.step_size))
            return None
        if type_ != "Md":
            return None
        symbol = record["symbol"]
        if self.selected and symbol not in self.symbols:  # type: ignore[operator]
            raise _NotSelected
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise ValueError(f"no instrument for {symbol!r} (no Start record names it)")
        tick_size, step_size = instrument.tick_size, instrument.step_size
        tick_places, step_places = self.places[symbol]
        return Tick(symbol, grid_units(record["bid"], tick_size, tick_places, "bid"),
                    grid_units(record["ask"], tick_size, tick_places, "ask"),
                    grid_units(record["bid_qty"], step_size, step_places, "bid_qty"),
                    grid_units(record["ask_qty"], step_size, step_places, "ask_qty"),
                    _int(record["ts_event_ns"]), _int(record["ts_ns"]))

    def _rust(self, md: dict[str, Any]) -> Tick:
        assert self.rust is not None
        symbol = md["symbol"]
        if self.selected and symbol not in self.symbols:  # type: ignore[operator]
            raise _NotSelected
        if symbol not in self.rust:
            raise ValueError(f"no instrument for {symbol!r}")
        ts_ns = _int(md["ts_ns"])
        return Tick(symbol, _int(md["best_bid"]), _int(md["best_ask"]), 0, 0, ts_ns, ts_ns)


def stored_size(stored: IO[bytes]) -> int:
    """The size of a recording as stored (what a file left early counts as read)."""
    return os.fstat(stored.fileno()).st_size


def unknown_symbol_detail(symbol: str) -> str:
    return f"symbol {symbol!r} is not asked for"


def out_of_order_detail(ts_ns: int, previous_ns: int) -> str:
    return f"ts_event_ns {ts_ns} is before the previous quote's {previous_ns}"


def _int(value: object) -> int:
    if type(value) is not int:
        raise ValueError(f"an integer, was {value!r}")
    return value


def read_ticks(
    path: str | Path,
    stats: ReadStats,
    *,
    symbols: Iterable[str] | None = None,
    rust_instruments: Mapping[str, Instrument] | None = None,
    strict: bool = False,
    selected: bool = False,
    window: Window = ALL_TIME,
) -> Iterator[Tick]:
    """The quotes of one recording, in file order, skipping (and counting in ``stats``) what cannot be used.
    ``rust_instruments`` enables the Rust original's format; ``selected``: ``symbols`` is a selection, other
    symbols' quotes are ``not_selected``; quotes outside ``window`` are ``outside_window``, and the first in
    order past its end stops the reading. A missing file is a RecordingError."""
    file = Path(path)
    if not file.is_file():
        raise RecordingError(f"{file}: an existing recording file, was not found")
    wanted = None if symbols is None else frozenset(symbols)
    yield from LineReader(file, stats, wanted, rust_instruments, strict, selected=selected, window=window).ticks()


def recording_instruments(path: str | Path) -> dict[str, Instrument]:
    """The instruments named by the first ``Start`` record of one of our recordings (read up to it only); {} for
    a file without one (the Rust original's format)."""
    reader = LineReader(Path(path), ReadStats(), None, None, strict=False)
    file, stored = open_recording(reader.path)
    with file, stored:
        try:
            for line in file:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("type") == "Start":
                    reader._ours(record)
                    return reader.instruments
        except STREAM_ERRORS as e:
            raise RecordingError(f"{reader.name}: a readable recording, was {e}") from e
    return {}


def merge_ticks(sources: Iterable[Iterator[Tick]]) -> Iterator[Tick]:
    """Several recordings' quotes as one stream in ``ts_event_ns`` order (ties keep the sources' order)."""
    return heapq.merge(*sources, key=lambda tick: tick.ts_event_ns)
