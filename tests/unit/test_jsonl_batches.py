"""Unit tests of the column-wise JSONL encoding of TickBatch, SignalBatch and RejectBatch: every batch is the
very bytes, ``seq`` numbers and counts of its rows encoded one by one (dma_bot.recorder.jsonl)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import orjson
import pytest

from dma_bot.model.enums import RejectReason
from dma_bot.model.events import RejectBatch, SignalBatch, TickBatch, tick_batch
from dma_bot.recorder.jsonl import FORMAT_CACHE_LIMIT, Event, JsonlEncoder
from dma_bot.recorder.jsonl_decode import decode_record, to_event
from tests.unit.test_jsonl import INSTRUMENTS

SYMBOLS = ("BTCUSDT", "HALFUSD", 'ODD"\\SYM')
SIZES = (1, 2, 3, 17, 64, 200, 257, 300)
Batch = TickBatch | SignalBatch | RejectBatch


def _text(rng: random.Random) -> str:
    """A short text that often needs JSON escaping or is not ASCII."""
    return "".join(rng.choice('ab-_Z9 "\\/\n\t\x01é€😀') for _ in range(rng.randrange(0, 10)))


def _prices(rng: random.Random, size: int) -> list[int]:
    """Half from a small pool (cache hits once seen), half all over the range (cache misses)."""
    return [rng.randrange(1, 40) if rng.random() < 0.5 else rng.randrange(0, 10**12) for _ in range(size)]


def _signal_batch(rng: random.Random, size: int) -> SignalBatch:
    return SignalBatch(
        rng.choice(("mean_reversion", "ma_crossover", _text(rng))), rng.choice(SYMBOLS),
        np.array([rng.random() < 0.5 for _ in range(size)], dtype=np.bool_),
        np.array(_prices(rng, size), dtype=np.int64), rng.choice((1, 1000, rng.randrange(0, 10**9))),
        rng.randrange(0, 2**63), rng.randrange(0, 2**63),
    )


def _reject_batch(rng: random.Random, size: int, details: list[str]) -> RejectBatch:
    return RejectBatch(
        rng.choice(("vol_breakout", 'risk "a"\\b\n', "é😀")), rng.choice(SYMBOLS),
        np.array([rng.random() < 0.5 for _ in range(size)], dtype=np.bool_),
        np.array(_prices(rng, size), dtype=np.int64), rng.choice((7, rng.randrange(0, 10**9))),
        [rng.choice(list(RejectReason)) for _ in range(size)], details,
        rng.randrange(0, 2**63), rng.randrange(0, 2**63),
    )


def _assert_batches_encode_as_their_rows(batches: Sequence[Batch]) -> None:
    """Each batch's bytes are its rows' lines one by one (numbered on from the last seq, counted alike), and
    every line decodes back to its row; the memo caches stay bounded."""
    batched, single = JsonlEncoder(INSTRUMENTS), JsonlEncoder(INSTRUMENTS)
    for batch in batches:
        rows = batch.rows()
        before = batched.seq

        lines = batched.encode(batch)

        assert lines == b"".join(single.encode(row) for row in rows)
        assert batched.seq == single.seq == before + len(rows)
        assert batched.counts == single.counts
        decoded = [to_event(decode_record(line), INSTRUMENTS) for line in lines.splitlines(keepends=True)]
        assert decoded == rows
        assert len(batched._json_strings) <= FORMAT_CACHE_LIMIT
        assert all(len(f.prices) <= FORMAT_CACHE_LIMIT for f in batched._formats.values())


def test_jsonl_tick_batch_encodes_to_the_lines_of_its_rows_one_by_one() -> None:
    """A TickBatch is one Md line per row, byte for byte the rows' lines in order, numbered and counted
    alike; grids off the power of ten, escaped symbols and cache misses and overflows included."""
    rng = random.Random(9)
    batches = []
    for symbol in SYMBOLS:
        for size in (1, 3, 257):
            bids = [rng.randrange(1, 3 * FORMAT_CACHE_LIMIT) for _ in range(size)]
            batches.append(tick_batch(symbol, bids, [b + rng.randrange(0, 4) for b in bids],
                                      [rng.randrange(0, 10**7) for _ in range(size)],
                                      [rng.randrange(0, 10**7) for _ in range(size)], 5 + size, 7))
    batched, single = JsonlEncoder(INSTRUMENTS), JsonlEncoder(INSTRUMENTS)
    for _ in range(40):  # enough rows to overflow the format caches more than once
        for batch in batches:
            assert batched.encode(batch) == b"".join(single.encode(row) for row in batch.rows())
    assert batched.seq == single.seq == 40 * sum(len(b) for b in batches)
    assert batched.counts == single.counts
    line = batched.encode(batches[0])
    assert to_event(decode_record(line), INSTRUMENTS) == batches[0].rows()[0]


def test_jsonl_signal_batch_has_its_exact_lines() -> None:
    """A SignalBatch spells one documented Sig line per row, the side picked by ``buy``."""
    encoder = JsonlEncoder(INSTRUMENTS)
    batch = SignalBatch("mean_reversion", "BTCUSDT", np.array([True, False]), np.array([6500000, 6500001]),
                        1000, 10, 11)

    lines = encoder.encode(batch)

    assert lines == (
        b'{"type":"Sig","seq":1,"ts_ns":11,"v":1,"strategy":"mean_reversion","symbol":"BTCUSDT",'
        b'"side":"BUY","price":"65000.00","quantity":"0.01000","ts_event_ns":10}\n'
        b'{"type":"Sig","seq":2,"ts_ns":11,"v":1,"strategy":"mean_reversion","symbol":"BTCUSDT",'
        b'"side":"SELL","price":"65000.01","quantity":"0.01000","ts_event_ns":10}\n'
    )
    assert (encoder.seq, encoder.counts["Sig"]) == (2, 2)


def test_jsonl_signal_batches_encode_to_the_lines_of_their_rows_one_by_one() -> None:
    """Seeded random SignalBatches (sizes 1..300, both sides, escaped symbols and strategy names, prices
    hitting and missing the grid cache, more distinct prices than it holds) give their rows' exact lines."""
    rng = random.Random(11)
    batches = [_signal_batch(rng, rng.choice(SIZES)) for _ in range(160)]
    assert sum(len(b) for b in batches) > FORMAT_CACHE_LIMIT

    _assert_batches_encode_as_their_rows(batches)


def test_jsonl_reject_batches_encode_to_the_lines_of_their_rows_one_by_one() -> None:
    """Seeded random RejectBatches (every reason, escaped details repeating and new, more distinct details
    and prices than the caches hold) give their rows' exact lines."""
    rng = random.Random(12)
    batches = []
    for number in range(240):
        size = rng.choice(SIZES)
        repeating = [rng.choice(("", "rate 5/s", 'quote "x"\\y', "price 66000.00 is 153 bps from mid"))
                     for _ in range(size)]
        details = [f"{_text(rng)} #{number}.{i}" for i in range(size)] if number % 3 else repeating
        batches.append(_reject_batch(rng, size, details))
    assert set().union(*(b.reasons for b in batches)) == set(RejectReason)
    assert len({d for b in batches for d in b.details}) > FORMAT_CACHE_LIMIT

    _assert_batches_encode_as_their_rows(batches)


def test_jsonl_batches_of_every_kind_number_on_from_each_other() -> None:
    """Tick, Signal and Reject batches mixed with single events share one seq sequence and the counts."""
    rng = random.Random(13)
    signals = _signal_batch(rng, 5)
    batches = [tick_batch("HALFUSD", [1, 2], [3, 4], [5, 6], [7, 8], 1, 2), signals,
               _reject_batch(rng, 3, ["a", "b", "c"]), signals]
    events: list[Event] = [batches[0], signals.rows()[0], batches[1], batches[2], batches[2].rows()[1], batches[3]]
    encoder, single = JsonlEncoder(INSTRUMENTS), JsonlEncoder(INSTRUMENTS)
    lines: list[bytes] = []

    encoder.encode_batch(events, lines)

    rows = [row for event in events for row in (event.rows() if isinstance(event, Batch) else [event])]
    assert b"".join(lines) == b"".join(single.encode(row) for row in rows)
    assert [orjson.loads(line)["seq"] for line in b"".join(lines).splitlines()] == list(range(1, 18))
    assert encoder.counts == single.counts
    assert (encoder.counts["Md"], encoder.counts["Sig"], encoder.counts["Reject"]) == (2, 11, 4)


@pytest.mark.parametrize(("ts_a", "ts_b"), [(True, 5), (5, 2.5), (1.0, 2.0)])
def test_jsonl_signal_and_reject_batches_with_timestamps_not_ints_encode_as_their_rows(
    ts_a: object, ts_b: object
) -> None:
    """Timestamps that are not exact ints take the rows' orjson path: still the rows' exact lines."""
    rng = random.Random(14)
    signals = _signal_batch(rng, 4)
    rejects = _reject_batch(rng, 3, ["x", '"y"', "x"])
    signals = SignalBatch(signals.strategy, signals.symbol, signals.buy, signals.price, signals.quantity, ts_a, ts_b)
    rejects = RejectBatch(rejects.strategy, rejects.symbol, rejects.buy, rejects.price, rejects.quantity,
                          rejects.reasons, rejects.details, ts_a, ts_b)  # type: ignore[arg-type]
    batched, single = JsonlEncoder(INSTRUMENTS), JsonlEncoder(INSTRUMENTS)

    for batch in (signals, rejects):
        assert batched.encode(batch) == b"".join(single.encode(row) for row in batch.rows())

    assert batched.seq == single.seq == 7
    assert batched.counts == single.counts


def test_jsonl_signal_and_reject_batches_refuse_an_unknown_symbol_without_using_a_seq() -> None:
    """A batch of a symbol without instrument raises like its rows would, and takes no seq number."""
    encoder = JsonlEncoder(INSTRUMENTS)
    buy, price = np.array([True, False]), np.array([1, 2])

    with pytest.raises(ValueError, match="'NOPE' has no instrument"):
        encoder.encode(SignalBatch("s", "NOPE", buy, price, 1, 2, 3))
    with pytest.raises(ValueError, match="'NOPE' has no instrument"):
        encoder.encode(RejectBatch("s", "NOPE", buy, price, 1, [RejectReason.QUANTITY] * 2, ["", ""], 2, 3))

    assert encoder.seq == 0 and encoder.counts["Sig"] == encoder.counts["Reject"] == 0


def test_jsonl_tick_batch_refuses_an_unknown_symbol_without_using_a_seq() -> None:
    """A TickBatch of a symbol without instrument raises and takes no seq number."""
    encoder = JsonlEncoder(INSTRUMENTS)
    with pytest.raises(ValueError, match="'NOPE' has no instrument"):
        encoder.encode(tick_batch("NOPE", [1], [2], [3], [4], 5, 6))
    assert encoder.seq == 0 and encoder.counts["Md"] == 0
