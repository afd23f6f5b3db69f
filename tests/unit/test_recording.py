"""Reading market data back out of recordings (dma_bot.feed.recording): ours, the Rust original's, gzip, zstd."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import zstandard

from dma_bot.feed.recording import (
    ReadStats,
    RecordingError,
    SkipReason,
    merge_ticks,
    read_ticks,
    recording_instruments,
    rust_instruments,
)
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.05"), step_size=Decimal("0.01"))
INSTRUMENTS = {"BTCUSDT": BTC, "ETHUSDT": ETH}
TICKS = [
    Tick("BTCUSDT", 6_500_000, 6_500_002, 1_500, 2_000, 100, 101),
    Tick("ETHUSDT", 60_000, 60_001, 30, 45, 200, 201),
    Tick("BTCUSDT", 6_500_001, 6_500_003, 1, 7, 300, 301),
]


def _our_file(path: Path, ticks: list[Tick], extra: list[bytes] = ()) -> Path:  # type: ignore[assignment]
    encoder = JsonlEncoder(INSTRUMENTS)
    grids = {s: {"tick_size": str(i.tick_size), "step_size": str(i.step_size)} for s, i in INSTRUMENTS.items()}
    lines = [encoder.encode_control("Start", {"instruments": grids}, ts_ns=1)]
    lines += [encoder.encode(tick) for tick in ticks]
    path.write_bytes(b"".join(lines) + b"".join(extra))
    return path


def test_our_recording_gives_back_the_exact_ticks_and_its_instruments(tmp_path: Path) -> None:
    path = _our_file(tmp_path / "events.jsonl", TICKS)
    stats = ReadStats()

    ticks = list(read_ticks(path, stats))

    assert ticks == TICKS
    assert (stats.lines, stats.quotes, stats.first_ns, stats.last_ns) == (4, 3, 100, 300)
    assert stats.skipped[SkipReason.NOT_MD] == 1  # the Start
    assert {s: (i.tick_size, i.step_size) for s, i in recording_instruments(path).items()} == {
        "BTCUSDT": (Decimal("0.01"), Decimal("0.001")), "ETHUSDT": (Decimal("0.05"), Decimal("0.01"))}


def test_rust_recordings_are_read_in_cents_without_sizes_and_other_variants_counted(tmp_path: Path) -> None:
    """serde's externally tagged form; Sig/Ord/Exec/Note lines are counted as not market data."""
    lines = [
        {"Md": {"ts_ns": 10, "symbol": "BTCUSDT", "best_bid": 6500012, "best_ask": 6500015}},
        {"Sig": {"ts_ns": 11, "symbol": "BTCUSDT", "side": "Buy", "px": 6500015, "qty": 1}},
        {"Md": {"ts_ns": 12, "symbol": "BTCUSDT", "best_bid": 6500013, "best_ask": 6500016}},
        {"Ord": {"id": "x"}},
    ]
    path = tmp_path / "rust.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    stats = ReadStats()

    ticks = list(read_ticks(path, stats, rust_instruments=rust_instruments(["BTCUSDT"], Decimal("0.001"))))

    assert ticks == [Tick("BTCUSDT", 6500012, 6500015, 0, 0, 10, 10), Tick("BTCUSDT", 6500013, 6500016, 0, 0, 12, 12)]
    assert stats.skipped[SkipReason.NOT_MD] == 2


def test_bad_lines_out_of_order_and_unknown_symbols_are_counted_with_line_numbers(tmp_path: Path) -> None:
    late = Tick("BTCUSDT", 6_500_000, 6_500_001, 1, 1, 50, 51)  # older than the quote before it
    path = _our_file(tmp_path / "bad.jsonl", TICKS, [b"{not json\n"])
    encoder = JsonlEncoder(INSTRUMENTS)
    with path.open("ab") as file:
        file.write(encoder.encode(late))
        file.write(b'{"type":"Md","seq":9,"ts_ns":9,"v":1,"symbol":"BTCUSDT","bid":"1.005","ask":"2","bid_qty":"1",'
                   b'"ask_qty":"1","ts_event_ns":400}\n')
    stats = ReadStats()

    ticks = list(read_ticks(path, stats, symbols=["BTCUSDT"]))

    assert ticks == [TICKS[0], TICKS[2]]
    assert {r: n for r, n in stats.skipped.items() if n and r is not SkipReason.NOT_MD} == {
        SkipReason.BAD_LINE: 2, SkipReason.OUT_OF_ORDER: 1, SkipReason.UNKNOWN_SYMBOL: 1}
    assert [(number, reason) for _, number, reason, _ in stats.problems] == [
        (3, SkipReason.UNKNOWN_SYMBOL), (5, SkipReason.BAD_LINE), (6, SkipReason.OUT_OF_ORDER),
        (7, SkipReason.BAD_LINE)]
    with pytest.raises(RecordingError, match=r"bad.jsonl:3: symbol 'ETHUSDT' is not asked for$"):
        list(read_ticks(path, ReadStats(), symbols=["BTCUSDT"], strict=True))


def test_gzip_recordings_are_read_transparently_and_a_missing_file_is_one_line(tmp_path: Path) -> None:
    plain = _our_file(tmp_path / "events.jsonl", TICKS)
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    assert list(read_ticks(packed, ReadStats())) == TICKS
    with pytest.raises(RecordingError, match=r"nowhere.jsonl: an existing recording file, was not found$"):
        list(read_ticks(tmp_path / "nowhere.jsonl", ReadStats()))


def test_zstd_recordings_give_the_plain_files_ticks_across_frames_and_count_stored_bytes(tmp_path: Path) -> None:
    """Two frames (as ``cat a.zst b.zst`` makes) read as one file; input_bytes ends at the compressed size."""
    plain = _our_file(tmp_path / "events.jsonl", TICKS)
    data = plain.read_bytes()
    cut = data.index(b"\n", data.index(b"\n") + 1) + 1  # the Start and the first quote, then the rest
    packed = tmp_path / "events.jsonl.zst"
    compressor = zstandard.ZstdCompressor()
    packed.write_bytes(compressor.compress(data[:cut]) + compressor.compress(data[cut:]))
    stats = ReadStats()

    ticks = list(read_ticks(packed, stats))

    assert ticks == list(read_ticks(plain, ReadStats())) == TICKS
    assert (stats.lines, stats.quotes, stats.input_bytes) == (4, 3, packed.stat().st_size)
    assert recording_instruments(packed) == recording_instruments(plain) == INSTRUMENTS


def test_input_bytes_follow_the_reading_of_a_long_recording(tmp_path: Path) -> None:
    """Updated every few thousand lines while reading, not only at the end; the sum over files."""
    many = [Tick("BTCUSDT", 6_500_000, 6_500_002, 1, 1, n, n) for n in range(10_000)]
    path = _our_file(tmp_path / "long.jsonl", many)
    stats = ReadStats()
    seen = [stats.input_bytes for _ in read_ticks(path, stats)]

    assert 0 < seen[5_000] < path.stat().st_size and seen == sorted(seen)
    assert stats.input_bytes == path.stat().st_size
    list(read_ticks(path, stats))
    assert stats.input_bytes == 2 * path.stat().st_size


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_truncated_or_corrupt_zstd_recording_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    many = [Tick("BTCUSDT", 6_500_000 + n % 7, 6_500_010, 1, 1, n, n) for n in range(5_000)]
    packed = zstandard.ZstdCompressor().compress(_our_file(tmp_path / "events.jsonl", many).read_bytes())
    path = tmp_path / "events.jsonl.zst"
    path.write_bytes(packed[: len(packed) // 2] if damage == "truncated" else b"not zstd at all" + packed)

    with pytest.raises(RecordingError, match=r"events.jsonl.zst: a readable recording, was zstd [^\n]+$"):
        list(read_ticks(path, ReadStats()))
    if damage == "corrupt":  # the Start record is in the first bytes, so a truncated file still has it
        with pytest.raises(RecordingError, match=r"events.jsonl.zst: a readable recording, was zstd"):
            recording_instruments(path)


def test_several_recordings_merge_by_time() -> None:
    a = iter([TICKS[0], TICKS[2]])
    b = iter([TICKS[1]])

    assert list(merge_ticks([a, b])) == TICKS
