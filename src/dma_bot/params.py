"""Configuration -> the parameters of every pure core: the one module the daemon and a backtest build from.

Owns how config keys become instruments (the mock grid), strategy, risk, router and simulated-venue
parameters, the mock feed's random-walk parameters, the router's venue table, and each symbol's order size and
position limit at its reference price. It builds no stage, opens nothing and knows no asyncio: ``main`` wires
the stages around what it returns, and a backtest drives the same cores with the same parameters, so the two
make the same decisions from the same configuration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Final

from dma_bot.config import Config, load_config
from dma_bot.errors import ConfigError
from dma_bot.feed.mock import RandomWalkParams
from dma_bot.feed.recording import (
    ALL_TIME,
    ReadStats,
    RecordingError,
    Window,
    read_ticks,
    recording_instruments,
    rust_instruments,
)
from dma_bot.feed.recording_columns import QuoteBlock, read_columns
from dma_bot.gateways.sim_venue import SimVenueParams
from dma_bot.model.events import Tick
from dma_bot.model.instrument import Instrument
from dma_bot.risk.limits import RiskParams
from dma_bot.risk.sizing import OrderSizes, order_sizes
from dma_bot.router.scoring import RouterParams, VenueSpec
from dma_bot.strategies import StrategyParams
from dma_bot.strategies.ma_crossover import MACrossoverParams
from dma_bot.strategies.mean_reversion import MeanReversionParams
from dma_bot.strategies.vol_breakout import VolBreakoutParams

__all__ = [
    "BINANCE",
    "mock_instruments",
    "random_walk_params",
    "reference_prices",
    "replay_instruments",
    "replay_prices",
    "replay_ticks",
    "risk_params",
    "router_params",
    "sim_venue_params",
    "sizes",
    "strategy_params",
]

BINANCE: Final = "BINANCE"
"""The venue name of a Binance gateway (VENUE_MODE=binance_*, unless VENUES names the venues)."""
_PRICE_SCAN: Final = 1_000_000  # quotes read at most to find each symbol's first price in a recording
_QUOTES: Final = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, "QUOTE"


def mock_instruments(config: Config) -> dict[str, Instrument]:
    """The mock venues' instruments: one grid (MOCK_TICK_SIZE, MOCK_STEP_SIZE) for every symbol."""
    out = {}
    for symbol in config["SYMBOLS"]:
        base, quote = _split_symbol(symbol)
        out[symbol] = Instrument(
            symbol=symbol,
            tick_size=config["MOCK_TICK_SIZE"],
            step_size=config["MOCK_STEP_SIZE"],
            min_qty=config["MOCK_STEP_SIZE"],
            base_asset=base,
            quote_asset=quote,
        )
    return out


def strategy_params(config: Config) -> StrategyParams:
    try:
        return StrategyParams(
            mean_reversion=MeanReversionParams(
                window=config["MR_WINDOW"],
                edge_ticks=config["MR_EDGE_TICKS"],
                cooldown_ticks=config["MR_COOLDOWN_TICKS"],
            ),
            ma_crossover=MACrossoverParams(
                fast=config["MA_FAST"],
                slow=config["MA_SLOW"],
                min_edge_ticks=config["MA_MIN_EDGE_TICKS"],
                cooldown_ticks=config["MA_COOLDOWN_TICKS"],
            ),
            vol_breakout=VolBreakoutParams(
                window=config["VB_WINDOW"],
                edge_ticks=config["VB_EDGE_TICKS"],
                cooldown_ticks=config["VB_COOLDOWN_TICKS"],
            ),
        )
    except ValueError as e:
        raise ConfigError(f"strategy parameters: {e}") from e


def risk_params(config: Config) -> RiskParams:
    return RiskParams(
        px_min=config["PX_MIN"],
        px_max=config["PX_MAX"],
        max_deviation_bps=config["RISK_MAX_DEVIATION_BPS"],
        max_notional=config["MAX_NOTIONAL"],
        max_position=config["RISK_MAX_POSITION"],
        max_orders_per_second=config["MAX_QPS"],
        burst=config["RISK_BURST"],
        max_loss=config["RISK_MAX_LOSS"],
    )


def router_params(config: Config) -> RouterParams:
    """The router's parameters with its venue table: VENUES; in a Binance venue mode, BINANCE alone unless VENUES
    was given."""
    if config["VENUE_MODE"] != "mock" and config.sources["VENUES"] == "default":
        venues: tuple[VenueSpec, ...] = (VenueSpec(BINANCE, 10, 0, 100),)
    else:
        venues = tuple(VenueSpec(r.name, r.fee_bps, r.latency_ms, r.liquidity) for r in config["VENUES"])
    return RouterParams(
        venues=venues,
        top_n=config["ROUTER_TOP_N"],
        min_child_qty=config["ROUTER_MIN_CHILD_QTY"],
        inventory_bias_weight=config["ROUTER_INVENTORY_BIAS"],
    )


def sim_venue_params(config: Config, spec: VenueSpec) -> SimVenueParams:
    """A simulated venue's latency, partial fills, rejects and fee from its VENUES entry and the MOCK_* keys."""
    return SimVenueParams(
        ack_latency_ms=spec.latency_ms,
        fill_latency_ms=spec.latency_ms,
        jitter_pct=config["MOCK_JITTER_PCT"],
        partial_fill_pct=config["MOCK_PARTIAL_FILL_PCT"],
        reject_pct=config["MOCK_REJECT_PCT"],
        fee_bps=spec.fee_bps,
    )


def random_walk_params(config: Config, instruments: Mapping[str, Instrument]) -> RandomWalkParams:
    """The mock feed's walk, on the first symbol's grid (every mock symbol shares it)."""
    first = instruments[config["SYMBOLS"][0]]
    return RandomWalkParams(
        start_ticks=first.price_to_ticks(config["MOCK_START_PRICE"]),
        min_ticks=first.price_to_ticks(config["MOCK_MIN_PRICE"]),
        max_spread_ticks=config["MOCK_MAX_SPREAD_TICKS"],
    )


def reference_prices(config: Config) -> dict[str, Decimal]:
    """The mock feed's reference price of every symbol (its starting bid): what orders are sized at."""
    return dict.fromkeys(config["SYMBOLS"], config["MOCK_START_PRICE"])


def sizes(config: Config, instruments: Mapping[str, Instrument], prices: Mapping[str, Decimal]) -> OrderSizes:
    """Every symbol's order size and position limit at ``prices`` (see :mod:`dma_bot.risk.sizing`)."""
    return order_sizes(
        instruments,
        prices,
        quantity=config["STRATEGY_QTY"],
        notional=config["STRATEGY_NOTIONAL"],
        max_position=config["RISK_MAX_POSITION"],
        max_position_notional=config["RISK_MAX_POSITION_NOTIONAL"],
    )


def backtest_config(preset: Mapping[str, str], environ: Mapping[str, str], recording: str,
                    overrides: Mapping[str, str] | None = None, *, symbols: str | None = None) -> Config:
    """The configuration a backtest of ``recording`` runs with (``backtest`` and every sweep task alike): the
    preset, then ``environ``, then ``overrides`` (a sweep's grid keys), then the replay of ``recording`` on the
    simulated venues; ``symbols`` (``--symbols``) replaces SYMBOLS and clears the legacy SYMBOL key, which must
    not contradict it."""
    layers = {**environ, **(overrides or {}), "FEED_MODE": "replay", "REPLAY_FILE": recording, "VENUE_MODE": "mock"}
    if symbols is not None:
        layers.update(SYMBOLS=symbols, SYMBOL="")
    return load_config(preset, layers)


def replay_instruments(config: Config) -> dict[str, Instrument]:
    """FEED_MODE=replay: the SYMBOLS' instruments as the recording's first Start record names them (the Rust
    original's recordings have none: cents, with MOCK_STEP_SIZE)."""
    path = config["REPLAY_FILE"]
    try:
        recorded = recording_instruments(path)
    except RecordingError as e:
        raise ConfigError(f"REPLAY_FILE: a readable recording, was {path!r} ({e})") from e
    if not recorded:
        return rust_instruments(config["SYMBOLS"], config["MOCK_STEP_SIZE"])
    missing = [symbol for symbol in config["SYMBOLS"] if symbol not in recorded]
    if missing:
        raise ConfigError(f"SYMBOLS: symbols the recording names ({','.join(recorded)}), was {','.join(missing)} "
                          f"(not in REPLAY_FILE {path})")
    return {symbol: recorded[symbol] for symbol in config["SYMBOLS"]}


def replay_ticks(
    config: Config,
    instruments: Mapping[str, Instrument],
    stats: ReadStats,
    path: str,
    *,
    strict: bool = False,
    window: Window = ALL_TIME,
) -> Iterator[Tick]:
    """The SYMBOLS' quotes of one recording (inside ``window``), in its format: ours (grids from its Start record)
    or, without a Start record, the Rust original's (in ``instruments``, cents)."""
    rust = None if recording_instruments(path) else instruments
    return read_ticks(path, stats, symbols=config["SYMBOLS"], rust_instruments=rust, strict=strict, window=window)


def replay_columns(
    config: Config,
    instruments: Mapping[str, Instrument],
    stats: ReadStats,
    path: str,
    *,
    strict: bool = False,
    selected: bool = False,
    window: Window = ALL_TIME,
) -> Iterator[QuoteBlock]:
    """:func:`replay_ticks` as column blocks (symbol index = position in SYMBOLS): the backtest's reader.
    ``selected``: SYMBOLS is a selection (other symbols' quotes are ``not_selected``); ``window``: the quotes
    wanted (see :func:`~dma_bot.feed.recording.read_ticks`)."""
    rust = None if recording_instruments(path) else instruments
    return read_columns(path, stats, symbols=config["SYMBOLS"], rust_instruments=rust, strict=strict,
                        selected=selected, window=window)


def replay_prices(
    config: Config,
    instruments: Mapping[str, Instrument],
    window: Window = ALL_TIME,
    paths: Sequence[str] | None = None,
) -> dict[str, Decimal]:
    """FEED_MODE=replay: each symbol's first recorded mid, the reference its orders are sized at. A backtest
    gives its ``window`` (``--from``/``--to``) and all its recordings (``paths``, default REPLAY_FILE): the
    earliest quote inside the window over every file (each is in time order, so each file's first is its
    earliest)."""
    label = "REPLAY_FILE " if paths is None else ""
    paths = [config["REPLAY_FILE"]] if paths is None else list(paths)
    wanted = set(config["SYMBOLS"])
    first: dict[str, Tick] = {}
    for path in paths:
        seen: set[str] = set()
        for count, tick in enumerate(replay_ticks(config, instruments, ReadStats(), path, window=window)):
            symbol = tick.symbol
            if symbol not in seen:
                seen.add(symbol)
                earlier = first.get(symbol)
                if earlier is None or tick.ts_event_ns < earlier.ts_event_ns:
                    first[symbol] = tick
                if seen >= wanted:
                    break
            if count >= _PRICE_SCAN:
                break
    missing = [symbol for symbol in config["SYMBOLS"] if symbol not in first]
    if missing:
        files = label + " ".join(paths)
        if window.bounded and not first:
            raise ConfigError(f"RECORDING: recordings with at least one quote of {','.join(config['SYMBOLS'])} "
                              f"inside the --from/--to window, was none in {files}")
        where = " inside the --from/--to window" if window.bounded else ""
        raise ConfigError(f"SYMBOLS: symbols with quotes in {files}{where}, was {','.join(missing)} "
                          f"(no quote found)")
    return {symbol: instruments[symbol].ticks_to_price(tick.bid + tick.ask) / 2 for symbol, tick in first.items()}
