"""binance.filters: exchangeInfo -> SymbolRules, and the local pre-send check of LIMIT orders."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from dma_bot.binance.filters import (
    LocalFilterReject,
    NotionalLimit,
    PercentPrice,
    PercentPriceBySide,
    SymbolRules,
    parse_exchange_info,
    prepare_limit_order,
)
from dma_bot.errors import ProtocolError
from dma_bot.model import Instrument, Side

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
BODY = json.loads((PAYLOADS / "exchange_info.json").read_text())
RULES = parse_exchange_info(BODY)
BTC, ETH, LUNA = RULES["BTCUSDT"], RULES["ETHBTC"], RULES["LUNAUSDT"]


def _entry(body: dict, symbol: str) -> dict:
    return next(entry for entry in body["symbols"] if entry["symbol"] == symbol)


def _filter(entry: dict, name: str) -> dict:
    return next(item for item in entry["filters"] if item["filterType"] == name)


def test_parse_exchange_info_btcusdt_rules_are_exact() -> None:
    """Every field from the venue's strings, as exact Decimals; NOTIONAL supplies min and max."""
    assert BTC.instrument == Instrument(
        symbol="BTCUSDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        min_notional=Decimal("5"),
        base_asset="BTC",
        quote_asset="USDT",
    )
    assert (BTC.status, BTC.base_asset, BTC.quote_asset, BTC.is_trading) == ("TRADING", "BTC", "USDT", True)
    assert (BTC.min_price, BTC.max_price) == (Decimal("0.01"), Decimal("1000000"))
    assert (BTC.min_qty, BTC.max_qty) == (Decimal("0.00001"), Decimal("9000"))
    assert BTC.notional_limits == (NotionalLimit("NOTIONAL", Decimal("5"), Decimal("9000000")),)
    assert (BTC.min_notional, BTC.max_notional) == (Decimal("5"), Decimal("9000000"))
    assert BTC.percent_price_by_side == PercentPriceBySide(Decimal(5), Decimal("0.2"), Decimal(5), Decimal("0.2"), 5)
    assert BTC.percent_price is None
    assert BTC.max_num_orders == 200
    assert "LIMIT_MAKER" in BTC.order_types


def test_parse_exchange_info_legacy_min_notional_and_percent_price() -> None:
    assert ETH.notional_limits == (NotionalLimit("MIN_NOTIONAL", Decimal("0.0001"), None),)
    assert (ETH.min_notional, ETH.max_notional) == (Decimal("0.0001"), None)
    assert ETH.percent_price == PercentPrice(Decimal("1.3"), Decimal("0.7"), 5)
    assert ETH.instrument.tick_size == Decimal("0.000001")


def test_parse_exchange_info_non_trading_symbol_is_parsed_with_its_status() -> None:
    assert (LUNA.status, LUNA.is_trading, LUNA.order_types) == ("BREAK", False, frozenset({"LIMIT", "MARKET"}))


def test_parse_exchange_info_symbols_selects_and_requires() -> None:
    """Only the named entries are parsed (a garbled foreign entry does not matter); a missing one is an error."""
    body = copy.deepcopy(BODY)
    _filter(_entry(body, "ETHBTC"), "PRICE_FILTER")["tickSize"] = "garbage"

    assert set(parse_exchange_info(body, symbols=["BTCUSDT"])) == {"BTCUSDT"}
    with pytest.raises(ProtocolError, match=r"exchangeInfo\.symbols: must include XRPUSDT, was missing"):
        parse_exchange_info(body, symbols=["BTCUSDT", "XRPUSDT"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: _filter(e, "PRICE_FILTER").update(tickSize="0.0.1"), r"BTCUSDT\.PRICE_FILTER\.tickSize: a decimal"),
        (lambda e: _filter(e, "PRICE_FILTER").update(tickSize=0.01), r"BTCUSDT\.PRICE_FILTER\.tickSize: a decimal"),
        (lambda e: _filter(e, "PRICE_FILTER").update(tickSize="0"), r"BTCUSDT\.PRICE_FILTER\.tickSize: a positive"),
        (lambda e: _filter(e, "LOT_SIZE").pop("maxQty"), r"BTCUSDT\.LOT_SIZE\.maxQty: a decimal string, was None"),
        (lambda e: _filter(e, "LOT_SIZE").update(stepSize="-1"), r"BTCUSDT\.LOT_SIZE\.stepSize: a finite non-neg"),
        (lambda e: _filter(e, "NOTIONAL").update(maxNotional="NaN"), r"BTCUSDT\.NOTIONAL\.maxNotional: a finite"),
        (lambda e: _filter(e, "MAX_NUM_ORDERS").update(maxNumOrders="200"), r"BTCUSDT\.MAX_NUM_ORDERS\.maxNumOrders"),
        (lambda e: _filter(e, "PERCENT_PRICE_BY_SIDE").pop("askMultiplierUp"), r"_BY_SIDE\.askMultiplierUp: a decimal"),
        (lambda e: e["filters"].remove(_filter(e, "LOT_SIZE")), r"BTCUSDT\.filters\.LOT_SIZE: required, was missing"),
        (lambda e: e.pop("status"), r"BTCUSDT\.status: a non-empty string, was None"),
        (lambda e: e.update(orderTypes="LIMIT"), r"BTCUSDT\.orderTypes: a list of strings"),
        (lambda e: e["filters"].append({"minQty": "1"}), r"BTCUSDT\.filters: objects with a filterType"),
    ],
)
def test_parse_exchange_info_garbled_field_names_symbol_and_field(mutate, message: str) -> None:
    body = copy.deepcopy(BODY)
    mutate(_entry(body, "BTCUSDT"))

    with pytest.raises(ProtocolError, match=message):
        parse_exchange_info(body)


def test_parse_exchange_info_not_a_symbol_list_is_an_error() -> None:
    with pytest.raises(ProtocolError, match=r"exchangeInfo\.symbols: a list, was NoneType"):
        parse_exchange_info({"timezone": "UTC"})


# -- prepare_limit_order ----------------------------------------------------------------------------------


def test_prepare_limit_order_rounds_price_passively_and_quantity_down() -> None:
    """Buy price rounds down, sell price rounds up, quantity always rounds down to the step."""
    assert prepare_limit_order(BTC, Side.BUY, Decimal("65000.019"), Decimal("0.001239"), reference_price=None) == (
        6500001,
        123,
    )
    assert prepare_limit_order(BTC, Side.SELL, Decimal("65000.011"), Decimal("0.001239"), reference_price=None) == (
        6500002,
        123,
    )


def test_prepare_limit_order_ints_are_ticks_and_steps_already() -> None:
    assert prepare_limit_order(BTC, Side.BUY, 6500000, 100, reference_price=None) == (6500000, 100)


@pytest.mark.parametrize(
    ("rules", "side", "price", "quantity", "filter_name", "detail"),
    [
        (LUNA, Side.BUY, Decimal("1"), Decimal("10"), "status", "LUNAUSDT is BREAK, orders need TRADING"),
        (BTC, Side.BUY, Decimal("0.009"), Decimal("1"), "PRICE_FILTER", "price must be positive"),
        (BTC, Side.SELL, Decimal("1000000.001"), Decimal("0.001"), "PRICE_FILTER", "above maxPrice 1000000"),
        (BTC, Side.BUY, Decimal("65000"), Decimal("0.000009"), "LOT_SIZE", "quantity rounds to 0"),
        (BTC, Side.BUY, Decimal("1"), Decimal("9000.00001"), "LOT_SIZE", "above maxQty 9000"),
        (BTC, Side.BUY, Decimal("65000"), Decimal("0.00007"), "NOTIONAL", "notional 4.55 is below minNotional 5"),
        (BTC, Side.SELL, Decimal("999999"), Decimal("9.5"), "NOTIONAL", "above maxNotional 9000000"),
        (ETH, Side.BUY, Decimal("0.000001"), Decimal("1"), "MIN_NOTIONAL", "below minNotional 0.0001"),
    ],
)
def test_prepare_limit_order_breaking_a_filter_is_rejected_with_its_name(
    rules: SymbolRules, side: Side, price: Decimal, quantity: Decimal, filter_name: str, detail: str
) -> None:
    with pytest.raises(LocalFilterReject) as rejected:
        prepare_limit_order(rules, side, price, quantity, reference_price=None)

    assert rejected.value.filter_name == filter_name
    assert detail in rejected.value.detail


def test_prepare_limit_order_below_min_price_and_min_qty() -> None:
    rules = dataclasses.replace(BTC, min_price=Decimal("100"), min_qty=Decimal("0.001"))

    with pytest.raises(LocalFilterReject, match=r"PRICE_FILTER: price 99\.99 is below minPrice 100$"):
        prepare_limit_order(rules, Side.BUY, 9999, 1000, reference_price=None)
    with pytest.raises(LocalFilterReject, match=r"LOT_SIZE: quantity 0\.00099 is below minQty 0\.001$"):
        prepare_limit_order(rules, Side.BUY, 6500000, 99, reference_price=None)


def test_prepare_limit_order_zero_min_and_max_price_disable_those_checks() -> None:
    """filters.md: minPrice/maxPrice of 0 turn that rule off."""
    rules = dataclasses.replace(BTC, min_price=Decimal(0), max_price=Decimal(0), notional_limits=())

    assert prepare_limit_order(rules, Side.SELL, 10**12, 1, reference_price=None) == (10**12, 1)
    assert prepare_limit_order(rules, Side.BUY, 1, 1, reference_price=None) == (1, 1)


def test_prepare_limit_order_percent_price_by_side_uses_the_side_band() -> None:
    """With a reference price, a buy must sit in [ref*bidDown, ref*bidUp], a sell in the ask band."""
    band = PercentPriceBySide(Decimal("1.05"), Decimal("0.9"), Decimal("1.1"), Decimal("0.95"), 5)
    rules = dataclasses.replace(BTC, percent_price_by_side=band)
    reference = Decimal("100.00")

    assert prepare_limit_order(rules, Side.BUY, Decimal("105.00"), Decimal("1"), reference_price=reference)[0] == 10500
    assert prepare_limit_order(rules, Side.SELL, Decimal("110.00"), Decimal("1"), reference_price=reference)[0] == 11000
    with pytest.raises(LocalFilterReject, match=r"_BY_SIDE: BUY price 105\.01 is outside 90\.\.105 \("):
        prepare_limit_order(rules, Side.BUY, Decimal("105.01"), Decimal("1"), reference_price=reference)
    with pytest.raises(LocalFilterReject, match=r"PERCENT_PRICE_BY_SIDE: SELL price 94\.99 is outside 95\.\.110 "):
        prepare_limit_order(rules, Side.SELL, Decimal("94.99"), Decimal("1"), reference_price=reference)
    assert prepare_limit_order(rules, Side.BUY, Decimal("200"), Decimal("1"), reference_price=None)[0] == 20000


def test_prepare_limit_order_percent_price_without_side() -> None:
    with pytest.raises(LocalFilterReject, match=r"^PERCENT_PRICE: SELL price 0\.131001 is outside 0\.07\.\.0\.13 "):
        prepare_limit_order(ETH, Side.SELL, Decimal("0.131001"), Decimal("1"), reference_price=Decimal("0.1"))
    ticks, _ = prepare_limit_order(ETH, Side.SELL, Decimal("0.13"), Decimal("1"), reference_price=Decimal("0.1"))
    assert ticks == 130000


def test_prepare_limit_order_max_num_orders_and_order_types() -> None:
    with pytest.raises(LocalFilterReject, match="MAX_NUM_ORDERS: 200 orders already open, limit 200"):
        prepare_limit_order(BTC, Side.BUY, 6500000, 100, reference_price=None, open_orders=200)
    assert prepare_limit_order(BTC, Side.BUY, 6500000, 100, reference_price=None, open_orders=199) == (6500000, 100)
    rules = dataclasses.replace(BTC, order_types=frozenset({"LIMIT"}))
    with pytest.raises(LocalFilterReject, match="orderTypes: LIMIT_MAKER is not allowed on BTCUSDT"):
        prepare_limit_order(rules, Side.BUY, 6500000, 100, reference_price=None, order_type="LIMIT_MAKER")


@pytest.mark.parametrize("bad", [Decimal("NaN"), 65000.0, True])
def test_prepare_limit_order_non_decimal_price_is_a_programming_error(bad: object) -> None:
    with pytest.raises(ValueError, match="price: int ticks or a finite Decimal"):
        prepare_limit_order(BTC, Side.BUY, bad, 100, reference_price=None)  # type: ignore[arg-type]


def test_prepare_limit_order_rounding_property_over_random_inputs() -> None:
    """Property: the price moves less than one tick, to the passive side; the quantity less than one step, down."""
    rng = random.Random(7)
    tick, step = BTC.instrument.tick_size, BTC.instrument.step_size
    for _ in range(2000):
        price = Decimal(rng.randrange(10_000_000, 100_000_000_000)).scaleb(-rng.randrange(3, 7))
        quantity = Decimal(rng.randrange(10**6, 10**9)).scaleb(-rng.randrange(7, 10))
        side = rng.choice((Side.BUY, Side.SELL))
        try:
            ticks, steps = prepare_limit_order(BTC, side, price, quantity, reference_price=None)
        except LocalFilterReject as reject:
            assert reject.filter_name in {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
            continue
        sent_price, sent_qty = tick * ticks, step * steps
        assert 0 <= (price - sent_price if side is Side.BUY else sent_price - price) < tick
        assert 0 <= quantity - sent_qty < step
