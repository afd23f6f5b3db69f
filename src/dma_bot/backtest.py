"""Backtest: a recording's quotes through the live engine's own cores in one plain loop (no asyncio, no queues).

Owns the loop and its clock only. Every decision is made by the cores the daemon runs, built from the same
configuration by :mod:`dma_bot.params`: the strategies (``on_tick``), pre-trade risk (``RiskEngine.check``), the
router, the simulated venues (``SimVenue``, seeded as in the daemon) and the ledger; events are written by the
same :class:`~dma_bot.recorder.jsonl.JsonlEncoder`. The clock is the recording's: each quote's ``ts_event_ns``
is "now" for every decision it causes, and a venue's reports are due on that clock (latency with jitter, as
configured), so an order fills against the quotes prevailing when it reaches the venue, not the one it was
decided on. Deterministic: the same recording and configuration give byte-identical output.

It also keeps the run's equity curve (:mod:`dma_bot.equity`) and each strategy's books
(:mod:`dma_bot.strategy_books`); the command around it is :mod:`dma_bot.backtest_cli`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from operator import itemgetter
from typing import IO, Any, Final, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from dma_bot.bus import Latest
from dma_bot.config import Config
from dma_bot.equity import MINUTE_NS, EquityCurve
from dma_bot.feed.recording_columns import QuoteBlock
from dma_bot.gateways.sim_venue import SimVenue
from dma_bot.model.enums import Side
from dma_bot.model.events import BoolArray, ExecReport, IntArray, Order, RiskReject, Route, Signal, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PositionsView
from dma_bot.params import risk_params, router_params, sim_venue_params, sizes, strategy_params
from dma_bot.positions.ledger import Ledger, tidy
from dma_bot.recorder.jsonl import JsonlEncoder
from dma_bot.risk.limits import RiskEngine
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.router.scoring import Router
from dma_bot.strategies import make_strategy
from dma_bot.strategy_books import StrategyBooks

__all__ = ["Backtest", "BacktestCounts", "BlockSignals", "StrategyCounts"]

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_new_tuple: Final = tuple.__new__  # builds the Signal NamedTuple without its Python-level __new__
_Unit = TypeVar("_Unit")
_due_time: Final = itemgetter(ExecReport._fields.index("ts_event_ns"))
_RUN_PREFIX = "bt"  # client order ids of a backtest: bt1, bt2, ... (deterministic; no venue ever sees them)


@dataclass(slots=True)
class StrategyCounts:
    """One (strategy, symbol): its signals, the orders risk accepted and the rejects by reason."""

    signals: int = 0
    orders: int = 0
    rejects: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class BacktestCounts:
    """The run's counts; signals, orders and rejects are kept once, per (strategy, symbol) in ``by_strategy``
    (in the order each first signalled), and added up here."""

    quotes: int = 0
    routes: int = 0
    reports: int = 0
    by_strategy: dict[tuple[str, str], StrategyCounts] = field(default_factory=dict)

    @property
    def signals(self) -> int:
        return sum(mine.signals for mine in self.by_strategy.values())

    @property
    def orders(self) -> int:
        return sum(mine.orders for mine in self.by_strategy.values())

    @property
    def rejects(self) -> int:
        return sum(sum(mine.rejects.values()) for mine in self.by_strategy.values())

    @property
    def by_reason(self) -> dict[str, int]:
        """Rejects by reason over every strategy."""
        total: dict[str, int] = {}
        for mine in self.by_strategy.values():
            for reason, count in mine.rejects.items():
                total[reason] = total.get(reason, 0) + count
        return total

    def of(self, strategy: str, symbol: str) -> StrategyCounts:
        """The counts of (strategy, symbol), made at its first signal."""
        mine = self.by_strategy.get((strategy, symbol))
        if mine is None:
            mine = self.by_strategy[(strategy, symbol)] = StrategyCounts()
        return mine


def _ints(column: IntArray) -> memoryview:
    """An int64 column as a memoryview: indexing it gives Python ints (native int64 is C long here)."""
    view = memoryview(np.ascontiguousarray(column, dtype=np.int64))  # type: ignore[arg-type]  # numpy stubs
    return view if view.format in ("l", "q") else view.cast("B").cast("q")


class _BlockBoard:
    """The MarketBoard as the per-quote loop would have it at a row of a block: ``upto(j)`` puts each symbol's
    newest quote among rows ``< j`` on it (a symbol without one keeps its quote from before the block); only
    symbols whose row changed get a new Tick. ``mids_upto(j)`` brings only the board's ``mid2s`` there (all that
    risk, the loss limit and the marks read: an int per symbol, no Tick); ``tick_upto(j, symbol)`` the mids and
    that one symbol's Tick (what a venue's fill attempt reads); the other Ticks follow at the next ``upto``, at
    the block's end. The newest rows come from one
    table made per block with numpy (``newest[j, s]``: symbol ``s``'s last row before ``j``, -1 for none), one
    row of it read per call; the Ticks are built from the block's columns read as Python ints (``columns``:
    memoryviews, a list for the times the loop searches; an index there is a fraction of a numpy scalar read,
    and only the rows read are converted)."""

    __slots__ = ("_block", "_board", "_codes", "_done", "_mids_done", "_mids_shown", "_names", "_newest",
                 "_plan_codes", "_plan_mid2s", "_plan_rows", "_plan_starts", "_rows_at", "_rows_j", "_shown",
                 "columns")

    def __init__(self, board: MarketBoard, block: QuoteBlock) -> None:
        self._board = board
        self._block = block
        self._names = block.symbols
        self._codes = {symbol: code for code, symbol in enumerate(block.symbols)}
        self._shown = [-1] * len(block.symbols)  # per symbol code, the row of the Tick on the board (-1: none)
        self._done = 0
        self._mids_shown = [-1] * len(block.symbols)
        self._mids_done = 0
        self._newest: npt.NDArray[np.int64] | None = None  # made on the first call that needs it
        self._rows_j = -1  # _rows_at is newest[_rows_j] as a list (the row read last: a fill's mids and Tick)
        self._rows_at: list[int] = []
        # plan_signals' changes, flat: signal i's are entries plan_starts[i] .. plan_starts[i + 1] - 1
        self._plan_codes: list[int] = []
        self._plan_rows: list[int] = []
        self._plan_mid2s: list[int] = []
        self._plan_starts: list[int] = [0]
        # bid, ask, bid_qty, ask_qty, ts_event_ns, ts_ns (the loop reads its signals' prices here too)
        self.columns: tuple[Sequence[int], ...] = (
            _ints(block.bid), _ints(block.ask), _ints(block.bid_qty), _ints(block.ask_qty),
            block.ts_event_ns.tolist(), _ints(block.ts_ns))

    def _table(self) -> npt.NDArray[np.int64]:
        block = self._block
        n = len(block)
        rows = np.arange(n, dtype=np.int64)
        newest = np.full((n + 1, len(self._names)), -1, dtype=np.int64)
        if len(self._names) == 1:
            newest[1:, 0] = rows
        else:
            for code in range(len(self._names)):
                np.maximum.accumulate(np.where(block.symbol == code, rows, -1), out=newest[1:, code])
        self._newest = newest
        return newest

    def _rows(self, j: int) -> list[int]:
        """``newest[j]``: each symbol's newest row before ``j`` (-1: none in this block)."""
        if j != self._rows_j:
            newest = self._newest
            if newest is None:
                newest = self._table()
            self._rows_at = newest[j].tolist()
            self._rows_j = j
        return self._rows_at

    def mids_upto(self, j: int) -> None:
        if j <= self._mids_done:
            return
        self._mids_done = j
        shown = self._mids_shown
        mid2s = self._board.mid2s
        bid, ask = self.columns[0], self.columns[1]
        for code, row in enumerate(self._rows(j)):
            if row != shown[code] and row >= 0:
                shown[code] = row
                mid2s[self._names[code]] = bid[row] + ask[row]

    def plan_signals(self, rows: npt.NDArray[np.int64]) -> None:
        """Get ready for :meth:`mids_at` at the block's signal rows ``rows`` (ascending): for each signal, the
        symbols whose newest row changed since the signal before (or since the block began) and their mid2s,
        found with numpy once per block instead of a table row read per signal."""
        newest = self._newest
        if newest is None:
            newest = self._table()
        at = newest[rows + 1]  # (signals, symbols): each symbol's newest row before each signal's row + 1
        before = np.empty_like(at)
        before[0] = -1
        before[1:] = at[:-1]
        signal_of, code_of = np.nonzero((at != before) & (at >= 0))
        changed = at[signal_of, code_of].tolist()
        bid, ask = self.columns[0], self.columns[1]
        self._plan_codes = code_of.tolist()
        self._plan_rows = changed
        self._plan_mid2s = [bid[row] + ask[row] for row in changed]  # Python ints: exact, no int64 sum
        self._plan_starts = np.searchsorted(signal_of, np.arange(len(rows) + 1)).tolist()

    def mids_at(self, i: int, j: int) -> None:
        """``mids_upto(j)`` for the ``i``-th of the rows :meth:`plan_signals` was given (``j`` = its row + 1):
        only the symbols that changed since the signal before are written (the board holds the rest: it never
        goes back, and whatever moved the mids in between moved them to rows no newer than ``j``)."""
        if j <= self._mids_done:
            return
        self._mids_done = j
        mid2s = self._board.mid2s
        names = self._names
        shown = self._mids_shown
        codes, rows, values = self._plan_codes, self._plan_rows, self._plan_mid2s
        for k in range(self._plan_starts[i], self._plan_starts[i + 1]):
            code = codes[k]
            shown[code] = rows[k]
            mid2s[names[code]] = values[k]

    def tick_upto(self, j: int, symbol: str) -> None:
        """``mids_upto(j)``, and ``symbol``'s Tick as of row ``j`` (``j`` never goes back within a block)."""
        self.mids_upto(j)
        code = self._codes.get(symbol)
        if code is not None:
            row = self._rows(j)[code]
            if row != self._shown[code] and row >= 0:
                self._show(code, row)

    def upto(self, j: int) -> None:
        if j <= self._done:
            return
        self._done = j
        self.mids_upto(j)
        shown = self._shown
        for code, row in enumerate(self._rows(j)):
            if row != shown[code] and row >= 0:
                self._show(code, row)

    def _show(self, code: int, row: int) -> None:
        """Symbol ``code``'s Tick of ``row`` onto the board."""
        self._shown[code] = row
        symbol = self._names[code]
        bid, ask, bid_qty, ask_qty, ts_event_ns, ts_ns = self.columns
        self._board.last[symbol] = _new_tuple(Tick, (symbol, bid[row], ask[row], bid_qty[row], ask_qty[row],
                                                     ts_event_ns[row], ts_ns[row]))


class BlockSignals(NamedTuple):
    """A block and its strategies' signals in the per-quote loop's order (by row, then the strategies' config
    order): signal ``i`` is at row ``rows[i]``, a buy when ``buys[i]``, made by the backtest's strategy number
    ``owners[i]`` (in the order of ``Backtest.strategies``' lists). Plain arrays in a tuple: it pickles cheaply
    (the reader process sends it), also from the compiled module (a frozen native class would not unpickle)."""

    block: QuoteBlock
    rows: npt.NDArray[np.int64]
    buys: BoolArray
    owners: npt.NDArray[np.int64]


_NO_ROWS: Final = np.zeros(0, dtype=np.int64)
_NO_BUYS: Final = np.zeros(0, dtype=np.bool_)


# The units a run steps through, as generator functions: streamed, one at a time (the input is never held whole;
# mypyc would build a generator expression passed along as a list).
def _quote_units(ticks: Iterable[Tick]) -> Iterator[tuple[int, int, Tick]]:
    for tick in ticks:
        yield tick.ts_event_ns, tick.ts_event_ns, tick


def _block_ticks(blocks: Iterable[QuoteBlock]) -> Iterator[Tick]:
    for block in blocks:
        yield from block.ticks()


def _signal_units(blocks: Iterable[BlockSignals]) -> Iterator[tuple[int, int, BlockSignals]]:
    for planned in blocks:
        if len(planned.block):
            yield int(planned.block.ts_event_ns[0]), int(planned.block.ts_event_ns[-1]), planned


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
        self.ledger = Ledger(instruments, board=self.board)
        # risk and the router read the ledger in place (one thread: what a snapshot before each decision shows)
        self.positions: Latest[PositionsView] = Latest(self.ledger.view())
        order_sizes = sizes(config, instruments, prices)
        params = strategy_params(config)
        self.strategies = {
            symbol: [make_strategy(name, params, symbol, order_sizes.quantities[symbol])
                     for name in config["STRATEGIES"]]
            for symbol in instruments
        }
        self._strategy_list = [strategy for line in self.strategies.values() for strategy in line]
        self._owners = {id(strategy): index for index, strategy in enumerate(self._strategy_list)}
        self._counts_of: list[StrategyCounts | None] = [None] * len(self._strategy_list)  # by strategy number
        self.risk = RiskEngine(risk_params(config), instruments, self.board, self.positions,
                               ClientOrderIds(_RUN_PREFIX), order_sizes.max_positions)
        routing = router_params(config)
        self.router = Router(routing, instruments)
        self.venues = {
            spec.name: SimVenue(spec.name, sim_venue_params(config, spec), instruments,
                                seed=config["MOCK_VENUE_SEED"] + index, board=self.board)
            for index, spec in enumerate(routing.venues)
        }
        self.encoder = JsonlEncoder(instruments)
        encoder_for = self.encoder.encoder_for
        self._encode_signal = encoder_for(Signal)
        self._encode_order = encoder_for(Order)
        self._encode_reject = encoder_for(RiskReject)
        self._encode_route = encoder_for(Route)
        self._encode_report = encoder_for(ExecReport)
        self.record_md = record_md
        self.counts = BacktestCounts()
        self.books = StrategyBooks(instruments, self.board)  # each strategy's fills, fees, PnL and drawdown
        self.equity = EquityCurve()  # net PnL marked after fills and at each recorded minute's start
        self._minute = -1  # the recorded minute (ts // MINUTE_NS) of the last quote
        self._last_ns = 0  # the last quote's time
        self._due: int | None = None  # the venues' soonest next_due_ns (kept by the submits and pops here)

    def run(self, ticks: Iterable[Tick], out: IO[bytes], start_fields: dict[str, Any]) -> None:
        """Every quote of ``ticks`` through the cores; the venues' last reports after the last quote; a Start
        and a Stop record around the events."""
        self._write(_quote_units(ticks), self._tick, out, start_fields)

    def run_columns(self, blocks: Iterable[QuoteBlock], out: IO[bytes], start_fields: dict[str, Any]) -> None:
        """What :meth:`run` does over the blocks' rows, byte for byte, computed column-wise: each strategy finds
        its signalling rows of a block at once (:meth:`signals`), and only the rows where something happens (a
        signal, a report falling due) are turned into board updates and events, in the order the per-quote loop
        makes them. ``record_md`` needs every quote as a line: it takes the per-quote loop."""
        if self.record_md:
            self.run(_block_ticks(blocks), out, start_fields)
            return
        self.run_signals(map(self.signals, blocks), out, start_fields)

    def signals(self, block: QuoteBlock) -> BlockSignals:
        """The strategies' signals on ``block``, in the per-quote loop's order (by row, then config order);
        advances the strategies' state. It depends on the quotes alone (the strategies see no fills), so it
        may run ahead of :meth:`run_signals`, e.g. in a reader process holding a copy of this backtest made
        before the run (then only that copy's strategies advance)."""
        symbols = block.symbols
        single = len(symbols) == 1
        found: list[tuple[npt.NDArray[np.intp], int, BoolArray, int]] = []
        if len(block):
            owners = self._owners
            for index, symbol in enumerate(symbols):
                strategies = self.strategies.get(symbol)
                if not strategies:
                    continue
                positions = np.arange(len(block), dtype=np.intp) if single else np.flatnonzero(block.symbol == index)
                if not len(positions):
                    continue
                bid, ask = (block.bid, block.ask) if single else (block.bid[positions], block.ask[positions])
                for k, strategy in enumerate(strategies):  # config order: a quote's signals in the per-quote order
                    rows, buy = strategy.signal_rows(bid, ask)
                    if len(rows):
                        found.append((positions[rows], k, buy, owners[id(strategy)]))
        if not found:
            return BlockSignals(block, _NO_ROWS, _NO_BUYS, _NO_ROWS)
        at = np.concatenate([rows for rows, _, _, _ in found])
        rank = np.concatenate([np.full(len(rows), k) for rows, k, _, _ in found])
        buys = np.concatenate([buy for _, _, buy, _ in found])
        owner = np.concatenate([np.full(len(rows), i, dtype=np.int64) for rows, _, _, i in found])
        sequence = np.lexsort((rank, at))
        return BlockSignals(block, at[sequence].astype(np.int64), buys[sequence], owner[sequence])

    def run_signals(self, blocks: Iterable[BlockSignals], out: IO[bytes], start_fields: dict[str, Any]) -> None:
        """:meth:`run_columns` over blocks whose signals :meth:`signals` found (of this backtest or of a copy of
        it made before the run, in block order)."""
        self._write(_signal_units(blocks), self._block, out, start_fields)

    def _write(self, units: Iterable[tuple[int, int, _Unit]], step: Callable[[_Unit, list[bytes]], None],
               out: IO[bytes], start_fields: dict[str, Any]) -> None:
        """The Start record at the first unit's first time, ``step`` over each unit (a quote or a block, with its
        first and last time) buffering its lines, the venues' last reports, and the Stop record."""
        encoder = self.encoder
        lines: list[bytes] = []
        last_ns = 0
        first = True
        for first_ns, unit_last_ns, unit in units:
            if first:
                out.write(encoder.encode_control("Start", start_fields, ts_ns=first_ns))
                first = False
            step(unit, lines)
            last_ns = unit_last_ns
            if len(lines) >= 512:
                out.write(b"".join(lines))
                lines.clear()
        if first:
            out.write(encoder.encode_control("Start", start_fields, ts_ns=0))
        last_ns = self._drain(last_ns, lines)
        if not first:
            self._mark(last_ns)  # the end: the last minute's close
        self.equity.finish()
        out.write(b"".join(lines))
        out.write(encoder.encode_control("Stop", self.stop_fields(), ts_ns=last_ns))

    def _tick(self, tick: Tick, lines: list[bytes]) -> None:
        now = tick.ts_event_ns
        minute = now // MINUTE_NS
        if minute != self._minute:
            self._minute_starts(minute)
        self._reports_due(now, lines)  # before this quote is on the board: attempts due by now trade
        self._quote(tick, now, lines)  # against the quotes that prevailed until now (SimVenue reads the board)
        self._last_ns = now

    def _minute_starts(self, minute: int) -> None:
        """A quote of a new recorded minute is next: the curve is marked as the last minute ended (the state
        after the previous quote, at its time), so every minute has a close even without a fill."""
        if self._minute >= 0:
            self._mark(self._last_ns)
        self._minute = minute

    def _block(self, planned: BlockSignals, lines: list[bytes]) -> None:
        block = planned.block
        self.counts.quotes += len(block)
        board = _BlockBoard(self.board, block)
        ts = board.columns[4]  # ts_event_ns
        popped = 0  # rows whose reports-due step (before their quote) is done
        minutes = block.ts_event_ns // MINUTE_NS
        starts = (np.flatnonzero(minutes[1:] != minutes[:-1]) + 1).tolist()
        if int(minutes[0]) != self._minute:
            starts.insert(0, 0)
        starts.append(len(ts))  # a sentinel: no minute starts there
        next_start = 0  # index into starts

        def minutes_until(p: int) -> None:
            """The minute starts at rows <= p, in order, each after the rows before it are done."""
            nonlocal popped, next_start
            while starts[next_start] <= p:
                q = starts[next_start]
                next_start += 1
                if q:
                    popped = self._due_until(q - 1, ts, popped, board, lines)
                    board.mids_upto(q)  # the minute's marks read the mids
                    self._last_ns = ts[q - 1]
                self._minute_starts(int(minutes[q]))

        if len(planned.rows):
            strategies = self._strategy_list
            counts_of = self._counts_of
            bid, ask = board.columns[0], board.columns[1]
            board.plan_signals(planned.rows)
            for n, (p, is_buy, i) in enumerate(zip(planned.rows.tolist(), planned.buys.tolist(),
                                                   planned.owners.tolist(), strict=True)):
                now = ts[p]
                if starts[next_start] <= p:
                    minutes_until(p)
                due = self._due
                if due is not None and due <= now:
                    popped = self._due_until(p, ts, popped, board, lines)
                elif popped <= p:
                    popped = p + 1  # what _due_until returns when nothing is due by now
                board.mids_at(n, p + 1)  # risk reads the mids; a venue's fill brings the Ticks up first
                strategy = strategies[i]
                signal = _new_tuple(Signal, (strategy.name, strategy.symbol, _BUY if is_buy else _SELL,
                                             ask[p] if is_buy else bid[p], strategy.quantity, now, now))
                mine = counts_of[i]
                if mine is None:
                    mine = counts_of[i] = self.counts.of(strategy.name, strategy.symbol)
                self._signal(signal, now, lines, mine)
        minutes_until(len(ts) - 1)
        self._due_until(len(ts) - 1, ts, popped, board, lines)
        board.upto(len(ts))
        self._last_ns = ts[-1]

    def _due_until(self, p: int, ts: Sequence[int], popped: int, board: _BlockBoard, lines: list[bytes]) -> int:
        """The reports-due steps of rows ``popped .. p`` that have reports: at the first row whose time reaches a
        report's due time, with the board holding the rows before it (as the per-quote loop does); the rows up
        to ``p`` are then done."""
        while True:
            due = self._due
            if due is None or due > ts[p]:
                break
            j = bisect_left(ts, due, popped, p + 1) if popped <= p else popped
            if j > p:  # rows up to p are done (a report due at a row already past: the next row takes it)
                break
            self._reports_due(ts[j], lines, board, j)  # the board is read only by fills and marks
            popped = j + 1
        return max(popped, p + 1)

    def _quote(self, tick: Tick, now: int, lines: list[bytes]) -> None:
        self.counts.quotes += 1
        self.board.update(tick)
        if self.record_md:
            lines.append(self.encoder.encode(tick))
        for strategy in self.strategies.get(tick.symbol, ()):
            signal = strategy.on_tick(tick, now)
            if signal is not None:
                self._signal(signal, now, lines, self.counts.of(signal.strategy, signal.symbol))

    def _signal(self, signal: Signal, now: int, lines: list[bytes], mine: StrategyCounts) -> None:
        """One signal through risk, the router and the venues (the same steps in both loops); ``mine``: the
        counts of its strategy and symbol."""
        counts = self.counts
        mine.signals += 1
        lines.append(self._encode_signal(signal))
        decision = self.risk.check(signal, now)
        if isinstance(decision, Order):
            lines.append(self._encode_order(decision))
            mine.orders += 1
            for route in self.router.route(decision, self.positions.value, now):
                counts.routes += 1
                lines.append(self._encode_route(route))
                self.books.routed(route)
                venue = self.venues[route.venue]
                venue.submit(route, now)
                due = venue.next_due_ns()
                if due is not None and (self._due is None or due < self._due):
                    self._due = due
        else:
            lines.append(self._encode_reject(decision))
            reason = str(decision.reason)
            mine.rejects[reason] = mine.rejects.get(reason, 0) + 1

    def _reports_due(self, now: int, lines: list[bytes], board: _BlockBoard | None = None, row: int = 0) -> None:
        """The venues' reports due by ``now``, in due order across venues, into the ledger and the lines. With
        ``board``, the MarketBoard is brought to the block's ``row`` where something reads it (a fill attempt
        its symbol's quote, the marks after a change the mids); without it the board is up to date already."""
        reports: list[ExecReport] = []
        soonest = None  # the venues' next due time after these reports
        prepare = None if board is None else partial(board.tick_upto, row)
        for venue in self.venues.values():
            due = venue.next_due_ns()
            if due is not None and due <= now:
                reports.extend(venue.pop_due(now, prepare))
                due = venue.next_due_ns()
            if due is not None and (soonest is None or due < soonest):
                soonest = due
        self._due = soonest
        if not reports:
            return
        if len(reports) > 1:
            reports.sort(key=_due_time)  # across venues (each venue's are in due order already)
        self._apply(reports, lines, board, row)

    def _apply(self, reports: list[ExecReport], lines: list[bytes], board: _BlockBoard | None, row: int) -> None:
        ledger = self.ledger
        changed = False
        encode = self._encode_report
        books = self.books
        moved: set[str] = set()
        self.counts.reports += len(reports)
        for report in reports:
            lines.append(encode(report))
            applied = ledger.apply(report)
            changed = applied or changed
            strategy = books.apply(report, applied, ledger.last_fill_steps)
            if strategy is not None:
                moved.add(strategy)
        notes = ledger.take_notes()
        if notes:
            lines.extend(map(self.encoder.encode, notes))
        if changed:
            if board is not None:
                board.mids_upto(row)  # the marks read the mids (a fill's attempt brought them up to date already)
            net, net_digits, exposure, exposure_digits = ledger.mark_units(self.board)
            self.equity.mark_units(reports[-1].ts_event_ns, net, net_digits, exposure, exposure_digits)
            for strategy in sorted(moved):
                books.mark(strategy)

    def _mark(self, ts_ns: int) -> None:
        """Net PnL and exposure at the current mids into the equity curves, the total and each strategy's."""
        net, net_digits, exposure, exposure_digits = self.ledger.mark_units(self.board)
        self.equity.mark_units(ts_ns, net, net_digits, exposure, exposure_digits)
        self.books.mark_all()

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
            "max_drawdown": str(tidy(self.equity.max_drawdown)),
            "open_orders": ledger.open_order_ids(),
            "clean": True,
        }
