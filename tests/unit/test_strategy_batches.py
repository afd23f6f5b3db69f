"""Unit tests for the strategies' ``on_batch``: exactly ``on_tick`` over the rows, signals and state alike.

Each strategy is fed the same seeded random walk twice: a reference instance tick by tick, the instance under
test through a random mix of ``on_tick`` calls and ``on_batch`` calls of 1 to 300 rows (so both the per-row
loop and the numpy path run, also across the end of warm-up), comparing the signals and every slot after every
step.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import pytest

from dma_bot.model.enums import Side
from dma_bot.model.events import Signal, SignalBatch, Tick, TickBatch, tick_batch
from dma_bot.strategies import (
    MACrossover,
    MACrossoverParams,
    MeanReversion,
    MeanReversionParams,
    VolBreakout,
    VolBreakoutParams,
)

Strategy = MeanReversion | MACrossover | VolBreakout
Factory = Callable[[], Strategy]
SYMBOL = "BTCUSDT"


def _mean_reversion(window: int, edge: int, cooldown: int = 0) -> Factory:
    params = MeanReversionParams(window=window, edge_ticks=edge, cooldown_ticks=cooldown)
    return lambda: MeanReversion(SYMBOL, params, 7)


def _ma_crossover(fast: int, slow: int, edge: int, cooldown: int) -> Factory:
    params = MACrossoverParams(fast=fast, slow=slow, min_edge_ticks=edge, cooldown_ticks=cooldown)
    return lambda: MACrossover(SYMBOL, params, 3)


def _vol_breakout(window: int, edge: int, cooldown: int) -> Factory:
    return lambda: VolBreakout(SYMBOL, VolBreakoutParams(window=window, edge_ticks=edge, cooldown_ticks=cooldown), 5)


FACTORIES = {
    "mean_reversion_1_0": _mean_reversion(1, 0),
    "mean_reversion_3_0": _mean_reversion(3, 0),
    "mean_reversion_20_1": _mean_reversion(20, 1),
    "mean_reversion_64_3": _mean_reversion(64, 3),
    "mean_reversion_1_0_cooldown_1": _mean_reversion(1, 0, 1),
    "mean_reversion_3_0_cooldown_5": _mean_reversion(3, 0, 5),
    "mean_reversion_20_1_cooldown_16": _mean_reversion(20, 1, 16),
    "mean_reversion_64_3_cooldown_200": _mean_reversion(64, 3, 200),
    "ma_crossover_1_2_1_1": _ma_crossover(1, 2, 1, 1),
    "ma_crossover_2_5_1_1": _ma_crossover(2, 5, 1, 1),
    "ma_crossover_3_8_1_4": _ma_crossover(3, 8, 1, 4),
    "ma_crossover_16_64_2_16": _ma_crossover(16, 64, 2, 16),
    "vol_breakout_1_0_1": _vol_breakout(1, 0, 1),
    "vol_breakout_3_0_1": _vol_breakout(3, 0, 1),
    "vol_breakout_10_1_3": _vol_breakout(10, 1, 3),
    "vol_breakout_100_5_20": _vol_breakout(100, 5, 20),
}
CLASSES = {
    MeanReversion: "mean_reversion_20_1",
    MACrossover: "ma_crossover_3_8_1_4",
    VolBreakout: "vol_breakout_10_1_3",
}


def _walk(rng: random.Random, length: int, base: int) -> tuple[list[int], list[int]]:
    """Bids moving -3..+3 with spreads 1..3, one flat stretch with a locked or crossed book, and a jump of up to
    40 ticks about every 100 quotes (so that a 100-quote range breaks too)."""
    flat_from = rng.randrange(length // 2)
    flat_to = flat_from + rng.randint(20, 200)
    bid, bids, asks = base, [], []
    for index in range(length):
        if flat_from <= index < flat_to:
            bids.append(bid)
            asks.append(bid - rng.randint(0, 2))
            continue
        bid += rng.randint(-3, 3) if rng.random() >= 0.01 else rng.randint(-40, 40)
        bids.append(bid)
        asks.append(bid + rng.randint(1, 3))
    return bids, asks


def _state(strategy: Strategy) -> dict[str, object]:
    state: dict[str, object] = {}
    for slot in type(strategy).__slots__:
        value = getattr(strategy, slot)
        state[slot] = (list(value), value.maxlen) if isinstance(value, deque) else value
    return state


def _assert_exact_types(signals: list[Signal]) -> None:
    for signal in signals:
        assert type(signal) is Signal
        assert type(signal.side) is Side
        assert all(type(value) is int for value in signal[3:]), signal


def _batch(bids: list[int], asks: list[int], ts_event_ns: int) -> TickBatch:
    return tick_batch(SYMBOL, bids, asks, [1] * len(bids), [2] * len(bids), ts_event_ns, ts_event_ns + 5)


def _on_ticks(strategy: Strategy, batch: TickBatch, now_ns: int) -> list[Signal]:
    return [signal for tick in batch.rows() if (signal := strategy.on_tick(tick, now_ns)) is not None]


def _feed_in_random_pieces(factory: Factory, bids: list[int], asks: list[int], seed: int) -> int:
    """Feed the quotes to a reference tick by tick and to another instance in random pieces; compare the
    signals and the whole state after every piece. Returns the number of signals."""
    rng = random.Random(seed)
    reference, batched = factory(), factory()
    assert _state(batched) == _state(reference)
    start, step, fired = 0, 0, 0
    while start < len(bids):
        step += 1
        now_ns = 1_000_000 + step
        if rng.random() < 0.3:
            tick = Tick(SYMBOL, bids[start], asks[start], 1, 2, step, step + 5)
            expected = reference.on_tick(tick, now_ns)
            assert batched.on_tick(tick, now_ns) == expected
            fired += expected is not None
            start += 1
        else:
            stop = start + rng.choice((rng.randint(1, 20), rng.randint(1, 300)))
            batch = _batch(bids[start:stop], asks[start:stop], step)
            expected_list = _on_ticks(reference, batch, now_ns)
            got = _signals(batched.on_batch(batch, now_ns))
            assert got == expected_list, f"step {step}, rows {start}..{stop}"
            _assert_exact_types(got)
            fired += len(got)
            start = stop
        assert _state(batched) == _state(reference), f"step {step}, row {start}"
    return fired


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize(("seed", "base"), [(1, 10_000), (2, 10_000), (3, 2**40 - 1_000)])
def test_on_batch_random_pieces_match_on_tick_signals_and_state(name: str, seed: int, base: int) -> None:
    """Any split of a walk into on_tick calls and batches gives the reference's signals and state at each step."""
    bids, asks = _walk(random.Random(seed), 2_500, base)

    fired = _feed_in_random_pieces(FACTORIES[name], bids, asks, seed)

    assert fired > 3


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("ticks_before", [0, 5, 7])
def test_on_batch_straddling_warm_up_matches_on_tick(cls: type[Strategy], ticks_before: int) -> None:
    """One 200-row batch that starts inside warm-up (or on a fresh instance) signals from the same rows on."""
    bids, asks = _walk(random.Random(11), 200 + ticks_before, 50_000)
    factory = FACTORIES[CLASSES[cls]]
    reference, batched = factory(), factory()
    for bid, ask in zip(bids[:ticks_before], asks[:ticks_before], strict=True):
        tick = Tick(SYMBOL, bid, ask, 1, 2, 0, 0)
        assert batched.on_tick(tick, 0) == reference.on_tick(tick, 0)
    batch = _batch(bids[ticks_before:], asks[ticks_before:], 77)

    got = _signals(batched.on_batch(batch, 88))

    assert got == _on_ticks(reference, batch, 88)
    assert got
    assert _state(batched) == _state(reference)


@pytest.mark.parametrize(
    "factory",
    [_mean_reversion(100, 1), _ma_crossover(16, 100, 1, 5), _vol_breakout(150, 1, 5)],
    ids=["mean_reversion", "ma_crossover", "vol_breakout"],
)
def test_on_batch_inside_then_across_warm_up_matches_on_tick(factory: Factory) -> None:
    """A large batch that ends inside warm-up counts it down like on_tick; the next one crosses its end."""
    bids, asks = _walk(random.Random(13), 400, 70_000)
    reference, batched = factory(), factory()
    inside, across = _batch(bids[:97], asks[:97], 1), _batch(bids[97:], asks[97:], 2)

    assert _signals(batched.on_batch(inside, 3)) == _on_ticks(reference, inside, 3) == []
    assert _state(batched) == _state(reference)
    assert not batched.warmed_up
    got = _signals(batched.on_batch(across, 4))

    assert got == _on_ticks(reference, across, 4)
    assert got
    assert _state(batched) == _state(reference)


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda cls: cls.__name__)
def test_on_batch_signal_fields_are_python_ints_with_batch_timestamps(cls: type[Strategy]) -> None:
    """Signals built from numpy columns carry Python ints and the Side enum, and the batch's ts_event_ns."""
    bids, asks = _walk(random.Random(5), 300, 10_000)
    strategy = FACTORIES[CLASSES[cls]]()

    signals = _signals(strategy.on_batch(_batch(bids, asks, 1_234), 5_678))

    assert signals
    _assert_exact_types(signals)
    assert {(s.ts_event_ns, s.ts_ns, s.symbol, s.strategy) for s in signals} == {(1_234, 5_678, SYMBOL, strategy.name)}


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda cls: cls.__name__)
def test_on_batch_large_batch_never_calls_on_tick(cls: type[Strategy], monkeypatch: pytest.MonkeyPatch) -> None:
    """A 300-row batch after warm-up is computed on the columns: with on_tick raising it still matches."""
    bids, asks = _walk(random.Random(21), 600, 10_000)
    factory = FACTORIES[CLASSES[cls]]
    reference, batched = factory(), factory()
    first, second = _batch(bids[:300], asks[:300], 1), _batch(bids[300:], asks[300:], 2)
    expected = _on_ticks(reference, first, 3) + _on_ticks(reference, second, 3)

    def refuse(self: Strategy, tick: Tick, now_ns: int) -> Signal | None:
        raise AssertionError("on_batch fell back to on_tick")

    monkeypatch.setattr(cls, "on_tick", refuse)
    got = _signals(batched.on_batch(first, 3)) + _signals(batched.on_batch(second, 3))

    assert got == expected
    assert len(got) > 3
    assert _state(batched) == _state(reference)


@pytest.mark.parametrize("name", ["mean_reversion_3_0", "ma_crossover_2_5_1_1", "vol_breakout_3_0_1"])
def test_on_batch_values_near_2_pow_62_take_the_exact_loop(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quotes near 2**62 (mid2 beyond int64) go row by row, exactly; so does the next batch, whose window still
    holds them; once they left the window, the numpy path is back."""
    rng = random.Random(8)
    huge_bids, huge_asks = _walk(rng, 100, 2**62 + 1_000)
    small_bids, small_asks = _walk(rng, 200, 10_000)  # 100-row batches: above every _VECTOR_MIN
    factory = FACTORIES[name]
    reference, batched = factory(), factory()
    calls = 0
    original = type(batched).on_tick

    def counting(self: Strategy, tick: Tick, now_ns: int) -> Signal | None:
        nonlocal calls
        calls += self is batched
        return original(self, tick, now_ns)

    monkeypatch.setattr(type(batched), "on_tick", counting)
    pieces = [
        _batch(huge_bids, huge_asks, 1),
        _batch(small_bids[:100], small_asks[:100], 2),
        _batch(small_bids[100:], small_asks[100:], 3),
    ]
    calls_after = []
    for batch in pieces:
        assert _signals(batched.on_batch(batch, 9)) == _on_ticks(reference, batch, 9)
        assert _state(batched) == _state(reference)
        calls_after.append(calls)

    assert calls_after == [100, 200, 200]


def test_ma_crossover_on_batch_noise_keeps_first_sign_unset_until_a_later_batch() -> None:
    """A flat batch after warm-up leaves the first sign unset; the next batch sets it on the rise and sells on
    the fall, as tick by tick."""
    mids = [1_000] * 100 + [1_000 + i for i in range(50)] + [1_050 - 2 * i for i in range(50)]
    bids, asks = [mid - 1 for mid in mids], [mid + 1 for mid in mids]
    factory = FACTORIES["ma_crossover_3_8_1_4"]
    reference, batched = factory(), factory()
    flat, moving = _batch(bids[:100], asks[:100], 1), _batch(bids[100:], asks[100:], 2)

    assert _signals(batched.on_batch(flat, 5)) == _on_ticks(reference, flat, 5) == []
    assert _state(batched) == _state(reference)
    assert batched.warmed_up
    assert batched._prev_sign == 0
    got = _signals(batched.on_batch(moving, 6))

    assert got == _on_ticks(reference, moving, 6)
    assert [signal.side for signal in got] == [Side.SELL]
    assert _state(batched) == _state(reference)


def _signals(batch: SignalBatch | None) -> list[Signal]:
    """The rows of what on_batch returned ([] for None); a returned batch is never empty."""
    assert batch is None or len(batch) > 0
    return [] if batch is None else batch.rows()
