"""Config: defaults are the mock preset; every bad value is one line naming the key; secrets stay masked."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dma_bot.config import KEYS, Secret, help_table, load_config, read_env_file
from dma_bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_load_config_no_file_gives_mock_preset_defaults() -> None:
    """With no file and no environment, the daemon runs the mock preset."""
    config = load_config({}, {})
    assert config["FEED_MODE"] == "mock"
    assert config["VENUE_MODE"] == "mock"
    assert config["SYMBOLS"] == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
    assert config["STRATEGIES"] == ("mean_reversion", "ma_crossover", "vol_breakout")
    assert config["STRATEGY_WORKERS"] == 2
    assert config["METRICS_PORT"] == 9898
    assert config["MAX_QPS"] == 50
    assert config["STRATEGY_QTY"] == Decimal("10")


def test_mock_preset_file_matches_defaults_for_every_key_it_sets() -> None:
    """.env.mock parses, and agrees with the built-in defaults (which are documented as the mock preset)."""
    values = read_env_file(ROOT / ".env.mock")
    from_file = load_config(values, {})
    defaults = load_config({}, {})
    for key in values:
        assert from_file[key] == defaults[key], key
    assert from_file["RECORD_FILE"] == "events_mock.jsonl"


@pytest.mark.parametrize("preset", [".env.sandbox", ".env.mainnet"])
def test_binance_presets_parse_and_fail_clearly(preset: str) -> None:
    """The Binance presets parse and refuse to start until the placeholder keys are replaced; the mainnet
    preset names LIVE_TRADING first (the decision to trade real money comes before the keys)."""
    values = read_env_file(ROOT / preset)
    placeholder = r"^BINANCE_API_KEY: your API key material when VENUE_MODE=binance_\w+, was the preset's placeholder"
    keys = {"BINANCE_API_KEY": "k" * 64, "BINANCE_API_SECRET": "s" * 64}
    if preset == ".env.mainnet":
        with pytest.raises(ConfigError, match=r"^LIVE_TRADING: yes to trade real money"):
            load_config(values, {})
        with pytest.raises(ConfigError, match=r"^LIVE_TRADING: yes to trade real money"):
            load_config(values, keys)
        with pytest.raises(ConfigError, match=placeholder):
            load_config(values, {"LIVE_TRADING": "yes"})
        keys["LIVE_TRADING"] = "yes"
    else:
        with pytest.raises(ConfigError, match=placeholder):
            load_config(values, {})
    config = load_config(values, keys)
    assert config["VENUE_MODE"] == config["FEED_MODE"]
    assert config["BINANCE_WS_API_URL"].endswith("/ws-api/v3")


def test_binance_feed_with_mock_venue_is_paper_trading_and_needs_no_keys() -> None:
    config = load_config({"FEED_MODE": "binance_sandbox", "VENUE_MODE": "mock"}, {})
    assert config["FEED_MODE"] == "binance_sandbox"
    assert config["BINANCE_WS_URL"] == "wss://testnet.binance.vision/ws"
    assert not config["BINANCE_API_KEY"]


def test_mainnet_mode_defaults_to_mainnet_urls_but_keeps_given_ones() -> None:
    config = load_config({"FEED_MODE": "binance_mainnet"}, {})
    assert config["BINANCE_WS_URL"] == "wss://stream.binance.com:9443/ws"
    assert config["BINANCE_REST_URL"] == "https://api.binance.com"
    given = load_config({"FEED_MODE": "binance_mainnet", "BINANCE_WS_URL": "ws://127.0.0.1:1/ws"}, {})
    assert given["BINANCE_WS_URL"] == "ws://127.0.0.1:1/ws"


def test_environment_overrides_file() -> None:
    config = load_config({"MOCK_RATE": "100"}, {"MOCK_RATE": "0"})
    assert config["MOCK_RATE"] == 0
    assert config.sources["MOCK_RATE"] == "env"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"FEED_MODE": "binance_futures"},
            "FEED_MODE: one of mock, binance_sandbox, binance_mainnet, replay, was 'binance_futures'",
        ),
        ({"VENUE_MODE": "paper"}, "VENUE_MODE: one of mock, binance_sandbox, binance_mainnet, was 'paper'"),
        ({"STRATEGIES": "mean_reversion,momentum"}, "STRATEGIES: a comma-separated list of mean_reversion"),
        ({"STRATEGIES": "mr,mean_reversion"}, "without duplicates"),
        ({"STRATEGY_WORKERS": "two"}, "STRATEGY_WORKERS: an integer from 1 to 64, was 'two'"),
        ({"STRATEGY_WORKERS": "0"}, "STRATEGY_WORKERS: an integer from 1 to 64, was '0'"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT: an integer from 0 to 65535, was '70000'"),
        ({"SYMBOLS": ""}, "SYMBOLS: a comma-separated non-empty list"),
        ({"SYMBOLS": "BTCUSDT,,ETHUSDT"}, "SYMBOLS: a comma-separated non-empty list"),
        ({"SYMBOLS": "BTCUSDT,ETHUSDT,btcusdt"}, "SYMBOLS: a list without duplicates (duplicated: BTCUSDT)"),
        ({"MAX_NOTIONAL": "abc"}, "MAX_NOTIONAL: a positive decimal, was 'abc'"),
        ({"MAX_NOTIONAL": "-5"}, "MAX_NOTIONAL: a positive decimal, was '-5'"),
        ({"PX_MIN": "NaN"}, "PX_MIN: a positive decimal, was 'NaN'"),
        ({"PX_MIN": "3000"}, "PX_MIN: less than PX_MAX (2000), was 3000"),
        ({"MA_FAST": "64"}, "MA_FAST: less than MA_SLOW (64), was 64"),
        ({"VENUES": "A:5:3"}, "VENUES: a comma-separated list of NAME:FEE_BPS:LATENCY_MS:LIQUIDITY"),
        ({"VENUES": "A:5:3:70,A:1:1:1"}, "without duplicate names"),
        ({"VENUES": "A-1:5:3:70"}, "names of 1-12 letters, digits or _"),
        ({"ROUTER_TOP_N": "4"}, "ROUTER_TOP_N: at most the number of VENUES (3), was 4"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: one of trace, debug, info, warn, warning, error, was 'loud'"),
        ({"SYMBOL": "XRPUSDT"}, None),  # becomes SYMBOLS: allowed
        ({"SYMBOLS": "BTCUSDT", "SYMBOL": "XRPUSDT"}, "SYMBOL: one of SYMBOLS (BTCUSDT), was 'XRPUSDT'"),
        ({"MOCK_START_PRICE": "100.005"}, "MOCK_START_PRICE: a multiple of MOCK_TICK_SIZE (0.01), was 100.005"),
        ({"RISK_MAX_DRIFT": "-1"}, "RISK_MAX_DRIFT: a decimal >= 0, was '-1'"),
        ({"RISK_MAX_DRIFT": "lots"}, "RISK_MAX_DRIFT: a decimal >= 0, was 'lots'"),
    ],
)
def test_load_config_bad_value_names_key_allowed_and_given(values: dict[str, str], message: str | None) -> None:
    """Each bad value raises one line: '<KEY>: <what is allowed>, was <given>'."""
    if message is None:
        load_config(values, {})
        return
    with pytest.raises(ConfigError) as info:
        load_config(values, {})
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_risk_max_drift_is_a_quote_amount_defaulting_to_100_and_0_turns_it_off() -> None:
    assert load_config({}, {})["RISK_MAX_DRIFT"] == Decimal(100)
    assert load_config({"RISK_MAX_DRIFT": "0"}, {})["RISK_MAX_DRIFT"] == Decimal(0)
    assert load_config({}, {"RISK_MAX_DRIFT": "2.5"})["RISK_MAX_DRIFT"] == Decimal("2.5")
    assert "RISK_MAX_DRIFT" in help_table()


def test_unknown_key_in_file_is_an_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"^MOCK_RAET: not a known configuration key \(did you mean MOCK_RATE\?\)"):
        load_config({"MOCK_RAET": "5"}, {})


def test_unknown_environment_key_only_with_our_prefixes() -> None:
    """Foreign environment variables are ignored; a typo with one of our prefixes is an error."""
    load_config({}, {"HOME": "/root", "PATH": "/bin", "LANG": "C"})
    with pytest.raises(ConfigError, match=r"^RISK_MAX_LOS: not a known configuration key"):
        load_config({}, {"RISK_MAX_LOS": "5"})


def test_process_switches_belong_in_the_environment_with_a_known_value() -> None:
    """DMA_BOT_PURE and DMA_BOT_COMPILE act before any preset is read: the environment takes 0 or 1, a preset
    file or another value is a one-line error naming the switch."""
    load_config({}, {"DMA_BOT_PURE": "1", "DMA_BOT_COMPILE": "0"})
    load_config({}, {"DMA_BOT_PURE": "0"})
    with pytest.raises(ConfigError, match=r"^DMA_BOT_PURE: 1 \(run the pure-Python cores\) or 0 \(.*\), was 'yes'$"):
        load_config({}, {"DMA_BOT_PURE": "yes"})
    with pytest.raises(ConfigError, match=r"^DMA_BOT_PURE: a process switch, set in the environment, not in the "
                                          r"\.env file$"):
        load_config({"DMA_BOT_PURE": "1"}, {})


def test_rust_log_is_an_alias_of_log_level() -> None:
    assert load_config({"RUST_LOG": "debug"}, {})["LOG_LEVEL"] == "DEBUG"
    assert load_config({"RUST_LOG": "debug", "LOG_LEVEL": "error"}, {})["LOG_LEVEL"] == "ERROR"


def test_legacy_strategy_and_aliases() -> None:
    assert load_config({"STRATEGY": "vb"}, {})["STRATEGIES"] == ("vol_breakout",)
    assert load_config({"STRATEGIES": "MR, ma"}, {})["STRATEGIES"] == ("mean_reversion", "ma_crossover")


def test_secrets_are_masked_everywhere() -> None:
    """An API secret never appears in repr, str, the redacted view, or an error message."""
    config = load_config({"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s3cr3t-value"}, {})
    secret = config["BINANCE_API_SECRET"]
    assert isinstance(secret, Secret)
    assert secret.reveal() == "s3cr3t-value"
    for text in (repr(secret), str(secret), repr(config.redacted()), repr(config.values)):
        assert "s3cr3t-value" not in text
        assert "k-123" not in text


def test_read_env_file_rejects_a_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("FEED_MODE=mock\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"bad.env:2: a KEY=VALUE line, was a line without one \(not shown"):
        read_env_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('FEED_MODE=mock\nRISK_MAX_LOSS="100\nMAX_QPS=5\n',
         r"bad.env:2: a KEY=VALUE line \(quotes closed on the same line\), was an unreadable value for RISK_MAX_LOSS$"),
        ("RISK_MAX_LOSS=100\n# a comment\nRISK_MAX_LOSS=50\n",
         r"RISK_MAX_LOSS: set once per preset, was set twice in .*bad.env \(lines 1 and 3\)$"),
        ("BINANCE_API_SECRET\n", r"bad.env:1: a KEY=VALUE line, was a line without one"),
    ],
)
def test_read_env_file_refuses_unreadable_lines_and_repeated_keys(tmp_path: Path, text: str, message: str) -> None:
    """An unclosed quote used to be skipped with a dotenv warning (so a risk limit silently fell back to its
    default); a key set twice used to let the last one win. Both are one-line errors naming file and line."""
    path = tmp_path / "bad.env"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_env_file(path)


def test_read_env_file_never_echoes_the_value_of_a_bad_line(tmp_path: Path) -> None:
    """A secret on a line the parser cannot read stays out of the error."""
    path = tmp_path / "bad.env"
    path.write_text("BINANCE_API_SECRET='NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j\n")
    with pytest.raises(ConfigError) as error:
        read_env_file(path)
    assert "NhqPtmd" not in str(error.value)


def test_read_env_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--env: an existing \.env file"):
        read_env_file(tmp_path / "nope.env")


def test_every_key_has_help_and_a_parsable_default() -> None:
    for spec in KEYS:
        assert spec.help, spec.name
        spec.parse(spec.default)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRATEGY_QTY": "150"},
         r"^STRATEGY_QTY: at most RISK_MAX_POSITION \(100\): every order would be refused \(max_position\), was 150$"),
        ({"MOCK_START_PRICE": "5000"},
         r"^MOCK_START_PRICE: within PX_MIN..PX_MAX \(10..2000\): every order would be refused \(price_band\), "
         r"was 5000$"),
    ],
)
def test_a_configuration_whose_orders_could_never_pass_is_refused(env: dict[str, str], message: str) -> None:
    """An order size above the position limit, or a mock market outside the price band, would be refused on
    every signal: a start-up error instead of a silent stream of rejects."""
    with pytest.raises(ConfigError, match=message):
        load_config(read_env_file(ROOT / ".env.mock"), env)


def test_quantity_and_notional_sizing_are_one_or_the_other() -> None:
    """STRATEGY_NOTIONAL with an explicit STRATEGY_QTY (or the two position limits) is ambiguous: refused."""
    with pytest.raises(ConfigError, match=r"^STRATEGY_NOTIONAL: unset when STRATEGY_QTY is set \(one or the other\), "
                                          r"was 12 with STRATEGY_QTY=1 from env$"):
        load_config({}, {"STRATEGY_NOTIONAL": "12", "STRATEGY_QTY": "1"})
    with pytest.raises(ConfigError, match=r"^RISK_MAX_POSITION_NOTIONAL: unset when RISK_MAX_POSITION is set"):
        load_config({"RISK_MAX_POSITION_NOTIONAL": "500"}, {"RISK_MAX_POSITION": "1"})
    config = load_config({"STRATEGY_NOTIONAL": "12"}, {"STRATEGY_NOTIONAL": "", "STRATEGY_QTY": "1"})
    assert config["STRATEGY_NOTIONAL"] is None and config["STRATEGY_QTY"] == Decimal(1)
