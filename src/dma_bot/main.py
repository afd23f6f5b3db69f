"""The one place that knows the wiring: config -> instruments, queues, stages, metrics, TaskGroup, signals.

Flow (every arrow a bounded queue, one per consumer)::

    feed -> ticks.<strategy>.<worker> -> strategy workers -> signals -> risk -> orders -> router
         -> routes.<venue> -> gateways -> exec.positions -> positions
    copies: every stage -> record -> recorder;  routes and exec reports -> exec.metrics -> metrics observer

Under FEED_MODE=replay the workers send risk (quote, signal) pairs and the feed's watermarks instead, and risk
decides them in the backtest's order, on the recorded clock (``risk.replay_order``, ``RiskEngine(replayed=True)``).

Start-up does everything that can fail before any task runs: validate config, bind the metrics port,
open the JSONL file. Shutdown is a drain in flow order: SIGINT/SIGTERM (or --duration) stops the feed,
each stage empties its input and closes its outputs, gateways finish their open orders, positions apply
the last fills, and the recorder writes Stop, flushes, fsyncs and closes last. A second signal cancels
the whole group (the recorder still flushes what it holds, with a Stop marked unclean); a third exits at
once. A stage that crashes cancels its siblings and the process exits 1 with the stage named.
SIGUSR1 moves the kill switch to reducing (only position-shrinking orders pass), SIGUSR2 to halted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dma_bot import __version__
from dma_bot.binance.errors import VenueError
from dma_bot.binance.filters import SymbolRules
from dma_bot.binance.signing import HmacSigner
from dma_bot.bus import Channel, Fanout, Latest, any_waiting, fanout
from dma_bot.clock import Clock, LiveClock
from dma_bot.config import Config
from dma_bot.errors import ProtocolError, StartupError
from dma_bot.feed.binance import BinanceFeed, combined_stream_url
from dma_bot.feed.mock import MockFeed, RandomWalk
from dma_bot.feed.reconnect import Watchdog
from dma_bot.feed.recording import ReadStats
from dma_bot.feed.replay import ReplayFeed
from dma_bot.gateways.binance import BinanceGateway
from dma_bot.gateways.binance_rest import BinanceRest
from dma_bot.gateways.mock import MockGateway
from dma_bot.gateways.sim_venue import SimVenue
from dma_bot.health import Counters, EngineView, StatusLine, VenueLink, evaluate_health
from dma_bot.metrics import ExecutionMetrics, ExecutionObserver, Metrics, MetricsServer, MetricsSources, StreamHealth
from dma_bot.model.enums import KillSwitchState
from dma_bot.model.events import ExecReport, Route, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot
from dma_bot.params import (
    BINANCE,
    mock_instruments,
    random_walk_params,
    reference_prices,
    replay_instruments,
    replay_prices,
    replay_ticks,
    risk_params,
    router_params,
    sim_venue_params,
    sizes,
    strategy_params,
)
from dma_bot.positions.ledger import Ledger
from dma_bot.positions.stage import PositionsStage
from dma_bot.recorder.jsonl import JsonlEncoder, instrument_fields
from dma_bot.recorder.writer import RecorderStage
from dma_bot.retry import Backoff
from dma_bot.risk.limits import RiskEngine
from dma_bot.risk.order_ids import ClientOrderIds, run_prefix
from dma_bot.risk.replay_order import ReplayOrder
from dma_bot.risk.stage import RiskStage
from dma_bot.router.scoring import Router
from dma_bot.router.stage import RouterStage
from dma_bot.strategies import make_strategy
from dma_bot.strategies.workers import StrategyWorker, shard

__all__ = ["Engine", "build_engine", "build_feed", "load_rules", "run_daemon"]

log = logging.getLogger("dma_bot")

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_UNCLEAN = 3  # drained, but orders are still open at a venue or the recording failed
EXIT_FORCED = 130
OPERATOR_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # kill switch: reducing, halted


@dataclass
class Engine:
    """Every stage and channel of one run, built and not yet started."""

    config: Config
    clock: Clock
    stop: asyncio.Event
    instruments: dict[str, Instrument]
    board: MarketBoard
    positions_latest: Latest[PositionSnapshot]
    feed: MockFeed | BinanceFeed | ReplayFeed
    workers: list[tuple[str, StrategyWorker]]
    risk_engine: RiskEngine
    risk: RiskStage
    router: Router
    router_stage: RouterStage
    gateways: list[MockGateway | BinanceGateway]
    ledger: Ledger
    positions: PositionsStage
    executions: ExecutionMetrics
    observer: ExecutionObserver
    record: Channel[Any] | None
    recorder: RecorderStage | None = None
    channels: list[Channel[Any]] = field(default_factory=list)
    metrics: Metrics | None = None
    stage_states: dict[str, str] = field(default_factory=dict)
    recording_failure: OSError | None = None

    @property
    def money_places(self) -> int:
        """Decimals of quote-currency amounts shown to people: the instruments' finest tick * step, at most 8."""
        return min(8, max((_places(i.tick_size * i.step_size) for i in self.instruments.values()), default=2))

    def money(self, amount: Decimal) -> str:
        """A quote-currency amount for people, at :attr:`money_places`, never in exponent form (the exact value
        stays in the ledger)."""
        return f"{amount:.{self.money_places}f}"

    def on_recording_failure(self, error: OSError) -> None:
        """The JSONL file refused a write: halt trading, cancel what rests on Binance venues, drain and stop."""
        if self.recording_failure is not None:
            return
        self.recording_failure = error
        reason = error.strerror or str(error)
        self.risk_engine.kill_switch.set(KillSwitchState.HALTED, f"recording failed: {reason}")
        for gateway in self.gateways:
            if isinstance(gateway, BinanceGateway):
                gateway.cancel_on_shutdown = True
        log.error(
            "RECORD_FILE %s: write failed (%s): trading halted; draining, cancelling open orders on Binance venues, "
            "then exit %d (free disk space and restart)",
            self.config["RECORD_FILE"], reason, EXIT_UNCLEAN,
        )
        self.stop.set()

    def counters(self) -> Counters:
        stats = self.risk_engine.stats
        return Counters(
            ticks=sum(self.feed.ticks_by_symbol.values()),
            signals=sum(sum(worker.signals_by_symbol.values()) for _, worker in self.workers),
            orders=stats.orders_total,
            fills=self.positions_latest.value.fills,
            rejects=sum(stats.rejects_by_reason.values()),
            pnl=self.ledger.net_pnl(self.board),
        )

    def view(self) -> EngineView:
        board = self.board

        def last_tick_ns(symbol: str) -> int | None:
            tick = board.last.get(symbol)
            return None if tick is None else tick.ts_ns

        return EngineView(
            symbols=self.config["SYMBOLS"],
            feed_connected=lambda: self.feed.connected,
            last_tick_ns=last_tick_ns,
            stage_states=lambda: self.stage_states,
            kill_switch=lambda: self.risk_engine.kill_switch.state,
            max_tick_age_ns=self.config["HEALTH_MAX_TICK_AGE_S"] * 1_000_000_000,
            venue_links=self.venue_links,
            max_answer_wait_ns=self.config["HEALTH_MAX_ANSWER_WAIT_S"] * 1_000_000_000,
        )

    def venue_links(self) -> list[VenueLink]:
        """Each Binance venue's user-data stream and REST API, for /healthz (simulated venues have none)."""
        return [
            VenueLink(
                venue=g.venue,
                stream_connected=g.stream_connected,
                last_event_ns=g.last_event_ns,
                last_answer_ns=g.rest.last_answer_ns,
                oldest_waiting_since_ns=g.rest.oldest_waiting_since_ns,
            )
            for g in self.gateways
            if isinstance(g, BinanceGateway)
        ]

    def stop_fields(self) -> dict[str, Any]:
        """Final books for the JSONL Stop record (exact decimal strings; fees per asset, never added up)."""
        ledger = self.ledger
        snapshot = ledger.snapshot()
        unrealized = ledger.unrealized_pnl(self.board)
        open_orders = ledger.open_order_ids()

        def amounts(by_asset: Mapping[str, Decimal]) -> dict[str, str]:
            return {asset: str(amount) for asset, amount in sorted(by_asset.items())}

        return {
            "positions": [
                {
                    "symbol": p.symbol,
                    "venue": p.venue,
                    "quantity": str(p.holdings),
                    "traded_quantity": self.instruments[p.symbol].format_qty(p.traded_quantity),
                    "average_price": _average(p.average_price, self.instruments[p.symbol]),
                    "realized_pnl": self.money(p.realized_pnl),
                    "fees": amounts(p.fees),
                    "fee_value": str(p.fee_value),
                    "unvalued_fees": amounts(p.unvalued_fees),
                }
                for p in snapshot.positions.values()
            ],
            "realized_pnl": self.money(snapshot.realized_pnl),
            "unrealized_pnl": self.money(unrealized),
            "fees": amounts(ledger.fees()),
            "fee_value": str(snapshot.fee_value),
            "unvalued_fees": amounts(ledger.unvalued_fees()),
            "net_pnl": self.money(ledger.net_pnl(self.board)),
            "open_orders": open_orders,
            "clean": not open_orders,  # the recorder ANDs this with its own verdict
            "fill_gaps": [
                {
                    "venue": gap.venue,
                    "symbol": gap.symbol,
                    "client_order_id": gap.client_order_id,
                    "status": gap.status.value,
                    "filled": self.instruments[gap.symbol].format_qty(gap.filled),
                    "cum_qty": self.instruments[gap.symbol].format_qty(gap.cum_qty),
                }
                for gap in ledger.fill_gaps()
            ],
        }


def _places(size: Decimal) -> int:
    exponent = size.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _average(price: Decimal, instrument: Instrument) -> str:
    """An average entry price for the record: two decimals finer than the tick (it is no price on the grid);
    the ledger keeps the exact cost."""
    return f"{price:.{_places(instrument.tick_size) + 2}f}"


def build_feed(
    config: Config,
    instruments: dict[str, Instrument],
    routes: dict[str, Fanout[Tick]],
    board: MarketBoard,
    clock: Clock,
    stop: asyncio.Event,
    record: tuple[Channel[Any], ...],
    *,
    progress: Sequence[Channel[Any]] = (),
) -> MockFeed | BinanceFeed | ReplayFeed:
    """The configured feed; a Binance feed puts its connection Notes on ``record`` (a producer of its own). A replay
    feed puts its watermarks on ``progress`` (the strategy workers' inboxes)."""
    symbols: tuple[str, ...] = config["SYMBOLS"]
    if config["FEED_MODE"] == "mock":
        walk = RandomWalk(symbols, random_walk_params(config, instruments), config["MOCK_SEED"])
        return MockFeed(walk, routes, board, clock, config["MOCK_RATE"], stop)
    if config["FEED_MODE"] == "replay":
        stats = ReadStats()
        ticks = replay_ticks(config, instruments, stats, config["REPLAY_FILE"])
        return ReplayFeed(ticks, stats, routes, board, clock, config["REPLAY_SPEED"], stop, progress)
    return BinanceFeed(
        url=combined_stream_url(config["BINANCE_WS_URL"], symbols),
        instruments=instruments,
        routes=routes,
        board=board,
        clock=clock,
        stop=stop,
        backoff=Backoff(max_s=config["BINANCE_RECONNECT_MAX_S"]),
        watchdog=Watchdog(
            stale_after_ns=config["BINANCE_STALE_S"] * 1_000_000_000,
            max_age_ns=config["BINANCE_CONNECTION_MAX_AGE_S"] * 1_000_000_000,
        ),
        seed=config["MOCK_SEED"],
        notes=fanout(*record) if record else None,
    )


def uses_binance(config: Config) -> bool:
    return config["FEED_MODE"].startswith("binance") or config["VENUE_MODE"] != "mock"


async def load_rules(config: Config, rest: BinanceRest) -> dict[str, SymbolRules]:
    """The symbols' exchangeInfo rules (every symbol must exist and be TRADING); the clock offset when trading."""
    url = config["BINANCE_REST_URL"]
    try:
        rules = await rest.exchange_info(config["SYMBOLS"])
        if config["VENUE_MODE"] != "mock":
            offset_ms = await rest.sync_clock()
            log.info("binance clock offset %+d ms", offset_ms)
    except (VenueError, ProtocolError) as e:
        raise StartupError(f"BINANCE_REST_URL: a reachable Binance REST API (exchangeInfo), was {url!r} ({e})") from e
    return rules


async def load_prices(config: Config, rest: BinanceRest) -> dict[str, Decimal]:
    """The symbols' last prices, the reference that order sizes are checked (and notional sizes computed) at."""
    try:
        return await rest.last_prices(config["SYMBOLS"])
    except (VenueError, ProtocolError) as e:
        raise StartupError(
            f"BINANCE_REST_URL: a Binance REST API that serves ticker/price, was {config['BINANCE_REST_URL']!r} ({e})"
        ) from e


def build_engine(
    config: Config,
    clock: Clock,
    stop: asyncio.Event,
    rules: dict[str, SymbolRules] | None = None,
    rest: BinanceRest | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> Engine:
    """Build every stage and queue; nothing is opened or bound yet (``rest`` is already open when given).

    ``prices`` are the symbols' reference prices at start-up (the venue's last prices with ``rules``; the
    mock feed's MOCK_START_PRICE without) that order sizes and notional position limits are computed at."""
    size = config["DMA_QUEUE_SIZE"]
    symbols: tuple[str, ...] = config["SYMBOLS"]
    replaying = config["FEED_MODE"] == "replay"
    if rules is not None:
        instruments = {symbol: rule.instrument for symbol, rule in rules.items()}
    elif replaying:
        instruments = replay_instruments(config)
    else:
        instruments = mock_instruments(config)
    if prices is None:
        if rules is not None:
            raise ValueError("build_engine: a Binance instrument set needs the symbols' reference prices")
        prices = replay_prices(config, instruments) if replaying else reference_prices(config)
    order_sizes = sizes(config, instruments, prices)
    board = MarketBoard()
    latest: Latest[PositionSnapshot] = Latest(EMPTY_SNAPSHOT)
    channels: list[Channel[Any]] = []

    def channel(name: str) -> Channel[Any]:
        made: Channel[Any] = Channel(name, size, producers=0)
        channels.append(made)
        return made

    record = channel("record") if config["RECORD_FILE"] else None
    copies = (record,) if record is not None else ()
    signals = channel("signals")
    orders = channel("orders")
    exec_positions = channel("exec.positions")
    exec_metrics = channel("exec.metrics")

    quantities = order_sizes.quantities
    params = strategy_params(config)
    tick_targets: dict[str, list[Channel[Tick]]] = {symbol: [] for symbol in symbols}
    inboxes: list[Channel[Any]] = []
    workers: list[tuple[str, StrategyWorker]] = []
    for name in config["STRATEGIES"]:
        for index, owned in enumerate(shard(symbols, config["STRATEGY_WORKERS"])):
            inbox = channel(f"ticks.{name}.{index}")
            inboxes.append(inbox)
            strategies = {symbol: make_strategy(name, params, symbol, quantities[symbol]) for symbol in owned}
            for symbol in owned:
                tick_targets[symbol].append(inbox)
            stage_name = f"strategy.{name}.{index}"
            if replaying:  # risk gets (quote, signal) pairs and watermarks to decide in the backtest's order
                worker = StrategyWorker(name, strategies, inbox, fanout(*copies), clock, ordered=fanout(signals),
                                        source=stage_name)
            else:
                worker = StrategyWorker(name, strategies, inbox, fanout(signals, *copies), clock)
            workers.append((stage_name, worker))
    routes = {symbol: fanout(*tick_targets[symbol], *copies) for symbol in symbols}

    feed = build_feed(config, instruments, routes, board, clock, stop, copies, progress=inboxes)

    order_ids = ClientOrderIds(run_prefix(clock.time_ns(), os.urandom(8)))
    risk_engine = RiskEngine(risk_params(config), instruments, board, latest, order_ids, order_sizes.max_positions,
                             replayed=replaying)
    order = ReplayOrder(config["STRATEGIES"], [name for name, _ in workers]) if replaying else None
    risk = RiskStage(risk_engine, signals, fanout(orders, *copies), fanout(*copies), clock, order=order)

    routing = router_params(config)
    router = Router(routing, instruments)
    venue_outputs: dict[str, Fanout[Route]] = {}
    gateways: list[MockGateway | BinanceGateway] = []
    for index, spec in enumerate(routing.venues):
        venue_inbox = channel(f"routes.{spec.name}")
        venue_outputs[spec.name] = fanout(venue_inbox, exec_metrics, *copies)
        out: Fanout[ExecReport] = fanout(exec_positions, exec_metrics, *copies)
        if config["VENUE_MODE"] != "mock" and spec.name.upper() == BINANCE:
            if rules is None or rest is None:
                raise ValueError("build_engine: a Binance venue needs exchangeInfo rules and an open BinanceRest")
            gateways.append(
                BinanceGateway(
                    venue=spec.name,
                    rules=rules,
                    rest=rest,
                    ws_api_url=config["BINANCE_WS_API_URL"],
                    signer=HmacSigner(config["BINANCE_API_KEY"].reveal(), config["BINANCE_API_SECRET"].reveal()),
                    inbox=venue_inbox,
                    out=out,
                    clock=clock,
                    time_in_force=config["BINANCE_TIME_IN_FORCE"].upper(),
                    cancel_on_shutdown=config["BINANCE_CANCEL_ON_SHUTDOWN"] == "yes",
                    board=board,
                    recv_window_ms=config["BINANCE_RECV_WINDOW"],
                    reconnect_backoff=Backoff(max_s=config["BINANCE_RECONNECT_MAX_S"]),
                    seed=config["MOCK_SEED"],
                    max_order_age_ms=config["RISK_MAX_ORDER_AGE_MS"],
                    account_recheck_s=config["BINANCE_ACCOUNT_RECHECK_S"],
                    user_stream_silence_s=config["BINANCE_USER_SILENCE_S"],
                    notes=fanout(*copies) if copies else None,
                )
            )
            continue
        sim = SimVenue(spec.name, sim_venue_params(config, spec), instruments, seed=config["MOCK_VENUE_SEED"] + index,
                       board=board)
        gateways.append(MockGateway(sim, venue_inbox, out, clock, max_order_age_ms=config["RISK_MAX_ORDER_AGE_MS"]))
    router_stage = RouterStage(router, orders, venue_outputs, latest, clock)
    # Bookkeeping goes behind the path from a tick to an order at the venue: while ticks, signals, orders
    # or routes wait, the recorder, positions and metrics consumers yield (a bounded number of turns).
    background = {id(c) for c in (record, exec_positions, exec_metrics) if c is not None}
    hot = [c for c in channels if id(c) not in background]
    hot_path_waiting = any_waiting(hot)
    for lagging in (record, exec_positions, exec_metrics):
        if lagging is not None:
            lagging.defer_while(hot_path_waiting)
    for gateway in gateways:  # a simulated venue's reports wait for the engine's own work (not its own routes)
        if isinstance(gateway, MockGateway):
            gateway.defer_reports_while(any_waiting([c for c in hot if c is not gateway.inbox]))

    ledger = Ledger(instruments, board=board, max_drift=config["RISK_MAX_DRIFT"])
    executions = ExecutionMetrics()
    engine = Engine(
        config=config,
        clock=clock,
        stop=stop,
        instruments=instruments,
        board=board,
        positions_latest=latest,
        feed=feed,
        workers=workers,
        risk_engine=risk_engine,
        risk=risk,
        router=router,
        router_stage=router_stage,
        gateways=gateways,
        ledger=ledger,
        # its Notes go to the recorder through the producer slot added below (closed by _positions_then_close)
        positions=PositionsStage(ledger, exec_positions, latest, Fanout(copies) if copies else None),
        executions=executions,
        observer=ExecutionObserver(executions, exec_metrics),
        record=record,
        channels=channels,
    )
    if record is not None:
        record.add_producer()  # positions closes it once its last fill is applied: Stop sees final positions
        engine.recorder = RecorderStage(
            config["RECORD_FILE"],
            JsonlEncoder(instruments),
            record,
            clock,
            start_fields=_start_fields(config, instruments),
            stop_fields=engine.stop_fields,
            on_write_failure=engine.on_recording_failure,
            min_free_bytes=config["RECORD_MIN_FREE_MB"] * 1024 * 1024,
        )
    engine.metrics = Metrics(_metrics_sources(engine))
    return engine


def _start_fields(config: Config, instruments: dict[str, Instrument]) -> dict[str, Any]:
    return {
        "version": __version__,
        "pid": os.getpid(),
        "config": config.redacted(),
        "instruments": instrument_fields(instruments),
    }


def _metrics_sources(engine: Engine) -> MetricsSources:
    config = engine.config

    def signals() -> list[tuple[str, str, int]]:
        rows: dict[tuple[str, str], int] = {}
        for _, worker in engine.workers:
            for symbol, count in worker.signals_by_symbol.items():
                key = (worker.strategy_name, symbol)
                rows[key] = rows.get(key, 0) + count
        return [(strategy, symbol, count) for (strategy, symbol), count in rows.items()]

    stats = engine.risk_engine.stats
    return MetricsSources(
        feed_mode=config["FEED_MODE"],
        venue_mode=config["VENUE_MODE"],
        symbols=config["SYMBOLS"],
        strategy_workers=dict.fromkeys(config["STRATEGIES"], config["STRATEGY_WORKERS"]),
        instruments=engine.instruments,
        ticks_by_symbol=lambda: engine.feed.ticks_by_symbol,
        signals=signals,
        orders_total=lambda: stats.orders_total,
        rejects_by_reason=lambda: stats.rejects_by_reason,
        kill_switch_state=lambda: engine.risk_engine.kill_switch.state,
        venue_scores=lambda: engine.router.last_scores,
        executions=engine.executions,
        positions=lambda: engine.positions_latest.value,
        unrealized_pnl=lambda: engine.ledger.unrealized_pnl(engine.board),
        fees=engine.ledger.fees,
        ledger_anomalies=engine.ledger.stats.anomalies,
        fill_gaps=lambda: engine.ledger.fill_gap_count,
        gateway_events=lambda: {g.venue: g.counters() for g in engine.gateways},
        recorder_storage=lambda: (
            (0, 0) if engine.recorder is None else (engine.recorder.write_failures, engine.recorder.lines_unwritten)
        ),
        queues=engine.channels,
        streams=lambda: [_feed_health(engine), *_user_stream_health(engine)],
        # simulated venues have no user-data stream: no (re)subscriptions, none failed
        subscriptions=lambda: {
            g.venue: (g.subscriptions_ok, g.subscriptions_err) if isinstance(g, BinanceGateway) else (0, 0)
            for g in engine.gateways
        },
        simulated_venues=[g.venue for g in engine.gateways if isinstance(g, MockGateway)],
        now_ns=engine.clock.time_ns,
    )


def _feed_health(engine: Engine) -> StreamHealth:
    feed = engine.feed
    if isinstance(feed, BinanceFeed):
        return StreamHealth(
            venue=feed.venue,
            stream="market",
            connected=feed.connected,
            reconnects=feed.reconnects,
            last_event_ns=feed.last_event_ns,
        )
    return StreamHealth(
        venue="MOCK",
        stream="market",
        connected=feed.connected,
        reconnects=0,
        last_event_ns=max((tick.ts_ns for tick in engine.board.last.values()), default=None),
    )


def _user_stream_health(engine: Engine) -> list[StreamHealth]:
    return [
        StreamHealth(
            venue=g.venue,
            stream="user",
            connected=g.stream_connected,
            reconnects=g.stream_reconnects,
            last_event_ns=g.last_event_ns,
        )
        for g in engine.gateways
        if isinstance(g, BinanceGateway)
    ]


async def _named(name: str, work: Awaitable[None], states: dict[str, str]) -> None:
    states[name] = "running"
    try:
        await work
    except Exception as e:
        states[name] = "crashed"
        e.add_note(f"(in stage {name})")
        raise
    except BaseException:
        states[name] = "stopped"
        raise
    states[name] = "stopped"


async def _status_lines(engine: Engine, interval_s: int) -> None:
    """One status line on stderr every ``interval_s`` until the engine stops (plain text, no terminal codes)."""
    if interval_s <= 0:
        return
    status = StatusLine(engine.money_places)
    status.render(engine.counters(), engine.clock.monotonic_ns())
    while not engine.stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await engine.stop.wait()
        if not engine.stop.is_set():
            print(status.render(engine.counters(), engine.clock.monotonic_ns()), file=sys.stderr, flush=True)


async def _positions_then_close(engine: Engine) -> None:
    await engine.positions.run()
    if engine.record is not None:
        await engine.record.close()


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
        stop.set()


def _stages(engine: Engine, duration: float) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    stages: list[tuple[str, Coroutine[Any, Any, None]]] = []
    if engine.recorder is not None:
        stages.append(("recorder", engine.recorder.run()))
    stages.append(("metrics.observer", engine.observer.run()))
    stages.append(("positions", _positions_then_close(engine)))
    stages.extend((f"gateway.{g.venue}", g.run()) for g in engine.gateways)
    stages.append(("router", engine.router_stage.run()))
    stages.append(("risk", engine.risk.run()))
    stages.extend((name, worker.run()) for name, worker in engine.workers)
    stages.append(("feed", engine.feed.run()))
    stages.append(("duration", _stop_after(engine.stop, duration)))
    stages.append(("status", _status_lines(engine, engine.config["STATUS_INTERVAL_S"])))
    return stages


async def _run_stages(engine: Engine, duration: float) -> int:
    status = EXIT_OK
    try:
        async with asyncio.TaskGroup() as group:
            for name, work in _stages(engine, duration):
                engine.stage_states[name] = "starting"
                group.create_task(_named(name, work, engine.stage_states), name=name)
    except* Exception as crashed:
        for error in crashed.exceptions:
            notes = " ".join(getattr(error, "__notes__", []))
            log.error("stage crashed %s: %s: %s", notes, type(error).__name__, error, exc_info=error)
        status = EXIT_CRASH
    return status


async def run_daemon(
    config: Config,
    *,
    duration: float = 0.0,
    clock: Clock | None = None,
    on_ready: Callable[[Engine, int], None] | None = None,
) -> int:
    """Run the engine until stopped. Returns the exit status; start-up errors raise."""
    clock = clock or LiveClock()
    async with contextlib.AsyncExitStack() as resources:
        rest = rules = prices = None
        if uses_binance(config):
            signer = None
            if config["VENUE_MODE"] != "mock":
                signer = HmacSigner(config["BINANCE_API_KEY"].reveal(), config["BINANCE_API_SECRET"].reveal())
            rest = await resources.enter_async_context(
                BinanceRest(
                    config["BINANCE_REST_URL"],
                    clock=clock,
                    signer=signer,
                    recv_window_ms=config["BINANCE_RECV_WINDOW"],
                    timeout_s=config["BINANCE_REQUEST_TIMEOUT_S"],
                )
            )
            rules = await load_rules(config, rest)
            prices = await load_prices(config, rest)
        return await _run_engine(config, duration, clock, rules, rest, prices, on_ready)


def _banner(config: Config) -> None:
    if config["VENUE_MODE"] == "binance_mainnet":
        log.warning(
            "LIVE TRADING ON BINANCE MAINNET with real money: symbols=%s qty=%s max_notional=%s max_position=%s "
            "max_qps=%s max_loss=%s px=[%s, %s] deviation=%s bps",
            ",".join(config["SYMBOLS"]),
            config["STRATEGY_QTY"],
            config["MAX_NOTIONAL"],
            config["RISK_MAX_POSITION"],
            config["MAX_QPS"],
            config["RISK_MAX_LOSS"],
            config["PX_MIN"],
            config["PX_MAX"],
            config["RISK_MAX_DEVIATION_BPS"],
        )
    if config["FEED_MODE"] == "mock" and config["VENUE_MODE"] != "mock":
        log.warning("FEED_MODE=mock with VENUE_MODE=%s: orders at mock prices on a real venue", config["VENUE_MODE"])
    if config["FEED_MODE"] == "mock" and config["MOCK_RATE"] == 0 and config["RECORD_FILE"]:
        log.warning("MOCK_RATE=0 (unthrottled) with RECORD_FILE=%s: the recording grows by about 200 MB a second "
                    "(set MOCK_RATE, or RECORD_FILE= to record nothing)", config["RECORD_FILE"])


async def _run_engine(
    config: Config,
    duration: float,
    clock: Clock,
    rules: dict[str, SymbolRules] | None,
    rest: BinanceRest | None,
    prices: dict[str, Decimal] | None,
    on_ready: Callable[[Engine, int], None] | None,
) -> int:
    stop = asyncio.Event()
    engine = build_engine(config, clock, stop, rules, rest, prices)
    _banner(config)
    assert engine.metrics is not None
    view = engine.view()
    server = MetricsServer(
        engine.metrics,
        config["METRICS_HOST"],
        config["METRICS_PORT"],
        health=lambda: evaluate_health(view, engine.clock.time_ns()),
    )
    await server.start()
    try:
        if engine.recorder is not None:
            engine.recorder.open()
        await _start_venues(engine)
    except BaseException:
        if engine.recorder is not None:
            engine.recorder.abandon()  # a Stop marked unclean after its Start (a no-op if open() failed)
        await server.stop()
        raise
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen == 1:
            log.info("%s received: draining the pipeline (send again to force)", name)
            stop.set()
        elif signals_seen == 2:
            log.warning("%s received again: forcing shutdown; the recorder flushes what it holds", name)
            if main_task is not None:
                main_task.cancel()
        else:
            os._exit(EXIT_FORCED)

    def on_operator_signal(signum: int) -> None:
        state = KillSwitchState.REDUCING if signum == signal.SIGUSR1 else KillSwitchState.HALTED
        name = signal.Signals(signum).name
        engine.risk_engine.kill_switch.set(state, f"operator {name}")
        log.warning("%s received: kill switch %s (restart the daemon to trade again)", name, state.value)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    for signum in OPERATOR_SIGNALS:
        loop.add_signal_handler(signum, on_operator_signal, signum)
    log.info(
        "dma_bot %s: feed=%s venue=%s symbols=%s strategies=%s x%d metrics on http://%s:%d/metrics record=%s",
        __version__,
        config["FEED_MODE"],
        config["VENUE_MODE"],
        ",".join(config["SYMBOLS"]),
        ",".join(config["STRATEGIES"]),
        config["STRATEGY_WORKERS"],
        config["METRICS_HOST"],
        server.port,
        config["RECORD_FILE"] or "(off)",
    )
    # The hot path allocates only short-lived, acyclic objects (ticks, signals): move everything built so far
    # out of the collector's sight and run cycle detection less often. Measured by bench/hot_path.py: GC took
    # ~0.5 s of a 5.3 s unthrottled run (full collections of 40-60 ms, visible in p99) and ~40 ms with this.
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(20_000, 50, 100)
    if on_ready is not None:
        on_ready(engine, server.port)
    try:
        status = await _run_stages(engine, duration)
    except asyncio.CancelledError:
        if signals_seen < 2 or main_task is None:
            raise
        main_task.uncancel()  # the cancellation was ours: turn it into an exit status
        status = EXIT_FORCED
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        for signum in (signal.SIGINT, signal.SIGTERM, *OPERATOR_SIGNALS):
            loop.remove_signal_handler(signum)
        if engine.recorder is not None:
            engine.recorder.close()  # no-op after run(); releases the file if run() never started
        await server.stop()
    if status == EXIT_OK:
        status = _final_status(engine)
    if status == EXIT_OK:
        snapshot = engine.ledger.snapshot()
        money = engine.money
        log.info(
            "stopped cleanly: ticks=%d orders=%d fills=%d realized_pnl=%s unrealized_pnl=%s fees=%s net_pnl=%s",
            sum(engine.feed.ticks_by_symbol.values()),
            engine.risk_engine.stats.orders_total,
            snapshot.fills,
            money(snapshot.realized_pnl),
            money(engine.ledger.unrealized_pnl(engine.board)),
            ",".join(f"{amount.normalize():f} {asset}" for asset, amount in sorted(engine.ledger.fees().items()))
            or "0",
            money(engine.ledger.net_pnl(engine.board)),
        )
    return status


async def _start_venues(engine: Engine) -> None:
    """Each Binance venue's clock sync and first user-data subscription, before any stage runs: a bad key or a
    refused subscription is a StartupError (one line, exit 2) before an order can be sent."""
    started: list[BinanceGateway] = []
    try:
        for gateway in engine.gateways:
            if isinstance(gateway, BinanceGateway):
                started.append(gateway)
                await gateway.start()
    except BaseException:
        for gateway in started:
            await gateway.stream.stop()
        raise


def _final_status(engine: Engine) -> int:
    """EXIT_UNCLEAN, with one line each, when orders are still open at a venue or the recording failed."""
    status = EXIT_OK
    open_orders = engine.ledger.open_order_ids()
    if open_orders:
        shown = ", ".join(open_orders[:10]) + (f" and {len(open_orders) - 10} more" if len(open_orders) > 10 else "")
        log.error("stopped with %d orders not final at their venue: %s (listed in the Stop record's open_orders; "
                  "check them on the venue)", len(open_orders), shown)
        status = EXIT_UNCLEAN
    if engine.recording_failure is not None:
        recorder = engine.recorder
        lost = 0 if recorder is None else recorder.lines_unwritten
        log.error("stopped after a recording failure: %d JSONL lines are not in %s", lost, engine.config["RECORD_FILE"])
        status = EXIT_UNCLEAN
    return status
