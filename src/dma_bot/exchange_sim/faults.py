"""Fault injection for the simulated exchange: fault specs, the schedule format, and the plan that decides. Pure.

It owns what a fault is (:class:`Fault`, parsed and checked from a JSON object by :func:`parse_fault`),
the fault script format (:func:`parse_script`), and :class:`FaultPlan`: the active rules, how often each
fired, and the decision for every market frame, user-data event, request and new connection. Time comes
in as ``now_ns`` (the simulator's monotonic clock), so windows are exact under a manual clock. It does no
I/O: :mod:`dma_bot.exchange_sim.admin` applies the one-shot actions (drops, expiry, wipe) and serves the
``/_sim`` admin routes; the socket layers ask the plan and do what it says.

A fault spec is a JSON object with ``kind`` and the fields its kind takes (unknown fields are refused)::

    {"kind": "request.rate_limited", "retry_after_s": 5, "surface": "rest", "method": "POST",
     "path": "/api/v3/order", "times": 2}

``times`` (fire at most N times) and ``for_s`` (active for S seconds from when it was added) bound a
rule; a rule that takes them and is given neither fires once. A request is matched by the first active
rule, in the order the rules were added. Kinds (README "exchange_sim fault injection" has the table):

* ``market.drop`` / ``user.drop``: cut every market-stream / WebSocket API connection now (no close
  frame); with ``times``/``for_s`` also cut new ones right after their handshake (the sweep counts).
* ``market.silent`` (``for_s``, ``symbol``): bookTicker frames are not sent (lost); connections stay open.
* ``market.malformed`` (``style``: truncated | bad_price | missing_field): frames replaced by broken ones.
* ``market.duplicate``: each affected frame is sent twice.
* ``market.out_of_order``: an affected frame is held and sent right after the next frame of its symbol.
* ``user.silent`` (``for_s``): user-data events are not delivered (lost: Binance does not replay).
* ``user.duplicate`` (``exec_type``): each affected executionReport is delivered twice.
* ``user.out_of_order`` (``mode``): ``trade_after_terminal`` holds a partial fill's TRADE report until the
  order's terminal report has gone out (a trade after its cancel); ``swap`` holds one report (of
  ``exec_type``, if given) until the next executionReport has gone out.
* ``user.expire``: ``eventStreamTerminated`` on every user-data subscription, which ends.
* ``request.server_error`` (``status`` 500 | 502 | 503 | 504, ``code``, ``executed``), ``request.rate_limited``
  (429, ``retry_after_s``, ``code`` -1003 | -1015), ``request.banned`` (418, ``retry_after_s``),
  ``request.timestamp`` (-1021 on signed requests; ``ahead``), ``request.timeout`` (``hold_s``, ``then``
  answer | drop, ``executed``); all filtered by ``surface`` (rest | ws_api), ``method`` and ``path``.
* ``orders.wipe`` (``symbol``): the venue forgets every open order, silently.

A fault script has one JSON object a line (blank lines and ``#`` comments skipped), applied ``at_s``
seconds after the simulator starts: ``{"at_s": 5, "fault": {...}}``, or ``{"at_s": 9, "clear": true}``
to remove every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import orjson

from dma_bot.exchange_sim.fault_specs import (
    DROP_KINDS,
    ONE_SHOT_KINDS,
    REQUEST_KINDS,
    SERVER_ERROR_MESSAGES,
    Channel,
    Fault,
    FaultKind,
    FaultSpecError,
    MalformedStyle,
    ReorderMode,
    ScheduledFault,
    Surface,
    Then,
    parse_fault,
    parse_script,
)
from dma_bot.exchange_sim.validation import ApiError

__all__ = [
    "BAD_GATEWAY_HTML",
    "Channel",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultSpecError",
    "Held",
    "MalformedStyle",
    "MarketFrame",
    "ReorderMode",
    "Rule",
    "ScheduledFault",
    "Surface",
    "Then",
    "fault_error",
    "parse_fault",
    "parse_script",
    "render_market_frame",
]

_NS: Final = 1_000_000_000
TERMINAL_STATUSES: Final = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"})
BAD_GATEWAY_HTML: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


# -- answers -------------------------------------------------------------------------------------------------
def fault_error(fault: Fault, now_ms: int, *, weight_limit: int, orders_per_10s: int) -> ApiError:
    """The Binance error a request fault answers (not for a 502, which has an HTML body, or a timeout)."""
    kind = fault.kind
    if kind is FaultKind.REQUEST_SERVER_ERROR:
        assert fault.code is not None and fault.status is not None
        return ApiError(fault.code, SERVER_ERROR_MESSAGES[fault.code], status=fault.status)
    if kind is FaultKind.REQUEST_RATE_LIMITED:
        if fault.code == -1015:
            msg = f"Too many new orders; current limit is {orders_per_10s} orders per 10 SECOND."
        else:
            msg = (
                f"Too much request weight used; current limit is {weight_limit} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
        return ApiError(fault.code or -1003, msg, status=429, retry_after_s=fault.retry_after_s)
    if kind is FaultKind.REQUEST_BANNED:
        assert fault.retry_after_s is not None
        until_ms = now_ms + fault.retry_after_s * 1000
        msg = (
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return ApiError(-1003, msg, status=418, retry_after_s=fault.retry_after_s)
    if kind is FaultKind.REQUEST_TIMESTAMP:
        if fault.ahead:
            return ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        return ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
    raise ValueError(f"fault_error: a request fault with an error answer, was {kind}")


class MarketFrame(NamedTuple):
    """One market frame to send: the event, broken in ``style`` when set."""

    event: dict[str, Any]
    style: MalformedStyle | None = None


def render_market_frame(frame: MarketFrame, stream: str, combined: bool) -> str:
    """The frame's text for a raw (bare event) or combined (``{"stream", "data"}``) connection."""
    event = frame.event
    if frame.style is MalformedStyle.BAD_PRICE:
        event = {**event, "b": "not-a-price"}
    elif frame.style is MalformedStyle.MISSING_FIELD:
        event = {k: v for k, v in event.items() if k != "b"}
    text = orjson.dumps({"stream": stream, "data": event} if combined else event).decode()
    if frame.style is MalformedStyle.TRUNCATED:
        return text[: len(text) // 2]
    return text


# -- the plan ------------------------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Rule:
    """An added fault: when it was added, how often it fired, and whether it is finished."""

    id: int
    fault: Fault
    added_ns: int
    fired: int = 0
    finished: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def active(self, now_ns: int) -> bool:
        fault = self.fault
        if self.finished or (fault.times is not None and self.fired >= fault.times):
            return False
        return fault.for_ns is None or now_ns < self.added_ns + fault.for_ns

    def to_json(self, now_ns: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "fault": self.fault.to_json(),
            "fired": self.fired,
            "active": self.active(now_ns),
        }
        if self.fault.for_ns is not None:
            body["remaining_s"] = max(0, self.added_ns + self.fault.for_ns - now_ns) / _NS
        body.update(self.detail)
        return body


class Held(NamedTuple):
    """Frames and events a plan still held when it was cleared: the shell sends them now."""

    market: list[tuple[str, MarketFrame]]
    user: list[dict[str, Any]]


class FaultPlan:
    """The active fault rules and every decision they make. One per simulator."""

    __slots__ = ("_held_by_order", "_held_market", "_held_swap", "_next_id", "_rules")

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._next_id = 1
        self._held_market: dict[str, MarketFrame] = {}  # symbol -> frame sent after the next one
        self._held_by_order: dict[int, list[dict[str, Any]]] = {}  # orderId -> TRADE reports after terminal
        self._held_swap: dict[str, Any] | None = None

    # -- rules -----------------------------------------------------------------------------------------
    def add(self, fault: Fault, now_ns: int) -> Rule:
        rule = Rule(self._next_id, fault, now_ns)
        self._next_id += 1
        self._rules.append(rule)
        return rule

    def record_sweep(self, rule: Rule, count: int, **detail: Any) -> None:
        """Count what an action rule did when added; finish it unless it lingers (a drop with times/for_s)."""
        rule.fired += count
        rule.detail.update(detail)
        fault = rule.fault
        if fault.kind in ONE_SHOT_KINDS or (fault.times is None and fault.for_ns is None):
            rule.finished = True

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def get(self, rule_id: int) -> Rule:
        for rule in self._rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def remove(self, rule_id: int) -> Rule:
        rule = self.get(rule_id)
        self._rules.remove(rule)
        return rule

    def clear(self) -> int:
        """Remove every rule; their held frames and events stay for :meth:`release_held`."""
        count = len(self._rules)
        self._rules.clear()
        return count

    def release_held(self) -> Held:
        market = list(self._held_market.items())
        user = [event for events in self._held_by_order.values() for event in events]
        if self._held_swap is not None:
            user.append(self._held_swap)
        self._held_market.clear()
        self._held_by_order.clear()
        self._held_swap = None
        return Held(market, user)

    def snapshot(self, now_ns: int) -> list[dict[str, Any]]:
        return [rule.to_json(now_ns) for rule in self._rules]

    def _fire(self, kind: FaultKind, now_ns: int, symbol: str | None = None) -> Rule | None:
        for rule in self._rules:
            fault = rule.fault
            if fault.kind is kind and (fault.symbol is None or fault.symbol == symbol) and rule.active(now_ns):
                rule.fired += 1
                return rule
        return None

    # -- decisions -------------------------------------------------------------------------------------
    def cut_connection(self, channel: Channel, now_ns: int) -> bool:
        """True when a new connection on ``channel`` is to be cut right after its handshake."""
        return bool(self._rules) and self._fire(DROP_KINDS[channel], now_ns) is not None

    def market_frames(self, symbol: str, event: dict[str, Any], now_ns: int) -> list[MarketFrame] | None:
        """What to send for one bookTicker event of ``symbol``; None: the event as it is."""
        if not self._rules and not self._held_market:
            return None
        if self._fire(FaultKind.MARKET_SILENT, now_ns, symbol):
            return []
        malformed = self._fire(FaultKind.MARKET_MALFORMED, now_ns, symbol)
        frame = MarketFrame(event, malformed.fault.style if malformed else None)
        held = self._held_market.pop(symbol, None)
        if held is None and self._fire(FaultKind.MARKET_OUT_OF_ORDER, now_ns, symbol):
            self._held_market[symbol] = frame
            return []
        frames = [frame, frame] if self._fire(FaultKind.MARKET_DUPLICATE, now_ns, symbol) else [frame]
        if held is not None:
            frames.append(held)
        return frames

    @property
    def holds_user_events(self) -> bool:
        return bool(self._held_by_order) or self._held_swap is not None

    def user_events(self, events: list[dict[str, Any]], now_ns: int) -> list[dict[str, Any]]:
        """The user-data events to deliver, in order, for the events the engine produced."""
        if not self._rules and not self.holds_user_events:
            return events
        delivered: list[dict[str, Any]] = []
        for event in events:
            if self._fire(FaultKind.USER_SILENT, now_ns):
                continue
            if event.get("e") != "executionReport":
                delivered.append(event)
                continue
            if self._hold(event, now_ns):
                continue
            delivered.append(event)
            if self._fire_on_report(FaultKind.USER_DUPLICATE, event, now_ns):
                delivered.append(event)
            if event.get("X") in TERMINAL_STATUSES:
                delivered.extend(self._held_by_order.pop(event.get("i", -1), ()))
            if self._held_swap is not None and self._held_swap is not event:
                delivered.append(self._held_swap)
                self._held_swap = None
        return delivered

    def _fire_on_report(self, kind: FaultKind, report: dict[str, Any], now_ns: int) -> Rule | None:
        for rule in self._rules:
            fault = rule.fault
            if fault.kind is not kind or (fault.exec_type is not None and fault.exec_type != report.get("x")):
                continue
            if kind is FaultKind.USER_OUT_OF_ORDER and not self._holdable(fault, report):
                continue
            if rule.active(now_ns):
                rule.fired += 1
                return rule
        return None

    def _hold(self, report: dict[str, Any], now_ns: int) -> bool:
        rule = self._fire_on_report(FaultKind.USER_OUT_OF_ORDER, report, now_ns)
        if rule is None:
            return False
        if rule.fault.mode is ReorderMode.TRADE_AFTER_TERMINAL:
            self._held_by_order.setdefault(report.get("i", -1), []).append(report)
        else:
            self._held_swap = report
        return True

    def request_fault(self, surface: Surface, method: str, path: str | None, signed: bool, now_ns: int) -> Fault | None:
        """The fault of the first active request rule matching this request (counted), or None."""
        if not self._rules:
            return None
        for rule in self._rules:
            fault = rule.fault
            if fault.kind not in REQUEST_KINDS or not _matches(fault, surface, method, path, signed):
                continue
            if rule.active(now_ns):
                rule.fired += 1
                return fault
        return None

    def _holdable(self, fault: Fault, report: dict[str, Any]) -> bool:
        if fault.mode is ReorderMode.TRADE_AFTER_TERMINAL:
            return report.get("x") == "TRADE" and report.get("X") == "PARTIALLY_FILLED"
        return self._held_swap is None  # one swap at a time: the held report goes out after the next one


def _matches(fault: Fault, surface: Surface, method: str, path: str | None, signed: bool) -> bool:
    if fault.surface is not None and fault.surface is not surface:
        return False
    if fault.method is not None and fault.method != method:
        return False
    if fault.path is not None and fault.path != path:
        return False
    return signed or fault.kind is not FaultKind.REQUEST_TIMESTAMP
