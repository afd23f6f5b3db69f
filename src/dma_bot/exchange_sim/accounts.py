"""The simulated account: free and locked balance per asset, and the commission a fill pays. Pure.

Amounts are exact Decimals. An order locks what it may spend when it is accepted (quote asset for a buy,
base asset for a sell); each fill consumes part of that lock and credits what was received, less the
commission; a terminal order releases what is left. Commission follows Binance: by default it is paid
in the asset received (base for a buy, quote for a sell); :attr:`FeeAsset.QUOTE` charges it in the quote
asset on both sides instead. It does not know orders or symbols: :mod:`dma_bot.exchange_sim.engine`
decides what to lock and settle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_UP, Decimal
from enum import StrEnum
from typing import Final

__all__ = ["Balances", "FeeAsset", "InsufficientBalance", "commission"]

_ZERO: Final = Decimal(0)
_EIGHT_PLACES: Final = Decimal("0.00000001")


class FeeAsset(StrEnum):
    RECEIVED = "received"  # Binance without BNB discount: base on a buy, quote on a sell
    QUOTE = "quote"


class InsufficientBalance(Exception):
    """A lock or debit larger than the free balance."""


def commission(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount * rate`` rounded up to 8 decimals (the commission precision Binance reports)."""
    return (amount * rate).quantize(_EIGHT_PLACES, rounding=ROUND_UP)


class Balances:
    """Free and locked amount per asset; remembers which assets changed since the last :meth:`take_changed`."""

    __slots__ = ("_changed", "_free", "_locked", "update_ms")

    def __init__(self, initial: Mapping[str, Decimal], assets: Iterable[str] = ()) -> None:
        self._free: dict[str, Decimal] = {asset: _ZERO for asset in assets}
        for asset, amount in initial.items():
            if not isinstance(amount, Decimal) or amount < 0:
                raise ValueError(f"balance {asset}: a Decimal >= 0, was {amount!r}")
            self._free[asset] = amount
        self._locked: dict[str, Decimal] = dict.fromkeys(self._free, _ZERO)
        self._changed: dict[str, None] = {}
        self.update_ms = 0

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, _ZERO)

    def locked(self, asset: str) -> Decimal:
        return self._locked.get(asset, _ZERO)

    @property
    def assets(self) -> list[str]:
        return list(self._free)

    def _touch(self, asset: str) -> None:
        self._free.setdefault(asset, _ZERO)
        self._locked.setdefault(asset, _ZERO)
        self._changed[asset] = None

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked; :class:`InsufficientBalance` if free is short."""
        if amount > self.free(asset):
            raise InsufficientBalance(f"{asset}: free {self.free(asset)} < {amount}")
        self._touch(asset)
        self._free[asset] -= amount
        self._locked[asset] += amount

    def release(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` back from locked to free."""
        if amount:
            self._touch(asset)
            self._locked[asset] -= amount
            self._free[asset] += amount

    def consume_locked(self, asset: str, amount: Decimal) -> None:
        """Spend ``amount`` out of the locked balance (it leaves the account)."""
        self._touch(asset)
        self._locked[asset] -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        self._free[asset] += amount

    def set_free(self, asset: str, amount: Decimal) -> None:
        """Test and operator hook: set the free balance outright."""
        self._touch(asset)
        self._free[asset] = amount

    def take_changed(self) -> list[str]:
        """Assets whose balance changed since the last call, in first-change order."""
        changed = list(self._changed)
        self._changed.clear()
        return changed
