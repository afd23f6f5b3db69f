"""Health and status: pure evaluation of the engine's liveness, for /healthz and the periodic status line.

Nothing here reads a clock or touches asyncio: the caller passes ``now_ns`` and a :class:`EngineView` of
read-only accessors (built by the wiring), so the same rules serve the HTTP endpoint, the status line
and tests.

Healthy (HTTP 200) means: the feed is connected, every symbol has ticked within ``max_tick_age_ns``,
every gateway is running, every venue link is up (a Binance venue's user-data stream subscribed, and no
REST request waiting for an answer longer than ``max_answer_wait_ns``) and the kill switch is not halted.
A kill switch in *reducing* still answers 200 with ``"status": "degraded"`` (the bot works, flattening);
anything else is 503 ``"unhealthy"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dma_bot.model.enums import KillSwitchState

__all__ = ["EngineView", "StatusLine", "VenueLink", "evaluate_health"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueLink:
    """One venue connection as health sees it: a Binance venue's user-data stream and REST API."""

    venue: str
    stream_connected: bool
    last_event_ns: int | None  # the stream's last frame
    last_answer_ns: int | None  # the REST API's last answer
    oldest_waiting_since_ns: int | None  # the oldest REST request still without an answer, when sent


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineView:
    symbols: Sequence[str]
    feed_connected: Callable[[], bool]
    last_tick_ns: Callable[[str], int | None]
    stage_states: Callable[[], Mapping[str, str]]  # stage name -> starting | running | stopped | crashed
    kill_switch: Callable[[], KillSwitchState]
    max_tick_age_ns: int
    venue_links: Callable[[], Sequence[VenueLink]] = tuple
    max_answer_wait_ns: int = 5_000_000_000


def _seconds(now_ns: int, then_ns: int | None) -> float | None:
    return None if then_ns is None else round(max(now_ns - then_ns, 0) / 1e9, 3)


def _venue_links(view: EngineView, now_ns: int, problems: list[str]) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for link in view.venue_links():
        waiting = _seconds(now_ns, link.oldest_waiting_since_ns)
        if not link.stream_connected:
            problems.append(f"venue {link.venue} user-data stream down")
        if waiting is not None and waiting * 1e9 > view.max_answer_wait_ns:
            problems.append(f"venue {link.venue} has not answered a request for {waiting:.1f}s")
        links[link.venue] = {
            "user_stream_connected": link.stream_connected,
            "seconds_since_last_event": _seconds(now_ns, link.last_event_ns),
            "seconds_since_last_answer": _seconds(now_ns, link.last_answer_ns),
            "oldest_request_waiting_s": waiting,
        }
    return links


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
    venues = _venue_links(view, now_ns, problems)
    kill = view.kill_switch()
    if kill is KillSwitchState.HALTED:
        problems.append("kill switch halted")
    healthy = not problems
    status = "ok" if healthy and kill is KillSwitchState.ACTIVE else "degraded" if healthy else "unhealthy"
    body = {
        "status": status,
        "feed": {"connected": connected, "seconds_since_last_tick": ages},
        "gateways": gateways,
        "venues": venues,
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

    __slots__ = ("_last", "_last_ns", "_places")

    def __init__(self, money_places: int = 2) -> None:
        """``money_places``: decimals of the net PnL shown (the instruments' finest tick * step)."""
        self._last: Counters | None = None
        self._last_ns = 0
        self._places = money_places

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
            f"pnl {counters.pnl:.{self._places}f}"
        )
