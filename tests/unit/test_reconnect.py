"""Reconnect policy and watchdog: capped jittered backoff, stale and rollover verdicts."""

from __future__ import annotations

import random

import pytest

from dma_bot.feed.binance import combined_stream_url
from dma_bot.feed.reconnect import Backoff, Verdict, Watchdog

S = 1_000_000_000


def test_backoff_grows_exponentially_caps_and_jitters_within_bounds() -> None:
    backoff = Backoff(initial_s=0.5, max_s=30.0, multiplier=2.0, jitter=0.5)
    rng = random.Random(1)
    for attempt in range(1, 40):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = backoff.delay(attempt, rng)
            assert ceiling * 0.5 <= delay <= ceiling
    assert max(backoff.delay(100, rng) for _ in range(100)) <= 30.0


def test_backoff_is_deterministic_for_a_seed_and_jitter_spreads_delays() -> None:
    backoff = Backoff()
    first = [backoff.delay(5, random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1
    rng = random.Random(7)
    assert len({backoff.delay(5, rng) for _ in range(20)}) > 10


def test_backoff_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=0)
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(0, random.Random(1))


def test_watchdog_verdicts() -> None:
    watchdog = Watchdog(stale_after_ns=10 * S, max_age_ns=100 * S)
    assert watchdog.verdict(connected_ns=0, last_frame_ns=5 * S, now_ns=14 * S) is Verdict.OK
    assert watchdog.verdict(connected_ns=0, last_frame_ns=5 * S, now_ns=16 * S) is Verdict.STALE
    assert watchdog.verdict(connected_ns=0, last_frame_ns=0, now_ns=11 * S) is Verdict.STALE
    assert watchdog.verdict(connected_ns=0, last_frame_ns=99 * S, now_ns=101 * S) is Verdict.ROLLOVER
    assert watchdog.next_check_ns(connected_ns=0, last_frame_ns=5 * S) == 15 * S + 1
    assert watchdog.next_check_ns(connected_ns=0, last_frame_ns=95 * S) == 100 * S + 1


def test_combined_stream_url_keeps_the_presets_ws_base() -> None:
    assert (
        combined_stream_url("wss://testnet.binance.vision/ws", ["BTCUSDT", "ETHUSDT"])
        == "wss://testnet.binance.vision/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker"
    )
    assert combined_stream_url("ws://127.0.0.1:8765/ws/", ["BNBUSDT"]) == (
        "ws://127.0.0.1:8765/stream?streams=bnbusdt@bookTicker"
    )
    with pytest.raises(ValueError, match="at least one symbol"):
        combined_stream_url("wss://x/ws", [])
