"""Configuration: a .env preset plus the process environment -> one frozen, validated :class:`Config`.

Every key is declared once in :data:`KEYS` with its default, its parser and one line of help; ``--help``
and the README table are generated from the same list. Defaults are the mock preset (``.env.mock``), so
``python -m dma_bot`` with no file runs the mock engine. The process environment overrides the file.

Errors are one line, ``<KEY>: <what is allowed>, was <given>``, raised as :class:`ConfigError` (exit 2):
an unknown key in the preset file, an unknown key in the environment with one of our prefixes, a bad
mode, an unknown strategy, a non-numeric or out-of-range number, an empty or duplicated symbol list. A
value that was given but is wrong never falls back to a default. Secrets are :class:`Secret`, whose repr
is masked, so they cannot leak through logs, ``--help`` or recorded events.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from dotenv.parser import parse_stream

from dma_bot.errors import ConfigError

__all__ = [
    "FEED_MODES",
    "KEYS",
    "VENUE_MODES",
    "Config",
    "KeySpec",
    "Secret",
    "load_config",
    "preset_values",
    "read_env_file",
]

FEED_MODES: Final = ("mock", "binance_sandbox", "binance_mainnet", "replay")
VENUE_MODES: Final = ("mock", "binance_sandbox", "binance_mainnet")
LOG_LEVELS: Final = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
STRATEGY_ALIASES: Final = {
    "mean_reversion": "mean_reversion",
    "meanreversion": "mean_reversion",
    "mr": "mean_reversion",
    "ma_crossover": "ma_crossover",
    "macrossover": "ma_crossover",
    "ma": "ma_crossover",
    "vol_breakout": "vol_breakout",
    "volbreakout": "vol_breakout",
    "vb": "vol_breakout",
}
# Environment variables read before any configuration: by the import guard (dma_bot._native) and the build
# (setup.py). Not configuration keys, but ours, so a bad value is an error like one in a key.
PROCESS_SWITCHES: Final[dict[str, dict[str, str]]] = {
    "DMA_BOT_PURE": {"1": "run the pure-Python cores", "0": "the compiled ones when built"},
    "DMA_BOT_COMPILE": {"0": "install without compiling the cores", "1": "compile them"},
}
# Environment variables with these prefixes are ours: an unknown one is a typo, not someone else's setting.
OWN_PREFIXES: Final = (
    "DMA_",
    "FEED_",
    "VENUE",
    "SYMBOL",
    "STRATEG",
    "MR_",
    "MA_",
    "VB_",
    "PX_",
    "MAX_NOTIONAL",
    "MAX_QPS",
    "RISK_",
    "ROUTER_",
    "MOCK_",
    "METRICS_",
    "RECORD_",
    "LOG_LEVEL",
    "STATUS_",
    "HEALTH_",
    "BINANCE_",
    "LIVE_",
    "REPLAY_",
)
_SYMBOL_RE: Final = re.compile(r"^[A-Z0-9]{2,20}$")
_ENV_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_VENUE_RE: Final = re.compile(r"^[A-Za-z0-9_]{1,12}$")


class Secret:
    """A string that never shows itself: repr and str are masked; ``reveal()`` is explicit."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# -- value parsers: each returns the parsed value or raises ValueError("<what is allowed>") ----------------


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"an integer from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"an integer from {lo} to {hi}")
        return value

    return parse


def _decimal(*, positive: bool = False, non_negative: bool = False) -> Callable[[str], Decimal]:
    allowed = "a positive decimal" if positive else "a decimal >= 0" if non_negative else "a decimal"

    def parse(raw: str) -> Decimal:
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise ValueError(allowed) from None
        if not value.is_finite() or (positive and value <= 0) or (non_negative and value < 0):
            raise ValueError(allowed)
        return value

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choice or "(empty)" for choice in choices))
        return value

    return parse


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse``, or None for an empty value (the key is off)."""

    def parse_optional(raw: str) -> Any:
        return None if not raw.strip() else parse(raw)

    return parse_optional


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def _url(raw: str) -> str:
    value = raw.strip()
    if value and not re.match(r"^(wss?|https?)://[^\s/]+", value):
        raise ValueError("a ws://, wss://, http:// or https:// URL")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().lower()
    # RUST_LOG may carry a filter such as "info" or "dma_bot=debug"; take the level after the last '='.
    value = value.rsplit("=", 1)[-1]
    if value not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return LOG_LEVELS[value]


def _symbols(raw: str) -> tuple[str, ...]:
    items = [item.strip().upper() for item in raw.split(",")]
    if not raw.strip() or any(not item for item in items):
        raise ValueError("a comma-separated non-empty list of symbols like BTCUSDT,ETHUSDT")
    for item in items:
        if not _SYMBOL_RE.match(item):
            raise ValueError(f"symbols of 2-20 letters/digits (bad: {item!r})")
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        raise ValueError(f"a list without duplicates (duplicated: {','.join(duplicates)})")
    return tuple(items)


def _strategies(raw: str) -> tuple[str, ...]:
    allowed = "a comma-separated list of mean_reversion, ma_crossover, vol_breakout (aliases mr, ma, vb)"
    items = [item.strip().lower() for item in raw.split(",")]
    if not raw.strip() or any(item not in STRATEGY_ALIASES for item in items):
        raise ValueError(allowed)
    names = [STRATEGY_ALIASES[item] for item in items]
    if len(set(names)) != len(names):
        raise ValueError(allowed + " without duplicates")
    return tuple(names)


@dataclass(frozen=True, slots=True)
class VenueRow:
    name: str
    fee_bps: int
    latency_ms: int
    liquidity: int


def _venues(raw: str) -> tuple[VenueRow, ...]:
    allowed = "a comma-separated list of NAME:FEE_BPS:LATENCY_MS:LIQUIDITY (e.g. A:5:3:70,B:7:2:50)"
    rows: list[VenueRow] = []
    for item in raw.split(","):
        parts = item.strip().split(":")
        if len(parts) != 4 or not _VENUE_RE.match(parts[0]):
            raise ValueError(allowed + "; names of 1-12 letters, digits or _")
        try:
            fee, latency, liquidity = (int(p) for p in parts[1:])
        except ValueError:
            raise ValueError(allowed) from None
        if not (0 <= fee <= 10_000 and 0 <= latency <= 60_000 and 0 <= liquidity <= 1_000_000):
            raise ValueError(allowed + "; fee 0..10000 bps, latency 0..60000 ms, liquidity 0..1000000")
        rows.append(VenueRow(parts[0], fee, latency, liquidity))
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise ValueError(allowed + " without duplicate names")
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


_POS = _decimal(positive=True)
_NONNEG = _decimal(non_negative=True)

KEYS: Final[tuple[KeySpec, ...]] = (
    # -- modes, symbols, strategies -------------------------------------------------------------------
    KeySpec("FEED_MODE", "mock", _choice(FEED_MODES), "market data source"),
    KeySpec("VENUE_MODE", "mock", _choice(VENUE_MODES), "where orders go"),
    KeySpec("SYMBOLS", "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT", _symbols, "symbols to trade, comma-separated"),
    KeySpec("SYMBOL", "", _text, "legacy single symbol: used as SYMBOLS when SYMBOLS is not set, else must be in it"),
    KeySpec("DATA_SOURCE", "", _choice(("", "mock", "binance")), "legacy, ignored (FEED_MODE decides)"),
    KeySpec("STRATEGIES", "mean_reversion,ma_crossover,vol_breakout", _strategies, "strategies to run"),
    KeySpec("STRATEGY", "", _text, "legacy single strategy: used when STRATEGIES is not set"),
    KeySpec("STRATEGY_WORKERS", "2", _int(1, 64), "workers per strategy; symbols are sharded across them"),
    KeySpec("STRATEGY_QTY", "10", _POS, "order quantity of every signal, in base units"),
    KeySpec(
        "STRATEGY_NOTIONAL",
        "",
        _optional(_POS),
        "order size in quote currency instead of STRATEGY_QTY: per symbol the fewest steps worth this much at "
        "the start-up price (empty = off)",
    ),
    KeySpec("MR_WINDOW", "64", _int(1, 100_000), "mean reversion: mids in the fair-value window"),
    KeySpec("MR_EDGE_TICKS", "3", _int(0, 1_000_000), "mean reversion: distance from fair value, in ticks"),
    KeySpec(
        "MR_COOLDOWN_TICKS",
        "16",
        _int(0, 1_000_000),
        "mean reversion: ticks after a signal on which none fires (0 = the original: every tick the edge holds)",
    ),
    KeySpec("MA_FAST", "16", _int(1, 100_000), "MA crossover: fast window"),
    KeySpec("MA_SLOW", "64", _int(2, 100_000), "MA crossover: slow window (> MA_FAST)"),
    KeySpec("MA_MIN_EDGE_TICKS", "2", _int(0, 1_000_000), "MA crossover: minimum |fast - slow|, in ticks"),
    KeySpec("MA_COOLDOWN_TICKS", "16", _int(0, 1_000_000), "MA crossover: ticks between signals"),
    KeySpec("VB_WINDOW", "100", _int(1, 100_000), "volatility breakout: window of the rolling high/low"),
    KeySpec("VB_EDGE_TICKS", "2", _int(0, 1_000_000), "volatility breakout: buffer beyond high/low, in ticks"),
    KeySpec("VB_COOLDOWN_TICKS", "20", _int(0, 1_000_000), "volatility breakout: ticks between signals"),
    # -- risk ----------------------------------------------------------------------------------------
    KeySpec("PX_MIN", "10", _POS, "lowest order price accepted, quote currency"),
    KeySpec("PX_MAX", "2000", _POS, "highest order price accepted, quote currency"),
    KeySpec("MAX_NOTIONAL", "20000000", _POS, "largest order notional (price x quantity), quote currency"),
    KeySpec("MAX_QPS", "50", _int(1, 100_000), "orders per second (token bucket rate)"),
    KeySpec("RISK_BURST", "50", _int(1, 100_000), "token bucket capacity (orders allowed at once)"),
    KeySpec(
        "RISK_MAX_ORDER_AGE_MS",
        "2000",
        _int(0, 600_000),
        "a gateway rejects an order older than this since its signal instead of sending it, ms (0 = off)",
    ),
    KeySpec("RISK_MAX_DEVIATION_BPS", "100", _int(0, 10_000), "max distance of the price from the mid, bps; 0 = off"),
    KeySpec("RISK_MAX_POSITION", "100", _POS, "max absolute position per symbol incl. open orders, base units"),
    KeySpec(
        "RISK_MAX_POSITION_NOTIONAL",
        "",
        _optional(_POS),
        "max position per symbol in quote currency instead of RISK_MAX_POSITION, at the start-up price "
        "(empty = off)",
    ),
    KeySpec("RISK_MAX_LOSS", "10000", _NONNEG, "realized+unrealized loss that switches to reducing; 0 = off"),
    KeySpec("RISK_MAX_DRIFT", "100", _NONNEG,
            "account drift (quote value of one asset's difference) that switches to reducing; 0 = off"),
    # -- router --------------------------------------------------------------------------------------
    KeySpec("VENUES", "A:5:3:70,B:7:2:50,C:2:6:90", _venues, "venue table NAME:FEE_BPS:LATENCY_MS:LIQUIDITY"),
    KeySpec("ROUTER_TOP_N", "2", _int(1, 64), "venues an order is split across"),
    KeySpec("ROUTER_MIN_CHILD_QTY", "2", _NONNEG, "smallest child order, base units (never above the parent)"),
    KeySpec("ROUTER_INVENTORY_BIAS", "5", _int(0, 1_000_000), "score bonus where the order shrinks inventory"),
    # -- mock feed and venue -------------------------------------------------------------------------
    KeySpec("MOCK_RATE", "200", _int(0, 10_000_000), "mock ticks per second per symbol; 0 = unthrottled"),
    KeySpec("MOCK_SEED", "42", _int(0, 2**63 - 1), "mock feed random seed"),
    KeySpec("MOCK_START_PRICE", "100.00", _POS, "mock feed starting bid"),
    KeySpec("MOCK_MIN_PRICE", "50.00", _POS, "mock feed floor for the bid"),
    KeySpec("MOCK_TICK_SIZE", "0.01", _POS, "mock instruments' tick size"),
    KeySpec("MOCK_STEP_SIZE", "0.001", _POS, "mock instruments' quantity step"),
    KeySpec("MOCK_MAX_SPREAD_TICKS", "3", _int(1, 1000), "mock spread is 1..this many ticks"),
    KeySpec("MOCK_VENUE_SEED", "7", _int(0, 2**63 - 1), "simulated venues' random seed"),
    KeySpec("MOCK_PARTIAL_FILL_PCT", "30", _int(0, 100), "chance (%) that a simulated order fills in parts"),
    KeySpec("MOCK_REJECT_PCT", "0", _int(0, 100), "chance (%) that a simulated venue rejects an order"),
    KeySpec("MOCK_JITTER_PCT", "50", _int(0, 100), "simulated latency jitter, +- % of the venue's latency"),
    # -- plumbing ------------------------------------------------------------------------------------
    KeySpec("METRICS_HOST", "0.0.0.0", _text, "address the metrics endpoint binds"),
    KeySpec("METRICS_PORT", "9898", _int(0, 65535), "Prometheus endpoint port (/ and /metrics); 0 = any free"),
    KeySpec("RECORD_FILE", "events_mock.jsonl", _text, "append-only JSONL event log; empty = off"),
    KeySpec("REPLAY_FILE", "", _text, "FEED_MODE=replay: the recording (our JSONL or the Rust original's; .gz, .zst)"),
    KeySpec(
        "REPLAY_SPEED",
        "1",
        _decimal(non_negative=True),
        "FEED_MODE=replay: 1 = the recorded pace, N = N times faster, 0 = as fast as the pipeline takes them",
    ),
    KeySpec(
        "RECORD_MIN_FREE_MB",
        "1024",
        _int(0, 10_000_000),
        "warn at start-up when the RECORD_FILE file system has less free space, MB (0 = never)",
    ),
    KeySpec("STATUS_INTERVAL_S", "10", _int(0, 86_400), "seconds between status lines on stderr; 0 = off"),
    KeySpec("HEALTH_MAX_TICK_AGE_S", "5", _int(1, 86_400), "/healthz is 503 when a symbol has not ticked this long"),
    KeySpec(
        "HEALTH_MAX_ANSWER_WAIT_S",
        "5",
        _int(1, 3600),
        "/healthz is 503 when a venue leaves a request unanswered this long, seconds",
    ),
    KeySpec("LOG_LEVEL", "info", _log_level, "error, warn, info, debug (RUST_LOG is accepted as an alias)"),
    KeySpec("DMA_QUEUE_SIZE", "8192", _int(16, 10_000_000), "capacity of every queue between stages"),
    # -- Binance ------------------------------------------------------------------------------------
    KeySpec(
        "BINANCE_WS_URL",
        "wss://testnet.binance.vision/ws",
        _url,
        "Binance market stream base ending in /ws (mainnet default wss://stream.binance.com:9443/ws when "
        "FEED_MODE=binance_mainnet)",
    ),
    KeySpec(
        "BINANCE_REST_URL",
        "https://testnet.binance.vision",
        _url,
        "Binance REST base (mainnet default https://api.binance.com when a mode is binance_mainnet)",
    ),
    KeySpec(
        "BINANCE_WS_API_URL",
        "wss://ws-api.testnet.binance.vision/ws-api/v3",
        _url,
        "Binance WebSocket API (user-data fills); wss://ws-api.binance.com:443/ws-api/v3 by default when "
        "VENUE_MODE=binance_mainnet",
    ),
    KeySpec("BINANCE_API_KEY", "", _secret, "Binance API key", secret=True),
    KeySpec("BINANCE_API_SECRET", "", _secret, "Binance API secret", secret=True),
    KeySpec("BINANCE_RECV_WINDOW", "5000", _int(1, 60_000), "Binance recvWindow, ms"),
    KeySpec("BINANCE_TIME_IN_FORCE", "GTC", _choice(("gtc", "ioc", "limit_maker")), "GTC, IOC or LIMIT_MAKER"),
    KeySpec("BINANCE_CANCEL_ON_SHUTDOWN", "yes", _choice(("yes", "no")), "cancel our open orders when stopping"),
    KeySpec("LIVE_TRADING", "", _choice(("", "yes", "no")), "must be yes for VENUE_MODE=binance_mainnet (real money)"),
    KeySpec("BINANCE_STALE_S", "30", _int(1, 3600), "drop and reconnect a market stream silent this long, seconds"),
    KeySpec("BINANCE_RECONNECT_MAX_S", "30", _int(1, 3600), "longest wait between reconnect attempts, seconds"),
    KeySpec(
        "BINANCE_REQUEST_TIMEOUT_S",
        "10",
        _int(1, 120),
        "a REST request unanswered this long is a timeout (an order's outcome then unknown: queried), seconds",
    ),
    KeySpec(
        "BINANCE_ACCOUNT_RECHECK_S",
        "2",
        _int(1, 600),
        "after the account read that follows a user-data resubscription, read it again this much later; a drift "
        "breaches RISK_MAX_DRIFT only when two reads in a row show it, seconds",
    ),
    KeySpec(
        "BINANCE_USER_SILENCE_S",
        "10",
        _int(1, 600),
        "an order the venue acknowledged over REST that the user-data stream has not told of this long: the stream "
        "is taken as silent (its events lost), dropped and resubscribed, and every open order reconciled, seconds",
    ),
    KeySpec(
        "BINANCE_CONNECTION_MAX_AGE_S",
        "84600",
        _int(60, 86_000),
        "reconnect a stream after this long, before Binance's 24 h cut, seconds",
    ),
)
_BY_NAME: Final = {spec.name: spec for spec in KEYS}
ALIASES: Final = {"RUST_LOG": "LOG_LEVEL"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything the daemon was told, validated. Built only by :func:`load_config`."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]  # key -> "default" | "file" | "env"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def redacted(self) -> dict[str, str]:
        """Every key with its value as text, secrets masked (safe for logs and the JSONL Start record)."""
        out: dict[str, str] = {}
        for spec in KEYS:
            value = self.values[spec.name]
            if spec.secret:
                out[spec.name] = repr(value)
            elif isinstance(value, tuple):
                out[spec.name] = ",".join(v if isinstance(v, str) else _venue_text(v) for v in value)
            else:
                out[spec.name] = str(value)
        return out


def _venue_text(row: VenueRow) -> str:
    return f"{row.name}:{row.fee_bps}:{row.latency_ms}:{row.liquidity}"


def preset_values(env: str | None) -> dict[str, str]:
    """The preset a command runs with: ``--env FILE`` when given, else ``./.env`` when it exists, else none (the
    built-in defaults are the mock preset)."""
    if env:
        return read_env_file(env)
    if Path(".env").is_file():
        return read_env_file(".env")
    return {}


def read_env_file(path: str | Path) -> dict[str, str]:
    """Key/value pairs of a .env file (python-dotenv's syntax). A missing file, a line the parser cannot read
    (an unclosed quote, no ``=``) or a key set twice is a ConfigError naming the file and line; the value of a
    bad line is never echoed (it may be a secret)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--env: an existing .env file, was {str(path)!r} (not found)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--env: a readable UTF-8 .env file, was {str(path)!r} ({e})") from e
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        number = binding.original.line
        if binding.error or (binding.key is not None and binding.value is None):
            head = binding.original.string.strip().removeprefix("export ").partition("=")[0].strip()
            if _ENV_KEY.fullmatch(head) and "=" in binding.original.string:
                raise ConfigError(f"{path}:{number}: a KEY=VALUE line (quotes closed on the same line), "
                                  f"was an unreadable value for {head}")
            raise ConfigError(f"{path}:{number}: a KEY=VALUE line, was a line without one (not shown: it may "
                              f"hold a secret)")
        key = binding.key
        if key is None:
            continue  # a comment or a blank line
        if key in lines:
            raise ConfigError(f"{key}: set once per preset, was set twice in {path} (lines {lines[key]} and {number})")
        lines[key] = number
        values[key] = binding.value or ""
    return values


_SHOWN_MAX: Final = 24


def _shown(raw: str) -> str:
    """A given value as an error shows it: quoted, and clipped when long (a secret pasted into the wrong key,
    such as BINANCE_RECV_WINDOW, must not be printed whole)."""
    if len(raw) <= _SHOWN_MAX:
        return repr(raw)
    return f"a value of {len(raw)} characters (not shown)"


def _check_known(raw: Mapping[str, str], where: str, only_own_prefixes: bool) -> None:
    for key in raw:
        if key in _BY_NAME or key in ALIASES:
            continue
        if key in PROCESS_SWITCHES:
            if not only_own_prefixes:  # a preset is read after the switch took effect
                raise ConfigError(f"{key}: a process switch, set in the environment, not in {where}")
            allowed = PROCESS_SWITCHES[key]
            if raw[key] not in allowed:
                choices = " or ".join(f"{value} ({meaning})" for value, meaning in allowed.items())
                raise ConfigError(f"{key}: {choices}, was {_shown(raw[key])}")
            continue
        if only_own_prefixes and not key.startswith(OWN_PREFIXES):
            continue
        hint = _closest(key)
        suffix = f" (did you mean {hint}?)" if hint else ""
        raise ConfigError(f"{key}: not a known configuration key{suffix}, was set in {where}")


def _closest(key: str) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(_BY_NAME), n=1, cutoff=0.75)
    return matches[0] if matches else None


def load_config(file_values: Mapping[str, str], environ: Mapping[str, str]) -> Config:
    """Merge defaults < preset file < process environment, validate every key, and return the Config."""
    _check_known(file_values, "the .env file", only_own_prefixes=False)
    _check_known(environ, "the environment", only_own_prefixes=True)

    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    for layer_name, layer in (("file", file_values), ("env", environ)):
        for key, value in layer.items():
            name = ALIASES.get(key, key)
            if name not in _BY_NAME:
                continue
            if key in ALIASES and name in layer:
                continue  # the real key wins over its alias in the same layer
            merged[name] = value
            sources[name] = layer_name

    values: dict[str, Any] = {}
    for spec in KEYS:
        given = spec.name in merged
        raw = merged[spec.name] if given else spec.default
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as e:
            raise ConfigError(f"{spec.name}: {e}, was {'***' if spec.secret else _shown(raw)}") from None
        sources.setdefault(spec.name, "default")

    _legacy_single_keys(values, sources, merged)
    _mode_defaults(values, sources)
    _cross_checks(values, sources)
    return Config(values=values, sources=sources)


def _legacy_single_keys(values: dict[str, Any], sources: dict[str, str], merged: Mapping[str, str]) -> None:
    symbol = values["SYMBOL"].upper()
    if symbol:
        if "SYMBOLS" not in merged:
            try:
                values["SYMBOLS"] = _symbols(symbol)
            except ValueError as e:
                raise ConfigError(f"SYMBOL: {e}, was {merged['SYMBOL']!r}") from None
        elif symbol not in values["SYMBOLS"]:
            allowed = ",".join(values["SYMBOLS"])
            raise ConfigError(f"SYMBOL: one of SYMBOLS ({allowed}), was {merged['SYMBOL']!r}")
        values["SYMBOL"] = symbol
    strategy = values["STRATEGY"]
    if strategy and "STRATEGIES" not in merged:
        try:
            values["STRATEGIES"] = _strategies(strategy)
        except ValueError as e:
            raise ConfigError(f"STRATEGY: {e}, was {merged['STRATEGY']!r}") from None
        sources["STRATEGIES"] = sources["STRATEGY"]


def _cross_checks(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    if values["MA_FAST"] >= values["MA_SLOW"]:
        raise ConfigError(f"MA_FAST: less than MA_SLOW ({values['MA_SLOW']}), was {values['MA_FAST']}")
    if values["PX_MIN"] >= values["PX_MAX"]:
        raise ConfigError(f"PX_MIN: less than PX_MAX ({values['PX_MAX']}), was {values['PX_MIN']}")
    pairs = (("STRATEGY_NOTIONAL", "STRATEGY_QTY"), ("RISK_MAX_POSITION_NOTIONAL", "RISK_MAX_POSITION"))
    for alternative, key in pairs:
        if values[alternative] is not None and sources[key] != "default":
            raise ConfigError(
                f"{alternative}: unset when {key} is set (one or the other), was {values[alternative]} with "
                f"{key}={values[key]} from {sources[key]}"
            )
    if (values["STRATEGY_NOTIONAL"] is None and values["RISK_MAX_POSITION_NOTIONAL"] is None
            and values["STRATEGY_QTY"] > values["RISK_MAX_POSITION"]):
        raise ConfigError(
            f"STRATEGY_QTY: at most RISK_MAX_POSITION ({values['RISK_MAX_POSITION']}): every order would be refused "
            f"(max_position), was {values['STRATEGY_QTY']}"
        )
    if values["FEED_MODE"] == "replay":
        replay = values["REPLAY_FILE"]
        if not replay or not Path(replay).is_file():
            raise ConfigError(f"REPLAY_FILE: an existing recording when FEED_MODE=replay, was "
                              f"{repr(replay) + ' (not found)' if replay else 'empty'}")
        if values["VENUE_MODE"] != "mock":
            raise ConfigError(f"VENUE_MODE: mock when FEED_MODE=replay (recorded prices are not the venue's), was "
                              f"{values['VENUE_MODE']}")
    if values["FEED_MODE"] == "mock" and not values["PX_MIN"] <= values["MOCK_START_PRICE"] <= values["PX_MAX"]:
        raise ConfigError(
            f"MOCK_START_PRICE: within PX_MIN..PX_MAX ({values['PX_MIN']}..{values['PX_MAX']}): every order would "
            f"be refused (price_band), was {values['MOCK_START_PRICE']}"
        )
    if values["MOCK_MIN_PRICE"] > values["MOCK_START_PRICE"]:
        raise ConfigError(
            f"MOCK_MIN_PRICE: at most MOCK_START_PRICE ({values['MOCK_START_PRICE']}), "
            f"was {values['MOCK_MIN_PRICE']}"
        )
    for key in ("MOCK_START_PRICE", "MOCK_MIN_PRICE"):
        if values[key] % values["MOCK_TICK_SIZE"] != 0:
            raise ConfigError(
                f"{key}: a multiple of MOCK_TICK_SIZE ({values['MOCK_TICK_SIZE']}), was {values[key]}"
            )
    if values["ROUTER_TOP_N"] > len(values["VENUES"]):
        raise ConfigError(
            f"ROUTER_TOP_N: at most the number of VENUES ({len(values['VENUES'])}), was {values['ROUTER_TOP_N']}"
        )
    if values["VENUE_MODE"] == "binance_mainnet" and values["LIVE_TRADING"] != "yes":
        raise ConfigError(
            "LIVE_TRADING: yes to trade real money with VENUE_MODE=binance_mainnet, was "
            f"{_shown(values['LIVE_TRADING']) if values['LIVE_TRADING'] else 'empty (unset)'}"
        )
    if values["VENUE_MODE"] != "mock":
        for key in ("BINANCE_API_KEY", "BINANCE_API_SECRET"):
            given = values[key].reveal()
            if not given or given.startswith("YOUR_"):
                shown = "empty" if not given else "the preset's placeholder"
                raise ConfigError(f"{key}: your API key material when VENUE_MODE={values['VENUE_MODE']}, was {shown}")


_MAINNET_URLS: Final = {
    "BINANCE_WS_URL": "wss://stream.binance.com:9443/ws",
    "BINANCE_REST_URL": "https://api.binance.com",
    "BINANCE_WS_API_URL": "wss://ws-api.binance.com:443/ws-api/v3",
}


def _mode_defaults(values: dict[str, Any], sources: Mapping[str, str]) -> None:
    """Mainnet modes default to mainnet URLs (as the original did): a mode never silently talks to testnet."""
    if "binance_mainnet" in (values["FEED_MODE"], values["VENUE_MODE"]):
        for key, url in _MAINNET_URLS.items():
            if sources.get(key) == "default":
                values[key] = url


def help_table() -> str:
    """Every configuration key with its default and meaning, for --help."""
    width = max(len(spec.name) for spec in KEYS)
    lines = []
    for spec in KEYS:
        default = "(secret, empty)" if spec.secret else (spec.default if spec.default else "(empty)")
        lines.append(f"  {spec.name:<{width}}  default {default}\n  {'':<{width}}  {spec.help}")
    lines.append(f"  {'RUST_LOG':<{width}}  alias of LOG_LEVEL")
    return "\n".join(lines)
