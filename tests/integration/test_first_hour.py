"""A trader's first hour: the real `python -m dma_bot` process given a broken preset says what is wrong in one
line and exits 2, before anything runs (no record section is started)."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import orjson
import pytest

from dma_bot.exchange_sim import ExchangeSim
from tests.conftest import ROOT, Daemon, eventually, start_daemon
from tests.integration.test_daemon_binance_venue import _env
from tests.integration.test_daemon_mock import _read_jsonl, _read_written


async def _run_preset(tmp_path: Path, daemons: list[Daemon], lines: str) -> tuple[int, list[str], Path]:
    preset = tmp_path / "preset.env"
    record = tmp_path / "events.jsonl"
    preset.write_text((ROOT / ".env.mock").read_text() + lines)
    daemon = await start_daemon({"RECORD_FILE": str(record), "METRICS_PORT": "0"}, "--env", str(preset),
                                "--duration", "0.5")
    daemons.append(daemon)
    return await daemon.finish(), daemon.lines, preset


async def test_a_preset_line_with_an_unclosed_quote_is_one_line_and_exit_2(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """`RISK_MAX_LOSS="100` used to be skipped with a dotenv warning, and the daemon traded with the default."""
    code, lines, preset = await _run_preset(tmp_path, daemons, 'RISK_MAX_LOSS="100\n')

    assert code == 2
    number = preset.read_text().splitlines().index('RISK_MAX_LOSS="100') + 1
    assert lines == [f"dma_bot: configuration error: {preset}:{number}: a KEY=VALUE line (quotes closed on the same "
                     "line), was an unreadable value for RISK_MAX_LOSS"]
    assert not (tmp_path / "events.jsonl").exists()


async def test_a_key_set_twice_in_a_preset_is_one_line_and_exit_2(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The last of two RISK_MAX_LOSS lines used to win silently."""
    code, lines, preset = await _run_preset(tmp_path, daemons, "RISK_MAX_LOSS=100\n")

    first = (ROOT / ".env.mock").read_text().splitlines().index("RISK_MAX_LOSS=10000") + 1
    second = preset.read_text().splitlines().index("RISK_MAX_LOSS=100") + 1
    assert code == 2
    assert lines == [f"dma_bot: configuration error: RISK_MAX_LOSS: set once per preset, was set twice in {preset} "
                     f"(lines {first} and {second})"]


async def test_a_wrong_api_key_is_one_line_and_exit_2_before_any_order(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The most common start-up mistake used to print 'stage crashed (in stage gateway.BINANCE)' and a traceback
    after the feed connected, exit 1. Now the subscription is made before any stage runs."""
    record = tmp_path / "events.jsonl"
    async with ExchangeSim(symbols=("BTCUSDT", "ETHUSDT"), port=0) as sim:
        env = {**_env(sim, record), "BINANCE_API_KEY": "x" * 64}
        daemon = await start_daemon(env, "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        code = await daemon.finish()

        assert sim.open_orders() == [] and sim.order("BTCUSDT", order_id=1) is None
    assert code == 2, daemon.stderr
    assert "Traceback" not in daemon.stderr and "stage crashed" not in daemon.stderr
    assert daemon.lines[-1] == ("dma_bot: start-up error: BINANCE user-data stream: a subscription the venue accepts, "
                                "was refused (-2015 Invalid API-key, IP, or permissions for action.): check "
                                "BINANCE_API_KEY, BINANCE_API_SECRET and the key's permissions")
    assert not record.exists() or b'"type":"Ord"' not in record.read_bytes()


async def _config_error(daemons: list[Daemon], env: dict[str, str]) -> tuple[int, list[str]]:
    daemon = await start_daemon({"METRICS_PORT": "0", "RECORD_FILE": "", **env}, "--env", str(ROOT / ".env.mock"))
    daemons.append(daemon)
    return await daemon.finish(), daemon.lines


async def test_an_empty_choice_is_named_and_a_long_value_is_never_printed(daemons: list[Daemon]) -> None:
    """`LIVE_TRADING: one of , yes, no` named the empty choice as nothing; a secret pasted into the wrong key
    (BINANCE_RECV_WINDOW=<the secret>) was echoed whole."""
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

    choice = await _config_error(daemons, {"LIVE_TRADING": "maybe"})
    pasted = await _config_error(daemons, {"BINANCE_RECV_WINDOW": secret})

    assert choice == (2, ["dma_bot: configuration error: LIVE_TRADING: one of (empty), yes, no, was 'maybe'"])
    assert pasted == (2, ["dma_bot: configuration error: BINANCE_RECV_WINDOW: an integer from 1 to 60000, was a "
                          "value of 64 characters (not shown)"])


async def test_money_in_the_stop_line_and_record_is_at_the_instruments_precision(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """`unrealized_pnl=0E-8` and 40-digit average prices: the stop line shows quote amounts at the finest
    tick * step (5 places on the mock grid), the Stop record averages two places finer than the tick."""
    record = tmp_path / "events.jsonl"
    daemon = await start_daemon({"METRICS_PORT": "0", "RECORD_FILE": str(record), "MOCK_RATE": "2000"},
                                "--env", str(ROOT / ".env.mock"), "--duration", "1.5")
    daemons.append(daemon)

    assert await daemon.finish() == 0, daemon.stderr

    [line] = [line for line in daemon.lines if "stopped cleanly" in line]
    amounts = re.findall(r"(?:realized_pnl|unrealized_pnl|net_pnl)=(\S+)", line)
    assert len(amounts) == 3 and all(re.fullmatch(r"-?\d+\.\d{5}", amount) for amount in amounts), line
    stop = orjson.loads(record.read_bytes().splitlines()[-1])
    assert stop["positions"]
    assert all(re.fullmatch(r"\d+\.\d{4}", p["average_price"]) for p in stop["positions"]), stop["positions"]
    assert all(re.fullmatch(r"-?\d+\.\d{5}", p["realized_pnl"]) for p in stop["positions"]), stop["positions"]
    assert all(re.fullmatch(r"-?\d+\.\d{5}", stop[key]) for key in ("realized_pnl", "unrealized_pnl", "net_pnl"))


async def test_an_unthrottled_recorded_feed_warns_and_a_created_directory_is_logged(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """MOCK_RATE=0 used to write ~200 MB/s of JSONL without a word; a missing RECORD_FILE directory was created
    silently."""
    record = tmp_path / "new" / "dir" / "events.jsonl"
    daemon = await start_daemon({"METRICS_PORT": "0", "RECORD_FILE": str(record), "MOCK_RATE": "0"},
                                "--env", str(ROOT / ".env.mock"), "--duration", "0.3")
    daemons.append(daemon)

    assert await daemon.finish() == 0, daemon.stderr
    assert any(f"MOCK_RATE=0 (unthrottled) with RECORD_FILE={record}: the recording grows by about 200 MB a second"
               in line for line in daemon.lines), daemon.stderr
    assert any(f"recorder: created the directory '{record.parent}' for RECORD_FILE" in line for line in daemon.lines)
    assert record.exists()


async def test_a_full_record_file_at_start_up_is_one_line_and_exit_2(daemons: list[Daemon]) -> None:
    """A RECORD_FILE that takes no write (here /dev/full, a real ENOSPC) stops the start-up: one line, exit 2,
    before the feed or any strategy runs (it used to trade on, halted only after its first write failed)."""
    daemon = await start_daemon({"METRICS_PORT": "0", "RECORD_FILE": "/dev/full", "RECORD_MIN_FREE_MB": "0"},
                                "--env", str(ROOT / ".env.mock"))
    daemons.append(daemon)

    assert await daemon.finish() == 2, daemon.stderr
    assert daemon.lines[-1] == ("dma_bot: start-up error: RECORD_FILE: cannot write to '/dev/full': No space left "
                                "on device (free disk space, or choose another path)")
    assert "Traceback" not in daemon.stderr


async def test_an_unreachable_rest_api_is_one_line_without_none(daemons: list[Daemon]) -> None:
    """A Binance REST URL nobody answers: one line naming the key and the transport error, exit 2; never
    'Binance error None (HTTP None)'."""
    env = {"FEED_MODE": "binance_sandbox", "BINANCE_REST_URL": "http://127.0.0.1:9", "METRICS_PORT": "0",
           "RECORD_FILE": ""}
    daemon = await start_daemon(env, "--env", str(ROOT / ".env.mock"))
    daemons.append(daemon)

    assert await daemon.finish() == 2, daemon.stderr
    assert daemon.lines[-1].startswith("dma_bot: start-up error: BINANCE_REST_URL: a reachable Binance REST API "
                                       "(exchangeInfo), was 'http://127.0.0.1:9' (no answer from the venue: ")
    assert "None" not in daemon.lines[-1]


async def test_the_mainnet_preset_names_live_trading_first(daemons: list[Daemon]) -> None:
    """With the mainnet preset as shipped, the first thing a trader reads is the decision to trade real money,
    not the placeholder keys."""
    daemon = await start_daemon({"METRICS_PORT": "0", "RECORD_FILE": ""}, "--env", str(ROOT / ".env.mainnet"))
    daemons.append(daemon)

    assert await daemon.finish() == 2
    assert daemon.lines == ["dma_bot: configuration error: LIVE_TRADING: yes to trade real money with "
                            "VENUE_MODE=binance_mainnet, was empty (unset)"]


async def test_a_taken_metrics_port_is_the_documented_line(daemons: list[Daemon]) -> None:
    """Troubleshooting item 2, as the README spells it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = await start_daemon({"METRICS_HOST": "127.0.0.1", "METRICS_PORT": str(port), "RECORD_FILE": ""},
                                    "--env", str(ROOT / ".env.mock"))
        daemons.append(daemon)
        code = await daemon.finish()

    assert code == 2
    assert daemon.lines[-1] == (f"dma_bot: start-up error: METRICS_PORT: a free port on 127.0.0.1, was {port} "
                                "(port already in use)")


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"STRATEGY_QTY": "150"}, "STRATEGY_QTY: at most RISK_MAX_POSITION (100): every order would be refused "
                                  "(max_position), was 150"),
        ({"MOCK_START_PRICE": "5000"}, "MOCK_START_PRICE: within PX_MIN..PX_MAX (10..2000): every order would be "
                                       "refused (price_band), was 5000"),
    ],
)
async def test_orders_that_could_never_pass_are_refused_at_start_up(
    daemons: list[Daemon], env: dict[str, str], line: str
) -> None:
    code, lines = await _config_error(daemons, env)

    assert (code, lines) == (2, [f"dma_bot: configuration error: {line}"])


async def test_the_sim_preset_trades_every_symbol_and_a_too_small_quantity_is_refused_at_start_up(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """With STRATEGY_QTY=0.001, 53 of 59 `.env.sim` orders were refused locally (notional below minNotional 5).
    The preset now sizes by STRATEGY_NOTIONAL and trades BTC and ETH with no such refusal; the old quantity is
    refused before anything runs, naming the symbol and the filter."""
    record = tmp_path / "events.jsonl"
    async with ExchangeSim(symbols=("BTCUSDT", "ETHUSDT"), port=0, quote_interval=0.005) as sim:
        env = _env(sim, record)
        old = await start_daemon({**env, "STRATEGY_NOTIONAL": "", "STRATEGY_QTY": "0.001"},
                                 "--env", str(ROOT / ".env.sim"))
        daemons.append(old)
        assert await old.finish() == 2, old.stderr
        assert re.fullmatch(r"dma_bot: start-up error: STRATEGY_QTY: an order of ETHUSDT worth at least its "
                            r"minNotional 5 at its price \d+(\.\d+)?, was 0\.001 \(0\.0010 ETH = [\d.]+\)",
                            old.lines[-1]), old.lines[-1]
        daemon = await start_daemon(env, "--env", str(ROOT / ".env.sim"))
        daemons.append(daemon)
        port = await daemon.wait_ready()

        async def both_filled() -> bool:
            records = _read_written(record)
            return {r["symbol"] for r in records if r["type"] == "Exec" and r["status"] == "filled"} == {
                "BTCUSDT", "ETHUSDT"}

        await eventually(both_filled, timeout=60, what="fills on BTCUSDT and ETHUSDT")
        assert port
        daemon.signal(signal.SIGTERM)
        assert await daemon.finish(timeout=60) == 0, daemon.stderr

    refused = [r for r in _read_jsonl(record) if r["type"] == "Exec" and "otional" in r["reason"]]
    assert refused == []


@pytest.mark.parametrize("preset", [".env.sandbox", ".env.mainnet"])
async def test_the_binance_presets_trade_every_symbol_out_of_the_box(
    tmp_path: Path, daemons: list[Daemon], preset: str
) -> None:
    """The sandbox and mainnet presets as shipped (their four symbols, 12 USDT orders), pointed at exchange_sim:
    they start, and every symbol gets orders that fill, none refused locally for its notional."""
    record = tmp_path / "events.jsonl"
    symbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"}
    async with ExchangeSim(symbols=sorted(symbols), port=0, quote_interval=0.005) as sim:
        env = {
            "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url, "BINANCE_WS_API_URL": sim.ws_api_url,
            "BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret, "LIVE_TRADING": "yes",
            "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0", "RECORD_FILE": str(record),
        }
        daemon = await start_daemon(env, "--env", str(ROOT / preset))
        daemons.append(daemon)
        await daemon.wait_ready()

        async def every_symbol_filled() -> bool:
            filled = {r["symbol"] for r in _read_written(record) if r["type"] == "Exec" and r["status"] == "filled"}
            return filled == symbols

        await eventually(every_symbol_filled, timeout=90, what=f"a fill on each of {sorted(symbols)}")
        daemon.signal(signal.SIGTERM)
        assert await daemon.finish(timeout=60) == 0, daemon.stderr

    assert [r for r in _read_jsonl(record) if r["type"] == "Exec" and "otional" in r["reason"]] == []
