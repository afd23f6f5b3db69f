"""Decimal strings of grid units: ``units * size`` spelled exactly, for a price's ticks or a quantity's steps.

Owns that one spelling (pure functions): :class:`~dma_bot.model.instrument.Instrument` formats with it, and the
JSONL encoder calls it directly for the values its memo has not seen. Compiled with the hot cores (a power-of-ten
grid, the usual one, is only digits cut and padded).
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_units", "power_of_ten_places"]


def power_of_ten_places(size: Decimal) -> int | None:
    """Number of decimal places when ``size`` is exactly 10**-k (k >= 0), else None."""
    sign, digits, exponent = size.normalize().as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        return None
    return -exponent


def format_units(units: int, size: Decimal, places: int | None) -> str:
    """Exact decimal string of ``units * size``; ``places`` = power_of_ten_places(size).

    On a power-of-ten grid the digits of ``units`` are only cut and padded (no Decimal, no division)."""
    if places is None:
        return format((size * units).normalize(), "f")
    if places == 0:
        return str(units)
    if units >= 0:
        digits = str(units)
        if len(digits) <= places:
            digits = digits.zfill(places + 1)
        return f"{digits[:-places]}.{digits[-places:]}"
    digits = str(-units)
    if len(digits) <= places:
        digits = digits.zfill(places + 1)
    return f"-{digits[:-places]}.{digits[-places:]}"
