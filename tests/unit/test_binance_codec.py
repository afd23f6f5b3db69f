"""binance.codec: market frames, user-data events, REST bodies and WS API envelopes, on the payload files."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from dma_bot.binance import wire as wire_helpers
from dma_bot.binance.codec import (
    AccountUpdate,
    AccountUpdateKind,
    AssetBalance,
    Ignored,
    MarketControl,
    MarketControlKind,
    OrderState,
    RateLimit,
    ServerShutdown,
    StreamTerminated,
    Trade,
    WsResponse,
    build_cancel_order_params,
    build_my_trades_params,
    build_new_order_params,
    build_query_order_params,
    build_ws_request,
    parse_cancel_response,
    parse_market_frame,
    parse_my_trades,
    parse_order_response,
    parse_query_order,
    parse_user_event,
    parse_ws_message,
    parse_ws_response,
)
from dma_bot.binance.errors import Disposition
from dma_bot.binance.filters import parse_exchange_info
from dma_bot.binance.signing import signed_payload
from dma_bot.errors import ProtocolError
from dma_bot.model import ExecReport, ExecStatus, Instrument, Route, Side, Tick

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
SYMBOLS = {
    s: r.instrument for s, r in parse_exchange_info(json.loads((PAYLOADS / "exchange_info.json").read_text())).items()
}
BTC = SYMBOLS["BTCUSDT"]
VENUE = "BINANCE"
RECV = 1_760_000_000_123_456_789
MS = 1_000_000


def _raw(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def _json(name: str) -> dict:
    return json.loads(_raw(name))


def _report(**fields: object) -> ExecReport:
    """The NEW report of the payload order, with ``fields`` changed."""
    base = {
        "venue": VENUE,
        "symbol": "BTCUSDT",
        "client_order_id": "r1a2b3c7-BINANCE",
        "venue_order_id": "4293153",
        "side": Side.BUY,
        "status": ExecStatus.ACK,
        "order_qty": 300,
        "last_qty": 0,
        "last_price": 0,
        "cum_qty": 0,
        "leaves_qty": 300,
        "fee": Decimal(0),
        "fee_asset": "",
        "trade_id": None,
        "reason": "",
        "ts_event_ns": 1760000000100 * MS,
        "ts_ns": RECV,
    }
    return ExecReport(**{**base, **fields})  # type: ignore[arg-type]


def _route(**fields: object) -> Route:
    base = {"venue": VENUE, "client_order_id": "r1a2b3c7-BINANCE", "parent_order_id": "r1a2b3c7", "strategy": "mr"}
    base |= {"symbol": "BTCUSDT", "side": Side.BUY, "price": 6500000, "quantity": 300, "ts_signal_ns": 1, "ts_ns": 2}
    return Route(**{**base, **fields})  # type: ignore[arg-type]


# -- market frames ------------------------------------------------------------------------------------------


def test_parse_market_frame_raw_book_ticker_is_a_tick_in_ticks_and_steps() -> None:
    """Doc example; BNBUSDT tick 0.0001, step 0.01; no event time in Spot bookTicker, so both stamps are recv."""
    tick = parse_market_frame(_raw("book_ticker_raw"), SYMBOLS, RECV)

    assert tick == Tick("BNBUSDT", 253519, 253652, 3121, 4066, RECV, RECV)
    assert type(tick) is Tick


def test_parse_market_frame_combined_book_ticker_unwraps_data() -> None:
    tick = parse_market_frame(_raw("book_ticker_combined").decode(), SYMBOLS, RECV)

    assert tick == Tick("BNBUSDT", 253520, 253652, 200, 4066, RECV, RECV)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "market_subscribe_reply",
            MarketControl(kind=MarketControlKind.REPLY, request_id=1, ts_event_ns=RECV, ts_ns=RECV),
        ),
        (
            "market_list_subscriptions_reply",
            MarketControl(
                kind=MarketControlKind.REPLY,
                request_id=3,
                result=["bnbusdt@bookTicker", "btcusdt@bookTicker"],
                ts_event_ns=RECV,
                ts_ns=RECV,
            ),
        ),
        (
            "market_error",
            MarketControl(
                kind=MarketControlKind.ERROR,
                request_id=5,
                code=0,
                message="Unknown property",
                ts_event_ns=RECV,
                ts_ns=RECV,
            ),
        ),
        (
            "server_shutdown_raw",
            MarketControl(kind=MarketControlKind.SERVER_SHUTDOWN, ts_event_ns=1770123456789 * MS, ts_ns=RECV),
        ),
        (
            "server_shutdown_combined",
            MarketControl(kind=MarketControlKind.SERVER_SHUTDOWN, ts_event_ns=1770123456789 * MS, ts_ns=RECV),
        ),
    ],
)
def test_parse_market_frame_control_frames(name: str, expected: MarketControl) -> None:
    assert parse_market_frame(_raw(name), SYMBOLS, RECV) == expected


@pytest.mark.parametrize(
    "frame",
    [
        {"e": "aggTrade", "E": 1, "s": "BNBBTC", "a": 1, "p": "0.001", "q": "100", "f": 1, "l": 1, "T": 1, "m": True},
        {
            "stream": "btcusdt@depth",
            "data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []},
        },
        {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]},
    ],
)
def test_parse_market_frame_payloads_not_decoded_here_are_none(frame: dict) -> None:
    assert parse_market_frame(orjson.dumps(frame), SYMBOLS, RECV) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"b": "25.35190001"}, r"BNBUSDT\.b: a multiple of 0\.0001"),
        ({"b": "25.35195"}, r"BNBUSDT\.b: a multiple of 0\.0001"),
        ({"B": "31.215"}, r"BNBUSDT\.B: a multiple of 0\.01"),
        ({"a": 25.3652}, r"BNBUSDT\.a: a decimal string, was 25\.3652"),
        ({"A": None}, r"BNBUSDT\.A: a decimal string, was None"),
        ({"A": "-1"}, r"BNBUSDT\.A: a non-negative decimal string, was '-1'"),
        ({"b": "1e3"}, r"BNBUSDT\.b: a non-negative decimal string"),
        ({"b": "1_000"}, r"BNBUSDT\.b: a non-negative decimal string"),
        ({"b": " 25"}, r"BNBUSDT\.b: a non-negative decimal string"),
        ({"b": ""}, r"BNBUSDT\.b: a non-negative decimal string, was ''"),
        ({"b": ".5"}, r"BNBUSDT\.b: a non-negative decimal string"),
        ({"b": "\u0662\u0665"}, r"BNBUSDT\.b: a non-negative decimal string"),
        ({"b": "1" * 5000}, r"BNBUSDT\.b: a decimal string of at most 40 characters"),
        ({"b": "1." + "0" * 39}, r"BNBUSDT\.b: a decimal string of at most 40 characters"),
        ({"s": "XRPUSDT"}, r"bookTicker\.s: one of the configured symbols, was 'XRPUSDT'"),
        ({"s": ["BNBUSDT"]}, r"bookTicker\.s: one of the configured symbols, was \['BNBUSDT'\]"),
    ],
)
def test_parse_market_frame_bad_book_ticker_names_the_field(change: dict, message: str) -> None:
    frame = {**_json("book_ticker_raw"), **change}

    with pytest.raises(ProtocolError, match=message):
        parse_market_frame(orjson.dumps(frame), SYMBOLS, RECV)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", r"market frame: a JSON object, was b'not json'"),
        (b"[1, 2]", r"market frame: a JSON object, was \[1, 2\]"),
        (b'{"stream": "x", "data": [1]}', r"market frame\.data: an object under a stream name"),
        (b'{"data": {"u": 1}}', r"market frame\.data: an object under a stream name"),
        (b'{"foo": 1}', r"market frame: a bookTicker, a control reply or an event, was keys \['foo'\]"),
        (b'{"e": 5}', r"market frame\.e: an event name, was 5"),
        (b'{"e": "serverShutdown"}', r"serverShutdown\.E: an integer, was None"),
        (b'{"result": null, "id": [1]}', r"market control\.id: an integer, a string or null"),
    ],
)
def test_parse_market_frame_malformed_frames_raise(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_market_frame(raw, SYMBOLS, RECV)


GRIDS = [("0.01", "0.00001"), ("0.00000100", "0.00010000"), ("1", "1"), ("0.5", "0.25"), ("10", "0.1"), ("25", "3")]


@pytest.mark.parametrize(("tick", "step"), GRIDS)
def test_book_ticker_round_trip_property(tick: str, step: str) -> None:
    """Property: canonical string -> wire (as is, and padded to 8 places like Binance) -> ticks -> same string."""
    rng = random.Random(f"{tick}/{step}")
    instrument = Instrument(symbol="XYZUSDT", tick_size=Decimal(tick), step_size=Decimal(step))
    symbols = {"XYZUSDT": instrument}
    for _ in range(400):
        bid, ask, bid_qty, ask_qty = (rng.randrange(0, 10 ** rng.randrange(1, 12)) for _ in range(4))
        canonical = [instrument.format_price(bid), instrument.format_price(ask)]
        canonical += [instrument.format_qty(bid_qty), instrument.format_qty(ask_qty)]
        for wire in (canonical, [f"{Decimal(text):.8f}" for text in canonical]):
            frame = orjson.dumps({"u": 1, "s": "XYZUSDT", "b": wire[0], "a": wire[1], "B": wire[2], "A": wire[3]})

            tick_ = parse_market_frame(frame, symbols, RECV)

            assert isinstance(tick_, Tick)
            assert (tick_.bid, tick_.ask, tick_.bid_qty, tick_.ask_qty) == (bid, ask, bid_qty, ask_qty)
            prices = (instrument.format_price(tick_.bid), instrument.format_price(tick_.ask))
            assert [*prices, instrument.format_qty(tick_.bid_qty), instrument.format_qty(tick_.ask_qty)] == canonical


@pytest.mark.parametrize("size", ["0.01", "0.00000100", "1", "0.5", "10"])
def test_grid_units_agree_with_decimal_arithmetic(size: str) -> None:
    """Property: the fast string path equals Decimal(text) / size, and off-grid text is refused, never rounded."""
    rng = random.Random(size)
    grid_size = Decimal(size)
    grid = wire_helpers._grid(grid_size)
    for _ in range(3000):
        places = rng.randrange(0, 10)
        fraction = f".{rng.randrange(10**places):0{places}d}" if places else rng.choice(("", "."))
        text = f"{rng.randrange(0, 10**7)}{fraction}"
        units = Decimal(text) / grid_size
        if units == units.to_integral_value():
            assert grid.units(text, "w", "k") == int(units), text
        else:
            with pytest.raises(ProtocolError, match=r"w\.k: a multiple of"):
                grid.units(text, "w", "k")


def test_grid_units_longest_accepted_text() -> None:
    """40 characters are read exactly; longer text is refused before int() sees it."""
    assert wire_helpers._grid(Decimal("0.0001")).units("1." + "0" * 38, "w", "k") == 10_000


def test_grid_memo_stays_bounded() -> None:
    grid = wire_helpers._grid(Decimal("0.00000001"))

    for units in range(wire_helpers._MEMO_LIMIT * 2 + 10):
        assert grid.units(f"{units}.00000000", "w", "k") == units * 10**8

    assert len(grid._memo) <= wire_helpers._MEMO_LIMIT


# -- user data events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("execution_report_new", _report()),
        (
            "execution_report_partially_filled",
            _report(
                status=ExecStatus.PARTIALLY_FILLED,
                last_qty=100,
                last_price=6500000,
                cum_qty=100,
                leaves_qty=200,
                fee=Decimal("0.00000100"),
                fee_asset="BTC",
                trade_id="3001",
                ts_event_ns=1760000000200 * MS,
            ),
        ),
        (
            "execution_report_filled",
            _report(
                status=ExecStatus.FILLED,
                last_qty=200,
                last_price=6499999,
                cum_qty=300,
                leaves_qty=0,
                fee=Decimal("0.00000200"),
                fee_asset="BTC",
                trade_id="3002",
                ts_event_ns=1760000000300 * MS,
            ),
        ),
        (
            "execution_report_canceled",
            _report(
                client_order_id="r1a2b3c8-BINANCE",
                venue_order_id="4293154",
                side=Side.SELL,
                status=ExecStatus.CANCELED,
                cum_qty=100,
                leaves_qty=0,
                ts_event_ns=1760000000400 * MS,
            ),
        ),
        (
            "execution_report_rejected",
            _report(
                client_order_id="r1a2b3c9-BINANCE",
                venue_order_id="4293155",
                status=ExecStatus.REJECTED,
                leaves_qty=0,
                reason="INSUFFICIENT_BALANCES",
                ts_event_ns=1760000000500 * MS,
            ),
        ),
        (
            "execution_report_expired_ioc",
            _report(
                client_order_id="r1a2b3d0-BINANCE",
                venue_order_id="4293156",
                status=ExecStatus.EXPIRED,
                order_qty=500,
                cum_qty=200,
                leaves_qty=0,
                reason="UNFILLED_IOC_QUANTITY_EXPIRED",
                ts_event_ns=1760000000600 * MS,
            ),
        ),
        (
            "execution_report_expired_in_match",
            _report(
                client_order_id="r1a2b3d1-BINANCE",
                venue_order_id="4293157",
                side=Side.SELL,
                status=ExecStatus.EXPIRED,
                order_qty=100,
                leaves_qty=0,
                ts_event_ns=1760000000700 * MS,
            ),
        ),
    ],
)
def test_parse_user_event_execution_reports(name: str, expected: ExecReport) -> None:
    """Each payload maps to exactly the facts it states: last vs cumulative, side from S, C before c."""
    assert parse_user_event(_raw(name), VENUE, SYMBOLS, RECV) == expected


def test_parse_user_event_bare_and_mapping_inputs_equal_the_wrapped_bytes() -> None:
    wrapped = _json("execution_report_filled")

    from_bytes = parse_user_event(orjson.dumps(wrapped), VENUE, SYMBOLS, RECV)

    assert parse_user_event(wrapped["event"], VENUE, SYMBOLS, RECV) == from_bytes
    assert parse_user_event(json.dumps(wrapped["event"]), VENUE, SYMBOLS, RECV) == from_bytes


@pytest.mark.parametrize(
    ("x", "big_x", "fill", "status"),
    [
        ("NEW", "NEW", False, ExecStatus.ACK),
        ("TRADE", "PARTIALLY_FILLED", True, ExecStatus.PARTIALLY_FILLED),
        ("TRADE", "FILLED", True, ExecStatus.FILLED),
        ("CANCELED", "CANCELED", False, ExecStatus.CANCELED),
        ("REJECTED", "REJECTED", False, ExecStatus.REJECTED),
        ("EXPIRED", "EXPIRED", False, ExecStatus.EXPIRED),
        ("TRADE_PREVENTION", "EXPIRED_IN_MATCH", False, ExecStatus.EXPIRED),
        ("REPLACED", "NEW", False, ExecStatus.ACK),
        ("REPLACED", "PARTIALLY_FILLED", False, ExecStatus.PARTIALLY_FILLED),
    ],
)
def test_parse_user_event_every_execution_type_and_status(x: str, big_x: str, fill: bool, status: ExecStatus) -> None:
    """Status comes from X only; the leaves are 0 exactly when the status is terminal."""
    event = _json("execution_report_new")["event"] | {"x": x, "X": big_x, "z": "0.00100000"}
    if fill:
        event |= {"l": "0.00100000", "L": "65000.00000000", "t": 77}

    report = parse_user_event(event, VENUE, SYMBOLS, RECV)

    assert isinstance(report, ExecReport)
    assert report.status is status
    assert report.last_qty == (100 if fill else 0)
    assert report.trade_id == ("77" if fill else None)
    assert report.leaves_qty == (0 if status.is_terminal else 200)


def test_parse_user_event_pending_new_and_foreign_symbols_are_ignored_with_a_reason() -> None:
    event = _json("execution_report_new")["event"]

    pending = parse_user_event(event | {"X": "PENDING_NEW"}, VENUE, SYMBOLS, RECV)
    foreign = parse_user_event(event | {"s": "DOGEUSDT"}, VENUE, SYMBOLS, RECV)

    assert pending == Ignored(
        venue=VENUE, event_type="executionReport", reason="PENDING_NEW: a pending order-list leg", ts_ns=RECV
    )
    assert isinstance(foreign, Ignored)
    assert foreign.reason == "symbol DOGEUSDT is not traded here"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X": "PENDING_CANCEL"}, r"executionReport\.X: one of NEW, .*, was 'PENDING_CANCEL'"),
        ({"X": "WEIRD"}, r"executionReport\.X: one of .*, was 'WEIRD'"),
        ({"X": None}, r"executionReport\.X: one of .*, was None"),
        ({"X": ["NEW"]}, r"executionReport\.X: one of .*, was \['NEW'\]"),
        ({"x": "AMENDED"}, r"executionReport\.x: one of .*, was 'AMENDED'"),
        ({"S": "buy"}, r"executionReport\.S: BUY or SELL, was 'buy'"),
        ({"x": "TRADE", "X": "FILLED", "l": "0.00300000", "z": "0.00300000"}, r"BTCUSDT\.t: a trade \(x=TRADE\)"),
        ({"z": "0.00400000"}, r"executionReport BTCUSDT\.z: l <= z <= q"),
        ({"l": "0.000001"}, r"executionReport BTCUSDT\.l: a multiple of 0\.00001"),
        ({"L": 1.5}, r"executionReport BTCUSDT\.L: a decimal string, was 1\.5"),
        ({"i": "4293153"}, r"executionReport BTCUSDT\.i: an integer, was '4293153'"),
        ({"E": None}, r"executionReport BTCUSDT\.E: an integer, was None"),
        ({"c": ""}, r"executionReport BTCUSDT\.c: a non-empty string"),
        ({"n": "abc"}, r"executionReport BTCUSDT\.n: a decimal string, was 'abc'"),
        ({"N": 5}, r"executionReport BTCUSDT\.N: an asset or null, was 5"),
        ({"s": None}, r"executionReport\.s: a non-empty string, was None"),
    ],
)
def test_parse_user_event_malformed_execution_report_names_the_field(change: dict, message: str) -> None:
    """An unknown or unused status is an error, never a default; every bad field is named."""
    with pytest.raises(ProtocolError, match=message):
        parse_user_event(_json("execution_report_new")["event"] | change, VENUE, SYMBOLS, RECV)


def test_parse_user_event_account_events() -> None:
    zero = Decimal(0)

    position = parse_user_event(_raw("outbound_account_position"), VENUE, SYMBOLS, RECV)
    balance = parse_user_event(_raw("balance_update"), VENUE, SYMBOLS, RECV)
    lock = parse_user_event(_raw("external_lock_update"), VENUE, SYMBOLS, RECV)

    assert position == AccountUpdate(
        venue=VENUE,
        kind=AccountUpdateKind.POSITION,
        balances=(
            AssetBalance("BTC", Decimal("0.00299500"), zero, zero),
            AssetBalance("USDT", Decimal("9805.00002000"), zero, zero),
        ),
        ts_event_ns=1760000000301 * MS,
        ts_ns=RECV,
    )
    assert balance == AccountUpdate(
        venue=VENUE,
        kind=AccountUpdateKind.BALANCE_DELTA,
        balances=(AssetBalance("BTC", zero, zero, Decimal("100")),),
        ts_event_ns=1573200697110 * MS,
        ts_ns=RECV,
    )
    assert isinstance(lock, AccountUpdate)
    assert (lock.kind, lock.balances) == (
        AccountUpdateKind.EXTERNAL_LOCK_DELTA,
        (AssetBalance("NEO", zero, zero, Decimal(10)),),
    )


def test_parse_user_event_stream_lifecycle_events() -> None:
    assert parse_user_event(_raw("event_stream_terminated"), VENUE, SYMBOLS, RECV) == StreamTerminated(
        venue=VENUE, ts_event_ns=1728973001334 * MS, ts_ns=RECV
    )
    assert parse_user_event(_raw("server_shutdown_ws_api"), VENUE, SYMBOLS, RECV) == ServerShutdown(
        venue=VENUE, ts_event_ns=1770123456789 * MS, ts_ns=RECV
    )


def test_parse_user_event_order_lists_and_new_event_types_are_ignored() -> None:
    listed = parse_user_event(_raw("list_status"), VENUE, SYMBOLS, RECV)
    novel = parse_user_event({"e": "somethingNew", "E": 1}, VENUE, SYMBOLS, RECV)

    assert isinstance(listed, Ignored)
    assert listed.event_type == "listStatus"
    assert novel == Ignored(
        venue=VENUE, event_type="somethingNew", reason="event type not decoded by dma_bot", ts_ns=RECV
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"subscriptionId": 0, "event": [1]}', r"user event\.event: an object, was \[1\]"),
        (b'{"E": 1}', r"user event\.e: an event name, was None"),
        (b'{"id": 1, "status": 200, "result": null}', r"use parse_ws_response"),
        (b'{"e": "outboundAccountPosition", "E": 1, "B": {}}', r"outboundAccountPosition\.B: a list"),
        (b'{"e": "balanceUpdate", "E": 1, "a": "BTC", "d": 1}', r"balanceUpdate\.d: a decimal string, was 1"),
        (b"{", r"user event: a JSON object"),
    ],
)
def test_parse_user_event_malformed_events_raise(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_user_event(raw, VENUE, SYMBOLS, RECV)


# -- REST ---------------------------------------------------------------------------------------------------

ACK_TIME = 1760000000095 * MS


def test_parse_order_response_ack_takes_side_and_quantity_from_the_route() -> None:
    reports = parse_order_response(_raw("order_response_ack"), VENUE, SYMBOLS, RECV, route=_route())

    assert reports == [_report(ts_event_ns=ACK_TIME)]


def test_parse_order_response_ack_without_route_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="an ACK body has no side or quantity; pass the route"):
        parse_order_response(_raw("order_response_ack"), VENUE, SYMBOLS, RECV)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (_route(client_order_id="other-BINANCE"), r"order response\.clientOrderId: other-BINANCE on BTCUSDT"),
        (_route(symbol="ETHBTC"), r"order response\.clientOrderId: r1a2b3c7-BINANCE on ETHBTC"),
        (_route(side=Side.SELL), r"order response\.side: SELL, was 'BUY'"),
    ],
)
def test_parse_order_response_not_answering_the_route_is_an_error(route: Route, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_order_response(_raw("order_response_result"), VENUE, SYMBOLS, RECV, route=route)


def test_parse_order_response_result_new_is_the_ack() -> None:
    assert parse_order_response(_raw("order_response_result"), VENUE, SYMBOLS, RECV) == [_report(ts_event_ns=ACK_TIME)]


def test_parse_order_response_result_filled_reports_no_fill_without_trade_ids() -> None:
    """RESULT has no per-fill detail: only the ACK; the fills come from the user-data stream."""
    body = _json("order_response_result") | {"status": "FILLED", "executedQty": "0.00300000"}

    assert parse_order_response(body, VENUE, SYMBOLS, RECV) == [_report(ts_event_ns=ACK_TIME)]


def test_parse_order_response_full_reports_each_fill_with_its_trade_id() -> None:
    fill = {"fee_asset": "BTC", "ts_event_ns": ACK_TIME}

    reports = parse_order_response(_raw("order_response_full"), VENUE, SYMBOLS, RECV, route=_route())

    assert reports == [
        _report(ts_event_ns=ACK_TIME),
        _report(
            status=ExecStatus.PARTIALLY_FILLED,
            last_qty=200,
            last_price=6499999,
            cum_qty=200,
            leaves_qty=100,
            fee=Decimal("0.00000200"),
            trade_id="3003",
            **fill,
        ),
        _report(
            status=ExecStatus.FILLED,
            last_qty=100,
            last_price=6500000,
            cum_qty=300,
            leaves_qty=0,
            fee=Decimal("0.00000100"),
            trade_id="3004",
            **fill,
        ),
    ]


def test_parse_order_response_full_ioc_leftover_ends_expired_with_the_reason() -> None:
    ids = {
        "client_order_id": "r1a2b3d4-BINANCE",
        "venue_order_id": "4293160",
        "order_qty": 500,
        "ts_event_ns": ACK_TIME,
    }

    reports = parse_order_response(_raw("order_response_full_ioc_expired"), VENUE, SYMBOLS, RECV)

    assert reports == [
        _report(leaves_qty=500, **ids),
        _report(
            status=ExecStatus.PARTIALLY_FILLED,
            last_qty=100,
            last_price=6499999,
            cum_qty=100,
            leaves_qty=400,
            fee=Decimal("0.00000100"),
            fee_asset="BTC",
            trade_id="3005",
            **ids,
        ),
        _report(status=ExecStatus.EXPIRED, cum_qty=100, leaves_qty=0, reason="UNFILLED_IOC_QUANTITY_EXPIRED", **ids),
    ]


def test_parse_order_response_rejected_status_is_the_only_report() -> None:
    body = _json("order_response_result") | {"status": "REJECTED"}

    assert parse_order_response(body, VENUE, SYMBOLS, RECV) == [
        _report(status=ExecStatus.REJECTED, leaves_qty=0, ts_event_ns=ACK_TIME)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "PENDING_NEW"}, r"order response\.status: one of .*, was 'PENDING_NEW'"),
        ({"executedQty": "0.00200000"}, r"order response\.fills: summing to executedQty 0\.00200000, was 300 steps"),
        ({"symbol": "XRPUSDT"}, r"order response\.symbol: one of the configured symbols, was 'XRPUSDT'"),
        ({"fills": {}}, r"order response\.fills: a list"),
        ({"orderId": None}, r"order response\.orderId: an integer"),
    ],
)
def test_parse_order_response_malformed_bodies_raise(change: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_order_response(_json("order_response_full") | change, VENUE, SYMBOLS, RECV)


def test_parse_query_order_is_the_order_state() -> None:
    assert parse_query_order(_raw("query_order")) == OrderState(
        symbol="BTCUSDT",
        client_order_id="r1a2b3c7-BINANCE",
        venue_order_id="4293153",
        side=Side.BUY,
        status=ExecStatus.PARTIALLY_FILLED,
        venue_status="PARTIALLY_FILLED",
        price=Decimal("65000"),
        order_qty=Decimal("0.003"),
        executed_qty=Decimal("0.001"),
        cum_quote_qty=Decimal("65"),
        ts_event_ns=1760000000199 * MS,
    )


def test_parse_query_order_expired_in_match_keeps_the_venue_spelling() -> None:
    state = parse_query_order(_json("query_order") | {"status": "EXPIRED_IN_MATCH"})

    assert (state.status, state.venue_status) == (ExecStatus.EXPIRED, "EXPIRED_IN_MATCH")


def test_parse_cancel_response_uses_the_canceled_orders_own_id() -> None:
    """clientOrderId in a cancel response is the cancel's id; origClientOrderId is the order's."""
    state = parse_cancel_response(_raw("cancel_response"))

    assert (state.client_order_id, state.venue_order_id, state.side) == ("r1a2b3c8-BINANCE", "4293154", Side.SELL)
    assert (state.status, state.executed_qty, state.ts_event_ns) == (
        ExecStatus.CANCELED,
        Decimal("0.001"),
        1760000000399 * MS,
    )


def test_build_new_order_params_limit_gtc_exact_list() -> None:
    assert build_new_order_params(_route(), BTC, time_in_force="GTC") == [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.00300"),
        ("price", "65000.00"),
        ("newClientOrderId", "r1a2b3c7-BINANCE"),
        ("newOrderRespType", "ACK"),
    ]


def test_build_new_order_params_limit_maker_has_no_time_in_force() -> None:
    params = dict(build_new_order_params(_route(side=Side.SELL), BTC, time_in_force="LIMIT_MAKER", resp_type="RESULT"))

    assert (params["type"], params["side"], params["newOrderRespType"]) == ("LIMIT_MAKER", "SELL", "RESULT")
    assert "timeInForce" not in params


def test_build_new_order_params_odd_grids_print_plain_decimals() -> None:
    """No exponent ever reaches the wire (Binance rejects '1E+3' and '1e-05')."""
    instrument = Instrument(symbol="BTCUSDT", tick_size=Decimal("10"), step_size=Decimal("0.00000001"))

    params = dict(build_new_order_params(_route(price=123, quantity=1), instrument, time_in_force="IOC"))

    assert (params["price"], params["quantity"], params["timeInForce"]) == ("1230", "0.00000001", "IOC")


@pytest.mark.parametrize(
    ("route", "kwargs", "message"),
    [
        (_route(client_order_id="has space"), {}, r"newClientOrderId: 1 to 36 characters of \[A-Za-z0-9_-\]"),
        (_route(client_order_id="x" * 37), {}, "newClientOrderId: 1 to 36 characters"),
        (_route(client_order_id=""), {}, "newClientOrderId: 1 to 36 characters"),
        (_route(symbol="ETHBTC"), {}, "instrument: the route's symbol ETHBTC, was BTCUSDT"),
        (_route(quantity=0), {}, "route: positive price and quantity"),
        (_route(), {"time_in_force": "GTX"}, "time_in_force: one of FOK, GTC, IOC, LIMIT_MAKER, was 'GTX'"),
        (_route(), {"resp_type": "NONE"}, "resp_type: one of ACK, RESULT, FULL, was 'NONE'"),
    ],
)
def test_build_new_order_params_invalid_input_is_refused(route: Route, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_new_order_params(route, BTC, **{"time_in_force": "GTC", **kwargs})


def test_build_new_order_params_longest_allowed_client_id_passes_and_signs() -> None:
    """The built params go straight into the signer, in order, with the signature last."""
    route = _route(client_order_id="A-z_9" * 7 + "x")

    sent = signed_payload(
        build_new_order_params(route, BTC, time_in_force="GTC"), api_secret="s", timestamp_ms=5, recv_window_ms=None
    )

    assert sent.startswith(
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00300&price=65000.00&newClientOrderId="
    )
    assert "&newOrderRespType=ACK&timestamp=5&signature=" in sent


def test_build_cancel_and_query_params_use_our_client_order_id() -> None:
    expected = [("symbol", "BTCUSDT"), ("origClientOrderId", "r1a2b3c8-BINANCE")]

    assert build_cancel_order_params("BTCUSDT", "r1a2b3c8-BINANCE") == expected
    assert build_query_order_params("BTCUSDT", "r1a2b3c8-BINANCE") == expected
    with pytest.raises(ValueError, match="origClientOrderId: 1 to 36"):
        build_cancel_order_params("BTCUSDT", "bad id")


# -- WebSocket API ------------------------------------------------------------------------------------------


def test_build_ws_request_exact_bytes() -> None:
    params = {"apiKey": "k", "timestamp": 1747385641636, "signature": "abc"}

    assert build_ws_request(1, "userDataStream.subscribe.signature", params) == (
        b'{"id":1,"method":"userDataStream.subscribe.signature",'
        b'"params":{"apiKey":"k","timestamp":1747385641636,"signature":"abc"}}'
    )
    assert build_ws_request("a-1", "session.status") == b'{"id":"a-1","method":"session.status"}'
    assert build_ws_request(2, "order.test", {"price": Decimal("1E-7")}) == (
        b'{"id":2,"method":"order.test","params":{"price":"0.0000001"}}'
    )


@pytest.mark.parametrize(
    ("request_id", "method", "params", "message"),
    [
        ("x" * 37, "m", None, "request id: 1 to 36 characters"),
        (1.5, "m", None, "request id: an int or a string"),
        (1, "", None, "method: a WS API method name"),
        (1, "m", {"price": 0.1}, r"params\.price: money is never a float"),
    ],
)
def test_build_ws_request_invalid_input_is_refused(
    request_id: object, method: str, params: dict | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_ws_request(request_id, method, params)  # type: ignore[arg-type]


def test_parse_ws_response_success_with_rate_limits() -> None:
    response = parse_ws_response(_raw("ws_api_subscribe_response"))

    assert response == WsResponse(
        id=1,
        status=200,
        result={"subscriptionId": 0},
        error=None,
        rate_limits=(RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 6000, 12),),
    )
    assert response.ok


def test_parse_ws_response_error_is_a_classified_venue_error() -> None:
    response = parse_ws_response(_raw("ws_api_error_response"))

    assert not response.ok
    assert response.error is not None
    assert (response.error.code, response.error.http_status, response.error.disposition) == (
        -2010,
        400,
        Disposition.FINAL,
    )
    assert response.rate_limits[0] == RateLimit("ORDERS", "SECOND", 10, 50, 13)
    assert len(response.rate_limits) == 3


def test_parse_ws_response_ban_carries_retry_at_and_revocation_has_null_id() -> None:
    banned = parse_ws_response(_raw("ws_api_banned_response"))
    revoked = parse_ws_response(_raw("ws_api_session_revoked"))

    assert banned.error is not None and revoked.error is not None
    assert (banned.error.retry_at_ms, banned.error.disposition) == (1659146400000, Disposition.RATE_LIMITED)
    assert (revoked.id, revoked.status, revoked.error.code, revoked.rate_limits) == (None, 401, -2015, ())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"id": 1, "status": 400}', r"WS API response\.error: present when status is 400, was missing"),
        (b'{"id": 1}', r"WS API response\.status: an integer, was None"),
        (b'{"id": {}, "status": 200}', r"WS API response\.id: an integer, a string or null"),
        (b'{"id": 1, "status": 200, "rateLimits": [{"rateLimitType": "X"}]}', r"rateLimits\[\]\.interval: a non-empty"),
        (b'{"id": 1, "status": 400, "error": {"code": "x", "msg": "m"}}', r"WS API response\.error\.code: an integer"),
    ],
)
def test_parse_ws_response_malformed_raise(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_ws_response(raw)


def test_parse_ws_message_dispatches_responses_and_events() -> None:
    assert isinstance(parse_ws_message(_raw("ws_api_subscribe_response"), VENUE, SYMBOLS, RECV), WsResponse)
    assert parse_ws_message(_raw("execution_report_new"), VENUE, SYMBOLS, RECV) == _report()
    with pytest.raises(ProtocolError, match="WS API message: a response or an event"):
        parse_ws_message(b'{"foo": 1}', VENUE, SYMBOLS, RECV)


# -- myTrades ------------------------------------------------------------------------------------------------

MY_TRADES = [
    {"symbol": "BTCUSDT", "id": 3001, "orderId": 4293153, "orderListId": -1, "price": "65000.00000000",
     "qty": "0.00100000", "quoteQty": "65.00000000", "commission": "0.00000100", "commissionAsset": "BTC",
     "time": 1760000000200, "isBuyer": True, "isMaker": True, "isBestMatch": True},
    {"symbol": "BTCUSDT", "id": 3002, "orderId": 4293153, "orderListId": -1, "price": "64999.99000000",
     "qty": "0.00200000", "quoteQty": "129.99998000", "commission": "0.06500000", "commissionAsset": "USDT",
     "time": 1760000000300, "isBuyer": False, "isMaker": False, "isBestMatch": True},
]


def test_parse_my_trades_is_exact_trades_with_ids_and_commissions() -> None:
    """Each entry: trade id and order id as text, price in ticks, qty in steps, exact commission, side."""
    trades = parse_my_trades(orjson.dumps(MY_TRADES), SYMBOLS)
    assert trades == [
        Trade(symbol="BTCUSDT", trade_id="3001", venue_order_id="4293153", side=Side.BUY, price=6_500_000,
              qty=100, commission=Decimal("0.00000100"), commission_asset="BTC", is_maker=True,
              ts_event_ns=1760000000200 * MS),
        Trade(symbol="BTCUSDT", trade_id="3002", venue_order_id="4293153", side=Side.SELL, price=6_499_999,
              qty=200, commission=Decimal("0.065"), commission_asset="USDT", is_maker=False,
              ts_event_ns=1760000000300 * MS),
    ]
    assert parse_my_trades([], SYMBOLS) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "65000.001"}, "price"),
        ({"qty": "0.000001"}, "qty"),
        ({"qty": "0.00000000"}, "qty"),
        ({"commission": 0.1}, "commission"),
        ({"isBuyer": "true"}, "isBuyer"),
        ({"id": "3001"}, "id"),
        ({"orderId": None}, "orderId"),
        ({"symbol": "DOGEUSDT"}, "symbol"),
        ({"time": 1.5}, "time"),
    ],
)
def test_parse_my_trades_names_the_bad_field(change: dict, field: str) -> None:
    """Off-grid, mistyped, zero or unknown values are a ProtocolError naming the field, never a guess."""
    with pytest.raises(ProtocolError, match=rf"\.{field}\b"):
        parse_my_trades([MY_TRADES[0] | change], SYMBOLS)


def test_parse_my_trades_refuses_a_body_that_is_not_a_list() -> None:
    """An object (an error body, say) or broken JSON is a ProtocolError, not an empty history."""
    with pytest.raises(ProtocolError, match="myTrades: a JSON list"):
        parse_my_trades(b'{"code":-1121,"msg":"Invalid symbol."}', SYMBOLS)
    with pytest.raises(ProtocolError, match="myTrades: a JSON list"):
        parse_my_trades(b"[{", SYMBOLS)


def test_build_my_trades_params_ask_for_one_order() -> None:
    """By the venue's orderId (our client id is not a myTrades filter); a non-numeric id is a bug."""
    assert build_my_trades_params("BTCUSDT", "4293153") == [("symbol", "BTCUSDT"), ("orderId", "4293153")]
    with pytest.raises(ValueError, match="orderId"):
        build_my_trades_params("BTCUSDT", "")
