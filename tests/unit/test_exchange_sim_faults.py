"""The simulator's pure fault plan: spec checks and their one-line errors, the script format, windows and
counts on an injected clock, and every decision (frames, user-data events, requests, connections)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from dma_bot.exchange_sim.faults import (
    BAD_GATEWAY_HTML,
    Channel,
    FaultKind,
    FaultPlan,
    FaultSpecError,
    MalformedStyle,
    MarketFrame,
    Surface,
    fault_error,
    parse_fault,
    parse_script,
    render_market_frame,
)

S = 1_000_000_000
T0 = 1_000 * S
SYMBOLS = {"BTCUSDT", "ETHUSDT"}

VALID_SPECS: list[dict[str, Any]] = [
    {"kind": "market.drop"},
    {"kind": "market.drop", "times": 3, "for_s": 2.5},
    {"kind": "market.silent", "for_s": 0.3, "symbol": "BTCUSDT"},
    {"kind": "market.malformed", "style": "bad_price", "times": 2},
    {"kind": "market.duplicate", "for_s": 1},
    {"kind": "market.out_of_order", "symbol": "ETHUSDT", "times": 4},
    {"kind": "user.drop", "for_s": 10},
    {"kind": "user.silent", "for_s": 5},
    {"kind": "user.duplicate", "exec_type": "TRADE", "times": 2},
    {"kind": "user.out_of_order", "mode": "trade_after_terminal"},
    {"kind": "user.out_of_order", "mode": "swap", "exec_type": "NEW"},
    {"kind": "user.expire"},
    {"kind": "request.server_error", "status": 503, "surface": "rest", "method": "POST", "path": "/api/v3/order"},
    {"kind": "request.server_error", "status": 502, "executed": True},
    {"kind": "request.server_error", "status": 500, "code": -1001, "surface": "ws_api"},
    {"kind": "request.rate_limited", "retry_after_s": 7, "code": -1015, "times": 5},
    {"kind": "request.banned", "retry_after_s": 120, "surface": "ws_api", "method": "userDataStream.subscribe"},
    {"kind": "request.timestamp", "ahead": True, "path": "/api/v3/order"},
    {"kind": "request.timeout", "hold_s": 0.3, "then": "drop", "executed": True},
    {"kind": "request.timeout", "hold_s": 2, "then": "answer", "for_s": 60},
    {"kind": "orders.wipe", "symbol": "BTCUSDT"},
]


def report(order_id: int, exec_type: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"e": "executionReport", "i": order_id, "x": exec_type, "X": status, **extra}


def book(u: int, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {"u": u, "s": symbol, "b": "50000.00000000", "B": "1.00000000", "a": "50000.50000000", "A": "1.00000000"}


def plan_with(*specs: dict[str, Any], now_ns: int = T0) -> FaultPlan:
    plan = FaultPlan()
    for spec in specs:
        plan.add(parse_fault(spec, symbols=SYMBOLS), now_ns)
    return plan


def sent_us(frames: list[MarketFrame] | None, event: dict[str, Any]) -> list[int]:
    """Update ids of what goes out for ``event`` (None: the event as it is)."""
    return [event["u"]] if frames is None else [frame.event["u"] for frame in frames]


# -- specs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", VALID_SPECS, ids=lambda s: s["kind"])
def test_fault_spec_round_trips_through_to_json(spec: dict[str, Any]) -> None:
    """Every kind's spec parses, and its normalised JSON parses back to the same fault."""
    fault = parse_fault(spec, symbols=SYMBOLS)

    again = parse_fault(fault.to_json(), symbols=SYMBOLS)

    assert again == fault and fault.kind == FaultKind(spec["kind"])
    assert {k: v for k, v in fault.to_json().items() if k in spec} == spec


def test_fault_spec_fills_documented_defaults() -> None:
    """No limit given: fires once; server_error codes per status; malformed truncates; a path means REST."""
    assert parse_fault({"kind": "market.duplicate"}).times == 1
    assert parse_fault({"kind": "market.drop"}).times is None  # a drop with no limit is a one-shot sweep
    assert parse_fault({"kind": "market.duplicate", "for_s": 1}).times is None
    codes = {s: parse_fault({"kind": "request.server_error", "status": s}).code for s in (500, 503, 504)}
    assert codes == {500: -1000, 503: -1008, 504: -1007}
    assert parse_fault({"kind": "request.rate_limited", "retry_after_s": 1}).code == -1003
    assert parse_fault({"kind": "market.malformed"}).style is MalformedStyle.TRUNCATED
    assert parse_fault({"kind": "request.timestamp", "path": "/api/v3/order"}).surface is Surface.REST
    assert parse_fault({"kind": "request.server_error", "status": 502}).surface is Surface.REST
    assert parse_fault({"kind": "market.silent", "for_s": 0.3}).for_ns == 300_000_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([1], "fault: a JSON object with a 'kind', was [1]"),
        ({"kind": "market.nope"}, "kind: one of market.drop, market.silent,"),
        ({"kind": "market.silent", "for_s": 1, "times": 2}, "times: not a field of market.silent (it takes for_s,"),
        ({"kind": "market.silent"}, "for_s: required for market.silent, was absent"),
        ({"kind": "market.duplicate", "times": 0}, "times: an integer from 1 to 1000000, was 0"),
        ({"kind": "market.duplicate", "times": True}, "times: an integer from 1 to 1000000, was true"),
        ({"kind": "market.duplicate", "for_s": -1}, "for_s: seconds > 0 and <= 86400, was -1"),
        ({"kind": "market.duplicate", "symbol": "XRPUSDT"}, 'symbol: one of BTCUSDT, ETHUSDT, was "XRPUSDT"'),
        ({"kind": "market.duplicate", "symbol": ["BTCUSDT"]}, 'symbol: one of BTCUSDT, ETHUSDT, was ["BTCUSDT"]'),
        ({"kind": "market.malformed", "style": "weird"}, 'style: one of "truncated", "bad_price", "missing_field"'),
        ({"kind": "user.out_of_order"}, "mode: required for user.out_of_order, was absent"),
        (
            {"kind": "user.out_of_order", "mode": "trade_after_terminal", "exec_type": "NEW"},
            "exec_type: absent for mode 'trade_after_terminal'",
        ),
        ({"kind": "request.server_error", "status": 404}, "status: one of 500, 502, 503, 504, was 404"),
        ({"kind": "request.server_error", "status": 502, "code": -1000}, "code: absent for status 502"),
        (
            {"kind": "request.server_error", "status": 502, "surface": "ws_api"},
            "surface: 'rest' for status 502",
        ),
        ({"kind": "request.server_error", "status": 500, "code": -2010}, "code: one of -1000, -1001, -1006"),
        ({"kind": "request.rate_limited"}, "retry_after_s: required for request.rate_limited, was absent"),
        ({"kind": "request.banned", "retry_after_s": 0}, "retry_after_s: an integer from 1 to 259200, was 0"),
        ({"kind": "request.timestamp", "method": "POST"}, "method: given with 'surface' ('rest' or 'ws_api')"),
        ({"kind": "request.timestamp", "surface": "rest", "method": "post"}, "method: one of GET, POST, PUT"),
        ({"kind": "request.timestamp", "path": "/sapi/v1/x"}, 'path: a REST path starting with /api/v3/, was "/sapi'),
        ({"kind": "request.timestamp", "ahead": "yes"}, 'ahead: true or false, was "yes"'),
        ({"kind": "request.timeout", "hold_s": 1}, "then: required for request.timeout, was absent"),
        (
            {"kind": "request.timeout", "hold_s": 1, "then": "answer", "executed": False},
            "executed: absent for then 'answer'",
        ),
        ({"kind": "user.expire", "times": 1}, "times: not a field of user.expire (it takes no other field), was 1"),
    ],
)
def test_fault_spec_refuses_a_bad_field_in_one_line_naming_it(spec: object, message: str) -> None:
    """A bad spec raises FaultSpecError: one line, '<field>: <what is allowed>, was <value>'."""
    with pytest.raises(FaultSpecError) as raised:
        parse_fault(spec, symbols=SYMBOLS)

    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_fault_script_orders_lines_by_time_and_names_the_bad_line() -> None:
    """JSON lines: comments and blanks skipped, sorted by at_s, clear lines; an error names file:line."""
    text = "\n".join(
        [
            "# a comment",
            '{"at_s": 5, "fault": {"kind": "market.drop"}}',
            "",
            '{"at_s": 1.5, "fault": {"kind": "request.banned", "retry_after_s": 60}}',
            '{"at_s": 9, "clear": true}',
        ]
    )
    script = parse_script(text, "f.jsonl", symbols=SYMBOLS)

    assert [(e.at_ns, e.fault.kind if e.fault else None) for e in script] == [
        (1_500_000_000, FaultKind.REQUEST_BANNED),
        (5 * S, FaultKind.MARKET_DROP),
        (9 * S, None),
    ]
    for bad, message in [
        ('{"at_s": 1, "fault": {"kind": "market.silent"}}', "f.jsonl:2: for_s: required for market.silent"),
        ('{"at_s": -1, "fault": {"kind": "market.drop"}}', "f.jsonl:2: at_s: seconds >= 0 after start, was -1"),
        ('{"at_s": 1}', "f.jsonl:2: fault: exactly one of 'fault' or 'clear'"),
        ('{"at_s": 1, "clear": false}', "f.jsonl:2: clear: true, was false"),
        ('{"at_s": 1, "fault": {}, "note": 1}', "f.jsonl:2: note: not a field of a script line"),
        ("at_s=1", 'f.jsonl:2: line: a JSON object {"at_s": S, "fault": {...}}, was "at_s=1"'),
    ]:
        with pytest.raises(FaultSpecError) as raised:
            parse_script("# header\n" + bad, "f.jsonl", symbols=SYMBOLS)
        assert str(raised.value).startswith(message), str(raised.value)


# -- windows and counts ---------------------------------------------------------------------------------------
def test_fault_plan_window_is_measured_on_the_injected_clock() -> None:
    """market.silent for 0.3 s: frames are lost (and counted) until T0 + 0.3 s exactly, then flow again."""
    plan = plan_with({"kind": "market.silent", "for_s": 0.3})
    rule = plan.rules[0]

    during = [plan.market_frames("BTCUSDT", book(u), T0 + u * 100_000_000) for u in range(3)]
    at_end = plan.market_frames("BTCUSDT", book(3), T0 + 300_000_000)

    assert during == [[], [], []] and sent_us(at_end, book(3)) == [3]
    assert rule.fired == 3 and not rule.active(T0 + 300_000_000) and rule.active(T0 + 299_999_999)
    assert rule.to_json(T0 + 100_000_000) == {
        "id": 1,
        "fault": {"kind": "market.silent", "for_s": 0.3},
        "fired": 3,
        "active": True,
        "remaining_s": 0.2,
    }


def test_fault_plan_times_limit_stops_after_n_fires() -> None:
    """market.duplicate times 2: the first two frames go out twice, the third once; the rule is then spent."""
    plan = plan_with({"kind": "market.duplicate", "times": 2})

    sent = [sent_us(plan.market_frames("BTCUSDT", book(u), T0), book(u)) for u in (1, 2, 3)]

    assert sent == [[1, 1], [2, 2], [3]]
    assert plan.snapshot(T0)[0]["fired"] == 2 and plan.snapshot(T0)[0]["active"] is False


def test_fault_plan_first_added_matching_rule_wins_and_symbol_filters() -> None:
    """Two rules of a kind: the older fires first; a symbol-bound rule leaves other symbols alone."""
    plan = plan_with(
        {"kind": "market.duplicate", "symbol": "ETHUSDT", "times": 1},
        {"kind": "market.duplicate", "times": 1},
    )
    eth, btc = plan.rules

    btc_frames = plan.market_frames("BTCUSDT", book(1), T0)
    eth_frames = plan.market_frames("ETHUSDT", book(2, "ETHUSDT"), T0)

    assert sent_us(btc_frames, book(1)) == [1, 1] and sent_us(eth_frames, book(2)) == [2, 2]
    assert (eth.fired, btc.fired) == (1, 1)


def test_fault_plan_no_rules_passes_everything_untouched() -> None:
    """With no rule the plan answers None / the same list: the sockets send as usual."""
    plan = FaultPlan()
    events = [report(1, "NEW", "NEW")]

    assert plan.market_frames("BTCUSDT", book(1), T0) is None
    assert plan.user_events(events, T0) is events
    assert plan.request_fault(Surface.REST, "GET", "/api/v3/time", False, T0) is None
    assert plan.cut_connection(Channel.MARKET, T0) is False


# -- market frames ------------------------------------------------------------------------------------------
def test_fault_plan_market_out_of_order_sends_the_held_frame_after_the_next() -> None:
    """out_of_order times 2: u1 held, u2 then u1; u3 held, u4 then u3; u5 as usual."""
    plan = plan_with({"kind": "market.out_of_order", "times": 2})

    sent = [sent_us(plan.market_frames("BTCUSDT", book(u), T0), book(u)) for u in range(1, 6)]

    assert sent == [[], [2, 1], [], [4, 3], [5]]


def test_fault_plan_malformed_frames_render_broken_for_raw_and_combined() -> None:
    """truncated is not JSON; bad_price and missing_field are JSON with a broken or absent bid price."""
    event = book(7)
    stream = "btcusdt@bookTicker"

    truncated = render_market_frame(MarketFrame(event, MalformedStyle.TRUNCATED), stream, False)
    bad_price = orjson.loads(render_market_frame(MarketFrame(event, MalformedStyle.BAD_PRICE), stream, True))
    missing = orjson.loads(render_market_frame(MarketFrame(event, MalformedStyle.MISSING_FIELD), stream, False))
    plain = orjson.loads(render_market_frame(MarketFrame(event), stream, True))

    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated)
    assert truncated and orjson.dumps(event).decode().startswith(truncated)
    assert bad_price == {"stream": stream, "data": {**event, "b": "not-a-price"}}
    assert missing == {k: v for k, v in event.items() if k != "b"}
    assert plain == {"stream": stream, "data": event}


def test_fault_plan_malformed_replaces_the_frame() -> None:
    """A malformed rule replaces the real frame (the update is lost), once per fire."""
    plan = plan_with({"kind": "market.malformed", "style": "missing_field", "times": 1})

    first = plan.market_frames("BTCUSDT", book(1), T0)
    second = plan.market_frames("BTCUSDT", book(2), T0)

    assert first == [MarketFrame(book(1), MalformedStyle.MISSING_FIELD)]
    assert second == [MarketFrame(book(2), None)]


# -- user-data events ---------------------------------------------------------------------------------------
def test_fault_plan_trade_after_terminal_delivers_the_fill_after_the_cancel() -> None:
    """NEW, TRADE (partial), CANCELED become NEW, CANCELED, TRADE: a trade after its cancel."""
    plan = plan_with({"kind": "user.out_of_order", "mode": "trade_after_terminal"})
    account = {"e": "outboundAccountPosition"}
    new, trade, cancel = (
        report(4, "NEW", "NEW"),
        report(4, "TRADE", "PARTIALLY_FILLED", t=9),
        report(4, "CANCELED", "CANCELED"),
    )

    first = plan.user_events([new, trade, account], T0)
    held = plan.holds_user_events
    second = plan.user_events([cancel, account], T0)

    assert first == [new, account] and held
    assert second == [cancel, trade, account] and not plan.holds_user_events
    assert plan.rules[0].fired == 1


def test_fault_plan_trade_after_terminal_holds_only_partial_fills_of_that_order() -> None:
    """A filling TRADE is terminal itself (not held); it releases the earlier held partial fill."""
    plan = plan_with({"kind": "user.out_of_order", "mode": "trade_after_terminal", "times": 5})
    partial, other = report(1, "TRADE", "PARTIALLY_FILLED", t=1), report(2, "NEW", "NEW")
    filled = report(1, "TRADE", "FILLED", t=2)

    assert plan.user_events([partial, other, filled], T0) == [other, filled, partial]
    assert plan.rules[0].fired == 1


def test_fault_plan_user_swap_and_duplicate_by_exec_type() -> None:
    """swap holds a report until the next one went out; duplicate with exec_type TRADE repeats only fills."""
    plan = plan_with(
        {"kind": "user.out_of_order", "mode": "swap", "times": 1},
        {"kind": "user.duplicate", "exec_type": "TRADE", "times": 1},
    )
    a, b, c = report(1, "NEW", "NEW"), report(2, "NEW", "NEW"), report(2, "TRADE", "FILLED", t=3)

    delivered = plan.user_events([a, b, c], T0)

    assert delivered == [b, a, c, c]
    assert [rule.fired for rule in plan.rules] == [1, 1]


def test_fault_plan_user_silent_loses_events_in_its_window() -> None:
    """user.silent drops every user-data event (reports and account updates) until the window ends."""
    plan = plan_with({"kind": "user.silent", "for_s": 1})
    events = [report(1, "NEW", "NEW"), {"e": "outboundAccountPosition"}]

    assert plan.user_events(events, T0 + S - 1) == []
    assert plan.user_events(events, T0 + S) == events
    assert plan.rules[0].fired == 2


def test_fault_plan_clear_releases_what_it_held() -> None:
    """Clearing the rules does not lose held frames or reports: release_held hands them back once."""
    plan = plan_with(
        {"kind": "market.out_of_order"},
        {"kind": "user.out_of_order", "mode": "trade_after_terminal"},
    )
    trade = report(3, "TRADE", "PARTIALLY_FILLED")
    plan.market_frames("BTCUSDT", book(1), T0)
    plan.user_events([trade], T0)

    cleared = plan.clear()
    held = plan.release_held()

    assert cleared == 2 and plan.rules == []
    assert held.market == [("BTCUSDT", MarketFrame(book(1)))] and held.user == [trade]
    assert plan.release_held() == ([], [])


# -- requests and connections -------------------------------------------------------------------------------
def test_fault_plan_request_matching_by_surface_method_path_and_signature() -> None:
    """Filters narrow a rule; -1021 hits only signed requests (so /api/v3/time still resyncs)."""
    plan = plan_with(
        {"kind": "request.timestamp", "for_s": 10},
        {
            "kind": "request.rate_limited",
            "retry_after_s": 3,
            "surface": "rest",
            "method": "POST",
            "path": "/api/v3/order",
        },
        {"kind": "request.server_error", "status": 502, "for_s": 10},
        {"kind": "request.banned", "retry_after_s": 9, "surface": "ws_api", "method": "session.logon", "times": 1},
    )
    timestamp, rate_limited, bad_gateway, banned = plan.rules

    def kind(surface: Surface, method: str, path: str | None, signed: bool) -> FaultKind | None:
        fault = plan.request_fault(surface, method, path, signed, T0)
        return None if fault is None else fault.kind

    assert kind(Surface.REST, "POST", "/api/v3/order", True) is FaultKind.REQUEST_TIMESTAMP
    assert kind(Surface.WS_API, "userDataStream.subscribe.signature", None, True) is FaultKind.REQUEST_TIMESTAMP
    assert kind(Surface.REST, "POST", "/api/v3/order", False) is FaultKind.REQUEST_RATE_LIMITED
    assert kind(Surface.REST, "GET", "/api/v3/order", False) is FaultKind.REQUEST_SERVER_ERROR
    assert kind(Surface.WS_API, "ping", None, False) is None  # a 502 is REST only
    assert kind(Surface.WS_API, "session.logon", None, False) is FaultKind.REQUEST_BANNED
    assert kind(Surface.WS_API, "session.logon", None, False) is None  # times 1: spent
    assert [r.fired for r in (timestamp, rate_limited, bad_gateway, banned)] == [2, 1, 1, 1]


def test_fault_plan_request_times_then_passes() -> None:
    """A request rule with times 2 answers two requests, then lets them through."""
    plan = plan_with({"kind": "request.server_error", "status": 503, "times": 2})

    hits = [plan.request_fault(Surface.REST, "GET", "/api/v3/time", False, T0) is not None for _ in range(3)]

    assert hits == [True, True, False]


def test_fault_plan_drop_sweep_counts_toward_times_and_one_shots_finish() -> None:
    """A drop's sweep counts; it then cuts new connections until times; with no limit it is a one-shot."""
    lingering = plan_with({"kind": "market.drop", "times": 3})
    lingering.record_sweep(lingering.rules[0], 2)
    one_shot = plan_with({"kind": "user.drop"}, {"kind": "orders.wipe"})
    for rule in one_shot.rules:
        one_shot.record_sweep(rule, 1, wiped=[])

    cuts = [lingering.cut_connection(Channel.MARKET, T0) for _ in range(3)]

    assert cuts == [True, False, False] and lingering.rules[0].fired == 3
    assert lingering.cut_connection(Channel.USER, T0) is False
    assert one_shot.cut_connection(Channel.USER, T0) is False
    assert [r.finished for r in one_shot.rules] == [True, True] and one_shot.snapshot(T0)[1]["wiped"] == []


def test_fault_plan_drop_window_cuts_new_connections_until_it_ends() -> None:
    """user.drop for 2 s: every new WebSocket API connection inside the window is cut, later ones are not."""
    plan = plan_with({"kind": "user.drop", "for_s": 2})
    plan.record_sweep(plan.rules[0], 0)

    assert plan.cut_connection(Channel.USER, T0 + S) is True
    assert plan.cut_connection(Channel.USER, T0 + 2 * S) is False
    assert plan.rules[0].fired == 1


def test_fault_error_bodies_are_binance_codes_messages_and_statuses() -> None:
    """429 -1003/-1015 and 418 carry Retry-After seconds; -1021 both messages; 5xx codes as errors.md."""

    def answer(spec: dict[str, Any]) -> tuple[int, int, str, int | None]:
        error = fault_error(parse_fault(spec), 1_700_000_000_000, weight_limit=6000, orders_per_10s=50)
        return error.status, error.code, error.msg, error.retry_after_s

    assert answer({"kind": "request.rate_limited", "retry_after_s": 7}) == (
        429,
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        7,
    )
    assert answer({"kind": "request.rate_limited", "retry_after_s": 2, "code": -1015}) == (
        429,
        -1015,
        "Too many new orders; current limit is 50 orders per 10 SECOND.",
        2,
    )
    assert answer({"kind": "request.banned", "retry_after_s": 120}) == (
        418,
        -1003,
        "Way too much request weight used; IP banned until 1700000120000. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        120,
    )
    assert answer({"kind": "request.timestamp"})[:3] == (
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )
    assert answer({"kind": "request.timestamp", "ahead": True})[2] == (
        "Timestamp for this request was 1000ms ahead of the server's time."
    )
    assert answer({"kind": "request.server_error", "status": 503})[:3] == (
        503,
        -1008,
        "Server is currently overloaded with other requests. Please try again in a few minutes.",
    )
    assert answer({"kind": "request.server_error", "status": 500, "code": -1001})[2] == (
        "Internal error; unable to process your request. Please try again."
    )
    with pytest.raises(ValueError, match="fault_error"):
        fault_error(
            parse_fault({"kind": "request.timeout", "hold_s": 1, "then": "drop"}), 0, weight_limit=1, orders_per_10s=1
        )
    assert "502 Bad Gateway" in BAD_GATEWAY_HTML


def test_fault_plan_market_faults_over_seeded_random_streams_keep_every_update() -> None:
    """Out-of-order and duplicate over random event streams: nothing is lost or invented, only moved or
    repeated; the held frame always follows the next one of its symbol."""
    for seed in range(30):
        rng = random.Random(seed)
        plan = plan_with(
            {"kind": "market.out_of_order", "times": rng.randint(1, 5)},
            {"kind": "market.duplicate", "times": rng.randint(1, 5)},
        )
        updates = [book(u, rng.choice(("BTCUSDT", "ETHUSDT"))) for u in range(1, 40)]
        sent: list[int] = []
        for event in updates:
            sent.extend(sent_us(plan.market_frames(event["s"], event, T0), event))
        sent.extend(frame.event["u"] for _, frame in plan.release_held().market)

        duplicates = plan.rules[1].fired
        assert sorted(set(sent)) == list(range(1, 40)), seed
        assert len(sent) == 39 + duplicates, seed
