"""Unit tests of the exchange simulator's pure cores: matching, lifecycle, balances, commission, filters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dma_bot.exchange_sim.accounts import FeeAsset
from dma_bot.exchange_sim.book import SymbolBook
from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.market import QuoteWalk, SymbolConfig, parse_symbols
from dma_bot.exchange_sim.validation import ApiError, OrderRequest, parse_new_order
from dma_bot.model.enums import Side

NOW = 1_700_000_000_000
CONFIG = SymbolConfig(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    min_notional=Decimal("1"),
    start_price=Decimal("100.00"),
    touch_qty=Decimal("1.000"),
    max_num_orders=3,
)


def make_exchange(fee_asset: FeeAsset = FeeAsset.RECEIVED, usdt: str = "10000", btc: str = "10") -> Exchange:
    exchange = Exchange(
        [CONFIG], balances={"USDT": Decimal(usdt), "BTC": Decimal(btc)}, fee_asset=fee_asset, start_ms=NOW
    )
    exchange.set_quote("BTCUSDT", 10000, 10001, 1000, 1000, NOW)  # 100.00 / 100.01, 1.000 each side
    exchange.take_events()
    return exchange


def order(
    side: str, price: str | None, qty: str, *, kind: str = "LIMIT", tif: str | None = "GTC", **extra: str
) -> OrderRequest:
    params = {"symbol": "BTCUSDT", "side": side, "type": kind, "quantity": qty, **extra}
    if price is not None:
        params["price"] = price
    if tif is not None and kind == "LIMIT":
        params["timeInForce"] = tif
    return parse_new_order(params, {"BTCUSDT": CONFIG})


def reports(exchange: Exchange) -> list[dict[str, object]]:
    return [e for e in exchange.take_events() if e["e"] == "executionReport"]


def test_book_marketable_buy_partially_fills_at_touch_and_rests_remainder() -> None:
    """A buy through the ask takes only the touch size, at the ask, and the rest rests as PARTIALLY_FILLED."""
    exchange = make_exchange()

    placed, fills = exchange.place(order("BUY", "100.05", "1.500"), NOW)

    assert [(f.price, f.qty) for f in fills] == [(10001, 1000)]
    assert placed.status == "PARTIALLY_FILLED" and placed.remaining == 500
    assert exchange.open_orders("BTCUSDT") == [placed]
    events = reports(exchange)
    assert [(e["x"], e["X"]) for e in events] == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED")]
    assert events[1]["L"] == "100.01000000" and events[1]["l"] == "1.00000000" and events[1]["m"] is False


def test_book_resting_buy_fills_as_maker_in_parts_when_ask_reaches_it() -> None:
    """A resting buy fills at its own price when the ask comes down to it, no more than the touch size per quote."""
    exchange = make_exchange()
    placed, _ = exchange.place(order("BUY", "99.90", "1.500"), NOW)
    reports(exchange)

    exchange.set_quote("BTCUSDT", 9980, 9990, 1000, 600, NOW + 1)
    first = reports(exchange)
    exchange.set_quote("BTCUSDT", 9970, 9985, 1000, 1000, NOW + 2)
    second = reports(exchange)

    assert [(e["X"], e["l"], e["L"], e["m"]) for e in first] == [
        ("PARTIALLY_FILLED", "0.60000000", "99.90000000", True)
    ]
    assert [(e["X"], e["l"], e["z"]) for e in second] == [("FILLED", "0.90000000", "1.50000000")]
    assert placed.status == "FILLED" and exchange.open_orders() == []
    assert second[0]["w"] is False and first[0]["w"] is True


def test_book_resting_orders_fill_in_price_then_time_priority() -> None:
    """With too little touch size for all, the better-priced resting buy fills first."""
    exchange = make_exchange()
    worse, _ = exchange.place(order("BUY", "99.80", "0.500"), NOW)
    better, _ = exchange.place(order("BUY", "99.90", "0.500"), NOW)

    exchange.set_quote("BTCUSDT", 9970, 9975, 1000, 500, NOW + 1)

    assert better.status == "FILLED" and worse.status == "NEW"


def test_book_ioc_remainder_expires_with_expiry_reason() -> None:
    """An IOC order trades what the touch offers and the rest ends EXPIRED, its lock released."""
    exchange = make_exchange()

    placed, fills = exchange.place(order("BUY", "100.01", "1.500", tif="IOC"), NOW)

    events = reports(exchange)
    assert placed.status == "EXPIRED" and sum(f.qty for f in fills) == 1000
    assert [e["x"] for e in events] == ["NEW", "TRADE", "EXPIRED"]
    assert events[-1]["eR"] == "UNFILLED_IOC_QUANTITY_EXPIRED" and events[-1]["z"] == "1.00000000"
    assert exchange.balances.locked("USDT") == 0


def test_book_fok_without_enough_liquidity_expires_without_a_fill() -> None:
    """A FOK larger than the touch trades nothing and expires."""
    exchange = make_exchange()

    placed, fills = exchange.place(order("SELL", "100.00", "1.001", tif="FOK"), NOW)

    assert fills == [] and placed.status == "EXPIRED" and placed.filled == 0
    assert [e["x"] for e in reports(exchange)] == ["NEW", "EXPIRED"]
    assert exchange.balances.free("BTC") == Decimal("10") and exchange.balances.locked("BTC") == 0


def test_book_fok_within_liquidity_fills_completely() -> None:
    """A FOK the touch can cover fills in full."""
    exchange = make_exchange()

    placed, fills = exchange.place(order("SELL", "100.00", "1.000", tif="FOK"), NOW)

    assert placed.status == "FILLED" and [(f.price, f.qty) for f in fills] == [(10000, 1000)]


def test_book_limit_maker_that_would_cross_is_rejected_and_reported() -> None:
    """LIMIT_MAKER at or through the ask: -2010, a REJECTED report, nothing locked, nothing open."""
    exchange = make_exchange()

    with pytest.raises(ApiError) as caught:
        exchange.place(order("BUY", "100.01", "0.100", kind="LIMIT_MAKER"), NOW)

    assert (caught.value.code, caught.value.msg) == (-2010, "Order would immediately match and take.")
    (report,) = reports(exchange)
    assert (report["x"], report["X"], report["r"]) == ("REJECTED", "REJECTED", "WOULD_MATCH_IMMEDIATELY")
    assert exchange.open_orders() == [] and exchange.balances.locked("USDT") == 0


def test_book_limit_maker_below_the_ask_rests() -> None:
    """A passive LIMIT_MAKER is accepted and rests, reported with timeInForce GTC."""
    exchange = make_exchange()

    placed, _ = exchange.place(order("BUY", "100.00", "0.100", kind="LIMIT_MAKER"), NOW)

    assert placed.status == "NEW" and placed.is_working and reports(exchange)[0]["f"] == "GTC"


def test_book_buy_pays_commission_in_base_and_balances_are_exact() -> None:
    """Buying 0.5 at 99.90 as maker: quote spent exactly, base credited less 0.1% commission in base."""
    exchange = make_exchange()
    exchange.place(order("BUY", "99.90", "0.500"), NOW)
    assert (exchange.balances.free("USDT"), exchange.balances.locked("USDT")) == (Decimal("9950.05"), Decimal("49.95"))

    exchange.set_quote("BTCUSDT", 9980, 9990, 1000, 1000, NOW + 1)

    assert exchange.balances.free("USDT") == Decimal("9950.05") and exchange.balances.locked("USDT") == 0
    assert exchange.balances.free("BTC") == Decimal("10.4995")
    trade = next(e for e in reports(exchange) if e["x"] == "TRADE")
    assert (trade["n"], trade["N"], trade["Y"], trade["Z"]) == ("0.00050000", "BTC", "49.95000000", "49.95000000")


def test_book_taker_buy_below_its_limit_releases_the_price_improvement() -> None:
    """A buy limited at 101 that fills at the 100.01 ask returns the unspent reservation."""
    exchange = make_exchange()

    exchange.place(order("BUY", "101.00", "1.000"), NOW)

    assert exchange.balances.free("USDT") == Decimal("10000") - Decimal("100.01")
    assert exchange.balances.locked("USDT") == 0


def test_book_sell_pays_commission_in_quote_exactly() -> None:
    """Selling 0.3 at the 100.00 bid: base spent, quote credited 30.00 less 0.03 commission."""
    exchange = make_exchange()

    _, fills = exchange.place(order("SELL", "99.00", "0.300"), NOW)

    assert (fills[0].commission, fills[0].commission_asset) == (Decimal("0.03000000"), "USDT")
    assert exchange.balances.free("BTC") == Decimal("9.7")
    assert exchange.balances.free("USDT") == Decimal("10029.97")


def test_book_fee_asset_quote_charges_a_buy_in_quote() -> None:
    """With commission in the quote asset, a buy pays notional plus 0.1% of it and receives the full base."""
    exchange = make_exchange(FeeAsset.QUOTE)

    exchange.place(order("BUY", "100.01", "1.000"), NOW)

    assert exchange.balances.free("USDT") == Decimal("10000") - Decimal("100.01") - Decimal("0.10001")
    assert exchange.balances.free("BTC") == Decimal("11") and exchange.balances.locked("USDT") == 0


def test_book_cancel_releases_the_lock_and_reports_both_client_ids() -> None:
    """Cancel: status CANCELED, lock released, report ``c`` = the cancel's id and ``C`` = the order's id."""
    exchange = make_exchange()
    placed, _ = exchange.place(order("BUY", "99.00", "1.000", newClientOrderId="mine-1"), NOW)
    reports(exchange)

    canceled, cancel_id = exchange.cancel(placed, NOW + 5, cancel_client_id="cancel-1")

    (report,) = reports(exchange)
    assert canceled.status == "CANCELED" and cancel_id == "cancel-1"
    assert (report["x"], report["c"], report["C"], report["w"]) == ("CANCELED", "cancel-1", "mine-1", False)
    assert exchange.balances.locked("USDT") == 0 and exchange.balances.free("USDT") == Decimal("10000")


def test_book_cancel_of_a_closed_order_is_unknown() -> None:
    """Cancelling a filled order answers -2011 "Unknown order sent."."""
    exchange = make_exchange()
    placed, _ = exchange.place(order("BUY", "100.01", "0.100"), NOW)

    with pytest.raises(ApiError) as caught:
        exchange.cancel(placed, NOW)

    assert (caught.value.code, caught.value.msg) == (-2011, "Unknown order sent.")


def test_book_insufficient_balance_is_rejected_and_reported() -> None:
    """A buy that needs more quote than is free: -2010, a REJECTED report with INSUFFICIENT_BALANCES."""
    exchange = make_exchange(usdt="50")

    with pytest.raises(ApiError) as caught:
        exchange.place(order("BUY", "99.00", "1.000"), NOW)

    assert caught.value.msg == "Account has insufficient balance for requested action."
    assert [(e["X"], e["r"]) for e in reports(exchange)] == [("REJECTED", "INSUFFICIENT_BALANCES")]


def test_book_duplicate_client_id_is_refused_only_while_the_first_is_open() -> None:
    """A client order id is unique among open orders: reusable once the first order is closed."""
    exchange = make_exchange()
    first, _ = exchange.place(order("BUY", "99.00", "0.100", newClientOrderId="dup"), NOW)
    with pytest.raises(ApiError) as caught:
        exchange.place(order("BUY", "98.00", "0.100", newClientOrderId="dup"), NOW)
    exchange.cancel(first, NOW)

    second, _ = exchange.place(order("BUY", "98.00", "0.100", newClientOrderId="dup"), NOW)

    assert (caught.value.code, caught.value.msg) == (-2010, "Duplicate order sent.")
    assert exchange.find("BTCUSDT", None, "dup") is second


def test_book_market_order_takes_the_touch_and_expires_the_rest() -> None:
    """A MARKET buy larger than the touch fills the touch and expires for lack of liquidity."""
    exchange = make_exchange()

    placed, fills = exchange.place(order("BUY", None, "1.500", kind="MARKET", tif=None), NOW)

    assert placed.filled == 1000 and placed.status == "EXPIRED" and placed.expiry_reason == "INSUFFICIENT_LIQUIDITY"
    assert fills[0].price == 10001


def test_book_execution_report_carries_every_field_with_binance_types() -> None:
    """Every executionReport key of the reference, with strings for decimals, ints for ids, bools for flags."""
    exchange = make_exchange()

    exchange.place(order("BUY", "100.01", "0.100"), NOW)

    new, trade = reports(exchange)
    strings = "scSofqpPFCxXrlzLnZYQV"
    ints = "EgiTtIO"
    for key in strings:
        assert isinstance(trade[key], str), key
    for key in ints:
        assert isinstance(trade[key], int) and not isinstance(trade[key], bool), key
    for key in "wmM":
        assert isinstance(trade[key], bool), key
    assert trade["e"] == "executionReport" and trade["t"] >= 1 and trade["N"] == "BTC"
    assert (new["t"], new["N"], new["n"], new["C"], new["g"]) == (-1, None, "0", "", -1)


def test_book_quote_walk_is_reproducible_from_its_seed() -> None:
    """Two walks with one seed give the same quotes; the spread and the tick grid are kept."""
    first, second = QuoteWalk(7), QuoteWalk(7)
    start = first.first(CONFIG)

    path_a = [first.next(CONFIG, start.bid) for _ in range(20)]
    path_b = [second.next(CONFIG, start.bid) for _ in range(20)]

    assert path_a == path_b
    assert all(q.ask - q.bid == CONFIG.spread_ticks and 1 <= q.bid_qty <= 1000 for q in path_a)


def test_book_take_never_exceeds_what_is_left_at_the_touch() -> None:
    """Two incoming orders in one quote share the touch size; a new quote refreshes it."""
    book = SymbolBook(10000, 10001, 1000, 1000)

    first = book.take(Side.BUY, None, 700)
    second = book.take(Side.BUY, None, 700)
    book.set_quote(10000, 10001, 1000, 1000)
    third = book.take(Side.BUY, None, 700)

    assert (first and first.qty, second and second.qty, third and third.qty) == (700, 300, 700)


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"price": "100.005"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.0015"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.001", "price": "100.00"}, -1013, "Filter failure: NOTIONAL"),
        ({"price": "600.00"}, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        ({"price": "1.123456789"}, -1111, "Parameter 'price' has too much precision."),
        ({"quantity": "1e-05"}, -1100, None),
        ({"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"stopPrice": "90"}, -1106, "Parameter 'stopPrice' sent when not required."),
        ({"bogus": "1"}, -1104, None),
    ],
)
def test_book_order_checks_answer_binance_codes(params: dict[str, str], code: int, msg: str | None) -> None:
    """Each failed check answers Binance's code (and message where Binance's is fixed)."""
    exchange = make_exchange()
    request = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    request |= {"quantity": "0.100", "price": "100.00"} | params

    with pytest.raises(ApiError) as caught:
        exchange.validate(parse_new_order(request, exchange.configs))

    assert caught.value.code == code
    assert msg is None or caught.value.msg == msg


def test_book_max_num_orders_filter_counts_open_orders() -> None:
    """The fourth open order on a symbol limited to three fails MAX_NUM_ORDERS."""
    exchange = make_exchange()
    for _ in range(3):
        exchange.place(order("BUY", "99.00", "0.100"), NOW)

    with pytest.raises(ApiError) as caught:
        exchange.place(order("BUY", "99.00", "0.100"), NOW)

    assert caught.value.msg == "Filter failure: MAX_NUM_ORDERS"


def test_book_symbol_not_trading_answers_market_closed() -> None:
    """A symbol listed with a non-TRADING status refuses orders with -2010 "Market is closed."."""
    exchange = Exchange(parse_symbols("BTCUSDT:BREAK"), start_ms=NOW)

    with pytest.raises(ApiError) as caught:
        exchange.place(
            parse_new_order(
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.01",
                    "price": "50000",
                },
                exchange.configs,
            ),
            NOW,
        )

    assert (caught.value.code, caught.value.msg) == (-2010, "Market is closed.")
