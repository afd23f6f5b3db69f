"""The Gateway seam: what every venue adapter promises to the rest of the engine.

A gateway owns one venue: it consumes that venue's ``Route`` channel and emits ``ExecReport``s. It owns
no routing, risk or position logic and never decides facts on the venue's behalf. This module holds only
the protocol and the counters every gateway keeps; the simulated and Binance gateways live next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dma_bot.model.events import ExecReport

__all__ = ["Gateway", "GatewayStats"]


@runtime_checkable
class Gateway(Protocol):
    """One venue's adapter, run as one long-lived task in the engine's TaskGroup.

    Contract:

    * ``run()`` consumes its input ``Channel[Route]`` with ``get_batch()`` until it returns None, and emits
      ``ExecReport``s with ``await out.put(...)`` (backpressure, never a drop).
    * A gateway reports only what its venue said: no synthetic ACK before the venue answered, no fill
      that the venue did not report, CANCELED/EXPIRED are never folded into REJECTED. An execution status
      it does not know is an error (``ProtocolError``), never a default.
    * A report carries side, venue and symbol from the order it answers, never inferred from a price or
      from an id's spelling; ``last_qty`` is this report's fill, ``cum_qty`` the venue's running total.
    * It closes its output exactly once, after its input ended AND every order it accepted has reached a
      terminal state (FILLED, CANCELED, REJECTED, EXPIRED) and been reported.
    * It never creates unowned tasks: anything it starts is awaited or cancelled before ``run()`` returns.
    """

    venue: str

    async def run(self) -> None: ...


@dataclass(slots=True)
class GatewayStats:
    """Counters a gateway keeps for metrics and tests (mutated only by its own task)."""

    routes_received: int = 0
    reports_by_status: dict[str, int] = field(default_factory=dict)

    def count_report(self, report: ExecReport) -> None:
        key = report.status.value
        self.reports_by_status[key] = self.reports_by_status.get(key, 0) + 1
