"""RiskParams: pre-trade limits in quote currency and base units, validated (config builds them).

Kept apart from :mod:`dma_bot.risk.limits` (which re-exports it): that core is compiled, and a compiled
dataclass would store ``True`` given for an int field as ``1`` before ``__post_init__`` could refuse it. Plain
Python here, so every bad value is a ValueError naming its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["RiskParams", "require_int"]


def _decimal(name: str, value: object, *, allow_zero: bool) -> None:
    ok = isinstance(value, Decimal) and value.is_finite() and (value >= 0 if allow_zero else value > 0)
    if not ok:
        allowed = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name}: {allowed} finite Decimal, was {value!r}")


def require_int(name: str, value: object, minimum: int) -> None:
    """ValueError unless ``value`` is an int (not a bool) >= ``minimum``."""
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name}: an int >= {minimum}, was {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskParams:
    """Limits in quote currency and base units; config builds it. 0 turns the deviation and loss checks off."""

    px_min: Decimal = Decimal(10)
    px_max: Decimal = Decimal(2000)
    max_deviation_bps: int = 100
    max_notional: Decimal = Decimal(20_000_000)
    max_position: Decimal = Decimal(100)
    max_orders_per_second: int = 50
    burst: int = 50
    max_loss: Decimal = Decimal(10_000)

    def __post_init__(self) -> None:
        _decimal("px_min", self.px_min, allow_zero=False)
        _decimal("px_max", self.px_max, allow_zero=False)
        if self.px_max < self.px_min:
            raise ValueError(f"px_max: must be >= px_min ({self.px_min}), was {self.px_max}")
        require_int("max_deviation_bps", self.max_deviation_bps, 0)
        _decimal("max_notional", self.max_notional, allow_zero=False)
        _decimal("max_position", self.max_position, allow_zero=False)
        require_int("max_orders_per_second", self.max_orders_per_second, 1)
        require_int("burst", self.burst, 1)
        _decimal("max_loss", self.max_loss, allow_zero=True)
