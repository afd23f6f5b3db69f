"""Client order ids for parent orders: a per-run prefix (wall-clock millisecond + randomness) and a counter.

Owns the spelling of parent ids and the guarantee that every child id the router derives from them
(``f"{parent}-{venue}"``, venue names ``^[A-Za-z0-9_]{1,12}$``) still satisfies Binance's
``newClientOrderId`` rule ``^[a-zA-Z0-9-_]{1,36}$``: a parent id is at most 23 characters, so the counter
is capped by the digits the prefix leaves. It does not route, persist or parse ids: no stage ever reads a
fact (venue, strategy) back out of an id.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_PARENT_ID_LENGTH", "ClientOrderIds", "run_prefix"]

MAX_PARENT_ID_LENGTH: Final = 23
"""36 (Binance) - 1 ("-") - 12 (longest venue name)."""

_PREFIX: Final = re.compile(r"[A-Za-z0-9_]{1,12}")
_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


class ClientOrderIds:
    """Issues ``f"{prefix}{n}"`` for n = first, first + 1, ...; raises OverflowError past the 23-char cap.

    ``first`` exists for tests and for resuming a numbering; the daemon starts at 1 with a fresh
    :func:`run_prefix` (12 characters: numbers up to 10**11 - 1).
    """

    __slots__ = ("_last", "_max", "_prefix")

    def __init__(self, prefix: str, *, first: int = 1) -> None:
        if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix) is None:
            raise ValueError(f"prefix: 1 to 12 characters of [A-Za-z0-9_], was {prefix!r}")
        self._prefix = prefix
        self._max = 10 ** (MAX_PARENT_ID_LENGTH - len(prefix)) - 1
        if type(first) is not int or not 1 <= first <= self._max:
            raise ValueError(f"first: an int in 1..{self._max}, was {first!r}")
        self._last = first - 1

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def issued(self) -> int:
        """The last number handed out (0 before the first id)."""
        return self._last

    def next(self) -> str:
        n = self._last + 1
        if n > self._max:
            raise OverflowError(f"client order ids: prefix {self._prefix!r} allows numbers up to {self._max}, was {n}")
        self._last = n
        return f"{self._prefix}{n}"


def run_prefix(wall_ns: int, entropy: bytes) -> str:
    """A 12-character prefix unique per run: base36 of the wall-clock millisecond (8 characters, zero-padded;
    it wraps around in 2059) + 4 base36 characters from ``entropy`` (>= 4 random bytes, e.g. ``os.urandom(8)``).

    Two daemons on one account started in the same millisecond still differ unless their 4 random characters
    match (1 in 1.7 million); restarts never reuse a prefix of an earlier millisecond. Binance refuses a duplicate
    client order id of an open order (-2010), and a query by client id would find the other run's order."""
    if type(wall_ns) is not int or wall_ns < 0:
        raise ValueError(f"wall_ns: a non-negative int, was {wall_ns!r}")
    if not isinstance(entropy, bytes) or len(entropy) < 4:
        raise ValueError(f"entropy: at least 4 random bytes, was {entropy!r}")
    milliseconds = (wall_ns // 1_000_000) % 36**8
    return _base36(milliseconds, 8) + _base36(int.from_bytes(entropy, "big") % 36**4, 4)


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))
