"""Health and status: pure evaluation of the engine's liveness, for /healthz and the periodic status line.

Nothing here reads a clock or touches asyncio: the caller passes ``now_ns`` and a :class:`EngineView` of
read-only accessors (built by the wiring), so the same rules serve the HTTP endpoint, the status line
and tests.

Healthy (HTTP 200) means: the feed is connected, every symbol has ticked within ``max_tick_age_ns``,
every gateway is running and the kill switch is not halted. A kill switch in *reducing* still answers
200 with ``"status": "degraded"`` (the bot works, flattening); anything else is 503 ``"unhealthy"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dma_bot.model.enums import KillSwitchState

__all__ = ["EngineView", "StatusLine", "evaluate_health"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineView:
    symbols: Sequence[str]
    feed_connected: Callable[[], bool]
    last_tick_ns: Callable[[str], int | None]
    stage_states: Callable[[], Mapping[str, str]]  # stage name -> starting | running | stopped | crashed
    kill_switch: Callable[[], KillSwitchState]
    max_tick_age_ns: int


def evaluate_health(view: EngineView, now_ns: int) -> tuple[bool, dict[str, Any]]:
    """(healthy, JSON body) at ``now_ns``."""
    problems: list[str] = []
    ages: dict[str, float | None] = {}
    for symbol in view.symbols:
        last = view.last_tick_ns(symbol)
        if last is None:
            ages[symbol] = None
            problems.append(f"no tick yet for {symbol}")
            continue
        age_ns = max(now_ns - last, 0)
        ages[symbol] = round(age_ns / 1e9, 3)
        if age_ns > view.max_tick_age_ns:
            problems.append(f"{symbol} stale for {age_ns / 1e9:.1f}s")
    connected = view.feed_connected()
    if not connected:
        problems.append("feed not connected")
    stages = dict(view.stage_states())
    gateways = {name.removeprefix("gateway."): state for name, state in stages.items() if name.startswith("gateway.")}
    for venue, state in gateways.items():
        if state != "running":
            problems.append(f"gateway {venue} {state}")
    kill = view.kill_switch()
    if kill is KillSwitchState.HALTED:
        problems.append("kill switch halted")
    healthy = not problems
    status = "ok" if healthy and kill is KillSwitchState.ACTIVE else "degraded" if healthy else "unhealthy"
    body = {
        "status": status,
        "feed": {"connected": connected, "seconds_since_last_tick": ages},
        "gateways": gateways,
        "kill_switch": kill.value,
        "problems": problems,
    }
    return healthy, body


@dataclass(frozen=True, slots=True, kw_only=True)
class Counters:
    ticks: int
    signals: int
    orders: int
    fills: int
    rejects: int
    pnl: Decimal


class StatusLine:
    """Turns successive counter readings into one human line with rates since the previous reading."""

    __slots__ = ("_last", "_last_ns")

    def __init__(self) -> None:
        self._last: Counters | None = None
        self._last_ns = 0

    def render(self, counters: Counters, now_ns: int) -> str:
        last, last_ns = self._last, self._last_ns
        self._last, self._last_ns = counters, now_ns
        if last is None or now_ns <= last_ns:
            rate = "-"
        else:
            rate = f"{(counters.ticks - last.ticks) * 1e9 / (now_ns - last_ns):,.0f}"
        return (
            f"status: ticks/s {rate} ticks {counters.ticks:,} signals {counters.signals:,} "
            f"orders {counters.orders:,} fills {counters.fills:,} rejects {counters.rejects:,} "
            f"pnl {counters.pnl:.2f}"
        )
