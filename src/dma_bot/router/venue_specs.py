"""VenueSpec and RouterParams: the router's venue table and split settings, validated (config builds them).

Kept apart from :mod:`dma_bot.router.scoring` (which re-exports them): that core is compiled, and a compiled
dataclass would refuse a wrongly typed field with a bare TypeError, or store ``True`` as ``1``, before
``__post_init__`` could name the field. Plain Python here, so every bad value is a ValueError naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = ["DEFAULT_VENUES", "RouterParams", "VenueSpec"]

_VENUE_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,12}")


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """One venue's routing profile: fee in bps (negative for a rebate), latency estimate, liquidity score."""

    name: str
    fee_bps: int
    latency_ms: int
    liquidity: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _VENUE_NAME.fullmatch(self.name) is None:
            raise ValueError(f"venue name: 1 to 12 characters of [A-Za-z0-9_], was {self.name!r}")
        for field, minimum in (("fee_bps", None), ("latency_ms", 0), ("liquidity", 1)):
            value = getattr(self, field)
            if type(value) is not int or (minimum is not None and value < minimum):
                allowed = "an int" if minimum is None else f"an int >= {minimum}"
                raise ValueError(f"venue {self.name} {field}: {allowed}, was {value!r}")

    @property
    def base_score(self) -> int:
        return self.liquidity - self.fee_bps - self.latency_ms


DEFAULT_VENUES: Final = (
    VenueSpec(name="A", fee_bps=5, latency_ms=3, liquidity=70),
    VenueSpec(name="B", fee_bps=7, latency_ms=2, liquidity=50),
    VenueSpec(name="C", fee_bps=2, latency_ms=6, liquidity=90),
)


@dataclass(frozen=True, slots=True)
class RouterParams:
    """``min_child_qty`` is in base units (rounded up to each symbol's step); 0 means no minimum."""

    venues: tuple[VenueSpec, ...] = DEFAULT_VENUES
    top_n: int = 2
    min_child_qty: Decimal = Decimal(2)
    inventory_bias_weight: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.venues, tuple) or not self.venues:
            raise ValueError(f"venues: a non-empty tuple of VenueSpec, was {self.venues!r}")
        names = [venue.name for venue in self.venues]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"venues: unique names, was {names} (repeated: {', '.join(duplicates)})")
        if type(self.top_n) is not int or self.top_n < 1:
            raise ValueError(f"top_n: an int >= 1, was {self.top_n!r}")
        value = self.min_child_qty
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValueError(f"min_child_qty: a non-negative finite Decimal, was {value!r}")
        if type(self.inventory_bias_weight) is not int or self.inventory_bias_weight < 0:
            raise ValueError(f"inventory_bias_weight: an int >= 0, was {self.inventory_bias_weight!r}")
