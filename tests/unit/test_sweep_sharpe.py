"""dma_bot.sweep.sharpe: mean/std(ddof=1) of per-minute changes x sqrt(525600), exact; None when undefined."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from decimal import Decimal

from dma_bot.sweep.sharpe import MIN_CHANGES, per_minute_sharpe


def test_sharpe_matches_the_textbook_formula_on_seeded_curves() -> None:
    rng = random.Random(5)
    for _ in range(50):
        closes = [Decimal(rng.randint(-10_000, 10_000)) / 100]
        for _ in range(rng.randint(MIN_CHANGES - 1, 200)):
            closes.append(closes[-1] + Decimal(rng.randint(-500, 520)) / 100)
        changes = [float(closes[0])] + [float(b - a) for a, b in itertools.pairwise(closes)]
        if statistics.stdev(changes) == 0:
            continue
        expected = statistics.mean(changes) / statistics.stdev(changes) * math.sqrt(525_600)
        got = per_minute_sharpe(closes)
        assert got is not None and abs(float(got) - expected) < 1e-5 * max(1.0, abs(expected))


def test_sharpe_first_change_is_from_flat_books() -> None:
    changes = [1, 1, 4, 1, 4, 1, 4, 1, 4, 1]  # the first is the first close itself: the books start at 0
    closes = [Decimal(sum(changes[: index + 1])) for index in range(len(changes))]
    mean = Decimal(sum(changes)) / len(changes)
    variance = sum((Decimal(c) - mean) ** 2 for c in changes) / (len(changes) - 1)
    expected = mean / variance.sqrt() * Decimal(525_600).sqrt()
    assert per_minute_sharpe(closes) == expected.quantize(Decimal("0.000001"))
    assert per_minute_sharpe([close + 100 for close in closes]) != per_minute_sharpe(closes)


def test_sharpe_is_none_below_min_changes_or_without_variation() -> None:
    assert per_minute_sharpe([]) is None
    assert per_minute_sharpe([Decimal(5)]) is None
    nine = [Decimal(1), Decimal(3)] * 4 + [Decimal(1)]
    assert len(nine) == MIN_CHANGES - 1 and per_minute_sharpe(nine) is None  # too few minutes: noise
    assert per_minute_sharpe([*nine, Decimal(3)]) is not None
    assert per_minute_sharpe([Decimal(index) for index in range(1, 40)]) is None  # every change 1
    assert per_minute_sharpe([Decimal(0)] * 40) is None
