"""Unit tests of the JSONL record format (dma_bot.recorder.jsonl): exact lines, numbering, round trips."""

from __future__ import annotations

import random
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from dma_bot.errors import ProtocolError
from dma_bot.model.enums import ExecStatus, NoteKind, RejectReason, Side
from dma_bot.model.events import AccountSnapshot, ExecReport, Note, Order, RiskReject, Route, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.recorder.jsonl import (
    EVENT_TYPES,
    FORMAT_CACHE_LIMIT,
    Event,
    JsonlEncoder,
)
from dma_bot.recorder.jsonl_decode import decode_record, to_event

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))
HALF = Instrument(symbol="HALFUSD", tick_size=Decimal("0.5"), step_size=Decimal("1"))
ODD = Instrument(symbol='ODD"\\SYM', tick_size=Decimal("0.0001"), step_size=Decimal("0.1"))
INSTRUMENTS = {i.symbol: i for i in (BTC, HALF, ODD)}

TICK = Tick("BTCUSDT", 6500012, 6500013, 123456, 98765, 1_700_000_000_000_000_000, 1_700_000_000_000_100_000)
SIGNAL = Signal("mean_reversion", "BTCUSDT", Side.BUY, 6500000, 1000, 10, 11)
ORDER = Order(client_order_id="o-1", strategy="mean_reversion", symbol="BTCUSDT", side=Side.SELL,
              price=6500100, quantity=250, ts_signal_ns=10, ts_ns=12)
ROUTE = Route(venue="A", client_order_id="o-1-A", parent_order_id="o-1", strategy="mean_reversion",
              symbol="BTCUSDT", side=Side.SELL, price=6500100, quantity=200, ts_signal_ns=10, ts_ns=13)
EXEC = ExecReport(venue="A", symbol="BTCUSDT", client_order_id="o-1-A", venue_order_id="987",
                  side=Side.SELL, status=ExecStatus.PARTIALLY_FILLED, last_qty=50, last_price=6500100,
                  order_qty=200, cum_qty=50, leaves_qty=150, fee=Decimal("0.0325005"), fee_asset="USDT", trade_id=None,
                  reason="", ts_event_ns=14, ts_ns=15)
REJECT = RiskReject("ma_crossover", "BTCUSDT", Side.BUY, 6600000, 100, RejectReason.PRICE_DEVIATION,
                    "price 66000.00 is 153 bps from mid", 20, 21)
NOTE = Note(kind=NoteKind.LATE_REPORT, venue="A", symbol="BTCUSDT", client_order_id="o-1-A",
            detail="partially_filled (cum_qty 50) after filled (cum_qty 200): state kept", ts_ns=22)
ACCOUNT = AccountSnapshot(venue="BINANCE", balances=MappingProxyType({"BTC": Decimal("1.50000000"),
                                                                     "USDT": Decimal("100")}),
                          open_order_ids=("o-1-BINANCE", "o-2-BINANCE"), ts_ns=23)


def test_jsonl_encoder_each_type_has_its_exact_line_and_contiguous_seq() -> None:
    """Every event type encodes to its exact documented line, numbered 1, 2, 3... in encode order."""
    encoder = JsonlEncoder(INSTRUMENTS)

    lines = [encoder.encode(event) for event in (TICK, SIGNAL, ORDER, ROUTE, EXEC, REJECT, NOTE, ACCOUNT)]

    assert lines == [
        b'{"type":"Md","seq":1,"ts_ns":1700000000000100000,"v":1,"symbol":"BTCUSDT","bid":"65000.12",'
        b'"ask":"65000.13","bid_qty":"1.23456","ask_qty":"0.98765","ts_event_ns":1700000000000000000}\n',
        b'{"type":"Sig","seq":2,"ts_ns":11,"v":1,"strategy":"mean_reversion","symbol":"BTCUSDT",'
        b'"side":"BUY","price":"65000.00","quantity":"0.01000","ts_event_ns":10}\n',
        b'{"type":"Ord","seq":3,"ts_ns":12,"v":1,"client_order_id":"o-1","strategy":"mean_reversion",'
        b'"symbol":"BTCUSDT","side":"SELL","price":"65001.00","quantity":"0.00250","ts_signal_ns":10}\n',
        b'{"type":"Route","seq":4,"ts_ns":13,"v":1,"venue":"A","client_order_id":"o-1-A",'
        b'"parent_order_id":"o-1","strategy":"mean_reversion","symbol":"BTCUSDT","side":"SELL",'
        b'"price":"65001.00","quantity":"0.00200","ts_signal_ns":10}\n',
        b'{"type":"Exec","seq":5,"ts_ns":15,"v":1,"venue":"A","symbol":"BTCUSDT","side":"SELL",'
        b'"status":"partially_filled","order_qty":"0.00200","last_qty":"0.00050","last_px":"65001.00","cum_qty":"0.00050",'
        b'"leaves_qty":"0.00150","client_order_id":"o-1-A","venue_order_id":"987","trade_id":null,'
        b'"fee":"0.0325005","fee_asset":"USDT","reason":"","ts_event_ns":14}\n',
        b'{"type":"Reject","seq":6,"ts_ns":21,"v":1,"strategy":"ma_crossover","symbol":"BTCUSDT",'
        b'"side":"BUY","price":"66000.00","quantity":"0.00100","reason":"price_deviation",'
        b'"detail":"price 66000.00 is 153 bps from mid","ts_signal_ns":20}\n',
        b'{"type":"Note","seq":7,"ts_ns":22,"v":1,"kind":"late_report","venue":"A","symbol":"BTCUSDT",'
        b'"client_order_id":"o-1-A","detail":"partially_filled (cum_qty 50) after filled (cum_qty 200): '
        b'state kept"}\n',
        b'{"type":"Account","seq":8,"ts_ns":23,"v":1,"venue":"BINANCE","balances":{"BTC":"1.50000000",'
        b'"USDT":"100"},"open_order_ids":["o-1-BINANCE","o-2-BINANCE"]}\n',
    ]
    assert encoder.seq == 8
    assert encoder.counts == {"Md": 1, "Sig": 1, "Ord": 1, "Route": 1, "Exec": 1, "Reject": 1, "Note": 1,
                              "Account": 1, "Start": 0, "Stop": 0}


def test_jsonl_md_line_escapes_symbol_and_formats_coarse_grids() -> None:
    """The Md fast path still writes valid JSON for a symbol needing escapes and non-decimal grids."""
    encoder = JsonlEncoder(INSTRUMENTS)

    line = encoder.encode(Tick('ODD"\\SYM', 12345, 12346, 7, 70, 1, 2))
    half = encoder.encode(Tick("HALFUSD", 3, 4, 5, 6, 1, 2))

    assert orjson.loads(line)["symbol"] == 'ODD"\\SYM'
    assert orjson.loads(line)["bid"] == "1.2345" and orjson.loads(line)["bid_qty"] == "0.7"
    assert half == (b'{"type":"Md","seq":2,"ts_ns":2,"v":1,"symbol":"HALFUSD","bid":"1.5","ask":"2",'
                    b'"bid_qty":"5","ask_qty":"6","ts_event_ns":1}\n')


def test_jsonl_control_records_carry_fields_and_stop_counts_exclude_itself() -> None:
    """Start carries its fields; Stop carries counts of every record before it, Start included."""
    encoder = JsonlEncoder(INSTRUMENTS)

    start = encoder.encode_control("Start", {"version": "0.1.0", "max_loss": Decimal("100.50")}, ts_ns=5)
    encoder.encode(TICK)
    encoder.encode(TICK)
    stop = encoder.encode_control("Stop", {"clean": True}, ts_ns=9)

    assert start == b'{"type":"Start","seq":1,"ts_ns":5,"v":1,"version":"0.1.0","max_loss":"100.50"}\n'
    record = orjson.loads(stop)
    assert (record["type"], record["seq"], record["ts_ns"], record["clean"]) == ("Stop", 4, 9, True)
    assert record["counts"] == {"Md": 2, "Sig": 0, "Ord": 0, "Route": 0, "Exec": 0, "Reject": 0, "Note": 0,
                                "Account": 0, "Start": 1}
    assert encoder.counts["Stop"] == 1


def test_jsonl_control_refuses_reserved_keys_unknown_types_and_opaque_objects() -> None:
    """Control fields cannot overwrite type/seq/v/counts, and an object orjson cannot spell is refused."""

    class Secret:
        def __repr__(self) -> str:
            return "Secret('***')"

    encoder = JsonlEncoder(INSTRUMENTS)

    with pytest.raises(ValueError, match="seq"):
        encoder.encode_control("Start", {"seq": 9}, ts_ns=1)
    with pytest.raises(ValueError, match="counts"):
        encoder.encode_control("Stop", {"counts": {}}, ts_ns=1)
    with pytest.raises(ValueError, match="Start or Stop"):
        encoder.encode_control("Md", {}, ts_ns=1)
    with pytest.raises(TypeError, match="Secret"):
        encoder.encode_control("Start", {"api_key": Secret()}, ts_ns=1)
    assert encoder.seq == 0


def test_jsonl_encoder_refuses_unknown_event_type_and_symbol_without_using_a_seq() -> None:
    """A non-event or a symbol without instrument raises, and the failed line takes no seq number."""
    encoder = JsonlEncoder(INSTRUMENTS)

    with pytest.raises(TypeError, match="str"):
        encoder.encode("not an event")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="DOGEUSDT"):
        encoder.encode(TICK._replace(symbol="DOGEUSDT"))
    with pytest.raises(ValueError, match="DOGEUSDT"):
        encoder.encode(SIGNAL._replace(symbol="DOGEUSDT"))

    assert encoder.encode(TICK).startswith(b'{"type":"Md","seq":1,')


def test_jsonl_md_format_cache_overflow_keeps_lines_exact() -> None:
    """More distinct prices and quantities than the cache holds still encode exactly."""
    encoder = JsonlEncoder(INSTRUMENTS)
    ticks = [Tick("BTCUSDT", 1_000_000 + i, 1_000_001 + i, i, 2 * i + 1, i, i) for i in range(FORMAT_CACHE_LIMIT + 50)]

    decoded = [to_event(decode_record(encoder.encode(tick)), INSTRUMENTS) for tick in ticks]

    assert decoded == ticks


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice('ab-_Z9 "\\/\n\té€😀') for _ in range(rng.randrange(0, 12)))


def _random_event(rng: random.Random, type_: str) -> Event:
    instrument = rng.choice(list(INSTRUMENTS.values()))
    symbol = instrument.symbol
    side = rng.choice(list(Side))
    price = rng.randrange(0, 10**12)
    quantity = rng.randrange(0, 10**9)
    ts = rng.randrange(0, 2**63)
    text = _random_text(rng)
    if type_ == "Md":
        return Tick(symbol, price, price + rng.randrange(5), quantity, rng.randrange(10**9), ts, ts + 1)
    if type_ == "Sig":
        return Signal(text, symbol, side, price, quantity, ts, ts + 2)
    if type_ == "Reject":
        return RiskReject(text, symbol, side, price, quantity, rng.choice(list(RejectReason)),
                          _random_text(rng), ts, ts + 3)
    if type_ == "Ord":
        return Order(client_order_id=text, strategy="s", symbol=symbol, side=side, price=price,
                     quantity=quantity, ts_signal_ns=ts, ts_ns=ts + 4)
    if type_ == "Route":
        return Route(venue=_random_text(rng), client_order_id=text, parent_order_id=text[:3], strategy="s",
                     symbol=symbol, side=side, price=price, quantity=quantity, ts_signal_ns=ts, ts_ns=ts + 5)
    if type_ == "Note":
        return Note(kind=rng.choice(list(NoteKind)), venue=_random_text(rng), symbol=symbol, client_order_id=text,
                    detail=_random_text(rng), ts_ns=ts)
    if type_ == "Account":
        balances = {_random_text(rng): Decimal(rng.randrange(0, 10**12)).scaleb(-rng.randrange(0, 12))
                    for _ in range(rng.randrange(0, 5))}
        ids = tuple(_random_text(rng) for _ in range(rng.randrange(0, 4)))
        return AccountSnapshot(venue=_random_text(rng), balances=MappingProxyType(balances), open_order_ids=ids,
                               ts_ns=ts)
    fee = Decimal(rng.randrange(-10**6, 10**9)).scaleb(-rng.randrange(0, 12))
    return ExecReport(venue="B", symbol=symbol, client_order_id=text, venue_order_id=str(ts),
                      side=side, status=rng.choice(list(ExecStatus)), last_qty=quantity, last_price=price,
                      order_qty=rng.randrange(1, 10**6),
                      cum_qty=quantity + rng.randrange(10), leaves_qty=rng.randrange(10**6), fee=fee,
                      fee_asset=rng.choice(("USDT", "BNB", "")), trade_id=rng.choice((None, text)),
                      reason=_random_text(rng), ts_event_ns=ts, ts_ns=ts + 6)


def test_jsonl_round_trip_rebuilds_exact_events_over_seeded_random_events() -> None:
    """encode -> decode_record -> to_event gives back the very event, for every type and grid."""
    rng = random.Random(7)
    encoder = JsonlEncoder(INSTRUMENTS)
    events = [_random_event(rng, rng.choice(EVENT_TYPES)) for _ in range(3000)]

    lines = [encoder.encode(event) for event in events]
    records = [decode_record(line) for line in lines]
    rebuilt = [to_event(record, INSTRUMENTS) for record in records]

    assert [record["seq"] for record in records] == list(range(1, len(events) + 1))
    for original, copy in zip(events, rebuilt, strict=True):
        assert type(copy) is type(original)
        assert copy == original
    exec_fees = [(e.fee, c.fee) for e, c in zip(events, rebuilt, strict=True) if isinstance(e, ExecReport)]
    assert all(str(a) == str(b) for a, b in exec_fees)
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "one JSON object"),
        (b"[1, 2]", "one JSON object"),
        (b'{"type":"Nope","v":1}', "type: must be one of"),
        (b'{"type":"Md","v":2}', "v: must be 1"),
    ],
)
def test_jsonl_decode_record_refuses_malformed_lines(line: bytes, message: str) -> None:
    """A line that is not a versioned record of a known type raises ProtocolError."""
    with pytest.raises(ProtocolError, match=message):
        decode_record(line)


def _md_record(**changes: Any) -> dict[str, Any]:
    record = decode_record(JsonlEncoder(INSTRUMENTS).encode(TICK))
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bid": "65000.125"}, "bid: must be a multiple of 0.01"),
        ({"bid": "650.00.12"}, "bid: must be a decimal string"),
        ({"bid": "65000.1O"}, "bid: must be a decimal string"),
        ({"bid": 65000.12}, "bid: must be a decimal string"),
        ({"ask_qty": "NaN"}, "ask_qty: must be a multiple"),
        ({"ts_ns": "1"}, "ts_ns: must be an integer"),
        ({"symbol": "DOGEUSDT"}, "symbol: must be a known instrument"),
        ({"type": "Start"}, "must be an event type"),
    ],
)
def test_jsonl_to_event_refuses_off_grid_and_mistyped_fields(changes: dict[str, Any], message: str) -> None:
    """Off-grid prices, non-string decimals, mistyped ints, unknown symbols and control records raise."""
    with pytest.raises(ProtocolError, match=message):
        to_event(_md_record(**changes), INSTRUMENTS)


def test_jsonl_account_record_round_trips_exactly_with_its_decimal_spellings() -> None:
    """An Account line comes back as the very AccountSnapshot: balances equal, spelled alike, read-only."""
    account = to_event(decode_record(JsonlEncoder(INSTRUMENTS).encode(ACCOUNT)), INSTRUMENTS)

    assert account == ACCOUNT and type(account) is AccountSnapshot
    assert [str(amount) for amount in account.balances.values()] == ["1.50000000", "100"]
    with pytest.raises(TypeError):
        account.balances["BTC"] = Decimal(0)  # type: ignore[index]


def _account_record(**changes: Any) -> dict[str, Any]:
    record = decode_record(JsonlEncoder(INSTRUMENTS).encode(ACCOUNT))
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"venue": 7}, "Account venue: must be a string, was 7"),
        ({"balances": [["BTC", "1"]]}, "Account balances: must be an object of asset -> decimal string"),
        ({"balances": {"BTC": 1.5}}, r"Account balances\.BTC: must be a decimal string, was 1\.5"),
        ({"balances": {"BTC": "1.5.0"}}, r"Account balances\.BTC: must be a decimal string"),
        ({"balances": {"BTC": "Infinity"}}, r"Account balances\.BTC: must be a finite decimal string"),
        ({"open_order_ids": "o-1"}, "Account open_order_ids: must be a list of strings"),
        ({"open_order_ids": ["o-1", 2]}, "Account open_order_ids: must be a list of strings"),
    ],
)
def test_jsonl_account_record_refuses_mistyped_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        to_event(_account_record(**changes), INSTRUMENTS)


def test_jsonl_to_event_reports_missing_field() -> None:
    """A record missing a field names it."""
    record = _md_record()
    del record["ask"]

    with pytest.raises(ProtocolError, match="missing field 'ask'"):
        to_event(record, INSTRUMENTS)


def test_jsonl_to_event_accepts_equivalent_decimal_spellings() -> None:
    """A hand-written price such as '65000.120' or '6.500012E4' decodes to the same ticks."""
    tick = to_event(_md_record(bid="65000.120", ask="6.500013E4"), INSTRUMENTS)

    assert isinstance(tick, Tick)
    assert (tick.bid, tick.ask) == (6500012, 6500013)


def _orjson_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def test_jsonl_sig_and_reject_templates_match_orjson_byte_for_byte() -> None:
    """Property: the Sig and Reject f-string templates write exactly what orjson writes for the same dict,
    also for strategy names and details that need escaping or are not ASCII."""
    rng = random.Random(3)
    encoder = JsonlEncoder(INSTRUMENTS)
    for seq in range(1, 2001):
        event = _random_event(rng, rng.choice(("Sig", "Reject")))
        instrument = INSTRUMENTS[event.symbol]
        common = {"strategy": event.strategy, "symbol": event.symbol, "side": event.side,
                  "price": instrument.format_price(event.price), "quantity": instrument.format_qty(event.quantity)}
        if isinstance(event, Signal):
            expected = _orjson_line({"type": "Sig", "seq": seq, "ts_ns": event.ts_ns, "v": 1, **common,
                                     "ts_event_ns": event.ts_event_ns})
        else:
            assert isinstance(event, RiskReject)
            expected = _orjson_line({"type": "Reject", "seq": seq, "ts_ns": event.ts_ns, "v": 1, **common,
                                     "reason": event.reason, "detail": event.detail,
                                     "ts_signal_ns": event.ts_signal_ns})

        assert encoder.encode(event) == expected


def test_jsonl_ord_route_exec_templates_match_orjson_byte_for_byte() -> None:
    """Property: the Ord, Route and Exec templates write exactly what orjson writes for the same dict, for ids,
    venues and reasons that need escaping or are not ASCII, trade ids present or null, any fee spelling."""
    rng = random.Random(5)
    encoder = JsonlEncoder(INSTRUMENTS)
    for seq in range(1, 3001):
        event = _random_event(rng, rng.choice(("Ord", "Route", "Exec")))
        instrument = INSTRUMENTS[event.symbol]
        price, qty = instrument.format_price, instrument.format_qty
        if isinstance(event, Order):
            record = {"type": "Ord", "seq": seq, "ts_ns": event.ts_ns, "v": 1,
                      "client_order_id": event.client_order_id, "strategy": event.strategy, "symbol": event.symbol,
                      "side": event.side, "price": price(event.price), "quantity": qty(event.quantity),
                      "ts_signal_ns": event.ts_signal_ns}
        elif isinstance(event, Route):
            record = {"type": "Route", "seq": seq, "ts_ns": event.ts_ns, "v": 1, "venue": event.venue,
                      "client_order_id": event.client_order_id, "parent_order_id": event.parent_order_id,
                      "strategy": event.strategy, "symbol": event.symbol, "side": event.side,
                      "price": price(event.price), "quantity": qty(event.quantity), "ts_signal_ns": event.ts_signal_ns}
        else:
            assert isinstance(event, ExecReport)
            record = {"type": "Exec", "seq": seq, "ts_ns": event.ts_ns, "v": 1, "venue": event.venue,
                      "symbol": event.symbol, "side": event.side, "status": event.status,
                      "order_qty": qty(event.order_qty), "last_qty": qty(event.last_qty),
                      "last_px": price(event.last_price), "cum_qty": qty(event.cum_qty),
                      "leaves_qty": qty(event.leaves_qty), "client_order_id": event.client_order_id,
                      "venue_order_id": event.venue_order_id, "trade_id": event.trade_id, "fee": str(event.fee),
                      "fee_asset": event.fee_asset, "reason": event.reason, "ts_event_ns": event.ts_event_ns}
        assert encoder.encode(event) == _orjson_line(record), record


def test_jsonl_timestamps_that_are_not_ints_go_through_orjson_or_are_refused() -> None:
    """A Sig, Reject, Ord, Route or Exec with a non-int timestamp is spelled by orjson (never printed raw);
    such an Md raises."""
    encoder = JsonlEncoder(INSTRUMENTS)

    sig = orjson.loads(encoder.encode(SIGNAL._replace(ts_ns=True)))
    reject = orjson.loads(encoder.encode(REJECT._replace(ts_signal_ns=2.5)))
    with pytest.raises(ValueError, match="Md timestamps must be int"):
        encoder.encode(TICK._replace(ts_event_ns=1.0))

    assert (sig["seq"], sig["ts_ns"]) == (1, True)
    assert (reject["seq"], reject["ts_signal_ns"]) == (2, 2.5)
    assert encoder.seq == 2
    order = orjson.loads(encoder.encode(ORDER._replace(ts_ns=1.5)))
    route = orjson.loads(encoder.encode(ROUTE._replace(ts_signal_ns=False)))
    report = orjson.loads(encoder.encode(EXEC._replace(ts_event_ns=7.25)))
    assert (order["seq"], order["ts_ns"], route["ts_signal_ns"], report["ts_event_ns"]) == (3, 1.5, False, 7.25)


def test_jsonl_encode_batch_appends_the_same_lines_as_encode() -> None:
    """encode_batch appends, in order, exactly the lines encode would give, numbering on from the last seq."""
    events: list[Event] = [TICK, SIGNAL, REJECT, ORDER, ROUTE, EXEC, TICK]
    reference = JsonlEncoder(INSTRUMENTS)
    one_by_one = [reference.encode(event) for event in events]
    encoder = JsonlEncoder(INSTRUMENTS)
    lines = [b"already there\n"]

    encoder.encode_batch(events, lines)

    assert lines == [b"already there\n", *one_by_one]
    assert encoder.counts == reference.counts


def test_jsonl_encode_batch_error_keeps_the_lines_before_it() -> None:
    """An event that cannot be encoded stops the batch; the lines before it are kept with their seq."""
    encoder = JsonlEncoder(INSTRUMENTS)
    lines: list[bytes] = []

    with pytest.raises(ValueError, match="DOGEUSDT"):
        encoder.encode_batch([TICK, SIGNAL, TICK._replace(symbol="DOGEUSDT"), TICK], lines)

    assert [orjson.loads(line)["seq"] for line in lines] == [1, 2]
    assert encoder.seq == 2


def test_jsonl_symbols_on_one_grid_share_strings_and_stay_exact() -> None:
    """Two symbols on the same grid (and a price grid equal to a quantity grid) encode exactly."""
    same = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.01"))
    instruments = {**INSTRUMENTS, same.symbol: same}
    encoder = JsonlEncoder(instruments)
    ticks = [Tick(symbol, 100 + i, 101 + i, 100 + i, 7, i, i) for i in range(300) for symbol in ("BTCUSDT", "ETHUSDT")]

    decoded = [to_event(decode_record(encoder.encode(tick)), instruments) for tick in ticks]

    assert decoded == ticks


def test_jsonl_encoder_for_a_type_writes_what_encode_writes() -> None:
    """``encoder_for(T)`` is ``encode`` without the dispatch: the same lines and seq numbers for every event
    type; a type that is not an event is a TypeError naming it."""
    rng = random.Random(9)
    by_dispatch, by_type = JsonlEncoder(INSTRUMENTS), JsonlEncoder(INSTRUMENTS)
    for _ in range(600):
        event = _random_event(rng, rng.choice(("Ord", "Route", "Exec")))
        assert by_type.encoder_for(type(event))(event) == by_dispatch.encode(event)
    assert by_type.seq == by_dispatch.seq == 600 and by_type.counts == by_dispatch.counts
    with pytest.raises(TypeError, match="no encoder for str"):
        by_type.encoder_for(str)


def test_jsonl_exec_fee_that_is_not_a_decimal_is_escaped_as_orjson_would() -> None:
    """A Decimal fee is only quoted (its str never needs escaping); any other value goes through the escaping
    path, so the line stays valid JSON."""
    encoder = JsonlEncoder(INSTRUMENTS)
    for fee in (Decimal("-1.5E+3"), Decimal("0E-12"), 'odd "fee"\\'):
        record = orjson.loads(encoder.encode(EXEC._replace(fee=fee)))  # type: ignore[arg-type]
        assert record["fee"] == str(fee)
