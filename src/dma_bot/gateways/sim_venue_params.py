"""SimVenueParams: how one simulated venue behaves (latencies, jitter, partial fills, rejects, fees), validated.

Kept apart from :mod:`dma_bot.gateways.sim_venue` (which re-exports it): that core is compiled, and a compiled
dataclass would store ``True`` given for an int field as ``1`` before ``__post_init__`` could refuse it. Plain
Python here, so every bad value is a ConfigError naming its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from dma_bot.errors import ConfigError

__all__ = ["SimVenueParams"]

_NS_PER_MS: Final = 1_000_000


def _latency_ns(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ConfigError(f"{key}: must be an int or Decimal number of milliseconds, was {value!r}")
    if (isinstance(value, Decimal) and not value.is_finite()) or value < 0:
        raise ConfigError(f"{key}: must be a finite number of milliseconds >= 0, was {value!r}")
    return int((Decimal(value) * _NS_PER_MS).to_integral_value())


def _check_int(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: must be an integer in {low}..{high}, was {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimVenueParams:
    """How one simulated venue behaves. Latencies are means in milliseconds (int or Decimal, never float).

    ``ack_latency_ms`` is normally the venue's latency from the router's venue table (config supplies
    it). Each drawn latency is uniform within +-``jitter_pct`` percent of its mean, in integer ns.
    ``partial_fill_pct`` is the probability (percent) that an order fills in 2-3 parts,
    ``reject_pct`` the probability that the venue rejects it, ``fee_bps`` the fee on each fill's notional.
    """

    ack_latency_ms: Decimal | int
    fill_latency_ms: Decimal | int
    jitter_pct: int = 50
    partial_fill_pct: int = 30
    reject_pct: int = 0
    fee_bps: int
    ack_latency_ns: int = field(init=False, repr=False)
    fill_latency_ns: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ack_latency_ns", _latency_ns("ack_latency_ms", self.ack_latency_ms))
        object.__setattr__(self, "fill_latency_ns", _latency_ns("fill_latency_ms", self.fill_latency_ms))
        _check_int("jitter_pct", self.jitter_pct, 0, 100)
        _check_int("partial_fill_pct", self.partial_fill_pct, 0, 100)
        _check_int("reject_pct", self.reject_pct, 0, 100)
        _check_int("fee_bps", self.fee_bps, 0, 10_000)
