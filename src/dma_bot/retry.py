"""Retry and reconnect timing: pure decisions on numbers it is given; no asyncio, no clock, no I/O.

:class:`Backoff` gives the delay before attempt *n*: exponential from ``initial_s``, capped at ``max_s``,
with full jitter in ``[delay * (1 - jitter), delay]`` drawn from a seeded ``random.Random``, so a fleet of
daemons does not retry in lock-step and tests are deterministic. Streams use it alone to reconnect (a
connection that stayed up for ``reset_after_s`` resets the attempt count).

:class:`RetryPolicy` is a named Backoff with limits, for a request that is retried: at most
``max_attempts`` attempts, none that would start past ``deadline_s`` after the first, and a venue's
Retry-After honoured as given but never waited for when it is over ``max_retry_after_s``. The caller
measures the elapsed time with its own clock, decides which failures are retryable at all, and sleeps.
It does not know exceptions or venues.

    >>> policy = RetryPolicy(name="order.query", backoff=Backoff(initial_s=0.2, max_s=2.0, jitter=0.0),
    ...                      max_attempts=5, deadline_s=10.0, max_retry_after_s=30.0)
    >>> rng = random.Random(0)
    >>> policy.next_delay(1, 0.05, rng), policy.next_delay(3, 0.7, rng)
    (0.2, 0.8)
    >>> policy.next_delay(2, 0.3, rng, retry_after_s=3.0), policy.next_delay(2, 0.3, rng, retry_after_s=60.0)
    (3.0, None)
    >>> policy.next_delay(5, 1.5, rng), policy.next_delay(2, 9.9, rng)  # attempts spent; past the deadline
    (None, None)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Backoff", "RetryPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Capped, jittered exponential delays; ``delay(attempt, rng)`` for attempt 1, 2, ..."""

    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    reset_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"initial_s: from 0 (exclusive) to max_s ({self.max_s}), was {self.initial_s}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier: >= 1, was {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter: from 0 to 1, was {self.jitter}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt`` (1 = the first reconnect)."""
        if attempt < 1:
            raise ValueError(f"attempt: >= 1, was {attempt}")
        ceiling = min(self.max_s, self.initial_s * self.multiplier ** min(attempt - 1, 64))
        return ceiling * (1 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How one kind of request is retried; ``name`` ("order.send", ...) labels its logs and counters."""

    name: str
    backoff: Backoff
    max_attempts: int
    deadline_s: float
    max_retry_after_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: a non-empty string, was {self.name!r}")
        if not isinstance(self.backoff, Backoff):
            raise ValueError(f"{self.name}.backoff: a Backoff, was {type(self.backoff).__name__}")
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise ValueError(f"{self.name}.max_attempts: an integer >= 1, was {self.max_attempts!r}")
        if not (isinstance(self.deadline_s, int | float) and 0 < self.deadline_s < math.inf):
            raise ValueError(f"{self.name}.deadline_s: a finite number of seconds > 0, was {self.deadline_s!r}")
        if not (isinstance(self.max_retry_after_s, int | float) and 0 <= self.max_retry_after_s < math.inf):
            raise ValueError(
                f"{self.name}.max_retry_after_s: a finite number of seconds >= 0, was {self.max_retry_after_s!r}"
            )

    def next_delay(
        self, attempt: int, elapsed_s: float, rng: random.Random, retry_after_s: float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``attempt`` is how many attempts have been made (1 after the first failed), ``elapsed_s`` the time
        since the first one started, ``retry_after_s`` what the venue asked for (it replaces the backoff).
        None when the attempts are spent, when Retry-After is over ``max_retry_after_s``, or when the next
        attempt would start after ``deadline_s``.
        """
        if attempt < 1:
            raise ValueError(f"{self.name}.attempt: >= 1, was {attempt}")
        if not elapsed_s >= 0:
            raise ValueError(f"{self.name}.elapsed_s: >= 0, was {elapsed_s}")
        if retry_after_s is not None and not retry_after_s >= 0:
            raise ValueError(f"{self.name}.retry_after_s: >= 0 or None, was {retry_after_s}")
        if attempt >= self.max_attempts:
            return None
        if retry_after_s is None:
            delay = self.backoff.delay(attempt, rng)
        elif retry_after_s > self.max_retry_after_s:
            return None
        else:
            delay = float(retry_after_s)
        return delay if elapsed_s + delay <= self.deadline_s else None
