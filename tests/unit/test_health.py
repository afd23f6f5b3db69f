"""Health rules and the status line: pure functions of a view of the engine and a given time."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from dma_bot.health import Counters, EngineView, StatusLine, VenueLink, evaluate_health
from dma_bot.model.enums import KillSwitchState

SECOND = 1_000_000_000


def _view(
    *,
    connected: bool = True,
    last: dict[str, int | None] | None = None,
    stages: dict[str, str] | None = None,
    kill: KillSwitchState = KillSwitchState.ACTIVE,
) -> EngineView:
    ticks = {"BTCUSDT": 100 * SECOND, "ETHUSDT": 100 * SECOND} if last is None else last
    return EngineView(
        symbols=("BTCUSDT", "ETHUSDT"),
        feed_connected=lambda: connected,
        last_tick_ns=ticks.get,
        stage_states=lambda: {"feed": "running", "gateway.A": "running"} if stages is None else stages,
        kill_switch=lambda: kill,
        max_tick_age_ns=5 * SECOND,
    )


def test_health_fresh_ticks_and_running_gateways_is_ok() -> None:
    healthy, body = evaluate_health(_view(), 102 * SECOND)
    assert healthy
    assert body["status"] == "ok"
    assert body["feed"] == {"connected": True, "seconds_since_last_tick": {"BTCUSDT": 2.0, "ETHUSDT": 2.0}}
    assert body["gateways"] == {"A": "running"}
    assert body["kill_switch"] == "active"


def test_health_stale_symbol_is_unhealthy() -> None:
    healthy, body = evaluate_health(_view(last={"BTCUSDT": 100 * SECOND, "ETHUSDT": 90 * SECOND}), 102 * SECOND)
    assert not healthy
    assert body["status"] == "unhealthy"
    assert body["problems"] == ["ETHUSDT stale for 12.0s"]


def test_health_no_tick_yet_disconnected_stopped_gateway_halted() -> None:
    view = _view(
        connected=False,
        last={"BTCUSDT": 100 * SECOND, "ETHUSDT": None},
        stages={"gateway.A": "crashed"},
        kill=KillSwitchState.HALTED,
    )
    healthy, body = evaluate_health(view, 101 * SECOND)
    assert not healthy
    assert body["problems"] == [
        "no tick yet for ETHUSDT",
        "feed not connected",
        "gateway A crashed",
        "kill switch halted",
    ]


def test_health_reducing_is_degraded_but_serving() -> None:
    healthy, body = evaluate_health(_view(kill=KillSwitchState.REDUCING), 101 * SECOND)
    assert healthy
    assert body["status"] == "degraded"


def test_status_line_rates_between_readings() -> None:
    status = StatusLine()
    first = status.render(Counters(ticks=0, signals=0, orders=0, fills=0, rejects=0, pnl=Decimal(0)), 0)
    assert first.startswith("status: ticks/s - ticks 0")
    line = status.render(
        Counters(ticks=2000, signals=30, orders=5, fills=7, rejects=25, pnl=Decimal("-1.234")), 2 * SECOND
    )
    assert line == "status: ticks/s 1,000 ticks 2,000 signals 30 orders 5 fills 7 rejects 25 pnl -1.23"
    assert "\x1b" not in line and "\r" not in line


def _linked(link: VenueLink) -> EngineView:
    return replace(_view(), venue_links=lambda: [link], max_answer_wait_ns=5 * SECOND)


def test_health_venue_with_user_stream_down_is_unhealthy() -> None:
    """A Binance venue whose user-data stream is down cannot report fills: 503, named in the problems."""
    link = VenueLink(venue="BINANCE", stream_connected=False, last_event_ns=90 * SECOND, last_answer_ns=101 * SECOND,
                     oldest_waiting_since_ns=None)

    healthy, body = evaluate_health(_linked(link), 102 * SECOND)

    assert not healthy
    assert body["status"] == "unhealthy"
    assert "venue BINANCE user-data stream down" in body["problems"]
    assert body["venues"]["BINANCE"] == {"user_stream_connected": False, "seconds_since_last_event": 12.0,
                                        "seconds_since_last_answer": 1.0, "oldest_request_waiting_s": None}


def test_health_frozen_venue_is_unhealthy_once_a_request_waits_too_long() -> None:
    """A request unanswered for longer than the bound makes the venue unhealthy; a young one does not."""
    frozen = VenueLink(venue="BINANCE", stream_connected=True, last_event_ns=None, last_answer_ns=80 * SECOND,
                       oldest_waiting_since_ns=96 * SECOND)

    young_ok, _ = evaluate_health(_linked(frozen), 100 * SECOND)
    healthy, body = evaluate_health(_linked(frozen), 102 * SECOND)

    assert young_ok
    assert not healthy
    assert body["problems"] == ["venue BINANCE has not answered a request for 6.0s"]
    assert body["venues"]["BINANCE"]["seconds_since_last_answer"] == 22.0


def test_status_line_shows_pnl_at_the_given_money_places() -> None:
    """The status line's PnL has the instruments' precision (5 places on a 0.01 x 0.001 grid), no exponent."""
    line = StatusLine(5).render(
        Counters(ticks=0, signals=0, orders=0, fills=0, rejects=0, pnl=Decimal("0E-8")), 1)

    assert line.endswith(" pnl 0.00000")
