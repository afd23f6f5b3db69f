"""Tests of reading a JSONL file back (dma_bot.recorder.jsonl_decode): bad lines are skipped and counted."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dma_bot.errors import ProtocolError
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.recorder.jsonl_decode import (
    MAX_SKIPPED_LINE_NUMBERS,
    SkippedLines,
    SkipReason,
    decode_record,
    iter_records,
    read_records,
    to_event,
)

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))
INSTRUMENTS = {"BTCUSDT": BTC}
START_NS = 1_700_000_000_000_000_000


def _tick(i: int) -> Tick:
    return Tick("BTCUSDT", 6_500_000 + i, 6_500_001 + i, 1000 + i, 2000 + i, START_NS + i, START_NS + i + 1)


def _section(ticks: range, **start_fields: object) -> list[bytes]:
    encoder = JsonlEncoder(INSTRUMENTS)
    lines = [encoder.encode_control("Start", start_fields, ts_ns=START_NS)]
    lines += [encoder.encode(_tick(i)) for i in ticks]
    lines.append(encoder.encode_control("Stop", {"clean": True}, ts_ns=START_NS))
    return lines


def test_read_records_skips_a_torn_line_before_the_next_sections_start(tmp_path: Path) -> None:
    """A line cut short, then the next run's newline and Start saying torn_line: the fragment is skipped
    as TORN with its line number, every other record is read."""
    first = _section(range(2))
    torn = first[2][:40]  # the second Md, cut after 40 bytes; no Stop
    second = _section(range(2, 3), previous_section={"clean": False, "stop": False, "torn_line": True})
    path = tmp_path / "torn.jsonl"
    path.write_bytes(b"".join(first[:2]) + torn + b"\n" + b"".join(second))

    records, skipped = read_records(path)

    assert [r["type"] for r in records] == ["Start", "Md", "Start", "Md", "Stop"]
    assert [to_event(r, INSTRUMENTS) for r in records if r["type"] == "Md"] == [_tick(0), _tick(2)]
    assert skipped.lines == [(3, SkipReason.TORN)]
    assert skipped.counts == {SkipReason.TORN: 1, SkipReason.NOT_JSON: 0, SkipReason.NOT_A_RECORD: 0}
    assert skipped.total == 1


def test_read_records_skips_a_torn_last_line_without_its_newline(tmp_path: Path) -> None:
    """The file ends inside a line (the run is still cut short): TORN, the lines before it are read."""
    lines = _section(range(3))
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b"".join(lines[:3]) + lines[3][:-20])

    records, skipped = read_records(path)

    assert [r["seq"] for r in records] == [1, 2, 3]
    assert skipped.lines == [(4, SkipReason.TORN)]


def test_read_records_keeps_a_whole_last_record_that_lost_only_its_newline(tmp_path: Path) -> None:
    """A last line that is a whole record but for its b"\\n" is read, not skipped."""
    lines = _section(range(1))
    path = tmp_path / "no-newline.jsonl"
    path.write_bytes(b"".join(lines)[:-1])

    records, skipped = read_records(path)

    assert [r["type"] for r in records] == ["Start", "Md", "Stop"]
    assert skipped.total == 0 and skipped.lines == []


def test_iter_records_classifies_each_kind_of_bad_line() -> None:
    """Garbage not followed by a torn_line Start is NOT_JSON (an empty line too); JSON that is not a record
    of this schema is NOT_A_RECORD; of two bad lines before a torn_line Start only the second is TORN."""
    start_after_torn = _section(range(0), previous_section={"torn_line": True})[0]
    good = _section(range(1))
    lines = [
        good[0],
        b"garbage\n",
        good[1],
        b"\n",
        b"[1, 2]\n",
        b'{"type":"Nope","v":1}\n',
        b'{"type":"Md","v":2}\n',
        b'{"type":"Md","seq":9,"ts_ns":1,"v":1,"sym\n',
        b'{"type":"Md","seq":10,"ts_n\n',
        start_after_torn,
        good[2],
    ]
    skipped = SkippedLines()

    records = list(iter_records(lines, skipped))

    assert [r["type"] for r in records] == ["Start", "Md", "Start", "Stop"]
    assert skipped.lines == [
        (2, SkipReason.NOT_JSON),
        (4, SkipReason.NOT_JSON),
        (5, SkipReason.NOT_A_RECORD),
        (6, SkipReason.NOT_A_RECORD),
        (7, SkipReason.NOT_A_RECORD),
        (8, SkipReason.NOT_JSON),
        (9, SkipReason.TORN),
    ]
    assert skipped.counts == {SkipReason.TORN: 1, SkipReason.NOT_JSON: 3, SkipReason.NOT_A_RECORD: 3}


def test_iter_records_streams_lazily_and_counts_as_it_goes() -> None:
    """Records come one by one as lines are read; the count covers the lines read so far."""
    good = _section(range(1))
    skipped = SkippedLines()
    records = iter_records(iter([b"bad\n", *good]), skipped)

    assert next(records)["type"] == "Start"
    assert skipped.lines == [(1, SkipReason.NOT_JSON)]
    assert [r["type"] for r in records] == ["Md", "Stop"]


def test_skipped_lines_keeps_a_bounded_list_of_line_numbers_but_counts_all() -> None:
    """Past MAX_SKIPPED_LINE_NUMBERS the line numbers are no longer kept; the counts still are."""
    skipped = SkippedLines()
    bad = [b"[]\n"] * (MAX_SKIPPED_LINE_NUMBERS + 5)

    assert list(iter_records(bad, skipped)) == []

    assert skipped.counts[SkipReason.NOT_A_RECORD] == MAX_SKIPPED_LINE_NUMBERS + 5
    assert len(skipped.lines) == MAX_SKIPPED_LINE_NUMBERS
    assert skipped.lines[-1] == (MAX_SKIPPED_LINE_NUMBERS, SkipReason.NOT_A_RECORD)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"type":"Md","seq":10,"ts_n', "must be one JSON object"),
        (b"[1]\n", "must be one JSON object"),
        (b'{"type":"Nope","v":1}\n', "JSONL type: must be one of"),
        (b'{"type":"Md","v":2}\n', "JSONL v: must be 1, was 2"),
    ],
)
def test_decode_record_stays_strict_for_a_single_line(line: bytes, message: str) -> None:
    """decode_record refuses a torn or foreign line with a ProtocolError; only the file readers skip."""
    with pytest.raises(ProtocolError, match=message):
        decode_record(line)
