"""Unit tests of the ledger under real venue behaviour: reports out of order, repeated, without trade ids;
commissions in the base asset, the quote asset and a third asset (dma_bot.positions.ledger)."""

from __future__ import annotations

import random
from decimal import Decimal

from dma_bot.model.enums import ExecStatus, NoteKind, Side
from dma_bot.model.events import ExecReport, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.positions.ledger import FillGap, Ledger

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), base_asset="BTC",
                 quote_asset="USDT")
BNB = Instrument(symbol="BNBUSDT", tick_size=Decimal("0.1"), step_size=Decimal("0.001"), base_asset="BNB",
                 quote_asset="USDT")
INSTRUMENTS = {"BTCUSDT": BTC, "BNBUSDT": BNB}
S = ExecStatus


def _report(
    status: ExecStatus,
    *,
    cid: str = "o1",
    order_qty: int = 100_000,
    last_qty: int = 0,
    cum_qty: int = 0,
    price: int = 6_500_000,
    trade_id: str | None = None,
    side: Side = Side.BUY,
    fee: str = "0",
    fee_asset: str = "",
    venue: str = "BINANCE",
    symbol: str = "BTCUSDT",
) -> ExecReport:
    terminal_rest = 0 if status.is_terminal else order_qty - cum_qty
    return ExecReport(
        venue=venue, symbol=symbol, client_order_id=cid, venue_order_id=f"v{cid}", side=side, status=status,
        order_qty=order_qty, last_qty=last_qty, last_price=price if last_qty else 0, cum_qty=cum_qty,
        leaves_qty=terminal_rest, fee=Decimal(fee), fee_asset=fee_asset, trade_id=trade_id, reason="",
        ts_event_ns=1, ts_ns=7,
    )


def _position(ledger: Ledger, symbol: str = "BTCUSDT", venue: str = "BINANCE"):
    return ledger.snapshot().positions[(symbol, venue)]


def test_ledger_filled_before_its_partial_fill_books_the_whole_order() -> None:
    """FILLED (trade 2) processed before the PARTIALLY_FILLED of trade 1: both trades are booked, the order stays
    FILLED, the older report is counted as late, and risk sees the whole order done (not 0.4 open forever)."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(S.ACK))
    ledger.apply(_report(S.FILLED, last_qty=40_000, cum_qty=100_000, trade_id="2"))

    ledger.apply(_report(S.PARTIALLY_FILLED, last_qty=60_000, cum_qty=60_000, trade_id="1"))

    assert _position(ledger).traded_quantity == 100_000
    assert ledger.order_status("o1") is S.FILLED
    assert ledger.snapshot().done_steps[("BTCUSDT", Side.BUY)] == 100_000
    assert ledger.stats.late_reports == 1 and ledger.stats.illegal_transitions == 0
    assert ledger.fill_gaps() == []
    assert [note.kind for note in ledger.take_notes()] == [NoteKind.LATE_REPORT]


def test_ledger_trade_delivered_after_its_cancel_is_booked() -> None:
    """The venue cancelled an order after a trade (cum 0.4) but the trade's report comes after the cancel: the
    trade is booked, the cancel's done steps are not counted twice, and the gap closes when the trade lands."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(S.ACK))
    ledger.apply(_report(S.CANCELED, cum_qty=40_000))
    assert ledger.fill_gaps() == [FillGap("BINANCE", "BTCUSDT", "o1", S.CANCELED, 0, 40_000)]

    ledger.apply(_report(S.PARTIALLY_FILLED, last_qty=40_000, cum_qty=40_000, trade_id="9"))

    assert _position(ledger).quantity == 40_000
    assert ledger.snapshot().done_steps[("BTCUSDT", Side.BUY)] == 100_000
    assert ledger.order_status("o1") is S.CANCELED
    assert ledger.fill_gaps() == []


def test_ledger_fill_without_trade_id_applied_by_cum_qty_difference_never_twice() -> None:
    """Without trade ids, a repeated report adds nothing and a missed one is caught up by cum_qty difference."""
    ledger = Ledger(INSTRUMENTS)
    first = _report(S.PARTIALLY_FILLED, last_qty=30_000, cum_qty=30_000)
    ledger.apply(first)
    assert ledger.apply(first) is False
    # the report at cum 0.6 was lost; the FILLED one says last 0.4, cum 1.0
    ledger.apply(_report(S.FILLED, last_qty=40_000, cum_qty=100_000))

    assert _position(ledger).traded_quantity == 100_000
    assert ledger.stats.duplicate_fills == 1
    assert ledger.stats.fills_by_cum_qty == 1
    assert [note.kind for note in ledger.take_notes()] == [NoteKind.DUPLICATE_FILL, NoteKind.FILL_BY_CUM_QTY]


def test_ledger_fills_beyond_cum_qty_are_booked_and_noted_as_overrun() -> None:
    """Two distinct trades that add up to more than the venue's cum_qty are both money, and an overrun Note."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(S.PARTIALLY_FILLED, last_qty=60_000, cum_qty=60_000, trade_id="1"))
    ledger.apply(_report(S.PARTIALLY_FILLED, last_qty=60_000, cum_qty=60_000, trade_id="2"))

    assert _position(ledger).traded_quantity == 120_000
    assert ledger.stats.fill_overruns == 1
    assert ledger.fill_gaps() == [FillGap("BINANCE", "BTCUSDT", "o1", S.PARTIALLY_FILLED, 120_000, 60_000)]
    assert NoteKind.FILL_OVERRUN in [note.kind for note in ledger.take_notes()]


def test_ledger_base_asset_commission_reduces_holdings_and_is_valued_at_the_fill_price() -> None:
    """A BUY of 0.043 BTC paying 0.000043 BTC commission holds 0.042957 BTC (4295 whole steps); the fee is
    kept in BTC and valued at the fill price in USDT; another fee in USDT stays a separate asset."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(S.FILLED, cid="b", order_qty=4_300, last_qty=4_300, cum_qty=4_300, trade_id="1",
                         price=6_500_000, fee="0.000043", fee_asset="BTC"))
    ledger.apply(_report(S.FILLED, cid="s", side=Side.SELL, order_qty=1_000, last_qty=1_000, cum_qty=1_000,
                         trade_id="2", price=6_600_000, fee="0.66", fee_asset="USDT"))

    position = _position(ledger)
    assert position.holdings == Decimal("0.032957")
    assert position.quantity == 3_295
    assert position.traded_quantity == 3_300
    assert ledger.snapshot().net_steps["BTCUSDT"] == 3_295
    assert position.fees == {"BTC": Decimal("0.000043"), "USDT": Decimal("0.66")}
    assert position.fee_value == Decimal("0.000043") * Decimal("65000.00") + Decimal("0.66")
    assert ledger.fees() == {"BTC": Decimal("0.000043"), "USDT": Decimal("0.66")}
    assert position.unvalued_fees == {}


def test_ledger_third_asset_fee_valued_at_its_mid_or_kept_unvalued() -> None:
    """A BNB commission on BTCUSDT is valued at the BNBUSDT mid on the board at the fill; with no BNB quote it
    is listed as unvalued and no PnL figure includes it."""
    board = MarketBoard()
    valued = Ledger(INSTRUMENTS, board=board)
    unvalued = Ledger(INSTRUMENTS, board=board)
    fill = _report(S.FILLED, last_qty=1_000, cum_qty=1_000, trade_id="1", fee="0.002", fee_asset="BNB")
    unvalued.apply(fill)
    board.update(Tick("BNBUSDT", 6_000, 6_002, 1, 1, 0, 0))  # mid 600.1

    valued.apply(fill)

    assert _position(valued).fee_value == Decimal("1.2002")
    assert _position(unvalued).fee_value == 0
    assert unvalued.unvalued_fees() == {"BNB": Decimal("0.002")}
    board.update(Tick("BTCUSDT", 6_500_000, 6_500_000, 1, 1, 0, 0))
    assert unvalued.net_pnl(board) == 0
    assert valued.net_pnl(board) == Decimal("-1.2002")


def test_ledger_duplicate_and_unknown_symbol_reports_become_notes_with_the_report_time() -> None:
    """Every anomaly is one Note stamped with the report's receive time, then taken once."""
    ledger = Ledger(INSTRUMENTS)
    fill = _report(S.FILLED, last_qty=1_000, cum_qty=1_000, trade_id="1")
    ledger.apply(fill)
    ledger.apply(fill)
    ledger.apply(fill._replace(symbol="XYZUSDT"))

    notes = ledger.take_notes()

    assert [(note.kind, note.ts_ns) for note in notes] == [
        (NoteKind.DUPLICATE_FILL, 7), (NoteKind.LATE_REPORT, 7), (NoteKind.UNKNOWN_SYMBOL, 7)]
    assert ledger.take_notes() == []
    assert ledger.stats.anomalies()[NoteKind.DUPLICATE_FILL] == 1


def _order_reports(rng: random.Random, cid: str, side: Side, trade_ids: list[int]) -> tuple[list[ExecReport], int]:
    """One order's reports (ACK, trades, then FILLED or CANCELED), and the steps it traded."""
    order_qty = rng.randrange(2, 50)
    cum = 0
    reports = [_report(S.ACK, cid=cid, side=side, order_qty=order_qty)]
    while cum < order_qty and rng.random() < 0.8:
        last = rng.randrange(1, order_qty - cum + 1)
        cum += last
        trade_ids[0] += 1
        status = S.FILLED if cum == order_qty else S.PARTIALLY_FILLED
        reports.append(_report(status, cid=cid, side=side, order_qty=order_qty, last_qty=last, cum_qty=cum,
                               trade_id=str(trade_ids[0]), price=rng.randrange(6_000_000, 7_000_000)))
    if cum < order_qty:
        reports.append(_report(S.CANCELED, cid=cid, side=side, order_qty=order_qty, cum_qty=cum))
    return reports, side.sign * cum


def test_ledger_any_delivery_order_with_replays_gives_the_same_books() -> None:
    """Seeded property: every order's reports shuffled across orders, some replayed, give the same position, cash
    and done steps as in-order delivery; no gap remains and every order ends terminal."""
    for seed in range(30):
        rng = random.Random(seed)
        trade_ids = [0]
        reports: list[ExecReport] = []
        expected = 0
        for index in range(8):
            made, signed = _order_reports(rng, f"o{index}", rng.choice((Side.BUY, Side.SELL)), trade_ids)
            reports.extend(made)
            expected += signed
        in_order = Ledger(INSTRUMENTS)
        for report in reports:
            in_order.apply(report)
        shuffled = reports + rng.sample(reports, len(reports) // 4)
        rng.shuffle(shuffled)
        ledger = Ledger(INSTRUMENTS)

        for report in shuffled:
            ledger.apply(report)

        snapshot, reference = ledger.snapshot(), in_order.snapshot()
        assert snapshot.net_steps.get("BTCUSDT", 0) == expected, seed
        assert snapshot.realized_pnl + ledger.unrealized_pnl(_flat_board()) == (
            reference.realized_pnl + in_order.unrealized_pnl(_flat_board())), seed
        assert snapshot.done_steps == reference.done_steps, seed
        assert ledger.fill_gaps() == [], seed
        assert ledger.open_orders == 0, seed


def _flat_board() -> MarketBoard:
    board = MarketBoard()
    board.update(Tick("BTCUSDT", 6_500_000, 6_500_002, 1, 1, 0, 0))
    return board


def test_ledger_same_trade_id_on_another_order_after_a_venue_restart_is_a_new_fill() -> None:
    """A venue restarted from scratch numbers its trades from 1 again: trade 1 of a new order is a new fill,
    while trade 1 of the same order reported again is a duplicate."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(S.FILLED, cid="before", last_qty=1_000, cum_qty=1_000, trade_id="1"))
    ledger.apply(_report(S.FILLED, cid="before", last_qty=1_000, cum_qty=1_000, trade_id="1"))

    changed = ledger.apply(_report(S.FILLED, cid="after", last_qty=2_000, cum_qty=2_000, trade_id="1"))

    assert changed is True
    assert _position(ledger).traded_quantity == 3_000
    assert ledger.stats.duplicate_fills == 1


def test_ledger_book_fill_follows_another_ledgers_judgement_of_each_report() -> None:
    """A follower ledger fed ``book_fill(report, total.last_fill_steps)`` books exactly the money the total ledger
    booked: a repeated trade (0 steps), a fill without trade id by cum_qty difference (not its last_qty), fees."""
    total = Ledger(INSTRUMENTS)
    follower = Ledger(INSTRUMENTS)
    reports = [
        _report(S.ACK),
        _report(S.PARTIALLY_FILLED, last_qty=30_000, cum_qty=30_000, trade_id="1", fee="0.5", fee_asset="USDT"),
        _report(S.PARTIALLY_FILLED, last_qty=30_000, cum_qty=30_000, trade_id="1", fee="0.5", fee_asset="USDT"),
        _report(S.PARTIALLY_FILLED, last_qty=10_000, cum_qty=70_000, price=6_400_000),  # no trade id: 40,000
        _report(S.FILLED, last_qty=30_000, cum_qty=100_000, trade_id="3", side=Side.BUY, fee="0.00001",
                fee_asset="BTC"),
    ]
    booked = []
    for report in reports:
        total.apply(report)
        booked.append(total.last_fill_steps)
        follower.book_fill(report, total.last_fill_steps)
    assert booked == [0, 30_000, 0, 40_000, 30_000]
    board = MarketBoard()
    board.update(Tick("BTCUSDT", 6_600_000, 6_600_100, 1, 1, 2, 2))
    assert follower.snapshot().positions == total.snapshot().positions
    assert follower.net_pnl(board) == total.net_pnl(board)
    assert follower.fees() == total.fees()
    assert follower.open_order_ids() == []  # money only: no order lifecycle
