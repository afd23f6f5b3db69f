"""Market data out of recordings as column blocks: what :func:`~dma_bot.feed.recording.read_ticks` gives, fast.

Owns :func:`read_columns` and :func:`merge_columns`, the backtest's reader. The result is exactly that of the
line-by-line reference reader (``read_ticks``: the same quotes in the same order, the same counts, skips,
problems and strict errors; the tests compare both on every kind of input), but our recorder's ``Md`` lines
are parsed a chunk at a time with numpy instead of one ``orjson.loads`` and seven field conversions each:

* A chunk of whole lines is scanned once for newlines and commas. A line with exactly the 9 commas of the
  recorder's Md template (``{"type":"Md","seq":N,"ts_ns":T,"v":1,"symbol":"S","bid":"B","ask":"A",
  "bid_qty":"BQ","ask_qty":"AQ","ts_event_ns":E}``, all of them in its fixed segments) has every fixed byte
  checked, each segment anchored at its comma, eight bytes at a time (unaligned little-endian words over the
  chunk); every other byte is a value's, checked as digits or as a known symbol: the whole line is verified.
* Integers and decimal strings are read eight digits at a time from the same words (SWAR: the digits are
  checked and combined with three multiplies), right-aligned at the field's end. A decimal string is a grid
  count only on a 10**-k grid, spelled with exactly k decimals after at least one digit (the reference's fast
  path too). JSON integers with a leading zero, signs, exponents, escapes, spaces, longer numbers: not the
  template.
* The symbol (at most 16 bytes) is compared as two masked words against the section's instruments.

Every other line (Start records, other record types, the Rust original's format, anything unusual or
broken) goes through the reference reader's own line parser, in file order around the template lines: a
Start record changes the section's instruments for the lines after it. The time-order check is then made on
the merged rows at once: a quote is kept when it is not older than every quote before it in the file. Problems
are reported in line order, so ``strict`` raises on the same first problem as the reference.

A time window is applied to the rows in order (they are sorted by then): those before its start are counted
``outside_window``; the first at or after its end is the line the reference stops at, so the chunk's lines,
skips and problems after it are dropped (skips beyond the first few are kept as line arrays until then, not
counted at once) and no further chunk is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from dma_bot.feed.recording import (
    ALL_TIME,
    FIRST_PROBLEMS,
    STREAM_ERRORS,
    LineReader,
    ReadStats,
    RecordingError,
    SkipReason,
    Window,
    open_recording,
    out_of_order_detail,
    stored_size,
    unknown_symbol_detail,
)
from dma_bot.model.events import IntArray, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl_decode import grid_places

__all__ = ["QuoteBlock", "merge_columns", "read_columns"]

CHUNK_BYTES: Final = 4 << 20
_PAD_FRONT: Final = 24  # bytes before the chunk: a right-aligned 3-word read of a field never leaves the buffer
_PAD_BACK: Final = 16
_Words64 = npt.NDArray[np.uint64]  # 8-byte little-endian words

_TEMPLATE: Final = (
    b'{"type":"Md","seq":', b',"ts_ns":', b',"v":1,"symbol":"', b'","bid":"', b'","ask":"', b'","bid_qty":"',
    b'","ask_qty":"', b'","ts_event_ns":',
)
_COMMAS: Final = sum(segment.count(b",") for segment in _TEMPLATE)  # 9: the line's commas, all in the segments
# The comma (its index among the line's commas) each segment after the first is anchored at, and its offset from
# it: the segments after a string value start at its closing quote, one byte before the comma.
_ANCHORS: Final = ((1, 0), (2, 0), (4, -1), (5, -1), (6, -1), (7, -1), (8, -1))
_ALL: Final = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_ZEROS: Final = np.uint64(0x3030_3030_3030_3030)
_HIGH_NIBBLES: Final = np.uint64(0xF0F0_F0F0_F0F0_F0F0)
_SIXES: Final = np.uint64(0x0606_0606_0606_0606)
_THREES: Final = np.uint64(0x3333_3333_3333_3333)
# _LOW[c]: the low c bytes of a word (the first c characters, little-endian); _HIGH[c]: the high c bytes.
_LOW: Final = np.array([(1 << (8 * c)) - 1 for c in range(9)], dtype=np.uint64)
_HIGH: Final = np.array([((1 << 64) - 1) ^ ((1 << (8 * (8 - c))) - 1) for c in range(9)], dtype=np.uint64)
_POW10: Final = [np.uint64(10**k) for k in range(20)]
_INT64_MAX: Final = np.uint64(2**63 - 1)


@dataclass(frozen=True, slots=True, eq=False)
class QuoteBlock:
    """Consecutive quotes of a recording, in time order, as int64 columns: row ``i`` is the Tick
    ``(symbols[symbol[i]], bid[i], ask[i], bid_qty[i], ask_qty[i], ts_event_ns[i], ts_ns[i])``."""

    symbols: tuple[str, ...]
    symbol: IntArray
    bid: IntArray
    ask: IntArray
    bid_qty: IntArray
    ask_qty: IntArray
    ts_event_ns: IntArray
    ts_ns: IntArray

    def __len__(self) -> int:
        return len(self.bid)

    def ticks(self) -> list[Tick]:
        """The rows as Ticks (for tests and the per-quote reference loop)."""
        names = self.symbols
        columns = (self.symbol.tolist(), self.bid.tolist(), self.ask.tolist(), self.bid_qty.tolist(),
                   self.ask_qty.tolist(), self.ts_event_ns.tolist(), self.ts_ns.tolist())
        return [Tick(names[s], b, a, bq, aq, te, t) for s, b, a, bq, aq, te, t in zip(*columns, strict=True)]

    def take(self, rows: npt.NDArray[np.intp] | slice) -> QuoteBlock:
        return QuoteBlock(self.symbols, self.symbol[rows], self.bid[rows], self.ask[rows], self.bid_qty[rows],
                          self.ask_qty[rows], self.ts_event_ns[rows], self.ts_ns[rows])


def _columns(parts: Sequence[QuoteBlock], symbols: tuple[str, ...]) -> QuoteBlock:
    if len(parts) == 1:
        return parts[0]
    return QuoteBlock(symbols, *(np.concatenate([getattr(part, name) for part in parts]) for name in _FIELDS))


_FIELDS: Final = ("symbol", "bid", "ask", "bid_qty", "ask_qty", "ts_event_ns", "ts_ns")


def _word(text: bytes) -> tuple[np.uint64, np.uint64]:
    """Up to 8 bytes -> (their little-endian word, the mask of their bytes)."""
    return np.uint64(int.from_bytes(text.ljust(8, b"\0"), "little")), _LOW[len(text)]


class _Words:
    """A chunk of whole lines, padded with _PAD_FRONT and _PAD_BACK zero bytes, with its unaligned 8-byte
    little-endian words: ``at(p)`` is the word of bytes ``p .. p+7`` for each position in ``p``."""

    __slots__ = ("bytes", "words")

    def __init__(self, padded: bytes) -> None:
        self.bytes = np.frombuffer(padded, dtype=np.uint8)
        self.words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))

    def at(self, positions: IntArray) -> _Words64:
        return self.words[positions]

    def matches(self, positions: IntArray, text: bytes) -> npt.NDArray[np.bool_]:
        ok = np.ones(len(positions), dtype=np.bool_)
        for offset in range(0, len(text), 8):
            expected, mask = _word(text[offset : offset + 8])
            ok &= (self.words[positions + offset] & mask) == expected
        return ok

    def digits(self, start: IntArray, end: IntArray, most: int) -> tuple[_Words64, npt.NDArray[np.bool_]]:
        """The unsigned integer spelled by bytes ``start .. end-1`` of each row (1..``most`` <= 19 digits) and
        whether they are all digits and that many."""
        length = end - start
        shortest, longest = int(length.min()), int(length.max())
        if shortest == longest:  # one length (timestamps, fractions): the masks are scalars
            ok = np.full(len(start), 1 <= shortest <= most, dtype=np.bool_)
            counts: list[int | IntArray] = [min(max(shortest - 8 * j, 0), 8) for j in range(3)]
            words = (longest + 7) // 8
        else:
            ok = (length >= 1) & (length <= most)
            clipped = np.clip(length, 0, 24)
            counts = [np.clip(clipped - 8 * j, 0, 8) for j in range(3)]
            words = (min(longest, 24) + 7) // 8
        value = None
        for j in range(words):
            keep = _HIGH[counts[j]]
            word = (self.words[end - 8 * (j + 1)] & keep) | (_ZEROS & ~keep)
            ok &= ((word & _HIGH_NIBBLES) | (((word + _SIXES) & _HIGH_NIBBLES) >> np.uint64(4))) == _THREES
            word = ((word & np.uint64(0x0F0F_0F0F_0F0F_0F0F)) * np.uint64(2561)) >> np.uint64(8)
            word = ((word & np.uint64(0x00FF_00FF_00FF_00FF)) * np.uint64(6553601)) >> np.uint64(16)
            word = ((word & np.uint64(0x0000_FFFF_0000_FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
            value = word if value is None else value + word * _POW10[8 * j]
        if value is None:
            value = np.zeros(len(start), dtype=np.uint64)
        return value, ok

    def json_int(self, start: IntArray, end: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """A JSON integer (no sign, no leading zero) that fits int64."""
        value, ok = self.digits(start, end, 19)
        ok &= ~((self.bytes[start] == 0x30) & (end - start > 1))
        ok &= value <= _INT64_MAX
        return value.astype(np.int64), ok

    def grid(self, start: IntArray, end: IntArray, places: int) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """A decimal string with exactly ``places`` decimals after at least one digit -> its count of 10**-places
        (the reference's ``grid_units`` fast path), at most 18 digits."""
        if places == 0:
            value, ok = self.digits(start, end, 18)
            return value.astype(np.int64), ok
        dot = end - places - 1
        whole, ok = self.digits(start, dot, 18 - places)
        fraction, fraction_ok = self.digits(dot + 1, end, places)
        ok &= fraction_ok & (self.bytes[np.maximum(dot, 0)] == 0x2E)
        return (whole * _POW10[places] + fraction).astype(np.int64), ok


@dataclass(frozen=True, slots=True)
class _Section:
    """The instruments in force (from the last Start record) as the fast path needs them."""

    keys: tuple[tuple[int, int, int], ...]  # per instrument: (symbol length, low word, high word)
    wanted: tuple[int, ...]  # per instrument: its index in the symbols asked for, or -1
    places: tuple[tuple[int, int] | None, ...]  # per instrument: (price places, quantity places), None: not 10**-k
    names: tuple[str, ...]


def _section(instruments: Mapping[str, Instrument], symbols: tuple[str, ...]) -> _Section:
    keys, wanted, places, names = [], [], [], []
    index = {symbol: i for i, symbol in enumerate(symbols)}
    for symbol, instrument in instruments.items():
        raw = symbol.encode()
        if not 1 <= len(raw) <= 16 or b'"' in raw or b"\\" in raw or not raw.isascii():
            continue  # never the fast path: the reference parses (and refuses or accepts) it
        padded = raw.ljust(16, b"\0")
        keys.append((len(raw), int.from_bytes(padded[:8], "little"), int.from_bytes(padded[8:], "little")))
        wanted.append(index.get(symbol, -1))
        tick_places, step_places = grid_places(instrument.tick_size), grid_places(instrument.step_size)
        places.append(None if tick_places is None or step_places is None else (tick_places, step_places))
        names.append(symbol)
    return _Section(tuple(keys), tuple(wanted), tuple(places), tuple(names))


class _Deferred(ReadStats):
    """The reference parser's skips, kept (not raised) with their line numbers until the chunk is in order."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[int, SkipReason, str]] = []

    def skip(self, path: str, number: int, reason: SkipReason, detail: str, *, strict: bool) -> None:
        self.pending.append((number, reason, detail))


_Rows = tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]
"""(line index in the chunk, symbol index, bid, ask, bid_qty, ask_qty, ts_event_ns, ts_ns) of parsed quotes."""


class _ColumnReader:
    """One file -> QuoteBlocks, with the counts in ``stats`` (shared with the other files of a run)."""

    def __init__(self, path: Path, stats: ReadStats, symbols: tuple[str, ...],
                 rust: Mapping[str, Instrument] | None, strict: bool, selected: bool, window: Window) -> None:
        self.path = path
        self.name = str(path)
        self.stats = stats
        self.symbols = symbols
        self.index = {symbol: i for i, symbol in enumerate(symbols)}
        self.strict = strict
        self.selected = selected
        self.window = window
        self.deferred = _Deferred()
        self.slow = LineReader(path, self.deferred, frozenset(symbols), rust, strict=False, selected=selected)
        self.section = _section({}, symbols)
        self.last_ns = -1
        self.lines = 0  # lines before the current chunk
        self.bulk: list[tuple[SkipReason, IntArray]] = []  # the chunk's skips beyond the first few: line indices
        self.done = False  # a quote past the window's end was read: the file ends there

    def blocks(self) -> Iterator[QuoteBlock]:
        front, back = bytes(_PAD_FRONT), bytes(_PAD_BACK)
        file, stored = open_recording(self.path)
        stats = self.stats
        counted = 0
        with file, stored:
            carry = b""
            size = max(CHUNK_BYTES // 16, 1)  # doubling up to CHUNK_BYTES: the first block is ready soon
            try:
                while True:
                    raw = file.read(size)
                    size = min(2 * size, CHUNK_BYTES)
                    position = stored.tell()
                    stats.input_bytes += position - counted
                    counted = position
                    if not raw:
                        break
                    cut = raw.rfind(b"\n") + 1
                    if not cut:
                        carry += raw
                        continue
                    block = self._chunk(b"".join((front, carry, memoryview(raw)[:cut], back)))
                    carry = raw[cut:]
                    if block is not None:
                        yield block
                    if self.done:
                        stats.input_bytes += stored_size(stored) - counted
                        return
                if carry:  # a last line without its newline, as ``for line in file`` gives it
                    block = self._chunk(b"".join((front, carry, back)), terminated=False)
                    if block is not None:
                        yield block
            except STREAM_ERRORS as e:
                raise RecordingError(f"{self.name}: a readable recording, was {e}") from e

    def _chunk(self, padded: bytes, *, terminated: bool = True) -> QuoteBlock | None:
        """Whole lines (padded) -> their quotes in time order; every line is counted or parsed, in order."""
        words = _Words(padded)
        raw = words.bytes
        ends = np.flatnonzero(raw == 10)  # each line's newline (padded coordinates)
        if not terminated:
            ends = np.append(ends, len(raw) - _PAD_BACK)
        lines = len(ends)
        starts = np.empty_like(ends)
        starts[0] = _PAD_FRONT
        starts[1:] = ends[:-1] + 1
        commas = np.flatnonzero(raw == 44)
        if len(commas) == _COMMAS * lines and (lines == 0 or (
                bool((commas[::_COMMAS] > starts).all()) and bool((commas[_COMMAS - 1 :: _COMMAS] < ends).all()))):
            first = np.arange(0, len(commas), _COMMAS)  # each line holds its 9 commas: no search needed
            template = np.ones(lines, dtype=np.bool_)
        else:
            first = np.searchsorted(commas, starts)
            template = np.searchsorted(commas, ends) - first == _COMMAS
            first = np.minimum(first, max(len(commas) - _COMMAS, 0))  # lines off the template: never indexed
        base = self.lines
        self.lines += lines
        parts: list[_Rows] = []
        slow = np.flatnonzero(~template).tolist()
        boundaries = [line for line in slow if b"Start" in self._text(padded, starts, ends, line)]
        begin = 0
        for boundary in [*boundaries, lines]:
            run_slow = [line for line in slow if begin <= line < boundary]
            fast = np.flatnonzero(template[begin:boundary]) + begin
            if len(fast):
                rows, failed = self._fast(words, starts, ends, commas, first, fast, base)
                parts.append(rows)
                if failed:
                    run_slow = sorted([*run_slow, *failed])
            for line in run_slow:
                self._slow(padded, starts, ends, line, base, parts)
            if boundary < lines:
                self._slow(padded, starts, ends, boundary, base, parts)
                self.section = _section(self.slow.instruments, self.symbols)
            begin = boundary + 1
        return self._ordered(parts, base, lines)

    @staticmethod
    def _text(padded: bytes, starts: IntArray, ends: IntArray, line: int) -> bytes:
        """The line with its newline (an unterminated last line: without, as ``for line in file`` gives it)."""
        return padded[int(starts[line]) : min(int(ends[line]) + 1, len(padded) - _PAD_BACK)]

    def _slow(self, padded: bytes, starts: IntArray, ends: IntArray, line: int, base: int,
              parts: list[_Rows]) -> None:
        tick = self.slow.parse(base + line + 1, self._text(padded, starts, ends, line))
        if tick is not None:
            row = (line, self.index[tick.symbol], tick.bid, tick.ask, tick.bid_qty, tick.ask_qty, tick.ts_event_ns,
                   tick.ts_ns)
            parts.append(tuple(np.array([value], dtype=np.int64) for value in row))  # type: ignore[arg-type]

    def _fast(self, words: _Words, starts: IntArray, ends: IntArray, commas: IntArray, first: IntArray,
              lines: npt.NDArray[np.intp], base: int) -> tuple[_Rows, list[int]]:
        """Lines with the template's commas -> the rows of those that are Md quotes of the section's instruments
        with every byte as the template has it (the segments exactly, digits, a known symbol), and the other
        lines (for the reference parser). A quote of a symbol not asked for is counted."""
        start, end, c0 = starts[lines], ends[lines], first[lines]
        comma = [commas[c0 + k] for k in range(_COMMAS)]
        ok = words.matches(start, _TEMPLATE[0]) & (words.bytes[end - 1] == 0x7D)
        anchors = [comma[k] + offset for k, offset in _ANCHORS]
        for anchor, text in zip(anchors, _TEMPLATE[1:], strict=True):
            ok &= words.matches(anchor, text)
        value_starts = [anchor + len(text) for anchor, text in zip(anchors, _TEMPLATE[1:], strict=True)]
        ok &= words.json_int(start + len(_TEMPLATE[0]), anchors[0])[1]  # seq: not used, but must be JSON
        ts, ts_ok = words.json_int(value_starts[0], anchors[1])
        event, event_ok = words.json_int(value_starts[6], end - 1)
        ok &= ts_ok & event_ok
        symbol_start, symbol_end = value_starts[1], anchors[2]
        length = symbol_end - symbol_start
        low = words.at(symbol_start) & _LOW[np.clip(length, 0, 8)]
        high = words.at(symbol_start + 8) & _LOW[np.clip(length - 8, 0, 8)]
        instrument = np.full(len(lines), -1, dtype=np.int64)
        section = self.section
        for i, (size, low_key, high_key) in enumerate(section.keys):
            instrument[(length == size) & (low == np.uint64(low_key)) & (high == np.uint64(high_key))] = i
        ok &= instrument >= 0
        columns = [np.zeros(len(lines), dtype=np.int64) for _ in range(4)]
        fields = [(value_starts[k], anchors[k + 1]) for k in range(2, 6)]  # bid, ask, bid_qty, ask_qty
        for grids in set(section.places):
            members = [i for i, places in enumerate(section.places) if places == grids]
            rows = np.flatnonzero(ok & np.isin(instrument, members)) if len(section.keys) > 1 else np.flatnonzero(ok)
            if not len(rows):
                continue
            if grids is None:
                ok[rows] = False
                continue
            whole = len(rows) == len(lines)
            for n, (field_start, field_end) in enumerate(fields):
                places = grids[0] if n < 2 else grids[1]
                if whole:
                    columns[n], value_ok = words.grid(field_start, field_end, places)
                    ok &= value_ok
                else:
                    value, value_ok = words.grid(field_start[rows], field_end[rows], places)
                    columns[n][rows] = value
                    ok[rows] &= value_ok
        failed = lines[~ok].tolist()
        if failed:
            keep = np.flatnonzero(ok)
            lines, instrument, ts, event = lines[keep], instrument[keep], ts[keep], event[keep]
            columns = [column[keep] for column in columns]
        wanted = np.array([*section.wanted, -1], dtype=np.int64)[instrument]
        unwanted = np.flatnonzero(wanted < 0)
        if len(unwanted):
            self._unknown(lines[unwanted], instrument[unwanted], base)
            keep = np.flatnonzero(wanted >= 0)
            lines, wanted, ts, event = lines[keep], wanted[keep], ts[keep], event[keep]
            columns = [column[keep] for column in columns]
        return (lines.astype(np.int64), wanted, *columns, event, ts), failed  # type: ignore[return-value]

    def _unknown(self, lines: npt.NDArray[np.intp], instrument: IntArray, base: int) -> None:
        """Quotes of instruments not asked for: the first few with their details, the rest counted (all of
        them, without details, when the symbols are a selection: not_selected is no problem)."""
        if self.selected:
            self.bulk.append((SkipReason.NOT_SELECTED, lines))
            return
        names = self.section.names
        pending = self.deferred.pending
        for line, i in zip(lines[:FIRST_PROBLEMS].tolist(), instrument[:FIRST_PROBLEMS].tolist(), strict=True):
            pending.append((base + line + 1, SkipReason.UNKNOWN_SYMBOL, unknown_symbol_detail(names[i])))
        self.bulk.append((SkipReason.UNKNOWN_SYMBOL, lines[FIRST_PROBLEMS:]))

    def _ordered(self, parts: list[_Rows], base: int, lines: int) -> QuoteBlock | None:
        """The chunk's rows in line order, without those older than a quote before them or outside the window;
        the chunk's lines and skips (up to the line past the window's end, if one is) in line order into
        ``stats`` (raising on the first problem in strict mode)."""
        block = None
        cut = None  # the chunk's line that ends the file (the first in order past the window's end)
        if parts:
            columns = [np.concatenate(column) if len(parts) > 1 else column[0] for column in zip(*parts, strict=True)]
            if len(parts) > 1:
                order = np.argsort(columns[0], kind="stable")
                columns = [column[order] for column in columns]
            line, symbol, bid, ask, bid_qty, ask_qty, event, ts = columns
            if len(line):
                block, cut = self._in_time(
                    line, QuoteBlock(self.symbols, symbol, bid, ask, bid_qty, ask_qty, event, ts), base)
        stats = self.stats
        stats.lines += lines if cut is None else cut + 1
        for reason, rows in self.bulk:
            stats.skipped[reason] += len(rows) if cut is None else int(np.count_nonzero(rows <= cut))
        self.bulk.clear()
        pending = self.deferred.pending
        if cut is not None:
            self.done = True
            last = base + cut + 1
            pending[:] = [problem for problem in pending if problem[0] <= last]
        if pending:
            pending.sort(key=lambda problem: problem[0])
            name, strict = self.name, self.strict
            for number, reason, detail in pending:
                stats.skip(name, number, reason, detail, strict=strict)
            pending.clear()
        return block

    def _in_time(self, line: IntArray, block: QuoteBlock, base: int) -> tuple[QuoteBlock | None, int | None]:
        """The rows not older than a row before them and inside the window, and the chunk line of the first in
        order at or after the window's end (None: none is)."""
        event = block.ts_event_ns
        previous = np.maximum.accumulate(event)
        previous[1:] = previous[:-1].copy()
        previous[0] = self.last_ns
        np.maximum(previous, self.last_ns, out=previous)
        late = np.flatnonzero(event < previous)
        self.last_ns = max(self.last_ns, int(event.max()))
        if len(late):
            pending = self.deferred.pending
            for row in late[:FIRST_PROBLEMS].tolist():
                pending.append((base + int(line[row]) + 1, SkipReason.OUT_OF_ORDER,
                                out_of_order_detail(int(event[row]), int(previous[row]))))
            self.bulk.append((SkipReason.OUT_OF_ORDER, line[late[FIRST_PROBLEMS:]]))
            keep = np.flatnonzero(event >= previous)
            if not len(keep):
                return None, None
            block, line = block.take(keep), line[keep]
            event = block.ts_event_ns
        stats = self.stats
        cut = None
        window = self.window
        if window.bounded:  # the rows kept are in time order
            past = len(event) if window.end_ns is None else int(np.searchsorted(event, window.end_ns, side="left"))
            before = 0 if window.start_ns is None else int(np.searchsorted(event[:past], window.start_ns, side="left"))
            if past < len(event):
                cut = int(line[past])
            stats.skipped[SkipReason.OUTSIDE_WINDOW] += before + (cut is not None)
            if before or past < len(event):
                block = block.take(slice(before, past))
                event = block.ts_event_ns
            if not len(event):
                return None, cut
        stats.quotes += len(event)
        low, high = int(event.min()), int(event.max())
        stats.first_ns = low if stats.first_ns is None else min(stats.first_ns, low)
        stats.last_ns = high if stats.last_ns is None else max(stats.last_ns, high)
        return block, cut


def read_columns(
    path: str | Path,
    stats: ReadStats,
    *,
    symbols: Sequence[str],
    rust_instruments: Mapping[str, Instrument] | None = None,
    strict: bool = False,
    selected: bool = False,
    window: Window = ALL_TIME,
) -> Iterator[QuoteBlock]:
    """The quotes of ``symbols`` in one recording, in file order, as blocks (symbol index = position in
    ``symbols``): exactly ``read_ticks``'s quotes and counts (``selected`` and ``window`` as there: it stops
    where ``read_ticks`` stops). A missing file is a RecordingError."""
    file = Path(path)
    if not file.is_file():
        raise RecordingError(f"{file}: an existing recording file, was not found")
    yield from _ColumnReader(file, stats, tuple(symbols), rust_instruments, strict, selected, window).blocks()


def merge_columns(sources: Sequence[Iterator[QuoteBlock]]) -> Iterator[QuoteBlock]:
    """Several recordings' blocks (over the same ``symbols``) as one stream in ``ts_event_ns`` order; ties keep
    the sources' order, as ``heapq.merge`` of their ticks does. Each step hands out every row that no unread row
    can precede (up to the smallest (newest time, source) of the sources still reading), so memory stays at
    about one block per source."""
    if len(sources) == 1:
        yield from sources[0]
        return
    pending: list[QuoteBlock | None] = [None] * len(sources)
    live = set(range(len(sources)))
    while True:
        for i in sorted(live):
            if pending[i] is None:
                block = next(sources[i], None)
                if block is None:
                    live.discard(i)
                else:
                    pending[i] = block
        held = [(i, block) for i, block in enumerate(pending) if block is not None]
        if not held:
            return
        horizon = min(((int(block.ts_event_ns[-1]), i) for i, block in held if i in live), default=None)
        parts = []
        for i, block in held:
            if horizon is None:
                cut = len(block)
            else:
                cut = int(np.searchsorted(block.ts_event_ns, horizon[0], side="right" if i <= horizon[1] else "left"))
            if cut:
                parts.append(block.take(slice(0, cut)))
                pending[i] = block.take(slice(cut, None)) if cut < len(block) else None
        if len(parts) == 1:
            yield parts[0]
        elif parts:
            merged = _columns(parts, parts[0].symbols)
            yield merged.take(np.argsort(merged.ts_event_ns, kind="stable"))
