"""The column reader (dma_bot.feed.recording_columns) gives exactly what the line-by-line reference reader gives.

Every case compares ``read_columns`` with ``read_ticks`` on the same file: quotes, order, counts per reason,
the first problems with their line numbers, first/last timestamps and, with ``strict``, the same error. Small
chunks put line, section and tie boundaries inside and across chunks.
"""

from __future__ import annotations

import gzip
import random
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

import dma_bot.feed.recording_columns as columns
from dma_bot.feed.recording import (
    ALL_TIME,
    QUIET_REASONS,
    LineReader,
    ReadStats,
    RecordingError,
    SkipReason,
    Window,
    merge_ticks,
    read_ticks,
    rust_instruments,
)
from dma_bot.feed.recording_columns import merge_columns, read_columns
from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                 base_asset="BTC", quote_asset="USDT")
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.05"), step_size=Decimal("0.01"))  # not a 10**-k grid
SOL = Instrument(symbol="SOLUSDT", tick_size=Decimal("1"), step_size=Decimal("0.1"))
INSTRUMENTS = {"BTCUSDT": BTC, "ETHUSDT": ETH, "SOLUSDT": SOL}


def _walk(rng: random.Random, n: int, t0: int, symbols: list[str]) -> list[Tick]:
    ticks = []
    bid = {symbol: 6_500_000 if symbol == "BTCUSDT" else 3_000 for symbol in symbols}
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        bid[symbol] += rng.randint(-3, 3)
        ts = t0 + i * 1_000 + rng.choice((0, 0, 0, 7))
        ticks.append(Tick(symbol, bid[symbol], bid[symbol] + rng.randint(1, 3), rng.randint(0, 10**7),
                          rng.randint(1, 5000), ts, ts if i % 5 else ts + 3))
    return ticks


def _section(encoder: JsonlEncoder, ticks: list[Tick], instruments: dict[str, Instrument]) -> list[bytes]:
    lines = [encoder.encode_control("Start", {"instruments": instrument_fields(instruments)}, ts_ns=1)]
    lines += [encoder.encode(tick) for tick in ticks]
    lines.append(encoder.encode(Signal("mean_reversion", ticks[0].symbol, Side.BUY, ticks[0].ask, 3, 1, 2)))
    lines.append(encoder.encode_control("Stop", {}, ts_ns=2))
    return lines


def _mixed_file(path: Path, rng: random.Random) -> Path:
    """Two sections, other records, and every kind of line the fast path must hand to the reference parser."""
    encoder = JsonlEncoder(INSTRUMENTS)
    first = _walk(rng, 700, 10**18, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    second = _walk(rng, 500, 10**18 + 10**9, ["BTCUSDT", "SOLUSDT"])
    lines = _section(encoder, first, INSTRUMENTS) + _section(encoder, second, {"BTCUSDT": BTC, "SOLUSDT": SOL})
    md = lines[5].decode()
    odd = [
        b"{not json\n",
        b"\n",
        b"[1,2,3]\n",
        md.replace('"bid":"', '"bix":"').encode(),  # same shape, another key: not an Md the reader knows
        md.replace('"type":"Md"', '"type":"Mx"').encode(),
        md.replace('"seq":', '"seq":0').encode(),  # a JSON integer with a leading zero: not JSON
        md.replace('"ts_ns":', '"ts_ns":-').encode(),
        md.replace('"symbol":"', '"symbol":"X').encode(),  # no instrument for it
        md.replace('","ask":"', '1","ask":"').encode(),  # off the grid of ETH or one more decimal
        md.replace('"bid":"', '"bid":".').encode(),
        md.replace('"bid":"', '"bid":" ').encode(),
        md.replace('"v":1', '"v":2').encode(),  # still an Md (v is not read): the reference parses it
        md.replace('"ts_event_ns":', '"ts_event_ns": ').encode(),  # whitespace: still JSON
        md.replace('"ts_event_ns":', '"ts_event_ns":1').encode(),  # far in the future: later ones are late
        md.replace(',"v":1', ',"v":1,"extra":"a,b"').encode(),
        orjson.dumps({"type": "Md", "symbol": "BTCUSDT", "bid": "1.00", "ask": "1.01", "bid_qty": "1", "ask_qty": "1",
                      "ts_event_ns": 5, "ts_ns": 5, "seq": 1}) + b"\n",  # keys in another order
        md.replace('"symbol":"', '"symbol":"\\u0042').replace("BTCUSDT", "TCUSDT", 1).encode(),  # an escape
    ]
    for line in odd:
        lines.insert(rng.randrange(1, len(lines)), line)
    path.write_bytes(b"".join(lines) + md.encode().rstrip(b"\n"))  # a last line without its newline
    return path


def _both(path: Path, symbols: list[str], *, strict: bool = False, rust: dict[str, Instrument] | None = None,
          selected: bool = False, window: Window = ALL_TIME) -> tuple[list[Tick], ReadStats, list[Tick], ReadStats]:
    reference, fast = ReadStats(), ReadStats()
    ticks = list(read_ticks(path, reference, symbols=symbols, rust_instruments=rust, strict=strict,
                            selected=selected, window=window))
    rows = [tick for block in read_columns(path, fast, symbols=symbols, rust_instruments=rust, strict=strict,
                                           selected=selected, window=window)
            for tick in block.ticks()]
    return ticks, reference, rows, fast


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
@pytest.mark.parametrize("symbols", [["BTCUSDT", "ETHUSDT", "SOLUSDT"], ["SOLUSDT", "BTCUSDT"], ["XRPUSDT"]])
def test_column_reader_equals_the_reference_on_a_mixed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           chunk: int, symbols: list[str]) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    path = _mixed_file(tmp_path / "mixed.jsonl", random.Random(5))

    slow_lines: list[int] = []
    parse = LineReader.parse

    def counted(reader: LineReader, number: int, line: bytes) -> Tick | None:
        slow_lines.append(number)
        return parse(reader, number, line)

    ticks, reference, rows, fast = _both(path, symbols)
    monkeypatch.setattr(LineReader, "parse", counted)
    list(read_columns(path, ReadStats(), symbols=symbols))

    assert rows == ticks
    assert fast == reference
    # Only the odd lines and ETHUSDT's (its 0.05 grid is not 10**-k) reached the reference parser.
    eth = path.read_bytes().count(b'"symbol":"ETHUSDT"')
    assert len(slow_lines) <= eth + 30 < reference.lines - 500
    if symbols != ["XRPUSDT"]:
        assert len(ticks) > 500 and reference.problems  # the file really has quotes and problems


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_strict_raises_the_reference_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    path = _mixed_file(tmp_path / "mixed.jsonl", random.Random(9))
    symbols = ["BTCUSDT", "SOLUSDT"]  # ETHUSDT quotes are problems too

    with pytest.raises(RecordingError) as expected:
        list(read_ticks(path, ReadStats(), symbols=symbols, strict=True))
    with pytest.raises(RecordingError) as got:
        list(read_columns(path, ReadStats(), symbols=symbols, strict=True))

    assert str(got.value) == str(expected.value)


def test_out_of_order_quotes_are_skipped_as_the_reference_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", 300)
    rng = random.Random(3)
    ticks = _walk(rng, 400, 10**15, ["BTCUSDT", "SOLUSDT"])
    shuffled = [tick._replace(ts_event_ns=tick.ts_event_ns - rng.choice((0, 0, 5_000, 50_000))) for tick in ticks]
    encoder = JsonlEncoder(INSTRUMENTS)
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"".join(_section(encoder, shuffled, INSTRUMENTS)))

    reference_ticks, reference, rows, fast = _both(path, ["BTCUSDT", "SOLUSDT"])

    assert rows == reference_ticks
    assert fast == reference
    assert reference.skipped["out_of_order"] > 50


def test_rust_format_goes_through_the_reference_parser(tmp_path: Path) -> None:
    lines = [{"Md": {"ts_ns": 10 + i, "symbol": "BTCUSDT", "best_bid": 6500012 + i, "best_ask": 6500015 + i}}
             for i in range(50)]
    lines.insert(7, {"Sig": {"ts_ns": 11}})
    path = tmp_path / "rust.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    rust = rust_instruments(["BTCUSDT"], Decimal("0.001"))

    ticks, reference, rows, fast = _both(path, ["BTCUSDT"], rust=rust)

    assert rows == ticks and len(ticks) == 50
    assert fast == reference


@pytest.mark.parametrize("chunk", [100, 1 << 20])
def test_merged_files_equal_the_reference_merge_ties_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              chunk: int) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    encoder = JsonlEncoder(INSTRUMENTS)
    paths = []
    for index in range(3):
        rng = random.Random(index)
        ticks = _walk(rng, 300, 0, ["BTCUSDT", "SOLUSDT"])
        ticks = [tick._replace(ts_event_ns=(tick.ts_event_ns // 7_000) * 7_000) for tick in ticks]  # many ties
        path = tmp_path / f"r{index}.jsonl"
        path.write_bytes(b"".join(_section(encoder, ticks, INSTRUMENTS)))
        paths.append(path)
    symbols = ["BTCUSDT", "SOLUSDT"]

    expected = list(merge_ticks([read_ticks(path, ReadStats(), symbols=symbols) for path in paths]))
    got = [tick for block in merge_columns([read_columns(path, ReadStats(), symbols=symbols) for path in paths])
           for tick in block.ticks()]

    assert got == expected and len(got) == 900


_T0 = 10**18


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
@pytest.mark.parametrize("window", [Window(_T0 + 200_000), Window(None, _T0 + 500_000),
                                    Window(_T0 + 100_000, _T0 + 10**9 + 100_000)])
@pytest.mark.parametrize("selected", [False, True])
def test_column_reader_equals_the_reference_with_a_window_and_a_selection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, window: Window, selected: bool) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    path = _mixed_file(tmp_path / "mixed.jsonl", random.Random(5))

    ticks, reference, rows, fast = _both(path, ["SOLUSDT", "BTCUSDT"], selected=selected, window=window)

    assert rows == ticks
    assert fast == reference
    assert len(ticks) > 100 and reference.skipped[SkipReason.OUTSIDE_WINDOW] > 0
    assert all((window.start_ns or 0) <= tick.ts_event_ns < (window.end_ns or 2**63) for tick in ticks)
    quiet = {reason for _, _, reason, _ in reference.problems} & QUIET_REASONS
    assert not quiet  # skipped on purpose: never a problem
    if selected:  # ETHUSDT's quotes (and the one of a symbol without an instrument) are left out, not problems
        assert reference.skipped[SkipReason.NOT_SELECTED] > 100 and reference.skipped[SkipReason.UNKNOWN_SYMBOL] == 0
    else:
        assert reference.skipped[SkipReason.UNKNOWN_SYMBOL] > 100 and reference.skipped[SkipReason.NOT_SELECTED] == 0


@pytest.mark.parametrize("chunk", [64, 1 << 20])
@pytest.mark.parametrize("window", [Window(), Window(_T0 + 300_000, _T0 + 600_000)])
def test_strict_with_a_selection_raises_the_reference_error_or_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, window: Window) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    path = _mixed_file(tmp_path / "mixed.jsonl", random.Random(9))

    def outcome(read: object) -> str:
        try:
            list(read(path, ReadStats(), symbols=["BTCUSDT", "SOLUSDT"], strict=True, selected=True,  # type: ignore
                      window=window))
        except RecordingError as e:
            return str(e)
        return "no error"

    assert outcome(read_columns) == outcome(read_ticks) != "no error"
    assert "is not asked for" not in outcome(read_ticks)  # ETHUSDT is not selected: no problem


@pytest.mark.parametrize("chunk", [300, 1 << 20])
@pytest.mark.parametrize(("symbols", "selected"), [(["BTCUSDT", "SOLUSDT"], False), (["BTCUSDT"], False),
                                                   (["BTCUSDT"], True)])
def test_reading_stops_at_the_window_end_and_counts_the_file_as_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, symbols: list[str], selected: bool) -> None:
    """The rest of the file is not read: here it is a truncated gzip stream, an error for a full read. Nothing
    after the quote that ends the window is counted (SOLUSDT's quotes, when not asked for, are counted in bulk)."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", chunk)
    ticks = _walk(random.Random(4), 30_000, _T0, ["BTCUSDT", "SOLUSDT"])
    data = b"".join(_section(JsonlEncoder(INSTRUMENTS), ticks, INSTRUMENTS))
    path = tmp_path / "long.jsonl.gz"
    packed = gzip.compress(data)
    path.write_bytes(packed[: len(packed) * 3 // 5])
    window = Window(_T0 + 1_000_000, _T0 + 3_000_000)  # quotes 1,000 .. 3,000 of 30,000
    with pytest.raises(RecordingError, match=r"long\.jsonl\.gz: a readable recording"):
        list(read_ticks(path, ReadStats()))

    got, reference, rows, fast = _both(path, symbols, window=window, selected=selected)

    assert rows == got == [tick for tick in ticks if _T0 + 1_000_000 <= tick.ts_event_ns < _T0 + 3_000_000
                           and tick.symbol in symbols]
    assert fast == reference
    ends = next(i for i, tick in enumerate(ticks) if tick.ts_event_ns >= _T0 + 3_000_000 and tick.symbol in symbols)
    assert reference.lines == 1 + ends + 1  # the Start, the quotes up to the first past the end
    assert reference.lines < data.count(b"\n") // 5
    wanted = sum(tick.symbol in symbols for tick in ticks[:1_000])
    assert reference.skipped[SkipReason.OUTSIDE_WINDOW] == wanted + 1  # before it, and the quote that ends it
    others = SkipReason.NOT_SELECTED if selected else SkipReason.UNKNOWN_SYMBOL
    assert reference.skipped[others] == sum(tick.symbol not in symbols for tick in ticks[:ends])
    assert reference.input_bytes == path.stat().st_size


def test_a_selection_on_the_rust_format_leaves_other_symbols_out_without_problems(tmp_path: Path) -> None:
    lines = [{"Md": {"ts_ns": 10 + i, "symbol": "BTCUSDT" if i % 3 else "ETHUSDT", "best_bid": 6500012 + i,
                     "best_ask": 6500015 + i}} for i in range(60)]
    path = tmp_path / "rust.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    rust = rust_instruments(["BTCUSDT"], Decimal("0.001"))

    ticks, reference, rows, fast = _both(path, ["BTCUSDT"], rust=rust, selected=True, window=Window(20))

    assert rows == ticks and [tick.ts_event_ns for tick in ticks] == [t for t in range(20, 70) if (t - 10) % 3]
    assert fast == reference
    assert (reference.skipped[SkipReason.NOT_SELECTED], reference.skipped[SkipReason.OUTSIDE_WINDOW]) == (20, 6)
    assert reference.problems == [] and reference.skipped[SkipReason.BAD_LINE] == 0
