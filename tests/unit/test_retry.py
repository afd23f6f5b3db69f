"""Backoff and RetryPolicy: exponential growth, cap, seeded jitter, attempts, deadline, Retry-After, bad input."""

from __future__ import annotations

import doctest
import random
from typing import Any

import pytest

from dma_bot import retry
from dma_bot.retry import Backoff, RetryPolicy

FLAT = Backoff(initial_s=0.1, max_s=0.1, jitter=0.0)


def policy(**overrides: Any) -> RetryPolicy:
    fields: dict[str, Any] = {"name": "order.send", "backoff": Backoff(initial_s=0.2, max_s=2.0, jitter=0.0),
                              "max_attempts": 5, "deadline_s": 10.0, "max_retry_after_s": 30.0, **overrides}
    return RetryPolicy(**fields)


# -- Backoff -------------------------------------------------------------------------------------------------


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


def test_backoff_bad_multiplier_or_jitter_names_the_field_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"^multiplier: >= 1, was 0\.5$"):
        Backoff(multiplier=0.5)
    with pytest.raises(ValueError, match=r"^jitter: from 0 to 1, was 1\.5$"):
        Backoff(jitter=1.5)
    with pytest.raises(ValueError, match=r"^initial_s: from 0 \(exclusive\) to max_s \(1\.0\), was 2\.0$"):
        Backoff(initial_s=2.0, max_s=1.0)


# -- RetryPolicy ---------------------------------------------------------------------------------------------


def test_policy_waits_the_backoff_growing_exponentially_up_to_its_cap() -> None:
    rng = random.Random(0)
    delays = [policy(max_attempts=10, deadline_s=100.0).next_delay(n, 0.0, rng) for n in range(1, 10)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0])


def test_policy_jitter_stays_in_bounds_and_repeats_for_a_seed() -> None:
    jittered = policy(backoff=Backoff(initial_s=0.2, max_s=2.0, jitter=0.5), max_attempts=100, deadline_s=1e6)
    rng = random.Random(42)
    for attempt in range(1, 12):
        ceiling = min(2.0, 0.2 * 2 ** (attempt - 1))
        for _ in range(20):
            delay = jittered.next_delay(attempt, 0.0, rng)
            assert delay is not None and ceiling * 0.5 <= delay <= ceiling
    run = [jittered.next_delay(n, 0.0, random.Random(3)) for n in (1, 2, 3)]
    assert run == [jittered.next_delay(n, 0.0, random.Random(3)) for n in (1, 2, 3)]
    rng = random.Random(3)
    assert len({jittered.next_delay(4, 0.0, rng) for _ in range(20)}) > 10


def test_policy_gives_up_once_the_attempts_are_spent() -> None:
    three = policy(max_attempts=3)
    rng = random.Random(0)
    assert three.next_delay(1, 0.0, rng) is not None
    assert three.next_delay(2, 0.0, rng) is not None
    assert three.next_delay(3, 0.0, rng) is None
    assert three.next_delay(3, 0.0, rng, retry_after_s=0.0) is None
    assert policy(max_attempts=1).next_delay(1, 0.0, rng) is None


def test_policy_gives_up_when_the_wait_would_pass_the_deadline() -> None:
    short = policy(backoff=FLAT, max_attempts=100, deadline_s=1.0)
    rng = random.Random(0)
    assert short.next_delay(7, 0.9, rng) == pytest.approx(0.1)  # ends exactly at the deadline: allowed
    assert short.next_delay(7, 0.95, rng) is None
    assert short.next_delay(2, 1.5, rng) is None
    assert short.next_delay(2, 0.5, rng, retry_after_s=0.6) is None  # Retry-After under its cap, but too late
    assert short.next_delay(2, 0.5, rng, retry_after_s=0.4) == pytest.approx(0.4)


def test_policy_simulated_run_stops_at_the_deadline_not_at_the_attempts() -> None:
    """Each attempt takes 0.25 s and waits 0.1 s: with a 1 s budget the third retry would start too late."""
    budget = policy(backoff=FLAT, max_attempts=50, deadline_s=1.0)
    rng = random.Random(0)
    elapsed, attempts = 0.0, 0
    while True:
        attempts += 1
        elapsed += 0.25
        delay = budget.next_delay(attempts, elapsed, rng)
        if delay is None:
            break
        elapsed += delay
    assert attempts == 3 and elapsed == pytest.approx(0.95)


def test_policy_honours_retry_after_instead_of_the_backoff() -> None:
    rng = random.Random(0)
    assert policy().next_delay(1, 0.0, rng, retry_after_s=3) == 3.0
    assert policy().next_delay(4, 0.0, rng, retry_after_s=0) == 0.0  # venue says now: no backoff added
    assert policy(max_retry_after_s=5.0).next_delay(1, 0.0, rng, retry_after_s=5.0) == 5.0


def test_policy_gives_up_when_retry_after_is_over_its_cap() -> None:
    capped = policy(max_retry_after_s=5.0, deadline_s=1000.0)
    rng = random.Random(0)
    assert capped.next_delay(1, 0.0, rng, retry_after_s=5.5) is None
    assert capped.next_delay(1, 0.0, rng, retry_after_s=120) is None
    assert policy(max_retry_after_s=0.0).next_delay(1, 0.0, rng, retry_after_s=1) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, r"^name: a non-empty string, was ''$"),
        ({"backoff": 0.5}, r"^order\.send\.backoff: a Backoff, was float$"),
        ({"max_attempts": 0}, r"^order\.send\.max_attempts: an integer >= 1, was 0$"),
        ({"max_attempts": 2.0}, r"^order\.send\.max_attempts: an integer >= 1, was 2\.0$"),
        ({"deadline_s": 0}, r"^order\.send\.deadline_s: a finite number of seconds > 0, was 0$"),
        ({"deadline_s": float("inf")}, r"^order\.send\.deadline_s: a finite number of seconds > 0, was inf$"),
        ({"max_retry_after_s": -1}, r"^order\.send\.max_retry_after_s: a finite number of seconds >= 0, was -1$"),
    ],
)
def test_policy_rejects_bad_parameters_naming_the_field_and_the_value(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        policy(**overrides)


def test_policy_rejects_bad_arguments_to_next_delay() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match=r"^order\.send\.attempt: >= 1, was 0$"):
        policy().next_delay(0, 0.0, rng)
    with pytest.raises(ValueError, match=r"^order\.send\.elapsed_s: >= 0, was -0\.1$"):
        policy().next_delay(1, -0.1, rng)
    with pytest.raises(ValueError, match=r"^order\.send\.retry_after_s: >= 0 or None, was -1$"):
        policy().next_delay(1, 0.0, rng, retry_after_s=-1)


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        policy().max_attempts = 9  # type: ignore[misc]


def test_module_sample_is_true() -> None:
    result = doctest.testmod(retry)
    assert result.attempted >= 5 and result.failed == 0
