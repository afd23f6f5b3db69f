"""Configuration -> core parameters (dma_bot.params): what the daemon and a backtest build their cores from."""

from __future__ import annotations

from decimal import Decimal

from dma_bot.config import load_config, read_env_file
from dma_bot.params import (
    BINANCE,
    mock_instruments,
    random_walk_params,
    reference_prices,
    router_params,
    sim_venue_params,
    sizes,
)
from tests.conftest import ROOT


def test_mock_preset_parameters() -> None:
    """The mock preset's grid, walk, venue table, simulated venues and order sizes, as its keys say."""
    config = load_config(read_env_file(ROOT / ".env.mock"), {})
    instruments = mock_instruments(config)
    routing = router_params(config)

    assert {i.tick_size for i in instruments.values()} == {Decimal("0.01")}
    assert (instruments["BTCUSDT"].base_asset, instruments["BTCUSDT"].quote_asset) == ("BTC", "USDT")
    assert random_walk_params(config, instruments).start_ticks == 10_000  # MOCK_START_PRICE 100.00
    assert [(v.name, v.fee_bps, v.latency_ms) for v in routing.venues] == [("A", 5, 3), ("B", 7, 2), ("C", 2, 6)]
    assert sim_venue_params(config, routing.venues[2]).fee_bps == 2
    assert sizes(config, instruments, reference_prices(config)).quantities["ETHUSDT"] == 10_000  # 10 at 0.001


def test_a_binance_venue_mode_routes_to_binance_alone_unless_venues_is_given() -> None:
    keys = {"BINANCE_API_KEY": "k" * 64, "BINANCE_API_SECRET": "s" * 64}
    binance = load_config({}, {"VENUE_MODE": "binance_sandbox", **keys})
    named = load_config({}, {"VENUE_MODE": "binance_sandbox", "VENUES": "BINANCE:10:0:100,A:5:3:70", **keys})

    assert [v.name for v in router_params(binance).venues] == [BINANCE]
    assert [v.name for v in router_params(named).venues] == [BINANCE, "A"]
