"""GRID.toml -> a validated parameter grid and its combinations (pure: no config loading, no I/O past the file).

Owns the grid file's format and its checks. A grid names the strategy, the swept keys and the fixed ones::

    strategy = "ma_crossover"                       # STRATEGIES: one strategy, or a comma-separated list
    [params]                                        # swept: each a list, or an inclusive range
    MA_FAST = [8, 16, 32]
    MA_SLOW = { start = 64, stop = 256, step = 64 } # 64, 128, 192, 256
    [fixed]                                         # optional: one value each
    SYMBOLS = "BTCUSDT"
    RISK_MAX_POSITION = 1000

Every key must be a configuration key a backtest reads (strategy, sizing, risk, router and simulated-venue keys,
SYMBOLS, MOCK_STEP_SIZE); every value is checked by that key's own parser from :data:`dma_bot.config.KEYS`, so a
typo or a bad value is one line naming the file and the key (exit 2) before anything runs. Checks across keys
(``MA_FAST < MA_SLOW``) belong to one combination: they are the task's error, found when its configuration loads.
Decimals are read exactly (TOML floats are parsed as :class:`~decimal.Decimal`), ranges step exactly.
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from dma_bot.config import KEYS, KeySpec
from dma_bot.errors import ConfigError

__all__ = ["MAX_COMBINATIONS", "Grid", "load_grid", "parse_grid"]

MAX_COMBINATIONS: Final = 100_000  # a bigger grid is almost surely a mistyped range
_SPECS: Final = {spec.name: spec for spec in KEYS}
_SWEPT_PREFIXES: Final = ("MR_", "MA_", "VB_", "RISK_", "ROUTER_")
_SWEPT_KEYS: Final = frozenset({
    "SYMBOLS", "STRATEGY_QTY", "STRATEGY_NOTIONAL", "PX_MIN", "PX_MAX", "MAX_NOTIONAL", "MAX_QPS", "VENUES",
    "MOCK_VENUE_SEED", "MOCK_PARTIAL_FILL_PCT", "MOCK_REJECT_PCT", "MOCK_JITTER_PCT", "MOCK_STEP_SIZE",
})
_ALLOWED_KEYS: Final = ("strategy, sizing (STRATEGY_QTY, STRATEGY_NOTIONAL), risk (PX_*, MAX_*, RISK_*), router "
                        "(VENUES, ROUTER_*), simulated-venue (MOCK_VENUE_SEED, MOCK_*_PCT), SYMBOLS or MOCK_STEP_SIZE "
                        "keys")
_TOP_LEVEL: Final = ("strategy", "params", "fixed")


@dataclass(frozen=True, slots=True)
class Grid:
    """The strategy (STRATEGIES text), the swept keys with their values in file order, the fixed keys; every
    value as configuration text."""

    strategy: str
    dimensions: tuple[tuple[str, tuple[str, ...]], ...]
    fixed: Mapping[str, str]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.dimensions)

    def combinations(self) -> list[dict[str, str]]:
        """Every combination of the swept values (the last key varies fastest), with the fixed keys and
        STRATEGIES: the configuration overrides of one task."""
        base = {**self.fixed, "STRATEGIES": self.strategy}
        keys = self.keys
        return [{**base, **dict(zip(keys, values, strict=True))}
                for values in itertools.product(*(values for _, values in self.dimensions))]


def load_grid(path: str | Path) -> Grid:
    """Read and check GRID.toml; a missing or unparsable file, or any bad entry, is a one-line ConfigError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"GRID.toml: a readable TOML file, was {name!r} ({e.__class__.__name__})") from e
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: valid TOML, was not ({e})") from e
    return parse_grid(document, name)


def parse_grid(document: Mapping[str, Any], name: str = "GRID.toml") -> Grid:
    """A parsed TOML document as a :class:`Grid` (see the module docstring); errors name ``name``."""
    for key in document:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{name}: top-level keys strategy, [params] and [fixed], was {key!r}")
    strategy = document.get("strategy")
    if not isinstance(strategy, str):
        raise ConfigError(f"{name}: strategy: a strategy name such as \"ma_crossover\" (STRATEGIES), was "
                          f"{'missing' if strategy is None else repr(strategy)}")
    _check_value(name, "strategy", _SPECS["STRATEGIES"], strategy)
    params = document.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{name}: [params]: a table of at least one swept key, was "
                          f"{'missing' if params is None else repr(params)}")
    fixed_table = document.get("fixed", {})
    if not isinstance(fixed_table, dict):
        raise ConfigError(f"{name}: [fixed]: a table of keys with one value each, was {fixed_table!r}")
    dimensions = []
    for key, given in params.items():
        spec = _spec(name, "params", key)
        values = _values(name, key, given)
        for value in values:
            _check_value(name, f"params.{key}", spec, value)
        duplicated = sorted({v for v in values if values.count(v) > 1})
        if duplicated:
            raise ConfigError(f"{name}: params.{key}: values without duplicates, was {', '.join(duplicated)} twice")
        dimensions.append((key, tuple(values)))
    fixed = {}
    for key, given in fixed_table.items():
        spec = _spec(name, "fixed", key)
        if key in params:
            raise ConfigError(f"{name}: fixed.{key}: a key not swept in [params], was in both")
        if isinstance(given, list | dict):
            raise ConfigError(f"{name}: fixed.{key}: one value (swept keys go in [params]), was {given!r}")
        value = _text(name, f"fixed.{key}", given)
        _check_value(name, f"fixed.{key}", spec, value)
        fixed[key] = value
    count = 1
    for _, values in dimensions:
        count *= len(values)
    if count > MAX_COMBINATIONS:
        raise ConfigError(f"{name}: [params]: at most {MAX_COMBINATIONS:,} combinations, was {count:,}")
    return Grid(strategy=strategy, dimensions=tuple(dimensions), fixed=fixed)


def _spec(name: str, table: str, key: str) -> KeySpec:
    spec = _SPECS.get(key)
    if spec is None:
        close = difflib.get_close_matches(key, list(_SPECS), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{name}: {table}.{key}: a configuration key{hint}, was {key!r}")
    if key == "STRATEGIES":
        raise ConfigError(f"{name}: {table}.{key}: {_ALLOWED_KEYS} (the top-level strategy sets STRATEGIES), "
                          f"was {key}")
    if not (key in _SWEPT_KEYS or key.startswith(_SWEPT_PREFIXES)):
        raise ConfigError(f"{name}: {table}.{key}: {_ALLOWED_KEYS}, was {key} (the sweep sets it, or a backtest "
                          f"does not read it)")
    return spec


def _values(name: str, key: str, given: Any) -> list[str]:
    where = f"params.{key}"
    if isinstance(given, list):
        if not given:
            raise ConfigError(f"{name}: {where}: a non-empty list or a {{start, stop, step}} range, was []")
        return [_text(name, where, item) for item in given]
    if isinstance(given, dict):
        return _range(name, where, given)
    raise ConfigError(f"{name}: {where}: a list or a {{start, stop, step}} range (one value goes in [fixed]), "
                      f"was {given!r}")


def _range(name: str, where: str, given: dict[str, Any]) -> list[str]:
    allowed = "a range {start, stop, step} of numbers, step > 0, stop >= start (stop included when on a step)"
    if set(given) != {"start", "stop", "step"}:
        raise ConfigError(f"{name}: {where}: {allowed}, was keys {', '.join(sorted(given))}")
    numbers = [given["start"], given["stop"], given["step"]]
    if any(isinstance(n, bool) or not isinstance(n, int | Decimal) for n in numbers):
        raise ConfigError(f"{name}: {where}: {allowed}, was {given!r}")
    start, stop, step = (Decimal(n) for n in numbers)
    if step <= 0 or stop < start:
        raise ConfigError(f"{name}: {where}: {allowed}, was start {start}, stop {stop}, step {step}")
    count = int((stop - start) // step) + 1
    if count > MAX_COMBINATIONS:
        raise ConfigError(f"{name}: {where}: at most {MAX_COMBINATIONS:,} values, was {count:,}")
    integral = all(isinstance(n, int) for n in numbers)
    return [str(int(start + i * step)) if integral else str(start + i * step) for i in range(count)]


def _text(name: str, where: str, value: Any) -> str:
    """A TOML scalar as configuration text: strings as they are, integers and (exact) decimals as numbers."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ConfigError(f"{name}: {where}: a string or a number, was {value!r}")
    return str(value)


def _check_value(name: str, where: str, spec: KeySpec, value: str) -> None:
    try:
        spec.parse(value)
    except ValueError as e:
        raise ConfigError(f"{name}: {where}: {e}, was {value!r}") from None
