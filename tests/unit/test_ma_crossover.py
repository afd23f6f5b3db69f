"""Unit tests for dma_bot.strategies.ma_crossover: crosses, first-sign initialisation, cooldown, validation."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, Tick
from dma_bot.strategies import MACrossover, MACrossoverParams, StrategyParams, make_strategy

NOW_NS = 9_000_000


def _tick(mid: int, index: int = 0, symbol: str = "BTCUSDT") -> Tick:
    """A 2-tick-wide quote around ``mid``: bid mid-1, ask mid+1."""
    return Tick(symbol, mid - 1, mid + 1, 1, 1, 1_000 + index, 2_000 + index)


def _run(strategy: MACrossover, mids: list[int]) -> list[tuple[int, Signal]]:
    fired = []
    for index, mid in enumerate(mids):
        signal = strategy.on_tick(_tick(mid, index, strategy.symbol), NOW_NS + index)
        if signal is not None:
            fired.append((index, signal))
    return fired


def _strategy(fast: int = 2, slow: int = 4, min_edge: int = 1, cooldown: int = 1) -> MACrossover:
    params = MACrossoverParams(fast=fast, slow=slow, min_edge_ticks=min_edge, cooldown_ticks=cooldown)
    return MACrossover("BTCUSDT", params, quantity=3)


# Flat 100 fills the windows (diff 0: noise); 110 makes fast 105 > slow 102.5 (first sign +1: initialise);
# 90 gives fast 100 == slow 100 (noise); 90 again gives fast 90 < slow 97.5 (dead cross); 120: golden cross.
CROSSING = [100, 100, 100, 100, 110, 90, 90, 120]


def test_ma_crossover_dead_then_golden_cross_sells_at_bid_then_buys_at_ask() -> None:
    """The dead cross sells at the bid on tick 6, the golden cross buys at the ask on tick 7."""
    strategy = _strategy()

    fired = _run(strategy, CROSSING)

    assert fired == [
        (6, Signal("ma_crossover", "BTCUSDT", Side.SELL, 89, 3, 1_006, NOW_NS + 6)),
        (7, Signal("ma_crossover", "BTCUSDT", Side.BUY, 121, 3, 1_007, NOW_NS + 7)),
    ]


def test_ma_crossover_first_full_window_sign_only_initialises() -> None:
    """A steady rise has fast > slow from the first full window on: no cross, so no signal (the PoC bought)."""
    strategy = _strategy()

    fired = _run(strategy, list(range(100, 140)))

    assert fired == []
    assert strategy.warmed_up


def test_ma_crossover_during_warm_up_silent() -> None:
    """Nothing fires before the slow window is full, even across a violent swing."""
    strategy = _strategy(fast=2, slow=4)

    fired = _run(strategy, [100, 200, 50])

    assert fired == []
    assert not strategy.warmed_up


def test_ma_crossover_earliest_signal_at_tick_index_slow() -> None:
    """Tick 3 fills the slow window and initialises the sign (-5); tick 4 crosses (+5) and buys."""
    strategy = _strategy(fast=2, slow=4)

    fired = _run(strategy, [100, 100, 90, 90, 120])

    assert [(i, s.side, s.price) for i, s in fired] == [(4, Side.BUY, 121)]


def test_ma_crossover_difference_below_min_edge_is_noise() -> None:
    """With min_edge 3 the +2.5 moves are ignored and the -7.5 one only initialises the sign."""
    strategy = _strategy(min_edge=3)

    assert _run(strategy, CROSSING) == []


def test_ma_crossover_cross_inside_cooldown_fires_when_cooldown_elapses() -> None:
    """Cooldown 3: the golden cross on tick 7 (one tick after the sell) is deferred to tick 9."""
    strategy = _strategy(cooldown=3)

    fired = _run(strategy, [*CROSSING, 120, 120])

    assert [(i, s.side) for i, s in fired] == [(6, Side.SELL), (9, Side.BUY)]


def test_ma_crossover_cross_reverted_inside_cooldown_never_fires() -> None:
    """A golden cross that turns back into fast < slow before the cooldown ends produces no buy."""
    strategy = _strategy(cooldown=3)

    fired = _run(strategy, [*CROSSING, 60, 60, 60])

    assert [(i, s.side) for i, s in fired] == [(6, Side.SELL)]


def _reference(quotes: list[tuple[int, int]], params: MACrossoverParams) -> list[tuple[int, Side, int]]:
    mids = [Fraction(bid + ask, 2) for bid, ask in quotes]
    out = []
    prev, since_last = 0, params.cooldown_ticks
    for i, (bid, ask) in enumerate(quotes):
        since_last += 1
        if i + 1 < params.slow:
            continue
        fast = sum(mids[i + 1 - params.fast : i + 1]) / params.fast
        slow = sum(mids[i + 1 - params.slow : i + 1]) / params.slow
        diff = fast - slow
        if abs(diff) < params.min_edge_ticks:
            continue
        sign = 1 if diff > 0 else -1
        if prev == 0:
            prev = sign
        elif sign != prev and since_last >= params.cooldown_ticks:
            prev, since_last = sign, 0
            out.append((i, Side.BUY, ask) if sign > 0 else (i, Side.SELL, bid))
    return out


@pytest.mark.parametrize(
    ("fast", "slow", "min_edge", "cooldown", "seed"),
    [(1, 2, 1, 1, 1), (3, 7, 1, 5, 2), (16, 64, 2, 16, 3), (5, 50, 1, 1, 4)],
)
def test_ma_crossover_random_walk_matches_exact_fraction_reference(
    fast: int, slow: int, min_edge: int, cooldown: int, seed: int
) -> None:
    """On a seeded random walk with half-tick mids, signals equal a rational recomputation of both SMAs."""
    rng = random.Random(seed)
    bid, quotes = 10_000, []
    for _ in range(5_000):
        bid += rng.randint(-3, 3)
        quotes.append((bid, bid + rng.randint(1, 3)))
    params = MACrossoverParams(fast=fast, slow=slow, min_edge_ticks=min_edge, cooldown_ticks=cooldown)
    strategy = MACrossover("BTCUSDT", params, quantity=1)

    fired = []
    for index, (bid, ask) in enumerate(quotes):
        signal = strategy.on_tick(Tick("BTCUSDT", bid, ask, 1, 1, index, index), NOW_NS)
        if signal is not None:
            fired.append((index, signal.side, signal.price))

    assert fired == _reference(quotes, params)
    assert len(fired) > 10


def test_ma_crossover_symbols_keep_independent_windows() -> None:
    """A second symbol's ticks interleaved with the first's leave the first's signals unchanged."""
    params = StrategyParams(ma_crossover=MACrossoverParams(fast=2, slow=4, min_edge_ticks=1, cooldown_ticks=1))
    btc = make_strategy("ma_crossover", params, "BTCUSDT", 3)
    eth = make_strategy("ma_crossover", params, "ETHUSDT", 3)
    fired: list[tuple[int, str, Side]] = []

    for index, mid in enumerate(CROSSING):
        for strategy, price in ((btc, mid), (eth, 5_000)):
            signal = strategy.on_tick(_tick(price, index, strategy.symbol), NOW_NS)
            if signal is not None:
                fired.append((index, signal.symbol, signal.side))

    assert fired == [(6, "BTCUSDT", Side.SELL), (7, "BTCUSDT", Side.BUY)]


def test_ma_crossover_params_default_to_poc_values() -> None:
    """Defaults are the PoC's: fast 16, slow 64, min edge 2 ticks, cooldown 16 ticks."""
    assert MACrossoverParams() == MACrossoverParams(fast=16, slow=64, min_edge_ticks=2, cooldown_ticks=16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fast": 0}, r"ma_crossover\.fast: an integer >= 1, was 0"),
        ({"fast": 8, "slow": 8}, r"ma_crossover\.slow: an integer >= 9 \(greater than fast=8\), was 8"),
        ({"fast": 20, "slow": 10}, r"ma_crossover\.slow: an integer >= 21 \(greater than fast=20\), was 10"),
        ({"min_edge_ticks": 0}, r"ma_crossover\.min_edge_ticks: an integer >= 1, was 0"),
        ({"cooldown_ticks": -5}, r"ma_crossover\.cooldown_ticks: an integer >= 1, was -5"),
        ({"slow": 64.0}, r"ma_crossover\.slow: an integer >= 17 \(greater than fast=16\), was 64\.0"),
    ],
)
def test_ma_crossover_params_out_of_range_raise_naming_field(kwargs: dict[str, object], message: str) -> None:
    """Invalid params fail at construction with '<field>: <allowed>, was <value>'."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        MACrossoverParams(**kwargs)  # type: ignore[arg-type]
