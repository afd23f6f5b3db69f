"""Unit tests for dma_bot.strategies.vol_breakout: breakouts against the previous window, expiry, cooldown."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, Tick
from dma_bot.strategies import StrategyParams, VolBreakout, VolBreakoutParams, make_strategy

NOW_NS = 9_000_000


def _tick(mid: int, index: int = 0, symbol: str = "BTCUSDT") -> Tick:
    """A 2-tick-wide quote around ``mid``: bid mid-1, ask mid+1."""
    return Tick(symbol, mid - 1, mid + 1, 1, 1, 1_000 + index, 2_000 + index)


def _run(strategy: VolBreakout, mids: list[int]) -> list[tuple[int, Signal]]:
    fired = []
    for index, mid in enumerate(mids):
        signal = strategy.on_tick(_tick(mid, index, strategy.symbol), NOW_NS + index)
        if signal is not None:
            fired.append((index, signal))
    return fired


def _strategy(window: int = 3, edge: int = 1, cooldown: int = 1) -> VolBreakout:
    return VolBreakout("BTCUSDT", VolBreakoutParams(window=window, edge_ticks=edge, cooldown_ticks=cooldown), 5)


def test_vol_breakout_mid_above_previous_high_plus_edge_buys_at_ask() -> None:
    """Range 101 then mid 103 > 101 + 1: a buy at the ask (the PoC compared with a window holding 103: never)."""
    strategy = _strategy()

    fired = _run(strategy, [101, 101, 101, 103])

    assert fired == [(3, Signal("vol_breakout", "BTCUSDT", Side.BUY, 104, 5, 1_003, NOW_NS + 3))]


def test_vol_breakout_mid_below_previous_low_minus_edge_sells_at_bid() -> None:
    """Range 101 then mid 99 < 101 - 1: a sell at the bid."""
    strategy = _strategy()

    fired = _run(strategy, [101, 101, 101, 99])

    assert [(i, s.side, s.price) for i, s in fired] == [(3, Side.SELL, 98)]


def test_vol_breakout_mid_exactly_at_high_plus_edge_is_no_breakout() -> None:
    """The test is strict: mid 102 == 101 + 1 and mid 100 == 101 - 1 do not fire."""
    strategy = _strategy()

    assert _run(strategy, [101, 101, 101, 102, 100]) == []


def test_vol_breakout_half_tick_mid_compared_exactly() -> None:
    """Mid 102.5 (bid 102, ask 103) clears 101 + 1 by half a tick; the PoC's truncated mid 102 would not."""
    strategy = _strategy()
    for index in range(3):
        strategy.on_tick(_tick(101, index), NOW_NS)

    signal = strategy.on_tick(Tick("BTCUSDT", 102, 103, 1, 1, 7, 7), NOW_NS)

    assert signal is not None
    assert (signal.side, signal.price) == (Side.BUY, 103)


def test_vol_breakout_during_warm_up_silent_first_signal_at_index_window() -> None:
    """With window 3, a jump on tick 2 cannot fire (only two earlier mids); tick 3 is the first that can."""
    strategy = _strategy(window=3)

    fired = _run(strategy, [101, 101, 200, 300])

    assert [i for i, _ in fired] == [3]


def test_vol_breakout_high_expires_after_window_ticks() -> None:
    """A spike to 110 bounds the range for exactly three ticks; 103 then breaks the 101..102 range."""
    strategy = _strategy(window=3, edge=0)

    fired = _run(strategy, [101, 110, 101, 101, 102, 102, 103])

    assert [(i, s.side) for i, s in fired] == [(6, Side.BUY)]


@pytest.mark.parametrize(("cooldown", "expected"), [(1, [3, 4, 5, 6]), (2, [3, 5]), (3, [3, 6])])
def test_vol_breakout_cooldown_spaces_signals(cooldown: int, expected: list[int]) -> None:
    """A steady climb breaks out on every tick; the cooldown keeps `cooldown` ticks between signals."""
    strategy = _strategy(window=3, edge=1, cooldown=cooldown)

    fired = _run(strategy, [101, 101, 101, 103, 105, 107, 109])

    assert [i for i, _ in fired] == expected


def _reference(quotes: list[tuple[int, int]], params: VolBreakoutParams) -> list[tuple[int, Side, int]]:
    mids = [Fraction(bid + ask, 2) for bid, ask in quotes]
    out = []
    since_last = params.cooldown_ticks
    for i, (bid, ask) in enumerate(quotes):
        since_last += 1
        if i < params.window or since_last < params.cooldown_ticks:
            continue
        previous = mids[i - params.window : i]
        if mids[i] > max(previous) + params.edge_ticks:
            since_last = 0
            out.append((i, Side.BUY, ask))
        elif mids[i] < min(previous) - params.edge_ticks:
            since_last = 0
            out.append((i, Side.SELL, bid))
    return out


@pytest.mark.parametrize(
    ("window", "edge", "cooldown", "seed"),
    [(1, 0, 1, 1), (2, 0, 1, 2), (10, 1, 3, 3), (30, 0, 1, 4), (100, 5, 20, 5)],
)
def test_vol_breakout_random_walk_matches_rescanning_reference(
    window: int, edge: int, cooldown: int, seed: int
) -> None:
    """On a seeded random walk, the monotonic deques give the same signals as rescanning the raw window."""
    rng = random.Random(seed)
    bid, quotes = 10_000, []
    for _ in range(5_000):
        bid += rng.choice((-12, -4, -1, 0, 0, 0, 1, 4, 12))
        quotes.append((bid, bid + rng.randint(1, 3)))
    params = VolBreakoutParams(window=window, edge_ticks=edge, cooldown_ticks=cooldown)
    strategy = VolBreakout("BTCUSDT", params, 1)

    fired = []
    for index, (bid, ask) in enumerate(quotes):
        signal = strategy.on_tick(Tick("BTCUSDT", bid, ask, 1, 1, index, index), NOW_NS)
        if signal is not None:
            fired.append((index, signal.side, signal.price))

    assert fired == _reference(quotes, params)
    assert len(fired) > 5
    last_mid2s = [b + a for b, a in quotes[-window:]]
    assert (strategy.rolling_high, strategy.rolling_low) == (max(last_mid2s), min(last_mid2s))


def test_vol_breakout_symbols_keep_independent_windows() -> None:
    """A second symbol quoting far higher does not widen the first symbol's range."""
    params = StrategyParams(vol_breakout=VolBreakoutParams(window=3, edge_ticks=1, cooldown_ticks=1))
    btc = make_strategy("vol_breakout", params, "BTCUSDT", 5)
    eth = make_strategy("vol_breakout", params, "ETHUSDT", 5)
    fired: list[tuple[int, str, Side]] = []

    for index, mid in enumerate([101, 101, 101, 103]):
        for strategy, price in ((btc, mid), (eth, 5_000)):
            signal = strategy.on_tick(_tick(price, index, strategy.symbol), NOW_NS)
            if signal is not None:
                fired.append((index, signal.symbol, signal.side))

    assert fired == [(3, "BTCUSDT", Side.BUY)]


def test_vol_breakout_params_defaults() -> None:
    """The PoC's window (100) and cooldown (20 ticks); the edge is 2 ticks, not the PoC's 5 (see below)."""
    assert VolBreakoutParams() == VolBreakoutParams(window=100, edge_ticks=2, cooldown_ticks=20)


def test_vol_breakout_defaults_fire_on_the_mock_walk() -> None:
    """With the defaults (the mock preset) the breakout trades on the mock feed's walk, whose mid moves at most
    4 ticks a quote: with the PoC's 5-tick edge it never fired, so the mock preset ran two strategies."""
    from dma_bot.config import load_config
    from dma_bot.feed.mock import RandomWalk
    from dma_bot.params import mock_instruments, random_walk_params, strategy_params

    config = load_config({}, {})
    instruments = mock_instruments(config)
    walk = RandomWalk(config["SYMBOLS"], random_walk_params(config, instruments), config["MOCK_SEED"])
    batches = walk.next_rounds(20_000, 0)
    counts: dict[int, int] = {}
    for edge in (config["VB_EDGE_TICKS"], 5):
        params = strategy_params(config)
        if edge != config["VB_EDGE_TICKS"]:
            params = StrategyParams(vol_breakout=VolBreakoutParams(edge_ticks=edge))
        counts[edge] = sum(len(make_strategy("vol_breakout", params, batch.symbol, 1).signal_rows(batch.bid,
                                                                                                batch.ask)[0])
                           for batch in batches)
    assert counts[2] > 100
    assert counts[5] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, r"vol_breakout\.window: an integer >= 1, was 0"),
        ({"edge_ticks": -1}, r"vol_breakout\.edge_ticks: an integer >= 0, was -1"),
        ({"cooldown_ticks": 0}, r"vol_breakout\.cooldown_ticks: an integer >= 1, was 0"),
        ({"window": "100"}, r"vol_breakout\.window: an integer >= 1, was '100'"),
    ],
)
def test_vol_breakout_params_out_of_range_raise_naming_field(kwargs: dict[str, object], message: str) -> None:
    """Invalid params fail at construction with '<field>: <allowed>, was <value>'."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        VolBreakoutParams(**kwargs)  # type: ignore[arg-type]
