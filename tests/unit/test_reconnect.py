"""The stream watchdog (stale and rollover verdicts) and the combined-stream URL; Backoff is in test_retry.py."""

from __future__ import annotations

import pytest

from dma_bot.feed.binance import combined_stream_url
from dma_bot.feed.reconnect import Verdict, Watchdog

S = 1_000_000_000


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
