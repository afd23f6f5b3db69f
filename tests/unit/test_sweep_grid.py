"""dma_bot.sweep.grid: GRID.toml -> checked keys and values, combinations in order; every mistake one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dma_bot.errors import ConfigError
from dma_bot.sweep.grid import load_grid


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_grid_lists_and_ranges_make_every_combination_last_key_fastest(tmp_path: Path) -> None:
    grid = load_grid(_grid(tmp_path, """
strategy = "ma"
[params]
MA_FAST = [4, 8]
MA_SLOW = { start = 16, stop = 40, step = 12 }
RISK_MAX_LOSS = { start = 0.5, stop = 1.0, step = 0.25 }
[fixed]
SYMBOLS = "BTCUSDT"
STRATEGY_QTY = 0.010
"""))

    assert grid.keys == ("MA_FAST", "MA_SLOW", "RISK_MAX_LOSS")
    assert grid.dimensions[1] == ("MA_SLOW", ("16", "28", "40"))
    assert grid.dimensions[2] == ("RISK_MAX_LOSS", ("0.50", "0.75", "1.00"))  # exact decimals, no float steps
    combinations = grid.combinations()
    assert len(combinations) == 2 * 3 * 3
    assert combinations[0] == {"SYMBOLS": "BTCUSDT", "STRATEGY_QTY": "0.010", "STRATEGIES": "ma", "MA_FAST": "4",
                               "MA_SLOW": "16", "RISK_MAX_LOSS": "0.50"}
    assert [c["RISK_MAX_LOSS"] for c in combinations[:3]] == ["0.50", "0.75", "1.00"]
    assert [c["MA_FAST"] for c in combinations[::9]] == ["4", "8"]


def test_grid_range_stop_off_the_step_is_not_passed(tmp_path: Path) -> None:
    grid = load_grid(_grid(tmp_path, 'strategy = "vb"\n[params]\nVB_WINDOW = { start = 10, stop = 35, step = 10 }\n'))
    assert grid.dimensions == (("VB_WINDOW", ("10", "20", "30")),)


@pytest.mark.parametrize(("text", "message"), [
    ('strategy = "ma"\n[params]\nMA_FASTT = [1]\n',
     "params.MA_FASTT: a configuration key (did you mean MA_FAST?), was 'MA_FASTT'"),
    ('strategy = "ma"\n[params]\nMA_FAST = [0, 4]\n', "params.MA_FAST: an integer from 1 to 100000, was '0'"),
    ('strategy = "ma"\n[params]\nMA_FAST = 4\n',
     "params.MA_FAST: a list or a {start, stop, step} range (one value goes in [fixed]), was 4"),
    ('strategy = "ma"\n[params]\nMA_FAST = []\n', "params.MA_FAST: a non-empty list or a {start, stop, step} range"),
    ('strategy = "ma"\n[params]\nMA_FAST = [4, 4]\n', "params.MA_FAST: values without duplicates, was 4 twice"),
    ('strategy = "ma"\n[params]\nMA_FAST = { start = 8, stop = 4, step = 1 }\n',
     "params.MA_FAST: a range {start, stop, step} of numbers, step > 0, stop >= start (stop included when on a "
     "step), was start 8, stop 4, step 1"),
    ('strategy = "ma"\n[params]\nFEED_MODE = ["mock"]\n', "params.FEED_MODE: strategy, sizing"),
    ('strategy = "ma"\n[params]\nSTRATEGIES = ["ma"]\n', "the top-level strategy sets STRATEGIES"),
    ('strategy = "macd"\n[params]\nMA_FAST = [4]\n', "strategy: a comma-separated list of mean_reversion"),
    ('[params]\nMA_FAST = [4]\n', "strategy: a strategy name such as \"ma_crossover\" (STRATEGIES), was missing"),
    ('strategy = "ma"\n', "[params]: a table of at least one swept key, was missing"),
    ('strategy = "ma"\n[params]\nMA_FAST = [4]\n[fixed]\nMA_FAST = 5\n', "fixed.MA_FAST: a key not swept"),
    ('strategy = "ma"\n[params]\nMA_FAST = [4]\n[fixed]\nVENUES = ["A:1:1:1"]\n', "fixed.VENUES: one value"),
    ('strategy = "ma"\n[params]\nMA_FAST = [4]\n[fixed]\nVENUES = "A:1"\n',
     "fixed.VENUES: a comma-separated list of NAME:FEE_BPS:LATENCY_MS:LIQUIDITY"),
    ('strategy = "ma"\nworkers = 3\n[params]\nMA_FAST = [4]\n', "top-level keys strategy, [params] and [fixed]"),
    ('strategy = "ma"\n[params\n', "valid TOML, was not"),
    ('strategy = "ma"\n[params]\nMA_FAST = [true]\n', "params.MA_FAST: a string or a number, was True"),
])
def test_grid_mistakes_are_one_line_naming_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _grid(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_grid(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_grid_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GRID.toml: a readable TOML file, was '.*nowhere.toml'"):
        load_grid(tmp_path / "nowhere.toml")


def test_grid_too_many_combinations_is_refused(tmp_path: Path) -> None:
    path = _grid(tmp_path, 'strategy = "ma"\n[params]\nMA_FAST = { start = 1, stop = 1000, step = 1 }\n'
                           'MA_SLOW = { start = 2, stop = 1001, step = 1 }\n')
    with pytest.raises(ConfigError, match=r"\[params\]: at most 100,000 combinations, was 1,000,000"):
        load_grid(path)
