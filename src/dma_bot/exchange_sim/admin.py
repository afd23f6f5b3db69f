"""Fault control of the simulated exchange: ``sim.faults`` in-process and the ``/_sim`` admin routes over HTTP.

:class:`Faults` puts checked fault specs into the simulator's pure
:class:`~dma_bot.exchange_sim.faults.FaultPlan` and carries out the one-shot actions (cut connections,
expire user-data subscriptions, wipe open orders) on the :class:`FaultTarget` (the ``ExchangeSim``); it
also plays a fault script on schedule. The admin routes live under ``/_sim``, a path Binance never uses,
and answer JSON, or HTTP 400/404 with one ``text/plain`` line naming the field::

    POST   /_sim/faults        a fault spec (JSON object)  -> 200 the rule {"id", "fault", "fired", "active", ...}
    GET    /_sim/faults                                    -> 200 {"faults": [rule, ...]}
    GET    /_sim/faults/{id}                               -> 200 the rule
    DELETE /_sim/faults/{id}                               -> 200 the rule, removed
    DELETE /_sim/faults                                    -> 200 {"cleared": N}
    POST   /_sim/wipe          {} or {"symbol": S}         -> 200 the orders.wipe rule, with "wiped": [...]
    POST   /_sim/quote         {"symbol", "bid", "ask", "bid_qty"?, "ask_qty"?} (decimal strings) -> 200
    GET    /_sim/connections                               -> 200 {"market", "user", "user_subscriptions"}

Request faults never touch these routes. It owns no decision: what a fault does to a frame or a
request is the plan's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from dma_bot.exchange_sim.book import SimOrder
from dma_bot.exchange_sim.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    FaultSpecError,
    Held,
    Rule,
    ScheduledFault,
    parse_fault,
)

__all__ = ["FaultTarget", "Faults", "admin_routes"]

_NS: Final = 1_000_000_000


class FaultTarget(Protocol):
    """What the one-shot faults act on (``ExchangeSim``)."""

    def drop_market_connections(self) -> int: ...

    def drop_user_connections(self) -> int: ...

    def expire_user_streams(self) -> int: ...

    def wipe_open_orders(self, symbol: str | None = None) -> list[SimOrder]: ...

    def send_held(self, held: Held) -> None: ...


class Faults:
    """The simulator's fault rules: add, inspect, remove, clear, and play a script. ``sim.faults``."""

    def __init__(
        self, plan: FaultPlan, target: FaultTarget, monotonic_ns: Callable[[], int], symbols: Collection[str]
    ) -> None:
        self.plan = plan
        self._target = target
        self._monotonic_ns = monotonic_ns
        self._symbols = frozenset(symbols)

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def parse(self, spec: Mapping[str, Any]) -> Fault:
        """Check a JSON fault spec against this simulator's symbols (:class:`FaultSpecError` if bad)."""
        return parse_fault(spec, symbols=self._symbols)

    def add(self, spec: Mapping[str, Any] | Fault) -> Rule:
        """Add a fault (a spec as POST /_sim/faults takes it, or a parsed :class:`Fault`); one-shots act now."""
        fault = spec if isinstance(spec, Fault) else self.parse(spec)
        rule = self.plan.add(fault, self._monotonic_ns())
        target = self._target
        kind = fault.kind
        if kind is FaultKind.MARKET_DROP:
            self.plan.record_sweep(rule, target.drop_market_connections())
        elif kind is FaultKind.USER_DROP:
            self.plan.record_sweep(rule, target.drop_user_connections())
        elif kind is FaultKind.USER_EXPIRE:
            self.plan.record_sweep(rule, target.expire_user_streams())
        elif kind is FaultKind.ORDERS_WIPE:
            wiped = target.wipe_open_orders(fault.symbol)
            ids = [{"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id} for o in wiped]
            self.plan.record_sweep(rule, len(wiped), wiped=ids)
        return rule

    @property
    def rules(self) -> list[Rule]:
        return self.plan.rules

    def get(self, rule_id: int) -> Rule:
        """The rule with ``rule_id``; KeyError if there is none."""
        return self.plan.get(rule_id)

    def remove(self, rule_id: int) -> Rule:
        """Remove one rule (KeyError if unknown); frames and events the plan held go out now."""
        rule = self.plan.remove(rule_id)
        self._target.send_held(self.plan.release_held())
        return rule

    def clear(self) -> int:
        """Remove every rule and send what they held; how many rules there were."""
        count = self.plan.clear()
        self._target.send_held(self.plan.release_held())
        return count

    def snapshot(self) -> list[dict[str, Any]]:
        """Every rule as GET /_sim/faults shows it."""
        return self.plan.snapshot(self._monotonic_ns())

    def to_json(self, rule: Rule) -> dict[str, Any]:
        return rule.to_json(self._monotonic_ns())

    def apply(self, entry: ScheduledFault) -> None:
        """Carry out one script entry now: add its fault, or clear every rule."""
        if entry.fault is None:
            self.clear()
        else:
            self.add(entry.fault)

    async def play(self, script: Sequence[ScheduledFault], start: float | None = None) -> None:
        """Apply each entry ``at_ns`` after ``start`` (the loop's time; default: now), in time order."""
        loop = asyncio.get_running_loop()
        begin = loop.time() if start is None else start
        for entry in sorted(script, key=lambda e: e.at_ns):
            delay = begin + entry.at_ns / _NS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the script's own schedule, not a synchronisation
            self.apply(entry)


def _line(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text.replace("\n", " ") + "\n", content_type="text/plain")


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip() and optional:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FaultSpecError(f"body: a JSON object, was {raw[:80].decode(errors='replace')!r}") from None
    if not isinstance(body, dict):
        raise FaultSpecError(f"body: a JSON object, was {orjson.dumps(body).decode()[:80]}")
    return body


def _decimal(body: Mapping[str, Any], name: str, *, required: bool) -> Decimal | None:
    value = body.get(name)
    if value is None and not required:
        return None
    try:
        amount = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise FaultSpecError(f"{name}: a decimal string >= 0 such as \"50000.00\", was {orjson.dumps(value).decode()}")
    return amount


class _Quotes(Protocol):
    def set_quote(
        self,
        symbol: str,
        bid: Decimal | str,
        ask: Decimal | str,
        bid_qty: Decimal | str | None = None,
        ask_qty: Decimal | str | None = None,
    ) -> None: ...

    def connection_counts(self) -> dict[str, int]: ...


def admin_routes(faults: Faults, sim: _Quotes) -> list[web.RouteDef]:
    """The ``/_sim`` routes bound to ``faults`` (and to ``sim`` for quotes and connection counts)."""

    def rule_of(request: web.Request) -> Rule | web.Response:
        text = request.match_info["id"]
        try:
            return faults.get(int(text))
        except (ValueError, KeyError):
            known = ", ".join(str(r.id) for r in faults.rules) or "none"
            return _line(404, f"id: one of the rule ids ({known}), was {text}")

    async def add(request: web.Request) -> web.Response:
        try:
            rule = faults.add(await _body(request))
        except FaultSpecError as error:
            return _line(400, str(error))
        return _json(faults.to_json(rule))

    async def list_rules(request: web.Request) -> web.Response:
        return _json({"faults": faults.snapshot()})

    async def get_rule(request: web.Request) -> web.Response:
        rule = rule_of(request)
        return rule if isinstance(rule, web.Response) else _json(faults.to_json(rule))

    async def remove_rule(request: web.Request) -> web.Response:
        rule = rule_of(request)
        if isinstance(rule, web.Response):
            return rule
        faults.remove(rule.id)
        return _json(faults.to_json(rule))

    async def clear(request: web.Request) -> web.Response:
        return _json({"cleared": faults.clear()})

    async def wipe(request: web.Request) -> web.Response:
        try:
            body = await _body(request, optional=True)
            rule = faults.add({"kind": str(FaultKind.ORDERS_WIPE), **body})
        except FaultSpecError as error:
            return _line(400, str(error))
        return _json(faults.to_json(rule))

    async def quote(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            symbol = body.get("symbol")
            if not isinstance(symbol, str) or symbol not in faults.symbols:
                allowed = ", ".join(sorted(faults.symbols))
                raise FaultSpecError(f"symbol: one of {allowed}, was {orjson.dumps(symbol).decode()}")
            bid = _decimal(body, "bid", required=True)
            ask = _decimal(body, "ask", required=True)
            assert bid is not None and ask is not None
            sim.set_quote(
                symbol,
                bid,
                ask,
                _decimal(body, "bid_qty", required=False),
                _decimal(body, "ask_qty", required=False),
            )
        except (FaultSpecError, ValueError) as error:
            return _line(400, str(error))
        return _json({"symbol": symbol, "bid": str(bid), "ask": str(ask)})

    async def connections(request: web.Request) -> web.Response:
        return _json(sim.connection_counts())

    return [
        web.post("/_sim/faults", add),
        web.get("/_sim/faults", list_rules),
        web.delete("/_sim/faults", clear),
        web.get("/_sim/faults/{id}", get_rule),
        web.delete("/_sim/faults/{id}", remove_rule),
        web.post("/_sim/wipe", wipe),
        web.post("/_sim/quote", quote),
        web.get("/_sim/connections", connections),
    ]
