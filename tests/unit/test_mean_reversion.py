"""Unit tests for dma_bot.strategies.mean_reversion: hand-made series, exact fair value, warm-up, validation."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, Tick
from dma_bot.strategies import MeanReversion, MeanReversionParams, StrategyParams, make_strategy

NOW_NS = 9_000_000


def _tick(bid: int, ask: int, index: int = 0, symbol: str = "BTCUSDT") -> Tick:
    return Tick(symbol, bid, ask, 1, 1, 1_000 + index, 2_000 + index)


def _run(strategy: MeanReversion, quotes: list[tuple[int, int]]) -> list[tuple[int, Signal]]:
    fired = []
    for index, (bid, ask) in enumerate(quotes):
        signal = strategy.on_tick(_tick(bid, ask, index, strategy.symbol), NOW_NS + index)
        if signal is not None:
            fired.append((index, signal))
    return fired


def _strategy(window: int = 4, edge: int = 1, symbol: str = "BTCUSDT") -> MeanReversion:
    return MeanReversion(symbol, MeanReversionParams(window=window, edge_ticks=edge), quantity=7)


def test_mean_reversion_drop_below_fair_buys_at_ask_with_tick_timestamps() -> None:
    """Flat at mid 101, then a drop: fair (101*3 + 95.5) / 4 = 99.625, ask 96 < 98.625 buys at the ask."""
    strategy = _strategy()

    fired = _run(strategy, [(100, 102)] * 4 + [(95, 96)])

    assert fired == [(4, Signal("mean_reversion", "BTCUSDT", Side.BUY, 96, 7, 1_004, NOW_NS + 4))]


def test_mean_reversion_spike_above_fair_sells_at_bid() -> None:
    """Flat at mid 101, then a spike: fair 102.625, bid 107 > 103.625 sells at the bid."""
    strategy = _strategy()

    fired = _run(strategy, [(100, 102)] * 4 + [(107, 108)])

    assert [(i, s.side, s.price) for i, s in fired] == [(4, Side.SELL, 107)]


def test_mean_reversion_flat_market_stays_silent() -> None:
    """A quote that never leaves its own fair value never signals."""
    strategy = _strategy()

    assert _run(strategy, [(100, 102)] * 200) == []


def test_mean_reversion_first_signal_possible_when_window_full() -> None:
    """The window includes the current tick, so a drop on tick window-1 fires on that tick."""
    strategy = _strategy(window=4)

    fired = _run(strategy, [(100, 102)] * 3 + [(95, 96)])

    assert [i for i, _ in fired] == [3]


def test_mean_reversion_during_warm_up_silent() -> None:
    """Before the window is full nothing fires, however far the price moves."""
    strategy = _strategy(window=4)

    fired = _run(strategy, [(100, 102), (50, 51), (150, 151)])

    assert fired == []
    assert not strategy.warmed_up


def test_mean_reversion_ask_exactly_at_fair_minus_edge_does_not_buy() -> None:
    """The test is strict: ask 18 == fair 19 - edge 1 is no signal, ask 17 < 18.5 - 1 is a buy."""
    at_edge = _strategy(window=2, edge=1)
    below = _strategy(window=2, edge=1)

    assert _run(at_edge, [(20, 22), (16, 18)]) == []
    assert [(i, s.price) for i, s in _run(below, [(20, 22), (15, 17)])] == [(1, 17)]


def test_mean_reversion_half_tick_fair_value_buys_where_truncation_would_not() -> None:
    """Mids 12.5 and 10.5 make fair 11.5 > ask 11; the PoC's truncated mids gave fair 11 and no buy."""
    strategy = _strategy(window=2, edge=0)

    fired = _run(strategy, [(12, 13), (10, 11)])

    assert [(i, s.side, s.price) for i, s in fired] == [(1, Side.BUY, 11)]


def _reference(quotes: list[tuple[int, int]], window: int, edge: int) -> list[tuple[int, Side, int]]:
    mids = [Fraction(bid + ask, 2) for bid, ask in quotes]
    out = []
    for i, (bid, ask) in enumerate(quotes):
        if i + 1 < window:
            continue
        fair = sum(mids[i + 1 - window : i + 1]) / window
        if ask < fair - edge:
            out.append((i, Side.BUY, ask))
        elif bid > fair + edge:
            out.append((i, Side.SELL, bid))
    return out


@pytest.mark.parametrize(("window", "edge", "seed"), [(2, 0, 1), (4, 1, 2), (16, 0, 3), (64, 3, 4)])
def test_mean_reversion_random_walk_matches_exact_fraction_reference(window: int, edge: int, seed: int) -> None:
    """On a seeded random walk, every signal equals a rational-arithmetic recomputation from the raw window."""
    rng = random.Random(seed)
    bid, quotes = 10_000, []
    for _ in range(3_000):
        bid += rng.randint(-3, 3)
        quotes.append((bid, bid + rng.randint(1, 3)))
    strategy = _strategy(window=window, edge=edge)

    fired = [(i, s.side, s.price) for i, s in _run(strategy, quotes)]

    assert fired == _reference(quotes, window, edge)
    assert len(fired) > 10


def test_mean_reversion_symbols_keep_independent_windows() -> None:
    """Ticks of another symbol interleaved at a far lower price do not move this symbol's fair value."""
    params = StrategyParams(mean_reversion=MeanReversionParams(window=4, edge_ticks=1))
    btc = make_strategy("mean_reversion", params, "BTCUSDT", 1)
    eth = make_strategy("mean_reversion", params, "ETHUSDT", 1)
    fired: list[tuple[int, str, Side]] = []

    for index, (bid, ask) in enumerate([(100, 102)] * 4 + [(95, 96)]):
        for strategy, offset in ((btc, 0), (eth, -50)):
            signal = strategy.on_tick(_tick(bid + offset, ask + offset, index, strategy.symbol), NOW_NS)
            if signal is not None:
                fired.append((index, signal.symbol, signal.side))

    assert fired == [(4, "BTCUSDT", Side.BUY), (4, "ETHUSDT", Side.BUY)]


def test_mean_reversion_params_default_to_poc_values() -> None:
    """Defaults are the PoC's: window 64, edge 3 ticks."""
    assert MeanReversionParams() == MeanReversionParams(window=64, edge_ticks=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "mean_reversion.window: an integer >= 1, was 0"),
        ({"window": 2.5}, "mean_reversion.window: an integer >= 1, was 2.5"),
        ({"edge_ticks": -1}, "mean_reversion.edge_ticks: an integer >= 0, was -1"),
        ({"edge_ticks": True}, "mean_reversion.edge_ticks: an integer >= 0, was True"),
    ],
)
def test_mean_reversion_params_out_of_range_raise_naming_field(kwargs: dict[str, object], message: str) -> None:
    """Invalid params fail at construction with '<field>: <allowed>, was <value>'."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        MeanReversionParams(**kwargs)  # type: ignore[arg-type]


def test_mean_reversion_non_positive_quantity_raises() -> None:
    """A signal must trade at least one step."""
    with pytest.raises(ValueError, match=r"^quantity: an integer >= 1, was 0$"):
        MeanReversion("BTCUSDT", MeanReversionParams(), 0)
