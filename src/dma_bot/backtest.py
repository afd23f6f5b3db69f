"""Backtest: a recording's quotes through the live engine's own cores in one plain loop (no asyncio, no queues).

Owns the loop and its clock only. Every decision is made by the cores the daemon runs, built from the same
configuration by :mod:`dma_bot.params`: the strategies (``on_tick``), pre-trade risk (``RiskEngine.check``), the
router, the simulated venues (``SimVenue``, seeded as in the daemon) and the ledger; events are written by the
same :class:`~dma_bot.recorder.jsonl.JsonlEncoder`. The clock is the recording's: each quote's ``ts_event_ns``
is "now" for every decision it causes, and a venue's reports are due on that clock (latency with jitter, as
configured), so an order fills against the quotes prevailing when it reaches the venue, not the one it was
decided on. Deterministic: the same recording and configuration give byte-identical output.

Not yet here (issue 13 continues): the ``python -m dma_bot backtest`` command, report.json, per-strategy PnL,
column batches for speed, ``--from/--to``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from dma_bot.bus import Latest
from dma_bot.config import Config
from dma_bot.gateways.sim_venue import SimVenue
from dma_bot.model.events import ExecReport, Order, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot
from dma_bot.params import risk_params, router_params, sim_venue_params, sizes, strategy_params
from dma_bot.positions.ledger import Ledger
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.risk.limits import RiskEngine
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.router.scoring import Router
from dma_bot.strategies import make_strategy

__all__ = ["Backtest", "BacktestCounts", "StrategyCounts"]

_RUN_PREFIX = "bt"  # client order ids of a backtest: bt1, bt2, ... (deterministic; no venue ever sees them)


@dataclass(slots=True)
class StrategyCounts:
    """One (strategy, symbol): its signals, the orders risk accepted and the rejects by reason."""

    signals: int = 0
    orders: int = 0
    rejects: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class BacktestCounts:
    quotes: int = 0
    signals: int = 0
    orders: int = 0
    rejects: int = 0
    routes: int = 0
    reports: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_strategy: dict[tuple[str, str], StrategyCounts] = field(default_factory=dict)


class Backtest:
    """The cores of one configuration, driven quote by quote; :meth:`run` writes the JSONL lines to ``out``."""

    def __init__(
        self,
        config: Config,
        instruments: dict[str, Instrument],
        prices: dict[str, Decimal],
        *,
        record_md: bool = False,
    ) -> None:
        self.config = config
        self.instruments = instruments
        self.board = MarketBoard()
        self.positions: Latest[PositionSnapshot] = Latest(EMPTY_SNAPSHOT)
        order_sizes = sizes(config, instruments, prices)
        params = strategy_params(config)
        self.strategies = {
            symbol: [make_strategy(name, params, symbol, order_sizes.quantities[symbol])
                     for name in config["STRATEGIES"]]
            for symbol in instruments
        }
        self.risk = RiskEngine(risk_params(config), instruments, self.board, self.positions,
                               ClientOrderIds(_RUN_PREFIX), order_sizes.max_positions)
        routing = router_params(config)
        self.router = Router(routing, instruments)
        self.venues = {
            spec.name: SimVenue(spec.name, sim_venue_params(config, spec), instruments,
                                seed=config["MOCK_VENUE_SEED"] + index, board=self.board)
            for index, spec in enumerate(routing.venues)
        }
        self.ledger = Ledger(instruments, board=self.board)
        self.encoder = JsonlEncoder(instruments)
        self.record_md = record_md
        self.counts = BacktestCounts()
        self.peak_pnl = Decimal(0)  # the highest net PnL seen after a fill (and 0 before the first)
        self.max_drawdown = Decimal(0)  # the largest fall of net PnL from that peak, quote currency

    def run(self, ticks: Iterable[Tick], out: IO[bytes], start_fields: dict[str, Any]) -> None:
        """Every quote of ``ticks`` through the cores; the venues' last reports after the last quote; a Start
        and a Stop record around the events."""
        encoder = self.encoder
        lines: list[bytes] = []
        last_ns = 0
        first = True
        for tick in ticks:
            now = tick.ts_event_ns
            if first:
                out.write(encoder.encode_control("Start", start_fields, ts_ns=now))
                first = False
            self._reports_due(now, lines)  # before this quote is on the board: attempts due by now trade
            self._quote(tick, now, lines)  # against the quotes that prevailed until now (SimVenue reads the board)
            last_ns = now
            if len(lines) >= 512:
                out.write(b"".join(lines))
                lines.clear()
        if first:
            out.write(encoder.encode_control("Start", start_fields, ts_ns=0))
        last_ns = self._drain(last_ns, lines)
        out.write(b"".join(lines))
        out.write(encoder.encode_control("Stop", self.stop_fields(), ts_ns=last_ns))

    def _quote(self, tick: Tick, now: int, lines: list[bytes]) -> None:
        counts = self.counts
        counts.quotes += 1
        self.board.update(tick)
        encode = self.encoder.encode
        if self.record_md:
            lines.append(encode(tick))
        for strategy in self.strategies.get(tick.symbol, ()):
            signal = strategy.on_tick(tick, now)
            if signal is None:
                continue
            counts.signals += 1
            key = (signal.strategy, signal.symbol)
            mine = counts.by_strategy.get(key)
            if mine is None:
                mine = counts.by_strategy[key] = StrategyCounts()
            mine.signals += 1
            lines.append(encode(signal))
            decision = self.risk.check(signal, now)
            lines.append(encode(decision))
            if isinstance(decision, Order):
                counts.orders += 1
                mine.orders += 1
                for route in self.router.route(decision, self.positions.value, now):
                    counts.routes += 1
                    lines.append(encode(route))
                    self.venues[route.venue].submit(route, now)
            else:
                counts.rejects += 1
                reason = str(decision.reason)
                counts.by_reason[reason] = counts.by_reason.get(reason, 0) + 1
                mine.rejects[reason] = mine.rejects.get(reason, 0) + 1

    def _reports_due(self, now: int, lines: list[bytes]) -> None:
        """The venues' reports due by ``now``, in due order across venues, into the ledger and the lines."""
        reports: list[ExecReport] = []
        for venue in self.venues.values():
            due = venue.next_due_ns()
            if due is not None and due <= now:
                reports.extend(venue.pop_due(now))
        if not reports:
            return
        reports.sort(key=lambda report: report.ts_event_ns)
        self._apply(reports, lines)

    def _apply(self, reports: list[ExecReport], lines: list[bytes]) -> None:
        ledger = self.ledger
        changed = False
        encode = self.encoder.encode
        for report in reports:
            self.counts.reports += 1
            lines.append(encode(report))
            changed = ledger.apply(report) or changed
        lines.extend(encode(note) for note in ledger.take_notes())
        if changed:
            self.positions.publish(ledger.snapshot())
            self._mark()

    def _mark(self) -> None:
        """Net PnL (marked at the current mids) after fills: the peak and the largest drawdown from it."""
        net = self.ledger.net_pnl(self.board)
        if net > self.peak_pnl:
            self.peak_pnl = net
        elif self.peak_pnl - net > self.max_drawdown:
            self.max_drawdown = self.peak_pnl - net

    def _drain(self, now: int, lines: list[bytes]) -> int:
        """After the last quote, the venues' remaining reports at their due times (the recorded clock stops,
        the venues' latency does not)."""
        while True:
            dues = [due for venue in self.venues.values() if (due := venue.next_due_ns()) is not None]
            if not dues:
                return now
            now = max(now, min(dues))
            self._reports_due(now, lines)

    def stop_fields(self) -> dict[str, Any]:
        ledger = self.ledger
        snapshot = ledger.snapshot()
        return {
            "counts_backtest": {
                "quotes": self.counts.quotes, "signals": self.counts.signals, "orders": self.counts.orders,
                "rejects": self.counts.rejects, "routes": self.counts.routes, "reports": self.counts.reports,
            },
            "realized_pnl": str(snapshot.realized_pnl),
            "unrealized_pnl": str(ledger.unrealized_pnl(self.board)),
            "fees": {asset: str(amount) for asset, amount in sorted(ledger.fees().items())},
            "fee_value": str(snapshot.fee_value),
            "net_pnl": str(ledger.net_pnl(self.board)),
            "max_drawdown": str(self.max_drawdown),
            "open_orders": ledger.open_order_ids(),
            "clean": True,
        }
